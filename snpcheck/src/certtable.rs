//! Bounds-checked parser of the host-supplied certificate table (GHCB spec, SNP extended guest
//! request): entries `{ guid[16], offset u32 LE, length u32 LE }` terminated by an all-zero entry;
//! offsets are relative to the start of the table.

use crate::hex;

pub const ENTRY_LEN: usize = 24;

/// GUIDs in string (RFC 4122 big-endian) order.
pub const GUID_VCEK: &str = "63da758d-e664-4564-adc5-f4b93be8accd";
pub const GUID_VLEK: &str = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";
pub const GUID_ASK: &str = "4ab7b379-bbac-4fe4-a02f-05aef327c782";
pub const GUID_ARK: &str = "c0b406a4-a803-4952-9743-3fb6014cd0ae";

/// What a table entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Ark,
    Ask,
    Vcek,
    Vlek,
    Other,
}

impl CertKind {
    pub fn name(self) -> &'static str {
        match self {
            CertKind::Ark => "ARK",
            CertKind::Ask => "ASK",
            CertKind::Vcek => "VCEK",
            CertKind::Vlek => "VLEK",
            CertKind::Other => "other",
        }
    }
}

/// One entry, its data copied out of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    pub guid: [u8; 16],
    pub kind: CertKind,
    pub data: Vec<u8>,
}

impl CertEntry {
    pub fn guid_string(&self) -> String {
        guid_to_string(&self.guid)
    }
}

/// Format 16 bytes as a GUID string, byte order as stored.
pub fn guid_to_string(g: &[u8; 16]) -> String {
    let h = hex::encode(g);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

/// The same GUID in EFI mixed-endian byte order (first three groups byte-swapped).
fn swap_mixed(g: &[u8; 16]) -> [u8; 16] {
    let mut o = *g;
    o[0..4].reverse();
    o[4..6].reverse();
    o[6..8].reverse();
    o
}

/// Classify a GUID (accepts both RFC 4122 and EFI mixed-endian storage).
pub fn kind_of(g: &[u8; 16]) -> CertKind {
    let s = guid_to_string(g);
    let m = guid_to_string(&swap_mixed(g));
    for (guid, kind) in [
        (GUID_VCEK, CertKind::Vcek),
        (GUID_VLEK, CertKind::Vlek),
        (GUID_ASK, CertKind::Ask),
        (GUID_ARK, CertKind::Ark),
    ] {
        if s == guid || m == guid {
            return kind;
        }
    }
    CertKind::Other
}

/// Why a table is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// No all-zero terminator inside the buffer.
    Unterminated,
    /// Entry `index` points outside the buffer.
    OutOfBounds {
        index: usize,
        offset: u32,
        length: u32,
    },
    /// Entry `index` points into the table itself.
    OverlapsTable { index: usize },
    /// No entries at all.
    Empty,
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Unterminated => write!(f, "certificate table has no all-zero terminator"),
            TableError::OutOfBounds {
                index,
                offset,
                length,
            } => write!(
                f,
                "certificate table entry {index}: offset {offset} + length {length} is outside the buffer"
            ),
            TableError::OverlapsTable { index } => {
                write!(
                    f,
                    "certificate table entry {index} points into the table header"
                )
            }
            TableError::Empty => write!(f, "certificate table is empty"),
        }
    }
}

/// Parse a table. Trailing bytes after the last certificate (page padding) are allowed.
pub fn parse(buf: &[u8]) -> Result<Vec<CertEntry>, TableError> {
    let mut raw_entries = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(e) = pos.checked_add(ENTRY_LEN).and_then(|end| buf.get(pos..end)) else {
            return Err(TableError::Unterminated);
        };
        if e.iter().all(|&b| b == 0) {
            break;
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(e.get(0..16).unwrap_or(&[0; 16]));
        let offset = le32(e.get(16..20));
        let length = le32(e.get(20..24));
        raw_entries.push((guid, offset, length));
        pos += ENTRY_LEN;
    }
    if raw_entries.is_empty() {
        return Err(TableError::Empty);
    }
    let table_end = pos + ENTRY_LEN;
    let mut out = Vec::with_capacity(raw_entries.len());
    for (index, (guid, offset, length)) in raw_entries.into_iter().enumerate() {
        let start = offset as usize;
        let data = start
            .checked_add(length as usize)
            .and_then(|end| buf.get(start..end))
            .ok_or(TableError::OutOfBounds {
                index,
                offset,
                length,
            })?;
        if length > 0 && start < table_end {
            return Err(TableError::OverlapsTable { index });
        }
        out.push(CertEntry {
            guid,
            kind: kind_of(&guid),
            data: data.to_vec(),
        });
    }
    Ok(out)
}

fn le32(b: Option<&[u8]>) -> u32 {
    b.and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// Parse a GUID string into its 16 bytes (string order).
pub fn guid_bytes(s: &str) -> Option<[u8; 16]> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    let v = hex::decode(&h).ok()?;
    v.try_into().ok()
}

/// Build a table (for tests and for writing out what was fetched).
pub fn build(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let header = (entries.len() + 1) * ENTRY_LEN;
    let mut out = vec![0u8; header];
    let mut off = header;
    for (i, (guid, data)) in entries.iter().enumerate() {
        let e = i * ENTRY_LEN;
        if let Some(slot) = out.get_mut(e..e + ENTRY_LEN) {
            slot[0..16].copy_from_slice(guid);
            slot[16..20].copy_from_slice(&(off as u32).to_le_bytes());
            slot[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        }
        off += data.len();
    }
    for (_, data) in entries {
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_kinds() {
        let vcek = guid_bytes(GUID_VCEK).unwrap();
        let ark = guid_bytes(GUID_ARK).unwrap();
        let t = build(&[(vcek, b"abc"), (ark, b"")]);
        let e = parse(&t).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].kind, CertKind::Vcek);
        assert_eq!(e[0].data, b"abc");
        assert_eq!(e[0].guid_string(), GUID_VCEK);
        assert_eq!(e[1].kind, CertKind::Ark);
        assert_eq!(kind_of(&swap_mixed(&vcek)), CertKind::Vcek);
    }

    #[test]
    fn rejects_bad_tables() {
        assert_eq!(parse(&[]), Err(TableError::Unterminated));
        assert_eq!(parse(&[0u8; 24]), Err(TableError::Empty));
        assert_eq!(parse(&[1u8; 47]), Err(TableError::Unterminated));
        let vcek = guid_bytes(GUID_VCEK).unwrap();
        let mut t = build(&[(vcek, b"abcd")]);
        t[20] = 0xff; // length
        t[21] = 0xff;
        t[22] = 0xff;
        t[23] = 0xff;
        assert!(matches!(parse(&t), Err(TableError::OutOfBounds { .. })));
        let mut t = build(&[(vcek, b"abcd")]);
        t[16..20].copy_from_slice(&0xffff_fffeu32.to_le_bytes());
        assert!(matches!(parse(&t), Err(TableError::OutOfBounds { .. })));
        let mut t = build(&[(vcek, b"abcd")]);
        t[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&t), Err(TableError::OverlapsTable { index: 0 }));
    }
}
