//! Authenticode (PE image signing for UEFI Secure Boot), deterministic.
//!
//! The image hash follows the Authenticode PE specification (SHA-256): the headers without
//! CheckSum and the certificate-table directory entry, each section's raw data in order of
//! PointerToRawData, then any bytes after the last section up to the certificate table.
//!
//! The signature is a PKCS#7 SignedData (version 1) over an SpcIndirectDataContent with
//! exactly two signed attributes (contentType, messageDigest) — no signingTime — and an
//! RSA PKCS#1 v1.5 signature, so signing the same image with the same key twice gives the
//! same bytes. Verified by `sbverify --cert` and `osslsigncode verify -CAfile` in the tests.
//!
//! The structures are `der` derive types ([`ContentInfo`] down to [`SpcString`]) rather than
//! the RustCrypto `cms` crate's: Authenticode is PKCS#7 v1.5, whose signed content is the
//! SpcIndirectDataContent itself under `[0] EXPLICIT` (CMS wraps eContent in an OCTET
//! STRING), and the signer's certificate must go into the signature byte for byte as the
//! signer gave it ([`Any`]), not re-encoded.

pub use crate::signer::Signer;

use crate::pe::{self, PeFile};
use anyhow::{Context, Result, anyhow, bail};
use der::asn1::{Any, BitString, BmpString, Ia5String, ObjectIdentifier, OctetString, SetOfVec};
use der::{Choice, Decode, Encode, EncodeValue, Reader, Sequence, SliceReader, Tagged, ValueOrd};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;

pub const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub const OID_SPC_INDIRECT_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
pub const OID_SPC_PE_IMAGE_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub const OID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
pub const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub const OID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// ```text
/// ContentInfo ::= SEQUENCE {
///     contentType OBJECT IDENTIFIER,            -- signedData
///     content [0] EXPLICIT ANY DEFINED BY contentType }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ContentInfo {
    pub content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub content: SignedData,
}

/// PKCS#7 v1.5 SignedData as Authenticode uses it (no CRLs).
///
/// ```text
/// SignedData ::= SEQUENCE {
///     version INTEGER,                          -- 1
///     digestAlgorithms SET OF AlgorithmIdentifier,
///     contentInfo SpcContentInfo,
///     certificates [0] IMPLICIT SET OF Certificate OPTIONAL,
///     signerInfos SET OF SignerInfo }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SignedData {
    pub version: u8,
    pub digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    pub content_info: SpcContentInfo,
    /// Kept as their encodings: they are copied into and out of the signature unchanged.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<SetOfVec<Any>>,
    pub signer_infos: SetOfVec<SignerInfo>,
}

/// The signed content: a ContentInfo whose content is the SpcIndirectDataContent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcContentInfo {
    pub content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub content: SpcIndirectDataContent,
}

/// ```text
/// SpcIndirectDataContent ::= SEQUENCE {
///     data SpcAttributeTypeAndOptionalValue,
///     messageDigest DigestInfo }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcIndirectDataContent {
    pub data: SpcAttributeTypeAndOptionalValue,
    pub message_digest: DigestInfo,
}

/// `SpcAttributeTypeAndOptionalValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY OPTIONAL }`
/// — for PE images the type is SPC_PE_IMAGE_DATA and the value an [`SpcPeImageData`].
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcAttributeTypeAndOptionalValue {
    pub value_type: ObjectIdentifier,
    pub value: SpcPeImageData,
}

/// ```text
/// SpcPeImageData ::= SEQUENCE {
///     flags SpcPeImageFlags DEFAULT { includeResources },   -- a BIT STRING
///     file [0] EXPLICIT SpcLink OPTIONAL }
/// ```
/// The flags are always written (an empty BIT STRING, as signtool, sbsign and osslsigncode
/// write them), so they are a plain field here rather than a DEFAULT.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcPeImageData {
    pub flags: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub file: Option<SpcLink>,
}

/// ```text
/// SpcLink ::= CHOICE {
///     url [0] IMPLICIT IA5String,
///     moniker [1] IMPLICIT SpcSerializedObject,
///     file [2] EXPLICIT SpcString }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum SpcLink {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Url(Ia5String),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Moniker(SpcSerializedObject),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    File(SpcString),
}

/// `SpcSerializedObject ::= SEQUENCE { classId OCTET STRING, serializedData OCTET STRING }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SpcSerializedObject {
    pub class_id: OctetString,
    pub serialized_data: OctetString,
}

/// `SpcString ::= CHOICE { unicode [0] IMPLICIT BMPString, ascii [1] IMPLICIT IA5String }`
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum SpcString {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Unicode(BmpString),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT")]
    Ascii(Ia5String),
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct DigestInfo {
    pub digest_algorithm: AlgorithmIdentifierOwned,
    pub digest: OctetString,
}

/// ```text
/// SignerInfo ::= SEQUENCE {
///     version INTEGER,                          -- 1
///     issuerAndSerialNumber IssuerAndSerialNumber,
///     digestAlgorithm AlgorithmIdentifier,
///     authenticatedAttributes [0] IMPLICIT SET OF Attribute OPTIONAL,
///     digestEncryptionAlgorithm AlgorithmIdentifier,
///     encryptedDigest OCTET STRING,
///     unauthenticatedAttributes [1] IMPLICIT SET OF Attribute OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub struct SignerInfo {
    pub version: u8,
    pub issuer_and_serial_number: IssuerAndSerialNumber,
    pub digest_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub signed_attrs: Option<Attributes>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: OctetString,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub unsigned_attrs: Option<Attributes>,
}

/// `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
pub struct IssuerAndSerialNumber {
    pub issuer: Name,
    pub serial_number: SerialNumber,
}

/// WIN_CERTIFICATE revision 2.0 and type PKCS_SIGNED_DATA.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The Authenticode SHA-256 of a PE image (signed or not: an existing certificate table is
/// excluded, as the specification says).
pub fn authenticode_sha256(data: &[u8]) -> Result<[u8; 32]> {
    let pe = PeFile::parse(data)?;
    let checksum = pe.checksum_offset();
    let sec_entry = pe
        .data_dir_entry_offset(pe::DIR_SECURITY)
        .ok_or_else(|| anyhow!("PE image has no certificate table directory entry"))?;
    let size_of_headers = pe.size_of_headers as usize;
    if !(checksum + 4 <= sec_entry && sec_entry + 8 <= size_of_headers) {
        bail!("PE headers are inconsistent (SizeOfHeaders {size_of_headers:#x})");
    }
    let mut h = Sha256::new();
    h.update(pe::slice(data, 0, checksum)?);
    h.update(pe::slice(data, checksum + 4, sec_entry - (checksum + 4))?);
    h.update(pe::slice(
        data,
        sec_entry + 8,
        size_of_headers - (sec_entry + 8),
    )?);
    let cert_start = match pe.certificate_table(data)? {
        Some((off, _)) => off,
        None => data.len(),
    };
    let mut sections: Vec<&pe::Section> = pe
        .sections
        .iter()
        .filter(|s| s.size_of_raw_data != 0)
        .collect();
    sections.sort_by_key(|s| s.pointer_to_raw_data);
    let mut hashed_end = size_of_headers;
    for s in sections {
        let raw = pe::slice(
            data,
            s.pointer_to_raw_data as usize,
            s.size_of_raw_data as usize,
        )
        .with_context(|| format!("section {} lies outside the file", s.name_str()))?;
        h.update(raw);
        hashed_end = hashed_end.max(s.pointer_to_raw_data as usize + raw.len());
    }
    if cert_start > hashed_end {
        h.update(&data[hashed_end..cert_start]);
    }
    Ok(h.finalize().into())
}

/// AlgorithmIdentifier with NULL parameters (how PKCS#7 writes SHA-256 and RSA).
fn alg_null(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::null()),
    }
}

/// Whether `alg` is `oid` with NULL or absent parameters (both are valid for SHA-256 and RSA).
fn is_alg(alg: &AlgorithmIdentifierOwned, oid: ObjectIdentifier) -> bool {
    alg.oid == oid && alg.parameters.as_ref().is_none_or(|p| *p == Any::null())
}

/// The SpcIndirectDataContent for a PE image hash, with the customary
/// `file: <<<Obsolete>>>` link.
fn spc_indirect_data_content(image_hash: &[u8; 32]) -> Result<SpcIndirectDataContent> {
    Ok(SpcIndirectDataContent {
        data: SpcAttributeTypeAndOptionalValue {
            value_type: OID_SPC_PE_IMAGE_DATA,
            value: SpcPeImageData {
                flags: BitString::new(0, [])?,
                file: Some(SpcLink::File(SpcString::Unicode(BmpString::from_utf8(
                    "<<<Obsolete>>>",
                )?))),
            },
        },
        message_digest: DigestInfo {
            digest_algorithm: alg_null(OID_SHA256),
            digest: OctetString::new(image_hash.as_slice())?,
        },
    })
}

/// messageDigest: SHA-256 of the SpcIndirectDataContent's contents octets (its DER without
/// the SEQUENCE tag and length), as PKCS#7 v1.5 specifies for non-Data content.
fn spc_message_digest(spc: &SpcIndirectDataContent) -> Result<[u8; 32]> {
    let der = spc.to_der()?;
    Ok(sha256(&[Any::from_der(&der)?.value()]))
}

/// An attribute with one value.
fn attribute(oid: ObjectIdentifier, value: &(impl EncodeValue + Tagged)) -> Result<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::encode_from(value)?])?,
    })
}

/// The value of the one attribute `oid` in `attrs`, which must have exactly one value.
fn single_value(attrs: &Attributes, oid: ObjectIdentifier) -> Result<&Any> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let (Some(attr), None) = (found.next(), found.next()) else {
        bail!("expected exactly one {oid} attribute");
    };
    match attr.values.as_slice() {
        [value] => Ok(value),
        _ => bail!("attribute {oid}: expected exactly one value"),
    }
}

/// The DER PKCS#7 ContentInfo(SignedData) for an image hash, signed by `signer`.
pub fn signed_data(image_hash: &[u8; 32], signer: &dyn Signer) -> Result<Vec<u8>> {
    let cert_der = signer.certificate_der();
    let cert = crate::keys::decode_certificate(cert_der).context("the signer's certificate")?;
    let spc = spc_indirect_data_content(image_hash)?;
    let signed_attrs = Attributes::try_from(vec![
        attribute(OID_CONTENT_TYPE, &OID_SPC_INDIRECT_DATA)?,
        attribute(
            OID_MESSAGE_DIGEST,
            &OctetString::new(spc_message_digest(&spc)?.as_slice())?,
        )?,
    ])?;
    // Signed over the attributes as a DER SET; stored [0] IMPLICIT.
    let attrs_digest = sha256(&[&signed_attrs.to_der()?]);
    let signature = signer.sign_sha256_digest(&attrs_digest)?;
    // Verify before emitting: a signer whose key does not match its certificate fails here.
    verify_rsa(cert_der, &attrs_digest, &signature)
        .context("the signature does not verify with the signer's certificate (key and certificate do not match?)")?;

    let tbs = cert.tbs_certificate();
    let signer_info = SignerInfo {
        version: 1,
        issuer_and_serial_number: IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        },
        digest_algorithm: alg_null(OID_SHA256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: alg_null(OID_RSA_ENCRYPTION),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let content_info = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: SignedData {
            version: 1,
            digest_algorithms: SetOfVec::try_from(vec![alg_null(OID_SHA256)])?,
            content_info: SpcContentInfo {
                content_type: OID_SPC_INDIRECT_DATA,
                content: spc,
            },
            certificates: Some(SetOfVec::try_from(vec![Any::from_der(cert_der)?])?),
            signer_infos: SetOfVec::try_from(vec![signer_info])?,
        },
    };
    Ok(content_info.to_der()?)
}

fn verify_rsa(cert_der: &[u8], digest: &[u8; 32], signature: &[u8]) -> Result<()> {
    let key = crate::keys::public_key_of_cert(cert_der)?;
    key.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature)
        .map_err(|e| anyhow!("RSA signature verification failed: {e}"))
}

/// Signs a PE image: appends a WIN_CERTIFICATE with the SignedData and points the
/// certificate table at it. Refuses images that already carry a signature. The output is
/// verified before it is returned.
pub fn sign(image: &[u8], signer: &dyn Signer) -> Result<Vec<u8>> {
    let pe = PeFile::parse(image).context("input to sign is not a PE image")?;
    if pe.is_signed(image)? {
        bail!("input is already signed (it has a certificate table); sign the unsigned image");
    }
    let sec_entry = pe
        .data_dir_entry_offset(pe::DIR_SECURITY)
        .ok_or_else(|| anyhow!("PE image has no certificate table directory entry"))?;
    let mut out = image.to_vec();
    // The certificate table starts 8-aligned; the padding is hashed as trailing data.
    out.resize(pe::round_up(out.len() as u64, 8) as usize, 0);
    let hash = authenticode_sha256(&out)?;
    let der = signed_data(&hash, signer)?;
    let length = 8 + der.len();
    let padded = pe::round_up(length as u64, 8) as usize;
    let table_offset = out.len();
    let dw_length = u32::try_from(length).context("signature too large")?;
    out.extend_from_slice(&dw_length.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
    out.extend_from_slice(&der);
    out.resize(table_offset + padded, 0);
    pe::write_u32(
        &mut out,
        sec_entry,
        u32::try_from(table_offset).context("image too large to sign")?,
    )?;
    pe::write_u32(&mut out, sec_entry + 4, padded as u32)?;
    // Like osslsigncode (and unlike ukify's unsigned output, which keeps 0), store a valid
    // PE checksum; it is excluded from the Authenticode hash.
    let checksum = pe_checksum(&out, pe.checksum_offset());
    pe::write_u32(&mut out, pe.checksum_offset(), checksum)?;
    let report =
        verify(&out, Some(signer.certificate_der())).context("self-check of the signed image")?;
    if report.image_sha256 != hash {
        bail!("self-check: signed image hash changed");
    }
    Ok(out)
}

/// The PE image checksum (16-bit one's-complement-style sum of the file with the CheckSum
/// field taken as zero, plus the file length).
pub fn pe_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in data.chunks(2).enumerate() {
        let off = i * 2;
        if off >= checksum_offset && off < checksum_offset + 4 {
            continue;
        }
        let w = match chunk {
            [a, b] => u16::from_le_bytes([*a, *b]),
            [a] => u16::from(*a),
            _ => 0,
        };
        sum += u64::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

/// What [`verify`] found in a signed image.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub image_sha256: [u8; 32],
    pub signer_cert_der: Vec<u8>,
}

/// The DER SignedData of a signed image (first WIN_CERTIFICATE).
pub fn extract_signature(image: &[u8]) -> Result<Option<Vec<u8>>> {
    let pe = PeFile::parse(image)?;
    let Some((off, size)) = pe.certificate_table(image)? else {
        return Ok(None);
    };
    let table = pe::slice(image, off, size)?;
    let length = pe::read_u32(table, 0)? as usize;
    let rev = pe::read_u16(table, 4)?;
    let typ = pe::read_u16(table, 6)?;
    if rev != WIN_CERT_REVISION_2_0 || typ != WIN_CERT_TYPE_PKCS_SIGNED_DATA || length < 8 {
        bail!("unsupported WIN_CERTIFICATE (revision {rev:#x}, type {typ:#x})");
    }
    Ok(Some(pe::slice(table, 8, length - 8)?.to_vec()))
}

/// Verifies the Authenticode signature of `image`: the signed image hash equals the
/// recomputed one, messageDigest matches, and the RSA signature verifies with the embedded
/// certificate — and that certificate is `trusted_cert_der`, when given.
///
/// The SignedData must be DER (re-encoding it must give the same bytes), so the signed
/// attributes and the SpcIndirectDataContent that are hashed are exactly those on the wire.
pub fn verify(image: &[u8], trusted_cert_der: Option<&[u8]>) -> Result<VerifyReport> {
    let der = extract_signature(image)?.ok_or_else(|| anyhow!("image is not signed"))?;
    // The WIN_CERTIFICATE may hold padding after the ContentInfo.
    let mut reader = SliceReader::new(&der)?;
    let ci = ContentInfo::decode(&mut reader).context("not an Authenticode SignedData")?;
    let consumed = usize::try_from(reader.position())?;
    if der.get(..consumed) != Some(ci.to_der()?.as_slice()) {
        bail!("the SignedData is not DER");
    }
    if ci.content_type != OID_SIGNED_DATA {
        bail!("ContentInfo is not signedData");
    }
    let sd = &ci.content;
    if sd.version != 1 {
        bail!("SignedData version {} (Authenticode uses 1)", sd.version);
    }
    if !sd.digest_algorithms.iter().any(|a| is_alg(a, OID_SHA256)) {
        bail!("SignedData: SHA-256 is not among the digest algorithms");
    }
    if sd.content_info.content_type != OID_SPC_INDIRECT_DATA {
        bail!("content is not SpcIndirectDataContent");
    }
    let spc = &sd.content_info.content;
    if !is_alg(&spc.message_digest.digest_algorithm, OID_SHA256) {
        bail!("only SHA-256 Authenticode is supported");
    }
    let signed_hash: [u8; 32] = spc
        .message_digest
        .digest
        .as_bytes()
        .try_into()
        .map_err(|_| anyhow!("image digest is not 32 bytes"))?;
    let actual = authenticode_sha256(image)?;
    if actual != signed_hash {
        bail!(
            "image hash mismatch: signed {}, actual {}",
            hex::encode(signed_hash),
            hex::encode(actual)
        );
    }

    let [si] = sd.signer_infos.as_slice() else {
        bail!("expected exactly one SignerInfo");
    };
    if si.version != 1 {
        bail!("SignerInfo version {} (Authenticode uses 1)", si.version);
    }
    if si.unsigned_attrs.is_some() {
        bail!("SignerInfo: unexpected unsigned attributes");
    }
    if !is_alg(&si.digest_algorithm, OID_SHA256) {
        bail!("SignerInfo: the digest algorithm is not SHA-256");
    }
    if !is_alg(&si.signature_algorithm, OID_RSA_ENCRYPTION)
        && !is_alg(&si.signature_algorithm, OID_SHA256_WITH_RSA)
    {
        bail!("SignerInfo: the signature algorithm is not RSA");
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| anyhow!("SignerInfo: no signed attributes"))?;
    let content_type: ObjectIdentifier = single_value(attrs, OID_CONTENT_TYPE)?
        .decode_as()
        .context("contentType is not an OBJECT IDENTIFIER")?;
    if content_type != OID_SPC_INDIRECT_DATA {
        bail!("the signed contentType is not SpcIndirectDataContent");
    }
    let message_digest: OctetString = single_value(attrs, OID_MESSAGE_DIGEST)?
        .decode_as()
        .context("messageDigest is not an OCTET STRING")?;
    if message_digest.as_bytes() != spc_message_digest(spc)? {
        bail!("messageDigest does not match the SpcIndirectDataContent");
    }
    let attrs_digest = sha256(&[&attrs.to_der()?]);
    let cert = match sd.certificates.as_ref().map(SetOfVec::as_slice) {
        Some([c]) => c.to_der()?,
        None | Some([]) => bail!("no certificate in the signature"),
        Some(_) => bail!("more than one certificate in the signature"),
    };
    let parsed =
        crate::keys::decode_certificate(&cert).context("the embedded signer certificate")?;
    let tbs = parsed.tbs_certificate();
    let sid = &si.issuer_and_serial_number;
    if &sid.issuer != tbs.issuer() || &sid.serial_number != tbs.serial_number() {
        bail!("the SignerInfo does not name the embedded certificate (issuer and serial number)");
    }
    verify_rsa(&cert, &attrs_digest, si.signature.as_bytes())?;
    if let Some(trusted) = trusted_cert_der
        && trusted != cert.as_slice()
    {
        bail!("the image is signed by a different certificate");
    }
    Ok(VerifyReport {
        image_sha256: actual,
        signer_cert_der: cert,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::keys::{KeySigner, Role, generate_hierarchy};

    fn signed_sample() -> (Vec<u8>, KeySigner) {
        let h = generate_hierarchy(Some(b"nekos-formats pin")).unwrap();
        let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
        let image = pe::synthetic_efi_image(5000, true, Some("sbat,1,x\n"));
        (sign(&image, &signer).unwrap(), signer)
    }

    /// The signature bytes are pinned (they were made by the hand-written DER writer this
    /// module had before the `der` types; sbsign and osslsigncode accept them).
    #[test]
    fn signed_image_is_pinned() {
        let (signed, _) = signed_sample();
        assert_eq!(
            hex::encode(sha256(&[&signed])),
            "4fc1b1c800d9c5ce4049a38575f17295f05bd16dc2b48730e5da5c8d435f6f26"
        );
    }

    /// No single-byte change of the SignedData passes with the trusted certificate; without
    /// one, only changes inside the embedded certificate (other than its key) can pass —
    /// that certificate is what the caller must decide to trust.
    #[test]
    fn verify_rejects_single_byte_changes() {
        let (signed, signer) = signed_sample();
        let sig = extract_signature(&signed).unwrap().unwrap();
        let start = signed.len() - pe::round_up(8 + sig.len() as u64, 8) as usize + 8;
        let cert = signer.certificate_der();
        let cert_at = sig.windows(cert.len()).position(|w| w == cert).unwrap();
        for i in 0..sig.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut bad = signed.clone();
                bad[start + i] ^= x;
                assert!(
                    verify(&bad, Some(cert)).is_err(),
                    "byte {i} ^ {x:#04x} accepted"
                );
                if verify(&bad, None).is_ok() {
                    assert!(
                        (cert_at..cert_at + cert.len()).contains(&i),
                        "byte {i} ^ {x:#04x} accepted without a trusted certificate"
                    );
                }
            }
        }
    }

    #[test]
    fn an_image_whose_signer_certificate_has_a_mismatched_outer_algorithm_is_refused() {
        use crate::keys::tests::{OUTER_MUTANTS, with_outer_algorithm};
        let (signed, signer) = signed_sample();
        let cert = signer.certificate_der();
        let at = signed.windows(cert.len()).position(|w| w == cert).unwrap();
        // sha384WithRSAEncryption has the same length, so it can be patched in place.
        let (attack, alg, named) = OUTER_MUTANTS[1];
        let m = with_outer_algorithm(cert, alg);
        assert_eq!(m.len(), cert.len(), "{attack}");
        let mut bad = signed.clone();
        bad[at..at + m.len()].copy_from_slice(&m);
        for trusted in [None, Some(cert)] {
            let e = format!("{:#}", verify(&bad, trusted).unwrap_err());
            assert!(
                e.starts_with("the embedded signer certificate: certificate \"CN=")
                    && e.contains(&format!("outer signatureAlgorithm {named} differs")),
                "{e}"
            );
        }
        // Signing with such a certificate is refused before anything is signed.
        let h = generate_hierarchy(Some(b"nekos-formats pin")).unwrap();
        let e = KeySigner::new(h.get(Role::Db).unwrap().key.clone(), m)
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("is malformed"), "{e:#}");
    }

    #[test]
    fn verify_reports_signer() {
        let (signed, signer) = signed_sample();
        let r = verify(&signed, Some(signer.certificate_der())).unwrap();
        assert_eq!(r.signer_cert_der, signer.certificate_der());
        let unsigned = pe::synthetic_efi_image(5000, true, Some("sbat,1,x\n"));
        assert_eq!(r.image_sha256, authenticode_sha256(&unsigned).unwrap());
    }
}
