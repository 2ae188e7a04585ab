//! stmgr-style signing certificates (feature `generate`, host only).
//!
//! Root: self-issued, CN = base64(SHA-256(raw public key)), CA (critical basic
//! constraints, no path length), critical KeyUsage DigitalSignature | CertSign. Leaf:
//! issued by the root, CN the same way, critical KeyUsage DigitalSignature. Both Ed25519,
//! X.509 v3, 128-bit random serial. The caller supplies randomness, so this module needs
//! no OS RNG (the host tool passes `getrandom`).

use crate::pem;
use crate::verify::sha256;
use der::asn1::{
    Any, BitString, GeneralizedTime, ObjectIdentifier, OctetString, PrintableStringRef,
};
use der::{Decode, Encode};
use ed25519_dalek::ed25519::signature::Keypair;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifier, EncodePublicKey, SignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned,
    SubjectPublicKeyInfoRef,
};
use x509_cert::time::{Time, Validity};

const KEY_USAGE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const BASIC_CONSTRAINTS_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// id-at-commonName.
const COMMON_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Randomness source: fills the buffer or says why it could not.
pub type Rng<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<(), String>;

/// Why a certificate could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError(pub String);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertError {}

fn err(what: &str, e: impl fmt::Display) -> CertError {
    CertError(format!("{what}: {e}"))
}

/// `CN=<base64(SHA-256(pubkey))>` as a Name with one RDN holding one attribute, the value a
/// PrintableString, as Go's encoder writes it (`Name::from_str` would choose UTF8String).
/// x509-cert builds a `Name` only by decoding (or behind its `hazmat` feature), so the
/// RDNSequence is encoded and read back as a `Name`.
fn cn_name(public_key: &[u8; 32]) -> Result<Name, CertError> {
    let cn = crate::json::encode_base64(&sha256(public_key));
    let value = PrintableStringRef::new(&cn).map_err(|e| err("subject name", e))?;
    let atv = AttributeTypeAndValue {
        oid: COMMON_NAME_OID,
        value: Any::encode_from(&value).map_err(|e| err("subject name", e))?,
    };
    let rdn = RelativeDistinguishedName::try_from(vec![atv]).map_err(|e| err("subject name", e))?;
    let der = RdnSequence::from(vec![rdn])
        .to_der()
        .map_err(|e| err("subject name", e))?;
    Name::from_der(&der).map_err(|e| err("subject name", e))
}

fn time(unix: i64, what: &str) -> Result<Time, CertError> {
    let secs = u64::try_from(unix).map_err(|_| CertError(format!("{what}: before 1970")))?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(Time::GeneralTime)
        .map_err(|e| err(what, e))
}

fn serial(rng: Rng<'_>) -> Result<[u8; 16], CertError> {
    let mut bytes = [0u8; 16];
    rng(&mut bytes).map_err(|e| err("randomness", e))?;
    Ok(bytes)
}

fn new_key(rng: Rng<'_>) -> Result<SigningKey, CertError> {
    let mut seed = [0u8; 32];
    rng(&mut seed).map_err(|e| err("randomness", e))?;
    Ok(SigningKey::from_bytes(&seed))
}

struct StProfile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

fn extension<T: Encode>(oid: ObjectIdentifier, value: &T) -> x509_cert::builder::Result<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical: true,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

impl BuilderProfile for StProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        // Go's order: key usage, then basic constraints.
        let mut out = Vec::new();
        if self.ca {
            let ku = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign);
            out.push(extension(KEY_USAGE_OID, &ku)?);
            let bc = BasicConstraints {
                ca: true,
                path_len_constraint: None,
            };
            out.push(extension(BASIC_CONSTRAINTS_OID, &bc)?);
        } else {
            let ku = KeyUsage(KeyUsages::DigitalSignature.into());
            out.push(extension(KEY_USAGE_OID, &ku)?);
        }
        Ok(out)
    }
}

/// The issuer's public key as the x509-cert builder wants a signer (its algorithm, Ed25519):
/// the tbsCertificate is signed between `finalize` and `assemble`, by whoever holds the key.
struct Issuer(VerifyingKey);

impl Keypair for Issuer {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        self.0
    }
}

impl SignatureAlgorithmIdentifier for Issuer {
    type Params = <VerifyingKey as SignatureAlgorithmIdentifier>::Params;

    const SIGNATURE_ALGORITHM_IDENTIFIER: AlgorithmIdentifier<Self::Params> =
        VerifyingKey::SIGNATURE_ALGORITHM_IDENTIFIER;
}

/// Signs a tbsCertificate with pure Ed25519, giving the 64-byte signature.
pub type SignTbs<'a> = &'a mut dyn FnMut(&[u8]) -> Result<Vec<u8>, CertError>;

fn build(
    profile: StProfile,
    serial: [u8; 16],
    valid_from: i64,
    valid_until: i64,
    subject_key: &VerifyingKey,
    issuer_key: &VerifyingKey,
    sign: SignTbs<'_>,
) -> Result<Vec<u8>, CertError> {
    if valid_until <= valid_from {
        return Err(CertError(format!(
            "validity ends ({}) before it starts ({})",
            crate::format_unix(valid_until),
            crate::format_unix(valid_from)
        )));
    }
    let validity = Validity::new(
        time(valid_from, "valid-from")?,
        time(valid_until, "valid-until")?,
    );
    let spki =
        SubjectPublicKeyInfoOwned::from_key(subject_key).map_err(|e| err("public key", e))?;
    let serial = SerialNumber::new(&serial).map_err(|e| err("serial number", e))?;
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|e| err("certificate", e))?;
    let issuer = Issuer(*issuer_key);
    let tbs = builder
        .finalize(&issuer)
        .map_err(|e| err("certificate", e))?;
    let sig = sign(&tbs)?;
    let bits = BitString::from_bytes(&sig).map_err(|e| err("signature", e))?;
    let cert: Certificate = builder
        .assemble(bits, &issuer)
        .map_err(|e| err("certificate", e))?;
    let der = cert.to_der().map_err(|e| err("certificate", e))?;
    Ok(pem::encode("CERTIFICATE", &der))
}

/// A new root key and its self-signed CA certificate (PEM), valid over
/// `[valid_from, valid_until]` (seconds since the epoch).
pub fn generate_root(
    valid_from: i64,
    valid_until: i64,
    rng: Rng<'_>,
) -> Result<(SigningKey, Vec<u8>), CertError> {
    let key = new_key(rng)?;
    let pem = root_certificate(&key, valid_from, valid_until, rng)?;
    Ok((key, pem))
}

/// A self-signed CA certificate for an existing key.
pub fn root_certificate(
    key: &SigningKey,
    valid_from: i64,
    valid_until: i64,
    rng: Rng<'_>,
) -> Result<Vec<u8>, CertError> {
    root_certificate_with(
        &key.verifying_key(),
        serial(rng)?,
        valid_from,
        valid_until,
        &mut |tbs| Ok(key.sign(tbs).to_bytes().to_vec()),
    )
}

/// The self-signed CA certificate [`root_certificate`] makes, for a key of which only the
/// public half is at hand (a key on a token): `sign` signs the tbsCertificate; `serial` is
/// 16 random bytes. An error from `sign` is returned as it is.
pub fn root_certificate_with(
    public: &VerifyingKey,
    serial: [u8; 16],
    valid_from: i64,
    valid_until: i64,
    sign: SignTbs<'_>,
) -> Result<Vec<u8>, CertError> {
    let name = cn_name(public.as_bytes())?;
    let profile = StProfile {
        subject: name.clone(),
        issuer: name,
        ca: true,
    };
    build(
        profile,
        serial,
        valid_from,
        valid_until,
        public,
        public,
        sign,
    )
}

/// A new signing key and its certificate issued by the root (`root_cert_pem` must be the
/// certificate of `root_key`).
pub fn generate_leaf(
    root_key: &SigningKey,
    root_cert_pem: &[u8],
    valid_from: i64,
    valid_until: i64,
    rng: Rng<'_>,
) -> Result<(SigningKey, Vec<u8>), CertError> {
    let block = pem::decode_first(root_cert_pem)
        .filter(|b| b.label == "CERTIFICATE")
        .ok_or_else(|| CertError("root certificate: no CERTIFICATE PEM block".into()))?;
    let root = Certificate::from_der(&block.der).map_err(|e| err("root certificate", e))?;
    let root_spki = root
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| err("root certificate", e))?;
    let our_spki = root_key
        .verifying_key()
        .to_public_key_der()
        .map_err(|e| err("root key", e))?;
    if root_spki != our_spki.as_bytes() {
        return Err(CertError(
            "the root key does not match the root certificate's public key".into(),
        ));
    }
    let key = new_key(rng)?;
    let profile = StProfile {
        subject: cn_name(key.verifying_key().as_bytes())?,
        issuer: root.tbs_certificate().subject().clone(),
        ca: false,
    };
    let pem = build(
        profile,
        serial(rng)?,
        valid_from,
        valid_until,
        &key.verifying_key(),
        &root_key.verifying_key(),
        &mut |tbs| Ok(root_key.sign(tbs).to_bytes().to_vec()),
    )?;
    Ok((key, pem))
}
