//! UKI assembly, Authenticode signing and Secure Boot keys, judged by the standard tools:
//! `ukify build` 257 (byte-identical output), `sbverify` (sbsigntool) and
//! `osslsigncode verify`. Tests that need a tool fail — naming the Debian package — when it
//! is missing.

use nekos_packaging::authenticode::{self, Signer};
use nekos_packaging::keys::{self, Role};
use nekos_packaging::pe::{self, PeFile};
use nekos_packaging::uki::{self, MakeUkiOptions, UkiInputs, stub};
use rsa::traits::PrivateKeyParts;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SEED: &str = "6e656b6f732d756b692d74657374"; // "nekos-uki-test": INSECURE test keys

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-uki-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One seeded hierarchy for all tests (key generation is the slow part).
fn test_keys() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("keys");
        let h = keys::generate_hierarchy(Some(&hex::decode(SEED).unwrap())).unwrap();
        keys::write_hierarchy(&d, &h, false).unwrap();
        d
    })
}

fn pinned_stub() -> Vec<u8> {
    stub::load_pinned_stub().expect(
        "pinned systemd-stub (Debian trixie systemd-boot-efi via apt-get download; run packaging/host-setup.sh)",
    )
}

fn require_tool(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is missing: install the Debian package `{package}` (packaging/host-setup.sh does)"
    );
}

fn python_with_pefile() -> &'static str {
    let py = "/usr/bin/python3";
    let ok = Command::new(py)
        .args(["-c", "import pefile"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{py} cannot import pefile: install the Debian package `python3-pefile` (packaging/host-setup.sh does)"
    );
    py
}

fn initrd_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Runs ukify 257 (from the pinned trixie systemd-ukify .deb) and returns its output.
#[allow(clippy::too_many_arguments)]
fn ukify_build(
    dir: &Path,
    stub: &Path,
    linux: &Path,
    initrds: &[&Path],
    cmdline: &str,
    osrel: &Path,
    uname: &str,
    sbat: Option<&str>,
) -> Vec<u8> {
    let ukify = stub::pinned_ukify_path()
        .expect("pinned ukify (Debian trixie systemd-ukify via apt-get download)");
    let py = python_with_pefile();
    let out = dir.join("ukify.efi");
    let mut cmd = Command::new(py);
    cmd.arg(&ukify)
        .arg("build")
        .arg(format!("--linux={}", linux.display()))
        .arg(format!("--cmdline={cmdline}"))
        .arg(format!("--os-release=@{}", osrel.display()))
        .arg(format!("--uname={uname}"))
        .arg(format!("--stub={}", stub.display()))
        .arg(format!("--output={}", out.display()));
    for i in initrds {
        cmd.arg(format!("--initrd={}", i.display()));
    }
    if let Some(s) = sbat {
        cmd.arg(format!("--sbat={s}"));
    }
    let o = cmd.output().expect("running ukify");
    assert!(
        o.status.success(),
        "ukify failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&out).unwrap()
}

/// Builds with our code and with ukify from the same inputs and compares bytes.
fn judge_against_ukify(
    name: &str,
    linux: &[u8],
    initrds: &[Vec<u8>],
    cmdline: &str,
    sbat: Option<&str>,
) {
    let dir = scratch(name);
    let stub_path = stub::pinned_stub_path().unwrap();
    let stub_bytes = std::fs::read(&stub_path).unwrap();
    let linux_path = dir.join("linux");
    std::fs::write(&linux_path, linux).unwrap();
    let mut initrd_paths = Vec::new();
    for (i, d) in initrds.iter().enumerate() {
        let p = dir.join(format!("initrd{i}"));
        std::fs::write(&p, d).unwrap();
        initrd_paths.push(p);
    }
    let osrel = dir.join("os-release");
    std::fs::write(&osrel, uki::NEKOS_OS_RELEASE).unwrap();
    let uname = "6.12.0-nekos";
    let joined = uki::join_initrds(&initrds.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let ours = uki::build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux,
        initrd: &joined,
        cmdline,
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some(uname),
        sbat,
    })
    .unwrap();
    let theirs = ukify_build(
        &dir,
        &stub_path,
        &linux_path,
        &initrd_paths
            .iter()
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
        cmdline,
        &osrel,
        uname,
        sbat,
    );
    if ours != theirs {
        std::fs::write(dir.join("ours.efi"), &ours).unwrap();
        let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        panic!(
            "{name}: differs from ukify 257 (ours {} bytes, ukify {} bytes, first difference at {first:?}); see {}",
            ours.len(),
            theirs.len(),
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ukify_judge_stub_as_kernel() {
    // The stub is a valid PE (with NX_COMPAT and an .sbat), a stand-in for a kernel.
    let stub = pinned_stub();
    judge_against_ukify(
        "stubkernel",
        &stub,
        &[initrd_bytes(100_001)],
        "  console=ttyS0\t quiet  nekos.x=1 ",
        None,
    );
}

#[test]
fn ukify_judge_synthetic_kernel_without_nx_with_sbat_and_two_initrds() {
    let linux = pe::synthetic_efi_image(
        50_000,
        false,
        Some(
            "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nlinux,1,The Linux Developers,linux,6.12,https://linux.org\n",
        ),
    );
    judge_against_ukify(
        "synthetic",
        &linux,
        &[initrd_bytes(1001), initrd_bytes(4099)],
        "console=ttyS0",
        Some(
            "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nnekos,1,NekOS,nekos,1,https://nekos.invalid/\n",
        ),
    );
}

/// The real kernel, when one has been built (`cargo nekos build`), or `NEKOS_UKI_TEST_KERNEL`.
fn real_kernel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NEKOS_UKI_TEST_KERNEL") {
        return Some(PathBuf::from(p));
    }
    let cache = stub::cache_root();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bzImage"))
        .filter(|p| {
            p.is_file()
                && p.parent()
                    .is_some_and(|d| d.to_string_lossy().contains("kernel-"))
        })
        .collect();
    found.sort();
    found.pop()
}

#[test]
fn ukify_judge_real_kernel_when_built() {
    let Some(k) = real_kernel() else {
        eprintln!(
            "NOTE: no built kernel (~/.cache/nekos/kernel-*/bzImage) yet: judged the stub and a synthetic PE kernel instead"
        );
        return;
    };
    let linux = std::fs::read(&k).unwrap();
    judge_against_ukify(
        "realkernel",
        &linux,
        &[initrd_bytes(300_000)],
        "console=ttyS0 quiet",
        None,
    );
    // And the release read from the bzImage header looks like one.
    let rel = uki::kernel_release(&linux).unwrap();
    assert!(rel.starts_with('6'), "{rel}");
}

fn build_test_uki(linux: &[u8]) -> Vec<u8> {
    let stub = pinned_stub();
    uki::build_uki(&UkiInputs {
        stub: &stub,
        linux,
        initrd: &initrd_bytes(77_777),
        cmdline: "console=ttyS0",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some("6.12.0-nekos"),
        sbat: None,
    })
    .unwrap()
}

#[test]
fn signed_uki_verifies_with_sbverify_osslsigncode_and_ourselves() {
    require_tool("sbverify", "sbsigntool");
    require_tool("osslsigncode", "osslsigncode");
    let v = Command::new("osslsigncode")
        .arg("--version")
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&v.stdout).to_string();
    assert!(
        !v.starts_with("osslsigncode 2.5"),
        "{v}: bookworm's osslsigncode 2.5 rejects valid signatures; install 2.9 with \
         `apt-get install -t bookworm-backports osslsigncode` (packaging/host-setup.sh does)"
    );
    let dir = scratch("sign");
    let keys_dir = test_keys();
    let signer = nekos_packaging::keys::load_db_signer(keys_dir).unwrap();
    let mut kernels = vec![
        ("stub", pinned_stub()),
        ("synthetic", pe::synthetic_efi_image(12_345, true, None)),
    ];
    // Any real PE kernel too, when one has been built (or NEKOS_UKI_TEST_KERNEL names one).
    if let Some(k) = real_kernel() {
        kernels.push(("kernel", std::fs::read(k).unwrap()));
    }
    for (name, linux) in kernels {
        let unsigned = build_test_uki(&linux);
        let signed = authenticode::sign(&unsigned, &signer).unwrap();
        // Deterministic.
        assert_eq!(signed, authenticode::sign(&unsigned, &signer).unwrap());
        // Same Authenticode hash signed and unsigned.
        assert_eq!(
            authenticode::authenticode_sha256(&signed).unwrap(),
            authenticode::authenticode_sha256(&unsigned).unwrap()
        );
        let f = dir.join(format!("{name}.signed.efi"));
        std::fs::write(&f, &signed).unwrap();
        let db = keys_dir.join("db.crt");
        let o = Command::new("sbverify")
            .arg("--cert")
            .arg(&db)
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sbverify {name}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new("osslsigncode")
            .args(["verify", "-in"])
            .arg(&f)
            .arg("-CAfile")
            .arg(&db)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("Succeeded"),
            "osslsigncode {name}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        authenticode::verify(&signed, Some(signer.certificate_der())).unwrap();

        // The judges reject it against another certificate, and so do we.
        let kek = keys_dir.join("KEK.crt");
        let o = Command::new("sbverify")
            .arg("--cert")
            .arg(&kek)
            .arg(&f)
            .output()
            .unwrap();
        assert!(!o.status.success(), "sbverify accepted the KEK cert");
        let o = Command::new("osslsigncode")
            .args(["verify", "-in"])
            .arg(&f)
            .arg("-CAfile")
            .arg(&kek)
            .output()
            .unwrap();
        assert!(!o.status.success(), "osslsigncode accepted the KEK cert");
        let kek_der = keys::load_certificate(&kek).unwrap();
        assert!(authenticode::verify(&signed, Some(&kek_der)).is_err());

        // A flipped byte in a section breaks all of them.
        let mut bad = signed.clone();
        let pe = PeFile::parse(&bad).unwrap();
        let s = pe.section(".initrd").unwrap();
        bad[s.pointer_to_raw_data as usize + 10] ^= 1;
        let fb = dir.join(format!("{name}.tampered.efi"));
        std::fs::write(&fb, &bad).unwrap();
        let o = Command::new("sbverify")
            .arg("--cert")
            .arg(&db)
            .arg(&fb)
            .output()
            .unwrap();
        assert!(!o.status.success(), "sbverify accepted a tampered image");
        assert!(authenticode::verify(&bad, None).is_err());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn make_uki_in(dir: &Path, keys_dir: &Path) -> uki::MakeUkiOutput {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let kernel = dir.join("in/bzImage");
    std::fs::write(&kernel, pinned_stub()).unwrap();
    let initramfs = dir.join("in/initramfs.cpio");
    std::fs::write(&initramfs, initrd_bytes(65_536)).unwrap();
    uki::make_uki(&MakeUkiOptions {
        kernel,
        initramfs,
        cmdline: "console=ttyS0 quiet".into(),
        uname: Some("6.12.0-nekos".into()),
        keys_dir: Some(keys_dir.to_path_buf()),
        out_dir: dir.join("out"),
        ..MakeUkiOptions::default()
    })
    .unwrap()
}

#[test]
fn make_uki_is_reproducible_across_directories() {
    let a = scratch("repro-a");
    let b = scratch("repro-b").join("deeper/elsewhere");
    let oa = make_uki_in(&a, test_keys());
    let ob = make_uki_in(&b, test_keys());
    for name in [uki::UNSIGNED_NAME, uki::SIGNED_NAME, uki::MANIFEST_NAME] {
        let x = std::fs::read(a.join("out").join(name)).unwrap();
        let y = std::fs::read(b.join("out").join(name)).unwrap();
        assert!(
            x == y,
            "{name} differs between two builds in different directories"
        );
    }
    let m = &oa.manifest_json;
    let unsigned = std::fs::read(&oa.unsigned).unwrap();
    let signed = std::fs::read(oa.signed.as_ref().unwrap()).unwrap();
    assert_eq!(m["unsigned"]["sha256"], uki::sha256_hex(&unsigned));
    assert_eq!(m["signed"]["sha256"], uki::sha256_hex(&signed));
    assert_eq!(
        m["signed"]["authenticode_sha256"],
        m["unsigned"]["authenticode_sha256"]
    );
    assert_eq!(
        m["stub"]["sha256"],
        stub::stub_pin().unwrap().file_sha256.unwrap()
    );
    assert_eq!(
        m["unsigned"]["pcr11_sha256"],
        hex::encode(uki::predict_pcr11(&unsigned).unwrap())
    );
    let _ = ob;
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(b.parent().unwrap().parent().unwrap());
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_private_key_material_in_artifacts() {
    let dir = scratch("leak");
    let out = make_uki_in(&dir, test_keys());
    let mut artifacts = vec![
        std::fs::read(&out.unsigned).unwrap(),
        std::fs::read(&out.manifest).unwrap(),
    ];
    artifacts.push(std::fs::read(out.signed.as_ref().unwrap()).unwrap());
    for role in Role::ALL {
        let key_path = test_keys().join(format!("{}.key", role.stem()));
        let pem = std::fs::read(&key_path).unwrap();
        let key = keys::load_private_key(&key_path).unwrap();
        let der = pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
        let mut needles: Vec<Vec<u8>> = vec![der.as_bytes().to_vec()];
        // PEM body lines (base64 of the DER) — any full line would be a leak.
        needles.extend(
            String::from_utf8(pem)
                .unwrap()
                .lines()
                .filter(|l| l.len() >= 40)
                .map(|l| l.as_bytes().to_vec()),
        );
        for p in key.primes() {
            let be = p.to_be_bytes();
            needles.push(be.to_vec());
            needles.push(hex::encode(&be).into_bytes());
        }
        let d = key.d().to_be_bytes();
        needles.push(d[d.len() - 64..].to_vec());
        for a in &artifacts {
            for n in &needles {
                assert!(
                    !contains(a, n),
                    "private {} key material found in an artifact",
                    role.stem()
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keys_are_deterministic_from_a_seed_guarded_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let a = scratch("keys-a");
    let b = scratch("keys-b");
    for d in [&a, &b] {
        let args: Vec<String> = [
            "genkey",
            "secure-boot",
            "--dir",
            d.to_str().unwrap(),
            "--seed",
            "00ff",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        nekos_packaging::cli::run_args(args).unwrap();
    }
    for f in keys::hierarchy_files() {
        assert_eq!(
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
            "{f}"
        );
    }
    for r in Role::ALL {
        let mode = std::fs::metadata(a.join(format!("{}.key", r.stem())))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{} key mode", r.stem());
        let cert = keys::load_certificate(&a.join(format!("{}.crt", r.stem()))).unwrap();
        let c = <x509_cert::Certificate as der::Decode>::from_der(&cert).unwrap();
        let subject = c.tbs_certificate().subject().to_string();
        assert!(
            subject.contains("NekOS") && subject.contains("INSECURE TEST KEY"),
            "{subject}"
        );
        assert_eq!(
            keys::public_key_of_cert(&cert).unwrap().n().bit_width(),
            2048
        );
    }
    assert!(a.join("INSECURE-TEST-KEYS").exists());
    assert_eq!(
        std::fs::read_to_string(a.join("GUID")).unwrap().trim(),
        keys::NEKOS_OWNER_GUID
    );
    // Never overwritten without --force.
    let before = std::fs::read(a.join("db.key")).unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        [
            "genkey",
            "secure-boot",
            "--dir",
            a.to_str().unwrap(),
            "--seed",
            "01",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
    };
    let err = nekos_packaging::cli::run_args(args(&[])).unwrap_err();
    assert!(format!("{err:#}").contains("--force"), "{err:#}");
    assert_eq!(std::fs::read(a.join("db.key")).unwrap(), before);
    nekos_packaging::cli::run_args(args(&["--force"])).unwrap();
    assert_ne!(std::fs::read(a.join("db.key")).unwrap(), before);
    let mode = std::fs::metadata(&a).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

use rsa::traits::PublicKeyParts;

fn err_of<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    let k = test_keys();
    let stub = pinned_stub();
    let initrd = initrd_bytes(1000);
    let good = UkiInputs {
        stub: &stub,
        linux: &stub,
        initrd: &initrd,
        cmdline: "x",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: None,
        sbat: None,
    };
    uki::build_uki(&good).unwrap();

    // Key and certificate that do not match.
    let e = err_of(nekos_packaging::keys::load_signer(
        &k.join("db.key"),
        &k.join("KEK.crt"),
    ));
    assert!(
        e.contains("do not match") && e.contains("db.key") && e.contains("KEK.crt"),
        "{e}"
    );

    // Encrypted keys, PEM (PKCS#8 and legacy OpenSSL) and DER.
    let dir = scratch("bad");
    let enc = dir.join("enc.key");
    std::fs::write(&enc, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n").unwrap();
    let e = err_of(keys::load_private_key(&enc));
    assert!(e.contains("encrypted") && e.contains("enc.key"), "{e}");
    let legacy = dir.join("legacy.key");
    std::fs::write(&legacy, "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n").unwrap();
    assert!(err_of(keys::load_private_key(&legacy)).contains("encrypted"));
    let enc_der = dir.join("enc.der");
    // SEQUENCE { SEQUENCE { OID pbes2 }, OCTET STRING }
    std::fs::write(
        &enc_der,
        [
            0x30, 0x12, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05,
            0x0d, 0x04, 0x03, 1, 2, 3,
        ],
    )
    .unwrap();
    assert!(err_of(keys::load_private_key(&enc_der)).contains("encrypted"));
    // Unsupported formats: an EC key, garbage.
    let ec = dir.join("ec.key");
    std::fs::write(
        &ec,
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = err_of(keys::load_private_key(&ec));
    assert!(
        e.contains("unsupported key format") && e.contains("ec.key"),
        "{e}"
    );
    let junk = dir.join("junk.key");
    std::fs::write(&junk, b"\x00\x01garbage").unwrap();
    assert!(err_of(keys::load_private_key(&junk)).contains("unsupported key format"));
    // A certificate that is not one.
    let e = err_of(keys::load_certificate(&junk));
    assert!(e.contains("junk.key"), "{e}");

    // A missing stub, a wrong stub (a PE that is not systemd-stub), garbage as stub.
    let e = err_of(uki::make_uki(&MakeUkiOptions {
        kernel: dir.join("k"),
        ..MakeUkiOptions::default()
    }));
    assert!(e.contains("kernel"), "{e}");
    std::fs::write(dir.join("k"), &stub).unwrap();
    std::fs::write(dir.join("i"), &initrd).unwrap();
    let e = err_of(uki::make_uki(&MakeUkiOptions {
        kernel: dir.join("k"),
        initramfs: dir.join("i"),
        stub: Some(dir.join("no-such-stub.efi")),
        uname: Some("6".into()),
        out_dir: dir.join("out"),
        ..MakeUkiOptions::default()
    }));
    assert!(e.contains("stub") && e.contains("no-such-stub.efi"), "{e}");
    let not_stub = pe::synthetic_efi_image(100, true, None);
    let e = err_of(uki::build_uki(&UkiInputs {
        stub: &not_stub,
        ..good
    }));
    assert!(e.contains("stub is not systemd-stub"), "{e}");
    let e = err_of(uki::build_uki(&UkiInputs {
        stub: b"#!/bin/sh\n",
        ..good
    }));
    assert!(e.contains("stub is not a PE image"), "{e}");

    // A kernel that is not a PE image.
    let e = err_of(uki::build_uki(&UkiInputs {
        linux: b"\x7fELF\x02\x01\x01",
        ..good
    }));
    assert!(e.contains("kernel is not a PE image"), "{e}");

    // An empty initramfs (API and pipeline).
    let e = err_of(uki::build_uki(&UkiInputs {
        initrd: b"",
        ..good
    }));
    assert!(e.contains("initramfs is empty"), "{e}");
    std::fs::write(dir.join("empty"), b"").unwrap();
    let e = err_of(uki::make_uki(&MakeUkiOptions {
        kernel: dir.join("k"),
        initramfs: dir.join("empty"),
        out_dir: dir.join("out"),
        ..MakeUkiOptions::default()
    }));
    assert!(e.contains("initramfs") && e.contains("empty"), "{e}");

    // An .sbat that does not fit the stub's .sbat section.
    let big = format!(
        "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n{}",
        "nekos,1,NekOS,nekos,1,https://nekos.invalid/\n".repeat(20)
    );
    let e = err_of(uki::build_uki(&UkiInputs {
        sbat: Some(&big),
        ..good
    }));
    assert!(e.contains(".sbat") && e.contains("does not fit"), "{e}");

    // Inputs that are already signed: signing twice, a signed stub.
    let signer = nekos_packaging::keys::load_db_signer(k).unwrap();
    let unsigned = uki::build_uki(&good).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();
    let e = err_of(authenticode::sign(&signed, &signer));
    assert!(e.contains("already signed"), "{e}");
    let signed_stub = authenticode::sign(&stub, &signer).unwrap();
    let e = err_of(uki::build_uki(&UkiInputs {
        stub: &signed_stub,
        ..good
    }));
    assert!(e.contains("stub is signed"), "{e}");
    // Signing something that is not PE.
    let e = err_of(authenticode::sign(b"hello", &signer));
    assert!(e.contains("not a PE image"), "{e}");
    // No output file is left behind by failed runs.
    assert!(!dir.join("out").join(uki::UNSIGNED_NAME).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_lists_sections_and_hashes() {
    let unsigned = build_test_uki(&pinned_stub());
    let info = uki::inspect(&unsigned).unwrap();
    let names: Vec<&str> = info.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            ".text", ".rodata", ".data", ".sbat", ".sdmagic", ".reloc", ".osrel", ".cmdline",
            ".uname", ".linux", ".initrd"
        ]
    );
    let cmd = info.sections.iter().find(|s| s.name == ".cmdline").unwrap();
    assert_eq!(cmd.sha256, uki::sha256_hex(b"console=ttyS0"));
    assert!(!info.signed);
    let sbat = PeFile::parse(&unsigned)
        .unwrap()
        .section(".sbat")
        .unwrap()
        .content(&unsigned)
        .to_vec();
    assert!(sbat.ends_with(
        b"uki,1,UKI,uki,1,https://uapi-group.org/specifications/specs/unified_kernel_image/\n\0"
    ));
}

#[test]
fn make_uki_script_runs_the_rust_pipeline() {
    let dir = scratch("script");
    std::fs::write(dir.join("bzImage"), pinned_stub()).unwrap();
    std::fs::write(dir.join("initramfs"), initrd_bytes(4096)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("make-uki");
    let o = Command::new(&script)
        .current_dir(&dir)
        .env("NEKOS_BIN", env!("CARGO_BIN_EXE_nekos"))
        .args([
            "--kernel",
            "bzImage",
            "--initramfs",
            "initramfs",
            "--cmdline",
            "console=ttyS0",
            "--uname",
            "6.12.0-nekos",
            "--out-dir",
            "out",
            "--keys",
        ])
        .arg(test_keys())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make-uki: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Nothing of the key reaches the log.
    let log = [o.stdout.clone(), o.stderr.clone()].concat();
    let pem = std::fs::read_to_string(test_keys().join("db.key")).unwrap();
    assert!(!contains(&log, b"PRIVATE KEY"));
    for line in pem.lines().filter(|l| l.len() >= 40) {
        assert!(
            !contains(&log, line.as_bytes()),
            "key material in the make-uki log"
        );
    }
    for f in [uki::UNSIGNED_NAME, uki::SIGNED_NAME, uki::MANIFEST_NAME] {
        assert!(dir.join("out").join(f).is_file(), "{f}");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out").join(uki::MANIFEST_NAME)).unwrap())
            .unwrap();
    assert_eq!(
        m["signed"]["sha256"],
        uki::sha256_hex(&std::fs::read(dir.join("out").join(uki::SIGNED_NAME)).unwrap())
    );
    // `inspect` through the binary.
    let o = Command::new(env!("CARGO_BIN_EXE_nekos"))
        .arg("inspect")
        .arg(dir.join("out").join(uki::SIGNED_NAME))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("authenticode sha256") && text.contains(".initrd"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
