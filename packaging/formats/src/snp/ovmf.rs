//! Parsing the parts of an OVMF image that the SEV-SNP launch digest depends on: the GUIDed
//! footer table at the end of the image, the SEV metadata it points to (`ASEV`), the SEV-ES
//! reset block (AP reset vector) and the SEV hashes table address.
//!
//! Everything here is bounds-checked and returns errors; nothing panics on arbitrary input
//! (packaging/tests/it/snpmeasure_fuzz.rs). On well-formed images the result is sev-snp-measure
//! 0.0.13's; on malformed ones we are stricter (a footer entry longer than the rest of the
//! table, or metadata past the end of the image, is an error where Python slicing clamps).

use anyhow::{Result, anyhow, bail};

/// A GUID in its on-disk (mixed-endian, "bytes_le") layout.
pub type GuidLe = [u8; 16];

/// Converts the textual form `aabbccdd-eeff-gghh-iijj-kkllmmnnoopp` into the little-endian
/// layout EDK2 and QEMU store (first three groups byte-swapped).
pub const fn guid_le(s: &str) -> GuidLe {
    let b = s.as_bytes();
    // Positions of the 32 hex digits in the textual form.
    const POS: [usize; 32] = [
        0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28,
        29, 30, 31, 32, 33, 34, 35,
    ];
    let mut be = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        be[i] = (hexval(b[POS[2 * i]]) << 4) | hexval(b[POS[2 * i + 1]]);
        i += 1;
    }
    [
        be[3], be[2], be[1], be[0], be[5], be[4], be[7], be[6], be[8], be[9], be[10], be[11],
        be[12], be[13], be[14], be[15],
    ]
}

const fn hexval(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The footer entry that terminates (at its end) the GUIDed table.
pub const OVMF_TABLE_FOOTER_GUID: GuidLe = guid_le("96b582de-1fb2-45f7-baea-a366c55a082d");
/// Entry whose first 4 bytes are the GPA of the SEV hashes table (kernel/initrd/cmdline).
pub const SEV_HASH_TABLE_RV_GUID: GuidLe = guid_le("7255371f-3a3b-4b04-927b-1da6efa8d454");
/// Entry whose first 4 bytes are the SEV-ES AP reset vector (EIP).
pub const SEV_ES_RESET_BLOCK_GUID: GuidLe = guid_le("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
/// Entry whose first 4 bytes are the offset, from the end of the image, of the SEV metadata.
pub const OVMF_SEV_METADATA_GUID: GuidLe = guid_le("dc886566-984a-4798-a75e-5585a7bf67cc");

/// Size of a footer-table entry header: u16 length + GUID; the header follows the data.
const ENTRY_HEADER: usize = 2 + 16;
/// The table's footer entry ends this many bytes before the end of the image (the reset
/// vector lives in the last 32 bytes).
const FOOTER_GAP: usize = 32;
const METADATA_HEADER: usize = 16;
const METADATA_ITEM: usize = 12;

/// OVMF SEV metadata section types (OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionType {
    /// Pre-validated memory, measured as zero pages.
    SnpSecMem,
    /// The SNP secrets page.
    SnpSecrets,
    /// The CPUID page.
    Cpuid,
    /// The SVSM calling-area page (zero page).
    SvsmCaa,
    /// The page holding the SEV hashes table (kernel/initrd/cmdline).
    SnpKernelHashes,
}

impl SectionType {
    pub fn from_u32(v: u32) -> Option<SectionType> {
        Some(match v {
            1 => SectionType::SnpSecMem,
            2 => SectionType::SnpSecrets,
            3 => SectionType::Cpuid,
            4 => SectionType::SvsmCaa,
            0x10 => SectionType::SnpKernelHashes,
            _ => return None,
        })
    }
}

/// One `OVMF_SEV_METADATA` section descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    pub gpa: u32,
    pub size: u32,
    pub kind: SectionType,
}

/// The parsed, borrowed view of an OVMF image.
#[derive(Clone, Debug)]
pub struct Ovmf<'a> {
    data: &'a [u8],
    /// Footer-table entries in file order from the end (as found), GUID → entry data.
    table: Vec<(GuidLe, &'a [u8])>,
    sections: Vec<Section>,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table and the SEV metadata. An image without a footer table is not
    /// an error here (it simply has no entries); a malformed table or metadata is.
    pub fn parse(data: &'a [u8]) -> Result<Ovmf<'a>> {
        let table = parse_footer_table(data)?;
        let mut ovmf = Ovmf {
            data,
            table,
            sections: Vec::new(),
        };
        ovmf.sections = ovmf.parse_metadata()?;
        Ok(ovmf)
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The GPA the image is mapped at: it ends at 4 GiB.
    pub fn gpa(&self) -> Result<u64> {
        (1u64 << 32)
            .checked_sub(self.data.len() as u64)
            .ok_or_else(|| {
                anyhow!(
                    "OVMF image of {} bytes does not fit below 4 GiB",
                    self.data.len()
                )
            })
    }

    /// The data of the footer-table entry with this GUID. With duplicate GUIDs the entry
    /// nearest the start of the image wins (as in sev-snp-measure, which walks backwards and
    /// overwrites).
    pub fn table_entry(&self, guid: &GuidLe) -> Option<&'a [u8]> {
        self.table
            .iter()
            .rev()
            .find(|(g, _)| g == guid)
            .map(|(_, d)| *d)
    }

    /// All footer-table entries, from the end of the image backwards.
    pub fn table_entries(&self) -> &[(GuidLe, &'a [u8])] {
        &self.table
    }

    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    pub fn has_section(&self, kind: SectionType) -> bool {
        self.sections.iter().any(|s| s.kind == kind)
    }

    /// The SEV-ES AP reset vector (0 = none).
    pub fn sev_es_reset_eip(&self) -> Result<u32> {
        let e = self.table_entry(&SEV_ES_RESET_BLOCK_GUID).ok_or_else(|| {
            anyhow!("OVMF footer table has no SEV-ES reset block (not an SEV-capable OVMF)")
        })?;
        u32_at(e, 0)
            .ok_or_else(|| anyhow!("SEV-ES reset block entry is {} bytes, too short", e.len()))
    }

    /// The GPA of the SEV hashes table QEMU fills in.
    pub fn sev_hashes_table_gpa(&self) -> Result<u32> {
        let e = self.table_entry(&SEV_HASH_TABLE_RV_GUID).ok_or_else(|| {
            anyhow!("OVMF footer table has no SEV hashes table entry (use an AmdSev OVMF build)")
        })?;
        u32_at(e, 0)
            .ok_or_else(|| anyhow!("SEV hashes table entry is {} bytes, too short", e.len()))
    }

    fn parse_metadata(&self) -> Result<Vec<Section>> {
        let Some(entry) = self.table_entry(&OVMF_SEV_METADATA_GUID) else {
            return Ok(Vec::new());
        };
        let from_end = u32_at(entry, 0)
            .ok_or_else(|| anyhow!("SEV metadata entry is {} bytes, too short", entry.len()))?
            as usize;
        let start = self.data.len().checked_sub(from_end).ok_or_else(|| {
            anyhow!("SEV metadata offset {from_end:#x} is before the start of the image")
        })?;
        let hdr = self
            .data
            .get(start..)
            .and_then(|s| s.get(..METADATA_HEADER))
            .ok_or_else(|| {
                anyhow!("SEV metadata header at {start:#x} runs past the end of the image")
            })?;
        if hdr.get(..4) != Some(b"ASEV".as_slice()) {
            bail!("wrong SEV metadata signature at {start:#x} (expected ASEV)");
        }
        let size = u32_at(hdr, 4).unwrap_or(0) as usize;
        let version = u32_at(hdr, 8).unwrap_or(0);
        let num = u32_at(hdr, 12).unwrap_or(0) as usize;
        if version != 1 {
            bail!("unsupported SEV metadata version {version} (expected 1)");
        }
        let items_len = size
            .checked_sub(METADATA_HEADER)
            .ok_or_else(|| anyhow!("SEV metadata size {size} is smaller than its header"))?;
        let items = start
            .checked_add(METADATA_HEADER)
            .and_then(|a| Some((a, a.checked_add(items_len)?)))
            .and_then(|(a, b)| self.data.get(a..b))
            .ok_or_else(|| {
                anyhow!("SEV metadata ({size} bytes at {start:#x}) runs past the end of the image")
            })?;
        if num
            .checked_mul(METADATA_ITEM)
            .is_none_or(|n| n > items.len())
        {
            bail!(
                "SEV metadata claims {num} sections but holds only {} bytes of them",
                items.len()
            );
        }
        let mut out = Vec::with_capacity(num);
        for i in 0..num {
            let o = i * METADATA_ITEM;
            let (Some(gpa), Some(size), Some(kind)) =
                (u32_at(items, o), u32_at(items, o + 4), u32_at(items, o + 8))
            else {
                bail!("SEV metadata section {i} is truncated");
            };
            let kind = SectionType::from_u32(kind)
                .ok_or_else(|| anyhow!("SEV metadata section {i} has unknown type {kind:#x}"))?;
            out.push(Section { gpa, size, kind });
        }
        Ok(out)
    }
}

fn parse_footer_table(data: &[u8]) -> Result<Vec<(GuidLe, &[u8])>> {
    let mut out = Vec::new();
    let Some(footer_at) = data.len().checked_sub(FOOTER_GAP + ENTRY_HEADER) else {
        return Ok(out);
    };
    let (Some(footer_size), Some(guid)) = (
        u16_at(data, footer_at),
        data.get(footer_at + 2..footer_at + ENTRY_HEADER),
    ) else {
        return Ok(out);
    };
    if guid != OVMF_TABLE_FOOTER_GUID {
        return Ok(out);
    }
    let Some(table_size) = (footer_size as usize).checked_sub(ENTRY_HEADER) else {
        return Ok(out);
    };
    let table_start = footer_at.checked_sub(table_size).ok_or_else(|| {
        anyhow!("OVMF footer table ({table_size} bytes) runs before the start of the image")
    })?;
    let mut table = data.get(table_start..footer_at).unwrap_or_default();
    while table.len() >= ENTRY_HEADER {
        let h = table.len() - ENTRY_HEADER;
        let size = u16_at(table, h).unwrap_or(0) as usize;
        let mut guid = [0u8; 16];
        guid.copy_from_slice(
            table
                .get(h + 2..)
                .unwrap_or_default()
                .get(..16)
                .unwrap_or(&[0; 16]),
        );
        if size < ENTRY_HEADER {
            bail!("OVMF footer table entry has invalid size {size}");
        }
        let begin = table.len().checked_sub(size).ok_or_else(|| {
            anyhow!("OVMF footer table entry of {size} bytes runs past the table")
        })?;
        out.push((guid, table.get(begin..h).unwrap_or_default()));
        table = table.get(..begin).unwrap_or_default();
    }
    Ok(out)
}
