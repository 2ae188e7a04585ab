//! The OS package archive: a deterministic writer and a strict, bounded reader.

use crate::model::Manifest;
use std::collections::BTreeSet;
use std::fmt;

/// Name of the manifest entry.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The directory entry that holds kernel and initramfs.
pub const BOOT_DIR: &str = "boot/";

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const EOCD_LEN: usize = 22;
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
/// 1980-01-01 00:00:00 in MS-DOS date/time format.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATE: u16 = 8;
const VERSION_20: u16 = 20;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// MS-DOS directory attribute.
const ATTR_DIRECTORY: u32 = 0x10;

/// Size bounds for untrusted archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest zip accepted, in bytes.
    pub max_archive_bytes: u64,
    /// Largest uncompressed entry.
    pub max_entry_bytes: u64,
    /// Largest sum of uncompressed entry sizes.
    pub max_total_bytes: u64,
    /// Most entries in the central directory.
    pub max_entries: usize,
    /// Largest descriptor JSON accepted by [`crate::verify_package`].
    pub max_descriptor_bytes: u64,
}

impl Default for Limits {
    /// 512 MiB archive, entries and total; 64 entries; 1 MiB descriptor.
    fn default() -> Self {
        Limits {
            max_archive_bytes: 512 << 20,
            max_entry_bytes: 512 << 20,
            max_total_bytes: 512 << 20,
            max_entries: 64,
            max_descriptor_bytes: 1 << 20,
        }
    }
}

/// Why an archive was refused (or could not be written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipError {
    TooLarge {
        what: String,
        size: u64,
        limit: u64,
    },
    Truncated(String),
    Malformed(String),
    BadName(String),
    DuplicateName(String),
    HeaderMismatch {
        name: String,
        field: &'static str,
    },
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    CrcMismatch {
        name: String,
        expected: u32,
        actual: u32,
    },
    UnsupportedMethod {
        name: String,
        method: u16,
    },
    Unsupported(String),
    Corrupt {
        name: String,
        reason: String,
    },
    MissingEntry(String),
    Manifest(String),
}

impl fmt::Display for ZipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipError::TooLarge { what, size, limit } => {
                write!(f, "{what} is {size} bytes, above the limit of {limit}")
            }
            ZipError::Truncated(w) => write!(f, "truncated: {w}"),
            ZipError::Malformed(w) => write!(f, "malformed: {w}"),
            ZipError::BadName(n) => write!(f, "entry name {n:?} is not allowed"),
            ZipError::DuplicateName(n) => write!(f, "entry {n:?} appears more than once"),
            ZipError::HeaderMismatch { name, field } => write!(
                f,
                "entry {name:?}: local header and central directory disagree on {field}"
            ),
            ZipError::SizeMismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "entry {name:?}: size {actual} does not match the recorded {expected}"
            ),
            ZipError::CrcMismatch {
                name,
                expected,
                actual,
            } => write!(
                f,
                "entry {name:?}: CRC-32 {actual:08x} does not match the recorded {expected:08x}"
            ),
            ZipError::UnsupportedMethod { name, method } => write!(
                f,
                "entry {name:?}: compression method {method} is not supported (only Stored and Deflate)"
            ),
            ZipError::Unsupported(w) => write!(f, "unsupported: {w}"),
            ZipError::Corrupt { name, reason } => write!(f, "entry {name:?}: {reason}"),
            ZipError::MissingEntry(n) => {
                write!(f, "the manifest names {n:?}, which is not in the archive")
            }
            ZipError::Manifest(w) => write!(f, "{w}"),
        }
    }
}

impl std::error::Error for ZipError {}

/// What a package archive carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedPackage {
    pub manifest: Manifest,
    pub kernel: Vec<u8>,
    pub initramfs: Vec<u8>,
}

/// Builder and reader of the OS package zip.
pub struct OsPackageArchive;

/// CRC-32 (IEEE 802.3, as zip uses).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// A file name inside `boot/`: non-empty, no path separators, not `.`/`..`, printable.
fn check_file_name(name: &str) -> Result<(), ZipError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(ZipError::BadName(name.to_owned()));
    }
    Ok(())
}

/// An archive path: relative, `/`-separated, no empty, `.` or `..` components, no
/// backslashes or control characters.
fn check_entry_name(name: &str) -> Result<(), ZipError> {
    let bad = || ZipError::BadName(name.to_owned());
    if name.is_empty() || name.starts_with('/') || name.contains('\\') {
        return Err(bad());
    }
    if name.chars().any(char::is_control) {
        return Err(bad());
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    if body.is_empty() {
        return Err(bad());
    }
    for part in body.split('/') {
        if part.is_empty() || part == "." || part == ".." || part.contains(':') && part.len() == 2 {
            return Err(bad());
        }
    }
    Ok(())
}

struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
}

fn u32_of(len: usize, what: &str) -> Result<u32, ZipError> {
    u32::try_from(len).map_err(|_| ZipError::TooLarge {
        what: what.to_owned(),
        size: len as u64,
        limit: u64::from(u32::MAX - 1),
    })
}

impl OsPackageArchive {
    /// Writes the package zip: `boot/`, `boot/<kernel_name>`, `boot/<initramfs_name>`,
    /// `manifest.json`, all Stored with the DOS time 1980-01-01 00:00, no extra fields, no
    /// comment — the same inputs always give the same bytes.
    ///
    /// The manifest's `kernel`/`initramfs` paths are set to `boot/<name>`; its other fields
    /// are written as given. Fails on bad names or sizes beyond zip32 (4 GiB).
    pub fn build(
        kernel_name: &str,
        kernel_bytes: &[u8],
        initramfs_name: &str,
        initramfs_bytes: &[u8],
        manifest: &Manifest,
    ) -> Result<Vec<u8>, ZipError> {
        check_file_name(kernel_name)?;
        check_file_name(initramfs_name)?;
        if kernel_name == initramfs_name {
            return Err(ZipError::DuplicateName(format!("{BOOT_DIR}{kernel_name}")));
        }
        let kernel_path = format!("{BOOT_DIR}{kernel_name}");
        let initramfs_path = format!("{BOOT_DIR}{initramfs_name}");
        let mut m = manifest.clone();
        m.kernel = kernel_path.clone();
        m.initramfs = initramfs_path.clone();
        let manifest_json = m.to_json_bytes();
        let entries = [
            Entry {
                name: BOOT_DIR,
                data: &[],
            },
            Entry {
                name: &kernel_path,
                data: kernel_bytes,
            },
            Entry {
                name: &initramfs_path,
                data: initramfs_bytes,
            },
            Entry {
                name: MANIFEST_NAME,
                data: &manifest_json,
            },
        ];
        let total: usize = entries.iter().map(|e| e.data.len() + e.name.len()).sum();
        let mut out = Vec::with_capacity(total + 4 * (LOCAL_LEN + CENTRAL_LEN) + EOCD_LEN);
        let mut central = Vec::new();
        for e in &entries {
            let offset = u32_of(out.len(), "archive")?;
            let size = u32_of(e.data.len(), e.name)?;
            let crc = crc32(e.data);
            let name_len =
                u16::try_from(e.name.len()).map_err(|_| ZipError::BadName(e.name.to_owned()))?;
            // Local file header.
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            out.extend_from_slice(&VERSION_20.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // flags
            out.extend_from_slice(&METHOD_STORED.to_le_bytes());
            out.extend_from_slice(&DOS_TIME.to_le_bytes());
            out.extend_from_slice(&DOS_DATE.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra length
            out.extend_from_slice(e.name.as_bytes());
            out.extend_from_slice(e.data);
            // Central directory record.
            let attr = if e.name.ends_with('/') {
                ATTR_DIRECTORY
            } else {
                0
            };
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&VERSION_20.to_le_bytes()); // made by: MS-DOS, 2.0
            central.extend_from_slice(&VERSION_20.to_le_bytes()); // needed
            central.extend_from_slice(&0u16.to_le_bytes());
            central.extend_from_slice(&METHOD_STORED.to_le_bytes());
            central.extend_from_slice(&DOS_TIME.to_le_bytes());
            central.extend_from_slice(&DOS_DATE.to_le_bytes());
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&name_len.to_le_bytes());
            central.extend_from_slice(&0u16.to_le_bytes()); // extra
            central.extend_from_slice(&0u16.to_le_bytes()); // comment
            central.extend_from_slice(&0u16.to_le_bytes()); // disk
            central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            central.extend_from_slice(&attr.to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(e.name.as_bytes());
        }
        let cd_offset = u32_of(out.len(), "archive")?;
        let cd_size = u32_of(central.len(), "central directory")?;
        out.extend_from_slice(&central);
        u32_of(out.len(), "archive")?;
        let count = 4u16;
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        Ok(out)
    }

    /// Reads a package zip strictly and returns manifest, kernel and initramfs.
    ///
    /// Refused: archives or entries above `limits`; zip64, multi-disk, encrypted entries;
    /// names that are absolute, contain `..`/`.`/empty components or backslashes;
    /// duplicate names; local headers that disagree with the central directory; entries
    /// that overlap or run out of bounds; size or CRC-32 mismatches; compression methods
    /// other than Stored and Deflate; a missing or invalid `manifest.json`; a manifest
    /// naming files that are not in the archive (or are directories).
    pub fn parse(
        bytes: &[u8],
        limits: impl std::borrow::Borrow<Limits>,
    ) -> Result<ExtractedPackage, ZipError> {
        let entries = read_entries(bytes, limits.borrow())?;
        let find = |name: &str| entries.iter().find(|e| e.name == name);
        let manifest_entry =
            find(MANIFEST_NAME).ok_or_else(|| ZipError::MissingEntry(MANIFEST_NAME.into()))?;
        let manifest = Manifest::from_json(&manifest_entry.data)
            .map_err(|e| ZipError::Manifest(e.to_string()))?;
        manifest
            .validate()
            .map_err(|e| ZipError::Manifest(e.to_string()))?;
        let file = |path: &str| -> Result<Vec<u8>, ZipError> {
            match find(path) {
                Some(e) if !e.name.ends_with('/') => Ok(e.data.clone()),
                _ => Err(ZipError::MissingEntry(path.to_owned())),
            }
        };
        let kernel = file(&manifest.kernel)?;
        let initramfs = file(&manifest.initramfs)?;
        Ok(ExtractedPackage {
            manifest,
            kernel,
            initramfs,
        })
    }

    /// Names of the entries, in central-directory order, after the same strict checks as
    /// [`OsPackageArchive::parse`] (for inspection tools).
    pub fn entry_names(
        bytes: &[u8],
        limits: impl std::borrow::Borrow<Limits>,
    ) -> Result<Vec<String>, ZipError> {
        Ok(read_entries(bytes, limits.borrow())?
            .into_iter()
            .map(|e| e.name)
            .collect())
    }
}

struct ReadEntry {
    name: String,
    data: Vec<u8>,
}

fn rd16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn rd32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

struct CentralRecord {
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u32,
    usize_: u32,
    offset: u32,
}

fn read_entries(bytes: &[u8], limits: &Limits) -> Result<Vec<ReadEntry>, ZipError> {
    let t = |w: &str| ZipError::Truncated(w.to_owned());
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(ZipError::TooLarge {
            what: "archive".into(),
            size: bytes.len() as u64,
            limit: limits.max_archive_bytes,
        });
    }
    if bytes.len() < EOCD_LEN {
        return Err(t("shorter than an end-of-central-directory record"));
    }
    // The EOCD record: its comment must run exactly to the end of the file.
    let earliest = bytes.len().saturating_sub(EOCD_LEN + usize::from(u16::MAX));
    let mut eocd = None;
    let mut pos = bytes.len() - EOCD_LEN;
    loop {
        if rd32(bytes, pos) == Some(EOCD_SIG) {
            let comment_len = rd16(bytes, pos + 20).map(usize::from);
            if comment_len == Some(bytes.len() - pos - EOCD_LEN) {
                eocd = Some(pos);
                break;
            }
        }
        if pos == earliest {
            break;
        }
        pos -= 1;
    }
    let eocd = eocd.ok_or_else(|| t("no end-of-central-directory record"))?;
    let disk = rd16(bytes, eocd + 4).ok_or_else(|| t("EOCD"))?;
    let cd_disk = rd16(bytes, eocd + 6).ok_or_else(|| t("EOCD"))?;
    let n_disk = rd16(bytes, eocd + 8).ok_or_else(|| t("EOCD"))?;
    let n_total = rd16(bytes, eocd + 10).ok_or_else(|| t("EOCD"))?;
    let cd_size = rd32(bytes, eocd + 12).ok_or_else(|| t("EOCD"))?;
    let cd_offset = rd32(bytes, eocd + 16).ok_or_else(|| t("EOCD"))?;
    if n_total == u16::MAX || cd_size == u32::MAX || cd_offset == u32::MAX {
        return Err(ZipError::Unsupported("zip64 archives".into()));
    }
    if disk != 0 || cd_disk != 0 || n_disk != n_total {
        return Err(ZipError::Unsupported("multi-disk archives".into()));
    }
    if usize::from(n_total) > limits.max_entries {
        return Err(ZipError::TooLarge {
            what: "entry count".into(),
            size: u64::from(n_total),
            limit: limits.max_entries as u64,
        });
    }
    let cd_start = cd_offset as usize;
    let cd_end = cd_start
        .checked_add(cd_size as usize)
        .ok_or_else(|| ZipError::Malformed("central directory bounds overflow".into()))?;
    if cd_end != eocd {
        return Err(ZipError::Malformed(
            "central directory does not end where the end record starts".into(),
        ));
    }
    // Central directory.
    let mut records = Vec::with_capacity(usize::from(n_total));
    let mut names = BTreeSet::new();
    let mut p = cd_start;
    for _ in 0..n_total {
        if rd32(bytes, p) != Some(CENTRAL_SIG) || p + CENTRAL_LEN > cd_end {
            return Err(ZipError::Malformed(format!(
                "bad central directory record at offset {p}"
            )));
        }
        let g16 = |o: usize| rd16(bytes, p + o).ok_or_else(|| t("central directory"));
        let g32 = |o: usize| rd32(bytes, p + o).ok_or_else(|| t("central directory"));
        let flags = g16(8)?;
        let method = g16(10)?;
        let crc = g32(16)?;
        let csize = g32(20)?;
        let usize_ = g32(24)?;
        let name_len = usize::from(g16(28)?);
        let extra_len = usize::from(g16(30)?);
        let comment_len = usize::from(g16(32)?);
        let disk_start = g16(34)?;
        let offset = g32(42)?;
        let name_start = p + CENTRAL_LEN;
        let next = name_start + name_len + extra_len + comment_len;
        if next > cd_end {
            return Err(t("central directory record runs past its end"));
        }
        let raw_name = &bytes[name_start..name_start + name_len];
        let name = std::str::from_utf8(raw_name)
            .map_err(|_| ZipError::BadName(String::from_utf8_lossy(raw_name).into_owned()))?
            .to_owned();
        check_entry_name(&name)?;
        if disk_start != 0 {
            return Err(ZipError::Unsupported("multi-disk archives".into()));
        }
        if flags & FLAG_ENCRYPTED != 0 {
            return Err(ZipError::Unsupported(format!("encrypted entry {name:?}")));
        }
        if csize == u32::MAX || usize_ == u32::MAX || offset == u32::MAX {
            return Err(ZipError::Unsupported(format!("zip64 entry {name:?}")));
        }
        if method != METHOD_STORED && method != METHOD_DEFLATE {
            return Err(ZipError::UnsupportedMethod { name, method });
        }
        if u64::from(usize_) > limits.max_entry_bytes {
            return Err(ZipError::TooLarge {
                what: format!("entry {name:?}"),
                size: u64::from(usize_),
                limit: limits.max_entry_bytes,
            });
        }
        if !names.insert(name.clone()) {
            return Err(ZipError::DuplicateName(name));
        }
        records.push(CentralRecord {
            name,
            flags,
            method,
            crc,
            csize,
            usize_,
            offset,
        });
        p = next;
    }
    if p != cd_end {
        return Err(ZipError::Malformed(
            "central directory size does not match its records".into(),
        ));
    }
    let total: u64 = records.iter().map(|r| u64::from(r.usize_)).sum();
    if total > limits.max_total_bytes {
        return Err(ZipError::TooLarge {
            what: "uncompressed content".into(),
            size: total,
            limit: limits.max_total_bytes,
        });
    }
    // Local headers and data: in bounds, before the central directory, not overlapping.
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(records.len());
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let name = r.name.clone();
        let lp = r.offset as usize;
        if rd32(bytes, lp) != Some(LOCAL_SIG) || lp + LOCAL_LEN > cd_start {
            return Err(ZipError::Malformed(format!(
                "entry {name:?}: no local header at offset {lp}"
            )));
        }
        let l16 = |o: usize| rd16(bytes, lp + o).ok_or_else(|| t("local header"));
        let l32 = |o: usize| rd32(bytes, lp + o).ok_or_else(|| t("local header"));
        let mismatch = |field| ZipError::HeaderMismatch {
            name: name.clone(),
            field,
        };
        let lflags = l16(6)?;
        // Bit 11 (UTF-8) may differ harmlessly; everything else must agree.
        if (lflags ^ r.flags) & !FLAG_UTF8 != 0 {
            return Err(mismatch("flags"));
        }
        if l16(8)? != r.method {
            return Err(mismatch("compression method"));
        }
        let (lcrc, lcsize, lusize) = (l32(14)?, l32(18)?, l32(22)?);
        let deferred = r.flags & FLAG_DATA_DESCRIPTOR != 0;
        let zero_deferred = deferred && lcrc == 0 && lcsize == 0 && lusize == 0;
        if !zero_deferred {
            if lcrc != r.crc {
                return Err(mismatch("CRC-32"));
            }
            if lcsize != r.csize {
                return Err(mismatch("compressed size"));
            }
            if lusize != r.usize_ {
                return Err(mismatch("uncompressed size"));
            }
        }
        let lname_len = usize::from(l16(26)?);
        let lextra_len = usize::from(l16(28)?);
        let lname_start = lp + LOCAL_LEN;
        let lname = bytes
            .get(lname_start..lname_start + lname_len)
            .ok_or_else(|| t("local header name"))?;
        if lname != r.name.as_bytes() {
            return Err(mismatch("name"));
        }
        let data_start = lname_start + lname_len + lextra_len;
        let data_end = data_start + r.csize as usize;
        if data_end > cd_start {
            return Err(ZipError::Truncated(format!(
                "entry {name:?}: data runs past the central directory"
            )));
        }
        let mut span_end = data_end;
        if deferred {
            // Optional data descriptor: [signature] crc csize usize.
            let mut q = data_end;
            if rd32(bytes, q) == Some(DATA_DESCRIPTOR_SIG) {
                q += 4;
            }
            match (rd32(bytes, q), rd32(bytes, q + 4), rd32(bytes, q + 8)) {
                (Some(c), Some(cs), Some(us)) if q + 12 <= cd_start => {
                    if c != r.crc || cs != r.csize || us != r.usize_ {
                        return Err(mismatch("data descriptor"));
                    }
                    span_end = q + 12;
                }
                _ => {
                    return Err(ZipError::Truncated(format!(
                        "entry {name:?}: data descriptor"
                    )));
                }
            }
        }
        spans.push((lp, span_end));
        let compressed = &bytes[data_start..data_end];
        let data = match r.method {
            METHOD_STORED => {
                if r.csize != r.usize_ {
                    return Err(ZipError::SizeMismatch {
                        name,
                        expected: u64::from(r.usize_),
                        actual: u64::from(r.csize),
                    });
                }
                compressed.to_vec()
            }
            _ => inflate(compressed, r.usize_ as usize, &name)?,
        };
        if data.len() != r.usize_ as usize {
            return Err(ZipError::SizeMismatch {
                name,
                expected: u64::from(r.usize_),
                actual: data.len() as u64,
            });
        }
        let actual = crc32(&data);
        if actual != r.crc {
            return Err(ZipError::CrcMismatch {
                name,
                expected: r.crc,
                actual,
            });
        }
        if r.name.ends_with('/') && !data.is_empty() {
            return Err(ZipError::Corrupt {
                name,
                reason: "a directory entry with content".into(),
            });
        }
        out.push(ReadEntry { name: r.name, data });
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(ZipError::Malformed("entries overlap".into()));
        }
    }
    Ok(out)
}

/// Raw Deflate (zip method 8), producing exactly `expected` bytes or failing.
fn inflate(data: &[u8], expected: usize, name: &str) -> Result<Vec<u8>, ZipError> {
    // One byte of slack so that output longer than recorded is detected, not truncated.
    let limit = expected.saturating_add(1);
    match miniz_oxide::inflate::decompress_to_vec_with_limit(data, limit) {
        Ok(v) => Ok(v),
        Err(e) => Err(match e.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => ZipError::SizeMismatch {
                name: name.to_owned(),
                expected: expected as u64,
                actual: limit as u64,
            },
            status => ZipError::Corrupt {
                name: name.to_owned(),
                reason: format!("invalid Deflate data ({status:?})"),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn entry_names() {
        for bad in [
            "/abs", "a/../b", "..", "a\\b", "", "a//b", "./a", "C:/x", "a\u{0}", "/",
        ] {
            assert!(check_entry_name(bad).is_err(), "{bad:?}");
        }
        for good in ["boot/", "boot/kernel", "manifest.json", "a/b/c.txt", "x..y"] {
            assert!(check_entry_name(good).is_ok(), "{good:?}");
        }
    }
}
