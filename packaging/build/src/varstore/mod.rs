//! UEFI variable stores for OVMF, generated in Rust: three presets, each written as a QEMU
//! `uefi-vars` JSON file (QEMU_PV_VARS OVMF) and as a raw 4 MiB OVMF_VARS image
//! (540672 bytes, the layout of Debian's `OVMF_VARS_4M.fd`, for SMM Secure Boot OVMF).
//!
//! Presets, and the `virt-fw-vars` (PyPI `virt-firmware`, the version pinned in
//! `packaging/varstore-certs/certs.lock` and host-setup.sh's judge venv) invocation each one
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
//!   UEFI CA 2011, Microsoft UEFI CA 2023 and (virt-firmware ≥ 26.10) Microsoft Option ROM
//!   UEFI CA 2023 (owner Microsoft); dbx = the dummy entry (SHA-256 of nothing);
//!   SecureBootEnable = 1, CustomMode = 0.
//!   The certificates are data files in `packaging/varstore-certs/`, byte-for-byte those of
//!   the virt-firmware wheel the judge runs; `certs.lock` there records their source,
//!   license, SHA-256s and which of them go into PK, KEK and db, in enrolment order (so a
//!   new virt-firmware release is a data change, made by `cargo nekos lock`). Nothing is
//!   downloaded to build a store.
//! - [`Preset::Custom`]: the project's hierarchy from a keys dir (see [`crate::keys`]):
//!   `virt-fw-vars --set-pk G PK.crt --add-kek G KEK.crt --add-db G db.crt --secure-boot`,
//!   G = the dir's `GUID` file (else [`crate::keys::NEKOS_OWNER_GUID`]).
//!
//! Timestamps as virt-fw-vars sets them: a signature database gets the latest notBefore
//! of its certificates; PK (cleared first) and the dummy dbx at least 2010-01-01.

pub use nekos_formats::varstore::*;

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// The Microsoft preset's certificates: which files go where, from `certs.lock` in the
/// certificate directory (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicrosoftCerts {
    /// The PyPI virt-firmware release they come from (the judge must be the same).
    pub version: String,
    pub pk: String,
    pub kek: Vec<String>,
    pub db: Vec<String>,
    /// File name → SHA-256, for every file above.
    pub sha256: std::collections::BTreeMap<String, String>,
}

impl MicrosoftCerts {
    /// Reads `certs.lock` in `dir`; a missing or malformed field is an error naming it.
    pub fn load(dir: &Path) -> Result<MicrosoftCerts> {
        let lock = crate::pins::LockFile::load(&dir.join("certs.lock"))?;
        let pk = lock.string(None, "pk")?;
        let kek = lock.string_list(None, "kek")?;
        let db = lock.string_list(None, "db")?;
        let mut sha256 = std::collections::BTreeMap::new();
        for file in std::iter::once(&pk).chain(&kek).chain(&db) {
            sha256.insert(file.clone(), lock.sha256(Some("sha256"), file)?);
        }
        Ok(MicrosoftCerts {
            version: lock.string(None, "version")?,
            pk,
            kek,
            db,
            sha256,
        })
    }
}

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

/// Reads a certificate file (PEM or DER) for enrolment.
pub fn load_cert(path: &Path) -> Result<Cert> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    Cert::parse(&bytes, &path.display().to_string())
}

/// The directory holding the certificate files and their `certs.lock` (in the repository).
pub fn pinned_certs_dir() -> Result<PathBuf> {
    Ok(crate::util::workspace_root()?.join(crate::pins::CERTS_DIR))
}

/// Loads the certificate `file` from `dir`, checking it against its SHA-256 in `certs`.
pub fn load_pinned(dir: &Path, certs: &MicrosoftCerts, file: &str) -> Result<Cert> {
    let path = dir.join(file);
    let want = certs.sha256.get(file).ok_or_else(|| {
        anyhow!(
            "{}: [sha256] has no entry for {file}",
            dir.join("certs.lock").display()
        )
    })?;
    let bytes =
        std::fs::read(&path).with_context(|| format!("reading certificate {}", path.display()))?;
    let got = crate::util::sha256_hex(&bytes);
    if &got != want {
        bail!(
            "certificate {} has SHA-256 {got}, expected {want} (pinned in {}); restore it with git, \
             or run `cargo nekos lock` to take the files of the virt-firmware release PyPI serves",
            path.display(),
            dir.join("certs.lock").display()
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
    let certs = MicrosoftCerts::load(dir)?;
    let pk = load_pinned(dir, &certs, &certs.pk)?;
    let ms = Guid::known(MICROSOFT_OWNER_GUID);
    let ovmf = Guid::known(OVMF_ENROLL_OWNER_GUID);
    let mut s = Store::new();
    // enroll_platform_with_cert(REDHAT_PK, ms_kek = "all")
    s.clear_sigdb("PK");
    s.add_cert("PK", ovmf, &pk)?;
    s.clear_sigdb("KEK");
    s.add_cert("KEK", ovmf, &pk)?;
    for file in &certs.kek {
        s.add_cert("KEK", ms, &load_pinned(dir, &certs, file)?)?;
    }
    s.add_dummy_dbx();
    // add_microsoft_keys(ms_db = "all")
    for file in &certs.db {
        s.add_cert("db", ms, &load_pinned(dir, &certs, file)?)?;
    }
    s.enable_secure_boot();
    Ok(s)
}

/// The custom preset from PK.crt, KEK.crt, db.crt (and GUID) in `dir`.
pub fn custom_store(dir: &Path) -> Result<Store> {
    let owner = keys_dir_owner(dir)?;
    let mut s = Store::new();
    s.clear_sigdb("PK");
    s.add_cert("PK", owner, &load_cert(&dir.join("PK.crt"))?)?;
    s.add_cert("KEK", owner, &load_cert(&dir.join("KEK.crt"))?)?;
    s.add_cert("db", owner, &load_cert(&dir.join("db.crt"))?)?;
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
