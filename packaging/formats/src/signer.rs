//! The signing key behind Authenticode, as a trait: the key file signer
//! ([`crate::keys::KeySigner`]) implements it, a PKCS#11 token would too.

use anyhow::Result;

/// Something that can make RSA-2048/SHA-256 PKCS#1 v1.5 signatures and names its
/// certificate. Implemented by [`crate::keys::KeySigner`]; a PKCS#11 token or a YubiKey
/// would implement it too (sign the digest on the device, return its certificate).
pub trait Signer {
    /// DER of the X.509 certificate that verifies this signer's signatures.
    fn certificate_der(&self) -> &[u8];
    /// RSA PKCS#1 v1.5 signature (DigestInfo with SHA-256) over a SHA-256 `digest`.
    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>>;
}
