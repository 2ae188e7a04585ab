//! UEFI authenticated-variable stores as bytes: the variables, EFI_SIGNATURE_LISTs and
//! their timestamps as `virt-fw-vars` writes them, serialised as QEMU `uefi-vars` JSON
//! ([`Store::to_json`]) and as a raw store image ([`raw`]: x86 OVMF_VARS or arm64
//! ArmVirtQemu QEMU_VARS, by [`Layout`]). Which certificates go into
//! which preset, and reading them from files, is the host's (`nekos_packaging::varstore`).

pub mod raw;

use anyhow::{Context, Result, anyhow, bail};
use der::Decode;
use x509_cert::Certificate;

pub use raw::{ARMVIRT_FLASH_SIZE, Layout, Template, blank_template, parse_raw, parse_template};

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

    /// One of this module's GUID constants (valid by construction; anything else that does
    /// not parse gives the zero GUID — use [`Guid::parse`] for input).
    pub fn known(text: &str) -> Guid {
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
        let empty_sha256 = crate::digest::sha256(&[]);
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

    /// [`Store::to_raw`] on the blank store of `layout` (e.g. [`Layout::ARMVIRT_QEMU`], the
    /// arm64 firmware's second flash bank).
    pub fn to_raw_layout(&self, layout: &Layout) -> Result<Vec<u8>> {
        raw::write_layout(layout, self)
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
