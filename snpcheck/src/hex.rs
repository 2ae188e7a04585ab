//! Hex as snpcheck's inputs spell it (an optional `0x`, or a dump with whitespace), over the
//! `hex` crate. Never panics.

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
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
    ::hex::decode(d).map_err(|e| match e {
        ::hex::FromHexError::OddLength => format!("odd number of hex digits ({})", d.len()),
        ::hex::FromHexError::InvalidHexCharacter { index, .. } => {
            format!("not a hex digit at position {index}")
        }
        other => other.to_string(),
    })
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
