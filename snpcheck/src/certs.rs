//! Certificates: loading (PEM/DER/cert table), classification, built-in AMD roots, and the
//! VCEK/VLEK X.509 extensions.

use crate::certtable::{self, CertKind};
use crate::report::Product;
use x509_cert::Certificate;
use x509_cert::der::asn1::{AnyRef, UintRef};
use x509_cert::der::{Decode, DecodePem, Encode, SliceReader, Tag, Tagged};

/// ASVK + ARK bundles (official AMD KDS `cert_chain` for VLEK), see snpcheck/README.md.
const MILAN_VLEK_BUNDLE: &[u8] = include_bytes!("../certs/ask_ark_milan_vlek.pem");
const GENOA_VLEK_BUNDLE: &[u8] = include_bytes!("../certs/ask_ark_genoa_vlek.pem");
const TURIN_VLEK_BUNDLE: &[u8] = include_bytes!("../certs/ask_ark_turin_vlek.pem");

/// Role of a certificate in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ark,
    Ask,
    Asvk,
    Vcek,
    Vlek,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Ark => "ARK",
            Role::Ask => "ASK",
            Role::Asvk => "ASVK",
            Role::Vcek => "VCEK",
            Role::Vlek => "VLEK",
        }
    }
}

/// Split PEM text into certificates.
///
/// Own splitter rather than x509-cert's `Certificate::load_pem_chain`, which can panic on odd
/// input: in x509-cert 0.2.5 (src/certificate.rs, `load_pem_chain`) the loop condition is
/// `position < input.len() - 1`, computed after trailing newlines are stripped, so empty or
/// newline-only input underflows (a panic wherever overflow checks are on, as in the test
/// builds). It also refuses text around the blocks (comments, `openssl x509 -text` output),
/// which this splitter skips. Each block is still decoded by `Certificate::from_pem`. The
/// test `der_values::own_pem_splitter_reason_still_holds` checks that both still apply.
pub fn parse_pem_all(text: &[u8]) -> Result<Vec<Certificate>, String> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(b) = find(rest, BEGIN) {
        let from_begin = rest.get(b..).unwrap_or(&[]);
        let Some(e) = find(from_begin, END) else {
            return Err("PEM certificate without END line".into());
        };
        let block = from_begin.get(..e + END.len()).unwrap_or(&[]);
        let cert =
            Certificate::from_pem(block).map_err(|e| format!("invalid PEM certificate: {e}"))?;
        out.push(cert);
        rest = from_begin.get(e + END.len()..).unwrap_or(&[]);
    }
    if out.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Load one or more certificates from PEM or DER bytes.
pub fn load(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    let trimmed: &[u8] = {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        bytes.get(start..).unwrap_or(&[])
    };
    if trimmed.starts_with(b"-----BEGIN") {
        parse_pem_all(trimmed)
    } else {
        Certificate::from_der(bytes)
            .map(|c| vec![c])
            .map_err(|e| format!("not a PEM or DER X.509 certificate: {e}"))
    }
}

/// Common name of the subject or issuer.
fn cn(name: &x509_cert::name::Name) -> Option<String> {
    const CN: &str = "2.5.4.3";
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid.to_string() == CN {
                return Some(String::from_utf8_lossy(atv.value.value()).into_owned());
            }
        }
    }
    None
}

pub fn subject_cn(c: &Certificate) -> String {
    cn(&c.tbs_certificate.subject).unwrap_or_default()
}

pub fn issuer_cn(c: &Certificate) -> String {
    cn(&c.tbs_certificate.issuer).unwrap_or_default()
}

/// Role from the subject CN as AMD issues them ("ARK-Milan", "SEV-Milan", "SEV-VLEK-Milan",
/// "SEV-VCEK", "SEV-VLEK").
pub fn role_from_cn(c: &Certificate) -> Option<Role> {
    let s = subject_cn(c);
    if s.starts_with("ARK-") {
        Some(Role::Ark)
    } else if s == "SEV-VCEK" {
        Some(Role::Vcek)
    } else if s == "SEV-VLEK" {
        Some(Role::Vlek)
    } else if s.starts_with("SEV-VLEK-") {
        Some(Role::Asvk)
    } else if s.starts_with("SEV-") {
        Some(Role::Ask)
    } else {
        None
    }
}

/// Product named by an AMD-issued certificate (issuer/subject CN suffix, or the productName
/// extension of a VCEK, e.g. "Milan-B0").
pub fn product_of(c: &Certificate) -> Option<Product> {
    let mut names = vec![subject_cn(c), issuer_cn(c)];
    if let Some(p) = extension(c, OID_PRODUCT_NAME).and_then(|v| der_string(&v)) {
        names.push(p);
    }
    for n in names {
        for p in Product::ALL {
            if n.contains(p.name()) {
                return Some(p);
            }
        }
    }
    None
}

/// A set of certificates gathered from files, a directory or a certificate table.
#[derive(Debug, Clone, Default)]
pub struct CertSet {
    pub ark: Option<Certificate>,
    pub ask: Option<Certificate>,
    pub asvk: Option<Certificate>,
    pub vcek: Option<Certificate>,
    pub vlek: Option<Certificate>,
    /// Where each came from (for the report).
    pub sources: Vec<String>,
}

impl CertSet {
    /// Add a certificate; its CN decides the role, `hint` is used when the CN says nothing.
    pub fn add(&mut self, c: Certificate, hint: Option<Role>, source: &str) -> Result<(), String> {
        let role = role_from_cn(&c).or(hint).ok_or_else(|| {
            format!(
                "{source}: cannot tell what certificate \"{}\" is",
                subject_cn(&c)
            )
        })?;
        let slot = match role {
            Role::Ark => &mut self.ark,
            Role::Ask => &mut self.ask,
            Role::Asvk => &mut self.asvk,
            Role::Vcek => &mut self.vcek,
            Role::Vlek => &mut self.vlek,
        };
        *slot = Some(c);
        self.sources.push(format!("{} from {source}", role.name()));
        Ok(())
    }

    /// Add every certificate of a certificate table.
    pub fn add_table(
        &mut self,
        entries: &[certtable::CertEntry],
        source: &str,
    ) -> Result<(), String> {
        for e in entries {
            let hint = match e.kind {
                CertKind::Ark => Some(Role::Ark),
                CertKind::Ask => Some(Role::Ask),
                CertKind::Vcek => Some(Role::Vcek),
                CertKind::Vlek => Some(Role::Vlek),
                CertKind::Other => continue,
            };
            if e.data.is_empty() {
                continue;
            }
            let certs =
                load(&e.data).map_err(|err| format!("{source}: {} entry: {err}", e.kind.name()))?;
            for c in certs {
                self.add(c, hint, &format!("{source} ({} entry)", e.kind.name()))?;
            }
        }
        Ok(())
    }

    /// Load from a file that is a certificate table, or one or more PEM/DER certificates.
    pub fn add_file(
        &mut self,
        bytes: &[u8],
        hint: Option<Role>,
        source: &str,
    ) -> Result<(), String> {
        if let Ok(entries) = certtable::parse(bytes)
            && entries.iter().any(|e| e.kind != CertKind::Other)
        {
            return self.add_table(&entries, source);
        }
        let certs = load(bytes).map_err(|e| format!("{source}: {e}"))?;
        for c in certs {
            self.add(c, hint, source)?;
        }
        Ok(())
    }
}

/// The built-in ARK and ASK (from the sev crate) for a product.
pub fn builtin_ark_ask(p: Product) -> Result<(Certificate, Certificate), String> {
    use sev::certs::snp::builtin;
    let (ark, ask) = match p {
        Product::Milan => (builtin::milan::ARK, builtin::milan::ASK),
        Product::Genoa => (builtin::genoa::ARK, builtin::genoa::ASK),
        Product::Turin => (builtin::turin::ARK, builtin::turin::ASK),
    };
    let ark = Certificate::from_pem(ark).map_err(|e| format!("built-in ARK: {e}"))?;
    let ask = Certificate::from_pem(ask).map_err(|e| format!("built-in ASK: {e}"))?;
    Ok((ark, ask))
}

/// The bundled ASVK (VLEK signing key) for a product.
pub fn builtin_asvk(p: Product) -> Result<Certificate, String> {
    let bundle = match p {
        Product::Milan => MILAN_VLEK_BUNDLE,
        Product::Genoa => GENOA_VLEK_BUNDLE,
        Product::Turin => TURIN_VLEK_BUNDLE,
    };
    parse_pem_all(bundle)?
        .into_iter()
        .find(|c| role_from_cn(c) == Some(Role::Asvk))
        .ok_or_else(|| "bundled ASVK missing".to_string())
}

/// The ARK inside the bundled VLEK chain (must equal the built-in ARK; checked in tests).
pub fn bundled_vlek_ark(p: Product) -> Result<Certificate, String> {
    let bundle = match p {
        Product::Milan => MILAN_VLEK_BUNDLE,
        Product::Genoa => GENOA_VLEK_BUNDLE,
        Product::Turin => TURIN_VLEK_BUNDLE,
    };
    parse_pem_all(bundle)?
        .into_iter()
        .find(|c| role_from_cn(c) == Some(Role::Ark))
        .ok_or_else(|| "bundled ARK missing".to_string())
}

/// DER encoding (for identity comparisons).
pub fn der_of(c: &Certificate) -> Vec<u8> {
    c.to_der().unwrap_or_default()
}

/// How a certificate is named in errors: its role and subject CN, e.g. `VCEK certificate
/// "SEV-VCEK"`.
pub fn describe(c: &Certificate) -> String {
    let role = role_from_cn(c).map_or("X.509", Role::name);
    format!("{role} certificate \"{}\"", subject_cn(c))
}

/// An AlgorithmIdentifier for an error message: the OID, then its parameters as DER hex.
fn describe_algorithm(a: &x509_cert::spki::AlgorithmIdentifierOwned) -> String {
    match &a.parameters {
        None => format!("{} without parameters", a.oid),
        Some(p) => format!(
            "{} with parameters {}",
            a.oid,
            crate::hex::encode(&p.to_der().unwrap_or_default())
        ),
    }
}

/// RFC 5280 §4.1.1.2: the outer `signatureAlgorithm` MUST be the same algorithm identifier as
/// the signed `tbsCertificate.signature`; a certificate where they differ is refused.
///
/// The outer field is not covered by the signature, so a mismatch forges nothing, but the
/// certificate is malformed and a verifier that reads one field while another reads the other
/// can be made to disagree. The sev crate reads only the outer OID (it must be RSASSA-PSS) and
/// then verifies PSS with SHA-384 whatever the parameters say, so a VCEK whose outer
/// parameters were dropped, set to NULL or changed (hash, salt length) still verified there.
/// Go's crypto/x509 refuses the same mismatch ("inner and outer signature algorithm
/// identifiers don't match").
///
/// Compared as DER: `der` decodes only DER (minimal lengths, definite form) and keeps the
/// parameters as their raw TLV, so re-encoding gives back exactly the bytes that were read.
pub fn check_signature_algorithm(c: &Certificate) -> Result<(), String> {
    let outer = &c.signature_algorithm;
    let inner = &c.tbs_certificate.signature;
    match (outer.to_der(), inner.to_der()) {
        (Ok(o), Ok(i)) if o == i => Ok(()),
        _ => Err(format!(
            "{} is malformed: its outer signatureAlgorithm {} differs from the signed \
             tbsCertificate.signature {} (RFC 5280 4.1.1.2 requires them to be identical)",
            describe(c),
            describe_algorithm(outer),
            describe_algorithm(inner)
        )),
    }
}

/// Does `signer` sign `signee` (RSA-PSS SHA-384, via the sev crate)? A `signee` whose outer
/// and signed algorithm identifiers differ is refused first ([`check_signature_algorithm`]).
pub fn signs(signer: &Certificate, signee: &Certificate) -> Result<(), String> {
    use sev::certs::snp::{Certificate as SevCert, Verifiable};
    check_signature_algorithm(signee)?;
    let a = SevCert::from(signer.clone());
    let b = SevCert::from(signee.clone());
    (&a, &b).verify().map_err(|e| e.to_string())
}

/// SEC1 public key of a certificate.
pub fn public_key(c: &Certificate) -> &[u8] {
    c.tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
}

pub const OID_PRODUCT_NAME: &str = "1.3.6.1.4.1.3704.1.2";
pub const OID_BL_SPL: &str = "1.3.6.1.4.1.3704.1.3.1";
pub const OID_TEE_SPL: &str = "1.3.6.1.4.1.3704.1.3.2";
pub const OID_SNP_SPL: &str = "1.3.6.1.4.1.3704.1.3.3";
pub const OID_UCODE_SPL: &str = "1.3.6.1.4.1.3704.1.3.8";
pub const OID_FMC_SPL: &str = "1.3.6.1.4.1.3704.1.3.9";
pub const OID_HWID: &str = "1.3.6.1.4.1.3704.1.4";

/// The raw value (contents of the extnValue OCTET STRING) of an extension.
pub fn extension(c: &Certificate, oid: &str) -> Option<Vec<u8>> {
    c.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id.to_string() == oid)
        .map(|e| e.extn_value.as_bytes().to_vec())
}

/// The first DER element of `b` (trailing bytes are ignored, as the extension values were
/// always read). The readers below decide as the former hand-written TLV reader did on every
/// input but one kind: a length in long form that could have been shorter, which DER forbids
/// and `der` refuses (tests/it/der_values.rs keeps the old reader as the oracle).
fn first_element(b: &[u8]) -> Option<AnyRef<'_>> {
    let mut reader = SliceReader::new(b).ok()?;
    AnyRef::decode(&mut reader).ok()
}

/// A DER INTEGER as u64 (SPL values).
///
/// The value bytes are checked here instead of with `u64::decode`, which would also refuse
/// superfluous leading zero bytes: these values have always been accepted (up to 9 content
/// bytes), and the SPL checks must decide exactly as before.
pub fn der_uint(b: &[u8]) -> Option<u64> {
    let any = first_element(b)?;
    let body = any.value();
    if any.tag() != Tag::Integer || body.is_empty() || body.len() > 9 {
        return None;
    }
    if body.first().is_some_and(|&x| x & 0x80 != 0) {
        return None; // negative
    }
    // Leading zeros stripped; more than 8 significant bytes do not fit.
    let magnitude = UintRef::new(body).ok()?;
    let bytes = magnitude.as_bytes();
    let mut be = [0u8; 8];
    be.get_mut(8usize.checked_sub(bytes.len())?..)?
        .copy_from_slice(bytes);
    Some(u64::from_be_bytes(be))
}

/// A DER string (IA5String, UTF8String, PrintableString), bytes taken as UTF-8 with
/// replacement: the result is only searched for product names, and a string whose bytes break
/// its type's alphabet is still read as it always was rather than dropped.
pub fn der_string(b: &[u8]) -> Option<String> {
    let any = first_element(b)?;
    matches!(
        any.tag(),
        Tag::Ia5String | Tag::Utf8String | Tag::PrintableString
    )
    .then(|| String::from_utf8_lossy(any.value()).into_owned())
}

/// hwID: raw bytes, or wrapped in an OCTET STRING.
pub fn hwid_bytes(v: &[u8]) -> Vec<u8> {
    if v.len() == 64 || v.len() == 8 {
        return v.to_vec();
    }
    match first_element(v) {
        Some(any) if any.tag() == Tag::OctetString => any.value().to_vec(),
        _ => v.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load_and_chain() {
        for p in Product::ALL {
            let (ark, ask) = builtin_ark_ask(p).unwrap();
            signs(&ark, &ark).unwrap();
            signs(&ark, &ask).unwrap();
            let asvk = builtin_asvk(p).unwrap();
            signs(&ark, &asvk).unwrap();
            assert_eq!(der_of(&bundled_vlek_ark(p).unwrap()), der_of(&ark));
            assert_eq!(product_of(&ask), Some(p));
            assert_eq!(role_from_cn(&ask), Some(Role::Ask));
            assert_eq!(role_from_cn(&ark), Some(Role::Ark));
        }
    }

    #[test]
    fn der_helpers() {
        assert_eq!(der_uint(&[2, 1, 5]), Some(5));
        assert_eq!(der_uint(&[2, 2, 0, 0xd5]), Some(0xd5));
        assert_eq!(der_uint(&[2, 1, 0x80]), None);
        assert_eq!(der_uint(&[2, 5, 0]), None);
        assert_eq!(der_string(&[0x16, 2, b'h', b'i']).as_deref(), Some("hi"));
        let mut w = vec![4u8, 64];
        w.extend([7u8; 64]);
        assert_eq!(hwid_bytes(&w), vec![7u8; 64]);
        assert!(load(b"").is_err());
        assert!(load(b"-----BEGIN CERTIFICATE-----\nAAAA\n").is_err());
    }
}
