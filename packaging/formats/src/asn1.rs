//! Minimal DER writer and bounds-checked reader for the fixed shapes of Authenticode
//! SignedData and our self-signed certificates. Only single-byte tags and definite lengths.

use anyhow::{Result, anyhow, bail};

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const BOOLEAN: u8 = 0x01;

/// Encodes one TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// Context-specific constructed tag `[n]` (explicit wrapping, or IMPLICIT of a constructed type).
pub fn ctx(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// An OBJECT IDENTIFIER from its dotted form.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut body = Vec::new();
    if arcs.len() >= 2 {
        push_base128(&mut body, arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push_base128(&mut body, a);
        }
    }
    tlv(OID, &body)
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = vec![(v & 0x7f) as u8];
    v >>= 7;
    while v > 0 {
        tmp.push(0x80 | (v & 0x7f) as u8);
        v >>= 7;
    }
    tmp.reverse();
    out.extend_from_slice(&tmp);
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn uint(be: &[u8]) -> Vec<u8> {
    let start = be.iter().take_while(|&&b| b == 0).count();
    let mut body = Vec::new();
    let mag = &be[start.min(be.len())..];
    if mag.is_empty() {
        body.push(0);
    } else {
        if mag[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(mag);
    }
    tlv(INTEGER, &body)
}

/// AlgorithmIdentifier with NULL parameters.
pub fn alg_null(dotted: &str) -> Vec<u8> {
    seq(&[&oid(dotted), &tlv(NULL, &[])])
}

/// DER SET OF: elements sorted by their encodings.
pub fn set_of(mut elems: Vec<Vec<u8>>) -> Vec<u8> {
    elems.sort();
    tlv(SET, &elems.concat())
}

/// One parsed TLV: its tag, the whole encoding and the content.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub full: &'a [u8],
    pub content: &'a [u8],
}

/// Reads one TLV at the start of `data`; returns it and the rest.
pub fn read(data: &[u8]) -> Result<(Tlv<'_>, &[u8])> {
    let tag = *data.first().ok_or_else(|| anyhow!("DER: unexpected end"))?;
    if tag & 0x1f == 0x1f {
        bail!("DER: multi-byte tags are not supported");
    }
    let l0 = *data
        .get(1)
        .ok_or_else(|| anyhow!("DER: truncated length"))?;
    let (len, hdr) = if l0 < 0x80 {
        (l0 as usize, 2usize)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 {
            bail!("DER: unsupported length form {l0:#x}");
        }
        let bytes = data
            .get(2..2 + n)
            .ok_or_else(|| anyhow!("DER: truncated length"))?;
        let mut len = 0usize;
        for &b in bytes {
            len = (len << 8) | b as usize;
        }
        (len, 2 + n)
    };
    let end = hdr
        .checked_add(len)
        .ok_or_else(|| anyhow!("DER: length overflow"))?;
    let full = data
        .get(..end)
        .ok_or_else(|| anyhow!("DER: element longer than its container"))?;
    Ok((
        Tlv {
            tag,
            full,
            content: &full[hdr..],
        },
        &data[end..],
    ))
}

/// Reads one TLV and checks its tag.
pub fn expect(data: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8])> {
    let (t, rest) = read(data)?;
    if t.tag != tag {
        bail!("DER: expected tag {tag:#04x}, found {:#04x}", t.tag);
    }
    Ok((t, rest))
}

/// All TLVs in `data`.
pub fn read_all(mut data: &[u8]) -> Result<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (t, rest) = read(data)?;
        out.push(t);
        data = rest;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding() {
        assert_eq!(
            oid("2.16.840.1.101.3.4.2.1"),
            vec![6, 9, 0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1]
        );
        assert_eq!(
            oid("1.3.6.1.4.1.311.2.1.4"),
            vec![6, 10, 0x2b, 6, 1, 4, 1, 0x82, 0x37, 2, 1, 4]
        );
    }

    #[test]
    fn long_lengths_round_trip() {
        let body = vec![7u8; 300];
        let enc = tlv(OCTET_STRING, &body);
        assert_eq!(&enc[..4], &[4, 0x82, 1, 44]);
        let (t, rest) = read(&enc).unwrap();
        assert_eq!(t.content, &body[..]);
        assert!(rest.is_empty());
    }

    #[test]
    fn integers() {
        assert_eq!(uint(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(uint(&[0, 0, 5]), vec![2, 1, 5]);
        assert_eq!(uint(&[]), vec![2, 1, 0]);
    }
}
