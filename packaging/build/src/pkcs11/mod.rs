//! Keys that never leave a token: signing through a PKCS#11 module (SoftHSM2 in the tests,
//! a YubiKey's `ykcs11` for users), loaded at run time with `cryptoki`.
//!
//! A key is named by a PKCS#11 URI ([`uri`], RFC 7512) wherever a key file is accepted. The
//! module comes from the URI's `module-path`, else `$NEKOS_PKCS11_MODULE`. The PIN comes
//! from the URI's `pin-source=FILE`, else `$NEKOS_PKCS11_PIN`, else a prompt on the
//! terminal — never from the command line, and it is never printed: errors show the URI,
//! which cannot hold a PIN (the parser refuses `pin-value`).
//!
//! Signatures equal the key-file signer's byte for byte: UKIs are signed by sending the
//! SHA-256 DigestInfo to `CKM_RSA_PKCS` (the same PKCS#1 v1.5 block the key-file signer
//! makes; `CKM_SHA256_RSA_PKCS` would hash the already hashed digest again), OS packages with
//! `CKM_EDDSA` (pure Ed25519, deterministic).
//!
//! [`generate`] makes the key pair on the token (`CKA_SENSITIVE` true, `CKA_EXTRACTABLE`
//! false) and returns only its self-signed certificate, made with the token key.

pub mod cert;
pub mod uri;

pub use uri::{Pkcs11Uri, is_pkcs11_uri};

use anyhow::{Context, Result, anyhow, bail};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use nekos_formats::signer::Signer;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Environment variable holding the token PIN (documented in the README).
pub const PIN_ENV: &str = "NEKOS_PKCS11_PIN";
/// Environment variable naming the module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "NEKOS_PKCS11_MODULE";

/// DER prefix of DigestInfo { sha256, NULL } (RFC 8017 §9.2 note 1); followed by the digest.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// DER of the OID id-Ed25519 (1.3.101.112), CKA_EC_PARAMS of an Ed25519 key.
const ED25519_EC_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// A logged-in session on the token a URI names, and the key it names.
pub struct TokenKey {
    uri: Pkcs11Uri,
    session: Session,
    slot: Slot,
    key: ObjectHandle,
    // Kept last so the session closes before the module is finalised.
    ctx: Pkcs11,
}

fn ck(what: &str, e: CkError) -> anyhow::Error {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => anyhow!("wrong PIN ({what})"),
        CkError::Pkcs11(RvError::PinLocked, _) => {
            anyhow!("the PIN is locked after too many wrong tries ({what})")
        }
        CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => {
            anyhow!("the PIN has an invalid length or characters ({what})")
        }
        e => anyhow!("{what}: {e}"),
    }
}

fn read_pin(uri: &Pkcs11Uri, token_label: &str) -> Result<AuthPin> {
    if let Some(path) = &uri.pin_source {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the PIN from pin-source {}", path.display()))?;
        return Ok(AuthPin::from(
            text.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    if let Ok(pin) = std::env::var(PIN_ENV) {
        return Ok(AuthPin::from(pin));
    }
    if std::io::stdin().is_terminal() {
        let pin = rpassword::prompt_password(format!("PIN for token {token_label:?}: "))
            .context("reading the PIN from the terminal")?;
        return Ok(AuthPin::from(pin));
    }
    bail!("no PIN: set {PIN_ENV}, add pin-source=FILE to the URI, or run on a terminal to be asked")
}

fn matches(want: &Option<String>, have: &str) -> bool {
    want.as_deref().is_none_or(|w| w == have.trim_end())
}

impl TokenKey {
    /// Opens the token of `uri`, logs in and finds the private key it names.
    pub fn open(uri_text: &str) -> Result<TokenKey> {
        let uri = Pkcs11Uri::parse(uri_text)?;
        let named = uri.to_string();
        Self::open_uri(uri).with_context(|| format!("PKCS#11 key {named}"))
    }

    fn session(uri: &Pkcs11Uri, rw: bool) -> Result<(Pkcs11, Slot, Session)> {
        let module = match &uri.module_path {
            Some(p) => p.clone(),
            None => std::env::var_os(MODULE_ENV).map(PathBuf::from).ok_or_else(|| {
                anyhow!("no PKCS#11 module: add ?module-path=/path/to/module.so to the URI or set {MODULE_ENV}")
            })?,
        };
        let ctx = Pkcs11::new(&module)
            .map_err(|e| anyhow!("cannot load the PKCS#11 module {}: {e}", module.display()))?;
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| ck(&format!("initialising {}", module.display()), e))?;
        let mut found = Vec::new();
        for slot in ctx
            .get_slots_with_token()
            .map_err(|e| ck("listing the slots", e))?
        {
            if uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| ck("reading a token", e))?;
            if !info.token_initialized() {
                continue;
            }
            if matches(&uri.token, info.label())
                && matches(&uri.serial, info.serial_number())
                && matches(&uri.manufacturer, info.manufacturer_id())
                && matches(&uri.model, info.model())
            {
                found.push((slot, info.label().trim_end().to_string()));
            }
        }
        let (slot, label) = match found.as_slice() {
            [one] => one.clone(),
            [] => bail!("no initialised token matches (module {})", module.display()),
            many => bail!(
                "{} tokens match ({}); add token=, serial= or slot-id= to choose one",
                many.len(),
                many.iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let session = if rw {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
        .map_err(|e| ck("opening a session", e))?;
        let pin = read_pin(uri, &label)?;
        session
            .login(UserType::User, Some(&pin))
            .map_err(|e| ck(&format!("logging in to token {label:?}"), e))?;
        Ok((ctx, slot, session))
    }

    fn open_uri(uri: Pkcs11Uri) -> Result<TokenKey> {
        if uri
            .object_type
            .is_some_and(|t| t != uri::ObjectType::Private)
        {
            bail!("type= must be private for a signing key");
        }
        let (ctx, slot, session) = Self::session(&uri, false)?;
        let key = find_one(&session, &uri, ObjectClass::PRIVATE_KEY)?
            .ok_or_else(|| anyhow!("no private key with this object/id on the token"))?;
        // A key that wants the PIN again for every signature (CKA_ALWAYS_AUTHENTICATE) needs
        // a context-specific login between C_SignInit and C_Sign, which cryptoki's one-call
        // `sign` cannot do; say so and how to avoid it rather than fail with a bare
        // CKR_USER_NOT_LOGGED_IN.
        let always = session
            .get_attributes(key, &[AttributeType::AlwaysAuthenticate])
            .unwrap_or_default();
        if always.contains(&Attribute::AlwaysAuthenticate(true)) {
            bail!(
                "the key asks for the PIN before every signature (CKA_ALWAYS_AUTHENTICATE), which nekos does not support; on a YubiKey give the slot the PIN policy \"once\" (ykman piv keys generate --pin-policy ONCE)"
            );
        }
        Ok(TokenKey {
            uri,
            session,
            slot,
            key,
            ctx,
        })
    }

    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    fn require(&self, m: MechanismType, name: &str) -> Result<()> {
        let list = self
            .ctx
            .get_mechanism_list(self.slot)
            .map_err(|e| ck("listing the mechanisms", e))?;
        if !list.contains(&m) {
            bail!("the token does not offer {name}, which this key type needs");
        }
        Ok(())
    }

    fn key_type(&self) -> Result<KeyType> {
        match self
            .session
            .get_attributes(self.key, &[AttributeType::KeyType])
            .map_err(|e| ck("reading the key type", e))?
            .as_slice()
        {
            [Attribute::KeyType(t)] => Ok(*t),
            _ => bail!("the token does not say the key's type"),
        }
    }

    /// The certificate stored on the token next to the key (same object label and id).
    fn certificate_on_token(&self) -> Result<Option<Vec<u8>>> {
        let Some(h) = find_one(&self.session, &self.uri, ObjectClass::CERTIFICATE)? else {
            return Ok(None);
        };
        match self
            .session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| ck("reading the certificate", e))?
            .as_slice()
        {
            [Attribute::Value(v)] => Ok(Some(v.clone())),
            _ => Ok(None),
        }
    }

    /// The key's protection as the token reports it: (extractable, sensitive, whether the
    /// private value itself can be read).
    pub fn protection(&self) -> Result<KeyProtection> {
        let attrs = self
            .session
            .get_attributes(
                self.key,
                &[AttributeType::Extractable, AttributeType::Sensitive],
            )
            .map_err(|e| ck("reading the key attributes", e))?;
        let mut p = KeyProtection::default();
        for a in attrs {
            match a {
                Attribute::Extractable(v) => p.extractable = v,
                Attribute::Sensitive(v) => p.sensitive = v,
                _ => {}
            }
        }
        let secret = self
            .session
            .get_attributes(
                self.key,
                &[AttributeType::PrivateExponent, AttributeType::Value],
            )
            .unwrap_or_default();
        p.private_value_readable = !secret.is_empty();
        Ok(p)
    }

    fn sign_raw(&self, mech: &Mechanism, data: &[u8]) -> Result<Vec<u8>> {
        self.session
            .sign(mech, self.key, data)
            .map_err(|e| ck("signing on the token", e))
    }
}

/// What [`TokenKey::protection`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyProtection {
    pub extractable: bool,
    pub sensitive: bool,
    pub private_value_readable: bool,
}

fn find_one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(l) = &uri.object {
        template.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| ck("searching the token", e))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => bail!(
            "{} objects of this class match; add id= to choose one",
            many.len()
        ),
    }
}

fn rsa_public_of(session: &Session, key: ObjectHandle) -> Result<rsa::PublicKey> {
    let attrs = session
        .get_attributes(
            key,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .map_err(|e| ck("reading the RSA public key", e))?;
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    let (Some(n), Some(e)) = (n, e) else {
        bail!("the token does not give the key's modulus and exponent");
    };
    let bits = (n.len() * 8) as u32;
    let n = rsa::BoxedUint::from_be_slice(&n, bits).map_err(|e| anyhow!("modulus: {e:?}"))?;
    let e = rsa::BoxedUint::from_be_slice(&e, 64).map_err(|e| anyhow!("exponent: {e:?}"))?;
    rsa::PublicKey::new(n, e).map_err(|e| anyhow!("the token's RSA key: {e}"))
}

/// An RSA key on a token signing Authenticode (UKIs), with its certificate.
pub struct Pkcs11Signer {
    key: TokenKey,
    cert_der: Vec<u8>,
}

impl Pkcs11Signer {
    /// Opens `uri_text`; the certificate comes from `cert` or, if `None`, from a certificate
    /// object on the token with the same label/id. Errors if it is not the key's.
    pub fn open(uri_text: &str, cert: Option<Vec<u8>>) -> Result<Pkcs11Signer> {
        let key = TokenKey::open(uri_text)?;
        let named = key.uri.to_string();
        let ctx = |e: anyhow::Error| e.context(format!("PKCS#11 key {named}"));
        let t = key.key_type().map_err(ctx)?;
        if t != KeyType::RSA {
            return Err(ctx(anyhow!(
                "the key is {t}, but UKIs are signed with RSA-2048 (Authenticode)"
            )));
        }
        key.require(MechanismType::RSA_PKCS, "CKM_RSA_PKCS")
            .map_err(ctx)?;
        let cert_der = match cert {
            Some(c) => c,
            None => key.certificate_on_token().map_err(ctx)?.ok_or_else(|| {
                ctx(anyhow!(
                    "no certificate given (--cert) and none stored on the token with this object/id"
                ))
            })?,
        };
        let token_pub = rsa_public_of(&key.session, key.key).map_err(ctx)?;
        let cert_pub = nekos_formats::keys::public_key_of_cert(&cert_der).map_err(ctx)?;
        if token_pub != cert_pub {
            return Err(ctx(anyhow!(
                "the key on the token and the certificate do not match (different public keys)"
            )));
        }
        Ok(Pkcs11Signer { key, cert_der })
    }

    pub fn token_key(&self) -> &TokenKey {
        &self.key
    }
}

impl Signer for Pkcs11Signer {
    fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    fn sign_sha256_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        self.key
            .sign_digest_info(digest)
            .with_context(|| format!("PKCS#11 key {}", self.key.uri))
    }
}

/// An Ed25519 key on a token signing OS packages (`CKM_EDDSA`).
pub struct Pkcs11Ed25519Signer {
    key: TokenKey,
    public: nekos_ospkg::VerifyingKey,
}

fn ed25519_point(v: &[u8]) -> Option<[u8; 32]> {
    // CKA_EC_POINT is the DER OCTET STRING of the 32-byte key (PKCS#11 3.0); some tokens
    // give the raw 32 bytes.
    match v {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
        raw if raw.len() == 32 => raw.try_into().ok(),
        _ => None,
    }
}

impl Pkcs11Ed25519Signer {
    pub fn open(uri_text: &str) -> Result<Pkcs11Ed25519Signer> {
        let key = TokenKey::open(uri_text)?;
        let named = key.uri.to_string();
        let ctx = |e: anyhow::Error| e.context(format!("PKCS#11 key {named}"));
        let t = key.key_type().map_err(ctx)?;
        if t != KeyType::EC_EDWARDS {
            return Err(ctx(anyhow!(
                "the key is {t}, but OS packages are signed with Ed25519 (CKK_EC_EDWARDS)"
            )));
        }
        key.require(MechanismType::EDDSA, "CKM_EDDSA")
            .map_err(ctx)?;
        let public_handle = find_one(&key.session, &key.uri, ObjectClass::PUBLIC_KEY)
            .map_err(ctx)?
            .ok_or_else(|| ctx(anyhow!("no public key object next to the private key")))?;
        let public = ed25519_public_of(&key.session, public_handle).map_err(ctx)?;
        Ok(Pkcs11Ed25519Signer { key, public })
    }
}

impl nekos_ospkg::Ed25519Signer for Pkcs11Ed25519Signer {
    fn verifying_key(&self) -> nekos_ospkg::VerifyingKey {
        self.public
    }

    fn sign_ed25519(&self, message: &[u8]) -> std::result::Result<[u8; 64], String> {
        let sig = self
            .key
            .sign_eddsa(message)
            .map_err(|e| format!("PKCS#11 key {}: {e:#}", self.key.uri))?;
        sig.try_into().map_err(|s: Vec<u8>| {
            format!(
                "PKCS#11 key {}: the token returned {} bytes, not a 64-byte Ed25519 signature",
                self.key.uri,
                s.len()
            )
        })
    }
}

/// What [`generate`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenKind {
    /// RSA-2048 for a Secure Boot role, certificate as the key-file hierarchy makes it.
    Rsa(nekos_formats::keys::Role),
    /// Ed25519 for OS packages: a self-signed stmgr-style root valid over the given range
    /// (seconds since the epoch); `serial` is random.
    Ed25519 {
        valid_from: i64,
        valid_until: i64,
        serial: [u8; 16],
    },
}

/// What [`generate`] returns: the certificate (DER for RSA roles, PEM for Ed25519, as the
/// key-file commands write them) and the key's protection as the token reports it.
pub struct Generated {
    pub certificate: Vec<u8>,
    pub protection: KeyProtection,
}

/// Generates a key pair on the token of `uri_text` (object label/id from the URI), non-
/// extractable and sensitive, makes its self-signed certificate with the token key, stores
/// the certificate on the token next to it (so signing needs no certificate file) and
/// returns it. Refuses when the token already has a private key with that label/id.
pub fn generate(uri_text: &str, kind: GenKind, common_name: &str) -> Result<Generated> {
    let uri = Pkcs11Uri::parse(uri_text)?;
    let named = uri.to_string();
    generate_inner(uri, kind, common_name).with_context(|| format!("PKCS#11 key {named}"))
}

fn generate_inner(uri: Pkcs11Uri, kind: GenKind, common_name: &str) -> Result<Generated> {
    if uri
        .object_type
        .is_some_and(|t| t != uri::ObjectType::Private)
    {
        bail!("type= must be private (or left out) to generate a key pair");
    }
    let (ctx, slot, session) = TokenKey::session(&uri, true)?;
    if find_one(&session, &uri, ObjectClass::PRIVATE_KEY)?.is_some() {
        bail!("the token already holds a private key with this object/id; refusing to add another");
    }
    let mut common = vec![Attribute::Token(true)];
    if let Some(l) = &uri.object {
        common.push(Attribute::Label(l.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        common.push(Attribute::Id(id.clone()));
    }
    let mut private = common.clone();
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ]);
    let mut public = common.clone();
    public.push(Attribute::Verify(true));
    let list = ctx
        .get_mechanism_list(slot)
        .map_err(|e| ck("listing the mechanisms", e))?;
    let (mech, needs) = match kind {
        GenKind::Rsa(_) => {
            public.extend([
                Attribute::ModulusBits((nekos_formats::keys::KEY_BITS as u64).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            ]);
            (
                Mechanism::RsaPkcsKeyPairGen,
                [
                    (
                        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
                        "CKM_RSA_PKCS_KEY_PAIR_GEN",
                    ),
                    (MechanismType::RSA_PKCS, "CKM_RSA_PKCS"),
                ],
            )
        }
        GenKind::Ed25519 { .. } => {
            public.push(Attribute::EcParams(ED25519_EC_PARAMS.to_vec()));
            (
                Mechanism::EccEdwardsKeyPairGen,
                [
                    (
                        MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
                        "CKM_EC_EDWARDS_KEY_PAIR_GEN",
                    ),
                    (MechanismType::EDDSA, "CKM_EDDSA"),
                ],
            )
        }
    };
    for (m, name) in needs {
        if !list.contains(&m) {
            bail!("the token does not offer {name}, which this key type needs");
        }
    }
    let (pub_h, priv_h) = session
        .generate_key_pair(&mech, &public, &private)
        .map_err(|e| ck("generating the key pair", e))?;
    let key = TokenKey {
        uri,
        session,
        slot,
        key: priv_h,
        ctx,
    };
    let (certificate, cert_der) = match kind {
        GenKind::Rsa(role) => {
            let pubkey = rsa_public_of(&key.session, key.key)?;
            let der = cert::self_signed_rsa(
                &key,
                pubkey,
                common_name,
                role == nekos_formats::keys::Role::Db,
            )?;
            (der.clone(), der)
        }
        GenKind::Ed25519 {
            valid_from,
            valid_until,
            serial,
        } => {
            let public = ed25519_public_of(&key.session, pub_h)?;
            let pem = cert::self_signed_ed25519(&key, public, serial, valid_from, valid_until)?;
            let der = nekos_formats::keys::parse_certificate(&pem)?;
            (pem, der)
        }
    };
    let mut cert_obj = common;
    cert_obj.extend([
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
        Attribute::Value(cert_der.clone()),
        Attribute::Subject(cert::subject_der(&cert_der)?),
    ]);
    key.session
        .create_object(&cert_obj)
        .map_err(|e| ck("storing the certificate on the token", e))?;
    let protection = key.protection()?;
    if protection.extractable || !protection.sensitive || protection.private_value_readable {
        bail!("the token made the key readable ({protection:?}); do not use it");
    }
    Ok(Generated {
        certificate,
        protection,
    })
}

fn ed25519_public_of(session: &Session, public: ObjectHandle) -> Result<nekos_ospkg::VerifyingKey> {
    let point = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(|e| ck("reading the public key", e))?;
    let bytes = match point.as_slice() {
        [Attribute::EcPoint(v)] => ed25519_point(v),
        _ => None,
    }
    .ok_or_else(|| anyhow!("the public key is not a 32-byte Ed25519 point"))?;
    nekos_ospkg::VerifyingKey::from_bytes(&bytes).map_err(|e| anyhow!("the public key: {e}"))
}

impl TokenKey {
    pub(crate) fn sign_digest_info(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        let mut info = SHA256_DIGEST_INFO.to_vec();
        info.extend_from_slice(digest);
        self.sign_raw(&Mechanism::RsaPkcs, &info)
    }

    pub(crate) fn sign_eddsa(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        self.sign_raw(&mech, message)
    }
}
