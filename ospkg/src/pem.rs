//! Minimal PEM (RFC 7468 text, Go `encoding/pem` behaviour where it matters here).

use base64ct::Encoding;

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    /// Whether the block carried `Key: value` headers (Go keeps them; certificates with
    /// headers are refused by stboot).
    pub has_headers: bool,
    pub der: Vec<u8>,
}

/// All well-formed blocks in `text`, in order. Malformed blocks (no END line, bad
/// base64) and text between blocks are skipped, as Go's `pem.Decode` loop does.
pub fn decode_all(text: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim_start()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut has_headers = false;
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                has_headers = true;
                continue;
            }
            body.push_str(l);
        }
        if !closed {
            break;
        }
        if let Ok(der) = base64ct::Base64::decode_vec(&body) {
            out.push(PemBlock {
                label: label.to_owned(),
                has_headers,
                der,
            });
        }
    }
    out
}

/// The first well-formed block, like Go's `pem.Decode`.
pub fn decode_first(text: &[u8]) -> Option<PemBlock> {
    decode_all(text).into_iter().next()
}

/// Encodes like Go's `pem.EncodeToMemory` without headers: 64-column base64 lines, LF
/// line ends, a final newline.
pub fn encode(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = base64ct::Base64::encode_string(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let bytes = b64.as_bytes();
    for chunk in bytes.chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrapping() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = encode("CERTIFICATE", &der);
        let text = String::from_utf8_lossy(&pem);
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.ends_with("\n-----END CERTIFICATE-----\n"));
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        let blocks = decode_all(format!("junk\n{text}\r\n{text}").as_bytes());
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].der, der);
        assert!(!blocks[0].has_headers);
    }

    #[test]
    fn headers_and_garbage() {
        let t = "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END CERTIFICATE-----\n";
        let b = decode_first(t.as_bytes());
        assert!(b.is_some_and(|b| b.has_headers));
        assert!(decode_first(b"-----BEGIN X-----\n!!!\n-----END X-----\n").is_none());
        assert!(decode_first(b"-----BEGIN X-----\nAAAA\n").is_none());
    }
}
