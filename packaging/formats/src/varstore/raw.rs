//! Raw edk2 variable stores (OVMF_VARS, ArmVirtQemu's QEMU_VARS): reading a template,
//! writing variables into it, reading the variables back. Two layouts ([`Layout`]), both an
//! NvData firmware volume holding the variable store, then the fault-tolerant-write (FTW)
//! working and spare areas:
//!
//! - [`Layout::OVMF_4M`], Debian's `OVMF_VARS_4M.fd` (540672 bytes): FvLength 0x84000 in
//!   132 blocks of 0x1000; FTW working block header at 0x41000 (WriteQueueSize 0xfe0).
//! - [`Layout::ARMVIRT_QEMU`], the `[FD.QEMU_VARS]` of edk2's `ArmVirtPkg/VarStore.fdf.inc`
//!   (PcdFlashNvStorageVariableSize, FtwWorkingSize and FtwSpareSize 0x40000 each in
//!   `ArmVirtQemu.dsc`): FvLength 0xc0000 in 3 blocks of 0x40000; FTW working block header at
//!   0x40000 (WriteQueueSize 0x3ffe0), spare area 0x80000..0xc0000; the file padded with zeros
//!   to 64 MiB, the size of QEMU `virt`'s second flash bank (as Debian pads AAVMF_VARS.fd).
//!
//! Common to both:
//! - 0x00: EFI_FIRMWARE_VOLUME_HEADER: zero vector, FileSystemGuid = NvData
//!   fff12b8d-7696-4c8b-a985-2747075b4f50, FvLength, "_FVH", attributes 0x0004feff,
//!   HeaderLength 0x48, Checksum (16-bit words of the header sum to 0), revision 2, block map
//!   and a 0/0 terminator.
//! - 0x48: VARIABLE_STORE_HEADER: authenticated-variables GUID
//!   aaf32c78-947b-439a-a180-2e144ec37792, Size 0x3ffb8, Format 0x5a, State 0xfe.
//! - 0x64..0x40000: variables, each AUTHENTICATED_VARIABLE_HEADER (StartId 0x55aa, State
//!   0x3f, Attributes, MonotonicCount, EFI_TIME, PubKeyIndex, NameSize, DataSize, VendorGuid)
//!   + UCS-2 name + data, 4-byte aligned; 0xff fill.
//! - the FTW working block header (a constant per layout), 0xff elsewhere in the volume.
//!
//! Like virt-fw-vars, variables are written sorted by name (byte order). Every parser here
//! returns an error on bad input and never panics, whatever the bytes.

use super::{EfiTime, Guid, Store, Variable};
use anyhow::{Result, bail};

/// Size of the 4 MiB-build OVMF_VARS image.
pub const RAW_4M_SIZE: usize = 0x84000;
/// Size of each flash bank of QEMU's arm `virt` machine: ArmVirtQemu's code and variables.
pub const ARMVIRT_FLASH_SIZE: usize = 64 << 20;
pub const NVDATA_GUID: &str = "fff12b8d-7696-4c8b-a985-2747075b4f50";
pub const AUTH_VARS_GUID: &str = "aaf32c78-947b-439a-a180-2e144ec37792";
const FVH_SIGNATURE: u32 = 0x4856_465f; // "_FVH"
const VAR_HEADER_LEN: usize = 60; // AUTHENTICATED_VARIABLE_HEADER incl. the vendor GUID
const VAR_START_ID: u16 = 0x55aa;
const VAR_ADDED: u8 = 0x3f;

/// The FTW working block header of OVMF's 4M vars (signature GUID
/// 9e58292b-7c68-497d-a0ce-6500fd9f1b95, CRC32 0x642caf2c, WorkingBlockValid,
/// WriteQueueSize 0xfe0), at 0x41000.
const FTW_HEADER_4M: [u8; 32] = [
    0x2b, 0x29, 0x58, 0x9e, 0x68, 0x7c, 0x7d, 0x49, 0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95,
    0x2c, 0xaf, 0x2c, 0x64, 0xfe, 0xff, 0xff, 0xff, 0xe0, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

const FTW_OFFSET_4M: usize = 0x41000;

/// The FTW working block header of ArmVirtQemu's QEMU_VARS (`VarStore.fdf.inc`'s
/// NV_FTW_WORKING: the same GUID, CRC32 0x86c6e75b, WorkingBlockValid, WriteQueueSize
/// 0x3ffe0), at 0x40000.
const FTW_HEADER_ARMVIRT: [u8; 32] = [
    0x2b, 0x29, 0x58, 0x9e, 0x68, 0x7c, 0x7d, 0x49, 0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95,
    0x5b, 0xe7, 0xc6, 0x86, 0xfe, 0xff, 0xff, 0xff, 0xe0, 0xff, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// Where a firmware keeps its variables: the geometry of one raw store file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// A short name for messages (`OVMF 4M`, `ArmVirtQemu`).
    pub name: &'static str,
    /// The whole file: the volume plus padding (QEMU maps it as one flash bank).
    pub file_size: usize,
    /// FvLength: the NvData volume (variable store + FTW working + FTW spare).
    pub fv_length: usize,
    /// The block map's block size (FvLength / block_size blocks).
    pub block_size: usize,
    /// VARIABLE_STORE_HEADER.Size (PcdFlashNvStorageVariableSize - the FV header).
    pub store_size: u32,
    /// Offset of the FTW working block header.
    pub ftw_offset: usize,
    ftw_header: [u8; 32],
    /// The bytes after the volume, up to `file_size`.
    pub padding: u8,
}

impl Layout {
    /// x86 OVMF built with FD_SIZE_4MB: Debian's `OVMF_VARS_4M.fd`.
    pub const OVMF_4M: Layout = Layout {
        name: "OVMF 4M",
        file_size: RAW_4M_SIZE,
        fv_length: RAW_4M_SIZE,
        block_size: 0x1000,
        store_size: 0x3ffb8,
        ftw_offset: FTW_OFFSET_4M,
        ftw_header: FTW_HEADER_4M,
        padding: 0xff,
    };

    /// arm64 ArmVirtQemu: the built `QEMU_VARS.fd`, zero-padded to the 64 MiB flash bank.
    pub const ARMVIRT_QEMU: Layout = Layout {
        name: "ArmVirtQemu",
        file_size: ARMVIRT_FLASH_SIZE,
        fv_length: 0xc0000,
        block_size: 0x40000,
        store_size: 0x3ffb8,
        ftw_offset: 0x40000,
        ftw_header: FTW_HEADER_ARMVIRT,
        padding: 0x00,
    };

    /// The blank store of this layout: header, empty variable area, FTW header.
    pub fn blank(&self) -> Vec<u8> {
        let mut b = vec![self.padding; self.file_size];
        b[..self.fv_length].fill(0xff);
        let mut fv = Vec::with_capacity(0x48);
        fv.extend_from_slice(&[0u8; 16]);
        fv.extend_from_slice(&Guid::known(NVDATA_GUID).0);
        fv.extend_from_slice(&(self.fv_length as u64).to_le_bytes());
        fv.extend_from_slice(&FVH_SIGNATURE.to_le_bytes());
        fv.extend_from_slice(&0x0004_feffu32.to_le_bytes());
        fv.extend_from_slice(&0x48u16.to_le_bytes()); // HeaderLength
        fv.extend_from_slice(&0u16.to_le_bytes()); // Checksum (below)
        fv.extend_from_slice(&0u16.to_le_bytes()); // ExtHeaderOffset
        fv.push(0); // Reserved
        fv.push(2); // Revision
        fv.extend_from_slice(&((self.fv_length / self.block_size) as u32).to_le_bytes());
        fv.extend_from_slice(&(self.block_size as u32).to_le_bytes());
        fv.extend_from_slice(&[0u8; 8]);
        let sum = fv.chunks(2).fold(0u16, |a, w| {
            a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        let csum = 0u16.wrapping_sub(sum).to_le_bytes();
        fv[0x32] = csum[0];
        fv[0x33] = csum[1];
        b[..0x48].copy_from_slice(&fv);
        let mut vs = Vec::with_capacity(28);
        vs.extend_from_slice(&Guid::known(AUTH_VARS_GUID).0);
        vs.extend_from_slice(&self.store_size.to_le_bytes());
        vs.push(0x5a);
        vs.push(0xfe);
        vs.extend_from_slice(&[0u8; 6]);
        b[0x48..0x48 + 28].copy_from_slice(&vs);
        b[self.ftw_offset..self.ftw_offset + 32].copy_from_slice(&self.ftw_header);
        b
    }

    /// Checks that `data` is a store of this layout: the file size, then the volume at
    /// offset 0 with this layout's length and variable area. The error says what was expected
    /// and what was found (the caller adds the file name).
    pub fn check(&self, data: &[u8]) -> Result<Template> {
        if data.len() != self.file_size {
            bail!(
                "{} bytes, but a store in the {} layout is {} bytes ({}); {}",
                data.len(),
                self.name,
                self.file_size,
                human_size(self.file_size),
                match Layout::ALL.iter().find(|l| l.file_size == data.len()) {
                    Some(other) => format!("this size is the {} layout", other.name),
                    None => "not a variable store of a known layout".to_string(),
                }
            );
        }
        let t = parse_template(data)?;
        let fv_len = rd_u64(data, t.fv_offset + 32).unwrap_or(0);
        if t.fv_offset != 0 || fv_len != self.fv_length as u64 {
            bail!(
                "the variable volume is at {:#x} with length {fv_len:#x}, but the {} layout has it \
                 at 0 with length {:#x}",
                t.fv_offset,
                self.name,
                self.fv_length
            );
        }
        if t.vars_end != 0x48 + self.store_size as usize {
            bail!(
                "variable store size {:#x}, but the {} layout has {:#x}",
                t.vars_end - 0x48,
                self.name,
                self.store_size
            );
        }
        Ok(t)
    }

    /// Every known layout.
    pub const ALL: [Layout; 2] = [Layout::OVMF_4M, Layout::ARMVIRT_QEMU];
}

fn human_size(n: usize) -> String {
    if n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

/// A parsed template: where its variable area is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    /// Offset of the firmware volume in the file.
    pub fv_offset: usize,
    /// First byte of the variable area (after the variable store header).
    pub vars_start: usize,
    /// One past the last byte of the variable area.
    pub vars_end: usize,
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn rd_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}
fn rd_guid(b: &[u8], at: usize) -> Option<Guid> {
    let s = b.get(at..at.checked_add(16)?)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Some(Guid(a))
}

/// The built-in blank 4 MiB template, byte-identical to Debian's `OVMF_VARS_4M.fd`
/// (edk2 2022.11 and 2025.02 builds).
pub fn blank_template() -> Vec<u8> {
    Layout::OVMF_4M.blank()
}

/// Finds and checks the NvData firmware volume and its authenticated variable store header
/// (as virt-fw-vars does: scanning in 1 KiB steps, skipping FFS volumes of a whole OVMF.fd).
pub fn parse_template(data: &[u8]) -> Result<Template> {
    let nvdata = Guid::known(NVDATA_GUID);
    let ffs2 = Guid::known("8c8ce578-8a3d-4f1c-9935-896185c32dd3");
    let ffs3 = Guid::known("5473c07a-3dcb-4dca-bd6f-1e9689e7349a");
    let mut offset = 0usize;
    let fv = loop {
        if offset.saturating_add(64) >= data.len() {
            bail!(
                "no UEFI variable store (NvData firmware volume) found in {} bytes — not an OVMF_VARS image, or truncated",
                data.len()
            );
        }
        match rd_guid(data, offset + 16) {
            Some(g) if g == nvdata => break offset,
            Some(g) if g == ffs2 || g == ffs3 => {
                let len = rd_u64(data, offset + 32).unwrap_or(0);
                if len == 0 || len > data.len() as u64 {
                    bail!("corrupted firmware volume at {offset:#x}: length {len:#x}");
                }
                offset = offset.saturating_add(len as usize);
            }
            _ => offset += 1024,
        }
    };
    let bad = |what: &str| anyhow::anyhow!("corrupted variable store template: {what}");
    let fv_len = rd_u64(data, fv + 32).ok_or_else(|| bad("FV header truncated"))?;
    if rd_u32(data, fv + 40) != Some(FVH_SIGNATURE) {
        bail!(bad("no _FVH signature"));
    }
    let hlen = rd_u16(data, fv + 48).ok_or_else(|| bad("FV header truncated"))? as usize;
    if hlen < 0x48 || !hlen.is_multiple_of(2) {
        bail!(bad(&format!("FV header length {hlen:#x}")));
    }
    let header = data
        .get(fv..fv + hlen)
        .ok_or_else(|| bad("FV header truncated"))?;
    let sum = header.chunks(2).fold(0u16, |a, w| {
        a.wrapping_add(u16::from_le_bytes([w[0], w.get(1).copied().unwrap_or(0)]))
    });
    if sum != 0 {
        bail!(bad("FV header checksum mismatch"));
    }
    if fv_len < hlen as u64 || (fv as u64).saturating_add(fv_len) > data.len() as u64 {
        bail!(
            "truncated variable store template: the firmware volume needs {:#x} bytes, the file has {:#x}",
            (fv as u64).saturating_add(fv_len),
            data.len()
        );
    }
    let vs = fv + hlen;
    if rd_guid(data, vs) != Some(Guid::known(AUTH_VARS_GUID)) {
        bail!(bad(
            "not an authenticated variable store (variable store GUID)"
        ));
    }
    let size = rd_u32(data, vs + 16).ok_or_else(|| bad("store header truncated"))? as usize;
    if data.get(vs + 20) != Some(&0x5a) {
        bail!(bad("variable store format is not 0x5a"));
    }
    if data.get(vs + 21) != Some(&0xfe) {
        bail!(bad("variable store state is not 0xfe (healthy)"));
    }
    let vars_start = vs + 28;
    let vars_end = vs.saturating_add(size);
    if size < 28 || vars_end as u64 > (fv as u64).saturating_add(fv_len) {
        bail!(bad(&format!(
            "variable store size {size:#x} does not fit the volume"
        )));
    }
    Ok(Template {
        fv_offset: fv,
        vars_start,
        vars_end,
    })
}

/// Reads the live (state 0x3f) variables of a raw store, in file order.
pub fn parse_raw(data: &[u8]) -> Result<Vec<Variable>> {
    let t = parse_template(data)?;
    let mut vars = Vec::new();
    let mut pos = t.vars_start;
    while pos + VAR_HEADER_LEN <= t.vars_end {
        if rd_u16(data, pos) != Some(VAR_START_ID) {
            break;
        }
        let state = data.get(pos + 2).copied().unwrap_or(0);
        let attr = rd_u32(data, pos + 4).unwrap_or(0);
        let nsize = rd_u32(data, pos + 36).unwrap_or(0) as usize;
        let dsize = rd_u32(data, pos + 40).unwrap_or(0) as usize;
        let name_at = pos + VAR_HEADER_LEN;
        let end = name_at
            .checked_add(nsize)
            .and_then(|e| e.checked_add(dsize))
            .filter(|e| *e <= t.vars_end)
            .ok_or_else(|| {
                anyhow::anyhow!("corrupted variable at {pos:#x}: sizes run past the variable area")
            })?;
        if state == VAR_ADDED {
            let name_bytes = &data[name_at..name_at + nsize];
            let units: Vec<u16> = name_bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            let mut time_b = [0u8; 16];
            time_b.copy_from_slice(&data[pos + 16..pos + 32]);
            vars.push(Variable {
                name: String::from_utf16_lossy(&units),
                guid: rd_guid(data, pos + 44).unwrap_or(Guid([0; 16])),
                attr,
                data: data[name_at + nsize..end].to_vec(),
                time: EfiTime::from_bytes(&time_b),
            });
        }
        pos = end.saturating_add(3) & !3;
    }
    Ok(vars)
}

fn var_bytes(v: &Variable) -> Vec<u8> {
    let name = v.name_ucs2();
    let mut b = Vec::with_capacity(VAR_HEADER_LEN + name.len() + v.data.len() + 3);
    b.extend_from_slice(&VAR_START_ID.to_le_bytes());
    b.push(VAR_ADDED);
    b.push(0);
    b.extend_from_slice(&v.attr.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // MonotonicCount
    b.extend_from_slice(&v.time.map(|t| t.to_bytes()).unwrap_or([0; 16]));
    b.extend_from_slice(&0u32.to_le_bytes()); // PubKeyIndex
    b.extend_from_slice(&(name.len() as u32).to_le_bytes());
    b.extend_from_slice(&(v.data.len() as u32).to_le_bytes());
    b.extend_from_slice(&v.guid.0);
    b.extend_from_slice(&name);
    b.extend_from_slice(&v.data);
    while b.len() % 4 != 0 {
        b.push(0xff);
    }
    b
}

/// Writes `store` into the blank store of `layout`.
pub fn write_layout(layout: &Layout, store: &Store) -> Result<Vec<u8>> {
    write_raw(&layout.blank(), store)
}

/// Writes `store` into a copy of the blank `template`.
pub fn write_raw(template: &[u8], store: &Store) -> Result<Vec<u8>> {
    let t = parse_template(template)?;
    let existing = parse_raw(template)?;
    if !existing.is_empty() {
        bail!(
            "the template already holds {} variable(s) ({}…); start from a blank OVMF_VARS template",
            existing.len(),
            existing
                .iter()
                .map(|v| v.name.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut sorted: Vec<&Variable> = store.variables.iter().collect();
    sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut area = Vec::new();
    for v in sorted {
        area.extend_from_slice(&var_bytes(v));
    }
    let room = t.vars_end - t.vars_start;
    if area.len() > room {
        bail!(
            "the variables need {} bytes but the template's variable area holds only {room}",
            area.len()
        );
    }
    let mut out = template.to_vec();
    out[t.vars_start..t.vars_start + area.len()].copy_from_slice(&area);
    for b in &mut out[t.vars_start + area.len()..t.vars_end] {
        *b = 0xff;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sum16(b: &[u8]) -> u16 {
        b.chunks(2).fold(0u16, |a, w| {
            a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        })
    }

    // The bytes of `[FD.QEMU_VARS]` in edk2 2025.02's ArmVirtPkg/VarStore.fdf.inc, typed from
    // its DATA blocks: an independent check of the header the code assembles field by field.
    const ARMVIRT_FDF_HEADER: [u8; 0x64] = [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x8D, 0x2B, 0xF1, 0xFF, 0x96, 0x76, 0x8B, 0x4C, 0xA9, 0x85, 0x27, 0x47, 0x07, 0x5B,
        0x4F, 0x50, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5f, 0x46, 0x56, 0x48, 0xff,
        0xfe, 0x04, 0x00, 0x48, 0x00, 0x28, 0x09, 0x00, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0x2c, 0xf3,
        0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92, 0xB8, 0xFF,
        0x03, 0x00, 0x5A, 0xFE, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn armvirt_blank_store_is_the_fdf_layout() {
        let b = Layout::ARMVIRT_QEMU.blank();
        assert_eq!(b.len(), 64 << 20);
        assert_eq!(b[..0x64], ARMVIRT_FDF_HEADER);
        assert_eq!(sum16(&b[..0x48]), 0, "FV header checksum");
        assert!(
            b[0x64..0x40000].iter().all(|x| *x == 0xff),
            "empty variable area"
        );
        assert_eq!(b[0x40000..0x40020], FTW_HEADER_ARMVIRT);
        assert!(
            b[0x40020..0xc0000].iter().all(|x| *x == 0xff),
            "FTW and spare erased"
        );
        assert!(
            b[0xc0000..].iter().all(|x| *x == 0),
            "zero padding to the flash bank"
        );
        let t = parse_template(&b).unwrap();
        assert_eq!((t.fv_offset, t.vars_start, t.vars_end), (0, 0x64, 0x40000));
        assert_eq!(Layout::ARMVIRT_QEMU.check(&b).unwrap(), t);
        assert!(parse_raw(&b).unwrap().is_empty());
    }

    #[test]
    fn the_x86_layout_is_unchanged() {
        let b = Layout::OVMF_4M.blank();
        assert_eq!(b, blank_template());
        assert_eq!(b.len(), 0x84000);
        assert_eq!(&b[0x20..0x28], &0x84000u64.to_le_bytes());
        assert_eq!(&b[0x38..0x40], &[132, 0, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!(sum16(&b[..0x48]), 0);
        assert_eq!(b[0x41000..0x41020], FTW_HEADER_4M);
        assert!(b[0x41020..].iter().all(|x| *x == 0xff));
        assert_eq!(Layout::OVMF_4M.check(&b).unwrap().vars_end, 0x40000);
    }

    #[test]
    fn the_ftw_header_crcs_are_edk2s() {
        // edk2 (FaultTolerantWriteDxe's InitWorkSpaceHeader) computes the CRC32 over the
        // header with the Crc field and the state byte still erased (0xff).
        fn crc32(data: &[u8]) -> u32 {
            let mut crc = 0xffff_ffffu32;
            for b in data {
                crc ^= u32::from(*b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xedb8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        for h in [FTW_HEADER_4M, FTW_HEADER_ARMVIRT] {
            let mut z = h;
            z[16..21].fill(0xff);
            assert_eq!(crc32(&z).to_le_bytes(), h[16..20], "{h:02x?}");
        }
    }

    #[test]
    fn variables_round_trip_in_the_armvirt_layout() {
        let mut s = Store::new();
        s.variables.push(Variable {
            name: "SecureBootEnable".into(),
            guid: Guid::known(super::super::SECURE_BOOT_ENABLE_GUID),
            attr: super::super::ATTR_NV_BS,
            data: vec![1],
            time: None,
        });
        let b = write_layout(&Layout::ARMVIRT_QEMU, &s).unwrap();
        assert_eq!(b.len(), ARMVIRT_FLASH_SIZE);
        assert_eq!(parse_raw(&b).unwrap(), s.variables);
        // Only the variable area changed.
        let blank = Layout::ARMVIRT_QEMU.blank();
        assert_eq!(b[..0x64], blank[..0x64]);
        assert_eq!(b[0x40000..], blank[0x40000..]);
    }

    #[test]
    fn a_store_of_the_other_layout_or_size_is_refused_with_the_expected_size() {
        let x86 = Layout::OVMF_4M.blank();
        let e = Layout::ARMVIRT_QEMU.check(&x86).unwrap_err().to_string();
        assert!(
            e.contains("540672 bytes")
                && e.contains("67108864 bytes")
                && e.contains("64 MiB")
                && e.contains("OVMF 4M layout"),
            "{e}"
        );
        let arm = Layout::ARMVIRT_QEMU.blank();
        let e = Layout::OVMF_4M.check(&arm).unwrap_err().to_string();
        assert!(
            e.contains("540672 bytes") && e.contains("ArmVirtQemu layout"),
            "{e}"
        );
        let e = Layout::ARMVIRT_QEMU
            .check(&arm[..0xc0000])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a variable store of a known layout"), "{e}");
        // Right size, wrong volume: the x86 store padded to 64 MiB.
        let mut padded = x86.clone();
        padded.resize(ARMVIRT_FLASH_SIZE, 0);
        let e = Layout::ARMVIRT_QEMU.check(&padded).unwrap_err().to_string();
        assert!(e.contains("length 0x84000") && e.contains("0xc0000"), "{e}");
        // Right size, no volume at all.
        let e = Layout::ARMVIRT_QEMU
            .check(&vec![0u8; ARMVIRT_FLASH_SIZE])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no UEFI variable store"), "{e}");
    }
}
