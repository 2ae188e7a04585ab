//! Hex encoding/decoding (no external crate, never panics).

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Strict hex: an optional `0x` prefix, then an even number of hex digits.
pub fn decode(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    decode_digits(t.as_bytes())
}

/// Hex text with any ASCII whitespace in between (for hex dump files).
pub fn decode_text(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    decode_digits(&digits)
}

fn decode_digits(d: &[u8]) -> Result<Vec<u8>, String> {
    if !d.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", d.len()));
    }
    let mut out = Vec::with_capacity(d.len() / 2);
    for (i, pair) in d.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => return Err(format!("not a hex digit at position {}", i * 2)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        assert_eq!(decode("0x00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(encode(&[0xde, 0xad]), "dead");
        assert!(decode("abc").is_err());
        assert!(decode("zz").is_err());
        assert_eq!(
            decode_text(b"de ad\nBE EF\n").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
    }
}
