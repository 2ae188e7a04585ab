//! The arm64 firmware (nekos_build::firmware_aarch64, firmware/build-armvirt.sh) and its
//! variable stores in ArmVirtQemu's layout (nekos_formats::varstore::Layout::ARMVIRT_QEMU).
//!
//! Judges: the firmware build's own blank `QEMU_VARS.fd` (our generated blank store must equal
//! it byte for byte); virt-fw-vars (the pinned venv of packaging/host-setup.sh), which must
//! read our stores back to the same variables and write the same bytes from the same
//! certificates; and a real boot, qemu-system-aarch64 `-M virt -cpu max` under TCG, where
//! the custom store must refuse an unsigned EFI binary ("Access Denied") and start the same
//! binary signed by the db key, and the blank store must start the unsigned one.
//!
//! The firmware tests build ArmVirtQemu on first use (about ten minutes on 2 cores; cached by
//! input hash afterwards in the nekos cache, like the x86 OVMF).

use nekos_build::arch::Arch;
use nekos_build::firmware_aarch64::{self, ArmFirmwareOptions, LAYOUT};
use nekos_packaging::varstore::{self, Layout, Preset};
use nekos_packaging::{authenticode, keys, uki};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SEED: &str = "6e656b6f732d61726d36342d7661727301"; // "nekos-arm64-vars" + 01
const VIRT_FW_VARS: &str = "/opt/nekos/venv/bin/virt-fw-vars";
const DEBIAN_AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";

/// A fresh directory under cargo's scratch space for integration tests (`target/tmp`), named
/// without the process id: 64 MiB stores do not pile up across runs.
fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fw-aarch64-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn root() -> PathBuf {
    nekos_packaging::util::workspace_root().unwrap()
}

/// The firmware, built once per test binary (or taken from the cache).
fn firmware() -> &'static firmware_aarch64::ArmFirmwareArtifact {
    static FW: OnceLock<firmware_aarch64::ArmFirmwareArtifact> = OnceLock::new();
    FW.get_or_init(|| {
        firmware_aarch64::ensure(&root(), &ArmFirmwareOptions::default())
            .unwrap_or_else(|e| panic!("building the arm64 firmware: {e:#}"))
    })
}

/// A deterministic, insecure test hierarchy (private keys included: the boot test signs).
fn keys_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("keys");
        let h = keys::generate_hierarchy(Some(&hex::decode(SEED).unwrap())).unwrap();
        keys::write_hierarchy(&d, &h, true).unwrap();
        d
    })
}

/// The three stores as `build` writes them, in a directory of their own.
fn stores() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("stores");
        let written = firmware_aarch64::write_varstores(&d, keys_dir()).unwrap();
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            ["blank.fd", "custom.fd", "microsoft.fd"]
        );
        for a in written.values() {
            assert_eq!(a.size, 64 << 20, "{}", a.path.display());
            assert_eq!(
                nekos_packaging::util::sha256_file(&a.path).unwrap(),
                a.sha256
            );
        }
        d
    })
}

fn virt_fw_vars() -> &'static str {
    assert!(
        Path::new(VIRT_FW_VARS).is_file(),
        "{VIRT_FW_VARS} is missing: run `sudo packaging/host-setup.sh` (the pinned virt-firmware venv)"
    );
    VIRT_FW_VARS
}

fn run_judge(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(virt_fw_vars()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("ERROR"),
        "virt-fw-vars {args:?} failed:\n{stderr}"
    );
    format!("{}{stderr}", String::from_utf8_lossy(&out.stdout))
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

#[test]
fn a_missing_cross_compiler_is_named_with_its_package_and_arch() {
    let empty = tmp("empty-path");
    let e = format!(
        "{:#}",
        firmware_aarch64::check_cross_compiler(Some(empty.as_os_str())).unwrap_err()
    );
    assert!(
        e.contains("aarch64-linux-gnu-gcc")
            && e.contains("gcc-aarch64-linux-gnu")
            && e.contains("aarch64"),
        "{e}"
    );
    // With the real PATH it is there (host-setup.sh installs it).
    firmware_aarch64::ensure_cross_compiler().unwrap();
}

#[test]
fn the_arm64_stores_parse_with_virt_fw_vars_and_hold_the_expected_keys() {
    let dir = stores();
    for (name, preset) in [
        ("blank", Preset::Blank),
        ("custom", Preset::Custom(keys_dir().to_path_buf())),
        ("microsoft", Preset::Microsoft),
    ] {
        let fd = dir.join(format!("{name}.fd"));
        // The judge reads our raw store back to exactly the variables of our JSON writer.
        let json = dir.join(format!("{name}.judge.json"));
        let listing = run_judge(&[
            "-i".as_ref(),
            fd.as_os_str(),
            "-pv".as_ref(),
            "--output-json".as_ref(),
            json.as_os_str(),
        ]);
        assert!(
            listing.contains("var store range: 0x64 -> 0x40000"),
            "{name}: {listing}"
        );
        // A raw store holds the variables sorted by name (as virt-fw-vars writes them).
        let mut store = varstore::build(&preset).unwrap();
        store
            .variables
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let (theirs, ours) = (std::fs::read(&json).unwrap(), store.to_json());
        let _ = std::fs::remove_file(&json);
        assert!(
            theirs == ours,
            "{name}: virt-fw-vars read other variables from {} (first difference at {:?})",
            fd.display(),
            first_difference(&ours, &theirs)
        );
        match name {
            "blank" => assert!(!listing.contains("name=PK"), "{listing}"),
            "custom" => {
                for needle in [
                    "name=PK",
                    "CN=NekOS Platform Key (PK)",
                    "name=KEK",
                    "CN=NekOS Key Exchange Key (KEK)",
                    "name=db",
                    "CN=NekOS Signature Database Key (db)",
                    "name=dbx",
                    "SecureBootEnable",
                ] {
                    assert!(listing.contains(needle), "custom: {needle} in\n{listing}");
                }
            }
            _ => {
                for needle in [
                    "name=PK",
                    "Red Hat Secure Boot (PK/KEK key 1)",
                    "Microsoft Corporation KEK CA 2011",
                    "Microsoft Corporation UEFI CA 2011",
                    "Windows UEFI CA 2023",
                ] {
                    assert!(
                        listing.contains(needle),
                        "microsoft: {needle} in\n{listing}"
                    );
                }
            }
        }
    }
}

#[test]
fn virt_fw_vars_writes_the_same_arm64_stores_from_the_same_certificates() {
    let dir = stores();
    let blank = dir.join("blank.fd");
    let owner = varstore::keys_dir_owner(keys_dir()).unwrap().to_text();
    let k = keys_dir();
    let cases: [(&str, Vec<std::ffi::OsString>); 2] = [
        (
            "custom",
            vec![
                "--set-pk".into(),
                owner.clone().into(),
                k.join("PK.crt").into(),
                "--add-kek".into(),
                owner.clone().into(),
                k.join("KEK.crt").into(),
                "--add-db".into(),
                owner.clone().into(),
                k.join("db.crt").into(),
                "--secure-boot".into(),
            ],
        ),
        (
            "microsoft",
            vec!["--enroll-redhat".into(), "--secure-boot".into()],
        ),
    ];
    for (name, args) in cases {
        let out = dir.join(format!("{name}.judge.fd"));
        let mut all: Vec<&std::ffi::OsStr> = vec!["-i".as_ref(), blank.as_os_str()];
        all.extend(args.iter().map(|a| a.as_os_str()));
        all.extend(["-o".as_ref(), out.as_os_str()]);
        run_judge(&all);
        let theirs = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        let ours = std::fs::read(dir.join(format!("{name}.fd"))).unwrap();
        assert_eq!(
            first_difference(&ours, &theirs),
            None,
            "{name}: our arm64 store differs from virt-fw-vars' (lengths {} and {})",
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn a_store_of_the_wrong_layout_is_refused_naming_the_file_and_the_expected_size() {
    let d = tmp("wrong");
    let store = varstore::build(&Preset::Custom(keys_dir().to_path_buf())).unwrap();
    let x86 = d.join("x86-custom.fd");
    std::fs::write(&x86, store.to_raw_4m().unwrap()).unwrap();
    let e = format!("{:#}", firmware_aarch64::check_vars_file(&x86).unwrap_err());
    assert!(
        e.contains("x86-custom.fd")
            && e.contains("67108864")
            && e.contains("540672")
            && e.contains("OVMF 4M layout"),
        "{e}"
    );
    // Cut off, and padded to the right size but with the x86 volume inside.
    let arm = store.to_raw_layout(&LAYOUT).unwrap();
    let cut = d.join("cut.fd");
    std::fs::write(&cut, &arm[..0xc0000]).unwrap();
    let e = format!("{:#}", firmware_aarch64::check_vars_file(&cut).unwrap_err());
    assert!(e.contains("cut.fd") && e.contains("67108864"), "{e}");
    let mut padded = store.to_raw_4m().unwrap();
    padded.resize(LAYOUT.file_size, 0);
    let p = d.join("padded-x86.fd");
    std::fs::write(&p, &padded).unwrap();
    let e = format!("{:#}", firmware_aarch64::check_vars_file(&p).unwrap_err());
    assert!(e.contains("padded-x86.fd") && e.contains("0xc0000"), "{e}");
    let missing = d.join("nonexistent.fd");
    let e = format!(
        "{:#}",
        firmware_aarch64::check_vars_file(&missing).unwrap_err()
    );
    assert!(e.contains("nonexistent.fd"), "{e}");
    // The right one passes.
    let good = d.join("custom.fd");
    std::fs::write(&good, &arm).unwrap();
    firmware_aarch64::check_vars_file(&good).unwrap();
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_arm64_firmware_builds_and_is_cached_by_input_hash() {
    let root = root();
    let first = firmware();
    let lock = nekos_packaging::firmware::read_lock(&root).unwrap();
    let hash = firmware_aarch64::inputs(&root, &lock).unwrap();
    assert_eq!(first.input_hash, hash.hex());
    // The cache entry is named by the input hash, and holds both images.
    let entry = first.code.parent().unwrap();
    assert_eq!(
        entry.file_name().unwrap().to_string_lossy(),
        format!("firmware-aarch64-{}", &first.input_hash[..32])
    );
    assert_eq!(first.vars.parent().unwrap(), entry);
    for key in [
        "orig",
        "debian",
        "build-armvirt.sh",
        "cross-gcc",
        "cross-binutils",
    ] {
        assert!(first.inputs.contains_key(key), "input {key} not recorded");
    }
    assert!(
        first.inputs["cross-gcc"].contains("aarch64-linux-gnu-gcc"),
        "{:?}",
        first.inputs["cross-gcc"]
    );
    // A different pinned source is a different entry.
    let mut other = lock.clone();
    other.orig.sha256 = "0".repeat(64);
    assert_ne!(
        firmware_aarch64::inputs(&root, &other).unwrap().hex(),
        first.input_hash
    );
    // Unchanged inputs: the cache answers, with the same bytes.
    let again = firmware_aarch64::ensure(&root, &ArmFirmwareOptions::default()).unwrap();
    assert!(
        again.cached,
        "second ensure() rebuilt instead of using the cache"
    );
    assert_eq!(
        (&again.code_sha256, &again.vars_sha256, &again.input_hash),
        (&first.code_sha256, &first.vars_sha256, &first.input_hash)
    );
    let code = std::fs::read(&again.code).unwrap();
    let vars = std::fs::read(&again.vars).unwrap();
    assert_eq!((code.len(), vars.len()), (64 << 20, 64 << 20));
    // ArmVirtQemu's FD: `b 0x1000` at 0, the firmware volume at 0x1000.
    assert_eq!(code[..4], [0x00, 0x04, 0x00, 0x14]);
    assert_eq!(&code[0x1028..0x102c], b"_FVH");
    // The build's blank variable store is exactly the one the formats crate generates.
    assert_eq!(
        first_difference(&vars, &Layout::ARMVIRT_QEMU.blank()),
        None,
        "the built QEMU_VARS.fd differs from Layout::ARMVIRT_QEMU.blank()"
    );
    assert!(
        again.modules.keys().any(|m| m.ends_with("/FV/QEMU_EFI.fd")),
        "{:?}",
        again.modules.keys().collect::<Vec<_>>()
    );
}

/// Boots `efi` as the removable-media loader (`EFI/BOOT/BOOTAA64.EFI` on a virtio disk) on
/// the arm64 firmware with a copy of `vars` in the second flash bank; returns the serial
/// output once it contains one of `until` (or QEMU exits, or `limit` passes).
fn boot(
    code: &Path,
    dir: &Path,
    efi: &[u8],
    vars: &Path,
    until: &[&str],
    limit: Duration,
) -> String {
    let esp = dir.join("esp");
    std::fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
    std::fs::write(
        esp.join("EFI/BOOT").join(Arch::Aarch64.efi_boot_file()),
        efi,
    )
    .unwrap();
    let vars_copy = dir.join("vars.fd");
    std::fs::copy(vars, &vars_copy).unwrap();
    firmware_aarch64::check_vars_file(&vars_copy).unwrap();
    let serial = dir.join("serial.log");
    let mut child = Command::new(Arch::Aarch64.qemu_binary())
        .args([
            "-machine",
            "virt,accel=tcg",
            "-cpu",
            "max",
            "-m",
            "512",
            "-smp",
            "1",
        ])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            code.display()
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars_copy.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file=fat:{},format=raw,if=virtio,readonly=on",
            esp.display()
        ))
        .args(["-display", "none", "-nic", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-aarch64 (package qemu-system-arm from bookworm-backports)");
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < limit {
        // Polling the serial file: QEMU appends to it; nothing to wait on but the file.
        std::thread::sleep(Duration::from_millis(300));
        text = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        if until.iter().any(|u| text.contains(u)) {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "{}: {:.1} s, serial:\n{}",
        dir.display(),
        start.elapsed().as_secs_f64(),
        text.trim()
    );
    text
}

#[test]
fn the_custom_store_enforces_secure_boot_on_the_arm64_firmware() {
    // The payload: systemd-stub 257 for arm64 (pinned .deb), an EFI application the firmware
    // either refuses or starts; started without a kernel inside, it says so and returns.
    let stub_path = uki::stub::pinned_stub_path_for(Arch::Aarch64).unwrap();
    let unsigned = std::fs::read(&stub_path).unwrap();
    let signer = keys::load_db_signer(keys_dir()).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();
    let dir = tmp("boot");
    let limit = Duration::from_secs(
        std::env::var("NEKOS_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    );
    // "Access Denied": the firmware refused the image; "starting Boot0001" and the stub's own
    // complaint (no kernel inside): the firmware started it and it ran.
    let ran = ["BdsDxe: starting Boot0001", "lacks .linux section"];
    let all = ["lacks .linux section", "Access Denied"];
    // Our firmware, and Debian's own ArmVirtQemu build (qemu-efi-aarch64's AAVMF_CODE.fd,
    // Secure Boot capable) as an independent reader of the same stores.
    let codes = [
        ("nekos", firmware().code.clone()),
        ("debian", PathBuf::from(DEBIAN_AAVMF_CODE)),
    ];
    assert!(
        codes[1].1.is_file(),
        "{DEBIAN_AAVMF_CODE} missing: install qemu-efi-aarch64 (packaging/host-setup.sh does)"
    );
    for (label, code) in &codes {
        let code = code.as_path();
        let custom = stores().join("custom.fd");

        let denied = boot(
            code,
            &dir.join(format!("{label}-custom-unsigned")),
            &unsigned,
            &custom,
            &all,
            limit,
        );
        assert!(
            denied.contains("Access Denied") && !ran.iter().any(|r| denied.contains(r)),
            "{label}: the custom store (Secure Boot on) did not refuse an unsigned EFI binary:\n{denied}"
        );
        let started = boot(
            code,
            &dir.join(format!("{label}-custom-signed")),
            &signed,
            &custom,
            &all,
            limit,
        );
        assert!(
            !started.contains("Access Denied") && ran.iter().all(|r| started.contains(r)),
            "{label}: the custom store did not start the EFI binary signed by its db key:\n{started}"
        );
        let ms = boot(
            code,
            &dir.join(format!("{label}-microsoft-signed")),
            &signed,
            &stores().join("microsoft.fd"),
            &all,
            limit,
        );
        assert!(
            ms.contains("Access Denied") && !ran.iter().any(|r| ms.contains(r)),
            "{label}: the Microsoft store started a binary signed by a key not in its db:\n{ms}"
        );
        let blank = boot(
            code,
            &dir.join(format!("{label}-blank-unsigned")),
            &unsigned,
            &stores().join("blank.fd"),
            &all,
            limit,
        );
        assert!(
            !blank.contains("Access Denied") && ran.iter().all(|r| blank.contains(r)),
            "{label}: the blank store (Secure Boot off) did not start an unsigned EFI binary:\n{blank}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reproducibility from clean: two builds in directories of different path lengths, with the
/// inputs copied to two places, must give the same QEMU_EFI.fd, QEMU_VARS.fd and modules
/// (firmware_aarch64::repro, as `cargo nekos repro firmware` for x86). Two full builds
/// (about 2.5 min each on 2 cores), so run on demand: `-- --ignored two_clean_arm64`.
#[test]
#[ignore]
fn two_clean_arm64_firmware_builds_are_identical() {
    let (code, vars) = firmware_aarch64::repro(&root(), &ArmFirmwareOptions::default())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let fw = firmware();
    // The cache (built by ensure, in a third directory) holds the same bytes.
    assert_eq!((&code, &vars), (&fw.code_sha256, &fw.vars_sha256));
}
