//! Unified Kernel Image assembly: systemd-stub 257 plus `.osrel .cmdline .uname .linux
//! .initrd` and the merged `.sbat`, laid out exactly as `ukify build` 257 lays them out, so for the same
//! inputs the bytes are identical (a test runs ukify 257 from Debian trixie as the judge).
//!
//! Entry points: [`build_uki`] (bytes in, bytes out), [`crate::authenticode::sign`],
//! [`predict_pcr11`], [`inspect`]. The files-in, files-out pipeline (`make-uki`) and the
//! pinned stub are the host's (`nekos_packaging::uki`).

use crate::authenticode;
use crate::pe::{self, PeFile, Section};
use anyhow::{Context, Result, anyhow, bail};
use rsa::sha2::{Digest, Sha256};

/// The generic SBAT header line that must come first.
pub const SBAT_HEADER: &str =
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n";
/// What ukify adds for a UKI when no `--sbat` is given.
pub const UKI_SBAT: &str = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n\
uki,1,UKI,uki,1,https://uapi-group.org/specifications/specs/unified_kernel_image/\n";

/// The os-release of NekOS, embedded as `.osrel` by default.
pub const NEKOS_OS_RELEASE: &str = include_str!("../../data/os-release");

/// Inputs of a UKI. Sections that are empty (`cmdline`, `osrel`, `uname`) are left out, as
/// ukify does; `initrd` must not be empty.
#[derive(Clone, Copy, Debug)]
pub struct UkiInputs<'a> {
    /// systemd-stub of the kernel's architecture (`linuxx64.efi.stub`, `linuxaa64.efi.stub`).
    pub stub: &'a [u8],
    /// The kernel: a PE image (bzImage or arm64 Image with the EFI stub) of the stub's machine.
    pub linux: &'a [u8],
    /// The initramfs (one archive; see [`join_initrds`] for several).
    pub initrd: &'a [u8],
    /// Kernel command line; whitespace is collapsed as `ukify --cmdline=…` does.
    pub cmdline: &'a str,
    /// os-release text, embedded verbatim ([`NEKOS_OS_RELEASE`]).
    pub osrel: &'a str,
    /// Kernel release (`uname -r`), if any; see [`kernel_release`].
    pub uname: Option<&'a str>,
    /// Extra SBAT text (first line `sbat,…`); `None` = ukify's default UKI entry.
    pub sbat: Option<&'a str>,
}

/// Several initrds concatenated as ukify does: each padded to 4 bytes.
pub fn join_initrds(initrds: &[&[u8]]) -> Vec<u8> {
    if let [one] = initrds {
        return one.to_vec();
    }
    let mut out = Vec::new();
    for i in initrds {
        out.extend_from_slice(i);
        out.resize(pe::round_up(out.len() as u64, 4) as usize, 0);
    }
    out
}

/// `' '.join(s.split())` in Python: Python's whitespace includes U+001C..U+001F.
pub fn collapse_cmdline(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `str.splitlines()` (without keepends).
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            out.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = chars.peek()
            {
                chars.next();
                next = j + 1;
            }
            start = next;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// The SBAT lines (after the `sbat,` header line) of every `.sbat` section of a PE image.
fn sbat_lines_of_pe(data: &[u8], what: &str) -> Result<Vec<String>> {
    let Ok(pe) = PeFile::parse(data) else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    for s in pe.sections.iter().filter(|s| s.name_str() == ".sbat") {
        let raw = s.raw_data(data);
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let text = std::str::from_utf8(&raw[..end])
            .map_err(|_| anyhow!("{what}: .sbat section is not UTF-8"))?;
        let split = py_splitlines(text);
        match split.split_first() {
            Some((first, rest)) if first.starts_with("sbat,") => {
                lines.extend(rest.iter().map(|l| l.to_string()))
            }
            _ => eprintln!("uki: {what} has no valid SBAT section, skipping it"),
        }
    }
    Ok(lines)
}

/// The merged `.sbat` content: header line, the stub's entries, the kernel's, then `extra`
/// (default [`UKI_SBAT`]), each without its own header line; newline and a NUL at the end.
pub fn merge_sbat(stub: &[u8], linux: &[u8], extra: Option<&str>) -> Result<String> {
    let mut lines = sbat_lines_of_pe(stub, "stub")?;
    lines.extend(sbat_lines_of_pe(linux, "kernel")?);
    let extra = extra.unwrap_or(UKI_SBAT);
    let split = py_splitlines(extra);
    match split.split_first() {
        Some((first, rest)) if first.starts_with("sbat,") => {
            lines.extend(rest.iter().map(|l| l.to_string()))
        }
        _ => bail!("sbat: extra SBAT text must start with an \"sbat,\" header line"),
    }
    Ok(format!("{SBAT_HEADER}{}\n\0", lines.join("\n")))
}

/// The kernel release, as `ukify` autodetects it: from a bzImage's real-mode header, else
/// (an arm64 `Image`, which has no such header) from the `Linux version X (` banner in the
/// uncompressed image.
pub fn kernel_release(linux: &[u8]) -> Result<String> {
    if pe::slice(linux, 0x202, 4).ok() != Some(b"HdrS".as_slice()) {
        return kernel_release_from_banner(linux).ok_or_else(|| {
            anyhow!(
                "kernel: no x86 boot protocol header (HdrS) and no `Linux version …` banner, \
                 cannot read its release; pass --uname"
            )
        });
    }
    let off = 0x200 + pe::read_u16(linux, 0x20e)? as usize;
    let text = linux.get(off..).unwrap_or(&[]);
    let text = &text[..text.len().min(128)];
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let s =
        std::str::from_utf8(text).map_err(|_| anyhow!("kernel: version string is not UTF-8"))?;
    let release = s.split(' ').next().unwrap_or("");
    if release.is_empty()
        || !release
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._+-".contains(&b))
    {
        bail!("kernel: cannot parse the version string {s:?}; pass --uname");
    }
    Ok(release.to_string())
}

/// ukify's generic scraper: the first `Linux version D.S (` where `S` has no whitespace
/// (init/version-timestamp.c's `linux_banner`, plain text in an uncompressed arm64 Image).
fn kernel_release_from_banner(linux: &[u8]) -> Option<String> {
    const BANNER: &[u8] = b"Linux version ";
    let mut from = 0;
    while let Some(pos) = linux
        .get(from..)?
        .windows(BANNER.len())
        .position(|w| w == BANNER)
    {
        let start = from + pos + BANNER.len();
        from = start;
        let rest = &linux[start..];
        let end = rest.iter().take(128).position(|b| b.is_ascii_whitespace());
        let Some(end) = end else { continue };
        let release = &rest[..end];
        let plausible = release.len() >= 3
            && release[0].is_ascii_digit()
            && release[1] == b'.'
            && release.iter().all(|b| b.is_ascii_graphic())
            && rest.get(end..end + 2) == Some(b" (".as_slice());
        if plausible {
            return std::str::from_utf8(release).ok().map(str::to_string);
        }
    }
    None
}

fn to_u32(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| anyhow!("UKI too large: {what} {v:#x} does not fit 32 bits"))
}

/// Assembles a UKI exactly as `ukify build` 257 does (see the module docs).
pub fn build_uki(inputs: &UkiInputs<'_>) -> Result<Vec<u8>> {
    let linux_pe = PeFile::parse(inputs.linux).map_err(|e| {
        anyhow!("kernel is not a PE image (need a bzImage built with CONFIG_EFI_STUB): {e}")
    })?;
    if inputs.initrd.is_empty() {
        bail!("initramfs is empty");
    }
    let stub_pe = PeFile::parse(inputs.stub).map_err(|e| anyhow!("stub is not a PE image: {e}"))?;
    if stub_pe.magic != pe::MAGIC_PE32_PLUS {
        bail!("stub is not a 64-bit (PE32+) EFI image");
    }
    match stub_pe.sdmagic(inputs.stub) {
        Some(m) if m.starts_with(b"#### LoaderInfo: systemd-stub") => {}
        _ => bail!("stub is not systemd-stub (no .sdmagic \"#### LoaderInfo: systemd-stub\")"),
    }
    if stub_pe.is_signed(inputs.stub)? {
        bail!("stub is signed; refusing (use the unsigned linuxx64.efi.stub)");
    }
    // The UKI is the stub with sections added, so it runs only on the stub's architecture,
    // and the stub can start only a kernel of its own.
    if linux_pe.machine != stub_pe.machine {
        bail!(
            "kernel is a PE image for {}, but the stub is for {}: a UKI needs the stub of the \
             kernel's architecture (linuxx64.efi.stub for x86_64, linuxaa64.efi.stub for arm64)",
            pe::machine_name(linux_pe.machine),
            pe::machine_name(stub_pe.machine)
        );
    }

    let cmdline = collapse_cmdline(inputs.cmdline);
    let sbat = merge_sbat(inputs.stub, inputs.linux, inputs.sbat)?;
    let mut new_sections: Vec<(&str, &[u8])> = Vec::new();
    if !inputs.osrel.is_empty() {
        new_sections.push((".osrel", inputs.osrel.as_bytes()));
    }
    if !cmdline.is_empty() {
        new_sections.push((".cmdline", cmdline.as_bytes()));
    }
    if let Some(u) = inputs.uname.filter(|u| !u.is_empty()) {
        new_sections.push((".uname", u.as_bytes()));
    }
    new_sections.push((".linux", inputs.linux));
    new_sections.push((".initrd", inputs.initrd));
    new_sections.push((".sbat", sbat.as_bytes()));

    let mut data = inputs.stub.to_vec();
    let pe0 = stub_pe;
    let fa = u64::from(pe0.file_alignment);
    let sa = u64::from(pe0.section_alignment);
    // PE/COFF: FileAlignment a power of two in 512..=64K, SectionAlignment >= FileAlignment.
    if !fa.is_power_of_two() || !(0x200..=0x10000).contains(&fa) || !sa.is_power_of_two() || sa < fa
    {
        bail!("stub has an invalid FileAlignment {fa:#x} / SectionAlignment {sa:#x}");
    }
    let mut file_characteristics = pe0.file_characteristics;
    let mut symtab = (pe0.pointer_to_symbol_table, pe0.number_of_symbols);

    // Strip a symbol table at the end of the file, as ukify does for old stubs.
    if pe0.pointer_to_symbol_table != 0 {
        let start = pe0.pointer_to_symbol_table as u64;
        let mut size = 18 * u64::from(pe0.number_of_symbols);
        if let Ok(strtab) = pe::read_u32(&data, (start + size) as usize) {
            size += u64::from(strtab);
        }
        if start + size == data.len() as u64 {
            data.truncate(start as usize);
            symtab = (0, 0);
            file_characteristics |= pe::FILE_LOCAL_SYMS_STRIPPED;
        }
    }

    // Align section file offsets and sizes to FileAlignment, as ukify does for old stubs.
    let mut sections: Vec<Section> = pe0.sections.clone();
    for i in 0..sections.len() {
        let oldp = u64::from(sections[i].pointer_to_raw_data);
        let oldsz = u64::from(sections[i].size_of_raw_data);
        let newp = pe::round_up(oldp, fa);
        let newsz = pe::round_up(oldsz, fa);
        let (padp, padsz) = (newp - oldp, newsz - oldsz);
        if padp == 0 && padsz == 0 {
            continue;
        }
        sections[i].pointer_to_raw_data = to_u32(newp, "PointerToRawData")?;
        sections[i].size_of_raw_data = to_u32(newsz, "SizeOfRawData")?;
        for later in sections.iter_mut().skip(i + 1) {
            later.pointer_to_raw_data = to_u32(
                u64::from(later.pointer_to_raw_data) + padp + padsz,
                "PointerToRawData",
            )?;
        }
        let len = data.len();
        let a = (oldp as usize).min(len);
        let b = ((oldp + oldsz) as usize).min(len);
        let mut nd = Vec::with_capacity(len + (padp + padsz) as usize);
        nd.extend_from_slice(&data[..a]);
        nd.resize(nd.len() + padp as usize, 0);
        nd.extend_from_slice(&data[a..b]);
        nd.resize(nd.len() + padsz as usize, 0);
        nd.extend_from_slice(&data[b..]);
        data = nd;
    }
    let size_of_headers = pe::round_up(u64::from(pe0.size_of_headers), fa);

    let n_original = sections.len();
    let mut dll_characteristics = pe0.dll_characteristics;
    let mut size_of_initialized_data = u64::from(pe::read_u32(&data, pe0.opt + 8)?);
    let mut added: Vec<usize> = Vec::new();

    for (name, content) in new_sections {
        let last = sections
            .last()
            .ok_or_else(|| anyhow!("stub has no sections"))?
            .clone();
        let header_offset = last.header_offset + pe::SECTION_HEADER_SIZE;
        if (header_offset + pe::SECTION_HEADER_SIZE) as u64 > size_of_headers {
            bail!("stub: not enough header space to add section {name}");
        }
        let len = content.len() as u64;
        let mut name_bytes = [0u8; 8];
        if name.len() > 8 {
            bail!("section name {name} longer than 8 bytes");
        }
        name_bytes[..name.len()].copy_from_slice(name.as_bytes());
        let mut characteristics = pe::SCN_MEM_READ;
        if name == ".linux" {
            characteristics |= pe::SCN_CNT_CODE;
            if linux_pe.dll_characteristics & pe::DLL_NX_COMPAT == 0 {
                dll_characteristics &= !pe::DLL_NX_COMPAT;
            }
        } else {
            characteristics |= pe::SCN_CNT_INITIALIZED_DATA;
        }

        // A section the stub already has (.sbat): replace its content in place.
        if let Some(i) = sections[..n_original]
            .iter()
            .position(|s| s.name_str() == name && name != ".dtbauto")
        {
            let s = &sections[i];
            if u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data) > data.len() as u64
            {
                bail!("stub: its {name} section lies outside the file");
            }
            if len > u64::from(s.size_of_raw_data) {
                bail!(
                    "{name} ({len} bytes) does not fit into the stub's {name} section ({} bytes)",
                    s.size_of_raw_data
                );
            }
            let start = (s.pointer_to_raw_data as usize).min(data.len());
            let tail_from = match sections.get(i + 1) {
                Some(next) => next.pointer_to_raw_data as usize,
                None => start + s.size_of_raw_data as usize,
            }
            .min(data.len())
            .max(start);
            let mut nd = Vec::with_capacity(data.len());
            nd.extend_from_slice(&data[..start]);
            nd.extend_from_slice(content);
            nd.resize(nd.len() + (s.size_of_raw_data as usize - content.len()), 0);
            nd.extend_from_slice(&data[tail_from..]);
            data = nd;
            sections[i].virtual_size = to_u32(len, "VirtualSize")?;
            continue;
        }

        let ptr = pe::round_up(data.len() as u64, fa);
        let raw_size = pe::round_up(len, fa);
        let va = pe::round_up(
            u64::from(last.virtual_address) + u64::from(last.virtual_size),
            sa,
        );
        data.resize(ptr as usize, 0);
        data.extend_from_slice(content);
        data.resize((ptr + raw_size) as usize, 0);
        sections.push(Section {
            name: name_bytes,
            virtual_size: to_u32(len, "VirtualSize")?,
            virtual_address: to_u32(va, "VirtualAddress")?,
            size_of_raw_data: to_u32(raw_size, "SizeOfRawData")?,
            pointer_to_raw_data: to_u32(ptr, "PointerToRawData")?,
            characteristics,
            header_offset,
        });
        added.push(sections.len() - 1);
        size_of_initialized_data += len;
    }

    let last = sections.last().ok_or_else(|| anyhow!("no sections"))?;
    let size_of_image = pe::round_up(
        u64::from(last.virtual_address) + u64::from(last.virtual_size),
        sa,
    );

    // Write the headers back.
    let coff = pe0.coff;
    let opt = pe0.opt;
    pe::write_u16(
        &mut data,
        coff + 2,
        u16::try_from(sections.len()).map_err(|_| anyhow!("too many sections"))?,
    )?;
    pe::write_u32(&mut data, coff + 8, symtab.0)?;
    pe::write_u32(&mut data, coff + 12, symtab.1)?;
    pe::write_u16(&mut data, coff + 18, file_characteristics)?;
    pe::write_u32(
        &mut data,
        opt + 8,
        to_u32(size_of_initialized_data, "SizeOfInitializedData")?,
    )?;
    pe::write_u32(&mut data, opt + 56, to_u32(size_of_image, "SizeOfImage")?)?;
    pe::write_u32(
        &mut data,
        opt + 60,
        to_u32(size_of_headers, "SizeOfHeaders")?,
    )?;
    pe::write_u32(&mut data, pe0.checksum_offset(), 0)?;
    pe::write_u16(&mut data, opt + 70, dll_characteristics)?;
    for (i, s) in sections.iter().enumerate() {
        if added.contains(&i) {
            let end = s.header_offset + pe::SECTION_HEADER_SIZE;
            data.get_mut(s.header_offset..end)
                .ok_or_else(|| anyhow!("section header outside the file"))?
                .fill(0);
        }
        pe::write_section_header(&mut data, s)?;
    }
    // Sanity: the result parses and has every section.
    let check = PeFile::parse(&data).context("assembled UKI does not parse")?;
    if check.sections.len() != sections.len() {
        bail!("assembled UKI: section count mismatch");
    }
    Ok(data)
}

/// The sections systemd-stub 257 measures into PCR 11, in its order (`.pcrsig` is not).
pub const PCR11_SECTIONS: [&str; 14] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
];

/// The SHA-256 PCR 11 value systemd-stub 257 leaves after booting `uki` (before any
/// userspace phase strings): for each present section in [`PCR11_SECTIONS`] order, extend
/// SHA-256(name ‖ NUL), then SHA-256(the VirtualSize bytes of its content). Signed or not
/// makes no difference. Judged against `systemd-measure calculate` 257 in the tests.
pub fn predict_pcr11(uki: &[u8]) -> Result<[u8; 32]> {
    let pe = PeFile::parse(uki)?;
    let mut pcr = [0u8; 32];
    let mut extend = |digest: [u8; 32]| {
        let mut h = Sha256::new();
        h.update(pcr);
        h.update(digest);
        pcr = h.finalize().into();
    };
    for name in PCR11_SECTIONS {
        let Some(s) = pe.section(name) else { continue };
        let mut tag = name.as_bytes().to_vec();
        tag.push(0);
        extend(Sha256::digest(&tag).into());
        let raw = s.raw_data(uki);
        let vs = s.virtual_size as usize;
        // The stub measures VirtualSize bytes; UKIs keep them inside the raw data.
        let content = raw.get(..vs).ok_or_else(|| {
            anyhow!("section {name}: VirtualSize {vs:#x} exceeds its raw data in the file")
        })?;
        let h = Sha256::new_with_prefix(content);
        extend(h.finalize().into());
    }
    Ok(pcr)
}

/// SHA-256 as lowercase hex.
pub use crate::digest::sha256_hex;

/// One line of [`inspect`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct SectionInfo {
    pub name: String,
    pub virtual_size: u32,
    pub size_of_raw_data: u32,
    pub virtual_address: u32,
    pub pointer_to_raw_data: u32,
    /// SHA-256 of min(VirtualSize, SizeOfRawData) bytes (what systemd-stub measures).
    pub sha256: String,
}

/// What `cargo nekos inspect` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inspection {
    pub size: usize,
    pub sha256: String,
    pub authenticode_sha256: String,
    pub signed: bool,
    pub signature_verifies: Option<bool>,
    /// PCR 11 after systemd-stub, if this is a UKI (has `.linux`).
    pub pcr11_sha256: Option<String>,
    pub sections: Vec<SectionInfo>,
}

/// Lists the sections of a PE image with sizes and hashes, and its Authenticode hash.
pub fn inspect(data: &[u8]) -> Result<Inspection> {
    let pe = PeFile::parse(data)?;
    let sections = pe
        .sections
        .iter()
        .map(|s| SectionInfo {
            name: s.name_str(),
            virtual_size: s.virtual_size,
            size_of_raw_data: s.size_of_raw_data,
            virtual_address: s.virtual_address,
            pointer_to_raw_data: s.pointer_to_raw_data,
            sha256: sha256_hex(s.content(data)),
        })
        .collect();
    let signed = pe.is_signed(data)?;
    Ok(Inspection {
        size: data.len(),
        sha256: sha256_hex(data),
        authenticode_sha256: hex::encode(authenticode::authenticode_sha256(data)?),
        signed,
        signature_verifies: if signed {
            Some(authenticode::verify(data, None).is_ok())
        } else {
            None
        },
        pcr11_sha256: if pe.section(".linux").is_some() {
            predict_pcr11(data).ok().map(hex::encode)
        } else {
            None
        },
        sections,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_like_python() {
        assert_eq!(py_splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\n"), vec!["a"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("\n\n"), vec!["", ""]);
    }

    #[test]
    fn release_from_the_banner_as_ukify_scrapes_it() {
        let img = b"\0\0Linux version of nothing\0Linux version 6.12.74+nekos (nekos@nekos) (gcc) #1 SMP\0";
        assert_eq!(kernel_release(img).unwrap(), "6.12.74+nekos");
        assert!(kernel_release(b"Linux version 6.12").is_err());
        assert!(kernel_release(b"").is_err());
        let e = kernel_release(b"MZ no banner").unwrap_err().to_string();
        assert!(e.contains("pass --uname"), "{e}");
    }

    #[test]
    fn cmdline_collapses() {
        assert_eq!(collapse_cmdline("  a \t b\n c  "), "a b c");
    }

    #[test]
    fn initrds_pad_to_4() {
        assert_eq!(join_initrds(&[b"abc", b"de"]), b"abc\0de\0\0".to_vec());
        assert_eq!(join_initrds(&[b"abc"]), b"abc".to_vec());
    }
}
