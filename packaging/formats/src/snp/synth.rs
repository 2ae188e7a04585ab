//! Synthetic SEV-capable OVMF images for tests and fuzzing: a footer table with an optional
//! SEV-ES reset block, SEV hashes table entry and SEV metadata, laid out as EDK2 does
//! (entries grow backwards from 32 bytes before the end; each entry's u16 size and GUID
//! follow its data).

use super::ovmf::{
    GuidLe, OVMF_SEV_METADATA_GUID, OVMF_TABLE_FOOTER_GUID, SEV_ES_RESET_BLOCK_GUID,
    SEV_HASH_TABLE_RV_GUID,
};

#[derive(Clone, Debug)]
pub struct SyntheticOvmf {
    /// Image size in 4 KiB pages (at least 2: the metadata lives in the first page).
    pub pages: u32,
    /// Raw (gpa, size, type) descriptors for the SEV metadata; `None` = no metadata entry.
    pub sections: Option<Vec<(u32, u32, u32)>>,
    pub reset_eip: Option<u32>,
    pub hashes_table_gpa: Option<u32>,
    /// Fills the rest of the image deterministically.
    pub seed: u64,
}

impl SyntheticOvmf {
    /// A layout like OVMF.amdsev.fd's (smaller): SEC memory, secrets, CPUID, kernel hashes.
    pub fn amdsev_like(pages: u32) -> SyntheticOvmf {
        SyntheticOvmf {
            pages,
            sections: Some(vec![
                (0x80_0000, 0x9000, 1),
                (0x80_9000, 0x2000, 1),
                (0x80_b000, 0x1000, 2),
                (0x80_c000, 0x1000, 3),
                (0x80_d000, 0x1000, 0x10),
                (0x80_e000, 0x2000, 1),
            ]),
            reset_eip: Some(0xffff_f004),
            hashes_table_gpa: Some(0x80_d400),
            seed: 7,
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let len = self.pages.max(2) as usize * 4096;
        let mut img = synthetic(len, self.seed);
        let mut entries: Vec<(GuidLe, Vec<u8>)> = Vec::new();
        if let Some(secs) = &self.sections {
            // ASEV header + descriptors at the start of the image's first page.
            let meta_at = 0usize;
            let mut m = Vec::new();
            m.extend_from_slice(b"ASEV");
            m.extend_from_slice(&(16 + 12 * secs.len() as u32).to_le_bytes());
            m.extend_from_slice(&1u32.to_le_bytes());
            m.extend_from_slice(&(secs.len() as u32).to_le_bytes());
            for (g, s, t) in secs {
                m.extend_from_slice(&g.to_le_bytes());
                m.extend_from_slice(&s.to_le_bytes());
                m.extend_from_slice(&t.to_le_bytes());
            }
            let end = (meta_at + m.len()).min(len - 4096);
            let n = end - meta_at;
            img[meta_at..end].copy_from_slice(&m[..n]);
            entries.push((
                OVMF_SEV_METADATA_GUID,
                ((len - meta_at) as u32).to_le_bytes().to_vec(),
            ));
        }
        if let Some(e) = self.reset_eip {
            entries.push((SEV_ES_RESET_BLOCK_GUID, e.to_le_bytes().to_vec()));
        }
        if let Some(g) = self.hashes_table_gpa {
            let mut d = g.to_le_bytes().to_vec();
            d.extend_from_slice(&0x400u32.to_le_bytes());
            entries.push((SEV_HASH_TABLE_RV_GUID, d));
        }
        let mut table = Vec::new();
        for (guid, data) in entries {
            table.extend_from_slice(&data);
            table.extend_from_slice(&((data.len() + 18) as u16).to_le_bytes());
            table.extend_from_slice(&guid);
        }
        table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(&OVMF_TABLE_FOOTER_GUID);
        let end = len - 32;
        img[end - table.len()..end].copy_from_slice(&table);
        img
    }
}

/// Deterministic filler bytes (xorshift), for synthetic kernels and initrds.
pub fn synthetic(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
