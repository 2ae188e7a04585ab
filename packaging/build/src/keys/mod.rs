//! The NekOS Secure Boot key hierarchy on disk. The keys and certificates themselves (RSA-2048,
//! self-signed SHA-256 X.509; the db key signs UKIs) are `nekos_formats::keys`, re-exported
//! here.
//!
//! Where keys live: `--dir DIR`, else `$NEKOS_KEYS_DIR`, else `$XDG_CONFIG_HOME/nekos/keys`,
//! else `~/.config/nekos/keys` — outside the repository. Files: `PK.key PK.crt KEK.key
//! KEK.crt db.key db.crt GUID`; keys are unencrypted PKCS#8 PEM, mode 0600, in a 0700
//! directory; certificates PEM. An existing hierarchy is never replaced without `force`.
//!
//! Owner GUID: every EFI_SIGNATURE_DATA that enrols a NekOS certificate uses the fixed
//! [`NEKOS_OWNER_GUID`]; it is written to `GUID` too (the sbctl convention).
//!
//! `seed` (tests only!) derives the keys from a ChaCha20 stream seeded with
//! SHA-256(domain ‖ seed ‖ role): anyone with the seed has the private keys. Such
//! certificates say "INSECURE TEST KEY" in their subject and the directory gets a
//! `INSECURE-TEST-KEYS` marker file. Real keys come from the OS RNG (getrandom).

pub use nekos_formats::keys::*;

use anyhow::{Context, Result, anyhow, bail};
use nekos_formats::signer::Signer;
use pkcs8::{EncodePrivateKey, LineEnding};
use rsa::PrivateKey;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use crate::util::write_atomic_mode as write_atomic;

/// Writes a hierarchy into `dir` (created 0700). Refuses to replace existing keys unless
/// `force`.
pub fn write_hierarchy(dir: &Path, h: &Hierarchy, force: bool) -> Result<()> {
    if !force {
        let existing: Vec<String> = hierarchy_files()
            .into_iter()
            .filter(|f| dir.join(f).exists())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already holds a key hierarchy ({}); refusing to overwrite it without --force",
                dir.display(),
                existing.join(", ")
            );
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    for kp in &h.keys {
        let pem = kp
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow!("encoding the {} key: {e}", kp.role.stem()))?;
        write_atomic(
            &dir.join(format!("{}.key", kp.role.stem())),
            pem.as_bytes(),
            0o600,
        )?;
        write_atomic(
            &dir.join(format!("{}.crt", kp.role.stem())),
            cert_pem(&kp.cert_der)?.as_bytes(),
            0o644,
        )?;
    }
    write_atomic(
        &dir.join("GUID"),
        format!("{NEKOS_OWNER_GUID}\n").as_bytes(),
        0o644,
    )?;
    let marker = dir.join("INSECURE-TEST-KEYS");
    if h.insecure_test_keys {
        write_atomic(
            &marker,
            b"These keys were derived from a public seed (cargo nekos genkey secure-boot --seed): tests only.\n",
            0o644,
        )?;
    } else if marker.exists() {
        fs::remove_file(&marker)?;
    }
    Ok(())
}

/// Loads an RSA private key: PKCS#8 or PKCS#1, PEM or DER, unencrypted.
pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    let bytes =
        fs::read(path).with_context(|| format!("reading private key {}", path.display()))?;
    parse_private_key(&bytes).with_context(|| format!("private key {}", path.display()))
}

/// Loads an X.509 certificate (PEM or DER) and returns its DER.
pub fn load_certificate(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        fs::read(path).with_context(|| format!("reading certificate {}", path.display()))?;
    parse_certificate(&bytes).with_context(|| format!("certificate {}", path.display()))
}

/// The default key directory (see the module docs).
pub fn default_keys_dir() -> PathBuf {
    crate::util::user_dir("NEKOS_KEYS_DIR", "XDG_CONFIG_HOME", ".config", "keys")
}

/// The signer of a key file and its certificate; errors if they do not match.
pub fn load_signer(key: &Path, cert: &Path) -> Result<KeySigner> {
    let k = load_private_key(key)?;
    let c = load_certificate(cert)?;
    KeySigner::new(k, c)
        .with_context(|| format!("key {} and certificate {}", key.display(), cert.display()))
}

/// The db key of a hierarchy directory (`db.key`, `db.crt`).
pub fn load_db_signer(dir: &Path) -> Result<KeySigner> {
    load_signer(&dir.join("db.key"), &dir.join("db.crt"))
}

/// The signer a `--key` argument names: a PKCS#11 URI (`pkcs11:…`, see
/// [`crate::pkcs11`]; the certificate from `cert` or else from the token), or a key file
/// (then `cert` is required).
pub fn load_signer_any(key: &Path, cert: Option<&Path>) -> Result<Box<dyn Signer>> {
    let cert_der = cert.map(load_certificate).transpose()?;
    if let Some(uri) = key.to_str().filter(|k| crate::pkcs11::is_pkcs11_uri(k)) {
        return Ok(Box::new(crate::pkcs11::Pkcs11Signer::open(uri, cert_der)?));
    }
    let Some(cert) = cert else {
        bail!(
            "--key {} is a key file: give its certificate with --cert (only a PKCS#11 key can bring its own)",
            key.display()
        );
    };
    Ok(Box::new(load_signer(key, cert)?))
}
