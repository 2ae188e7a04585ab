//! System Transparency OS packages, wire-compatible with stmgr v0.6.6 / stboot.
//!
//! An OS package is `<name>.zip` (entries `boot/`, `boot/<kernel>`, `boot/<initramfs>`,
//! `manifest.json`) plus the descriptor `<name>.json` (package URL, signer certificates as
//! base64 of PEM text, Ed25519 signatures over SHA-256 of the zip). JSON is written
//! byte-for-byte as Go's `json.MarshalIndent(v, "", "  ")` and read as tolerantly as
//! Go's `json.Unmarshal`.
//!
//! The guest's init calls [`verify_package`]; the host tool builds with
//! [`OsPackageArchive::build`], signs with [`sign_descriptor`], and (feature `generate`)
//! makes keys and certificates with [`generate_root`]/[`generate_leaf`].
//!
//! Decisions:
//! - Threshold 0 is refused ([`VerifyError::InvalidThreshold`]), as stboot refuses a
//!   trust policy with `ospkg_signature_threshold < 1`.
//! - Certificate validity is checked against the caller's clock for leaf and root.
//! - Zip entries may be Stored or Deflate (pure-Rust `miniz_oxide`), so packages made by
//!   stmgr itself (Go Deflate, data descriptors) verify too; this crate writes Stored only.
//! - A descriptor whose certificate and signature counts differ is malformed (stboot
//!   would index past the end); a signature element that is not 64 bytes is a decoding
//!   error.

mod json;
mod keys;
mod model;
mod pem;
mod signer;
mod verify;
mod zip;

#[cfg(feature = "generate")]
mod certgen;

#[cfg(feature = "generate")]
pub use certgen::{
    CertError, Rng, SignTbs, generate_leaf, generate_root, root_certificate, root_certificate_with,
};
pub use json::{JsonError, push_go_string};
pub use keys::{KeyError, signing_key_from_pem, signing_key_to_pem};
pub use model::{
    Descriptor, FORMAT_VERSION, FetchMethod, HostConfig, Manifest, NetworkInterface, NetworkMode,
    TrustPolicy,
};
pub use pem::{PemBlock, decode_all as pem_decode_all, encode as pem_encode};
pub use verify::{
    SignError, SignatureFailure, Verified, VerifyError, certificate_validity, describe_certificate,
    format_unix, parse_rfc3339, sha256, sign, sign_descriptor, verify,
};
pub use zip::{
    BOOT_DIR, ExtractedPackage, Limits, MANIFEST_NAME, OsPackageArchive, ZipError, crc32,
};

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use signer::Ed25519Signer;

use std::fmt;

/// Lower-case hex (the `hex` crate; re-exported for the callers of this crate).
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// A verified, unpacked OS package: everything needed to kexec the next kernel, plus the
/// digests to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPackage {
    pub manifest: Manifest,
    pub kernel: Vec<u8>,
    pub initramfs: Vec<u8>,
    pub cmdline: String,
    /// SHA-256 of the zip (what the signatures cover).
    pub zip_sha256: [u8; 32],
    /// SHA-256 of the descriptor bytes as received.
    pub descriptor_sha256: [u8; 32],
}

/// Why [`verify_package`] refused a package; `Display` names the step and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The descriptor JSON is too large, unparsable or invalid.
    Descriptor(String),
    /// The trust policy is unusable (threshold 0).
    TrustPolicy(String),
    /// Signature verification failed.
    Verify(VerifyError),
    /// The zip is too large or malformed, or lacks what the manifest names.
    Archive(ZipError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Descriptor(e) => write!(f, "OS package descriptor: {e}"),
            Error::TrustPolicy(e) => write!(f, "trust policy: {e}"),
            Error::Verify(e) => write!(f, "OS package signatures: {e}"),
            Error::Archive(e) => write!(f, "OS package archive: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Verify(e) => Some(e),
            Error::Archive(e) => Some(e),
            _ => None,
        }
    }
}

/// Verifies and unpacks an OS package the way stboot does: parse and validate the
/// descriptor, check the trust policy, count valid signatures over SHA-256(zip) against
/// `roots_pem` at `now_unix` (needs ≥ threshold), and only then read the zip strictly
/// and return kernel, initramfs and command line from its manifest.
///
/// `limits` may be passed by value or by reference (`Limits::default()` or `&limits`).
pub fn verify_package(
    descriptor_json: &[u8],
    zip: &[u8],
    trust_policy: &TrustPolicy,
    roots_pem: &[u8],
    now_unix: i64,
    limits: impl std::borrow::Borrow<Limits>,
) -> Result<VerifiedPackage, Error> {
    let limits: &Limits = limits.borrow();
    if descriptor_json.len() as u64 > limits.max_descriptor_bytes {
        return Err(Error::Descriptor(format!(
            "{} bytes, above the limit of {}",
            descriptor_json.len(),
            limits.max_descriptor_bytes
        )));
    }
    let descriptor =
        Descriptor::from_json(descriptor_json).map_err(|e| Error::Descriptor(e.to_string()))?;
    descriptor
        .validate()
        .map_err(|e| Error::Descriptor(e.to_string()))?;
    if trust_policy.ospkg_signature_threshold == 0 {
        return Err(Error::TrustPolicy(
            "ospkg_signature_threshold must be at least 1".into(),
        ));
    }
    if zip.len() as u64 > limits.max_archive_bytes {
        return Err(Error::Archive(ZipError::TooLarge {
            what: "archive".into(),
            size: zip.len() as u64,
            limit: limits.max_archive_bytes,
        }));
    }
    let verified = verify(
        &descriptor,
        zip,
        roots_pem,
        trust_policy.ospkg_signature_threshold,
        now_unix,
    )
    .map_err(Error::Verify)?;
    let pkg = OsPackageArchive::parse(zip, limits).map_err(Error::Archive)?;
    let cmdline = pkg.manifest.cmdline.clone();
    Ok(VerifiedPackage {
        manifest: pkg.manifest,
        kernel: pkg.kernel,
        initramfs: pkg.initramfs,
        cmdline,
        zip_sha256: verified.digest,
        descriptor_sha256: sha256(descriptor_json),
    })
}
