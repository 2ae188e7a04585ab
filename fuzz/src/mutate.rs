//! Byte-level mutations, a few stacked per input (the classic AFL/libFuzzer set,
//! without coverage): formats of length-prefixed records (PE, zip, DER, DHCP
//! options, certificate tables) break on lengths and offsets, so integers at
//! the edges and arithmetic on existing values come up often; text formats
//! (JSON, PEM, HTTP headers) get tokens from a dictionary.

use crate::rng::Rng;

/// Integers that sit on boundaries (0, ±1, signed/unsigned limits, powers of two).
const INTERESTING: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX,
];

/// Tokens for the text formats (JSON, PEM, HTTP, URLs) and DER's common headers.
pub const DICTIONARY: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\r\n",
    b"\n",
    b"\x00",
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Encoding: gzip\r\n",
    b"Location: ",
    b"0\r\n\r\n",
    b"HTTP/1.1 ",
    b"%",
    b"../",
    b"//",
    b"http://",
    b"\x30\x82",
    b"\x30\x80",
    b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01",
    b"\x02\x01\x00",
];

/// Mutates `input` in place with 1–8 stacked mutations; `other` is a second corpus
/// entry for splices. The result is at most `max_len` bytes.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max_len: usize) {
    let n = 1 + rng.below(8);
    for _ in 0..n {
        one(rng, input, other);
    }
    input.truncate(max_len);
}

fn one(rng: &mut Rng, v: &mut Vec<u8>, other: &[u8]) {
    let len = v.len();
    match rng.below(12) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            if let Some(b) = v.get_mut(i) {
                *b ^= 1 << rng.below(8);
            }
        }
        // Set a random byte.
        1 if len > 0 => {
            let i = rng.below(len);
            let x = rng.byte();
            if let Some(b) = v.get_mut(i) {
                *b = x;
            }
        }
        // An interesting integer, 1/2/4/8 bytes, either endianness.
        2 | 3 if len > 0 => {
            let width = 1 << rng.below(4);
            let mut x = INTERESTING[rng.below(INTERESTING.len())];
            if rng.one_in(2) {
                x = x.wrapping_neg();
            }
            let bytes = if rng.one_in(2) {
                x.to_le_bytes()
            } else {
                (x << (64 - 8 * width as u32).min(63)).to_be_bytes()
            };
            let i = rng.below(len);
            for (k, b) in bytes.iter().take(width).enumerate() {
                if let Some(t) = v.get_mut(i + k) {
                    *t = *b;
                }
            }
        }
        // Add or subtract a little from a 1/2/4-byte little-endian value.
        4 if len > 0 => {
            let width = 1 << rng.below(3);
            let i = rng.below(len);
            let delta = 1 + rng.below(35) as u32;
            let mut x = 0u32;
            for k in 0..width {
                x |= u32::from(v.get(i + k).copied().unwrap_or(0)) << (8 * k);
            }
            x = if rng.one_in(2) {
                x.wrapping_add(delta)
            } else {
                x.wrapping_sub(delta)
            };
            for k in 0..width {
                if let Some(t) = v.get_mut(i + k) {
                    *t = (x >> (8 * k)) as u8;
                }
            }
        }
        // Insert random bytes (or one byte repeated).
        5 => {
            let i = rng.below(len + 1);
            let max = if rng.one_in(8) { 1024 } else { 16 };
            let n = 1 + rng.below(max);
            let fill = rng.byte();
            let repeat = rng.one_in(2);
            let bytes: Vec<u8> = (0..n)
                .map(|_| if repeat { fill } else { rng.byte() })
                .collect();
            v.splice(i..i, bytes);
        }
        // Delete a range.
        6 if len > 0 => {
            let i = rng.below(len);
            let max = if rng.one_in(8) { 4096 } else { 16 };
            let n = 1 + rng.below((len - i).min(max));
            v.drain(i..(i + n).min(len));
        }
        // Copy a range of the input over or into another place of it.
        7 if len > 1 => {
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(64));
            let chunk: Vec<u8> = v
                .get(from..from + n)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let to = rng.below(len);
            if rng.one_in(2) {
                v.splice(to..to, chunk);
            } else {
                for (k, b) in chunk.into_iter().enumerate() {
                    if let Some(t) = v.get_mut(to + k) {
                        *t = b;
                    }
                }
            }
        }
        // Splice: a prefix of this input and a suffix of the other.
        8 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            v.truncate(cut);
            v.extend_from_slice(other.get(from..).unwrap_or_default());
        }
        // Truncate.
        9 if len > 0 => {
            let keep = rng.below(len);
            v.truncate(keep);
        }
        // A dictionary token, inserted or written over.
        _ => {
            let tok = DICTIONARY[rng.below(DICTIONARY.len())];
            let i = rng.below(len + 1);
            if rng.one_in(2) {
                v.splice(i..i, tok.iter().copied());
            } else {
                for (k, b) in tok.iter().enumerate() {
                    match v.get_mut(i + k) {
                        Some(t) => *t = *b,
                        None => v.push(*b),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_change_inputs_and_respect_the_cap() {
        let mut rng = Rng::new(1);
        let seed: Vec<u8> = (0..200u8).collect();
        let mut changed = 0;
        for _ in 0..2000 {
            let mut v = seed.clone();
            mutate(&mut rng, &mut v, b"other input", 300);
            assert!(v.len() <= 300);
            if v != seed {
                changed += 1;
            }
        }
        assert!(changed > 1900, "only {changed} of 2000 changed");
        // Empty inputs grow rather than panic.
        let mut v = Vec::new();
        for _ in 0..100 {
            mutate(&mut rng, &mut v, &[], 64);
        }
        assert!(v.len() <= 64);
    }
}
