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

pub use crate::asn1;
pub use crate::signer::Signer;

use crate::pe::{self, PeFile};
use anyhow::{Context, Result, anyhow, bail};
use asn1::{OCTET_STRING, SEQUENCE, alg_null, ctx, oid, seq, set_of, tlv, uint};
use der::{Decode, Encode};
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::sha2::{Digest, Sha256};
use x509_cert::Certificate;

pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
pub const OID_SPC_INDIRECT_DATA: &str = "1.3.6.1.4.1.311.2.1.4";
pub const OID_SPC_PE_IMAGE_DATA: &str = "1.3.6.1.4.1.311.2.1.15";
pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
pub const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
pub const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
pub const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

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

/// DER of the SpcIndirectDataContent for a PE image hash.
fn spc_indirect_data_content(image_hash: &[u8; 32]) -> Vec<u8> {
    // SpcPeImageData { flags BIT STRING {} , file [0] { [2] { [0] IMPLICIT BMPString } } }
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(|c| c.to_be_bytes())
        .collect();
    let link = ctx(0, &ctx(2, &tlv(0x80, &obsolete)));
    let pe_image_data = seq(&[&tlv(asn1::BIT_STRING, &[0]), &link]);
    let attr = seq(&[&oid(OID_SPC_PE_IMAGE_DATA), &pe_image_data]);
    let digest_info = seq(&[&alg_null(OID_SHA256), &tlv(OCTET_STRING, image_hash)]);
    seq(&[&attr, &digest_info])
}

/// Issuer Name and serial number (each as DER) of a certificate.
fn issuer_and_serial(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let cert =
        Certificate::from_der(cert_der).context("the signer's certificate is not X.509 DER")?;
    let tbs = cert.tbs_certificate();
    Ok((tbs.issuer().to_der()?, tbs.serial_number().to_der()?))
}

/// The DER PKCS#7 ContentInfo(SignedData) for an image hash, signed by `signer`.
pub fn signed_data(image_hash: &[u8; 32], signer: &dyn Signer) -> Result<Vec<u8>> {
    let cert = signer.certificate_der();
    let (issuer, serial) = issuer_and_serial(cert)?;
    let spc = spc_indirect_data_content(image_hash);
    let (spc_tlv, _) = asn1::read(&spc)?;
    let message_digest = sha256(&[spc_tlv.content]);

    let attrs = vec![
        seq(&[
            &oid(OID_CONTENT_TYPE),
            &set_of(vec![oid(OID_SPC_INDIRECT_DATA)]),
        ]),
        seq(&[
            &oid(OID_MESSAGE_DIGEST),
            &set_of(vec![tlv(OCTET_STRING, &message_digest)]),
        ]),
    ];
    // Signed over the attributes as a DER SET; stored [0] IMPLICIT.
    let attrs_set = set_of(attrs);
    let attrs_digest = sha256(&[&attrs_set]);
    let signature = signer.sign_sha256_digest(&attrs_digest)?;
    // Verify before emitting: a signer whose key does not match its certificate fails here.
    verify_rsa(cert, &attrs_digest, &signature)
        .context("the signature does not verify with the signer's certificate (key and certificate do not match?)")?;
    let (set_tlv, _) = asn1::read(&attrs_set)?;

    let signer_info = seq(&[
        &uint(&[1]),
        &seq(&[&issuer, &serial]),
        &alg_null(OID_SHA256),
        &ctx(0, set_tlv.content),
        &alg_null(OID_RSA_ENCRYPTION),
        &tlv(OCTET_STRING, &signature),
    ]);
    let signed = seq(&[
        &uint(&[1]),
        &set_of(vec![alg_null(OID_SHA256)]),
        &seq(&[&oid(OID_SPC_INDIRECT_DATA), &ctx(0, &spc)]),
        &ctx(0, cert),
        &set_of(vec![signer_info]),
    ]);
    Ok(seq(&[&oid(OID_SIGNED_DATA), &ctx(0, &signed)]))
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
pub fn verify(image: &[u8], trusted_cert_der: Option<&[u8]>) -> Result<VerifyReport> {
    let der = extract_signature(image)?.ok_or_else(|| anyhow!("image is not signed"))?;
    let (ci, _) = asn1::expect(&der, SEQUENCE)?;
    let parts = asn1::read_all(ci.content)?;
    let [oid_t, explicit] = parts.as_slice() else {
        bail!("ContentInfo: unexpected shape");
    };
    if oid_t.full != oid(OID_SIGNED_DATA).as_slice() {
        bail!("ContentInfo is not signedData");
    }
    let (sd, _) = asn1::expect(explicit.content, SEQUENCE)?;
    let fields = asn1::read_all(sd.content)?;
    let [_version, _digest_algs, encap, rest @ ..] = fields.as_slice() else {
        bail!("SignedData: unexpected shape");
    };
    let mut certs: Vec<&[u8]> = Vec::new();
    let mut signer_infos = None;
    for f in rest {
        match f.tag {
            0xa0 => {
                for c in asn1::read_all(f.content)? {
                    certs.push(c.full);
                }
            }
            0x31 => signer_infos = Some(f.content),
            _ => {}
        }
    }
    let encap_parts = asn1::read_all(encap.content)?;
    let [ctype, econtent] = encap_parts.as_slice() else {
        bail!("encapContentInfo: unexpected shape");
    };
    if ctype.full != oid(OID_SPC_INDIRECT_DATA).as_slice() {
        bail!("content is not SpcIndirectDataContent");
    }
    let (spc, _) = asn1::expect(econtent.content, SEQUENCE)?;
    let spc_parts = asn1::read_all(spc.content)?;
    let [_attr, digest_info] = spc_parts.as_slice() else {
        bail!("SpcIndirectDataContent: unexpected shape");
    };
    let di = asn1::read_all(digest_info.content)?;
    let [alg, digest] = di.as_slice() else {
        bail!("DigestInfo: unexpected shape");
    };
    let (alg_oid, _) = asn1::expect(alg.content, asn1::OID)?;
    if alg_oid.full != oid(OID_SHA256).as_slice() {
        bail!("only SHA-256 Authenticode is supported");
    }
    let signed_hash: [u8; 32] = digest
        .content
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

    let si_all = asn1::read_all(signer_infos.ok_or_else(|| anyhow!("no signerInfos"))?)?;
    let [si] = si_all.as_slice() else {
        bail!("expected exactly one SignerInfo");
    };
    let si_parts = asn1::read_all(si.content)?;
    let [_v, _ias, _dalg, attrs, _salg, sig] = si_parts.as_slice() else {
        bail!("SignerInfo: unexpected shape (expected signed attributes, no unsigned ones)");
    };
    if attrs.tag != 0xa0 || sig.tag != OCTET_STRING {
        bail!("SignerInfo: unexpected tags");
    }
    let mut md_ok = false;
    for a in asn1::read_all(attrs.content)? {
        let ap = asn1::read_all(a.content)?;
        if let [aoid, vals] = ap.as_slice()
            && aoid.full == oid(OID_MESSAGE_DIGEST).as_slice()
        {
            let (v, _) = asn1::expect(vals.content, OCTET_STRING)?;
            if v.content != sha256(&[spc.content]) {
                bail!("messageDigest does not match the SpcIndirectDataContent");
            }
            md_ok = true;
        }
    }
    if !md_ok {
        bail!("no messageDigest attribute");
    }
    let attrs_set = tlv(asn1::SET, attrs.content);
    let attrs_digest = sha256(&[&attrs_set]);
    let cert = match certs.as_slice() {
        [c] => *c,
        [] => bail!("no certificate in the signature"),
        _ => bail!("more than one certificate in the signature"),
    };
    verify_rsa(cert, &attrs_digest, sig.content)?;
    if let Some(trusted) = trusted_cert_der
        && trusted != cert
    {
        bail!("the image is signed by a different certificate");
    }
    Ok(VerifyReport {
        image_sha256: actual,
        signer_cert_der: cert.to_vec(),
    })
}
