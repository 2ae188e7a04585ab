//! A small, bounds-checked reader for PE/COFF images (EFI applications, the kernel's EFI
//! stub), and the few header edits that UKI assembly and Authenticode signing need.
//!
//! Every read goes through [`read_u16`]/[`read_u32`]/[`slice`], which return errors instead
//! of panicking, so arbitrary bytes can be fed to [`PeFile::parse`] (a proptest does so).

use anyhow::{Context, Result, anyhow, bail};

/// Optional header magic of PE32.
pub const MAGIC_PE32: u16 = 0x10b;
/// Optional header magic of PE32+ (64-bit images, all x86_64 EFI applications).
pub const MAGIC_PE32_PLUS: u16 = 0x20b;
/// Size of one section header.
pub const SECTION_HEADER_SIZE: usize = 40;
/// Index of the certificate table (security directory) in the data directories.
pub const DIR_SECURITY: usize = 4;
/// IMAGE_DLLCHARACTERISTICS_NX_COMPAT.
pub const DLL_NX_COMPAT: u16 = 0x0100;
/// IMAGE_FILE_LOCAL_SYMS_STRIPPED.
pub const FILE_LOCAL_SYMS_STRIPPED: u16 = 0x0008;
/// Section characteristics.
pub const SCN_CNT_CODE: u32 = 0x0000_0020;
pub const SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
pub const SCN_MEM_READ: u32 = 0x4000_0000;

pub fn read_u16(data: &[u8], off: usize) -> Result<u16> {
    let b = slice(data, off, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

pub fn read_u32(data: &[u8], off: usize) -> Result<u32> {
    let b = slice(data, off, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `data[off..off+len]`, or an error if that range is not inside `data`.
pub fn slice(data: &[u8], off: usize, len: usize) -> Result<&[u8]> {
    let end = off
        .checked_add(len)
        .ok_or_else(|| anyhow!("offset overflow at {off:#x}+{len:#x}"))?;
    data.get(off..end).ok_or_else(|| {
        anyhow!(
            "truncated: need bytes {off:#x}..{end:#x}, have {:#x}",
            data.len()
        )
    })
}

pub fn write_u16(data: &mut [u8], off: usize, v: u16) -> Result<()> {
    let end = off
        .checked_add(2)
        .ok_or_else(|| anyhow!("offset overflow"))?;
    data.get_mut(off..end)
        .ok_or_else(|| anyhow!("write out of bounds at {off:#x}"))?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

pub fn write_u32(data: &mut [u8], off: usize, v: u32) -> Result<()> {
    let end = off
        .checked_add(4)
        .ok_or_else(|| anyhow!("offset overflow"))?;
    data.get_mut(off..end)
        .ok_or_else(|| anyhow!("write out of bounds at {off:#x}"))?
        .copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// Rounds `x` up to a multiple of `align` (`align` 0 or 1 leaves `x` as it is).
pub fn round_up(x: u64, align: u64) -> u64 {
    if align <= 1 {
        return x;
    }
    x.div_ceil(align).saturating_mul(align)
}

/// One section header, with the file offset it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    pub characteristics: u32,
    /// File offset of this 40-byte header.
    pub header_offset: usize,
}

impl Section {
    /// The name without its NUL padding (lossy for non-UTF-8 names).
    pub fn name_str(&self) -> String {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(8);
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }

    /// The section's raw data as stored in the file: at most SizeOfRawData bytes, cut at the
    /// end of the file.
    pub fn raw_data<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let start = (self.pointer_to_raw_data as usize).min(data.len());
        let end = start
            .saturating_add(self.size_of_raw_data as usize)
            .min(data.len());
        &data[start..end]
    }

    /// The section's content: min(VirtualSize, SizeOfRawData) bytes (what systemd-stub and
    /// `ukify inspect` consider the content).
    pub fn content<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        let raw = self.raw_data(data);
        let n = (self.virtual_size as usize).min(raw.len());
        &raw[..n]
    }
}

/// Offsets and values of a parsed PE image. It keeps no reference to the bytes, so the
/// caller can edit them and re-parse.
#[derive(Clone, Debug)]
pub struct PeFile {
    pub e_lfanew: usize,
    /// Offset of the COFF file header (right after "PE\0\0").
    pub coff: usize,
    /// Offset of the optional header.
    pub opt: usize,
    pub size_of_optional_header: usize,
    pub magic: u16,
    pub machine: u16,
    pub number_of_sections: u16,
    pub pointer_to_symbol_table: u32,
    pub number_of_symbols: u32,
    pub file_characteristics: u16,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub size_of_headers: u32,
    pub dll_characteristics: u16,
    pub number_of_rva_and_sizes: u32,
    pub sections: Vec<Section>,
    /// Offset of the section table.
    pub section_table: usize,
}

impl PeFile {
    /// Parses the headers of a PE image. Errors (never panics) on anything malformed.
    pub fn parse(data: &[u8]) -> Result<PeFile> {
        if slice(data, 0, 2)? != b"MZ" {
            bail!("no MZ signature (not a PE/EFI image)");
        }
        let e_lfanew = read_u32(data, 0x3c).context("reading e_lfanew")? as usize;
        if slice(data, e_lfanew, 4).context("reading the PE signature")? != b"PE\0\0" {
            bail!("no PE signature at e_lfanew {e_lfanew:#x} (not a PE/EFI image)");
        }
        let coff = e_lfanew + 4;
        let machine = read_u16(data, coff)?;
        let number_of_sections = read_u16(data, coff + 2)?;
        let pointer_to_symbol_table = read_u32(data, coff + 8)?;
        let number_of_symbols = read_u32(data, coff + 12)?;
        let size_of_optional_header = read_u16(data, coff + 16)? as usize;
        let file_characteristics = read_u16(data, coff + 18)?;
        let opt = coff + 20;
        slice(data, opt, size_of_optional_header).context("truncated optional header")?;
        let magic = read_u16(data, opt)?;
        let (nrva_off, dd_off) = match magic {
            MAGIC_PE32 => (92, 96),
            MAGIC_PE32_PLUS => (108, 112),
            m => bail!("unknown optional header magic {m:#x}"),
        };
        if size_of_optional_header < dd_off {
            bail!("optional header too small ({size_of_optional_header} bytes)");
        }
        let section_alignment = read_u32(data, opt + 32)?;
        let file_alignment = read_u32(data, opt + 36)?;
        let size_of_headers = read_u32(data, opt + 60)?;
        let dll_characteristics = read_u16(data, opt + 70)?;
        let number_of_rva_and_sizes = read_u32(data, opt + nrva_off)?;
        let max_dirs = (size_of_optional_header - dd_off) / 8;
        if number_of_rva_and_sizes as usize > max_dirs {
            bail!("NumberOfRvaAndSizes {number_of_rva_and_sizes} does not fit the optional header");
        }
        let section_table = opt + size_of_optional_header;
        let mut sections = Vec::with_capacity(usize::from(number_of_sections));
        for i in 0..usize::from(number_of_sections) {
            let h = section_table + i * SECTION_HEADER_SIZE;
            let raw = slice(data, h, SECTION_HEADER_SIZE)
                .with_context(|| format!("truncated section header {i}"))?;
            let mut name = [0u8; 8];
            name.copy_from_slice(&raw[..8]);
            sections.push(Section {
                name,
                virtual_size: read_u32(raw, 8)?,
                virtual_address: read_u32(raw, 12)?,
                size_of_raw_data: read_u32(raw, 16)?,
                pointer_to_raw_data: read_u32(raw, 20)?,
                characteristics: read_u32(raw, 36)?,
                header_offset: h,
            });
        }
        Ok(PeFile {
            e_lfanew,
            coff,
            opt,
            size_of_optional_header,
            magic,
            machine,
            number_of_sections,
            pointer_to_symbol_table,
            number_of_symbols,
            file_characteristics,
            section_alignment,
            file_alignment,
            size_of_headers,
            dll_characteristics,
            number_of_rva_and_sizes,
            sections,
            section_table,
        })
    }

    fn data_dir_offset(&self) -> usize {
        self.opt
            + if self.magic == MAGIC_PE32_PLUS {
                112
            } else {
                96
            }
    }

    /// File offset of the CheckSum field.
    pub fn checksum_offset(&self) -> usize {
        self.opt + 64
    }

    /// File offset of data directory entry `index` (8 bytes: address, size), if present.
    pub fn data_dir_entry_offset(&self, index: usize) -> Option<usize> {
        if index < self.number_of_rva_and_sizes as usize {
            Some(self.data_dir_offset() + 8 * index)
        } else {
            None
        }
    }

    /// Reads data directory entry `index` as (address, size); absent entries read as (0, 0).
    pub fn data_dir(&self, data: &[u8], index: usize) -> Result<(u32, u32)> {
        match self.data_dir_entry_offset(index) {
            Some(off) => Ok((read_u32(data, off)?, read_u32(data, off + 4)?)),
            None => Ok((0, 0)),
        }
    }

    /// The certificate table (file offset, size), if the image carries one.
    pub fn certificate_table(&self, data: &[u8]) -> Result<Option<(usize, usize)>> {
        let (addr, size) = self.data_dir(data, DIR_SECURITY)?;
        if addr == 0 && size == 0 {
            return Ok(None);
        }
        let (addr, size) = (addr as usize, size as usize);
        slice(data, addr, size).context("certificate table lies outside the file")?;
        Ok(Some((addr, size)))
    }

    pub fn is_signed(&self, data: &[u8]) -> Result<bool> {
        Ok(self.certificate_table(data)?.is_some())
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name_str() == name)
    }

    /// Data that systemd-stub identifies itself with in the `.sdmagic` section.
    pub fn sdmagic<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        self.section(".sdmagic").map(|s| s.content(data))
    }
}

/// Writes a section header at its `header_offset`.
pub fn write_section_header(data: &mut [u8], s: &Section) -> Result<()> {
    let h = s.header_offset;
    let end = h
        .checked_add(SECTION_HEADER_SIZE)
        .ok_or_else(|| anyhow!("offset overflow"))?;
    let buf = data
        .get_mut(h..end)
        .ok_or_else(|| anyhow!("section header at {h:#x} outside the file"))?;
    buf[..8].copy_from_slice(&s.name);
    buf[8..12].copy_from_slice(&s.virtual_size.to_le_bytes());
    buf[12..16].copy_from_slice(&s.virtual_address.to_le_bytes());
    buf[16..20].copy_from_slice(&s.size_of_raw_data.to_le_bytes());
    buf[20..24].copy_from_slice(&s.pointer_to_raw_data.to_le_bytes());
    // PointerToRelocations, PointerToLinenumbers, NumberOfRelocations, NumberOfLinenumbers
    // stay as they are (zero for sections we add: the slack is zero-filled).
    buf[36..40].copy_from_slice(&s.characteristics.to_le_bytes());
    Ok(())
}

/// IMAGE_FILE_MACHINE_AMD64.
pub const MACHINE_X86_64: u16 = 0x8664;
/// IMAGE_FILE_MACHINE_ARM64.
pub const MACHINE_AARCH64: u16 = 0xaa64;

/// A name for a PE machine type, as the errors below print it.
pub fn machine_name(machine: u16) -> String {
    match machine {
        MACHINE_X86_64 => "x86_64 (0x8664)".into(),
        MACHINE_AARCH64 => "arm64 (0xaa64)".into(),
        0x014c => "i386 (0x14c)".into(),
        0x01c4 => "arm (0x1c4)".into(),
        0x5064 => "riscv64 (0x5064)".into(),
        m => format!("machine {m:#x}"),
    }
}

/// The COFF machine type of a PE image (an EFI application, a kernel with its EFI stub, a
/// UKI). Errors, never panics, on anything that is not a PE image.
pub fn machine_of(data: &[u8]) -> Result<u16> {
    if slice(data, 0, 2)? != b"MZ" {
        bail!("no MZ signature (not a PE/EFI image)");
    }
    let e_lfanew = read_u32(data, 0x3c).context("reading e_lfanew")? as usize;
    if slice(data, e_lfanew, 4).context("reading the PE signature")? != b"PE\0\0" {
        bail!("no PE signature at e_lfanew {e_lfanew:#x} (not a PE/EFI image)");
    }
    read_u16(data, e_lfanew + 4).context("reading the COFF machine type")
}

/// Refuses a PE image whose machine type is not `expected`: `what` names the file (or the
/// role, such as "stub"), and the error says which architecture it is and which was expected.
pub fn expect_machine(data: &[u8], expected: u16, what: &str) -> Result<()> {
    let got = machine_of(data)
        .with_context(|| format!("{what}: expected a PE image for {}", machine_name(expected)))?;
    if got != expected {
        bail!(
            "{what} is a PE image for {}, expected {}",
            machine_name(got),
            machine_name(expected)
        );
    }
    Ok(())
}

/// A small but valid PE32+ EFI application (x86_64, SectionAlignment 0x1000, FileAlignment
/// 0x200): a `.text` section of `text_len` bytes (a deterministic pattern), and a `.sbat`
/// section with `sbat` if given. For tests that need a "kernel" without building one.
pub fn synthetic_efi_image(text_len: usize, nx_compat: bool, sbat: Option<&str>) -> Vec<u8> {
    synthetic_efi_image_for(MACHINE_X86_64, text_len, nx_compat, sbat)
}

/// [`synthetic_efi_image`] for another machine type (e.g. [`MACHINE_AARCH64`]): the same
/// layout, only the COFF machine differs (nothing here is executed).
pub fn synthetic_efi_image_for(
    machine: u16,
    text_len: usize,
    nx_compat: bool,
    sbat: Option<&str>,
) -> Vec<u8> {
    let e_lfanew = 0x80usize;
    let opt_size = 240usize; // PE32+ with 16 data directories
    let mut sections: Vec<([u8; 8], Vec<u8>, u32)> = Vec::new();
    let text: Vec<u8> = (0..text_len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect();
    sections.push((
        *b".text\0\0\0",
        text,
        SCN_CNT_CODE | SCN_MEM_READ | 0x2000_0000,
    ));
    if let Some(s) = sbat {
        sections.push((
            *b".sbat\0\0\0",
            s.as_bytes().to_vec(),
            SCN_CNT_INITIALIZED_DATA | SCN_MEM_READ,
        ));
    }
    let headers_end = e_lfanew + 4 + 20 + opt_size + SECTION_HEADER_SIZE * sections.len();
    // Room for more section headers, as in systemd-stub (so it can serve as a stub in tests).
    let size_of_headers = round_up(headers_end.max(0x600) as u64, 0x200) as usize;
    let mut data = vec![0u8; size_of_headers];
    data[0] = b'M';
    data[1] = b'Z';
    data[0x3c..0x40].copy_from_slice(&(e_lfanew as u32).to_le_bytes());
    data[e_lfanew..e_lfanew + 4].copy_from_slice(b"PE\0\0");
    let coff = e_lfanew + 4;
    let put16 = |d: &mut Vec<u8>, o: usize, v: u16| d[o..o + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |d: &mut Vec<u8>, o: usize, v: u32| d[o..o + 4].copy_from_slice(&v.to_le_bytes());
    put16(&mut data, coff, machine);
    put16(&mut data, coff + 2, sections.len() as u16);
    put16(&mut data, coff + 16, opt_size as u16);
    put16(&mut data, coff + 18, 0x0206); // executable, line numbers stripped, large address aware
    let opt = coff + 20;
    put16(&mut data, opt, MAGIC_PE32_PLUS);
    put32(&mut data, opt + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut data, opt + 20, 0x1000); // BaseOfCode
    data[opt + 24..opt + 32].copy_from_slice(&0x1_0000_0000u64.to_le_bytes()); // ImageBase
    put32(&mut data, opt + 32, 0x1000);
    put32(&mut data, opt + 36, 0x200);
    put16(&mut data, opt + 48, 1); // MajorSubsystemVersion
    put16(&mut data, opt + 68, 10); // EFI application
    put16(
        &mut data,
        opt + 70,
        if nx_compat { DLL_NX_COMPAT } else { 0 },
    );
    data[opt + 72..opt + 80].copy_from_slice(&0x10_0000u64.to_le_bytes());
    data[opt + 80..opt + 88].copy_from_slice(&0x1000u64.to_le_bytes());
    data[opt + 88..opt + 96].copy_from_slice(&0x10_0000u64.to_le_bytes());
    data[opt + 96..opt + 104].copy_from_slice(&0x1000u64.to_le_bytes());
    put32(&mut data, opt + 108, 16);
    put32(&mut data, opt + 60, size_of_headers as u32);
    let mut va = 0x1000u32;
    let mut code = 0u32;
    let mut init = 0u32;
    for (i, (name, content, ch)) in sections.iter().enumerate() {
        let h = opt + opt_size + i * SECTION_HEADER_SIZE;
        let ptr = data.len();
        let raw = round_up(content.len() as u64, 0x200) as usize;
        data.extend_from_slice(content);
        data.resize(ptr + raw, 0);
        data[h..h + 8].copy_from_slice(name);
        put32(&mut data, h + 8, content.len() as u32);
        put32(&mut data, h + 12, va);
        put32(&mut data, h + 16, raw as u32);
        put32(&mut data, h + 20, ptr as u32);
        put32(&mut data, h + 36, *ch);
        if ch & SCN_CNT_CODE != 0 {
            code += raw as u32;
        } else {
            init += raw as u32;
        }
        va = round_up(u64::from(va) + content.len().max(1) as u64, 0x1000) as u32;
    }
    put32(&mut data, opt + 4, code);
    put32(&mut data, opt + 8, init);
    put32(&mut data, opt + 56, va);
    data
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_up_works() {
        assert_eq!(round_up(0, 0x200), 0);
        assert_eq!(round_up(1, 0x200), 0x200);
        assert_eq!(round_up(0x200, 0x200), 0x200);
        assert_eq!(round_up(5, 0), 5);
    }

    #[test]
    fn synthetic_image_parses() {
        let d = synthetic_efi_image(1000, false, Some("sbat,1,x\n"));
        let pe = PeFile::parse(&d).unwrap();
        assert_eq!(pe.sections.len(), 2);
        assert_eq!(pe.section(".text").unwrap().content(&d).len(), 1000);
    }

    #[test]
    fn machine_of_reads_the_coff_machine() {
        let x86 = synthetic_efi_image(100, true, None);
        let arm = synthetic_efi_image_for(MACHINE_AARCH64, 100, true, None);
        assert_eq!(machine_of(&x86).unwrap(), MACHINE_X86_64);
        assert_eq!(machine_of(&arm).unwrap(), MACHINE_AARCH64);
        assert_eq!(PeFile::parse(&arm).unwrap().machine, MACHINE_AARCH64);
        expect_machine(&arm, MACHINE_AARCH64, "Image").unwrap();
        let e = expect_machine(&x86, MACHINE_AARCH64, "bzImage").unwrap_err();
        assert_eq!(
            e.to_string(),
            "bzImage is a PE image for x86_64 (0x8664), expected arm64 (0xaa64)"
        );
        let e = expect_machine(&arm, MACHINE_X86_64, "stub").unwrap_err();
        assert!(
            e.to_string().contains("stub is a PE image for arm64"),
            "{e}"
        );
    }

    #[test]
    fn machine_of_garbage_is_an_error_naming_the_file() {
        assert!(machine_of(b"").is_err());
        assert!(machine_of(b"MZ").is_err());
        let e = expect_machine(b"\x7fELF\x02\x01", MACHINE_AARCH64, "vmlinux").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.starts_with("vmlinux: expected a PE image for arm64 (0xaa64)")
                && text.contains("no MZ"),
            "{text}"
        );
        // An e_lfanew pointing past the end.
        let mut d = vec![0u8; 0x40];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(machine_of(&d).is_err());
        assert_eq!(machine_name(0x1234), "machine 0x1234");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(PeFile::parse(b"").is_err());
        assert!(PeFile::parse(b"MZ").is_err());
        let mut d = vec![0u8; 0x100];
        d[0] = b'M';
        d[1] = b'Z';
        d[0x3c] = 0xff;
        d[0x3d] = 0xff;
        d[0x3e] = 0xff;
        d[0x3f] = 0xff;
        assert!(PeFile::parse(&d).is_err());
    }
}
