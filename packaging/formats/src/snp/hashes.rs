//! The SEV hashes table QEMU writes into the firmware's SNP_KERNEL_HASHES page when it is
//! given `-kernel` (QEMU target/i386/sev.c, `sev_add_kernel_loader_hashes`; OVMF verifies it in
//! OvmfPkg/AmdSev/BlobVerifierLib). Layout (packed, little-endian):
//!
//! ```text
//! table header: GUID 9438d606-…  u16 length (= 168)
//! entry × 3:    GUID             u16 length (= 50)   SHA-256 (32 bytes)
//!               cmdline (97d02dd8-…), initrd (44baf731-…), kernel (4de79437-…)
//! padding to a multiple of 16 bytes (176)
//! ```
//!
//! The cmdline hash covers the command line exactly as given plus one NUL: QEMU never trims
//! it, so leading and trailing spaces change the digest.

use super::ovmf::{GuidLe, guid_le};
use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

const TABLE_HEADER_GUID: GuidLe = guid_le("9438d606-4f22-4cc9-b479-a793d411fd21");
const KERNEL_ENTRY_GUID: GuidLe = guid_le("4de79437-abd2-427f-b835-d5b172d2045b");
const INITRD_ENTRY_GUID: GuidLe = guid_le("44baf731-3a2f-4bd7-9af1-41e29169781d");
const CMDLINE_ENTRY_GUID: GuidLe = guid_le("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");

const ENTRY_LEN: usize = 16 + 2 + 32;
const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
/// The table padded to 16 bytes, as QEMU copies it.
pub const PADDED_TABLE_LEN: usize = TABLE_LEN.div_ceil(16) * 16;

/// The three SHA-256 values QEMU puts into the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevHashes {
    pub kernel: [u8; 32],
    pub initrd: [u8; 32],
    pub cmdline: [u8; 32],
}

impl SevHashes {
    /// `initrd` absent hashes as empty; `append` absent hashes as the empty string (one NUL).
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> SevHashes {
        let mut c = Sha256::new();
        c.update(append.unwrap_or("").as_bytes());
        c.update([0u8]);
        SevHashes {
            kernel: Sha256::digest(kernel).into(),
            initrd: Sha256::digest(initrd.unwrap_or_default()).into(),
            cmdline: c.finalize().into(),
        }
    }

    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[..16].copy_from_slice(&TABLE_HEADER_GUID);
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let mut off = 18;
        for (guid, hash) in [
            (CMDLINE_ENTRY_GUID, &self.cmdline),
            (INITRD_ENTRY_GUID, &self.initrd),
            (KERNEL_ENTRY_GUID, &self.kernel),
        ] {
            t[off..off + 16].copy_from_slice(&guid);
            t[off + 16..off + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[off + 18..off + ENTRY_LEN].copy_from_slice(hash);
            off += ENTRY_LEN;
        }
        t
    }

    /// The 4 KiB page holding the table at `offset_in_page`, zeros elsewhere.
    pub fn page(&self, offset_in_page: usize) -> Result<Vec<u8>> {
        if offset_in_page + PADDED_TABLE_LEN > super::gctx::PAGE_SIZE {
            bail!("SEV hashes table at page offset {offset_in_page:#x} would cross its page");
        }
        let mut p = vec![0u8; super::gctx::PAGE_SIZE];
        p[offset_in_page..offset_in_page + PADDED_TABLE_LEN].copy_from_slice(&self.table());
        Ok(p)
    }
}
