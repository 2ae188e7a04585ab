//! Issue #18: a certificate whose outer `signatureAlgorithm` differs from the signed
//! `tbsCertificate.signature` is refused (RFC 5280 §4.1.1.2), as stboot's Go parser does.
//! The mutants re-encode only the outer SEQUENCE of real generated certificates.

use crate::common::*;
use der::{Decode, Reader, SliceReader};
use ed25519_dalek::Signature;
use nekos_ospkg::*;

/// The AlgorithmIdentifier every generated certificate has: Ed25519 without parameters.
const ED25519: &[u8] = &[0x30, 5, 6, 3, 0x2B, 0x65, 0x70];

/// (attack, outer AlgorithmIdentifier DER, what the error names as the outer algorithm).
const MUTANTS: [(&str, &[u8], &str); 3] = [
    (
        "outer Ed25519 with NULL parameters",
        &[0x30, 7, 6, 3, 0x2B, 0x65, 0x70, 5, 0],
        "1.3.101.112 with parameters 0500",
    ),
    (
        "outer Ed448",
        &[0x30, 5, 6, 3, 0x2B, 0x65, 0x71],
        "1.3.101.113 without parameters",
    ),
    (
        "outer ecdsa-with-SHA256",
        &[0x30, 10, 6, 8, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 4, 3, 2],
        "1.2.840.10045.4.3.2 without parameters",
    ),
];

/// A TLV with a minimal DER length.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend([0x81, n as u8]);
    } else {
        v.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(body);
    v
}

/// tbsCertificate, signatureAlgorithm and signature of a DER certificate, as raw TLVs.
fn parts(cert_der: &[u8]) -> [Vec<u8>; 3] {
    let outer = der::asn1::AnyRef::from_der(cert_der).unwrap();
    let mut r = SliceReader::new(outer.value()).unwrap();
    let mut next = || r.tlv_bytes().unwrap().to_vec();
    [next(), next(), next()]
}

/// The certificate PEM with its outer signatureAlgorithm replaced by `alg`.
fn with_outer(cert_pem: &[u8], alg: &[u8]) -> Vec<u8> {
    let der = pem_decode_all(cert_pem).remove(0).der;
    let [tbs, old, sig] = parts(&der);
    assert_eq!(old, ED25519);
    let body = [tbs, alg.to_vec(), sig].concat();
    pem_encode("CERTIFICATE", &tlv(0x30, &body))
}

fn malformed_message(outer: &str) -> String {
    format!(
        "is malformed: its outer signatureAlgorithm {outer} differs from the signed \
         tbsCertificate.signature 1.3.101.112 without parameters"
    )
}

#[test]
fn a_signing_certificate_whose_outer_algorithm_differs_from_the_signed_one_is_refused() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let (_, sig) = sign(&zip, &k, &c).unwrap();
    for (attack, alg, named) in MUTANTS {
        let m = with_outer(&c, alg);
        // Nothing is forged: the root's signature over the unchanged tbsCertificate holds.
        let [tbs, _, bits] = parts(&pem_decode_all(&m).remove(0).der);
        let sig_bytes: [u8; 64] = bits[3..].try_into().unwrap();
        pki.root_key
            .verifying_key()
            .verify_strict(&tbs, &Signature::from_bytes(&sig_bytes))
            .unwrap();
        let mut d = Descriptor::new("");
        d.certificates.push(m.clone());
        d.signatures.push(sig);
        let e = verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err();
        let VerifyError::BelowThreshold { failures, .. } = e else {
            panic!("{attack}: {e}");
        };
        let reason = &failures[0].reason;
        assert!(
            reason.starts_with("certificate sha256 ") && reason.contains(&malformed_message(named)),
            "{attack}: {reason}"
        );
        // Signing with such a certificate is refused too.
        match sign(&zip, &k, &m) {
            Err(SignError::Certificate(e)) => {
                assert!(e.contains(&malformed_message(named)), "{attack}: {e}")
            }
            other => panic!("{attack}: {other:?}"),
        }
    }
    // The unmodified certificate still counts.
    let mut d = Descriptor::new("");
    d.certificates.push(c);
    d.signatures.push(sig);
    assert_eq!(
        verify(&d, &zip, &pki.root_pem, 1, Y2030)
            .unwrap()
            .valid_signatures,
        1
    );
}

#[test]
fn a_signing_root_whose_outer_algorithm_differs_from_the_signed_one_is_refused() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let d = Descriptor::new("");
    let mut d2 = d.clone();
    sign_descriptor(&mut d2, &zip, &k, &c).unwrap();
    for (attack, alg, named) in MUTANTS {
        let bad_root = with_outer(&pki.root_pem, alg);
        match verify(&d2, &zip, &bad_root, 1, Y2030) {
            Err(VerifyError::Roots(e)) => assert!(
                e.starts_with("block 1: certificate sha256 ")
                    && e.contains(&malformed_message(named)),
                "{attack}: {e}"
            ),
            other => panic!("{attack}: {other:?}"),
        }
    }
}

/// The same mutants, read by Go's crypto/x509 (what stboot uses): refused when parsing.
const GO_PARSE: &str = r#"package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

func main() {
	for _, f := range os.Args[1:] {
		b, _ := os.ReadFile(f)
		blk, _ := pem.Decode(b)
		_, err := x509.ParseCertificate(blk.Bytes)
		fmt.Printf("%s: %v\n", f, err)
	}
}
"#;

#[test]
fn go_refuses_the_same_certificates() {
    if !have_go() {
        return;
    }
    let pki = root(1, Y2020, Y2040);
    let (_, c) = leaf(&pki, 2, Y2020, Y2040);
    let dir = std::env::temp_dir().join(format!("ospkg-strict-go-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.go"), GO_PARSE).unwrap();
    let mut files = vec![dir.join("good.pem")];
    std::fs::write(&files[0], &c).unwrap();
    for (i, (_, alg, _)) in MUTANTS.iter().enumerate() {
        let f = dir.join(format!("mutant{i}.pem"));
        std::fs::write(&f, with_outer(&c, alg)).unwrap();
        files.push(f);
    }
    let text = go_run(&dir.join("main.go"), &files);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.contains("good.pem: <nil>"), "{text}");
    for i in 0..MUTANTS.len() {
        assert!(
            text.contains(&format!(
                "mutant{i}.pem: x509: inner and outer signature algorithm identifiers don't match"
            )),
            "{text}"
        );
    }
}
