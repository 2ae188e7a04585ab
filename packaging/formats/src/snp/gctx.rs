//! The launch-digest chain: for every page the PSP measures (SNP_LAUNCH_UPDATE), a 0x70-byte
//! PAGE_INFO structure is formed and the digest becomes its SHA-384 (SEV-SNP ABI spec,
//! "PAGE_INFO"):
//!
//! | offset | field                                        |
//! |--------|----------------------------------------------|
//! | 0x00   | DIGEST_CUR (48 bytes, the running digest)     |
//! | 0x30   | CONTENTS (48 bytes: SHA-384 of the page or 0) |
//! | 0x60   | LENGTH (u16 = 0x70)                           |
//! | 0x62   | PAGE_TYPE (u8)                                |
//! | 0x63   | IMI_PAGE (u8, 0)                              |
//! | 0x64   | VMPL3/2/1 permissions (u8 each, 0), reserved  |
//! | 0x68   | GPA (u64)                                     |

use anyhow::{Result, bail};
use sha2::{Digest, Sha384};

pub const PAGE_SIZE: usize = 4096;
pub const PAGE_INFO_LEN: usize = 0x70;

/// SNP_LAUNCH_UPDATE page types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    Normal = 1,
    Vmsa = 2,
    Zero = 3,
    Unmeasured = 4,
    Secrets = 5,
    Cpuid = 6,
}

/// The VMSA page is recorded with GPA (u64)-1, page-aligned and truncated to 52 bits.
pub const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// The guest context: the running launch digest.
#[derive(Clone, Debug)]
pub struct Gctx {
    ld: [u8; 48],
}

impl Default for Gctx {
    fn default() -> Self {
        Gctx { ld: [0; 48] }
    }
}

impl Gctx {
    pub fn new() -> Gctx {
        Gctx::default()
    }

    /// Starts from a precomputed digest (e.g. of the firmware alone).
    pub fn with_seed(ld: [u8; 48]) -> Gctx {
        Gctx { ld }
    }

    pub fn digest(&self) -> [u8; 48] {
        self.ld
    }

    /// One PAGE_INFO step.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; 48]) {
        let mut pi = [0u8; PAGE_INFO_LEN];
        pi[..0x30].copy_from_slice(&self.ld);
        pi[0x30..0x60].copy_from_slice(contents);
        pi[0x60..0x62].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        pi[0x62] = page_type as u8;
        // 0x63 IMI_PAGE, 0x64..0x67 VMPL3/2/1 perms + reserved: all zero.
        pi[0x68..0x70].copy_from_slice(&gpa.to_le_bytes());
        self.ld.copy_from_slice(&Sha384::digest(pi));
    }

    /// Measured pages: CONTENTS is the SHA-384 of each 4 KiB page.
    pub fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) -> Result<()> {
        if !data.len().is_multiple_of(PAGE_SIZE) {
            bail!(
                "{} bytes of measured data is not a whole number of 4 KiB pages",
                data.len()
            );
        }
        for (i, page) in data.chunks_exact(PAGE_SIZE).enumerate() {
            let h: [u8; 48] = Sha384::digest(page).into();
            self.update(PageType::Normal, gpa + (i * PAGE_SIZE) as u64, &h);
        }
        Ok(())
    }

    fn update_empty_pages(&mut self, t: PageType, gpa: u64, len: u64) -> Result<()> {
        if !len.is_multiple_of(PAGE_SIZE as u64) {
            bail!(
                "{t:?} region of {len:#x} bytes at {gpa:#x} is not a whole number of 4 KiB pages"
            );
        }
        let mut off = 0;
        while off < len {
            self.update(t, gpa + off, &[0; 48]);
            off += PAGE_SIZE as u64;
        }
        Ok(())
    }

    pub fn update_zero_pages(&mut self, gpa: u64, len: u64) -> Result<()> {
        self.update_empty_pages(PageType::Zero, gpa, len)
    }

    pub fn update_unmeasured_pages(&mut self, gpa: u64, len: u64) -> Result<()> {
        self.update_empty_pages(PageType::Unmeasured, gpa, len)
    }

    pub fn update_secrets_page(&mut self, gpa: u64) {
        self.update(PageType::Secrets, gpa, &[0; 48]);
    }

    pub fn update_cpuid_page(&mut self, gpa: u64) {
        self.update(PageType::Cpuid, gpa, &[0; 48]);
    }

    pub fn update_vmsa_page(&mut self, page: &[u8; PAGE_SIZE]) {
        let h: [u8; 48] = Sha384::digest(page).into();
        self.update(PageType::Vmsa, VMSA_GPA, &h);
    }
}
