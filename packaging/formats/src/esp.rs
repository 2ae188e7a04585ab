//! Deterministic EFI System Partition disk images.
//!
//! Crates: the protective MBR, both GPT headers and the partition entry arrays are written
//! by the `gpt` crate (`write_gpt`; byte-identical to the hand-written table it replaced,
//! pinned by `tests::image_bytes_are_pinned`). The FAT32 volume stays hand-written: the
//! `fatfs` crate (0.3.6, its newest release on crates.io) was tried against this module's
//! judges (format_volume with fixed volume id/label/geometry, a fixed `TimeProvider`, sorted
//! insertion) and falls short:
//! * fsck.fat -n rejects every image with a subdirectory: 0.3.6 writes VFAT long-name
//!   entries for `.` and `..` ("Expected a valid '.' entry in this slot", "Bad short file
//!   name (..)") and points `..` of directories in the root at cluster 2 instead of 0
//!   ("share clusters ... first is FAT32 root dir"): `judges_accept_the_image` and the
//!   100 MiB case of `tests/it/esp.rs` failed (the empty volume, determinism, seed-only
//!   differences and error messages passed). Both are fixed only on upstream's
//!   unreleased master (rafalh/rust-fatfs #99, #100, #117). With those bytes patched back
//!   by hand every judge passed, but then the FAT code is ours again.
//! * It rejects names FAT allows and this module documents: characters beyond U+FFFF
//!   ("\u{1F431}.txt": "unsupported characters"), and it counts the 255 limit in UTF-8 bytes
//!   (200 x "ü", 200 UTF-16 units: "File name too long").
//! * It cannot pin what we pin: always 8 reserved sectors (we use 32), BPB_HiddSec always 0
//!   (we record the partition's LBA 2048), OEM name and boot code of its own, no timestamp
//!   on the label entry, a long-name entry for every name (also `EFI`, `BOOTX64.EFI`, so
//!   directories need more entries than our size rules count), `NAME~1`..`~4` then
//!   checksum short names (ours count up), directories grown cluster by cluster between
//!   files. `FsOptions::time_provider` wants a `&'static` provider (a leak or global per
//!   build), and `create_file` of an 8.3 name equal to an earlier generated `NAME~N` opens
//!   that file instead of failing, so insertion must put 8.3 names first.
//! * Speed was no reason either way: a 64 MiB image with a 12 MiB loader took 40-50 ms
//!   here and 70-90 ms with fatfs (release build).
//!
//! [`build_esp_image`] lays out a raw disk: a protective MBR, a GPT (UEFI spec, chapter 5)
//! with a single EFI System Partition at LBA 2048, formatted FAT32 (Microsoft FAT
//! specification) and holding the given files, e.g. `EFI/BOOT/BOOTX64.EFI` so that UEFI
//! firmware boots it as removable media. Nothing is read from the host (no clock, no random
//! numbers, no file system order): every byte is a function of the arguments, so two builds
//! from the same inputs are identical.
//!
//! Layout choices, all fixed:
//! * 512-byte sectors; the disk is a whole number of MiB; the partition spans
//!   `[1 MiB, size - 1 MiB)`, so both ends are MiB-aligned and the backup GPT fits behind it.
//! * FAT32 with one sector per cluster, 32 reserved sectors (boot sector, FSInfo at 1,
//!   backup boot sector at 6 and backup FSInfo at 7), two FATs of the minimal size, root
//!   directory at cluster 2.
//! * Directories and files are allocated contiguously, in a depth-first walk of the tree
//!   with the entries of every directory sorted by their 8.3 name; every entry carries the
//!   same timestamp ([`EspOptions::timestamp`]).
//! * Names: a path component that is an 8.3 name without lowercase letters (`EFI`,
//!   `BOOTX64.EFI`) gets a plain short entry. Any other valid FAT name (lowercase, longer,
//!   spaces, non-ASCII; not `"*/:<>?\|` or control characters, at most 255 UTF-16 units)
//!   also gets VFAT long-name entries with its exact spelling, and a short name that is its
//!   uppercase form if that is an 8.3 name, else the first free `NAME~N.EXT` in entry order.
//!   Names are unique case-insensitively, and a directory must be spelled the same in every
//!   path, so the image never depends on the order of the files.

use anyhow::{Context, Result, anyhow, bail, ensure};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Bytes per sector, on the disk and in the file system.
pub const SECTOR_SIZE: u64 = 512;
/// First sector of the EFI System Partition (1 MiB).
pub const PARTITION_START_LBA: u64 = 2048;
/// Byte offset of the EFI System Partition in the image (for `mtools -i disk.img@@1M`).
pub const PARTITION_OFFSET: u64 = PARTITION_START_LBA * SECTOR_SIZE;
/// Smallest image [`build_esp_image`] picks when [`EspOptions::size_mib`] is `None`.
pub const DEFAULT_MIN_SIZE_MIB: u32 = 64;
/// Largest image size accepted: the image is built in memory, and with one sector per
/// cluster this stays far below the FAT32 cluster limit.
pub const MAX_SIZE_MIB: u32 = 4096;
/// GPT partition type of an EFI System Partition, C12A7328-F81F-11D2-BA4B-00A0C93EC93B, in
/// the byte order of its text form (see [`guid_to_string`]).
pub const ESP_TYPE_GUID: [u8; 16] = [
    0xC1, 0x2A, 0x73, 0x28, 0xF8, 0x1F, 0x11, 0xD2, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];
/// GPT partition name of the ESP.
pub const PARTITION_NAME: &str = "EFI System Partition";

const SECTOR: usize = SECTOR_SIZE as usize;
const SECTORS_PER_MIB: u64 = 2048;

const RESERVED_SECTORS: u32 = 32;
const FAT_COUNT: u32 = 2;
const FSINFO_SECTOR: u32 = 1;
const BACKUP_BOOT_SECTOR: u32 = 6;
const ROOT_CLUSTER: u32 = 2;
const MEDIA: u8 = 0xF8;
/// Fewer clusters than this and every driver treats the volume as FAT12/FAT16.
const MIN_FAT32_CLUSTERS: u32 = 65525;
const FAT_END_OF_CHAIN: u32 = 0x0FFF_FFFF;
const DIR_ENTRY_SIZE: usize = 32;
/// A FAT directory holds at most 65536 entries (including `.`, `..` and the label).
const MAX_DIR_ENTRIES: usize = 65536;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;

/// One file to put on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    /// `/`-separated path from the root of the partition, e.g. `EFI/BOOT/BOOTX64.EFI`
    /// (see the module documentation for the names allowed). Intermediate directories are
    /// created as needed.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Everything besides the files that goes into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspOptions {
    /// GPT disk GUID, in the byte order of its text form (see [`guid_to_string`]); written
    /// to disk in the GPT's mixed-endian encoding.
    pub disk_guid: [u8; 16],
    /// Unique GUID of the EFI System Partition (what `PARTUUID=` names), same byte order.
    pub partition_guid: [u8; 16],
    /// FAT volume serial number (shown as `XXXX-XXXX` by blkid and friends).
    pub volume_id: u32,
    /// FAT volume label, at most 11 characters of the 8.3 character set plus spaces; stored
    /// uppercase. Empty means no label (`NO NAME` in the boot sector).
    pub volume_label: String,
    /// Unix seconds used as creation, modification and access time of every directory
    /// entry; clamped to the DOS range 1980-01-01 .. 2107-12-31.
    pub timestamp: u64,
    /// Disk size in MiB. `None`: the smallest size of at least [`DEFAULT_MIN_SIZE_MIB`]
    /// whose partition could hold the files twice (room to write an updated boot loader
    /// next to the current one).
    pub size_mib: Option<u32>,
}

impl EspOptions {
    /// Options whose GUIDs and volume id are derived from `seed`: the disk and partition
    /// GUIDs are the two halves of SHA-256("nekos-esp:" + seed) with the RFC 4122 version 4
    /// and variant bits set, the volume id is the first four bytes (little endian) of
    /// SHA-256("nekos-esp-volume-id:" + seed). Label `NEKOS-ESP`, default size.
    pub fn from_seed(seed: &str, timestamp: u64) -> Self {
        let digest = Sha256::digest(format!("nekos-esp:{seed}").as_bytes());
        let mut disk_guid = [0u8; 16];
        let mut partition_guid = [0u8; 16];
        disk_guid.copy_from_slice(&digest[..16]);
        partition_guid.copy_from_slice(&digest[16..]);
        let volume = Sha256::digest(format!("nekos-esp-volume-id:{seed}").as_bytes());
        EspOptions {
            disk_guid: random_guid_bits(disk_guid),
            partition_guid: random_guid_bits(partition_guid),
            volume_id: u32::from_le_bytes([volume[0], volume[1], volume[2], volume[3]]),
            volume_label: "NEKOS-ESP".to_string(),
            timestamp,
            size_mib: None,
        }
    }
}

/// Sets the RFC 4122 version (4, random) and variant (10xx) bits.
fn random_guid_bits(mut guid: [u8; 16]) -> [u8; 16] {
    guid[6] = (guid[6] & 0x0F) | 0x40;
    guid[8] = (guid[8] & 0x3F) | 0x80;
    guid
}

/// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (uppercase) of a GUID in text byte order.
pub fn guid_to_string(guid: &[u8; 16]) -> String {
    let h = hex::encode_upper(guid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (any case) into text byte order.
pub fn parse_guid(text: &str) -> Result<[u8; 16]> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    ensure!(
        lengths == [8, 4, 4, 4, 12],
        "'{text}' is not a GUID (XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)"
    );
    let mut guid = [0u8; 16];
    hex::decode_to_slice(groups.concat(), &mut guid)
        .map_err(|e| anyhow!("'{text}' is not a GUID: {e}"))?;
    Ok(guid)
}

/// Builds the disk image in memory. See the module documentation for the layout.
pub fn build_esp_image(files: &[EspFile], opts: &EspOptions) -> Result<Vec<u8>> {
    let label = volume_label(&opts.volume_label)?;
    let mut root = build_tree(files)?;
    let needed = root.size_in_clusters(true, label.is_some())?;

    let geometry = match opts.size_mib {
        Some(mib) => {
            let geometry = Geometry::new(mib)?;
            ensure!(
                needed <= u64::from(geometry.clusters),
                "the files need {needed} clusters of {SECTOR_SIZE} bytes ({} MiB) but a {mib} MiB image only has {} (at least {} MiB are needed)",
                div_ceil(needed * SECTOR_SIZE, 1 << 20),
                geometry.clusters,
                smallest_size_mib(needed)?,
            );
            geometry
        }
        None => Geometry::new(default_size_mib(needed)?)?,
    };

    let mut next_cluster = ROOT_CLUSTER;
    root.allocate(&mut next_cluster);
    let used = next_cluster - ROOT_CLUSTER;
    let free = geometry.clusters - used;

    let total = usize::try_from(geometry.total_sectors * SECTOR_SIZE)
        .context("image too large for this host")?;
    let mut image = Vec::new();
    image
        .try_reserve_exact(total)
        .map_err(|e| anyhow!("cannot allocate a {} MiB image: {e}", total >> 20))?;
    image.resize(total, 0);

    write_gpt(&mut image, &geometry, opts)?;

    let part_start = usize::try_from(PARTITION_OFFSET).context("partition offset")?;
    let part_len = geometry.partition_sectors as usize * SECTOR;
    let partition = image
        .get_mut(part_start..part_start + part_len)
        .ok_or_else(|| anyhow!("internal error: partition outside the image"))?;
    let time = DosTime::from_unix(opts.timestamp);
    let next_free = if free > 0 { next_cluster } else { 0xFFFF_FFFF };
    write_fat32(
        partition,
        &geometry,
        &root,
        label.as_ref(),
        opts.volume_id,
        time,
        free,
        next_free,
    )?;
    Ok(image)
}

// ---------------------------------------------------------------------------------------
// Geometry

/// Disk and FAT32 layout for one disk size.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    total_sectors: u64,
    partition_sectors: u32,
    fat_sectors: u32,
    clusters: u32,
}

impl Geometry {
    fn new(size_mib: u32) -> Result<Geometry> {
        ensure!(
            size_mib <= MAX_SIZE_MIB,
            "an image of {size_mib} MiB is larger than the supported {MAX_SIZE_MIB} MiB"
        );
        let geometry = Self::compute(size_mib);
        match geometry {
            Some(g) if g.clusters >= MIN_FAT32_CLUSTERS => Ok(g),
            _ => bail!(
                "an image of {size_mib} MiB is too small for FAT32 (at least {} MiB are needed for {MIN_FAT32_CLUSTERS} clusters)",
                min_fat32_size_mib()
            ),
        }
    }

    /// The layout, or `None` when `size_mib` leaves no room for a file system at all.
    fn compute(size_mib: u32) -> Option<Geometry> {
        // [1 MiB, size - 1 MiB): the first MiB holds the MBR and primary GPT, the last one
        // the backup GPT.
        let partition_mib = size_mib.checked_sub(2).filter(|&m| m > 0)?;
        let partition_sectors = partition_mib.checked_mul(SECTORS_PER_MIB as u32)?;
        // Smallest FAT such that the entries of all clusters (plus the two reserved ones)
        // fit: 4 * (clusters + 2) <= 512 * fat, clusters = partition - reserved - 2 * fat.
        let covered = u64::from(partition_sectors).checked_sub(u64::from(RESERVED_SECTORS) - 2)?;
        let fat_sectors = u32::try_from(div_ceil(
            4 * covered,
            SECTOR_SIZE + 4 * u64::from(FAT_COUNT),
        ))
        .ok()?;
        let clusters = partition_sectors
            .checked_sub(RESERVED_SECTORS)?
            .checked_sub(FAT_COUNT * fat_sectors)?;
        Some(Geometry {
            total_sectors: u64::from(size_mib) * SECTORS_PER_MIB,
            partition_sectors,
            fat_sectors,
            clusters,
        })
    }

    fn first_data_sector(&self) -> u32 {
        RESERVED_SECTORS + FAT_COUNT * self.fat_sectors
    }
}

fn min_fat32_size_mib() -> u32 {
    (3..=MAX_SIZE_MIB)
        .find(|&mib| Geometry::compute(mib).is_some_and(|g| g.clusters >= MIN_FAT32_CLUSTERS))
        .unwrap_or(MAX_SIZE_MIB)
}

/// Smallest valid size whose partition has `clusters` clusters.
fn smallest_size_mib(clusters: u64) -> Result<u32> {
    let start = min_fat32_size_mib();
    (start..=MAX_SIZE_MIB)
        .find(|&mib| Geometry::compute(mib).is_some_and(|g| u64::from(g.clusters) >= clusters))
        .ok_or_else(|| {
            anyhow!(
                "the files need {} MiB, more than the supported {MAX_SIZE_MIB} MiB",
                div_ceil(clusters * SECTOR_SIZE, 1 << 20)
            )
        })
}

fn default_size_mib(needed: u64) -> Result<u32> {
    let with_headroom = needed.saturating_mul(2);
    smallest_size_mib(with_headroom)
        .map(|mib| mib.max(DEFAULT_MIN_SIZE_MIB))
        .context("no default image size fits the files twice; set size_mib")
}

fn div_ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

// ---------------------------------------------------------------------------------------
// Names and the directory tree

/// Characters allowed in a short name besides A-Z and 0-9.
const SHORT_NAME_SPECIALS: &str = "!#$%&'()-@^_`{}~";
/// Characters never allowed in a file name (besides control characters).
const FORBIDDEN_IN_NAMES: &str = "\"*/:<>?\\|";
/// Longest long file name, in UTF-16 code units.
const MAX_LONG_NAME: usize = 255;
/// UTF-16 code units per long-name directory entry.
const LFN_UNITS_PER_ENTRY: usize = 13;
const ATTR_LONG_NAME: u8 = 0x0F;

/// The 11-byte directory-entry form (`BOOTX64 EFI`) of a component that is an 8.3 name in
/// any letter case, or why it is not one.
fn short_name(component: &str) -> std::result::Result<[u8; 11], String> {
    if component.is_empty() {
        return Err("empty name".to_string());
    }
    if component == "." || component == ".." {
        return Err(format!("'{component}' is not a name"));
    }
    let (base, ext) = component.split_once('.').unwrap_or((component, ""));
    if ext.contains('.') {
        return Err(format!("'{component}' has more than one '.'"));
    }
    if base.is_empty() || (component.ends_with('.')) {
        return Err(format!(
            "'{component}' has an empty name or extension around '.'"
        ));
    }
    if let Some(c) = component
        .chars()
        .find(|&c| !(c == '.' || c.is_ascii_alphanumeric() || SHORT_NAME_SPECIALS.contains(c)))
    {
        return Err(format!("'{component}' contains '{c}'"));
    }
    if base.len() > 8 || ext.len() > 3 {
        return Err(format!("'{component}' is longer than 8.3"));
    }
    let mut name = [b' '; 11];
    for (slot, b) in name.iter_mut().zip(base.bytes()) {
        *slot = b.to_ascii_uppercase();
    }
    for (slot, b) in name[8..].iter_mut().zip(ext.bytes()) {
        *slot = b.to_ascii_uppercase();
    }
    Ok(name)
}

/// Checks that `component` can be a FAT file name (as a short name or a VFAT long name).
fn check_name(component: &str) -> std::result::Result<(), String> {
    if component.is_empty() {
        return Err("empty path component (leading, trailing or doubled '/')".to_string());
    }
    if component == "." || component == ".." {
        return Err(format!("'{component}' is not allowed in a path"));
    }
    if component.ends_with('.') || component.ends_with(' ') {
        return Err(format!(
            "'{component}' ends with '.' or a space, which FAT drivers strip"
        ));
    }
    if let Some(c) = component
        .chars()
        .find(|&c| c.is_control() || FORBIDDEN_IN_NAMES.contains(c))
    {
        return Err(format!(
            "'{component}' contains {c:?}, which is not allowed in a FAT file name"
        ));
    }
    let units = component.encode_utf16().count();
    if units > MAX_LONG_NAME {
        return Err(format!(
            "'{}…' is {units} UTF-16 units long; FAT allows {MAX_LONG_NAME}",
            component.chars().take(16).collect::<String>()
        ));
    }
    Ok(())
}

/// FAT compares names case-insensitively: the key under which a name is unique, and by
/// which directory entries are sorted.
fn name_key(component: &str) -> String {
    component.chars().flat_map(char::to_uppercase).collect()
}

/// The short name of a name that does not need a long-name entry: an 8.3 name without
/// lowercase letters.
fn exact_short_name(component: &str) -> Option<[u8; 11]> {
    short_name(component)
        .ok()
        .filter(|_| !component.bytes().any(|b| b.is_ascii_lowercase()))
}

/// The `NAME~N.EXT` short names of a long name: the base (without spaces, dots and leading
/// periods, other characters invalid in short names as `_`) cut so that `~N` fits.
fn numbered_short_name(long: &str, n: u32) -> [u8; 11] {
    let squeezed: String = long.chars().filter(|&c| c != ' ').collect();
    let squeezed = squeezed.trim_start_matches('.');
    let (base, ext) = squeezed.rsplit_once('.').unwrap_or((squeezed, ""));
    let map = |c: char| {
        if c.is_ascii_alphanumeric() || SHORT_NAME_SPECIALS.contains(c) {
            c.to_ascii_uppercase() as u8
        } else {
            b'_'
        }
    };
    let mut base: Vec<u8> = base.chars().filter(|&c| c != '.').map(map).collect();
    if base.is_empty() {
        base.push(b'_');
    }
    let tail = format!("~{n}");
    base.truncate(8usize.saturating_sub(tail.len()));
    base.extend_from_slice(tail.as_bytes());
    let mut name = [b' '; 11];
    for (slot, b) in name.iter_mut().zip(base) {
        *slot = b;
    }
    for (slot, b) in name[8..].iter_mut().zip(ext.chars().map(map)) {
        *slot = b;
    }
    name
}

/// The checksum of a short name that long-name entries carry.
fn short_name_checksum(name: &[u8; 11]) -> u8 {
    name.iter().fold(0u8, |sum, &b| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(b)
    })
}

/// The label as the 11 bytes stored in the boot sector and the root directory, or `None`
/// for an empty label.
fn volume_label(label: &str) -> Result<Option<[u8; 11]>> {
    if label.is_empty() {
        return Ok(None);
    }
    ensure!(
        label.len() <= 11,
        "volume label '{label}' is longer than 11 characters"
    );
    ensure!(
        !label.starts_with(' '),
        "volume label '{label}' starts with a space"
    );
    if let Some(c) = label
        .chars()
        .find(|&c| !(c == ' ' || c.is_ascii_alphanumeric() || SHORT_NAME_SPECIALS.contains(c)))
    {
        bail!("volume label '{label}' contains '{c}', which is not allowed in a FAT label");
    }
    let mut out = [b' '; 11];
    for (slot, b) in out.iter_mut().zip(label.bytes()) {
        *slot = b.to_ascii_uppercase();
    }
    Ok(Some(out))
}

#[derive(Debug, Default)]
struct DirNode<'a> {
    /// Children by [`name_key`], hence sorted by it.
    children: BTreeMap<String, Child<'a>>,
    first_cluster: u32,
    clusters: u32,
}

#[derive(Debug)]
struct Child<'a> {
    /// The name as given.
    name: String,
    /// Long-name entries to write (UTF-16), for names that are not uppercase 8.3 names.
    long: Option<Vec<u16>>,
    /// Assigned by [`DirNode::assign_short_names`] when `long` is set.
    short: [u8; 11],
    node: Node<'a>,
}

#[derive(Debug)]
enum Node<'a> {
    Dir(DirNode<'a>),
    File { bytes: &'a [u8], first_cluster: u32 },
}

impl<'a> Child<'a> {
    fn new(name: &str, node: Node<'a>) -> Child<'a> {
        let exact = exact_short_name(name);
        Child {
            name: name.to_string(),
            long: if exact.is_some() {
                None
            } else {
                Some(name.encode_utf16().collect())
            },
            short: exact.unwrap_or([b' '; 11]),
            node,
        }
    }

    /// Directory entries: the long-name ones, then the short one.
    fn entry_count(&self) -> usize {
        1 + self
            .long
            .as_ref()
            .map_or(0, |l| l.len().div_ceil(LFN_UNITS_PER_ENTRY))
    }
}

fn build_tree(files: &[EspFile]) -> Result<DirNode<'_>> {
    let mut root = DirNode::default();
    for file in files {
        let path = file.path.as_str();
        ensure!(
            u32::try_from(file.bytes.len()).is_ok(),
            "ESP file '{path}' is {} bytes; FAT32 files must be smaller than 4 GiB",
            file.bytes.len()
        );
        let components: Vec<&str> = path.split('/').collect();
        for component in &components {
            check_name(component)
                .map_err(|why| anyhow!("ESP file '{path}' is not a valid FAT path: {why}"))?;
        }
        let Some((leaf, parents)) = components.split_last() else {
            bail!("ESP file path is empty");
        };
        let mut dir = &mut root;
        for (depth, name) in parents.iter().enumerate() {
            let prefix = components[..=depth].join("/");
            let child = dir
                .children
                .entry(name_key(name))
                .or_insert_with(|| Child::new(name, Node::Dir(DirNode::default())));
            // One spelling per directory, so that the image does not depend on file order.
            ensure!(
                child.name == *name,
                "ESP file '{path}' spells directory '{prefix}' differently from another file ('{}'); FAT names are case-insensitive",
                child.name
            );
            match &mut child.node {
                Node::Dir(d) => dir = d,
                Node::File { .. } => bail!(
                    "ESP file '{path}' needs a directory '{prefix}', but '{prefix}' is a file"
                ),
            }
        }
        match dir.children.get(&name_key(leaf)) {
            Some(Child {
                node: Node::Dir(_), ..
            }) => bail!("ESP file '{path}' is also a directory holding other files"),
            Some(Child { name, .. }) if name == leaf => bail!("ESP file '{path}' is given twice"),
            Some(Child { name, .. }) => bail!(
                "ESP file '{path}' and a file named '{name}' in the same directory are the same file (FAT names are case-insensitive)"
            ),
            None => {}
        }
        dir.children.insert(
            name_key(leaf),
            Child::new(
                leaf,
                Node::File {
                    bytes: &file.bytes,
                    first_cluster: 0,
                },
            ),
        );
    }
    root.assign_short_names()?;
    Ok(root)
}

fn clusters_for_bytes(len: usize) -> u64 {
    div_ceil(len as u64, SECTOR_SIZE)
}

impl DirNode<'_> {
    /// Gives every child with a long name a unique short name: the name itself in uppercase
    /// when that is an 8.3 name, otherwise the first free `NAME~N.EXT`, in entry order.
    fn assign_short_names(&mut self) -> Result<()> {
        let mut taken: std::collections::BTreeSet<[u8; 11]> = std::collections::BTreeSet::new();
        for child in self.children.values_mut() {
            if child.long.is_none() {
                taken.insert(child.short);
            } else if let Ok(upper) = short_name(&child.name) {
                // Keys are unique, so these cannot collide with each other or the above.
                child.short = upper;
                taken.insert(upper);
            }
        }
        for child in self.children.values_mut() {
            if child.long.is_some() && short_name(&child.name).is_err() {
                let short = (1..=999_999)
                    .map(|n| numbered_short_name(&child.name, n))
                    .find(|s| !taken.contains(s))
                    .ok_or_else(|| anyhow!("no free short name for '{}'", child.name))?;
                child.short = short;
                taken.insert(short);
            }
            if let Node::Dir(d) = &mut child.node {
                d.assign_short_names()?;
            }
        }
        Ok(())
    }

    /// Number of directory entries of this directory.
    fn entry_count(&self, is_root: bool, has_label: bool) -> usize {
        let special = if is_root { usize::from(has_label) } else { 2 };
        self.children
            .values()
            .map(Child::entry_count)
            .sum::<usize>()
            + special
    }

    /// Clusters needed by this directory and everything below it; also records this
    /// directory's own size.
    fn size_in_clusters(&mut self, is_root: bool, has_label: bool) -> Result<u64> {
        let entries = self.entry_count(is_root, has_label);
        ensure!(
            entries <= MAX_DIR_ENTRIES,
            "an ESP directory would hold {entries} entries; FAT allows {MAX_DIR_ENTRIES}"
        );
        let own = div_ceil((entries * DIR_ENTRY_SIZE) as u64, SECTOR_SIZE).max(1);
        self.clusters = u32::try_from(own).context("directory too large")?;
        let mut total = own;
        for child in self.children.values_mut() {
            total += match &mut child.node {
                Node::Dir(d) => d.size_in_clusters(false, false)?,
                Node::File { bytes, .. } => clusters_for_bytes(bytes.len()),
            };
        }
        Ok(total)
    }

    /// Assigns first clusters depth-first: this directory, then its children in order.
    /// Sizes were checked to fit before, so the cluster numbers cannot overflow.
    fn allocate(&mut self, next: &mut u32) {
        self.first_cluster = *next;
        *next += self.clusters;
        for child in self.children.values_mut() {
            match &mut child.node {
                Node::Dir(d) => d.allocate(next),
                Node::File {
                    bytes,
                    first_cluster,
                } => {
                    let clusters = clusters_for_bytes(bytes.len()) as u32;
                    *first_cluster = if clusters == 0 { 0 } else { *next };
                    *next += clusters;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Timestamps

/// A DOS date and time (local time of nobody: the Unix timestamp taken as is, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DosTime {
    date: u16,
    time: u16,
    /// Creation time in 10 ms units beyond the 2-second resolution of `time` (0 or 100).
    tenths: u8,
}

impl DosTime {
    fn from_unix(unix: u64) -> DosTime {
        const MIN: u64 = 315_532_800; // 1980-01-01T00:00:00Z
        const MAX: u64 = 4_354_819_199; // 2107-12-31T23:59:59Z
        let t = unix.clamp(MIN, MAX);
        let mut days = t / 86_400;
        let secs = t % 86_400;
        let mut year = 1970u64;
        loop {
            let len = if is_leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let month_lengths = [
            31,
            if is_leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 1u64;
        for len in month_lengths {
            if days < len {
                break;
            }
            days -= len;
            month += 1;
        }
        let day = days + 1;
        let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
        DosTime {
            date: (((year - 1980) << 9) | (month << 5) | day) as u16,
            time: ((hour << 11) | (minute << 5) | (second / 2)) as u16,
            tenths: ((second % 2) * 100) as u8,
        }
    }
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

// ---------------------------------------------------------------------------------------
// GPT

fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes the protective MBR, both GPT headers and both partition entry arrays with the
/// `gpt` crate. Its defaults are what we pin: 128 entries of 128 bytes right behind each
/// header (first usable LBA 34, last usable = backup header - 33), revision 1.0, a
/// protective 0xEE record from LBA 1 over the whole disk (CHS 0/0/2 .. FF/FF/FF), no boot
/// code and a zero MBR disk signature. Only the GUIDs are ours: the crate draws random ones
/// unless given, so the disk GUID is passed in and the partition entry is built whole
/// instead of through `add_partition`.
fn write_gpt(image: &mut [u8], g: &Geometry, opts: &EspOptions) -> Result<()> {
    let mut disk = std::io::Cursor::new(image);
    // The protective record counts the sectors after the MBR, saturating as UEFI says.
    let protected = u32::try_from(g.total_sectors - 1).unwrap_or(u32::MAX);
    gpt::mbr::ProtectiveMBR::with_lb_size(protected)
        .overwrite_lba0(&mut disk)
        .map_err(|e| anyhow!("cannot write the protective MBR: {e}"))?;
    let mut table = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(disk, Some(uuid::Uuid::from_bytes(opts.disk_guid)))
        .context("cannot lay out the GPT")?;
    let esp = gpt::partition::Partition {
        part_type_guid: gpt::partition_types::Type {
            guid: uuid::Uuid::from_bytes(ESP_TYPE_GUID),
            os: gpt::partition_types::OperatingSystem::None,
        },
        part_guid: uuid::Uuid::from_bytes(opts.partition_guid),
        first_lba: PARTITION_START_LBA,
        last_lba: PARTITION_START_LBA + u64::from(g.partition_sectors) - 1,
        flags: 0,
        name: PARTITION_NAME.to_string(),
    };
    table
        .update_partitions(BTreeMap::from([(1, esp)]))
        .context("cannot add the EFI System Partition to the GPT")?;
    table.write().context("cannot write the GPT")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// FAT32

/// Boot code: `cli; hlt; jmp short -3` (this volume is not BIOS-bootable).
const BOOT_CODE: [u8; 4] = [0xFA, 0xF4, 0xEB, 0xFD];
const BOOT_CODE_OFFSET: usize = 0x5A;

fn boot_sector(g: &Geometry, label: Option<&[u8; 11]>, volume_id: u32) -> [u8; SECTOR] {
    let mut s = [0u8; SECTOR];
    s[0..3].copy_from_slice(&[0xEB, (BOOT_CODE_OFFSET - 2) as u8, 0x90]); // jmp short boot code; nop
    s[3..11].copy_from_slice(b"NEKOS   ");
    put_u16(&mut s, 11, SECTOR_SIZE as u16); // BPB_BytsPerSec
    s[13] = 1; // BPB_SecPerClus
    put_u16(&mut s, 14, RESERVED_SECTORS as u16); // BPB_RsvdSecCnt
    s[16] = FAT_COUNT as u8; // BPB_NumFATs
    put_u16(&mut s, 17, 0); // BPB_RootEntCnt: 0 on FAT32
    put_u16(&mut s, 19, 0); // BPB_TotSec16: 0 on FAT32
    s[21] = MEDIA; // BPB_Media
    put_u16(&mut s, 22, 0); // BPB_FATSz16: 0 on FAT32
    put_u16(&mut s, 24, 32); // BPB_SecPerTrk (nominal geometry; partitions are MiB multiples)
    put_u16(&mut s, 26, 64); // BPB_NumHeads
    put_u32(&mut s, 28, PARTITION_START_LBA as u32); // BPB_HiddSec
    put_u32(&mut s, 32, g.partition_sectors); // BPB_TotSec32
    put_u32(&mut s, 36, g.fat_sectors); // BPB_FATSz32
    put_u16(&mut s, 40, 0); // BPB_ExtFlags: FATs mirrored
    put_u16(&mut s, 42, 0); // BPB_FSVer 0.0
    put_u32(&mut s, 44, ROOT_CLUSTER); // BPB_RootClus
    put_u16(&mut s, 48, FSINFO_SECTOR as u16); // BPB_FSInfo
    put_u16(&mut s, 50, BACKUP_BOOT_SECTOR as u16); // BPB_BkBootSec
    s[64] = 0x80; // BS_DrvNum
    s[66] = 0x29; // BS_BootSig: the next three fields are present
    put_u32(&mut s, 67, volume_id); // BS_VolID
    s[71..82].copy_from_slice(label.unwrap_or(b"NO NAME    ")); // BS_VolLab
    s[82..90].copy_from_slice(b"FAT32   "); // BS_FilSysType
    s[BOOT_CODE_OFFSET..BOOT_CODE_OFFSET + BOOT_CODE.len()].copy_from_slice(&BOOT_CODE);
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

fn fsinfo_sector(free: u32, next_free: u32) -> [u8; SECTOR] {
    let mut s = [0u8; SECTOR];
    put_u32(&mut s, 0, 0x4161_5252); // FSI_LeadSig
    put_u32(&mut s, 484, 0x6141_7272); // FSI_StrucSig
    put_u32(&mut s, 488, free); // FSI_Free_Count
    put_u32(&mut s, 492, next_free); // FSI_Nxt_Free
    put_u32(&mut s, 508, 0xAA55_0000); // FSI_TrailSig
    s
}

fn dir_entry(
    name: &[u8; 11],
    attr: u8,
    first_cluster: u32,
    size: u32,
    t: DosTime,
) -> [u8; DIR_ENTRY_SIZE] {
    let mut e = [0u8; DIR_ENTRY_SIZE];
    e[0..11].copy_from_slice(name);
    e[11] = attr;
    e[13] = t.tenths; // DIR_CrtTimeTenth
    put_u16(&mut e, 14, t.time); // DIR_CrtTime
    put_u16(&mut e, 16, t.date); // DIR_CrtDate
    put_u16(&mut e, 18, t.date); // DIR_LstAccDate
    put_u16(&mut e, 20, (first_cluster >> 16) as u16); // DIR_FstClusHI
    put_u16(&mut e, 22, t.time); // DIR_WrtTime
    put_u16(&mut e, 24, t.date); // DIR_WrtDate
    put_u16(&mut e, 26, first_cluster as u16); // DIR_FstClusLO
    put_u32(&mut e, 28, size); // DIR_FileSize
    e
}

/// The VFAT long-name entries of `long`, in the order they precede the short entry (last
/// part first, flagged 0x40). Each holds 13 UTF-16 units; the name ends with a NUL unless
/// it fills its last entry, and the rest is 0xFFFF.
fn long_name_entries(long: &[u16], short: &[u8; 11]) -> Vec<u8> {
    let checksum = short_name_checksum(short);
    let parts: Vec<&[u16]> = long.chunks(LFN_UNITS_PER_ENTRY).collect();
    let mut out = Vec::with_capacity(parts.len() * DIR_ENTRY_SIZE);
    for (i, part) in parts.iter().enumerate().rev() {
        let mut units = [0xFFFFu16; LFN_UNITS_PER_ENTRY];
        units[..part.len()].copy_from_slice(part);
        if part.len() < LFN_UNITS_PER_ENTRY {
            units[part.len()] = 0;
        }
        let mut e = [0u8; DIR_ENTRY_SIZE];
        e[0] = (i + 1) as u8 | if i + 1 == parts.len() { 0x40 } else { 0 }; // LDIR_Ord
        e[11] = ATTR_LONG_NAME;
        e[13] = checksum; // LDIR_Chksum
        // LDIR_Name1 (5 units at 1), LDIR_Name2 (6 at 14), LDIR_Name3 (2 at 28);
        // LDIR_Type (12) and LDIR_FstClusLO (26) stay 0.
        let offsets = (0..5)
            .map(|k| 1 + 2 * k)
            .chain((0..6).map(|k| 14 + 2 * k))
            .chain((0..2).map(|k| 28 + 2 * k));
        for (at, unit) in offsets.zip(units) {
            put_u16(&mut e, at, unit);
        }
        out.extend_from_slice(&e);
    }
    out
}

const DOT: [u8; 11] = *b".          ";
const DOTDOT: [u8; 11] = *b"..         ";

/// Writes the whole file system into `part` (the partition's bytes, zeroed).
#[allow(clippy::too_many_arguments)]
fn write_fat32(
    part: &mut [u8],
    g: &Geometry,
    root: &DirNode<'_>,
    label: Option<&[u8; 11]>,
    volume_id: u32,
    time: DosTime,
    free: u32,
    next_free: u32,
) -> Result<()> {
    let boot = boot_sector(g, label, volume_id);
    let fsinfo = fsinfo_sector(free, next_free);
    for base in [0, BACKUP_BOOT_SECTOR as usize] {
        part[base * SECTOR..(base + 1) * SECTOR].copy_from_slice(&boot);
        let info = base + FSINFO_SECTOR as usize;
        part[info * SECTOR..(info + 1) * SECTOR].copy_from_slice(&fsinfo);
    }

    let mut fat = vec![0u32; g.clusters as usize + 2];
    fat[0] = 0x0FFF_FF00 | u32::from(MEDIA);
    fat[1] = 0x0FFF_FFFF; // clean, no I/O errors
    let data_start = g.first_data_sector() as usize * SECTOR;
    let mut writer = Writer {
        part,
        fat: &mut fat,
        data_start,
        time,
    };
    writer.directory(root, None, label)?;

    let fat_bytes: Vec<u8> = fat.iter().flat_map(|e| e.to_le_bytes()).collect();
    for copy in 0..FAT_COUNT as usize {
        let at = (RESERVED_SECTORS as usize + copy * g.fat_sectors as usize) * SECTOR;
        part[at..at + fat_bytes.len()].copy_from_slice(&fat_bytes);
    }
    Ok(())
}

struct Writer<'p, 'f> {
    part: &'p mut [u8],
    fat: &'f mut [u32],
    data_start: usize,
    time: DosTime,
}

impl Writer<'_, '_> {
    /// Marks `count` clusters from `first` as one chain.
    fn chain(&mut self, first: u32, count: u32) -> Result<()> {
        for c in first..first + count {
            let next = if c + 1 == first + count {
                FAT_END_OF_CHAIN
            } else {
                c + 1
            };
            let slot = self
                .fat
                .get_mut(c as usize)
                .ok_or_else(|| anyhow!("internal error: cluster {c} out of range"))?;
            *slot = next;
        }
        Ok(())
    }

    fn put_data(&mut self, first_cluster: u32, bytes: &[u8]) -> Result<()> {
        let at = self.data_start + (first_cluster - ROOT_CLUSTER) as usize * SECTOR;
        self.part
            .get_mut(at..at + bytes.len())
            .ok_or_else(|| anyhow!("internal error: data outside the partition"))?
            .copy_from_slice(bytes);
        Ok(())
    }

    /// Writes directory `dir` (and everything below it); `parent` is the first cluster of
    /// the parent directory, `None` for the root.
    fn directory(
        &mut self,
        dir: &DirNode<'_>,
        parent: Option<u32>,
        label: Option<&[u8; 11]>,
    ) -> Result<()> {
        let t = self.time;
        let mut entries = Vec::with_capacity((dir.children.len() + 2) * DIR_ENTRY_SIZE);
        match parent {
            None => {
                if let Some(label) = label {
                    entries.extend_from_slice(&dir_entry(label, ATTR_VOLUME_ID, 0, 0, t));
                }
            }
            Some(parent) => {
                entries.extend_from_slice(&dir_entry(
                    &DOT,
                    ATTR_DIRECTORY,
                    dir.first_cluster,
                    0,
                    t,
                ));
                // `..` of a directory in the root names cluster 0, not the root's cluster.
                let dotdot = if parent == ROOT_CLUSTER { 0 } else { parent };
                entries.extend_from_slice(&dir_entry(&DOTDOT, ATTR_DIRECTORY, dotdot, 0, t));
            }
        }
        for child in dir.children.values() {
            if let Some(long) = &child.long {
                entries.extend(long_name_entries(long, &child.short));
            }
            let entry = match &child.node {
                Node::Dir(d) => dir_entry(&child.short, ATTR_DIRECTORY, d.first_cluster, 0, t),
                Node::File {
                    bytes,
                    first_cluster,
                } => dir_entry(
                    &child.short,
                    ATTR_ARCHIVE,
                    *first_cluster,
                    bytes.len() as u32,
                    t,
                ),
            };
            entries.extend_from_slice(&entry);
        }
        self.chain(dir.first_cluster, dir.clusters)?;
        self.put_data(dir.first_cluster, &entries)?;

        for child in dir.children.values() {
            match &child.node {
                Node::Dir(d) => self.directory(d, Some(dir.first_cluster), None)?,
                Node::File {
                    bytes,
                    first_cluster,
                } => {
                    if !bytes.is_empty() {
                        self.chain(*first_cluster, clusters_for_bytes(bytes.len()) as u32)?;
                        self.put_data(*first_cluster, bytes)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(&short_name("BOOTX64.EFI").unwrap(), b"BOOTX64 EFI");
        assert_eq!(&short_name("efi").unwrap(), b"EFI        ");
        assert_eq!(&short_name("a-b_c~1.t").unwrap(), b"A-B_C~1 T  ");
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "name.",
            "a.b.c",
            "toolongname",
            "x.long",
            "sp ace",
            "a+b",
            "ü",
        ] {
            assert!(short_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn long_names() {
        assert_eq!(exact_short_name("BOOTX64.EFI"), Some(*b"BOOTX64 EFI"));
        assert_eq!(exact_short_name("bootx64.efi"), None);
        assert_eq!(
            &numbered_short_name("systemd-bootx64.efi", 1),
            b"SYSTEM~1EFI"
        );
        assert_eq!(
            &numbered_short_name(".hidden file.tar.gz", 12),
            b"HIDDE~12GZ "
        );
        assert_eq!(&numbered_short_name("a+b.c d", 3), b"A_B~3   CD ");
        assert_eq!(&numbered_short_name("...", 1), b"_~1        ");
        // The checksum rotates right and adds: two names differing in one byte differ.
        assert_ne!(
            short_name_checksum(b"SYSTEM~1EFI"),
            short_name_checksum(b"SYSTEM~2EFI")
        );
        assert_eq!(short_name_checksum(&[0; 11]), 0);
        let entries = long_name_entries(
            &"abcdefghijklmn".encode_utf16().collect::<Vec<_>>(),
            b"ABCDEF~1   ",
        );
        assert_eq!(entries.len(), 64);
        assert_eq!(entries[0], 0x42); // last part first
        assert_eq!(entries[32], 0x01);
        assert_eq!(&entries[1..5], &[b'n', 0, 0, 0]); // "n", NUL
        assert_eq!(&entries[5..7], &[0xFF, 0xFF]);
        assert!(check_name("Microsoft Boot").is_ok());
        for bad in ["", ".", "..", "a.", "a ", "a/b", "a?", "a\u{7}"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dos_times() {
        let epoch = DosTime::from_unix(0);
        assert_eq!((epoch.date, epoch.time), ((1 << 5) | 1, 0));
        // 2024-02-29T13:37:43Z
        let t = DosTime::from_unix(1_709_213_863);
        assert_eq!(t.date, (44 << 9) | (2 << 5) | 29);
        assert_eq!(t.time, (13 << 11) | (37 << 5) | 21);
        assert_eq!(t.tenths, 100);
        let end = DosTime::from_unix(u64::MAX);
        assert_eq!(end.date, (127 << 9) | (12 << 5) | 31);
        assert_eq!(end.time, (23 << 11) | (59 << 5) | 29);
    }

    #[test]
    fn guids() {
        let text = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
        assert_eq!(parse_guid(text).unwrap(), ESP_TYPE_GUID);
        assert_eq!(guid_to_string(&ESP_TYPE_GUID), text);
        // The text byte order is the `uuid` crate's, which `gpt` writes mixed-endian.
        assert_eq!(
            uuid::Uuid::from_bytes(ESP_TYPE_GUID),
            gpt::partition_types::EFI.guid
        );
        let o = EspOptions::from_seed("x", 0);
        assert_eq!(o.disk_guid[6] >> 4, 4);
        assert_eq!(o.partition_guid[8] >> 6, 2);
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The image bytes for fixed inputs, pinned: covers long names, colliding numbered short
    /// names, an exact short name, empty files, nesting, a label and no label.
    #[test]
    fn image_bytes_are_pinned() {
        let file = |path: &str, bytes: Vec<u8>| EspFile {
            path: path.to_string(),
            bytes,
        };
        let files = vec![
            file(
                "EFI/BOOT/BOOTX64.EFI",
                (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect(),
            ),
            file("EMPTY.TXT", Vec::new()),
            file("loader/entries/nekos.cfg", b"title NekOS\n".to_vec()),
            file("A/B/C/DEEP.DAT", vec![0x5A; 1500]),
            file("EFI/Linux/Long File Name 1.txt", b"one".to_vec()),
            file("EFI/Linux/Long File Name 2.txt", b"two".to_vec()),
            file("EFI/Linux/LONGFI~1.TXT", b"short".to_vec()),
            file("EFI/Microsoft Boot/Gr\u{fc}\u{df}e.conf", b"x".to_vec()),
        ];
        let image = build_esp_image(&files, &EspOptions::from_seed("pin", 1_735_689_600)).unwrap();
        assert_eq!(image.len(), 64 << 20);
        let mut empty_opts = EspOptions::from_seed("pin-empty", 0);
        empty_opts.volume_label = String::new();
        let empty = build_esp_image(&[], &empty_opts).unwrap();
        let (a, b) = (sha256_hex(&image), sha256_hex(&empty));
        eprintln!("pinned: {a} {b}");
        assert_eq!(
            a,
            "1ca3316a801567c3c74aede6fb9bcbf96cfcd308999908b690d5739c1d2751d3"
        );
        assert_eq!(
            b,
            "3370812c964b8117a567f49ac8e84c5821713f61b2cf9ab5afabbb1e7555b7c3"
        );
    }

    #[test]
    fn geometry_minimum() {
        let min = min_fat32_size_mib();
        assert!(Geometry::new(min).is_ok());
        assert!(Geometry::new(min - 1).is_err());
        let g = Geometry::new(64).unwrap();
        assert!(u64::from(g.clusters + 2) * 4 <= u64::from(g.fat_sectors) * SECTOR_SIZE);
        assert!(u64::from(g.clusters + 2) * 4 > u64::from(g.fat_sectors - 1) * SECTOR_SIZE);
    }
}
