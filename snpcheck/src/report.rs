//! Lenient, bounds-checked parser of the SEV-SNP ATTESTATION_REPORT (ABI spec #56860, table 23).
//!
//! Unlike `sev::firmware::guest::AttestationReport::from_bytes`, it accepts version 2 reports with
//! a masked CHIP_ID, non-zero reserved bytes and version 5 reports, and keeps the raw bytes so the
//! signature is checked over exactly what the firmware signed (0x000..0x2A0). Verification (not
//! this parser) refuses non-zero reserved bytes after the signature, see [`SIG_RESERVED_OFFSET`].

use crate::hex;
use crate::json::Json;

/// Size of a report.
pub const REPORT_LEN: usize = 0x4A0;
/// The firmware signs bytes 0x000..0x2A0.
pub const SIGNED_LEN: usize = 0x2A0;
/// Offset of the signature (R at +0, S at +0x48; 72-byte little-endian each).
pub const SIG_OFFSET: usize = 0x2A0;
/// Offset of the rest of the signature area after R and S: bytes 0x330..0x4A0 are reserved
/// (ABI spec #56860, ECDSA P-384 signature format: R 0x00..0x48, S 0x48..0x90, reserved
/// 0x90..0x200). The firmware writes zeros there, and every real report in tests/fixtures has
/// zeros there. These bytes are not covered by the signature, so anyone could fill them without
/// breaking it: verification refuses a report where any of them is non-zero (see
/// `verify::verify_signature`), so exactly one 1184-byte string verifies per signed report.
/// The parser itself stays lenient and still shows such a report.
pub const SIG_RESERVED_OFFSET: usize = SIG_OFFSET + 2 * 72;
/// Lowest and highest report version this parser knows.
pub const MIN_VERSION: u32 = 2;
pub const MAX_VERSION: u32 = 5;

/// Offsets of the fields.
pub mod off {
    pub const VERSION: usize = 0x000;
    pub const GUEST_SVN: usize = 0x004;
    pub const POLICY: usize = 0x008;
    pub const FAMILY_ID: usize = 0x010;
    pub const IMAGE_ID: usize = 0x020;
    pub const VMPL: usize = 0x030;
    pub const SIG_ALGO: usize = 0x034;
    pub const CURRENT_TCB: usize = 0x038;
    pub const PLATFORM_INFO: usize = 0x040;
    pub const KEY_INFO: usize = 0x048;
    pub const REPORT_DATA: usize = 0x050;
    pub const MEASUREMENT: usize = 0x090;
    pub const HOST_DATA: usize = 0x0C0;
    pub const ID_KEY_DIGEST: usize = 0x0E0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CPUID_FAM: usize = 0x188;
    pub const CPUID_MOD: usize = 0x189;
    pub const CPUID_STEP: usize = 0x18A;
    pub const CHIP_ID: usize = 0x1A0;
    pub const COMMITTED_TCB: usize = 0x1E0;
    pub const CURRENT_VERSION: usize = 0x1E8;
    pub const COMMITTED_VERSION: usize = 0x1EC;
    pub const LAUNCH_TCB: usize = 0x1F0;
    pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
    pub const CURRENT_MIT_VECTOR: usize = 0x200;
}

/// Policy bits.
pub mod policy {
    pub const SMT: u64 = 1 << 16;
    pub const RESERVED_ONE: u64 = 1 << 17;
    pub const MIGRATE_MA: u64 = 1 << 18;
    pub const DEBUG: u64 = 1 << 19;
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    pub const CXL_ALLOW: u64 = 1 << 21;
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    pub const RAPL_DIS: u64 = 1 << 23;
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
}

/// AMD EPYC product line (selects ARK/ASK and the TCB layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Parse a name, case-insensitive ("milan", "Genoa", ...).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// From CPUID family/model (as in v3+ reports).
    pub fn from_cpuid(family: u8, model: u8) -> Option<Self> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Some(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Some(Product::Genoa),
            (0x1A, 0x00..=0x1F) => Some(Product::Turin),
            _ => None,
        }
    }
}

/// A decoded TCB_VERSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcb {
    pub raw: u64,
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl Tcb {
    /// Decode with the product's byte layout: Milan/Genoa `[bl, tee, 0,0,0,0, snp, ucode]`,
    /// Turin `[fmc, bl, tee, snp, 0,0,0, ucode]`.
    pub fn decode(raw: u64, product: Product) -> Self {
        let b = raw.to_le_bytes();
        match product {
            Product::Turin => Tcb {
                raw,
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
            Product::Milan | Product::Genoa => Tcb {
                raw,
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
        }
    }

    pub fn to_json(self) -> Json {
        let mut j = Json::obj()
            .with("raw", format!("{:016x}", self.raw))
            .with("bootloader", self.bootloader)
            .with("tee", self.tee)
            .with("snp", self.snp)
            .with("microcode", self.microcode);
        if let Some(f) = self.fmc {
            j.set("fmc", f);
        }
        j
    }

    pub fn human(self) -> String {
        let fmc = self.fmc.map(|f| format!("fmc={f} ")).unwrap_or_default();
        format!(
            "{fmc}bl={} tee={} snp={} ucode={} (raw {:016x})",
            self.bootloader, self.tee, self.snp, self.microcode, self.raw
        )
    }
}

/// Why a byte string is not a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    Size(usize),
    Version(u32),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Size(n) => write!(
                f,
                "an attestation report is {REPORT_LEN} bytes, got {n} (truncated or oversized)"
            ),
            ReportError::Version(v) => write!(
                f,
                "unknown attestation report version {v} (this parser knows {MIN_VERSION}..={MAX_VERSION})"
            ),
        }
    }
}

/// A report, kept as its raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Report {
    raw: Box<[u8; REPORT_LEN]>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Report(v{})", self.version())
    }
}

impl Report {
    /// Parse exactly [`REPORT_LEN`] bytes of a known version.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let raw: [u8; REPORT_LEN] = bytes
            .try_into()
            .map_err(|_| ReportError::Size(bytes.len()))?;
        let r = Report { raw: Box::new(raw) };
        let v = r.version();
        if !(MIN_VERSION..=MAX_VERSION).contains(&v) {
            return Err(ReportError::Version(v));
        }
        Ok(r)
    }

    /// Raw bytes.
    pub fn bytes(&self) -> &[u8; REPORT_LEN] {
        &self.raw
    }

    /// The bytes covered by the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        self.slice(0, SIGNED_LEN)
    }

    /// A sub-slice; empty if out of range (cannot happen for the constants above).
    pub fn slice(&self, off: usize, len: usize) -> &[u8] {
        off.checked_add(len)
            .and_then(|end| self.raw.get(off..end))
            .unwrap_or(&[])
    }

    fn u8_at(&self, off: usize) -> u8 {
        self.raw.get(off).copied().unwrap_or(0)
    }

    fn u32_at(&self, off: usize) -> u32 {
        self.slice(off, 4)
            .try_into()
            .map(u32::from_le_bytes)
            .unwrap_or(0)
    }

    fn u64_at(&self, off: usize) -> u64 {
        self.slice(off, 8)
            .try_into()
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    }

    pub fn version(&self) -> u32 {
        self.u32_at(off::VERSION)
    }
    pub fn guest_svn(&self) -> u32 {
        self.u32_at(off::GUEST_SVN)
    }
    pub fn policy(&self) -> u64 {
        self.u64_at(off::POLICY)
    }
    pub fn vmpl(&self) -> u32 {
        self.u32_at(off::VMPL)
    }
    pub fn sig_algo(&self) -> u32 {
        self.u32_at(off::SIG_ALGO)
    }
    pub fn platform_info(&self) -> u64 {
        self.u64_at(off::PLATFORM_INFO)
    }
    pub fn key_info(&self) -> u32 {
        self.u32_at(off::KEY_INFO)
    }
    /// KEY_INFO bits 4:2: 0 = VCEK, 1 = VLEK, 7 = none.
    pub fn signing_key(&self) -> u32 {
        (self.key_info() >> 2) & 0x7
    }
    /// KEY_INFO bit 1: the signature is all zeros.
    pub fn mask_chip_key(&self) -> bool {
        self.key_info() & 0x2 != 0
    }
    pub fn author_key_en(&self) -> bool {
        self.key_info() & 0x1 != 0
    }
    pub fn report_data(&self) -> &[u8] {
        self.slice(off::REPORT_DATA, 64)
    }
    pub fn measurement(&self) -> &[u8] {
        self.slice(off::MEASUREMENT, 48)
    }
    pub fn host_data(&self) -> &[u8] {
        self.slice(off::HOST_DATA, 32)
    }
    pub fn chip_id(&self) -> &[u8] {
        self.slice(off::CHIP_ID, 64)
    }
    /// CHIP_ID all zero: masked (MASK_CHIP_ID) or not provided.
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id().iter().all(|&b| b == 0)
    }
    pub fn reported_tcb_raw(&self) -> u64 {
        self.u64_at(off::REPORTED_TCB)
    }
    /// CPUID family, model, stepping (version 3 and later).
    pub fn cpuid(&self) -> Option<(u8, u8, u8)> {
        (self.version() >= 3).then(|| {
            (
                self.u8_at(off::CPUID_FAM),
                self.u8_at(off::CPUID_MOD),
                self.u8_at(off::CPUID_STEP),
            )
        })
    }
    /// Product from the CPUID fields, where the report has them.
    pub fn product(&self) -> Option<Product> {
        self.cpuid().and_then(|(f, m, _)| Product::from_cpuid(f, m))
    }
    /// Signature R and S as 72-byte little-endian fields.
    pub fn signature_r(&self) -> &[u8] {
        self.slice(SIG_OFFSET, 72)
    }
    pub fn signature_s(&self) -> &[u8] {
        self.slice(SIG_OFFSET + 72, 72)
    }
    /// The reserved bytes after R and S (0x330..0x4A0), see [`SIG_RESERVED_OFFSET`].
    pub fn signature_reserved(&self) -> &[u8] {
        self.slice(SIG_RESERVED_OFFSET, REPORT_LEN - SIG_RESERVED_OFFSET)
    }
    /// Offset and value of the first non-zero reserved byte after the signature, if any.
    pub fn signature_reserved_nonzero(&self) -> Option<(usize, u8)> {
        self.signature_reserved()
            .iter()
            .position(|&b| b != 0)
            .map(|i| (SIG_RESERVED_OFFSET + i, self.u8_at(SIG_RESERVED_OFFSET + i)))
    }

    /// Every field, in report order: (name, JSON value, human text).
    /// `product` selects the TCB layout (Milan layout when unknown).
    pub fn fields(&self, product: Option<Product>) -> Vec<(&'static str, Json, String)> {
        let p = product.or(self.product()).unwrap_or(Product::Milan);
        let mut f: Vec<(&'static str, Json, String)> = Vec::new();
        let mut num = |name: &'static str, v: u64, text: String| {
            f.push((name, Json::UInt(v), text));
        };
        num(
            "version",
            u64::from(self.version()),
            self.version().to_string(),
        );
        num(
            "guest_svn",
            u64::from(self.guest_svn()),
            self.guest_svn().to_string(),
        );
        num("policy", self.policy(), describe_policy(self.policy()));
        let mut hexf = |name: &'static str, b: &[u8]| {
            let h = hex::encode(b);
            f.push((name, Json::Str(h.clone()), h));
        };
        hexf("family_id", self.slice(off::FAMILY_ID, 16));
        hexf("image_id", self.slice(off::IMAGE_ID, 16));
        let mut v = Vec::new();
        v.push(("vmpl", Json::from(self.vmpl()), self.vmpl().to_string()));
        v.push((
            "signature_algo",
            Json::from(self.sig_algo()),
            match self.sig_algo() {
                1 => "1 (ECDSA P-384 with SHA-384)".to_string(),
                n => format!("{n} (unknown)"),
            },
        ));
        f.extend(v);
        let tcb = |name: &'static str, raw: u64| {
            let t = Tcb::decode(raw, p);
            (name, t.to_json(), t.human())
        };
        f.push(tcb("current_tcb", self.u64_at(off::CURRENT_TCB)));
        f.push((
            "platform_info",
            Json::UInt(self.platform_info()),
            describe_platform_info(self.platform_info()),
        ));
        let signing = match self.signing_key() {
            0 => "VCEK",
            1 => "VLEK",
            7 => "none",
            _ => "reserved",
        };
        f.push((
            "key_info",
            Json::obj()
                .with("raw", self.key_info())
                .with("author_key_en", self.author_key_en())
                .with("mask_chip_key", self.mask_chip_key())
                .with("signing_key", signing),
            format!(
                "{:#x} (author_key_en={} mask_chip_key={} signing_key={})",
                self.key_info(),
                self.author_key_en(),
                self.mask_chip_key(),
                signing
            ),
        ));
        let mut hexf = |name: &'static str, b: &[u8]| {
            let h = hex::encode(b);
            f.push((name, Json::Str(h.clone()), h));
        };
        hexf("report_data", self.report_data());
        hexf("measurement", self.measurement());
        hexf("host_data", self.host_data());
        hexf("id_key_digest", self.slice(off::ID_KEY_DIGEST, 48));
        hexf("author_key_digest", self.slice(off::AUTHOR_KEY_DIGEST, 48));
        hexf("report_id", self.slice(off::REPORT_ID, 32));
        hexf("report_id_ma", self.slice(off::REPORT_ID_MA, 32));
        f.push(tcb("reported_tcb", self.reported_tcb_raw()));
        if let Some((fam, model, step)) = self.cpuid() {
            f.push((
                "cpuid",
                Json::obj()
                    .with("family", fam)
                    .with("model", model)
                    .with("stepping", step)
                    .with("product", self.product().map(Product::name)),
                format!(
                    "family {fam:#x} model {model:#x} stepping {step:#x} ({})",
                    self.product().map_or("unknown product", Product::name)
                ),
            ));
        }
        let chip = hex::encode(self.chip_id());
        let chip_text = if self.chip_id_masked() {
            format!("{chip} (masked)")
        } else {
            chip.clone()
        };
        f.push(("chip_id", Json::Str(chip), chip_text));
        f.push(tcb("committed_tcb", self.u64_at(off::COMMITTED_TCB)));
        let ver = |name: &'static str, o: usize| {
            let (build, minor, major) = (self.u8_at(o), self.u8_at(o + 1), self.u8_at(o + 2));
            (
                name,
                Json::Str(format!("{major}.{minor}.{build}")),
                format!("{major}.{minor}.{build}"),
            )
        };
        f.push(ver("current_version", off::CURRENT_VERSION));
        f.push(ver("committed_version", off::COMMITTED_VERSION));
        f.push(tcb("launch_tcb", self.u64_at(off::LAUNCH_TCB)));
        if self.version() >= 5 {
            let l = self.u64_at(off::LAUNCH_MIT_VECTOR);
            let c = self.u64_at(off::CURRENT_MIT_VECTOR);
            f.push(("launch_mit_vector", Json::UInt(l), format!("{l:#018x}")));
            f.push(("current_mit_vector", Json::UInt(c), format!("{c:#018x}")));
        }
        let r = hex::encode(self.signature_r());
        let s = hex::encode(self.signature_s());
        f.push((
            "signature",
            Json::obj().with("r_le", r.clone()).with("s_le", s.clone()),
            format!("r(le)={r} s(le)={s}"),
        ));
        f
    }

    /// All fields as one JSON object.
    pub fn to_json(&self, product: Option<Product>) -> Json {
        Json::Obj(
            self.fields(product)
                .into_iter()
                .map(|(k, v, _)| (k.to_string(), v))
                .collect(),
        )
    }
}

/// Human description of a guest policy.
pub fn describe_policy(p: u64) -> String {
    let mut parts = vec![format!("abi>={}.{}", (p >> 8) & 0xff, p & 0xff)];
    let names = [
        (policy::SMT, "SMT allowed"),
        (policy::MIGRATE_MA, "migration agent allowed"),
        (policy::DEBUG, "DEBUG allowed"),
        (policy::SINGLE_SOCKET, "single socket"),
        (policy::CXL_ALLOW, "CXL allowed"),
        (policy::MEM_AES_256_XTS, "AES-256-XTS required"),
        (policy::RAPL_DIS, "RAPL disabled"),
        (policy::CIPHERTEXT_HIDING, "ciphertext hiding"),
        (policy::PAGE_SWAP_DISABLE, "page swap disabled"),
    ];
    for (bit, name) in names {
        if p & bit != 0 {
            parts.push(name.to_string());
        }
    }
    format!("{p:#x} ({})", parts.join(", "))
}

/// Human description of PLATFORM_INFO.
pub fn describe_platform_info(p: u64) -> String {
    let names = [
        (0, "SMT enabled"),
        (1, "TSME enabled"),
        (2, "ECC enabled"),
        (3, "RAPL disabled"),
        (4, "ciphertext hiding enabled"),
        (5, "alias check complete"),
        (7, "TIO enabled"),
    ];
    let parts: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| p & (1u64 << bit) != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("{p:#x} ({})", parts.join(", "))
}

/// Read a report from file contents: raw binary (exactly 1184 bytes) or hex text.
pub fn from_file_bytes(bytes: &[u8]) -> Result<Report, String> {
    if bytes.len() == REPORT_LEN {
        return Report::parse(bytes).map_err(|e| e.to_string());
    }
    let looks_hex = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if looks_hex {
        let decoded = hex::decode_text(bytes).map_err(|e| format!("hex report: {e}"))?;
        return Report::parse(&decoded).map_err(|e| e.to_string());
    }
    Err(ReportError::Size(bytes.len()).to_string())
}
