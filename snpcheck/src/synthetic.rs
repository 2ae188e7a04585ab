//! A synthetic SEV-SNP signer for tests: a fresh ECDSA P-384 ARK → ASK → VCEK chain (keys
//! from getrandom, held in memory only) and reports signed by that VCEK, so verification can
//! be tested end to end with `--trust-ark` and never AMD's roots.
//!
//! Nothing here is reachable from the snpcheck binary (the linker drops it); no key is
//! stored anywhere but in the returned value, which only ever writes certificates.

use crate::certs;
use crate::report::{REPORT_LEN, SIG_OFFSET, SIGNED_LEN, off};
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::der::asn1::{Any, BitString, ObjectIdentifier, OctetString, UtcTime};
use x509_cert::der::{Encode, EncodePem, pem::LineEnding};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

/// Values the VCEK certifies and the report carries.
#[derive(Debug, Clone)]
pub struct Platform {
    pub chip_id: [u8; 64],
    /// REPORTED_TCB, Milan/Genoa layout `[bl, tee, 0,0,0,0, snp, ucode]`.
    pub tcb: [u8; 8],
}

impl Default for Platform {
    fn default() -> Self {
        let mut chip_id = [0u8; 64];
        for (i, b) in chip_id.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(7).wrapping_add(1);
        }
        Platform {
            chip_id,
            tcb: [3, 0, 0, 0, 0, 0, 8, 115],
        }
    }
}

/// A synthetic chain. `Debug` is not derived: it would print the key.
pub struct Chain {
    pub ark: Certificate,
    pub ask: Certificate,
    pub vcek: Certificate,
    vcek_key: SigningKey,
    pub platform: Platform,
}

/// The fields of a report to build.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    pub measurement: [u8; 48],
    pub policy: u64,
    pub report_data: [u8; 64],
    pub host_data: [u8; 32],
    pub platform_info: u64,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            measurement: [0; 48],
            // QEMU's default: SMT allowed, reserved bit 17 set.
            policy: 0x30000,
            report_data: [0; 64],
            host_data: [0; 32],
            platform_info: 0,
        }
    }
}

fn oid(s: &str) -> Result<ObjectIdentifier, String> {
    ObjectIdentifier::new(s).map_err(|e| format!("OID {s}: {e}"))
}

fn fresh_key() -> Result<SigningKey, String> {
    // A random 48-byte string is a valid scalar except with negligible probability; retry.
    for _ in 0..8 {
        let mut b = [0u8; 48];
        getrandom::getrandom(&mut b).map_err(|e| format!("getrandom: {e}"))?;
        if let Ok(k) = SigningKey::from_slice(&b) {
            return Ok(k);
        }
    }
    Err("no valid P-384 scalar from getrandom".into())
}

fn spki(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, String> {
    let point = key.verifying_key().to_encoded_point(false);
    let curve = Any::encode_from(&oid("1.3.132.0.34")?).map_err(|e| e.to_string())?;
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid("1.2.840.10045.2.1")?,
            parameters: Some(curve),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes()).map_err(|e| e.to_string())?,
    })
}

fn ext(id: &str, value: Vec<u8>) -> Result<Extension, String> {
    Ok(Extension {
        extn_id: oid(id)?,
        critical: false,
        extn_value: OctetString::new(value).map_err(|e| e.to_string())?,
    })
}

fn der_u64(v: u64) -> Result<Vec<u8>, String> {
    v.to_der().map_err(|e| e.to_string())
}

fn cert(
    subject: &str,
    issuer: &str,
    serial: u8,
    key: &SigningKey,
    signer: &SigningKey,
    extensions: Vec<Extension>,
) -> Result<Certificate, String> {
    let alg = AlgorithmIdentifierOwned {
        oid: oid(crate::anchor::ECDSA_WITH_SHA384)?,
        parameters: None,
    };
    // Fixed dates: certificate validity is not checked, and fixed bytes are easier to debug.
    let t = |secs: u64| -> Result<Time, String> {
        UtcTime::from_unix_duration(Duration::from_secs(secs))
            .map(Time::UtcTime)
            .map_err(|e| e.to_string())
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[serial]).map_err(|e| e.to_string())?,
        signature: alg.clone(),
        issuer: Name::from_str(issuer).map_err(|e| e.to_string())?,
        validity: Validity {
            not_before: t(1_700_000_000)?,
            not_after: t(2_400_000_000)?,
        },
        subject: Name::from_str(subject).map_err(|e| e.to_string())?,
        subject_public_key_info: spki(key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: (!extensions.is_empty()).then_some(extensions),
    };
    let der = tbs.to_der().map_err(|e| e.to_string())?;
    let sig: Signature = signer.sign(&der);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(sig.to_der().as_bytes()).map_err(|e| e.to_string())?,
    })
}

impl Chain {
    /// A fresh chain (CNs as AMD names them, so roles are recognised: "ARK-Milan",
    /// "SEV-Milan", "SEV-VCEK"; the O says what it is).
    pub fn new(platform: Platform) -> Result<Self, String> {
        let (ark_key, ask_key, vcek_key) = (fresh_key()?, fresh_key()?, fresh_key()?);
        let org = "O=NekOS synthetic test chain NOT AMD";
        let ark_name = format!("CN=ARK-Milan,{org}");
        let ask_name = format!("CN=SEV-Milan,{org}");
        let ark = cert(&ark_name, &ark_name, 1, &ark_key, &ark_key, vec![])?;
        let ask = cert(&ask_name, &ark_name, 2, &ask_key, &ark_key, vec![])?;
        let tcb = platform.tcb;
        let product = x509_cert::der::asn1::Ia5StringRef::new("Milan-B0")
            .map_err(|e| e.to_string())?
            .to_der()
            .map_err(|e| e.to_string())?;
        let exts = vec![
            ext(certs::OID_PRODUCT_NAME, product)?,
            ext(certs::OID_BL_SPL, der_u64(u64::from(tcb[0]))?)?,
            ext(certs::OID_TEE_SPL, der_u64(u64::from(tcb[1]))?)?,
            ext(certs::OID_SNP_SPL, der_u64(u64::from(tcb[6]))?)?,
            ext(certs::OID_UCODE_SPL, der_u64(u64::from(tcb[7]))?)?,
            ext(
                certs::OID_HWID,
                OctetString::new(platform.chip_id.to_vec())
                    .and_then(|o| o.to_der())
                    .map_err(|e| e.to_string())?,
            )?,
        ];
        let vcek = cert(
            &format!("CN=SEV-VCEK,{org}"),
            &ask_name,
            3,
            &vcek_key,
            &ask_key,
            exts,
        )?;
        Ok(Chain {
            ark,
            ask,
            vcek,
            vcek_key,
            platform,
        })
    }

    /// PEM of a certificate.
    pub fn pem(c: &Certificate) -> Result<String, String> {
        c.to_pem(LineEnding::LF).map_err(|e| e.to_string())
    }

    /// A version-3 Milan report with `spec`'s fields, signed by this chain's VCEK.
    pub fn report(&self, spec: &ReportSpec) -> Result<Vec<u8>, String> {
        let mut r = vec![0u8; REPORT_LEN];
        fn put(r: &mut [u8], at: usize, b: &[u8]) {
            if let Some(d) = r.get_mut(at..at + b.len()) {
                d.copy_from_slice(b);
            }
        }
        put(&mut r, off::VERSION, &3u32.to_le_bytes());
        put(&mut r, off::POLICY, &spec.policy.to_le_bytes());
        put(&mut r, off::SIG_ALGO, &1u32.to_le_bytes());
        put(
            &mut r,
            off::PLATFORM_INFO,
            &spec.platform_info.to_le_bytes(),
        );
        // KEY_INFO 0: signed by the VCEK.
        put(&mut r, off::REPORT_DATA, &spec.report_data);
        put(&mut r, off::MEASUREMENT, &spec.measurement);
        put(&mut r, off::HOST_DATA, &spec.host_data);
        put(&mut r, off::CURRENT_TCB, &self.platform.tcb);
        put(&mut r, off::REPORTED_TCB, &self.platform.tcb);
        put(&mut r, off::COMMITTED_TCB, &self.platform.tcb);
        put(&mut r, off::LAUNCH_TCB, &self.platform.tcb);
        // Family 0x19 model 0x01: Milan.
        put(&mut r, off::CPUID_FAM, &[0x19, 0x01, 0x01]);
        put(&mut r, off::CHIP_ID, &self.platform.chip_id);
        let sig: Signature = self.vcek_key.sign(r.get(..SIGNED_LEN).unwrap_or(&[]));
        let (rb, sb) = (sig.r().to_bytes(), sig.s().to_bytes());
        // R and S little-endian in 72-byte fields.
        let le = |be: &[u8]| -> Vec<u8> {
            let mut v: Vec<u8> = be.iter().rev().copied().collect();
            v.resize(72, 0);
            v
        };
        put(&mut r, SIG_OFFSET, &le(&rb));
        put(&mut r, SIG_OFFSET + 72, &le(&sb));
        Ok(r)
    }
}
