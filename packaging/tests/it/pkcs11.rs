//! Keys on a PKCS#11 token (SoftHSM2, Debian `softhsm2`): a token initialised in a temporary
//! directory per test, driven through the `nekos` CLI as a user would (PIN from
//! `NEKOS_PKCS11_PIN`). The same key imported into the token signs UKIs and OS packages to
//! the bytes the key file signs them to; a key generated on the token stays there and its
//! UKI boots under Secure Boot; every failure names the URI and never the PIN.

use crate::common::*;
use nekos_packaging::deployments::{self, Medium};
use nekos_packaging::keys;
use nekos_packaging::qemu::{BootOptions, Vm};
use nekos_packaging::{pe, uki};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PIN: &str = "246810";
const SO_PIN: &str = "13579135";
const SEED: &str = "6e656b6f732d706b637331312d74657374"; // "nekos-pkcs11-test": INSECURE

/// The SoftHSM2 module, wherever this system's package put it (tests look it up; the product
/// only takes the path it is given).
fn module() -> PathBuf {
    for p in [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib64/pkcs11/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!(
        "libsofthsm2.so not found: install the Debian package `softhsm2` (packaging/host-setup.sh does)"
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One SoftHSM2 installation: its config and token directory in a temporary directory, one
/// token labelled `nekos`.
struct Hsm {
    dir: PathBuf,
    conf: PathBuf,
}

impl Hsm {
    fn new(name: &str) -> Hsm {
        let dir = std::env::temp_dir().join(format!("nekos-pkcs11-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let hsm = Hsm { dir, conf };
        hsm.util(&[
            "--init-token",
            "--free",
            "--label",
            "nekos",
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ]);
        hsm
    }

    fn util(&self, args: &[&str]) -> String {
        let o = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("softhsm2-util: install the Debian package `softhsm2` (packaging/host-setup.sh does)");
        assert!(o.status.success(), "softhsm2-util {args:?}: {}", text(&o));
        text(&o)
    }

    /// Imports a PKCS#8 PEM key file into the token as `label`.
    fn import(&self, key: &Path, label: &str, id: &str) {
        self.util(&[
            "--import",
            key.to_str().unwrap(),
            "--token",
            "nekos",
            "--label",
            label,
            "--id",
            id,
            "--pin",
            PIN,
        ]);
    }

    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token=nekos;object={object}?module-path={}",
            module().display()
        )
    }

    /// `nekos ARGS` against this token, with `pin` in NEKOS_PKCS11_PIN (None: unset) and no
    /// terminal (stdin closed).
    fn nekos_with(&self, args: &[&str], pin: Option<&str>, conf: &Path) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nekos"));
        c.args(args)
            .env("SOFTHSM2_CONF", conf)
            .env_remove("NEKOS_PKCS11_MODULE")
            .stdin(Stdio::null());
        match pin {
            Some(p) => c.env("NEKOS_PKCS11_PIN", p),
            None => c.env_remove("NEKOS_PKCS11_PIN"),
        };
        c.output().unwrap()
    }

    fn nekos(&self, args: &[&str]) -> String {
        let o = self.nekos_with(args, Some(PIN), &self.conf);
        assert!(o.status.success(), "nekos {args:?}: {}", text(&o));
        text(&o)
    }

    fn nekos_fails(&self, args: &[&str]) -> String {
        let o = self.nekos_with(args, Some(PIN), &self.conf);
        assert!(
            !o.status.success(),
            "nekos {args:?} succeeded: {}",
            text(&o)
        );
        text(&o)
    }
}

impl Drop for Hsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The seeded (INSECURE, test-only) Secure Boot hierarchy as key files.
fn seeded_keys(dir: &Path) -> PathBuf {
    let d = dir.join("keys");
    let h = keys::generate_hierarchy(Some(&hex::decode(SEED).unwrap())).unwrap();
    keys::write_hierarchy(&d, &h, false).unwrap();
    d
}

/// An unsigned UKI from the pinned stub and a synthetic kernel (no build needed).
fn unsigned_uki(dir: &Path) -> PathBuf {
    let stub =
        uki::stub::load_pinned_stub().expect("pinned systemd-stub (run packaging/host-setup.sh)");
    let linux = pe::synthetic_efi_image(23_456, true, None);
    let initrd: Vec<u8> = (0..50_000).map(|i| (i * 13 % 251) as u8).collect();
    let bytes = uki::build_uki(&uki::UkiInputs {
        stub: &stub,
        linux: &linux,
        initrd: &initrd,
        cmdline: "console=ttyS0",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some("6.12.0-nekos"),
        sbat: None,
    })
    .unwrap();
    let p = dir.join("unsigned.efi");
    std::fs::write(&p, bytes).unwrap();
    std::fs::write(dir.join("vmlinuz"), &linux).unwrap();
    std::fs::write(dir.join("initrd"), &initrd).unwrap();
    p
}

fn judge_uki(signed: &Path, cert: &Path) {
    let o = Command::new("sbverify")
        .arg("--cert")
        .arg(cert)
        .arg(signed)
        .output()
        .expect("sbverify: install the Debian package `sbsigntool`");
    assert!(o.status.success(), "sbverify: {}", text(&o));
    let o = Command::new("osslsigncode")
        .args(["verify", "-in"])
        .arg(signed)
        .arg("-CAfile")
        .arg(cert)
        .output()
        .expect("osslsigncode: install the Debian package `osslsigncode`");
    assert!(
        o.status.success() && text(&o).contains("Succeeded"),
        "osslsigncode: {}",
        text(&o)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_same_key_on_the_token_signs_the_uki_to_identical_bytes() {
    let hsm = Hsm::new("uki-identical");
    let keys_dir = seeded_keys(&hsm.dir);
    hsm.import(&keys_dir.join("db.key"), "db", "01");
    let input = unsigned_uki(&hsm.dir);
    let db_crt = keys_dir.join("db.crt");
    let by_file = hsm.dir.join("file.efi");
    let by_token = hsm.dir.join("token.efi");
    hsm.nekos(&["sign", "--keys", p(&keys_dir), p(&input), p(&by_file)]);
    let uri = hsm.uri("db");
    hsm.nekos(&[
        "sign",
        "--key",
        &uri,
        "--cert",
        p(&db_crt),
        p(&input),
        p(&by_token),
    ]);
    let a = std::fs::read(&by_file).unwrap();
    let b = std::fs::read(&by_token).unwrap();
    assert!(a == b, "the token's signed UKI differs from the key file's");
    judge_uki(&by_token, &db_crt);

    // make-uki with the token key: the same signed image as with the key directory.
    let (kernel, initrd) = (hsm.dir.join("vmlinuz"), hsm.dir.join("initrd"));
    let mk = |out: &str, signer: &[&str]| {
        let out = hsm.dir.join(out);
        let mut args = vec![
            "make-uki",
            "--kernel",
            p(&kernel),
            "--initrd",
            p(&initrd),
            "--cmdline",
            "console=ttyS0",
            "--uname",
            "6.12.0-nekos",
            "--out-dir",
            p(&out),
        ];
        args.extend_from_slice(signer);
        hsm.nekos(&args);
        std::fs::read(out.join("nekos.signed.efi")).unwrap()
    };
    let from_dir = mk("mk-file", &["--keys", p(&keys_dir)]);
    let from_token = mk("mk-token", &["--key", &uri, "--cert", p(&db_crt)]);
    assert!(
        from_dir == from_token,
        "make-uki: token and key file differ"
    );
    judge_uki(&hsm.dir.join("mk-token/nekos.signed.efi"), &db_crt);
}

#[test]
fn the_same_key_on_the_token_signs_the_os_package_to_identical_bytes() {
    let hsm = Hsm::new("ospkg-identical");
    let key = hsm.dir.join("ospkg.key");
    let cert = hsm.dir.join("ospkg.crt");
    hsm.nekos(&[
        "genkey",
        "ospkg-cert",
        "--is-ca",
        "--out-key",
        p(&key),
        "--out-cert",
        p(&cert),
    ]);
    hsm.import(&key, "ospkg", "02");
    std::fs::write(hsm.dir.join("kernel"), b"a kernel").unwrap();
    std::fs::write(hsm.dir.join("initramfs"), b"an initramfs").unwrap();
    for name in ["by-file", "by-token"] {
        hsm.nekos(&[
            "ospkg",
            "create",
            "--kernel",
            p(&hsm.dir.join("kernel")),
            "--initramfs",
            p(&hsm.dir.join("initramfs")),
            "--out",
            p(&hsm.dir.join(name)),
        ]);
    }
    let by_file = hsm.dir.join("by-file.json");
    let by_token = hsm.dir.join("by-token.json");
    hsm.nekos(&[
        "ospkg",
        "sign",
        "--key",
        p(&key),
        "--cert",
        p(&cert),
        "--pkg",
        p(&by_file),
    ]);
    hsm.nekos(&[
        "ospkg",
        "sign",
        "--key",
        &hsm.uri("ospkg"),
        "--cert",
        p(&cert),
        "--pkg",
        p(&by_token),
    ]);
    assert_eq!(
        std::fs::read(hsm.dir.join("by-file.zip")).unwrap(),
        std::fs::read(hsm.dir.join("by-token.zip")).unwrap()
    );
    let a = std::fs::read(&by_file).unwrap();
    let b = std::fs::read(&by_token).unwrap();
    assert!(
        a == b,
        "descriptors differ:\n{}\n{}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
    let out = hsm.nekos(&["ospkg", "verify", "--pkg", p(&by_token), "--root", p(&cert)]);
    assert!(out.contains("OK: 1 valid signature(s)"), "{out}");
}

/// A certificate without what depends on the key (serial, key identifiers, public key,
/// signature), after checking that those follow the key-file rule (serial and identifiers
/// from SHA-256 of the SubjectPublicKeyInfo) and that the self-signature verifies.
fn cert_shape(path: &Path) -> Vec<String> {
    use der::{Decode, Encode};
    use rsa::signature::Verifier;
    use sha2::Digest;
    let der = keys::load_certificate(path).unwrap();
    let c = x509_cert::Certificate::from_der(&der).unwrap();
    let tbs = c.tbs_certificate();
    let spki = tbs.subject_public_key_info().to_der().unwrap();
    let h = sha2::Sha256::digest(&spki);
    let mut serial = h[..16].to_vec();
    serial[0] = (serial[0] & 0x7f) | 1;
    assert_eq!(tbs.serial_number().as_bytes(), &serial[..], "serial");
    let public = keys::public_key_of_cert(&der).unwrap();
    let sig = rsa::pkcs1v15::Signature::try_from(c.signature().raw_bytes()).unwrap();
    rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public)
        .verify(&tbs.to_der().unwrap(), &sig)
        .expect("the self-signature verifies");
    let mut shape = vec![
        format!("{:?}", tbs.version()),
        tbs.issuer().to_string(),
        tbs.subject().to_string(),
        hex::encode(tbs.validity().to_der().unwrap()),
        c.signature_algorithm().oid.to_string(),
    ];
    for e in tbs.extensions().into_iter().flatten() {
        let value = e.extn_value.as_bytes();
        let v = match e.extn_id.to_string().as_str() {
            // Subject key identifier: OCTET STRING of the first 20 bytes.
            "2.5.29.14" => {
                assert_eq!(&value[2..], &h[..20], "subject key identifier");
                "key id".to_string()
            }
            // Authority key identifier: SEQUENCE { [0] the same 20 bytes }.
            "2.5.29.35" => {
                assert_eq!(&value[4..], &h[..20], "authority key identifier");
                "key id".to_string()
            }
            _ => hex::encode(value),
        };
        shape.push(format!("{} {} {v}", e.extn_id, e.critical));
    }
    shape
}

#[test]
fn a_key_generated_on_the_token_stays_there_and_signs() {
    let hsm = Hsm::new("generated");
    let input = unsigned_uki(&hsm.dir);
    let cert = hsm.dir.join("db.crt");
    let uri = format!(
        "pkcs11:token=nekos;object=gen-db;id=%10?module-path={}",
        module().display()
    );
    let out = hsm.nekos(&[
        "genkey",
        "secure-boot",
        "--pkcs11",
        &uri,
        "--cert",
        p(&cert),
    ]);
    // What the token says about the key it made (read back by the product from the token).
    assert!(out.contains("extractable: false, sensitive: true"), "{out}");
    // Only the certificate was written.
    let mut files: Vec<String> = std::fs::read_dir(&hsm.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "db.crt",
            "initrd",
            "softhsm2.conf",
            "tokens",
            "unsigned.efi",
            "vmlinuz"
        ]
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(!pem.contains("PRIVATE"), "{pem}");
    // The certificate is made like the key-file hierarchy's db certificate.
    let keys_dir = seeded_keys(&hsm.dir.join("ref"));
    let mut file_shape = cert_shape(&keys_dir.join("db.crt"));
    for l in &mut file_shape {
        *l = l.replace(" INSECURE TEST KEY", "");
    }
    assert_eq!(cert_shape(&cert), file_shape);

    // Signing needs no certificate file: the token holds it next to the key.
    let signed = hsm.dir.join("signed.efi");
    hsm.nekos(&["sign", "--key", &uri, p(&input), p(&signed)]);
    judge_uki(&signed, &cert);
    // A second key under the same name is refused.
    let e = hsm.nekos_fails(&[
        "genkey",
        "secure-boot",
        "--pkcs11",
        &uri,
        "--cert",
        p(&hsm.dir.join("again.crt")),
    ]);
    assert!(e.contains("already holds a private key"), "{e}");

    // An Ed25519 OS-package root on the token signs a package that verifies.
    let os_cert = hsm.dir.join("ospkg.crt");
    let os_uri = hsm.uri("gen-ospkg");
    let out = hsm.nekos(&[
        "genkey",
        "ospkg-cert",
        "--is-ca",
        "--pkcs11",
        &os_uri,
        "--out-cert",
        p(&os_cert),
    ]);
    assert!(out.contains("extractable: false, sensitive: true"), "{out}");
    std::fs::write(hsm.dir.join("k"), b"kernel").unwrap();
    std::fs::write(hsm.dir.join("i"), b"initramfs").unwrap();
    let pkg = hsm.dir.join("pkg");
    hsm.nekos(&[
        "ospkg",
        "create",
        "--kernel",
        p(&hsm.dir.join("k")),
        "--initramfs",
        p(&hsm.dir.join("i")),
        "--out",
        p(&pkg),
    ]);
    let json = hsm.dir.join("pkg.json");
    hsm.nekos(&[
        "ospkg",
        "sign",
        "--key",
        &os_uri,
        "--cert",
        p(&os_cert),
        "--pkg",
        p(&json),
    ]);
    let out = hsm.nekos(&["ospkg", "verify", "--pkg", p(&json), "--root", p(&os_cert)]);
    assert!(out.contains("OK: 1 valid signature(s)"), "{out}");
}

#[test]
fn token_failures_name_the_uri_and_never_the_pin() {
    let hsm = Hsm::new("errors");
    let keys_dir = seeded_keys(&hsm.dir);
    hsm.import(&keys_dir.join("db.key"), "db", "01");
    let input = unsigned_uki(&hsm.dir);
    let out = hsm.dir.join("out.efi");
    let db_crt = keys_dir.join("db.crt");
    let kek_crt = keys_dir.join("KEK.crt");
    let uri = hsm.uri("db");
    let sign = |uri: &str, cert: &Path, pin: Option<&str>, conf: &Path| -> String {
        let o = hsm.nekos_with(
            &["sign", "--key", uri, "--cert", p(cert), p(&input), p(&out)],
            pin,
            conf,
        );
        assert!(!o.status.success(), "signing with {uri} succeeded");
        assert!(!out.exists(), "a failed signing left {}", out.display());
        text(&o)
    };
    let expect = |e: &str, named: &str, what: &str| {
        assert!(e.contains(&format!("PKCS#11 key {named}")), "{e}");
        assert!(e.contains(what), "{what:?} missing in: {e}");
        assert!(!e.contains(PIN) && !e.contains("999999"), "PIN shown: {e}");
    };

    let e = sign(&uri, &db_crt, Some("999999"), &hsm.conf);
    expect(&e, &uri, "wrong PIN");
    let e = sign(&uri, &db_crt, None, &hsm.conf);
    expect(&e, &uri, "no PIN: set NEKOS_PKCS11_PIN");

    let missing = hsm.uri("no-such-key");
    let e = sign(&missing, &db_crt, Some(PIN), &hsm.conf);
    expect(&e, &missing, "no private key with this object/id");

    let e = sign(&uri, &kek_crt, Some(PIN), &hsm.conf);
    expect(&e, &uri, "do not match");

    for module in ["/nonexistent/libnothing.so", "/etc/hostname"] {
        let bad = format!("pkcs11:token=nekos;object=db?module-path={module}");
        let e = sign(&bad, &db_crt, Some(PIN), &hsm.conf);
        expect(
            &e,
            &bad,
            &format!("cannot load the PKCS#11 module {module}"),
        );
    }

    // A token that offers only Ed25519: no CKM_RSA_PKCS for Authenticode.
    let eddsa_only = hsm.dir.join("eddsa-only.conf");
    let conf = std::fs::read_to_string(&hsm.conf).unwrap();
    std::fs::write(
        &eddsa_only,
        format!("{conf}slots.mechanisms = CKM_EDDSA,CKM_EC_EDWARDS_KEY_PAIR_GEN\n"),
    )
    .unwrap();
    let e = sign(&uri, &db_crt, Some(PIN), &eddsa_only);
    expect(&e, &uri, "does not offer CKM_RSA_PKCS");

    // The Ed25519 signer refuses the RSA key, naming both.
    let os_cert = hsm.dir.join("x.crt");
    std::fs::write(&os_cert, b"unused").unwrap();
    std::fs::write(hsm.dir.join("k"), b"kernel").unwrap();
    std::fs::write(hsm.dir.join("i"), b"initramfs").unwrap();
    hsm.nekos(&[
        "ospkg",
        "create",
        "--kernel",
        p(&hsm.dir.join("k")),
        "--initramfs",
        p(&hsm.dir.join("i")),
        "--out",
        p(&hsm.dir.join("pkg")),
    ]);
    let e = hsm.nekos_fails(&[
        "ospkg",
        "sign",
        "--key",
        &uri,
        "--cert",
        p(&os_cert),
        "--pkg",
        p(&hsm.dir.join("pkg.json")),
    ]);
    expect(&e, &uri, "OS packages are signed with Ed25519");

    // A PIN in the URI is refused and redacted.
    let with_pin = format!("{uri}&pin-value={PIN}");
    let e = sign(&with_pin, &db_crt, Some(PIN), &hsm.conf);
    assert!(e.contains("pin-value is refused"), "{e}");
    assert!(e.contains("pin-value=REDACTED"), "{e}");
    assert!(!e.contains(PIN), "PIN shown: {e}");
}

/// A UKI signed by a key generated on the token boots under Secure Boot with a custom store
/// that enrols the token's certificate as db (PK and KEK from the seeded hierarchy).
#[test]
fn a_uki_signed_on_the_token_boots_under_secure_boot() {
    let hsm = Hsm::new("boot");
    let mut m = manifest();
    let cert_dir = seeded_keys(&hsm.dir);
    let db_crt = cert_dir.join("db.crt");
    std::fs::remove_file(&db_crt).unwrap();
    std::fs::remove_file(cert_dir.join("db.key")).unwrap();
    let uri = hsm.uri("db");
    hsm.nekos(&[
        "genkey",
        "secure-boot",
        "--pkcs11",
        &uri,
        "--cert",
        p(&db_crt),
    ]);
    let unsigned = m.uki_path("production", false).unwrap().to_path_buf();
    let signed = hsm.dir.join("token-signed.efi");
    hsm.nekos(&["sign", "--key", &uri, p(&unsigned), p(&signed)]);
    judge_uki(&signed, &db_crt);
    let store = nekos_packaging::varstore::custom_store(&cert_dir).unwrap();
    let store_path = hsm.dir.join("custom.json");
    std::fs::write(&store_path, store.to_json()).unwrap();
    m.uki.get_mut("production").unwrap().signed.path = signed;
    m.varstores.get_mut("custom.json").unwrap().path = store_path;

    let deployment = "fw,kernel,initramfs,uki,sb-pass";
    let dep = deployments::find(deployment).unwrap();
    for medium in [Medium::KernelArg, Medium::EspDisk] {
        let test = format!("pkcs11-sb-pass-{medium:?}");
        let opts = BootOptions {
            log: Some(log_path(&test)),
            medium: Some(medium),
            ..BootOptions::default()
        };
        let vm = Vm::start(dep, &m, &opts).or_fail();
        vm.wait_for("EFI stub: UEFI Secure Boot is enabled.", BOOT)
            .or_fail();
        vm.wait_for("nekos: secureboot=on", STEP).or_fail();
        vm.wait_for("nekos: display: compositor started", BOOT)
            .or_fail();
        // A whole "showing" line first (as secure_boot.rs does), then the picture it names.
        showing(&vm, 0);
        wait_for_announced_picture(&vm, 0, &test);
    }
    // Control: the same boot with the key-file db certificate enrolled instead refuses the
    // token-signed UKI, so the boots above did use the token's image and store.
    let other = seeded_keys(&hsm.dir.join("other"));
    let store = nekos_packaging::varstore::custom_store(&other).unwrap();
    let other_store = hsm.dir.join("other.json");
    std::fs::write(&other_store, store.to_json()).unwrap();
    m.varstores.get_mut("custom.json").unwrap().path = other_store;
    let opts = BootOptions {
        log: Some(log_path("pkcs11-sb-other-db")),
        medium: Some(Medium::KernelArg),
        ..BootOptions::default()
    };
    let vm = Vm::start(dep, &m, &opts).or_fail();
    vm.wait_for(deployments::FIRMWARE_GAVE_UP, BOOT).or_fail();
    vm.wait_for(deployments::REFUSED_FROM_KERNEL_ARG, STEP)
        .or_fail();
    vm.assert_absent("EFI stub").or_fail();
}

/// Not a check: the signing time per UKI with the key file and with SoftHSM2 (median of 5
/// `nekos sign` runs each, process start included). Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn signing_time_key_file_vs_token() {
    let hsm = Hsm::new("timing");
    let keys_dir = seeded_keys(&hsm.dir);
    hsm.import(&keys_dir.join("db.key"), "db", "01");
    let m = std::env::var("NEKOS_MANIFEST").ok();
    let input = match m {
        Some(_) => manifest()
            .uki_path("production", false)
            .unwrap()
            .to_path_buf(),
        None => unsigned_uki(&hsm.dir),
    };
    let out = hsm.dir.join("out.efi");
    let uri = hsm.uri("db");
    let db_crt = keys_dir.join("db.crt");
    let median = |args: &[&str]| {
        let mut t: Vec<f64> = (0..5)
            .map(|_| {
                let s = std::time::Instant::now();
                hsm.nekos(args);
                s.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[2]
    };
    let file = median(&["sign", "--keys", p(&keys_dir), p(&input), p(&out)]);
    let token = median(&[
        "sign",
        "--key",
        &uri,
        "--cert",
        p(&db_crt),
        p(&input),
        p(&out),
    ]);
    eprintln!(
        "signing {} ({} bytes): key file {file:.0} ms, SoftHSM2 {token:.0} ms (median of 5)",
        input.display(),
        std::fs::metadata(&input).unwrap().len()
    );
}
