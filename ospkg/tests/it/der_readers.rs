//! The DER readers now built on the `der` crate: PKCS#8 key reading (checked against the
//! former hand-written reader, kept here as the oracle), the raw tbsCertificate bytes the
//! signature is checked over, and the Go-compatible subject Name of generated certificates.

use crate::common::*;
use der::asn1::OctetStringRef;
use der::{Decode, Encode};
use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::PrivateKeyInfoRef;
use ed25519_dalek::pkcs8::spki::AlgorithmIdentifierRef;
use nekos_ospkg::*;
use proptest::prelude::*;

const ED25519_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");

/// The former hand-written DER split: (tag, contents, rest).
fn old_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*input.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((tag, &whole[hdr..], &input[end..]))
}

/// The former PKCS#8 reader (after the PEM step): the seed or the error text.
fn old_key(der: &[u8]) -> Result<[u8; 32], String> {
    let bad = |w: &str| format!("PKCS#8 private key: {w}");
    let (tag, seq, _) = old_tlv(der).ok_or_else(|| bad("malformed DER"))?;
    if tag != 0x30 {
        return Err(bad("not a SEQUENCE"));
    }
    let (tag, _, rest) = old_tlv(seq).ok_or_else(|| bad("missing version"))?;
    if tag != 0x02 {
        return Err(bad("missing version"));
    }
    let (tag, alg, rest) = old_tlv(rest).ok_or_else(|| bad("missing algorithm"))?;
    if tag != 0x30 {
        return Err(bad("missing algorithm"));
    }
    let (tag, oid, _) = old_tlv(alg).ok_or_else(|| bad("missing algorithm OID"))?;
    if tag != 0x06 {
        return Err(bad("missing algorithm OID"));
    }
    if oid != [0x2b, 0x65, 0x70] {
        return Err("not Ed25519".into());
    }
    let (tag, inner, _) = old_tlv(rest).ok_or_else(|| bad("missing private key"))?;
    if tag != 0x04 {
        return Err(bad("missing private key"));
    }
    let (tag, seed, _) = old_tlv(inner).ok_or_else(|| bad("malformed Ed25519 private key"))?;
    match (tag, <[u8; 32]>::try_from(seed)) {
        (0x04, Ok(s)) => Ok(s),
        _ => Err(bad("Ed25519 private key is not a 32-byte OCTET STRING")),
    }
}

/// The two places where the error text may differ: an element whose tag `der` does not know
/// (a universal tag it has no type for) is "malformed" to `der` and a mismatch to the old
/// reader, and a multi-byte tag the other way round. The decision (refused) is the same.
fn same_outcome(new: &Result<[u8; 32], String>, old: &Result<[u8; 32], String>) -> bool {
    let class = |r: &Result<[u8; 32], String>| match r {
        Err(e) if e.ends_with("malformed DER") || e.ends_with("not a SEQUENCE") => {
            Err("outer".to_string())
        }
        Err(e)
            if e.ends_with("malformed Ed25519 private key")
                || e.ends_with("not a 32-byte OCTET STRING") =>
        {
            Err("inner".to_string())
        }
        other => other.clone(),
    };
    class(new) == class(old)
}

fn new_key(der: &[u8]) -> Result<[u8; 32], String> {
    match signing_key_from_pem(&pem_encode("PRIVATE KEY", der)) {
        Ok(k) => Ok(k.to_bytes()),
        Err(e) if e.0.contains(", not Ed25519: ") => Err("not Ed25519".into()),
        Err(e) => Err(e.0),
    }
}

/// Whether any header the old reader walks has a length that DER (and so `der`) forbids:
/// long form where short form fits, or leading zero length bytes. The old reader took them.
fn has_non_minimal_length(mut b: &[u8], depth: u8) -> bool {
    while let Some((_, body, rest)) = old_tlv(b) {
        if let Some(&l0) = b.get(1)
            && l0 > 0x80
            && (b.get(2) == Some(&0) || (l0 == 0x81 && b.get(2).is_some_and(|&x| x < 0x80)))
        {
            return true;
        }
        if depth > 0 && has_non_minimal_length(body, depth - 1) {
            return true;
        }
        b = rest;
    }
    false
}

fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    pem_decode_all(&signing_key_to_pem(&SigningKey::from_bytes(seed)))
        .remove(0)
        .der
}

#[test]
fn key_file_bytes_are_der_pkcs8_v1() {
    // The fixed prefix `signing_key_to_pem` writes (what Go's MarshalPKCS8PrivateKey writes)
    // equals the `pkcs8` crate's encoding of a v1 PrivateKeyInfo.
    let seed = [9u8; 32];
    let curve_key = OctetStringRef::new(&seed).unwrap().to_der().unwrap();
    let info = PrivateKeyInfoRef::new(
        AlgorithmIdentifierRef {
            oid: ED25519_OID,
            parameters: None,
        },
        OctetStringRef::new(&curve_key).unwrap(),
    );
    assert_eq!(info.to_der().unwrap(), ed25519_pkcs8(&seed));
}

#[test]
fn keys_read_leniently_like_go() {
    // v2 with a public key [1], an odd version number and bytes after the key: Go's
    // ParsePKCS8PrivateKey reads all of these, and so does this crate.
    let seed = [3u8; 32];
    let v1 = ed25519_pkcs8(&seed);
    let mut der = vec![0x30, 0x51, 0x02, 0x01, 0x07];
    der.extend_from_slice(&v1[5..]);
    der.extend_from_slice(&[0x81, 0x21, 0x00]);
    der.extend_from_slice(&[5u8; 32]);
    der.extend_from_slice(&[0xde, 0xad]);
    assert_eq!(new_key(&der), Ok(seed));
    assert_eq!(old_key(&der), Ok(seed));
    for (der, want) in [
        (&[0x31, 0x00][..], "not a SEQUENCE"),
        (&[0x30, 0x03, 0x04, 0x01, 0x00][..], "missing version"),
        (&[0x30, 0x80][..], "malformed DER"),
        (
            &[0x30, 0x05, 0x02, 0x01, 0x00, 0x30, 0x00][..],
            "missing algorithm OID",
        ),
    ] {
        let e = new_key(der).unwrap_err();
        assert!(e.ends_with(want), "{der:02x?}: {e}");
        assert_eq!(old_key(der).unwrap_err(), e);
    }
}

fn key_mutation() -> impl Strategy<Value = (usize, u8, usize)> {
    (0usize..48, any::<u8>(), 0usize..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn key_reader_decides_as_before_on_any_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(!has_non_minimal_length(&b, 3));
        let (new, old) = (new_key(&b), old_key(&b));
        prop_assert!(same_outcome(&new, &old), "{:?} vs {:?}", new, old);
    }

    #[test]
    fn key_reader_decides_as_before_on_mutated_keys(muts in proptest::collection::vec(key_mutation(), 1..4)) {
        let mut b = ed25519_pkcs8(&[0x42; 32]);
        for (i, v, op) in muts {
            let n = b.len();
            if n == 0 { break; }
            match op {
                0 => b[i % n] = v,
                1 => b.truncate(i % n),
                2 => b.insert(i % n, v),
                _ => { b.remove(i % n); }
            }
        }
        prop_assume!(!has_non_minimal_length(&b, 3));
        let (new, old) = (new_key(&b), old_key(&b));
        prop_assert!(same_outcome(&new, &old), "{:?} vs {:?}", new, old);
    }
}

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

fn elements(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((tag, body, rest)) = old_tlv(b) {
        out.push((tag, body.to_vec()));
        b = rest;
    }
    out
}

#[test]
fn signature_is_checked_over_the_raw_tbs_bytes() {
    // A leaf whose tbsCertificate carries an extension with `critical` written out as
    // FALSE (its DEFAULT): re-encoding the parsed certificate would drop those three bytes.
    // The signature is over the bytes as they came, and it verifies, as Go's does.
    let pki = root(21, Y2020, Y2040);
    let (k, c) = leaf(&pki, 22, Y2020, Y2040);
    let cert_der = pem_decode_all(&c).remove(0).der;
    let outer = elements(&elements(&cert_der)[0].1);
    let mut tbs_fields = elements(&outer[0].1);
    let (ext_tag, ext_body) = tbs_fields.pop().unwrap();
    assert_eq!(ext_tag, 0xa3);
    let mut exts = elements(&ext_body)[0].1.clone();
    let mut ski = vec![0x06, 0x03, 0x55, 0x1d, 0x0e, 0x01, 0x01, 0x00];
    ski.extend(tlv(0x04, &tlv(0x04, &[0xab, 0xcd])));
    exts.extend(tlv(0x30, &ski));
    let mut tbs_body = Vec::new();
    for (tag, body) in &tbs_fields {
        tbs_body.extend(tlv(*tag, body));
    }
    tbs_body.extend(tlv(0xa3, &tlv(0x30, &exts)));
    let tbs = tlv(0x30, &tbs_body);
    let sig = pki.root_key.sign(&tbs).to_bytes();
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    let mut body = tbs.clone();
    body.extend(tlv(outer[1].0, &outer[1].1));
    body.extend(tlv(0x03, &bits));
    let odd = tlv(0x30, &body);

    match x509_cert::Certificate::from_der(&odd) {
        Ok(parsed) => {
            let reencoded = parsed.tbs_certificate().to_der().unwrap();
            let zip = package_zip();
            let mut d = Descriptor::new("http://x/p.zip");
            sign_descriptor(&mut d, &zip, &k, &pem_encode("CERTIFICATE", &odd)).unwrap();
            let got = verify(&d, &zip, &pki.root_pem, 1, Y2030);
            assert_eq!(got.map(|v| v.valid_signatures), Ok(1));
            // x509-cert takes the explicit DEFAULT and re-encodes without it: verifying over
            // `tbs_certificate().to_der()` would have refused this certificate.
            assert_ne!(reencoded, tbs);
        }
        // `der` refuses the explicit DEFAULT: nothing to verify then.
        Err(e) => eprintln!("x509-cert refuses an explicit DEFAULT: {e}"),
    }
}

#[test]
fn generated_subject_is_go_printable_string_name() {
    let pki = root(31, Y2020, Y2040);
    let (k, c) = leaf(&pki, 32, Y2020, Y2040);
    for (key, pem) in [(&pki.root_key, &pki.root_pem), (&k, &c)] {
        let der = pem_decode_all(pem).remove(0).der;
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let cn = <base64ct::Base64 as base64ct::Encoding>::encode_string(&sha256(
            key.verifying_key().as_bytes(),
        ));
        // The bytes the former hand-written encoder produced (Go's encoding: one RDN, one
        // attribute, PrintableString).
        let mut atv = vec![0x06, 0x03, 0x55, 0x04, 0x03];
        atv.extend(tlv(0x13, cn.as_bytes()));
        let want = tlv(0x30, &tlv(0x31, &tlv(0x30, &atv)));
        assert_eq!(cert.tbs_certificate().subject().to_der().unwrap(), want);
        let i = der.windows(want.len()).position(|w| w == want);
        assert!(i.is_some(), "subject bytes not in the certificate");
    }
}

#[test]
fn go_encodes_the_generated_names_identically() {
    // Go's encoder for a pkix.Name with this CN (stmgr's) writes the subject and issuer
    // bytes our certificates carry. Skipped where `go` is missing.
    if !have_go() {
        return;
    }
    let pki = root(41, Y2020, Y2040);
    let (_, c) = leaf(&pki, 42, Y2020, Y2040);
    let dir = std::env::temp_dir().join(format!("ospkg-go-name-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.pem"), &pki.root_pem).unwrap();
    std::fs::write(dir.join("leaf.pem"), &c).unwrap();
    let src = r#"package main

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

func name(cn string) []byte {
	b, err := asn1.Marshal(pkix.Name{CommonName: cn}.ToRDNSequence())
	if err != nil {
		panic(err)
	}
	return b
}

func main() {
	for _, f := range []string{"root.pem", "leaf.pem"} {
		raw, _ := os.ReadFile(filepath.Join(os.Args[1], f))
		b, _ := pem.Decode(raw)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			panic(err)
		}
		fmt.Println(f, "subject", bytes.Equal(name(c.Subject.CommonName), c.RawSubject),
			"issuer", bytes.Equal(name(c.Issuer.CommonName), c.RawIssuer))
	}
}
"#;
    std::fs::write(dir.join("main.go"), src).unwrap();
    let text = go_run(&dir.join("main.go"), &[&dir]);
    let _ = std::fs::remove_dir_all(&dir);
    for want in [
        "root.pem subject true issuer true",
        "leaf.pem subject true issuer true",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
