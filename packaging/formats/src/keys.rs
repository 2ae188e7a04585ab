//! The NekOS Secure Boot key hierarchy: PK, KEK and db, each RSA-2048 with a self-signed
//! SHA-256 X.509 certificate. The db key signs UKIs. Bytes only: where the keys live and how
//! they are written is the host's business (`nekos_packaging::keys`).
//!
//! Owner GUID: every EFI_SIGNATURE_DATA that enrols a NekOS certificate uses the fixed
//! [`NEKOS_OWNER_GUID`]; it is written to `GUID` too (the sbctl convention).
//!
//! `seed` (tests only!) derives the keys from a ChaCha20 stream seeded with
//! SHA-256(domain ‖ seed ‖ role): anyone with the seed has the private keys. Such
//! certificates say "INSECURE TEST KEY" in their subject and the directory gets a
//! `INSECURE-TEST-KEYS` marker file. Real keys come from the OS RNG (getrandom).

use crate::digest::sha256;
use crate::signer::Signer;
use anyhow::{Result, anyhow, bail};
use chacha20::ChaCha20Rng;
use der::asn1::{Any, AnyRef, GeneralizedTime, ObjectIdentifier, OctetString, UtcTime};
use der::oid::AssociatedOid;
use der::{Decode, Encode, Sequence, SliceReader, Tag};
use pkcs1::DecodeRsaPrivateKey;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rand_core_compat::SeedableRng;
use rsa::pkcs1v15::{Pkcs1v15Sign, VerifyingKey};
use rsa::sha2::{Digest, Sha256};
use rsa::signature;
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use std::cell::RefCell;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierRef, SignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned,
};
use x509_cert::time::{Time, Validity};

// rand_core as re-exported by rsa (0.10), matching chacha20's.
use rsa::rand_core as rand_core_compat;

/// Owner GUID of the NekOS key hierarchy (EFI_SIGNATURE_DATA.SignatureOwner for PK, KEK
/// and db entries). Fixed forever: changing it changes PCR 7.
pub const NEKOS_OWNER_GUID: &str = "fd10187e-ca3b-4612-8b5a-4d31695b635f";

/// RSA modulus size of every key in the hierarchy (what UEFI firmware is required to support).
pub const KEY_BITS: usize = 2048;

/// Validity of all NekOS certificates, in seconds since the epoch: firmware ignores it, so
/// it is fixed (makes the certificates — and the variable-store timestamps derived from
/// notBefore — reproducible for a given key). notBefore is 2025-01-01 00:00:00 UTC (a
/// UTCTime); notAfter is RFC 5280's "no well-defined expiration", 9999-12-31 23:59:59 (a
/// GeneralizedTime).
pub const NOT_BEFORE_UNIX: u64 = 1_735_689_600;
pub const NOT_AFTER_UNIX: u64 = 253_402_300_799;

/// id-kp-codeSigning (RFC 5280), in the db certificate's extended key usage.
const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const OID_ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SEED_DOMAIN: &[u8] = b"NekOS insecure test key v1";

/// The three keys of the hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Pk,
    Kek,
    Db,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Pk, Role::Kek, Role::Db];

    /// File stem: `PK`, `KEK`, `db`.
    pub fn stem(self) -> &'static str {
        match self {
            Role::Pk => "PK",
            Role::Kek => "KEK",
            Role::Db => "db",
        }
    }

    pub fn common_name(self) -> &'static str {
        match self {
            Role::Pk => "NekOS Platform Key (PK)",
            Role::Kek => "NekOS Key Exchange Key (KEK)",
            Role::Db => "NekOS Signature Database Key (db)",
        }
    }
}

/// One generated key with its certificate.
pub struct KeyPair {
    pub role: Role,
    pub key: PrivateKey,
    pub cert_der: Vec<u8>,
}

/// The hierarchy PK, KEK, db.
pub struct Hierarchy {
    pub keys: Vec<KeyPair>,
    /// Derived from a seed: insecure, for tests.
    pub insecure_test_keys: bool,
}

impl Hierarchy {
    pub fn get(&self, role: Role) -> Option<&KeyPair> {
        self.keys.iter().find(|k| k.role == role)
    }
}

/// `O=NekOS, CN=<common_name>`, both UTF8String.
fn name(common_name: &str) -> Result<Name> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in [(OID_ORGANIZATION, "NekOS"), (OID_COMMON_NAME, common_name)] {
        let atv = AttributeTypeAndValue {
            oid,
            value: Any::new(Tag::Utf8String, value.as_bytes())?,
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![atv])?);
    }
    // x509-cert builds a Name from an RdnSequence only through its DER (or behind the
    // `hazmat` feature).
    Ok(Name::from_der(&rdns.to_der()?)?)
}

/// The fixed extensions of a NekOS certificate, in this order: basic constraints (CA,
/// critical), key usage (digitalSignature, keyCertSign, cRLSign; critical), subject and
/// authority key identifier, and for the db key the code-signing extended key usage.
struct NekosProfile {
    name: Name,
    key_id: OctetString,
    code_signing: bool,
}

fn extension<T: Encode + AssociatedOid>(
    critical: bool,
    value: &T,
) -> x509_cert::builder::Result<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

impl BuilderProfile for NekosProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.name.clone()
    }

    fn get_subject(&self) -> Name {
        self.name.clone()
    }

    fn build_extensions(
        &self,
        _spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: x509_cert::spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let basic = BasicConstraints {
            ca: true,
            path_len_constraint: None,
        };
        let usage =
            KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign | KeyUsages::CRLSign);
        let authority = AuthorityKeyIdentifier {
            key_identifier: Some(self.key_id.clone()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let mut exts = vec![
            extension(true, &basic)?,
            extension(true, &usage)?,
            extension(false, &SubjectKeyIdentifier(self.key_id.clone()))?,
            extension(false, &authority)?,
        ];
        if self.code_signing {
            exts.push(extension(
                false,
                &ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]),
            )?);
        }
        Ok(exts)
    }
}

/// A self-signed certificate for `key`: X.509 v3, sha256WithRSAEncryption, serial and key
/// identifiers derived from the public key, fixed validity — the same key always gives the
/// same certificate.
pub fn self_signed_cert(
    key: &PrivateKey,
    common_name: &str,
    code_signing: bool,
) -> Result<Vec<u8>> {
    self_signed_cert_with(&key.to_public_key(), common_name, code_signing, &|digest| {
        key.sign(Pkcs1v15Sign::new::<Sha256>(), digest)
            .map_err(|e| anyhow!("signing the certificate: {e}"))
    })
}

/// The certificate [`self_signed_cert`] makes, for a key of which only the public half is
/// at hand: `sign` makes the RSA PKCS#1 v1.5 signature over DigestInfo(SHA-256) of the
/// digest it is given (the [`Signer::sign_sha256_digest`] contract; PKCS#1 v1.5 is
/// deterministic, so the bytes equal the key file's). A key on a token signs its own
/// certificate this way. An error from `sign` is returned as it is.
pub fn self_signed_cert_with(
    public: &PublicKey,
    common_name: &str,
    code_signing: bool,
    sign: &dyn Fn(&[u8; 32]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let spki_der = public
        .to_public_key_der()
        .map_err(|e| anyhow!("encoding the public key: {e}"))?;
    let spki_hash = sha256(spki_der.as_bytes());
    // A positive 16-byte serial with a non-zero first byte (no sign padding needed).
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&spki_hash[..16]);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let profile = NekosProfile {
        name: name(common_name)?,
        // Key identifier: SHA-256 of the SubjectPublicKeyInfo, cut to 160 bits (RFC 7093 style).
        key_id: OctetString::new(&spki_hash[..20])?,
        code_signing,
    };
    let validity = Validity::new(
        Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(
            NOT_BEFORE_UNIX,
        ))?),
        Time::GeneralTime(GeneralizedTime::from_unix_duration(Duration::from_secs(
            NOT_AFTER_UNIX,
        ))?),
    );
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes())?;
    let builder = CertificateBuilder::new(profile, SerialNumber::new(&serial)?, validity, spki)
        .map_err(|e| anyhow!("certificate: {e}"))?;
    let signer = DigestSigner {
        public: VerifyingKey::new(public.clone()),
        sign,
        failure: RefCell::new(None),
    };
    let cert = builder
        .build::<_, rsa::pkcs1v15::Signature>(&signer)
        .map_err(|e| match signer.failure.borrow_mut().take() {
            Some(e) => e,
            None => anyhow!("signing the certificate: {e}"),
        })?;
    Ok(cert.to_der()?)
}

/// A public RSA key and a digest-signing function, as the x509-cert builder wants a signer:
/// sha256WithRSAEncryption (NULL parameters), PKCS#1 v1.5 over the tbsCertificate's SHA-256.
struct DigestSigner<'a> {
    public: VerifyingKey<Sha256>,
    sign: &'a dyn Fn(&[u8; 32]) -> Result<Vec<u8>>,
    /// The signing function's error, which `signature::Error` cannot carry.
    failure: RefCell<Option<anyhow::Error>>,
}

impl signature::Keypair for DigestSigner<'_> {
    type VerifyingKey = VerifyingKey<Sha256>;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.public.clone()
    }
}

impl SignatureAlgorithmIdentifier for DigestSigner<'_> {
    type Params = AnyRef<'static>;

    const SIGNATURE_ALGORITHM_IDENTIFIER: AlgorithmIdentifierRef<'static> =
        AlgorithmIdentifierRef {
            oid: OID_SHA256_WITH_RSA,
            parameters: Some(AnyRef::NULL),
        };
}

impl signature::Signer<rsa::pkcs1v15::Signature> for DigestSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<rsa::pkcs1v15::Signature, signature::Error> {
        match (self.sign)(&sha256(msg)) {
            Ok(sig) => rsa::pkcs1v15::Signature::try_from(sig.as_slice()),
            Err(e) => {
                *self.failure.borrow_mut() = Some(e);
                Err(signature::Error::new())
            }
        }
    }
}

fn new_key(seed: Option<&[u8]>, role: Role) -> Result<PrivateKey> {
    match seed {
        Some(seed) => {
            let mut h = Sha256::new();
            h.update(SEED_DOMAIN);
            h.update((seed.len() as u64).to_le_bytes());
            h.update(seed);
            h.update(role.stem().as_bytes());
            let mut rng = ChaCha20Rng::from_seed(h.finalize().into());
            PrivateKey::new(&mut rng, KEY_BITS).map_err(|e| anyhow!("RSA key generation: {e}"))
        }
        None => PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .map_err(|e| anyhow!("RSA key generation: {e}")),
    }
}

/// Generates PK, KEK and db. `seed`: TESTS ONLY (deterministic, insecure keys).
pub fn generate_hierarchy(seed: Option<&[u8]>) -> Result<Hierarchy> {
    let mut keys = Vec::new();
    for role in Role::ALL {
        let key = new_key(seed, role)?;
        let cn = if seed.is_some() {
            format!("{} INSECURE TEST KEY", role.common_name())
        } else {
            role.common_name().to_string()
        };
        let cert_der = self_signed_cert(&key, &cn, role == Role::Db)?;
        keys.push(KeyPair {
            role,
            key,
            cert_der,
        });
    }
    Ok(Hierarchy {
        keys,
        insecure_test_keys: seed.is_some(),
    })
}

/// PEM of a DER certificate.
pub fn cert_pem(der: &[u8]) -> Result<String> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| anyhow!("PEM encoding: {e}"))
}

/// The files a hierarchy consists of, relative to its directory.
pub fn hierarchy_files() -> Vec<String> {
    let mut v = Vec::new();
    for r in Role::ALL {
        v.push(format!("{}.key", r.stem()));
        v.push(format!("{}.crt", r.stem()));
    }
    v.push("GUID".into());
    v
}

/// PEM boundary labels of the key formats we read (the type names after "-----BEGIN ").
/// Matched by label, not by whole boundary line, so no key-shaped text sits in the source
/// for secret scanners to trip over.
const PEM_ENCRYPTED_PKCS8: &str = "ENCRYPTED PRIVATE KEY-----";
const PEM_PKCS1_RSA: &str = "RSA PRIVATE KEY-----";
const PEM_PKCS8: &str = "PRIVATE KEY-----";

fn has_pem_label(text: &str, label: &str) -> bool {
    text.lines()
        .any(|l| l.trim_end().strip_prefix("-----BEGIN ") == Some(label))
}

pub fn parse_private_key(bytes: &[u8]) -> Result<PrivateKey> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && text.contains("-----BEGIN ")
    {
        if has_pem_label(text, PEM_ENCRYPTED_PKCS8) || text.contains("Proc-Type: 4,ENCRYPTED") {
            bail!(
                "the key is encrypted; decrypt it (e.g. openssl pkey -in KEY -out PLAIN.key) or use a hardware signer"
            );
        }
        if has_pem_label(text, PEM_PKCS1_RSA) {
            return PrivateKey::from_pkcs1_pem(text)
                .map_err(|e| anyhow!("invalid PKCS#1 RSA key: {e}"));
        }
        if has_pem_label(text, PEM_PKCS8) {
            return PrivateKey::from_pkcs8_pem(text)
                .map_err(|e| anyhow!("unsupported key format (only RSA keys are supported): {e}"));
        }
        let label = text
            .lines()
            .find(|l| l.starts_with("-----BEGIN "))
            .unwrap_or("")
            .to_string();
        bail!("unsupported key format {label:?} (need an unencrypted RSA key, PKCS#8 or PKCS#1)");
    }
    if let Ok(k) = PrivateKey::from_pkcs8_der(bytes) {
        return Ok(k);
    }
    if let Ok(k) = PrivateKey::from_pkcs1_der(bytes) {
        return Ok(k);
    }
    if looks_like_encrypted_pkcs8(bytes) {
        bail!("the key is encrypted (DER EncryptedPrivateKeyInfo); decrypt it first");
    }
    bail!("unsupported key format (need an unencrypted RSA key, PKCS#8 or PKCS#1, PEM or DER)")
}

/// EncryptedPrivateKeyInfo (RFC 5958), to recognise an encrypted DER key; a
/// PrivateKeyInfo starts with an INTEGER instead.
#[derive(Sequence)]
struct EncryptedPrivateKeyInfo<'a> {
    encryption_algorithm: AlgorithmIdentifierRef<'a>,
    encrypted_data: OctetString,
}

/// Whether `bytes` start with an EncryptedPrivateKeyInfo (what follows it does not matter).
fn looks_like_encrypted_pkcs8(bytes: &[u8]) -> bool {
    let Ok(mut reader) = SliceReader::new(bytes) else {
        return false;
    };
    EncryptedPrivateKeyInfo::decode(&mut reader).is_ok()
}

pub fn parse_certificate(bytes: &[u8]) -> Result<Vec<u8>> {
    let der = if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(bytes).map_err(|e| anyhow!("invalid PEM: {e}"))?;
        if label != "CERTIFICATE" {
            bail!("PEM label is {label:?}, expected CERTIFICATE");
        }
        der
    } else {
        bytes.to_vec()
    };
    decode_certificate(&der)?;
    Ok(der)
}

/// An AlgorithmIdentifier for an error message: the OID, then its parameters as DER hex.
fn describe_algorithm(a: &x509_cert::spki::AlgorithmIdentifierOwned) -> String {
    match &a.parameters {
        None => format!("{} without parameters", a.oid),
        Some(p) => format!(
            "{} with parameters {}",
            a.oid,
            hex::encode(p.to_der().unwrap_or_default())
        ),
    }
}

/// Decodes a DER X.509 certificate, refusing one whose outer `signatureAlgorithm` is not
/// byte-identical to the signed `tbsCertificate.signature` (RFC 5280 §4.1.1.2 requires them
/// to be the same). Every certificate this crate reads goes through here.
///
/// The outer field is not covered by the signature, so a mismatch forges nothing, but such a
/// certificate is malformed, and firmware or tools that read one field while this crate reads
/// the other could disagree about it; Go's crypto/x509 refuses the same mismatch, and
/// OpenSSL's `X509_verify` fails on it. Compared as DER: `der` decodes only DER and keeps the
/// parameters as their raw TLV, and an AlgorithmIdentifier has no DEFAULT field, so
/// re-encoding gives back exactly the bytes that were read.
pub fn decode_certificate(der: &[u8]) -> Result<Certificate> {
    let cert = Certificate::from_der(der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    let outer = cert.signature_algorithm();
    let inner = cert.tbs_certificate().signature();
    match (outer.to_der(), inner.to_der()) {
        (Ok(o), Ok(i)) if o == i => Ok(cert),
        _ => bail!(
            "certificate \"{}\" is malformed: its outer signatureAlgorithm {} differs from \
             the signed tbsCertificate.signature {} (RFC 5280 4.1.1.2 requires them to be \
             identical)",
            cert.tbs_certificate().subject(),
            describe_algorithm(outer),
            describe_algorithm(inner)
        ),
    }
}

/// The RSA public key in a DER certificate.
pub fn public_key_of_cert(cert_der: &[u8]) -> Result<PublicKey> {
    let cert = decode_certificate(cert_der)?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| anyhow!("encoding SPKI: {e}"))?;
    PublicKey::from_public_key_der(&spki)
        .map_err(|e| anyhow!("the certificate's key is not an RSA key: {e}"))
}

/// A [`Signer`] holding an RSA private key and its certificate in memory (read from key
/// files by the host, or generated).
pub struct KeySigner {
    key: PrivateKey,
    cert_der: Vec<u8>,
}

impl KeySigner {
    /// Pairs a key with a certificate; errors if they do not match.
    pub fn new(key: PrivateKey, cert_der: Vec<u8>) -> Result<KeySigner> {
        let cert_key = public_key_of_cert(&cert_der)?;
        if cert_key.n() != key.n() || cert_key.e() != key.e() {
            bail!("the private key and the certificate do not match (different public keys)");
        }
        Ok(KeySigner { key, cert_der })
    }

    /// The signer of a generated key (e.g. the db key of an in-memory test hierarchy).
    pub fn from_keypair(kp: &KeyPair) -> Result<KeySigner> {
        KeySigner::new(kp.key.clone(), kp.cert_der.clone())
    }
}

impl Signer for KeySigner {
    fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha256>(), digest)
            .map_err(|e| anyhow!("RSA signing failed: {e}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    /// The seeded hierarchy's certificates, pinned (recorded from the hand-written DER
    /// writer the certificates were made with before x509-cert's builder): any change to how
    /// they are encoded changes PCR 7, the enrolled variable stores and every signature.
    #[test]
    fn seeded_certificates_are_pinned() {
        let h = generate_hierarchy(Some(b"nekos-formats pin")).unwrap();
        let pins = [
            (
                Role::Pk,
                "dd49bb72b69b61fff9ce34088722a43a22b1a745b1ad63069812f42fc1b7e51a",
            ),
            (
                Role::Kek,
                "28481078b41c98e54c0f8343a444cb9cac46990694eef5b49f99895a30cc382e",
            ),
            (
                Role::Db,
                "e675ab79fac1d6cd355e94273b9fda3ce2d3f91327b8298c389b9bb6bfca3fb6",
            ),
        ];
        for (role, pin) in pins {
            let kp = h.get(role).unwrap();
            assert_eq!(hex::encode(sha256(&kp.cert_der)), pin, "{role:?}");
            // Self-signed, and it parses back.
            let cert = Certificate::from_der(&kp.cert_der).unwrap();
            assert_eq!(
                cert.tbs_certificate().issuer(),
                cert.tbs_certificate().subject()
            );
        }
    }

    /// A TLV with a minimal DER length.
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut v = vec![tag];
        match n {
            0..0x80 => v.push(n as u8),
            0x80..0x100 => v.extend([0x81, n as u8]),
            _ => v.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        v.extend_from_slice(body);
        v
    }

    /// (tbsCertificate, signatureAlgorithm, signature) of a DER certificate, as raw TLVs.
    pub(crate) fn cert_parts(der: &[u8]) -> [Vec<u8>; 3] {
        use der::Reader;
        let outer = der::asn1::AnyRef::from_der(der).unwrap();
        let mut r = SliceReader::new(outer.value()).unwrap();
        let mut next = || r.tlv_bytes().unwrap().to_vec();
        [next(), next(), next()]
    }

    /// The certificate with its outer signatureAlgorithm replaced by `alg` (DER).
    pub(crate) fn with_outer_algorithm(der: &[u8], alg: &[u8]) -> Vec<u8> {
        let [tbs, old, sig] = cert_parts(der);
        assert_eq!(old, SHA256_WITH_RSA_NULL);
        tlv(0x30, &[tbs, alg.to_vec(), sig].concat())
    }

    /// What every generated certificate signs with: sha256WithRSAEncryption, NULL parameters.
    const SHA256_WITH_RSA_NULL: &[u8] = &[
        0x30, 0x0d, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 0x0b, 5, 0,
    ];

    /// (attack, outer AlgorithmIdentifier DER, how the error names it).
    pub(crate) const OUTER_MUTANTS: [(&str, &[u8], &str); 4] = [
        (
            "outer sha256WithRSAEncryption without the NULL parameters",
            &[
                0x30, 0x0b, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 0x0b,
            ],
            "1.2.840.113549.1.1.11 without parameters",
        ),
        (
            "outer sha384WithRSAEncryption",
            &[
                0x30, 0x0d, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 0x0c, 5, 0,
            ],
            "1.2.840.113549.1.1.12 with parameters 0500",
        ),
        (
            "outer sha1WithRSAEncryption",
            &[
                0x30, 0x0d, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 5, 5, 0,
            ],
            "1.2.840.113549.1.1.5 with parameters 0500",
        ),
        (
            "outer RSASSA-PSS without parameters",
            &[
                0x30, 0x0b, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 0x0a,
            ],
            "1.2.840.113549.1.1.10 without parameters",
        ),
    ];

    #[test]
    fn a_secure_boot_certificate_whose_outer_algorithm_differs_from_the_signed_one_is_refused() {
        let h = generate_hierarchy(Some(b"nekos-formats pin")).unwrap();
        for role in [Role::Pk, Role::Kek, Role::Db] {
            let kp = h.get(role).unwrap();
            parse_certificate(&kp.cert_der).unwrap();
            for (attack, alg, named) in OUTER_MUTANTS {
                let m = with_outer_algorithm(&kp.cert_der, alg);
                // Nothing is forged: the self-signature over the unchanged tbsCertificate
                // still verifies with the certificate's own key.
                let [tbs, _, bits] = cert_parts(&m);
                let key = public_key_of_cert(&kp.cert_der).unwrap();
                key.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(&tbs),
                    &bits[5..],
                )
                .unwrap();
                let want = format!(
                    "is malformed: its outer signatureAlgorithm {named} differs from the signed \
                     tbsCertificate.signature 1.2.840.113549.1.1.11 with parameters 0500"
                );
                let pem =
                    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &m).unwrap();
                for e in [
                    parse_certificate(&m).unwrap_err(),
                    parse_certificate(pem.as_bytes()).unwrap_err(),
                    public_key_of_cert(&m).unwrap_err(),
                    KeySigner::new(kp.key.clone(), m.clone()).err().unwrap(),
                ] {
                    let e = format!("{e:#}");
                    assert!(
                        e.starts_with("certificate \"CN=") && e.contains(&want),
                        "{role:?} {attack}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_real_microsoft_and_red_hat_certificates_pass_the_rule() {
        for (name, pem) in [
            (
                "ms-kek-2011",
                &include_bytes!("../../varstore-certs/ms-kek-2011.pem")[..],
            ),
            (
                "ms-kek-2023",
                include_bytes!("../../varstore-certs/ms-kek-2023.pem"),
            ),
            (
                "ms-uefi-2011",
                include_bytes!("../../varstore-certs/ms-uefi-2011.pem"),
            ),
            (
                "ms-uefi-2023",
                include_bytes!("../../varstore-certs/ms-uefi-2023.pem"),
            ),
            (
                "ms-uefi-rom-2023",
                include_bytes!("../../varstore-certs/ms-uefi-rom-2023.pem"),
            ),
            (
                "rh-pk-kek-2014",
                include_bytes!("../../varstore-certs/rh-pk-kek-2014.pem"),
            ),
            (
                "windows-2011",
                include_bytes!("../../varstore-certs/windows-2011.pem"),
            ),
            (
                "windows-2023",
                include_bytes!("../../varstore-certs/windows-2023.pem"),
            ),
        ] {
            // The files start with `openssl x509 -text` output; the PEM block follows.
            let at = pem.windows(10).position(|w| w == b"-----BEGIN").unwrap();
            let der = parse_certificate(&pem[at..]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            // And a mutant of each is refused.
            let m = with_outer_algorithm(&der, OUTER_MUTANTS[0].1);
            assert!(parse_certificate(&m).is_err(), "{name}");
        }
    }

    #[test]
    fn encrypted_der_keys_are_recognised() {
        // EncryptedPrivateKeyInfo { AlgorithmIdentifier { PBES2 }, OCTET STRING }
        let mut enc = vec![0x30, 0x13, 0x30, 0x0b, 0x06, 0x09];
        enc.extend_from_slice(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]);
        enc.extend_from_slice(&[0x04, 0x04, 1, 2, 3, 4]);
        assert!(looks_like_encrypted_pkcs8(&enc));
        let e = parse_private_key(&enc).unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
        // A PrivateKeyInfo starts with an INTEGER: not encrypted.
        assert!(!looks_like_encrypted_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(!looks_like_encrypted_pkcs8(&[]));
        assert!(!looks_like_encrypted_pkcs8(&[0x30, 0x82]));
    }
}
