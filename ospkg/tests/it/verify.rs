//! Good/bad corpus for signature verification and `verify_package`.

use crate::common::*;
use nekos_ospkg::*;

/// A P-256 self-signed certificate (made once with `openssl req -x509 -newkey ec`).
const EC_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBgjCCASmgAwIBAgIUXH99m6rqZpHyPurQqWDiWxRQwfwwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLbm90LWVkMjU1MTkwIBcNMjYxMTI2MTY1ODI4WhgPMjEyNjEx
MDIxNjU4MjhaMBYxFDASBgNVBAMMC25vdC1lZDI1NTE5MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEnrE0pHV0Z5i60m++ylZNs+1KKiej+pXqP9G2kch3Y+lpGIAP
AJkHlYIF5+XlzvfeVDzLRVtygq/qJRZSmOsUm6NTMFEwHQYDVR0OBBYEFBHZu34V
+leL5u9hnxYYudcmYuXCMB8GA1UdIwQYMBaAFBHZu34V+leL5u9hnxYYudcmYuXC
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgPdBIDxAYIhixLDLB
IrqRm2r1WkZ7cLNKX9ZlJGcyYI0CIGeH3pB1rU/lrN84MjpHFAYjKcZsrKfFZezw
wcvndCU5
-----END CERTIFICATE-----
";

fn signed(zip: &[u8], signers: &[(&SigningKey, &[u8])]) -> Descriptor {
    let mut d = Descriptor::new("http://10.0.2.2:8000/nekos.zip");
    for (k, c) in signers {
        sign_descriptor(&mut d, zip, k, c).unwrap();
    }
    d
}

fn below(e: VerifyError) -> (usize, Vec<SignatureFailure>) {
    match e {
        VerifyError::BelowThreshold {
            valid, failures, ..
        } => (valid, failures),
        other => panic!("expected BelowThreshold, got {other}"),
    }
}

fn policy(t: usize) -> TrustPolicy {
    TrustPolicy {
        ospkg_signature_threshold: t,
        ospkg_fetch_method: FetchMethod::Network,
    }
}

#[test]
fn good_one_and_two_signatures() {
    let pki = root(1, Y2020, Y2040);
    let (k1, c1) = leaf(&pki, 2, Y2020, Y2040);
    let (k2, c2) = leaf(&pki, 3, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&k1, &c1), (&k2, &c2)]);
    let v = verify(&d, &zip, &pki.root_pem, 2, Y2030).unwrap();
    assert_eq!(v.valid_signatures, 2);
    assert_eq!(v.digest, sha256(&zip));
    let v = verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap();
    assert_eq!(v.valid_signatures, 2);
    let e = verify(&d, &zip, &pki.root_pem, 3, Y2030).unwrap_err();
    assert_eq!(below(e.clone()).0, 2);
    assert!(
        e.to_string()
            .contains("2 valid signature(s) of 2, threshold is 3"),
        "{e}"
    );
}

#[test]
fn package_end_to_end() {
    let pki = root(1, Y2020, Y2040);
    let (k1, c1) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&k1, &c1)]);
    let json = d.to_json_bytes();
    let p = verify_package(
        &json,
        &zip,
        &policy(1),
        &pki.root_pem,
        Y2030,
        Limits::default(),
    )
    .unwrap();
    assert_eq!(p.kernel, kernel());
    assert_eq!(p.initramfs, initramfs());
    assert_eq!(p.cmdline, "console=ttyS0 quiet");
    assert_eq!(p.manifest.kernel, "boot/kernel");
    assert_eq!(p.manifest.initramfs, "boot/initramfs.cpio");
    assert_eq!(p.zip_sha256, sha256(&zip));
    assert_eq!(p.descriptor_sha256, sha256(&json));
}

#[test]
fn signing_is_deterministic() {
    let a = {
        let pki = root(1, Y2020, Y2040);
        let (k, c) = leaf(&pki, 2, Y2020, Y2040);
        signed(&package_zip(), &[(&k, &c)]).to_json_bytes()
    };
    let b = {
        let pki = root(1, Y2020, Y2040);
        let (k, c) = leaf(&pki, 2, Y2020, Y2040);
        signed(&package_zip(), &[(&k, &c)]).to_json_bytes()
    };
    assert_eq!(a, b);
}

#[test]
fn tampered_zip() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&k, &c)]);
    let mut bad = zip.clone();
    bad[100] ^= 1;
    let (valid, f) = below(verify(&d, &bad, &pki.root_pem, 1, Y2030).unwrap_err());
    assert_eq!(valid, 0);
    assert_eq!(f[0].index, 1);
    assert!(f[0].reason.contains("does not verify"), "{}", f[0].reason);
    let e = verify_package(
        &d.to_json_bytes(),
        &bad,
        &policy(1),
        &pki.root_pem,
        Y2030,
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Verify(_)));
    assert!(
        e.to_string()
            .starts_with("OS package signatures: 0 valid signature(s) of 1"),
        "{e}"
    );
}

#[test]
fn wrong_signer_and_other_root() {
    let pki = root(1, Y2020, Y2040);
    let other = root(9, Y2020, Y2040);
    let (k, c) = leaf(&other, 2, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&k, &c)]);
    let (_, f) = below(verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err());
    assert!(
        f[0].reason.contains("not issued by a trusted root"),
        "{}",
        f[0].reason
    );
    // Both roots in the file: the second one is found.
    let mut roots = pki.root_pem.clone();
    roots.extend_from_slice(b"\nsome comment\n");
    roots.extend_from_slice(&other.root_pem);
    assert_eq!(
        verify(&d, &zip, &roots, 1, Y2030).unwrap().valid_signatures,
        1
    );
    // The key signs but the descriptor carries someone else's certificate.
    let (k_good, c_good) = leaf(&pki, 3, Y2020, Y2040);
    let mut d = Descriptor::new("");
    let (_, sig) = sign(&zip, &k, &c).unwrap();
    d.certificates.push(c_good.clone());
    d.signatures.push(sig);
    let (_, f) = below(verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err());
    assert!(f[0].reason.contains("does not verify"), "{}", f[0].reason);
    // sign() refuses a key that does not match the certificate.
    assert_eq!(sign(&zip, &k_good, &c), Err(SignError::KeyMismatch));
}

#[test]
fn expired_and_not_yet_valid() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2021);
    let zip = package_zip();
    let d = signed(&zip, &[(&k, &c)]);
    let e = verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("signature 1: certificate expired at 2021-01-01T00:00:00Z"),
        "{msg}"
    );
    assert!(verify(&d, &zip, &pki.root_pem, 1, Y2020 + 10).is_ok());
    let e = verify(&d, &zip, &pki.root_pem, 1, Y2020 - 10).unwrap_err();
    assert!(
        e.to_string()
            .contains("not valid before 2020-01-01T00:00:00Z"),
        "{e}"
    );
    // An expired root invalidates its leaves.
    let old_root = root(4, Y2020, Y2021);
    let (k, c) = leaf(&old_root, 5, Y2020, Y2040);
    let d = signed(&zip, &[(&k, &c)]);
    let e = verify(&d, &zip, &old_root.root_pem, 1, Y2030).unwrap_err();
    assert!(
        e.to_string()
            .contains("root certificate expired at 2021-01-01T00:00:00Z"),
        "{e}"
    );
    // Long validity (past 2049: GeneralizedTime) works.
    let pki = root(6, Y2020, Y2060);
    let (k, c) = leaf(&pki, 7, Y2020, Y2060);
    let d = signed(&zip, &[(&k, &c)]);
    assert!(verify(&d, &zip, &pki.root_pem, 1, Y2060 - 1).is_ok());
    assert!(verify(&d, &zip, &pki.root_pem, 1, Y2060 + 1).is_err());
}

#[test]
fn threshold_rules() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&k, &c)]);
    assert_eq!(
        verify(&d, &zip, &pki.root_pem, 0, Y2030),
        Err(VerifyError::InvalidThreshold(0))
    );
    let e = verify_package(
        &d.to_json_bytes(),
        &zip,
        &policy(0),
        &pki.root_pem,
        Y2030,
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::TrustPolicy(_)), "{e}");
    let e = verify(&d, &zip, &pki.root_pem, 2, Y2030).unwrap_err();
    assert_eq!(below(e).0, 1);
    // The stmgr trap: an unsigned package never passes here.
    let unsigned = Descriptor::new("http://x/y.zip");
    let e = verify(&unsigned, &zip, &pki.root_pem, 1, Y2030).unwrap_err();
    assert!(
        e.to_string()
            .contains("0 valid signature(s) of 0, threshold is 1"),
        "{e}"
    );
}

#[test]
fn duplicate_certificate() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let mut d = signed(&zip, &[(&k, &c)]);
    assert_eq!(
        sign_descriptor(&mut d, &zip, &k, &c),
        Err(SignError::DuplicateCertificate)
    );
    // Forced duplicate (e.g. an attacker copying a valid pair): counts once.
    d.certificates.push(d.certificates[0].clone());
    d.signatures.push(d.signatures[0]);
    let (valid, f) = below(verify(&d, &zip, &pki.root_pem, 2, Y2030).unwrap_err());
    assert_eq!(valid, 1);
    assert_eq!(f[0].index, 2);
    assert!(f[0].reason.contains("duplicate"), "{}", f[0].reason);
    // Same certificate with different PEM wrapping is still a duplicate.
    let mut d2 = signed(&zip, &[(&k, &c)]);
    let crlf = String::from_utf8(c.clone()).unwrap().replace('\n', "\r\n");
    assert_eq!(
        sign_descriptor(&mut d2, &zip, &k, crlf.as_bytes()),
        Err(SignError::DuplicateCertificate)
    );
}

#[test]
fn root_signs_directly() {
    let pki = root(1, Y2020, Y2040);
    let zip = package_zip();
    let d = signed(&zip, &[(&pki.root_key, &pki.root_pem)]);
    assert_eq!(
        verify(&d, &zip, &pki.root_pem, 1, Y2030)
            .unwrap()
            .valid_signatures,
        1
    );
}

#[test]
fn non_ed25519_and_bad_pem() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let (_, sig) = sign(&zip, &k, &c).unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (EC_CERT.as_bytes().to_vec(), "not an Ed25519 certificate"),
        (b"hello".to_vec(), "not PEM"),
        (
            String::from_utf8(c.clone())
                .unwrap()
                .replace("CERTIFICATE", "PRIVATE KEY")
                .into_bytes(),
            "not CERTIFICATE",
        ),
        (
            pem_encode("CERTIFICATE", b"\x30\x03\x02\x01\x01"),
            "not a valid X.509",
        ),
    ];
    for (cert, want) in cases {
        let mut d = Descriptor::new("");
        d.certificates.push(cert);
        d.signatures.push(sig);
        let (_, f) = below(verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err());
        assert!(f[0].reason.contains(want), "{} !~ {want}", f[0].reason);
    }
    // A non-Ed25519 root: leaves cannot chain, and roots that are not certificates fail.
    let mut d = Descriptor::new("");
    d.certificates.push(c.clone());
    d.signatures.push(sig);
    assert!(verify(&d, &zip, EC_CERT.as_bytes(), 1, Y2030).is_err());
    assert!(matches!(
        verify(&d, &zip, b"no pem here", 1, Y2030),
        Err(VerifyError::Roots(_))
    ));
    // sign() refuses a non-Ed25519 certificate.
    assert!(matches!(
        sign(&zip, &k, EC_CERT.as_bytes()),
        Err(SignError::Certificate(_))
    ));
}

#[test]
fn forged_chain() {
    // Leaf whose certificate signature was altered: the root's signature no longer verifies.
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let block = pem_decode_all(&c).remove(0);
    let mut der = block.der.clone();
    let n = der.len();
    der[n - 1] ^= 0x55;
    let forged = pem_encode("CERTIFICATE", &der);
    let mut d = Descriptor::new("");
    let (_, sig) = sign(&zip, &k, &c).unwrap();
    d.certificates.push(forged);
    d.signatures.push(sig);
    let (_, f) = below(verify(&d, &zip, &pki.root_pem, 1, Y2030).unwrap_err());
    assert!(
        f[0].reason
            .contains("signature by the root does not verify"),
        "{}",
        f[0].reason
    );
    // A leaf is not a CA: a certificate "issued" by a leaf does not chain to it as root.
    let (k2, c2) = generate_leaf(&k, &c, Y2020, Y2040, &mut det_rng(5)).unwrap();
    let d = signed(&zip, &[(&k2, &c2)]);
    let (_, f) = below(verify(&d, &zip, &c, 1, Y2030).unwrap_err());
    assert!(f[0].reason.contains("not a CA"), "{}", f[0].reason);
}

#[test]
fn malformed_descriptors() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let zip = package_zip();
    let good = signed(&zip, &[(&k, &c)]);
    let good_json = String::from_utf8(good.to_json_bytes()).unwrap();
    let sig_b64 = {
        let v: serde_json::Value = serde_json::from_str(&good_json).unwrap();
        v["signatures"][0].as_str().unwrap().to_owned()
    };
    let cases: Vec<String> = vec![
        String::new(),
        "[]".into(),
        "{".into(),
        "null".into(),
        good_json.replace("\"version\": 1", "\"version\": 2"),
        good_json.replace("\"version\": 1", "\"version\": \"1\""),
        good_json.replace("\"version\": 1", "\"version\": 1.5"),
        good_json.replace(&sig_b64, "AAAA"),
        good_json.replace(&sig_b64, "!!notbase64!!"),
        good_json.replace("\"signatures\": [", "\"signatures\": [\n    \"AAAA\",\n"),
        good_json.replace("http://10.0.2.2:8000/nekos.zip", "no-scheme/path"),
        good_json.replace("\"certificates\": [", "\"certificates\": 5, \"x\": ["),
    ];
    for (i, bad) in cases.iter().enumerate() {
        let e = verify_package(
            bad.as_bytes(),
            &zip,
            &policy(1),
            &pki.root_pem,
            Y2030,
            Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Descriptor(_)), "case {i}: {e}");
        assert!(
            e.to_string().starts_with("OS package descriptor: "),
            "case {i}: {e}"
        );
    }
    // Certificates without signatures.
    let mut d = good.clone();
    d.signatures.clear();
    assert!(matches!(
        verify(&d, &zip, &pki.root_pem, 1, Y2030),
        Err(VerifyError::Malformed(_))
    ));
    // Too large.
    let limits = Limits {
        max_descriptor_bytes: 10,
        ..Limits::default()
    };
    let e = verify_package(
        good_json.as_bytes(),
        &zip,
        &policy(1),
        &pki.root_pem,
        Y2030,
        limits,
    )
    .unwrap_err();
    assert!(e.to_string().contains("above the limit"), "{e}");
}

#[test]
fn archive_errors_after_verification() {
    // A correctly signed zip that is not a package: the signature step passes, the archive
    // step refuses it.
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let not_zip = b"definitely not a zip file".to_vec();
    let d = signed(&not_zip, &[(&k, &c)]);
    let e = verify_package(
        &d.to_json_bytes(),
        &not_zip,
        &policy(1),
        &pki.root_pem,
        Y2030,
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Archive(_)), "{e}");
    assert!(e.to_string().starts_with("OS package archive: "), "{e}");
}

#[test]
fn certificate_shape_matches_stmgr() {
    let pki = root(1, Y2020, Y2040);
    let (k, c) = leaf(&pki, 2, Y2020, Y2040);
    let root_desc = describe_certificate(&pki.root_pem);
    let cn = sha2_free::b64_sha(pki.root_key.verifying_key().as_bytes());
    assert!(
        root_desc.contains(&format!("subject CN={cn}")),
        "{root_desc}"
    );
    assert!(
        root_desc.contains(&format!("issuer CN={cn}")),
        "{root_desc}"
    );
    let leaf_desc = describe_certificate(&c);
    let leaf_cn = sha2_free::b64_sha(k.verifying_key().as_bytes());
    assert!(
        leaf_desc.contains(&format!("subject CN={leaf_cn}")),
        "{leaf_desc}"
    );
    assert!(
        leaf_desc.contains(&format!("issuer CN={cn}")),
        "{leaf_desc}"
    );
    assert!(
        leaf_desc.contains("valid 2020-01-01T00:00:00Z .. 2040-01-01T00:00:00Z"),
        "{leaf_desc}"
    );
    // Keys round-trip through PKCS#8 PEM.
    let pem = signing_key_to_pem(&k);
    assert_eq!(signing_key_from_pem(&pem).unwrap().to_bytes(), k.to_bytes());
}

/// CN = base64(SHA-256(pubkey)), the base64 done by Python (independent of the crate).
mod sha2_free {
    pub fn b64_sha(pk: &[u8]) -> String {
        let hexed = nekos_ospkg::hex(&nekos_ospkg::sha256(pk));
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import base64;print(base64.b64encode(bytes.fromhex('{hexed}')).decode())"
                ),
            ])
            .output()
            .expect("python3 runs");
        // RFC 4514 display escapes '+' (and '=' is fine inside a value).
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .replace('+', "\\+")
    }
}

/// Our certificates chain under OpenSSL too (skipped where openssl is missing).
#[test]
fn openssl_accepts_chain() {
    let Ok(v) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        eprintln!("openssl not found: skipped");
        return;
    };
    if !v.status.success() {
        return;
    }
    let pki = root(1, Y2020, Y2060);
    let (_, c) = leaf(&pki, 2, Y2020, Y2060);
    let dir = std::env::temp_dir().join(format!("ospkg-openssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.pem"), &pki.root_pem).unwrap();
    std::fs::write(dir.join("leaf.pem"), &c).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(dir.join("root.pem"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(
        text.contains("Digital Signature, Certificate Sign"),
        "{text}"
    );
    assert!(text.contains("ED25519"), "{text}");
    // OpenSSL's own Ed25519 key reads as a signing key.
    let key = dir.join("k.pem");
    let st = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(signing_key_from_pem(&std::fs::read(&key).unwrap()).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
