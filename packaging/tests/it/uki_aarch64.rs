//! The arm64 UKI: systemd-stub 257 `linuxaa64.efi.stub` (Debian trixie's arm64
//! `systemd-boot-efi`, pinned in packaging/debian-packages.lock and downloaded from the
//! archive's pool), assembled by the same code as x86 and judged by the same tools:
//! `ukify build` 257 with `--stub linuxaa64.efi.stub` (byte-identical output), `sbverify`
//! and `osslsigncode` on the signed image. Stubs, kernels and UKIs of the wrong
//! architecture are refused naming the file and the architecture expected; the arm64 PCR
//! predictions come from the same code as x86's.
//!
//! The kernel: the real arm64 `Image` when one has been built (the aarch64 manifest, a cached
//! `kernel-*/Image`, or `NEKOS_UKI_TEST_KERNEL_AARCH64`), and always the aa64 stub itself and a
//! synthetic arm64 PE (any EFI-stub PE is a valid `.linux` for the layout judge).

use nekos_build::arch::Arch;
use nekos_packaging::authenticode;
use nekos_packaging::keys::{self, KeySigner, Role};
use nekos_packaging::measurements;
use nekos_packaging::pe::{self, PeFile};
use nekos_packaging::uki::{self, MakeUkiOptions, UkiInputs, stub};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const UNAME: &str = "6.12.0-nekos";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-uki-aa64-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One seeded hierarchy for the module (INSECURE test keys).
fn test_keys() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("keys");
        let h = keys::generate_hierarchy(Some(b"nekos-uki-aarch64-test")).unwrap();
        keys::write_hierarchy(&d, &h, false).unwrap();
        d
    })
}

fn aa64_stub_path() -> PathBuf {
    stub::pinned_stub_path_for(Arch::Aarch64).unwrap_or_else(|e| {
        panic!(
            "the pinned arm64 systemd-stub ([systemd-boot-efi-arm64] in packaging/debian-packages.lock, \
             downloaded from the Debian archive's pool) cannot be obtained: {e:#}"
        )
    })
}

fn aa64_stub() -> Vec<u8> {
    std::fs::read(aa64_stub_path()).unwrap()
}

fn x64_stub_path() -> PathBuf {
    stub::pinned_stub_path_for(Arch::X86_64)
        .expect("pinned x86_64 systemd-stub (apt-get download; run packaging/host-setup.sh)")
}

fn initrd_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 % 251) as u8).collect()
}

fn synthetic_arm64_kernel() -> Vec<u8> {
    pe::synthetic_efi_image_for(
        pe::MACHINE_AARCH64,
        40_000,
        false,
        Some(
            "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nlinux,1,The Linux Developers,linux,6.12,https://linux.org\n",
        ),
    )
}

/// A built arm64 kernel `Image` (PE, machine 0xaa64), if there is one.
fn real_arm64_kernel() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NEKOS_UKI_TEST_KERNEL_AARCH64") {
        return Some(PathBuf::from(p));
    }
    let is_arm64 = |p: &Path| {
        std::fs::read(p).ok().and_then(|b| pe::machine_of(&b).ok()) == Some(pe::MACHINE_AARCH64)
    };
    // The aarch64 build's manifest (its kernel entry names the Image).
    let root = std::env::var_os("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let manifest = Arch::Aarch64
        .out_dir(&root.join("target/nekos"))
        .join("manifest.json");
    if let Ok(text) = std::fs::read_to_string(&manifest)
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        && let Some(p) = v["kernel"]["bzimage"]
            .as_str()
            .or(v["kernel"]["image"].as_str())
        && is_arm64(Path::new(p))
    {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(stub::cache_root())
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("kernel-"))
        .map(|e| e.path().join("Image"))
        .filter(|p| is_arm64(p))
        .collect();
    found.sort();
    found.pop()
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

/// `ukify build` 257 (the pinned trixie systemd-ukify, run unpacked) with the aa64 stub.
fn ukify_build(dir: &Path, linux: &Path, initrd: &Path, cmdline: &str, osrel: &Path) -> Vec<u8> {
    let ukify = stub::pinned_ukify_path()
        .expect("pinned ukify (Debian trixie systemd-ukify via apt-get download)");
    let out = dir.join("ukify.efi");
    let o = Command::new(python_with_pefile())
        .arg(&ukify)
        .arg("build")
        .arg(format!("--linux={}", linux.display()))
        .arg(format!("--initrd={}", initrd.display()))
        .arg(format!("--cmdline={cmdline}"))
        .arg(format!("--os-release=@{}", osrel.display()))
        .arg(format!("--uname={UNAME}"))
        .arg(format!("--stub={}", aa64_stub_path().display()))
        .arg(format!("--output={}", out.display()))
        .output()
        .expect("running ukify");
    assert!(
        o.status.success(),
        "ukify failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&out).unwrap()
}

fn build_arm64_uki(linux: &[u8], initrd: &[u8], cmdline: &str) -> Vec<u8> {
    uki::build_uki(&UkiInputs {
        stub: &aa64_stub(),
        linux,
        initrd,
        cmdline,
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some(UNAME),
        sbat: None,
    })
    .unwrap()
}

fn err_of<T>(r: anyhow::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn aa64_stub_is_pinned_and_is_an_arm64_systemd_stub() {
    let pin = stub::stub_pin_for(Arch::Aarch64).unwrap();
    let x64 = stub::stub_pin_for(Arch::X86_64).unwrap();
    assert_eq!(pin.package, "systemd-boot-efi");
    assert_eq!(pin.arch.as_deref(), Some("arm64"));
    assert_eq!(pin.version, x64.version, "one upload for both stubs");
    let path = aa64_stub_path();
    assert!(path.ends_with("usr/lib/systemd/boot/efi/linuxaa64.efi.stub"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        pin.file_sha256.unwrap()
    );
    let p = PeFile::parse(&bytes).unwrap();
    assert_eq!(p.machine, 0xaa64);
    assert_eq!(p.magic, pe::MAGIC_PE32_PLUS);
    assert!(
        p.sdmagic(&bytes)
            .is_some_and(|m| m.starts_with(b"#### LoaderInfo: systemd-stub 257"))
    );
    assert!(!p.is_signed(&bytes).unwrap());
    // The .deb is cached by its sha256 with what it is.
    let complete = stub::cache_root()
        .join(format!("deb-{}", pin.deb_sha256))
        .join(".complete");
    let text = std::fs::read_to_string(&complete).unwrap();
    assert!(
        text.contains("systemd-boot-efi") && text.contains("arm64"),
        "{text}"
    );
}

fn judge(name: &str, linux: &[u8]) {
    let dir = scratch(name);
    let linux_path = dir.join("Image");
    std::fs::write(&linux_path, linux).unwrap();
    let initrd = initrd_bytes(123_457);
    let initrd_path = dir.join("initrd");
    std::fs::write(&initrd_path, &initrd).unwrap();
    let osrel = dir.join("os-release");
    std::fs::write(&osrel, uki::NEKOS_OS_RELEASE).unwrap();
    let cmdline = " panic=-1  console=tty0 console=ttyAMA0 ";
    let ours = build_arm64_uki(linux, &initrd, cmdline);
    let theirs = ukify_build(&dir, &linux_path, &initrd_path, cmdline, &osrel);
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
    // A PE32+ arm64 image with the UKI's sections.
    let p = PeFile::parse(&ours).unwrap();
    assert_eq!(
        (p.machine, p.magic),
        (pe::MACHINE_AARCH64, pe::MAGIC_PE32_PLUS)
    );
    for s in [".osrel", ".cmdline", ".uname", ".linux", ".initrd", ".sbat"] {
        assert!(p.section(s).is_some(), "{name}: no {s}");
    }
    assert_eq!(
        p.section(".cmdline").unwrap().content(&ours),
        b"panic=-1 console=tty0 console=ttyAMA0"
    );
    assert_eq!(p.section(".linux").unwrap().content(&ours), linux);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn arm64_uki_is_byte_identical_to_ukify_257() {
    // The stub is an arm64 PE with NX_COMPAT and an .sbat: a stand-in kernel.
    judge("stubkernel", &aa64_stub());
    // No NX_COMPAT (cleared in the UKI) and a kernel .sbat (merged).
    judge("synthetic", &synthetic_arm64_kernel());
    match real_arm64_kernel() {
        Some(k) => judge("realkernel", &std::fs::read(&k).unwrap()),
        None => eprintln!(
            "NOTE: no arm64 kernel Image built yet (target/nekos/aarch64/manifest.json, \
             ~/.cache/nekos/kernel-*/Image): judged the aa64 stub and a synthetic arm64 PE as .linux"
        ),
    }
}

#[test]
fn real_arm64_image_release_is_read_from_its_banner() {
    let Some(k) = real_arm64_kernel() else {
        eprintln!("NOTE: no arm64 kernel Image built yet; the banner scraper is unit-tested");
        return;
    };
    let rel = uki::kernel_release(&std::fs::read(&k).unwrap()).unwrap();
    assert!(rel.starts_with("6.12"), "{rel}");
}

#[test]
fn signed_arm64_uki_verifies_with_sbverify_and_osslsigncode() {
    for (tool, package) in [("sbverify", "sbsigntool"), ("osslsigncode", "osslsigncode")] {
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
    let dir = scratch("sign");
    let keys_dir = test_keys();
    let db = keys_dir.join("db.crt");
    let kek = keys_dir.join("KEK.crt");
    let signer = keys::load_db_signer(keys_dir).unwrap();
    let mut kernels = vec![("synthetic", synthetic_arm64_kernel())];
    if let Some(k) = real_arm64_kernel() {
        kernels.push(("kernel", std::fs::read(k).unwrap()));
    }
    for (name, linux) in kernels {
        let unsigned = build_arm64_uki(&linux, &initrd_bytes(66_666), "console=ttyAMA0");
        let signed = authenticode::sign(&unsigned, &signer).unwrap();
        assert_eq!(signed, authenticode::sign(&unsigned, &signer).unwrap());
        assert_eq!(pe::machine_of(&signed).unwrap(), pe::MACHINE_AARCH64);
        let f = dir.join(format!("{name}.signed.efi"));
        std::fs::write(&f, &signed).unwrap();
        let sbverify = |cert: &Path, file: &Path| {
            Command::new("sbverify")
                .arg("--cert")
                .arg(cert)
                .arg(file)
                .output()
                .unwrap()
        };
        let osslsigncode = |cert: &Path, file: &Path| {
            Command::new("osslsigncode")
                .args(["verify", "-in"])
                .arg(file)
                .arg("-CAfile")
                .arg(cert)
                .output()
                .unwrap()
        };
        let o = sbverify(&db, &f);
        assert!(
            o.status.success(),
            "sbverify {name}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let o = osslsigncode(&db, &f);
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && text.contains("Succeeded"),
            "osslsigncode {name}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // The judges can say no: another certificate, a flipped .initrd byte.
        assert!(!sbverify(&kek, &f).status.success(), "sbverify took KEK");
        assert!(
            !osslsigncode(&kek, &f).status.success(),
            "osslsigncode took KEK"
        );
        let mut bad = signed.clone();
        let s = PeFile::parse(&bad)
            .unwrap()
            .section(".initrd")
            .unwrap()
            .clone();
        bad[s.pointer_to_raw_data as usize + 3] ^= 1;
        let fb = dir.join(format!("{name}.tampered.efi"));
        std::fs::write(&fb, &bad).unwrap();
        assert!(
            !sbverify(&db, &fb).status.success(),
            "sbverify took tampered"
        );
        assert!(
            !osslsigncode(&db, &fb).status.success(),
            "osslsigncode took tampered"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `make-uki` with files: kernel, initramfs and (optionally) an explicit stub.
fn make_uki(
    dir: &Path,
    kernel: &[u8],
    stub: Option<&Path>,
    arch: Option<Arch>,
) -> anyhow::Result<uki::MakeUkiOutput> {
    std::fs::create_dir_all(dir).unwrap();
    let k = dir.join("kernel.efi");
    std::fs::write(&k, kernel).unwrap();
    let i = dir.join("initramfs.cpio");
    std::fs::write(&i, initrd_bytes(4096)).unwrap();
    uki::make_uki(&MakeUkiOptions {
        kernel: k,
        initramfs: i,
        cmdline: "console=ttyAMA0".into(),
        uname: Some(UNAME.into()),
        stub: stub.map(Path::to_path_buf),
        arch,
        keys_dir: Some(test_keys().to_path_buf()),
        out_dir: dir.join("out"),
        ..MakeUkiOptions::default()
    })
}

#[test]
fn make_uki_takes_the_arm64_stub_for_an_arm64_kernel() {
    let dir = scratch("make");
    let out = make_uki(&dir, &synthetic_arm64_kernel(), None, None).unwrap();
    let m = &out.manifest_json;
    assert_eq!(m["arch"], "aarch64");
    assert_eq!(m["stub"]["origin"]["arch"], "arm64");
    assert_eq!(
        m["stub"]["sha256"],
        stub::stub_pin_for(Arch::Aarch64)
            .unwrap()
            .file_sha256
            .unwrap()
    );
    let signed = std::fs::read(out.signed.unwrap()).unwrap();
    assert_eq!(pe::machine_of(&signed).unwrap(), pe::MACHINE_AARCH64);
    authenticode::verify(&signed, None).unwrap();
    // The same with --arch given, byte for byte.
    let again = make_uki(
        &dir.join("again"),
        &synthetic_arm64_kernel(),
        None,
        Some(Arch::Aarch64),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&again.unsigned).unwrap(),
        std::fs::read(&out.unsigned).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_stub_for_arm64_kernel_is_refused() {
    let dir = scratch("x86stub");
    let x64 = x64_stub_path();
    let e = err_of(make_uki(&dir, &synthetic_arm64_kernel(), Some(&x64), None));
    assert!(
        e.contains(&format!("stub {}", x64.display()))
            && e.contains("x86_64 (0x8664), expected arm64 (0xaa64)"),
        "{e}"
    );
    assert!(!dir.join("out").join(uki::UNSIGNED_NAME).exists());
    // The assembly itself refuses the pair too (no files involved).
    let e = err_of(uki::build_uki(&UkiInputs {
        stub: &std::fs::read(&x64).unwrap(),
        linux: &synthetic_arm64_kernel(),
        initrd: b"x",
        cmdline: "",
        osrel: "",
        uname: None,
        sbat: None,
    }));
    assert!(
        e.contains("kernel is a PE image for arm64 (0xaa64), but the stub is for x86_64"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn arm64_stub_for_x86_kernel_is_refused() {
    let dir = scratch("aa64stub");
    let aa64 = aa64_stub_path();
    let x86_kernel = pe::synthetic_efi_image(10_000, true, None);
    let e = err_of(make_uki(&dir, &x86_kernel, Some(&aa64), None));
    assert!(
        e.contains(&format!("stub {}", aa64.display()))
            && e.contains("arm64 (0xaa64), expected x86_64 (0x8664)"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_kernel_for_an_arm64_uki_is_refused() {
    let dir = scratch("x86kernel");
    let x86_kernel = pe::synthetic_efi_image(10_000, true, None);
    let e = err_of(make_uki(&dir, &x86_kernel, None, Some(Arch::Aarch64)));
    assert!(
        e.contains(&format!("kernel {}", dir.join("kernel.efi").display()))
            && e.contains("is a PE image for x86_64 (0x8664), expected arm64 (0xaa64)"),
        "{e}"
    );
    // And through the build's entry point.
    let e = err_of(uki::build_nekos_uki_for(
        Arch::Aarch64,
        &x86_kernel,
        b"x",
        "console=ttyAMA0",
    ));
    assert!(e.contains("kernel is a PE image for x86_64"), "{e}");
    // A kernel for no architecture NekOS builds.
    let riscv = pe::synthetic_efi_image_for(0x5064, 100, true, None);
    let e = err_of(make_uki(&dir, &riscv, None, None));
    assert!(
        e.contains("riscv64 (0x5064), expected x86_64 (0x8664) or arm64 (0xaa64)"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn x86_uki_for_an_arm64_deployment_and_the_reverse_are_refused() {
    let dir = scratch("deploy");
    let x86_uki = dir.join("x86.signed.efi");
    let arm_uki = dir.join("aa64.signed.efi");
    let x86 = uki::build_uki(&UkiInputs {
        stub: &std::fs::read(x64_stub_path()).unwrap(),
        linux: &pe::synthetic_efi_image(1000, true, None),
        initrd: b"x",
        cmdline: "console=ttyS0",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: None,
        sbat: None,
    })
    .unwrap();
    std::fs::write(&x86_uki, &x86).unwrap();
    std::fs::write(
        &arm_uki,
        build_arm64_uki(&synthetic_arm64_kernel(), b"x", "console=ttyAMA0"),
    )
    .unwrap();
    uki::check_efi_file_arch(&x86_uki, Arch::X86_64).unwrap();
    uki::check_efi_file_arch(&arm_uki, Arch::Aarch64).unwrap();
    let e = err_of(uki::check_efi_file_arch(&x86_uki, Arch::Aarch64));
    assert!(
        e.contains(&x86_uki.display().to_string())
            && e.contains("x86_64 (0x8664), expected arm64 (0xaa64)"),
        "{e}"
    );
    let e = err_of(uki::check_efi_file_arch(&arm_uki, Arch::X86_64));
    assert!(
        e.contains(&arm_uki.display().to_string())
            && e.contains("arm64 (0xaa64), expected x86_64 (0x8664)"),
        "{e}"
    );
    // Not a PE at all (e.g. a raw Image.gz) is named as such.
    let gz = dir.join("Image.gz");
    std::fs::write(&gz, b"\x1f\x8b\x08\0").unwrap();
    let e = err_of(uki::check_efi_file_arch(&gz, Arch::Aarch64));
    assert!(e.contains("Image.gz") && e.contains("no MZ"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// PCR 11 recomputed here, section by section, from the bytes systemd-stub sees: for each
/// section of the stub's list that the UKI has, extend SHA-256(name ‖ NUL) then SHA-256 of
/// VirtualSize bytes of the section.
fn recompute_pcr11(uki_bytes: &[u8]) -> [u8; 32] {
    let p = PeFile::parse(uki_bytes).unwrap();
    let mut pcr = [0u8; 32];
    let mut extend = |d: &[u8]| {
        let mut h = Sha256::new();
        h.update(pcr);
        h.update(Sha256::digest(d));
        pcr = h.finalize().into();
    };
    let order = [
        ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
        ".pcrpkey", ".profile", ".dtbauto", ".hwids", ".efifw",
    ];
    let mut measured = Vec::new();
    for name in order {
        let Some(s) = p.section(name) else { continue };
        let start = s.pointer_to_raw_data as usize;
        extend(format!("{name}\0").as_bytes());
        extend(&uki_bytes[start..start + s.virtual_size as usize]);
        measured.push(name);
    }
    // What an arm64 NekOS UKI has: no .dtb/.dtbauto (the firmware's device tree is used).
    assert_eq!(
        measured,
        [".linux", ".osrel", ".cmdline", ".initrd", ".uname", ".sbat"]
    );
    pcr
}

#[test]
fn arm64_pcr11_prediction_equals_a_recomputation() {
    let unsigned = build_arm64_uki(
        &synthetic_arm64_kernel(),
        &initrd_bytes(9_999),
        "panic=-1 console=tty0 console=ttyAMA0",
    );
    let h = keys::generate_hierarchy(Some(b"aa64-pcr")).unwrap();
    let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();
    let predicted = uki::predict_pcr11(&signed).unwrap();
    assert_eq!(predicted, recompute_pcr11(&unsigned));
    assert_eq!(predicted, uki::predict_pcr11(&unsigned).unwrap());
    // An arm64 UKI's PCR 11 differs from the x86 one of the same inputs (the stub's .sbat
    // differs), so a verifier cannot confuse them.
    let x86 = uki::build_uki(&UkiInputs {
        stub: &std::fs::read(x64_stub_path()).unwrap(),
        linux: &pe::synthetic_efi_image(40_000, false, None),
        initrd: &initrd_bytes(9_999),
        cmdline: "panic=-1 console=tty0 console=ttyAMA0",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some(UNAME),
        sbat: None,
    })
    .unwrap();
    assert_ne!(uki::predict_pcr11(&x86).unwrap(), predicted);
}

#[test]
fn arm64_pcr_predictions_come_from_the_same_code_and_refuse_an_x86_uki() {
    let h = keys::generate_hierarchy(Some(b"aa64-pcrs")).unwrap();
    let dir = scratch("pcrs");
    keys::write_hierarchy(&dir, &h, false).unwrap();
    let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
    let signed = authenticode::sign(
        &build_arm64_uki(&synthetic_arm64_kernel(), &initrd_bytes(5000), "x"),
        &signer,
    )
    .unwrap();
    let custom = measurements::preset_store("custom", &dir).unwrap();
    let v = measurements::pcr_entry_for(Arch::Aarch64, &custom, &signed).unwrap();
    assert_eq!(v, measurements::pcr_entry(&custom, &signed).unwrap());
    assert_eq!(v["secure_boot"], true);
    assert_eq!(v["boots"], true);
    assert_eq!(
        v["pcr11"],
        hex::encode(uki::predict_pcr11(&signed).unwrap())
    );
    // PCR 4 under Secure Boot: EV_EFI_ACTION, separator, the UKI's Authenticode hash.
    let auth = authenticode::authenticode_sha256(&signed).unwrap();
    let pcr4 = measurements::pcr::replay([
        &<[u8; 32]>::from(Sha256::digest(measurements::pcr::CALLING_EFI_APPLICATION)),
        &measurements::pcr::separator(),
        &auth,
    ]);
    assert_eq!(v["pcr4"], hex::encode(pcr4));
    // The Microsoft store refuses NekOS's arm64 UKI as it does the x86 one.
    let ms = measurements::preset_store("microsoft", &dir).unwrap();
    let m = measurements::pcr_entry_for(Arch::Aarch64, &ms, &signed).unwrap();
    assert_eq!(
        (m["boots"].clone(), m["pcr11"].clone()),
        (false.into(), serde_json::Value::Null)
    );
    // An x86 UKI predicted for an arm64 boot is refused.
    let x86 = authenticode::sign(
        &uki::build_uki(&UkiInputs {
            stub: &std::fs::read(x64_stub_path()).unwrap(),
            linux: &pe::synthetic_efi_image(1000, true, None),
            initrd: b"x",
            cmdline: "x",
            osrel: uki::NEKOS_OS_RELEASE,
            uname: None,
            sbat: None,
        })
        .unwrap(),
        &signer,
    )
    .unwrap();
    let e = err_of(measurements::pcr_entry_for(Arch::Aarch64, &custom, &x86));
    assert!(
        e.contains("x86_64 (0x8664), expected arm64 (0xaa64)"),
        "{e}"
    );
    // The arm64 document lands in the aarch64 out dir.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = measurements::default_out_for(Arch::Aarch64, &root);
    assert_eq!(
        out.parent(),
        Some(
            measurements::default_out(&root)
                .with_file_name("aarch64")
                .as_path()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn file_artifact(dir: &Path, name: &str, bytes: &[u8]) -> nekos_packaging::artifacts::FileArtifact {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    serde_json::from_value(serde_json::json!({
        "path": path, "sha256": hex::encode(Sha256::digest(bytes)), "size": bytes.len(), "inputs": {}
    }))
    .unwrap()
}

#[test]
fn arm64_measurements_document_has_the_arm64_uki_and_no_sev_snp() {
    use nekos_packaging::artifacts::Manifest;
    let dir = scratch("doc");
    let h = keys::generate_hierarchy(Some(b"aa64-doc")).unwrap();
    let keys_dir = dir.join("keys");
    keys::write_hierarchy(&keys_dir, &h, false).unwrap();
    let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
    let linux = synthetic_arm64_kernel();
    let initrd = initrd_bytes(7000);
    let cmdline = nekos_packaging::ukis::uki_cmdline(Arch::Aarch64);
    let unsigned = build_arm64_uki(&linux, &initrd, &cmdline);
    let signed = authenticode::sign(&unsigned, &signer).unwrap();
    let kernel = file_artifact(&dir, "Image", &linux);
    let config = file_artifact(&dir, "config", b"CONFIG_ARM64=y\n");
    let mut manifest: Manifest = serde_json::from_value(serde_json::json!({
        "schema": 1, "arch": "aarch64", "source_date_epoch": 1,
        "kernel": {
            "bzimage": kernel.path, "config": config.path, "sha256": kernel.sha256,
            "source": {"package": "p", "version": "v", "sha256": "s"},
            "gcc": "gcc", "binutils": "ld", "input_hash": "x", "inputs": {},
            "clean_build_seconds": 1.0, "cached": true,
        },
        "userland": {}, "initramfs": {}, "cats": {}, "uki": {},
    }))
    .unwrap();
    manifest.initramfs.insert(
        "production".into(),
        file_artifact(&dir, "initramfs.cpio", &initrd),
    );
    manifest.uki.insert(
        "production".into(),
        serde_json::from_value(serde_json::json!({
            "cmdline": cmdline,
            "unsigned": file_artifact(&dir, "nekos.efi", &unsigned),
            "signed": file_artifact(&dir, "nekos.signed.efi", &signed),
            "authenticode_sha256": hex::encode(authenticode::authenticode_sha256(&signed).unwrap()),
            "make_uki": null,
        }))
        .unwrap(),
    );
    let doc = measurements::compute(&manifest, &keys_dir).unwrap();
    assert_eq!(doc["arch"], "aarch64");
    assert!(doc.get("sev_snp").is_none() && doc.get("stboot").is_none());
    let pcr11 = hex::encode(uki::predict_pcr11(&signed).unwrap());
    assert_eq!(doc["uki"]["pcr11_sha256"], pcr11);
    assert_eq!(doc["pcrs"]["custom"]["pcr11"], pcr11);
    assert_eq!(doc["pcrs"]["blank"]["pcr11"], pcr11);
    assert_eq!(doc["pcrs"]["custom"]["secure_boot"], true);
    assert_eq!(doc["pcrs"]["microsoft"]["boots"], false);
    // Deterministic bytes.
    assert_eq!(
        measurements::to_bytes(&doc).unwrap(),
        measurements::to_bytes(&measurements::compute(&manifest, &keys_dir).unwrap()).unwrap()
    );
    // The arm64 manifest's UKI is refused as an x86_64 one, naming the file.
    let e = err_of(measurements::compute_for(
        Arch::X86_64,
        &manifest,
        &keys_dir,
    ));
    assert!(
        e.contains("nekos.signed.efi") && e.contains("arm64 (0xaa64), expected x86_64 (0x8664)"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
