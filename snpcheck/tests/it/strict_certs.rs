//! Issue #18: certificates whose outer `signatureAlgorithm` differs from the signed
//! `tbsCertificate.signature` are refused, and so are reports with non-zero reserved bytes after
//! the signature. The mutants are made from real fixtures by re-encoding only the outer field.
use crate::common::*;
use snpcheck::certs::{self, CertSet, Role};
use snpcheck::report::{REPORT_LEN, Report, SIG_RESERVED_OFFSET};
use snpcheck::verify::{self, Expect, Status};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Any, Decode, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;

const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
/// DER of the OID sha384 (2.16.840.1.101.3.4.2.2) and sha256 (…2.1).
const SHA384_OID_DER: [u8; 11] = [6, 9, 0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 2];
const SHA256_OID_DER: [u8; 11] = [6, 9, 0x60, 0x86, 0x48, 1, 0x65, 3, 4, 2, 1];

fn turin_vcek() -> Certificate {
    certs::load(&read("virtee-sev/vcek_turin.der"))
        .unwrap()
        .remove(0)
}

fn turin_ask() -> Certificate {
    certs::load(&read("virtee-sev/cert_chain_turin"))
        .unwrap()
        .into_iter()
        .find(|c| certs::role_from_cn(c) == Some(Role::Ask))
        .unwrap()
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = hay.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// The outer AlgorithmIdentifiers that differ from the signed one of `c` (RSASSA-PSS with
/// SHA-384, MGF1-SHA-384, salt 48 in every AMD certificate), by name. The first four keep the
/// RSASSA-PSS OID, which is all the sev crate looks at.
fn mutants(c: &Certificate) -> Vec<(&'static str, AlgorithmIdentifierOwned, bool)> {
    let signed = c.tbs_certificate.signature.clone();
    let params = signed.parameters.as_ref().unwrap().to_der().unwrap();
    let pss = ObjectIdentifier::new_unwrap(RSASSA_PSS);
    let with = |p: Vec<u8>| Some(Any::from_der(&p).unwrap());
    // The salt length: [2] { INTEGER 48 } (Milan certificates add an explicit trailerField).
    let salt48 = [0xA2, 3, 2, 1, 0x30];
    assert!(params.windows(5).any(|w| w == salt48));
    let salt32 = replace_all(&params, &salt48, &[0xA2, 3, 2, 1, 0x20]);
    vec![
        (
            "outer parameters removed",
            AlgorithmIdentifierOwned {
                oid: pss,
                parameters: None,
            },
            true,
        ),
        (
            "outer parameters NULL",
            AlgorithmIdentifierOwned {
                oid: pss,
                parameters: with(vec![5, 0]),
            },
            true,
        ),
        (
            "outer hash SHA-256",
            AlgorithmIdentifierOwned {
                oid: pss,
                parameters: with(replace_all(&params, &SHA384_OID_DER, &SHA256_OID_DER)),
            },
            true,
        ),
        (
            "outer salt length 32",
            AlgorithmIdentifierOwned {
                oid: pss,
                parameters: with(salt32),
            },
            true,
        ),
        (
            "outer OID sha384WithRSAEncryption",
            AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap(SHA384_WITH_RSA),
                parameters: with(vec![5, 0]),
            },
            false,
        ),
    ]
}

/// `c` with its outer signatureAlgorithm replaced, re-encoded and decoded again (as a file
/// holding it would be read).
fn with_outer(c: &Certificate, alg: AlgorithmIdentifierOwned) -> Certificate {
    let mut m = c.clone();
    m.signature_algorithm = alg;
    let der = m.to_der().unwrap();
    assert_ne!(der, c.to_der().unwrap());
    certs::load(&der).unwrap().remove(0)
}

/// What the chain check did before the rule: the sev crate's verification alone.
fn sev_verifies(signer: &Certificate, signee: &Certificate) -> bool {
    use sev::certs::snp::{Certificate as SevCert, Verifiable};
    let (a, b) = (SevCert::from(signer.clone()), SevCert::from(signee.clone()));
    (&a, &b).verify().is_ok()
}

#[test]
fn a_vcek_whose_outer_algorithm_differs_from_the_signed_one_is_refused() {
    let (ask, vcek) = (turin_ask(), turin_vcek());
    certs::signs(&ask, &vcek).unwrap();
    let ms = mutants(&vcek);
    for (attack, alg, sev_alone_accepts) in ms {
        let m = with_outer(&vcek, alg);
        // Nothing is forged: the signed bytes are unchanged. The four RSASSA-PSS mutants pass
        // the sev crate's own check, which is why the rule is needed.
        assert_eq!(sev_verifies(&ask, &m), sev_alone_accepts, "{attack}");
        let err = certs::signs(&ask, &m).unwrap_err();
        assert!(
            err.contains("VCEK certificate \"SEV-VCEK\" is malformed")
                && err.contains("outer signatureAlgorithm")
                && err.contains("tbsCertificate.signature"),
            "{attack}: {err}"
        );
        // Both OIDs are named (the outer one first).
        let outer_oid = m.signature_algorithm.oid.to_string();
        let at_outer = err.find(&outer_oid).unwrap();
        assert!(err[at_outer + 1..].contains(RSASSA_PSS), "{attack}: {err}");
        assert!(certs::check_signature_algorithm(&m).is_err(), "{attack}");
    }
}

#[test]
fn a_report_whose_vcek_has_a_mismatched_outer_algorithm_is_not_verified() {
    // Full pipeline with real Milan reports (there is no real Turin report in the fixtures):
    // the report signature itself still verifies with the mutant's key, the chain is refused.
    for (rep, vcek_path) in REAL {
        let r = Report::parse(&report_bytes(rep)).unwrap();
        let vcek = certs::load(&read(vcek_path)).unwrap().remove(0);
        for (attack, alg, _) in mutants(&vcek) {
            let mut s = CertSet::default();
            s.add(with_outer(&vcek, alg), Some(Role::Vcek), "mutant")
                .unwrap();
            let out = verify::verify(&r, &s, &Expect::default());
            assert!(!out.verified(), "{rep} {attack}");
            assert_eq!(out.status_of("report signature"), Some(Status::Pass));
            let chain = out
                .checks
                .iter()
                .find(|c| c.name == "endorsement key chain")
                .unwrap();
            assert_eq!(chain.status, Status::Fail, "{rep} {attack}");
            assert!(
                chain
                    .detail
                    .starts_with("VCEK certificate \"SEV-VCEK\" is malformed"),
                "{rep} {attack}: {}",
                chain.detail
            );
        }
    }
}

#[test]
fn an_ask_whose_outer_algorithm_differs_from_the_signed_one_is_refused() {
    let (rep, vcek) = REAL[0];
    let r = Report::parse(&report_bytes(rep)).unwrap();
    let (_, ask) = certs::builtin_ark_ask(snpcheck::report::Product::Milan).unwrap();
    for (attack, alg, _) in mutants(&ask) {
        let mut s = CertSet::default();
        s.add_file(&read(vcek), Some(Role::Vcek), "vcek").unwrap();
        s.add(with_outer(&ask, alg), Some(Role::Ask), "mutant ASK")
            .unwrap();
        let out = verify::verify(&r, &s, &Expect::default());
        assert!(!out.verified(), "{attack}");
        let c = out.checks.iter().find(|c| c.name == "ASK chain").unwrap();
        assert_eq!(c.status, Status::Fail, "{attack}");
        assert!(
            c.detail
                .starts_with("ASK certificate \"SEV-Milan\" is malformed"),
            "{attack}: {}",
            c.detail
        );
    }
}

#[test]
fn every_real_and_built_in_certificate_has_matching_algorithms() {
    let mut all = Vec::new();
    for p in snpcheck::report::Product::ALL {
        let (ark, ask) = certs::builtin_ark_ask(p).unwrap();
        all.extend([ark, ask, certs::builtin_asvk(p).unwrap()]);
    }
    for f in [
        "virtee-sev/vcek_turin.der",
        "virtee-sev/vcek_milan.der",
        "virtee-sev/cert_chain_turin",
        "virtee-sev/cert_chain_milan",
        "go-sev-guest/vcek.testcer",
        "go-sev-guest/ask_ark_genoa.pem",
        "ms-tav-milan/milan_vcek.pem",
        "ms-tav-milan/milan_ask.pem",
        "ms-tav-milan/milan_ark.pem",
    ] {
        all.extend(certs::load(&read(f)).unwrap());
    }
    for c in &all {
        certs::check_signature_algorithm(c).unwrap();
    }
    assert_eq!(all.len(), 9 + 2 + 2 * 2 + 1 + 2 + 3);
}

#[test]
fn a_report_with_non_zero_reserved_bytes_after_the_signature_is_refused() {
    for (rep, vcek) in REAL {
        let bytes = report_bytes(rep);
        let key = certs::public_key(&certs::load(&read(vcek)).unwrap().remove(0)).to_vec();
        // Real reports have zeros there and verify.
        let r = Report::parse(&bytes).unwrap();
        assert_eq!(r.signature_reserved_nonzero(), None, "{rep}");
        assert_eq!(r.signature_reserved().len(), 0x170);
        verify::verify_signature(&r, &key).unwrap();
        for at in [SIG_RESERVED_OFFSET, 0x400, REPORT_LEN - 1] {
            let mut b = bytes.clone();
            b[at] = 0x5A;
            // Still a report (shown as before), but it does not verify.
            let r = Report::parse(&b).unwrap();
            let err = verify::verify_signature(&r, &key).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "reserved byte 0x{at:03X} after the signature is 0x5a: bytes 0x330..0x4A0 \
                     must be zero (they are not signed)"
                ),
                "{rep}"
            );
            let mut s = CertSet::default();
            s.add_file(&read(vcek), Some(Role::Vcek), "vcek").unwrap();
            let out = verify::verify(&r, &s, &Expect::default());
            assert!(!out.verified(), "{rep} {at:#x}");
            assert_eq!(out.status_of("report signature"), Some(Status::Fail));
        }
    }
}
