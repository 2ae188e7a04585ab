//! The self-signed certificate of a key generated on a token, signed by the token.
//!
//! RSA: the certificate `nekos_formats::keys::self_signed_cert` makes for a key file (one
//! profile, `self_signed_cert_with`, given the public key and the token as the signing
//! function), so a token key and a key file are enrolled alike. Ed25519 (OS packages): the
//! stmgr-style root `nekos_ospkg::root_certificate` makes, through `root_certificate_with`.

use super::TokenKey;
use anyhow::{Context, Result, anyhow};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The self-signed certificate of the RSA key `key` (public part `public`), signed on the
/// token: byte for byte what a key file with the same key gets.
pub fn self_signed_rsa(
    key: &TokenKey,
    public: rsa::PublicKey,
    common_name: &str,
    code_signing: bool,
) -> Result<Vec<u8>> {
    nekos_formats::keys::self_signed_cert_with(&public, common_name, code_signing, &|digest| {
        key.sign_digest_info(digest)
            .context("signing the certificate on the token")
    })
}

/// The DER of a certificate's subject (CKA_SUBJECT of the certificate object).
pub fn subject_der(cert_der: &[u8]) -> Result<Vec<u8>> {
    let cert = Certificate::from_der(cert_der)?;
    Ok(cert.tbs_certificate().subject().to_der()?)
}

/// A self-signed stmgr-style root certificate (PEM) for the Ed25519 key on the token, valid
/// over `[valid_from, valid_until]`; `serial` is 16 random bytes. It is the certificate
/// `nekos_ospkg::root_certificate` makes for a key file, signed on the token.
pub fn self_signed_ed25519(
    key: &TokenKey,
    public: nekos_ospkg::VerifyingKey,
    serial: [u8; 16],
    valid_from: i64,
    valid_until: i64,
) -> Result<Vec<u8>> {
    // The token's error, which `CertError` (a message) would flatten.
    let mut failure = None;
    let pem =
        nekos_ospkg::root_certificate_with(&public, serial, valid_from, valid_until, &mut |tbs| {
            key.sign_eddsa(tbs).map_err(|e| {
                let message = nekos_ospkg::CertError(format!("{e:#}"));
                failure = Some(e);
                message
            })
        });
    match (pem, failure) {
        (Ok(pem), _) => Ok(pem),
        (Err(_), Some(token)) => Err(token.context("signing the certificate on the token")),
        (Err(e), None) => Err(anyhow!("certificate: {e}")),
    }
}
