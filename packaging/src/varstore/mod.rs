//! UEFI variable stores for OVMF, generated in Rust: three presets, each written as a QEMU
//! `uefi-vars` JSON file (QEMU_PV_VARS OVMF) and as a raw 4 MiB OVMF_VARS image
//! (540672 bytes, the layout of Debian's `OVMF_VARS_4M.fd`, for SMM Secure Boot OVMF).
//!
//! Presets, and the `virt-fw-vars` (PyPI/Debian `virt-firmware` 24.11) invocation each one
//! reproduces byte for byte (`-i OVMF_VARS_4M.fd … -o raw --output-json json`):
//!
//! - [`Preset::Blank`]: no variables, Secure Boot off. `virt-fw-vars -i OVMF_VARS_4M.fd`.
//! - [`Preset::Microsoft`]: virt-fw-vars' own recipe for "default (microsoft) secure boot
//!   certificates" (its man page; the Red Hat/Fedora practice for `OVMF_VARS.secboot.fd`):
//!   `virt-fw-vars --enroll-redhat --secure-boot`. PK = the "Red Hat Secure Boot (PK/KEK
//!   key 1)" certificate: a distribution's own PK/KEK certificate, whose private key stays
//!   with the distribution — the pattern Debian's `OVMF_VARS_4M.ms.fd` follows too (with
//!   "Debian UEFI Secure Boot (PK/KEK key)", which the .deb below does not ship).
//!   `--enroll-generate` was not chosen: its random PK makes the store irreproducible. Owner
//!   `a0baa8a3-041d-48a8-bc87-c36d121b5e3d` (OvmfEnrollDefaultKeys); KEK = that same
//!   certificate, Microsoft Corporation KEK CA 2011 and KEK 2K CA 2023 (owner Microsoft);
//!   db = Microsoft Windows Production PCA 2011, Windows UEFI CA 2023, Microsoft Corporation
//!   UEFI CA 2011, Microsoft UEFI CA 2023 (owner Microsoft); dbx = the dummy entry
//!   (SHA-256 of nothing); SecureBootEnable = 1, CustomMode = 0.
//!   The certificates come from Debian trixie's `python3-virt-firmware` .deb (pinned by
//!   SHA-256, unpacked into the cache by [`crate::uki::stub::fetch_deb`]), each certificate
//!   pinned by SHA-256 too. Nothing is downloaded at boot.
//! - [`Preset::Custom`]: the project's hierarchy from a keys dir (see [`crate::keys`]):
//!   `virt-fw-vars --set-pk G PK.crt --add-kek G KEK.crt --add-db G db.crt --secure-boot`,
//!   G = the dir's `GUID` file (else [`crate::keys::NEKOS_OWNER_GUID`]).
//!
//! Timestamps as virt-fw-vars sets them: a signature database gets the latest notBefore
//! of its certificates; PK (cleared first) and the dummy dbx at least 2010-01-01.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod raw;

pub use cli::cli_main;

use anyhow::{Context, Result, anyhow, bail};
use der::Decode;
use std::path::{Path, PathBuf};
use x509_cert::Certificate;

pub use raw::{Template, blank_template, parse_raw, parse_template};

/// EFI_GLOBAL_VARIABLE.
pub const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
pub const IMAGE_SECURITY_GUID: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
/// EFI_SECURE_BOOT_ENABLE_DISABLE (SecureBootEnable).
pub const SECURE_BOOT_ENABLE_GUID: &str = "f0a30bc7-af08-4556-99c4-001009c93a44";
/// EFI_CUSTOM_MODE_ENABLE_GUID (CustomMode).
pub const CUSTOM_MODE_GUID: &str = "c076ec0c-7028-4399-a072-71ee5c448b9f";
/// EFI_CERT_X509_GUID.
pub const CERT_X509_GUID: &str = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072";
/// EFI_CERT_SHA256_GUID.
pub const CERT_SHA256_GUID: &str = "c1c41626-504c-4092-aca9-41f936934328";
/// Microsoft's signature owner GUID.
pub const MICROSOFT_OWNER_GUID: &str = "77fa9abd-0359-4d32-bd60-28f4e78f784b";
/// OVMF's EnrollDefaultKeys owner GUID (virt-fw-vars uses it for the Red Hat PK and dbx).
pub const OVMF_ENROLL_OWNER_GUID: &str = "a0baa8a3-041d-48a8-bc87-c36d121b5e3d";

/// NV | BS | RT | TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
pub const ATTR_AUTH: u32 = 0x27;
/// NV | BS.
pub const ATTR_NV_BS: u32 = 0x03;
const ATTR_TIME_BASED: u32 = 0x20;

/// The Debian package the Microsoft (and Red Hat PK) certificates come from.
pub const CERTS_PACKAGE: &str = "python3-virt-firmware";
pub const CERTS_VERSION: &str = "24.11-2";
/// SHA-256 of `python3-virt-firmware_24.11-2_all.deb` (Debian trixie).
pub const CERTS_DEB_SHA256: &str =
    "901e419486774412a093bc8b2e735c2e3ecebe060813a52c751d1b4c4e361320";
pub const CERTS_DIR_IN_DEB: &str = "usr/lib/python3/dist-packages/virt/firmware/certs";

/// A certificate file in that package with the SHA-256 of the file.
#[derive(Clone, Copy, Debug)]
pub struct PinnedCert {
    pub file: &'static str,
    pub sha256: &'static str,
}

pub const REDHAT_PK: PinnedCert = PinnedCert {
    file: "RedHatSecureBootPKKEKkey1.pem",
    sha256: "a5fe67bfb0fb770e66e48f79cbab1d0a5f5cdb3dd6b716df6306c3fdb978ff33",
};
pub const MS_KEK_2011: PinnedCert = PinnedCert {
    file: "MicrosoftCorporationKEKCA2011.pem",
    sha256: "419174e51d5da0ed1188f0aea0fcd25b3a912a1267f8803fedfbc8ad08eb6853",
};
pub const MS_KEK_2023: PinnedCert = PinnedCert {
    file: "MicrosoftCorporationKEK2KCA2023.pem",
    sha256: "ec6149acb4c6ca76de2b1689d41197bc7b996cdd81908d99a0d2a479480502cc",
};
pub const MS_WIN_2011: PinnedCert = PinnedCert {
    file: "MicrosoftWindowsProductionPCA2011.pem",
    sha256: "8d235040e5f488a95bd5d368010f485957d399b71b67649fbf7a43bae7110512",
};
pub const MS_WIN_2023: PinnedCert = PinnedCert {
    file: "WindowsUEFICA2023.pem",
    sha256: "b462bb561bb583dffc34c92304fd42a1fc3f9a2483f0b0b8187165b6c7ada9de",
};
pub const MS_UEFI_2011: PinnedCert = PinnedCert {
    file: "MicrosoftCorporationUEFICA2011.pem",
    sha256: "baea9dacbf1f30551963e3dee6eb57e219fbedaed71798c3b6589a5280193559",
};
pub const MS_UEFI_2023: PinnedCert = PinnedCert {
    file: "MicrosoftUEFICA2023.pem",
    sha256: "a41bb4c40266e0f4bfc2ea442e1bf8c283a2d6f187318430be0fc2ae425f5eb4",
};

/// Which store to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Preset {
    /// No variables: Secure Boot off.
    Blank,
    /// Red Hat PK, Microsoft KEKs and db (see the module docs).
    Microsoft,
    /// The project's PK/KEK/db from this keys directory.
    Custom(PathBuf),
}

impl Preset {
    /// `blank`, `microsoft`, `custom` (the latter with `keys`, else the default keys dir).
    pub fn from_name(name: &str, keys: Option<PathBuf>) -> Result<Preset> {
        match name {
            "blank" => Ok(Preset::Blank),
            "microsoft" | "ms" => Ok(Preset::Microsoft),
            "custom" => Ok(Preset::Custom(
                keys.unwrap_or_else(crate::keys::default_keys_dir),
            )),
            other => bail!("unknown preset {other:?} (blank, microsoft, custom)"),
        }
    }
}

/// A GUID in its 16-byte on-disk (little-endian, `to_bytes_le`) form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, either case).
    pub fn parse(text: &str) -> Result<Guid> {
        let t = text.as_bytes();
        let dashes = [8usize, 13, 18, 23];
        let ok = t.len() == 36
            && t.iter().enumerate().all(|(i, c)| {
                if dashes.contains(&i) {
                    *c == b'-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        if !ok {
            bail!("{text:?} is not a GUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
        }
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let be = hex::decode(hex).map_err(|e| anyhow!("GUID {text:?}: {e}"))?;
        let mut b = [0u8; 16];
        b.copy_from_slice(&be);
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        Ok(Guid(b))
    }

    /// Lowercase text form.
    pub fn to_text(&self) -> String {
        let mut be = self.0;
        be[0..4].reverse();
        be[4..6].reverse();
        be[6..8].reverse();
        let h = hex::encode(be);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn known(text: &str) -> Guid {
        // Only called with the constants above, which are valid.
        Guid::parse(text).unwrap_or(Guid([0; 16]))
    }
}

/// EFI_TIME (UTC, no nanoseconds as virt-fw-vars writes it for certificate times).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EfiTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanosecond: u32,
}

impl EfiTime {
    /// 2010-01-01 00:00:00, virt-fw-vars' initial timestamp.
    pub const INITIAL: EfiTime = EfiTime {
        year: 2010,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        nanosecond: 0,
    };

    /// The 16-byte EFI_TIME (TimeZone 0, Daylight 0).
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&self.year.to_le_bytes());
        b[2] = self.month;
        b[3] = self.day;
        b[4] = self.hour;
        b[5] = self.minute;
        b[6] = self.second;
        b[8..12].copy_from_slice(&self.nanosecond.to_le_bytes());
        b
    }

    /// Parses EFI_TIME; `None` for year 0 (no time), as virt-fw-vars does.
    pub fn from_bytes(b: &[u8; 16]) -> Option<EfiTime> {
        let year = u16::from_le_bytes([b[0], b[1]]);
        if year == 0 {
            return None;
        }
        Some(EfiTime {
            year,
            month: b[2],
            day: b[3],
            hour: b[4],
            minute: b[5],
            second: b[6],
            nanosecond: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

/// One UEFI variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub guid: Guid,
    pub attr: u32,
    pub data: Vec<u8>,
    pub time: Option<EfiTime>,
}

impl Variable {
    /// UCS-2 name with the terminating NUL.
    pub fn name_ucs2(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self
            .name
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        v.extend_from_slice(&[0, 0]);
        v
    }
}

/// A variable store: variables in creation order (the JSON order; the raw image sorts by
/// name, as virt-fw-vars does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    pub variables: Vec<Variable>,
}

/// A certificate ready for enrolment.
#[derive(Clone, Debug)]
pub struct Cert {
    pub der: Vec<u8>,
    pub not_before: EfiTime,
}

impl Cert {
    /// Parses a PEM or DER certificate; it must be X.509 with an RSA key. `origin` (a file
    /// name) goes into every error.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Cert> {
        let der = crate::keys::parse_certificate(pem_block(bytes))
            .with_context(|| format!("certificate {origin}"))?;
        crate::keys::public_key_of_cert(&der).with_context(|| {
            format!("certificate {origin}: UEFI Secure Boot needs an RSA certificate")
        })?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| anyhow!("certificate {origin}: not an X.509 certificate: {e}"))?;
        let dt = cert.tbs_certificate().validity().not_before.to_date_time();
        Ok(Cert {
            der,
            not_before: EfiTime {
                year: dt.year(),
                month: dt.month(),
                day: dt.day(),
                hour: dt.hour(),
                minute: dt.minutes(),
                second: dt.seconds(),
                nanosecond: 0,
            },
        })
    }

    /// Reads a certificate file (PEM or DER).
    pub fn load(path: &Path) -> Result<Cert> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading certificate {}", path.display()))?;
        Cert::parse(&bytes, &path.display().to_string())
    }
}

/// The PEM block of `bytes`, without text before or after it (Debian's certificate files
/// start with `openssl x509 -text` output); `bytes` itself if there is no PEM block.
fn pem_block(bytes: &[u8]) -> &[u8] {
    const BEGIN: &[u8] = b"-----BEGIN";
    const END: &[u8] = b"-----END";
    let Some(start) = bytes.windows(BEGIN.len()).position(|w| w == BEGIN) else {
        return bytes;
    };
    let rest = &bytes[start..];
    let Some(end) = rest.windows(END.len()).position(|w| w == END) else {
        return rest;
    };
    let line_end = rest[end..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(rest.len(), |p| end + p + 1);
    &rest[..line_end]
}

/// One EFI_SIGNATURE_LIST holding one entry.
fn signature_list(type_guid: Guid, owner: Guid, data: &[u8]) -> Vec<u8> {
    let sig_size = 16 + data.len();
    let list_size = 28 + sig_size;
    let mut v = Vec::with_capacity(list_size);
    v.extend_from_slice(&type_guid.0);
    v.extend_from_slice(&(list_size as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(sig_size as u32).to_le_bytes());
    v.extend_from_slice(&owner.0);
    v.extend_from_slice(data);
    v
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    fn get_or_create(&mut self, name: &str, guid: &str, attr: u32) -> &mut Variable {
        let idx = match self.variables.iter().position(|v| v.name == name) {
            Some(i) => i,
            None => {
                self.variables.push(Variable {
                    name: name.to_string(),
                    guid: Guid::known(guid),
                    attr,
                    data: Vec::new(),
                    time: None,
                });
                self.variables.len() - 1
            }
        };
        &mut self.variables[idx]
    }

    fn sigdb_var(&mut self, name: &str) -> &mut Variable {
        let guid = if name == "db" || name == "dbx" {
            IMAGE_SECURITY_GUID
        } else {
            GLOBAL_GUID
        };
        self.get_or_create(name, guid, ATTR_AUTH)
    }

    fn bump_time(var: &mut Variable, ts: EfiTime) {
        if var.attr & ATTR_TIME_BASED == 0 {
            return;
        }
        if var.time.is_none_or(|t| t < ts) {
            var.time = Some(ts);
        }
    }

    /// Empties a signature database (PK before it is set), time at least 2010-01-01.
    pub fn clear_sigdb(&mut self, name: &str) {
        let var = self.sigdb_var(name);
        var.data.clear();
        Self::bump_time(var, EfiTime::INITIAL);
    }

    /// Appends `cert` with `owner` to the signature database `name` (PK, KEK, db, dbx);
    /// a certificate already present is skipped. The time becomes the latest notBefore.
    pub fn add_cert(&mut self, name: &str, owner: Guid, cert: &Cert) -> Result<()> {
        let var = self.sigdb_var(name);
        let list = signature_list(Guid::known(CERT_X509_GUID), owner, &cert.der);
        if contains_x509(&var.data, &cert.der) {
            return Ok(());
        }
        var.data.extend_from_slice(&list);
        Self::bump_time(var, cert.not_before);
        Ok(())
    }

    /// The dummy dbx (one SHA-256 of the empty string), if there is no dbx yet.
    pub fn add_dummy_dbx(&mut self) {
        if self.get("dbx").is_some() {
            return;
        }
        let var = self.sigdb_var("dbx");
        let empty_sha256 = sha256(&[]);
        var.data = signature_list(
            Guid::known(CERT_SHA256_GUID),
            Guid::known(OVMF_ENROLL_OWNER_GUID),
            &empty_sha256,
        );
        Self::bump_time(var, EfiTime::INITIAL);
    }

    fn set_bool(&mut self, name: &str, guid: &str, value: bool) {
        let var = self.get_or_create(name, guid, ATTR_NV_BS);
        var.data = vec![u8::from(value)];
    }

    /// `--secure-boot`: dummy dbx, SecureBootEnable = 1, CustomMode = 0.
    pub fn enable_secure_boot(&mut self) {
        self.add_dummy_dbx();
        self.set_bool("SecureBootEnable", SECURE_BOOT_ENABLE_GUID, true);
        self.set_bool("CustomMode", CUSTOM_MODE_GUID, false);
    }

    /// The QEMU `uefi-vars` JSON (version 2), byte-identical to `virt-fw-vars --output-json`
    /// (4-space indent, no trailing newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut s = String::from("{\n    \"version\": 2,\n    \"variables\": [");
        for (i, v) in self.variables.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("\n        {\n");
            s.push_str(&format!(
                "            \"name\": {},\n",
                json_string(&v.name)
            ));
            s.push_str(&format!(
                "            \"guid\": \"{}\",\n",
                v.guid.to_text()
            ));
            s.push_str(&format!("            \"attr\": {},\n", v.attr));
            s.push_str(&format!(
                "            \"data\": \"{}\"",
                hex::encode(&v.data)
            ));
            if let Some(t) = v.time {
                s.push_str(&format!(
                    ",\n            \"time\": \"{}\"",
                    hex::encode(t.to_bytes())
                ));
            }
            s.push_str("\n        }");
        }
        if self.variables.is_empty() {
            s.push_str("]\n}");
        } else {
            s.push_str("\n    ]\n}");
        }
        s.into_bytes()
    }

    /// The raw OVMF_VARS image: `template` (see [`parse_template`]; must be blank) with this
    /// store's variables written into its variable area.
    pub fn to_raw(&self, template: &[u8]) -> Result<Vec<u8>> {
        raw::write_raw(template, self)
    }

    /// [`Store::to_raw`] on the built-in blank 4 MiB template (identical to Debian's
    /// `OVMF_VARS_4M.fd`).
    pub fn to_raw_4m(&self) -> Result<Vec<u8>> {
        raw::write_raw(&blank_template(), self)
    }
}

fn json_string(s: &str) -> String {
    // Python's json.dumps (ensure_ascii): escape ", \, control characters and non-ASCII.
    let mut out = String::from("\"");
    for u in s.encode_utf16() {
        match u {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(char::from(u as u8)),
            _ => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out.push('"');
    out
}

fn contains_x509(sigdb: &[u8], der: &[u8]) -> bool {
    let x509 = Guid::known(CERT_X509_GUID).0;
    let mut pos = 0usize;
    while pos + 28 <= sigdb.len() {
        let size = u32_at(sigdb, pos + 16) as usize;
        let hsize = u32_at(sigdb, pos + 20) as usize;
        if size < 28 || pos + size > sigdb.len() {
            return false;
        }
        if sigdb[pos..pos + 16] == x509 {
            let start = pos + 28 + hsize + 16;
            if sigdb.get(start..pos + size) == Some(der) {
                return true;
            }
        }
        pos += size;
    }
    false
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// The directory holding the pinned certificate files (fetched and cached on first use).
pub fn pinned_certs_dir() -> Result<PathBuf> {
    let dir = crate::uki::stub::fetch_deb(CERTS_PACKAGE, CERTS_VERSION, CERTS_DEB_SHA256)?;
    Ok(dir.join(CERTS_DIR_IN_DEB))
}

/// Loads a pinned certificate from `dir`, checking its SHA-256.
pub fn load_pinned(dir: &Path, pin: &PinnedCert) -> Result<Cert> {
    let path = dir.join(pin.file);
    let bytes =
        std::fs::read(&path).with_context(|| format!("reading certificate {}", path.display()))?;
    let got = crate::util::sha256_hex(&bytes);
    if got != pin.sha256 {
        bail!(
            "certificate {} has SHA-256 {got}, expected the pinned {}",
            path.display(),
            pin.sha256
        );
    }
    Cert::parse(&bytes, &path.display().to_string())
}

/// The owner GUID of a keys dir: its `GUID` file if present, else [`crate::keys::NEKOS_OWNER_GUID`].
pub fn keys_dir_owner(dir: &Path) -> Result<Guid> {
    let path = dir.join("GUID");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Guid::parse(text.trim()).with_context(|| format!("owner GUID file {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Guid::parse(crate::keys::NEKOS_OWNER_GUID)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The Microsoft preset from certificates in `dir` (see [`pinned_certs_dir`]).
pub fn microsoft_store(dir: &Path) -> Result<Store> {
    let pk = load_pinned(dir, &REDHAT_PK)?;
    let ms = Guid::known(MICROSOFT_OWNER_GUID);
    let ovmf = Guid::known(OVMF_ENROLL_OWNER_GUID);
    let mut s = Store::new();
    // enroll_platform_with_cert(REDHAT_PK, ms_kek = "all")
    s.clear_sigdb("PK");
    s.add_cert("PK", ovmf, &pk)?;
    s.clear_sigdb("KEK");
    s.add_cert("KEK", ovmf, &pk)?;
    s.add_cert("KEK", ms, &load_pinned(dir, &MS_KEK_2011)?)?;
    s.add_cert("KEK", ms, &load_pinned(dir, &MS_KEK_2023)?)?;
    s.add_dummy_dbx();
    // add_microsoft_keys()
    for pin in [&MS_WIN_2011, &MS_WIN_2023, &MS_UEFI_2011, &MS_UEFI_2023] {
        s.add_cert("db", ms, &load_pinned(dir, pin)?)?;
    }
    s.enable_secure_boot();
    Ok(s)
}

/// The custom preset from PK.crt, KEK.crt, db.crt (and GUID) in `dir`.
pub fn custom_store(dir: &Path) -> Result<Store> {
    let owner = keys_dir_owner(dir)?;
    let mut s = Store::new();
    s.clear_sigdb("PK");
    s.add_cert("PK", owner, &Cert::load(&dir.join("PK.crt"))?)?;
    s.add_cert("KEK", owner, &Cert::load(&dir.join("KEK.crt"))?)?;
    s.add_cert("db", owner, &Cert::load(&dir.join("db.crt"))?)?;
    s.enable_secure_boot();
    Ok(s)
}

/// Builds the store of a preset.
pub fn build(preset: &Preset) -> Result<Store> {
    match preset {
        Preset::Blank => Ok(Store::new()),
        Preset::Microsoft => microsoft_store(&pinned_certs_dir()?),
        Preset::Custom(dir) => custom_store(dir),
    }
}

/// Writes the JSON and/or the raw image of `store` atomically. `template`: a blank
/// OVMF_VARS file to start the raw image from (default: the built-in 4 MiB template).
/// Errors name the file concerned.
pub fn write_outputs(
    store: &Store,
    json: Option<&Path>,
    raw_out: Option<&Path>,
    template: Option<&Path>,
) -> Result<()> {
    // Build everything first: a failure leaves no partial set of outputs behind.
    let raw_bytes = match raw_out {
        Some(out) => Some(match template {
            Some(t) => {
                let bytes = std::fs::read(t)
                    .with_context(|| format!("reading template {}", t.display()))?;
                store
                    .to_raw(&bytes)
                    .with_context(|| format!("template {}", t.display()))?
            }
            None => store
                .to_raw_4m()
                .with_context(|| format!("raw store {}", out.display()))?,
        }),
        None => None,
    };
    if let Some(p) = json {
        crate::util::write_atomic(p, &store.to_json())?;
    }
    if let (Some(p), Some(b)) = (raw_out, raw_bytes) {
        crate::util::write_atomic(p, &b)?;
    }
    Ok(())
}
