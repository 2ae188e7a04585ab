//! Signing and signature verification (stboot's rules; see the crate docs).

use crate::model::Descriptor;
use crate::pem;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Reader, SliceReader};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;
use x509_cert::Certificate;

/// id-Ed25519 (RFC 8410).
pub const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const BASIC_CONSTRAINTS_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Seconds since the epoch as RFC 3339 (`2026-01-02T03:04:05Z`); out-of-range values are
/// shown as plain numbers.
pub fn format_unix(secs: i64) -> String {
    u64::try_from(secs)
        .ok()
        .and_then(|s| der::DateTime::from_unix_duration(std::time::Duration::from_secs(s)).ok())
        .map(|d| d.to_string())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (RFC 3339; `t`/`z`/space accepted) to
/// seconds since the epoch. Years before 1970 are not supported.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let err = || format!("{s:?} is not an RFC 3339 time like 2030-01-01T00:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return Err(err());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let part = s.get(r).ok_or_else(err)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        part.parse::<u32>().map_err(|_| err())
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return Err(err());
            }
            let oh: i64 = rest[1..3].parse().map_err(|_| err())?;
            let om: i64 = rest[4..6].parse().map_err(|_| err())?;
            if oh > 23 || om > 59 {
                return Err(err());
            }
            let o = oh * 3600 + om * 60;
            if rb[0] == b'-' { -o } else { o }
        }
    };
    let to8 = |v: u32| u8::try_from(v).map_err(|_| err());
    let year = u16::try_from(y).map_err(|_| err())?;
    let dt = der::DateTime::new(year, to8(mo)?, to8(d)?, to8(h)?, to8(mi)?, to8(sec)?)
        .map_err(|_| err())?;
    let unix = i64::try_from(dt.unix_duration().as_secs()).map_err(|_| err())?;
    Ok(unix - offset)
}

/// The exact `tbsCertificate` bytes of a DER certificate (what the issuer signed).
///
/// They are sliced out of the certificate's own bytes (`der` reads the outer SEQUENCE's
/// header, then the first element's header, and returns that element's whole TLV), so they
/// are the signed bytes by construction. Re-encoding the parsed `TbsCertificate` would be
/// exact only as long as decoding and encoding are perfect inverses for every field (for
/// example a DEFAULT value written out explicitly would be dropped on re-encoding and the
/// signature would then fail: x509-cert does exactly that for an explicit `critical FALSE`,
/// see the test `der_readers::signature_is_checked_over_the_raw_tbs_bytes`); Go verifies over
/// its raw TBS bytes the same way.
fn raw_tbs(cert_der: &[u8]) -> Option<&[u8]> {
    let cert = AnyRef::from_der(cert_der).ok()?;
    SliceReader::new(cert.value()).ok()?.tlv_bytes().ok()
}

/// An AlgorithmIdentifier for an error message: the OID, then its parameters as DER hex.
fn describe_algorithm(a: &x509_cert::spki::AlgorithmIdentifierOwned) -> String {
    match &a.parameters {
        None => format!("{} without parameters", a.oid),
        Some(p) => format!(
            "{} with parameters {}",
            a.oid,
            crate::hex(&der::Encode::to_der(p).unwrap_or_default())
        ),
    }
}

/// RFC 5280 §4.1.1.2: the outer `signatureAlgorithm` MUST be the same algorithm identifier
/// as the signed `tbsCertificate.signature`; every certificate read here (roots, descriptor
/// certificates, the signing certificate) is refused when they differ.
///
/// The outer field is not covered by the signature, so a mismatch forges nothing, but such a
/// certificate is malformed, and stboot's Go verifier refuses it when parsing (crypto/x509:
/// "inner and outer signature algorithm identifiers don't match"); without this check an
/// Ed25519 certificate whose outer identifier gained NULL parameters verified here but not
/// in stboot. Compared as DER: `der` decodes only DER and keeps the parameters as their raw
/// TLV, and an AlgorithmIdentifier has no DEFAULT field, so re-encoding gives back exactly
/// the bytes that were read.
///
/// The certificate is named by the SHA-256 of its DER, not by its subject: formatting a
/// `Name` links x509-cert's table of attribute names, ~200 KB in stage 1's binary.
fn check_signature_algorithm(cert: &Certificate, cert_der: &[u8]) -> Result<(), String> {
    let outer = cert.signature_algorithm();
    let inner = cert.tbs_certificate().signature();
    match (der::Encode::to_der(outer), der::Encode::to_der(inner)) {
        (Ok(o), Ok(i)) if o == i => Ok(()),
        _ => Err(format!(
            "certificate sha256 {} is malformed: its outer signatureAlgorithm {} differs from \
             the signed tbsCertificate.signature {} (RFC 5280 4.1.1.2 requires them to be \
             identical)",
            crate::hex(&sha256(cert_der)),
            describe_algorithm(outer),
            describe_algorithm(inner)
        )),
    }
}

/// A parsed certificate with its DER.
struct Cert {
    der: Vec<u8>,
    cert: Certificate,
}

impl Cert {
    fn from_der(der: Vec<u8>) -> Result<Self, String> {
        let cert = Certificate::from_der(&der)
            .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
        check_signature_algorithm(&cert, &der)?;
        Ok(Cert { der, cert })
    }

    fn tbs(&self) -> &x509_cert::TbsCertificate {
        self.cert.tbs_certificate()
    }

    fn ed25519_key(&self) -> Result<VerifyingKey, String> {
        let spki = self.tbs().subject_public_key_info();
        if spki.algorithm.oid != ED25519_OID {
            return Err(format!(
                "not an Ed25519 certificate (public key algorithm {})",
                spki.algorithm.oid
            ));
        }
        if spki.algorithm.parameters.is_some() {
            return Err("Ed25519 key with algorithm parameters".into());
        }
        let raw: [u8; 32] = spki
            .subject_public_key
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "Ed25519 public key is not 32 bytes".to_string())?;
        VerifyingKey::from_bytes(&raw).map_err(|_| "invalid Ed25519 public key".to_string())
    }

    fn check_validity(&self, now: i64, who: &str) -> Result<(), String> {
        let v = self.tbs().validity();
        let secs = |t: x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
        };
        let nb = secs(v.not_before);
        let na = secs(v.not_after);
        if now < nb {
            return Err(format!("{who} not valid before {}", format_unix(nb)));
        }
        if now > na {
            return Err(format!("{who} expired at {}", format_unix(na)));
        }
        Ok(())
    }

    fn is_ca(&self) -> bool {
        self.tbs()
            .extensions()
            .into_iter()
            .flatten()
            .filter(|e| e.extn_id == BASIC_CONSTRAINTS_OID)
            .any(|e| {
                x509_cert::ext::pkix::BasicConstraints::from_der(e.extn_value.as_bytes())
                    .is_ok_and(|bc| bc.ca)
            })
    }

    fn subject_der(&self) -> Option<Vec<u8>> {
        der::Encode::to_der(self.tbs().subject()).ok()
    }

    fn issuer_der(&self) -> Option<Vec<u8>> {
        der::Encode::to_der(self.tbs().issuer()).ok()
    }

    /// Whether `issuer`'s key signed this certificate (Ed25519 only).
    fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        let key = issuer
            .ed25519_key()
            .map_err(|e| format!("root certificate: {e}"))?;
        let alg = self.cert.signature_algorithm();
        if alg.oid != ED25519_OID || self.tbs().signature().oid != ED25519_OID {
            return Err(format!(
                "certificate is not signed with Ed25519 (algorithm {})",
                alg.oid
            ));
        }
        let sig: [u8; 64] = self
            .cert
            .signature()
            .as_bytes()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "certificate signature is not 64 bytes".to_string())?;
        let tbs = raw_tbs(&self.der).ok_or_else(|| "certificate DER is malformed".to_string())?;
        key.verify_strict(tbs, &Signature::from_bytes(&sig))
            .map_err(|_| "certificate signature by the root does not verify".to_string())
    }
}

/// Parses a descriptor certificate element (PEM text): the first PEM block must be a
/// header-less `CERTIFICATE` holding an X.509 certificate.
fn parse_cert_pem(pem_text: &[u8]) -> Result<Cert, String> {
    let block = pem::decode_first(pem_text).ok_or_else(|| "certificate is not PEM".to_string())?;
    if block.label != "CERTIFICATE" {
        return Err(format!("PEM block is {:?}, not CERTIFICATE", block.label));
    }
    if block.has_headers {
        return Err("CERTIFICATE PEM block has headers".into());
    }
    Cert::from_der(block.der)
}

/// A verification outcome: the zip digest and how many signatures counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub digest: [u8; 32],
    pub valid_signatures: usize,
}

/// Why one (certificate, signature) pair did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFailure {
    /// 1-based, as stboot numbers them.
    pub index: usize,
    pub reason: String,
}

/// Why a package's signatures were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Threshold 0: stboot refuses such a trust policy, and so does this crate.
    InvalidThreshold(usize),
    /// The descriptor's certificate and signature lists do not pair up.
    Malformed(String),
    /// The signing root file has no usable certificate.
    Roots(String),
    /// Fewer valid signatures than the threshold.
    BelowThreshold {
        valid: usize,
        threshold: usize,
        total: usize,
        failures: Vec<SignatureFailure>,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::InvalidThreshold(t) => {
                write!(
                    f,
                    "signature threshold {t} is invalid: it must be at least 1"
                )
            }
            VerifyError::Malformed(m) => write!(f, "malformed descriptor: {m}"),
            VerifyError::Roots(m) => write!(f, "signing roots: {m}"),
            VerifyError::BelowThreshold {
                valid,
                threshold,
                total,
                failures,
            } => {
                write!(
                    f,
                    "{valid} valid signature(s) of {total}, threshold is {threshold}"
                )?;
                for fl in failures {
                    write!(f, "; signature {}: {}", fl.index, fl.reason)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Parses every `CERTIFICATE` block of a signing-root file.
fn parse_roots(roots_pem: &[u8]) -> Result<Vec<Cert>, VerifyError> {
    let mut roots = Vec::new();
    for (i, b) in pem::decode_all(roots_pem).into_iter().enumerate() {
        if b.label != "CERTIFICATE" {
            continue;
        }
        roots.push(
            Cert::from_der(b.der)
                .map_err(|e| VerifyError::Roots(format!("block {}: {e}", i + 1)))?,
        );
    }
    if roots.is_empty() {
        return Err(VerifyError::Roots("no CERTIFICATE PEM block".into()));
    }
    Ok(roots)
}

/// Checks one (certificate, signature) pair; returns the certificate's DER when it counts.
fn check_pair(
    cert_pem: &[u8],
    sig: &[u8; 64],
    roots: &[Cert],
    now: i64,
    digest: &[u8; 32],
    counted: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let leaf = parse_cert_pem(cert_pem)?;
    let key = leaf.ed25519_key()?;
    leaf.check_validity(now, "certificate")?;
    if !roots.iter().any(|r| r.der == leaf.der) {
        // Chain of two: leaf issued and signed by a root.
        let issuer = leaf.issuer_der();
        let mut reason = String::from("certificate is not issued by a trusted root");
        let mut ok = false;
        for root in roots
            .iter()
            .filter(|r| r.subject_der() == issuer && issuer.is_some())
        {
            let attempt = root
                .check_validity(now, "root certificate")
                .and_then(|()| {
                    if root.is_ca() {
                        Ok(())
                    } else {
                        Err("root certificate is not a CA".to_string())
                    }
                })
                .and_then(|()| leaf.signed_by(root));
            match attempt {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => reason = e,
            }
        }
        if !ok {
            return Err(reason);
        }
    }
    if counted.contains(&leaf.der) {
        return Err("duplicate of an already counted certificate".into());
    }
    key.verify_strict(digest, &Signature::from_bytes(sig))
        .map_err(|_| "Ed25519 signature over the package digest does not verify".to_string())?;
    Ok(leaf.der)
}

/// Verifies the descriptor's signatures over SHA-256(`zip_bytes`) against the signing
/// roots (one or more PEM certificates) at time `now_unix`.
///
/// Per pair: PEM type CERTIFICATE, X.509, Ed25519 key, validity contains `now`, the
/// certificate is a root or is issued and signed (Ed25519) by a valid CA root, not a
/// duplicate of an already counted certificate, and the signature verifies over the
/// 32-byte digest. Succeeds when at least `threshold` (≥ 1) pairs count.
pub fn verify(
    descriptor: &Descriptor,
    zip_bytes: &[u8],
    roots_pem: &[u8],
    threshold: usize,
    now_unix: i64,
) -> Result<Verified, VerifyError> {
    if threshold == 0 {
        return Err(VerifyError::InvalidThreshold(threshold));
    }
    if descriptor.certificates.len() != descriptor.signatures.len() {
        return Err(VerifyError::Malformed(format!(
            "{} certificates but {} signatures",
            descriptor.certificates.len(),
            descriptor.signatures.len()
        )));
    }
    let roots = parse_roots(roots_pem)?;
    let digest = sha256(zip_bytes);
    let mut counted: Vec<Vec<u8>> = Vec::new();
    let mut failures = Vec::new();
    for (i, (cert, sig)) in descriptor
        .certificates
        .iter()
        .zip(&descriptor.signatures)
        .enumerate()
    {
        match check_pair(cert, sig, &roots, now_unix, &digest, &counted) {
            Ok(der) => counted.push(der),
            Err(reason) => failures.push(SignatureFailure {
                index: i + 1,
                reason,
            }),
        }
    }
    if counted.len() < threshold {
        return Err(VerifyError::BelowThreshold {
            valid: counted.len(),
            threshold,
            total: descriptor.signatures.len(),
            failures,
        });
    }
    Ok(Verified {
        digest,
        valid_signatures: counted.len(),
    })
}

/// Why signing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    EmptyArchive,
    Certificate(String),
    KeyMismatch,
    DuplicateCertificate,
    /// The signer (e.g. a PKCS#11 token) could not sign.
    Signer(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::EmptyArchive => f.write_str("the archive is empty"),
            SignError::Certificate(e) => write!(f, "signing certificate: {e}"),
            SignError::KeyMismatch => {
                f.write_str("the signing key does not match the certificate's public key")
            }
            SignError::DuplicateCertificate => {
                f.write_str("the descriptor already has a signature with this certificate")
            }
            SignError::Signer(e) => write!(f, "signing: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// Signs SHA-256(`zip_bytes`) with `signing_key`. Returns the certificate re-encoded as
/// Go's `pem.EncodeToMemory` writes it (what stmgr stores in the descriptor) and the
/// signature. The certificate must be an Ed25519 X.509 certificate for this key.
pub fn sign(
    zip_bytes: &[u8],
    signing_key: &dyn crate::signer::Ed25519Signer,
    cert_pem: &[u8],
) -> Result<(Vec<u8>, [u8; 64]), SignError> {
    if zip_bytes.is_empty() {
        return Err(SignError::EmptyArchive);
    }
    let cert = parse_cert_pem(cert_pem).map_err(SignError::Certificate)?;
    let key = cert.ed25519_key().map_err(SignError::Certificate)?;
    if key != signing_key.verifying_key() {
        return Err(SignError::KeyMismatch);
    }
    let digest = sha256(zip_bytes);
    let sig = signing_key
        .sign_ed25519(&digest)
        .map_err(SignError::Signer)?;
    Ok((pem::encode("CERTIFICATE", &cert.der), sig))
}

/// [`sign`], then appends certificate and signature to `descriptor` (so certificate i
/// stays with signature i). Refuses a certificate the descriptor already holds.
pub fn sign_descriptor(
    descriptor: &mut Descriptor,
    zip_bytes: &[u8],
    signing_key: &dyn crate::signer::Ed25519Signer,
    cert_pem: &[u8],
) -> Result<(), SignError> {
    let (cert, sig) = sign(zip_bytes, signing_key, cert_pem)?;
    let new_der = parse_cert_pem(&cert).map_err(SignError::Certificate)?.der;
    for existing in &descriptor.certificates {
        let der = parse_cert_pem(existing)
            .map_err(|e| SignError::Certificate(format!("existing descriptor entry: {e}")))?
            .der;
        if der == new_der {
            return Err(SignError::DuplicateCertificate);
        }
    }
    descriptor.certificates.push(cert);
    descriptor.signatures.push(sig);
    Ok(())
}

/// The validity period (not before, not after; seconds since the epoch) of the first
/// certificate in `cert_pem`, if it parses.
pub fn certificate_validity(cert_pem: &[u8]) -> Option<(i64, i64)> {
    let c = parse_cert_pem(cert_pem).ok()?;
    let v = c.tbs().validity();
    let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    Some((secs(v.not_before)?, secs(v.not_after)?))
}

/// A short description of a descriptor certificate element, for inspection: subject CN,
/// validity and whether it is Ed25519. Never fails; problems are described.
pub fn describe_certificate(cert_pem: &[u8]) -> String {
    match parse_cert_pem(cert_pem) {
        Err(e) => format!("unparsable: {e}"),
        Ok(c) => {
            let tbs = c.tbs();
            let v = tbs.validity();
            let key = match c.ed25519_key() {
                Ok(k) => format!("Ed25519 key {}", crate::hex(k.as_bytes())),
                Err(e) => e,
            };
            format!(
                "subject {}, issuer {}, valid {} .. {}, {key}",
                tbs.subject(),
                tbs.issuer(),
                format_unix(
                    i64::try_from(v.not_before.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
                ),
                format_unix(
                    i64::try_from(v.not_after.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00Z"), Ok(1_893_456_000));
        assert_eq!(
            parse_rfc3339("2030-01-01T01:00:00+01:00"),
            Ok(1_893_456_000)
        );
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00.123Z"), Ok(1_893_456_000));
        for bad in [
            "2030-01-01",
            "2030-13-01T00:00:00Z",
            "2030-01-01T00:00:00",
            "x",
            "2030-01-01T00:00:00+1:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(format_unix(1_893_456_000), "2030-01-01T00:00:00Z");
    }
}
