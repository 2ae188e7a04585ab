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

use crate::asn1::{
    BIT_STRING, BOOLEAN, GENERALIZED_TIME, OCTET_STRING, UTC_TIME, UTF8_STRING, alg_null, ctx, oid,
    seq, tlv, uint,
};
use crate::digest::sha256;
use crate::signer::Signer;
use anyhow::{Context, Result, anyhow, bail};
use chacha20::ChaCha20Rng;
use der::{Decode, Encode};
use pkcs1::DecodeRsaPrivateKey;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rand_core_compat::SeedableRng;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use x509_cert::Certificate;

// rand_core as re-exported by rsa (0.10), matching chacha20's.
use rsa::rand_core as rand_core_compat;

/// Owner GUID of the NekOS key hierarchy (EFI_SIGNATURE_DATA.SignatureOwner for PK, KEK
/// and db entries). Fixed forever: changing it changes PCR 7.
pub const NEKOS_OWNER_GUID: &str = "fd10187e-ca3b-4612-8b5a-4d31695b635f";

/// RSA modulus size of every key in the hierarchy (what UEFI firmware is required to support).
pub const KEY_BITS: usize = 2048;

/// Validity of all NekOS certificates: firmware ignores it, so it is fixed (makes the
/// certificates — and the variable-store timestamps derived from notBefore — reproducible
/// for a given key). notAfter is RFC 5280's "no well-defined expiration".
pub const NOT_BEFORE_UTC: &str = "250101000000Z";
pub const NOT_AFTER_GENERALIZED: &str = "99991231235959Z";

const OID_SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
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

fn name_der(common_name: &str) -> Vec<u8> {
    let rdn = |o: &str, v: &str| tlv(0x31, &seq(&[&oid(o), &tlv(UTF8_STRING, v.as_bytes())]));
    seq(&[&rdn("2.5.4.10", "NekOS"), &rdn("2.5.4.3", common_name)])
}

fn extension(oid_s: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    if critical {
        seq(&[
            &oid(oid_s),
            &tlv(BOOLEAN, &[0xff]),
            &tlv(OCTET_STRING, value),
        ])
    } else {
        seq(&[&oid(oid_s), &tlv(OCTET_STRING, value)])
    }
}

/// A self-signed certificate for `key`.
pub fn self_signed_cert(
    key: &PrivateKey,
    common_name: &str,
    code_signing: bool,
) -> Result<Vec<u8>> {
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| anyhow!("encoding the public key: {e}"))?
        .into_vec();
    let spki_hash = sha256(&spki);
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&spki_hash[..16]);
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    // Key identifier: SHA-256 of the SubjectPublicKeyInfo, cut to 160 bits (RFC 7093 style).
    let key_id = &spki_hash[..20];
    let name = name_der(common_name);
    let mut exts = vec![
        extension("2.5.29.19", true, &seq(&[&tlv(BOOLEAN, &[0xff])])),
        // digitalSignature, keyCertSign, cRLSign
        extension("2.5.29.15", true, &tlv(BIT_STRING, &[1, 0x86])),
        extension("2.5.29.14", false, &tlv(OCTET_STRING, key_id)),
        extension("2.5.29.35", false, &seq(&[&tlv(0x80, key_id)])),
    ];
    if code_signing {
        exts.push(extension(
            "2.5.29.37",
            false,
            &seq(&[&oid("1.3.6.1.5.5.7.3.3")]),
        ));
    }
    let tbs = seq(&[
        &ctx(0, &uint(&[2])),
        &uint(&serial),
        &alg_null(OID_SHA256_WITH_RSA),
        &name,
        &seq(&[
            &tlv(UTC_TIME, NOT_BEFORE_UTC.as_bytes()),
            &tlv(GENERALIZED_TIME, NOT_AFTER_GENERALIZED.as_bytes()),
        ]),
        &name,
        &spki,
        &ctx(3, &seq(&exts.iter().map(Vec::as_slice).collect::<Vec<_>>())),
    ]);
    let sig = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &sha256(&tbs))
        .map_err(|e| anyhow!("signing the certificate: {e}"))?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    let cert = seq(&[
        &tbs,
        &alg_null(OID_SHA256_WITH_RSA),
        &tlv(BIT_STRING, &bits),
    ]);
    // Round-trip through x509-cert to be sure it is well-formed.
    Certificate::from_der(&cert).context("generated certificate does not parse")?;
    Ok(cert)
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

/// EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING } (a
/// PrivateKeyInfo starts with an INTEGER instead).
fn looks_like_encrypted_pkcs8(bytes: &[u8]) -> bool {
    use crate::asn1;
    let Ok((outer, _)) = asn1::expect(bytes, asn1::SEQUENCE) else {
        return false;
    };
    match asn1::read_all(outer.content).as_deref() {
        Ok([alg, data]) => alg.tag == asn1::SEQUENCE && data.tag == OCTET_STRING,
        _ => false,
    }
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
    Certificate::from_der(&der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    Ok(der)
}

/// The RSA public key in a DER certificate.
pub fn public_key_of_cert(cert_der: &[u8]) -> Result<PublicKey> {
    let cert =
        Certificate::from_der(cert_der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
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
