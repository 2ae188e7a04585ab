//! The arm64 deployments boot in `qemu-system-aarch64 -M virt` (TCG) to the outcome each
//! promises, as their x86 twins do in boot.rs, cats.rs and secure_boot.rs: init and the prompt
//! on the PL011 line, the seeded cats on virtio-gpu equal to the host rendering (and the next
//! one after `right` on the virtio keyboard), Secure Boot on through the project's ArmVirtQemu
//! with the custom store, refusals with the Microsoft store and a tampered `.initrd`.
//!
//! These boots are part of a test run exactly when its build built arm64: `cargo nekos test`
//! then names the arm64 manifest in `NEKOS_MANIFEST_AARCH64`. With the variable set, anything
//! missing (the manifest, the firmware, a UKI) fails naming what to build; without it, the run
//! has no arm64 build and each boot test says so on stderr and passes. The bad-input tests at
//! the bottom need no build and always run.

use crate::common::*;
use nekos_packaging::artifacts::{FileArtifact, Manifest};
use nekos_packaging::deployments::{self, FIRMWARE_GAVE_UP, REFUSED_FROM_DISK};
use nekos_packaging::qemu::{self, BootOptions, Frontend, HostOs, Vm};
use nekos_viewer::order::{Browser, OrderMode};
use std::path::Path;

/// The arm64 build of this test run, or `None` when the run did not build arm64.
fn arm64_manifest(test: &str) -> Option<Manifest> {
    let Some(path) = std::env::var_os("NEKOS_MANIFEST_AARCH64") else {
        eprintln!(
            "{test}: not in this run: its build did not build arm64 (NEKOS_MANIFEST_AARCH64 unset; \
             `cargo nekos build --arch aarch64` and set it to target/nekos/aarch64/manifest.json)"
        );
        return None;
    };
    let m = Manifest::load(Path::new(&path))
        .map_err(|e| anyhow::anyhow!("{e:#} (the arm64 build: `cargo nekos build --arch aarch64`)"))
        .or_fail();
    assert_eq!(
        m.arch,
        nekos_packaging::deployments::Arch::Aarch64,
        "NEKOS_MANIFEST_AARCH64 names {}, which is not the arm64 build",
        Path::new(&path).display()
    );
    Some(m)
}

fn start(m: &Manifest, test: &str, deployment: &str, variant: &str, cmdline: &[&str]) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        variant: variant.into(),
        cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
        log: Some(log_path(test)),
        ..BootOptions::default()
    };
    Vm::start(dep, m, &opts).or_fail()
}

fn assert_boots(m: &Manifest, test: &str, deployment: &str) -> Vm {
    let vm = start(m, test, deployment, "production", &[]);
    vm.wait_for("nekos: boot ok", BOOT).or_fail();
    vm.wait_for("nekos# ", BOOT).or_fail();
    for marker in [
        "nekos: init started",
        "nekos: NekOS ",
        "nekos: secureboot=not-uefi",
        "nekos: tpm=absent",
        "nekos: sev-snp-report=absent",
        " ms after kernel start",
    ] {
        vm.wait_for(marker, STEP).or_fail();
    }
    vm.assert_absent("Kernel panic").or_fail();
    vm.assert_absent("nekos: warning").or_fail();
    vm
}

#[test]
fn aarch64_kernel_initramfs_boots_to_init_on_virt() {
    let Some(m) = arm64_manifest("aarch64_kernel_initramfs_boots_to_init_on_virt") else {
        return;
    };
    let mut vm = assert_boots(&m, "boot-aarch64", "aarch64,kernel,initramfs");
    // The PL011 is the console the prompt answers on.
    let out = vm.run_at_prompt("cat /proc/cmdline", STEP).or_fail();
    assert!(out.contains("console=ttyAMA0"), "{out}");
}

#[test]
fn aarch64_serialonly_boots_to_the_prompt_in_text_mode() {
    let Some(m) = arm64_manifest("aarch64_serialonly_boots_to_the_prompt_in_text_mode") else {
        return;
    };
    let vm = assert_boots(
        &m,
        "boot-aarch64-serialonly",
        "aarch64,kernel,initramfs,serialonly",
    );
    vm.wait_for("nekos: display: no DRM device", STEP).or_fail();
}

/// Screendumps until the screen equals the host rendering of `name` (bounded by STEP).
fn wait_for_picture(vm: &Vm, shot_name: &str, name: &str) {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let shot = screendump(vm, shot_name);
        let expected = render(name, &shot);
        let same = shot.rgba.len() == expected.len()
            && shot
                .rgba
                .chunks_exact(4)
                .zip(expected.chunks_exact(4))
                .all(|(a, b)| (0..3).all(|i| a[i].abs_diff(b[i]) <= 1));
        if same {
            return;
        }
        if std::time::Instant::now() >= deadline {
            assert_same_picture(&shot, &expected, name);
        }
    }
}

#[test]
fn aarch64_virtio_gpu_shows_the_seeded_first_cat_and_the_next_on_right() {
    let Some(m) = arm64_manifest("aarch64_virtio_gpu_shows_the_seeded_first_cat") else {
        return;
    };
    const SEED: u64 = 7;
    let names = photo_names();
    let mut order = Browser::new(names.len(), OrderMode::Shuffle, SEED);
    let first = names[order.next().unwrap()].clone();
    let second = names[order.next().unwrap()].clone();
    let vm = start(
        &m,
        "cats-aarch64",
        "aarch64,kernel,initramfs",
        "production",
        &[
            &format!("nekos.seed={SEED}"),
            "nekos.interval=3600",
            "nekos.loglevel=debug",
        ],
    );
    vm.wait_for("nekos: display: compositor started", BOOT)
        .or_fail();
    let (shown, after) = showing(&vm, 0);
    assert_eq!(shown, first, "first photo for seed {SEED}");
    wait_for_picture(&vm, "cats-aarch64-first", &first);
    // The key travels QMP → virtio-keyboard-pci → evdev → compositor → viewer.
    vm.qmp().or_fail().send_keys(&["right"]).or_fail();
    let (shown, _) = showing(&vm, after);
    assert_eq!(shown, second, "photo after `right`");
    wait_for_picture(&vm, "cats-aarch64-second", &second);
}

#[test]
fn aarch64_sb_pass_boots_the_signed_uki_under_secure_boot_and_shows_cats() {
    let Some(m) = arm64_manifest("aarch64_sb_pass") else {
        return;
    };
    let vm = start(
        &m,
        "aarch64-sb-pass",
        "aarch64,fw,kernel,initramfs,uki,sb-pass",
        "production",
        &[],
    );
    vm.wait_for("EFI stub: UEFI Secure Boot is enabled.", BOOT)
        .or_fail();
    vm.wait_for("nekos: boot ok", BOOT).or_fail();
    vm.wait_for("nekos: secureboot=on", STEP).or_fail();
    vm.wait_for("nekos: display: compositor started", BOOT)
        .or_fail();
    showing(&vm, 0);
    wait_for_announced_picture(&vm, 0, "aarch64-sb-pass");
    vm.assert_absent("Kernel panic").or_fail();
}

/// The firmware refuses the image from the ESP disk, and the kernel never starts.
fn assert_refused(m: &Manifest, test: &str, deployment: &str) {
    let vm = start(m, test, deployment, "production", &[]);
    vm.wait_for(REFUSED_FROM_DISK, BOOT).or_fail();
    vm.wait_for(FIRMWARE_GAVE_UP, BOOT).or_fail();
    for started in ["EFI stub", "Linux version", "nekos: init started"] {
        vm.assert_absent(started).or_fail();
    }
}

#[test]
fn aarch64_sb_fail_microsoft_store_refuses_the_nekos_uki() {
    let Some(m) = arm64_manifest("aarch64_sb_fail") else {
        return;
    };
    assert_refused(
        &m,
        "aarch64-sb-fail",
        "aarch64,fw,kernel,initramfs,uki,sb-fail",
    );
}

#[test]
fn aarch64_sb_tampered_initrd_is_refused() {
    let Some(m) = arm64_manifest("aarch64_sb_tampered_initrd") else {
        return;
    };
    assert_refused(
        &m,
        "aarch64-sb-tampered-initrd",
        "aarch64,fw,kernel,initramfs,uki,sb-tampered-initrd",
    );
}

// --- bad input: no build needed ---

/// A build of `arch` in `dir` whose kernel and signed/unsigned UKI are the given bytes.
fn fake_build(dir: &Path, arch: &str, kernel: &[u8], uki: &[u8]) -> Manifest {
    std::fs::create_dir_all(dir).unwrap();
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        serde_json::to_value(FileArtifact {
            path,
            sha256: nekos_packaging::util::sha256_hex(bytes),
            size: bytes.len() as u64,
            inputs: Default::default(),
        })
        .unwrap()
    };
    let kernel = file("kernel.efi", kernel);
    serde_json::from_value(serde_json::json!({
        "schema": 1, "arch": arch, "source_date_epoch": 1,
        "kernel": {
            "bzimage": kernel["path"], "config": "", "sha256": kernel["sha256"],
            "source": { "package": "", "version": "", "sha256": "" },
            "gcc": "", "binutils": "", "input_hash": "", "inputs": {},
            "clean_build_seconds": 0.0, "cached": true
        },
        "userland": {}, "cats": {},
        "initramfs": { "production": file("initramfs.cpio", b"070701") },
        "uki": { "production": {
            "cmdline": "", "authenticode_sha256": "", "make_uki": {},
            "unsigned": file("nekos.efi", uki), "signed": file("nekos.signed.efi", uki)
        } },
        "varstores": { "custom.fd": file("custom.fd", b"store"), "custom.json": file("custom.json", b"{}") },
        "firmware": {
            "pv_vars": file("OVMF.fd", b"fw")["path"], "pv_vars_sha256": "", "amdsev": "",
            "amdsev_sha256": "", "input_hash": "", "inputs": {}, "clean_build_seconds": 0.0
        },
        "firmware_aarch64": {
            "code": file("QEMU_EFI.fd", b"fw")["path"], "code_sha256": "",
            "vars": file("QEMU_VARS.fd", b"vars")["path"], "vars_sha256": "",
            "input_hash": "", "inputs": {}, "clean_build_seconds": 0.0
        }
    }))
    .unwrap()
}

fn refusal(dep: &str, m: &Manifest, scratch: &Path) -> String {
    let dep = deployments::find(dep).unwrap();
    let opts = BootOptions {
        host: HostOs::Linux,
        ..BootOptions::default()
    };
    let err = qemu::command(dep, m, &opts, Frontend::Headless, scratch, None)
        .err()
        .unwrap_or_else(|| panic!("{}: the wrong-architecture image was accepted", dep.name));
    format!("{err:#}")
}

#[test]
fn an_x86_uki_given_to_an_arm64_deployment_is_refused_naming_file_and_arch() {
    let dir = std::env::temp_dir().join(format!("nekos-x86-uki-on-arm64-{}", std::process::id()));
    let arm = nekos_packaging::pe::synthetic_efi_image_for(
        nekos_packaging::pe::MACHINE_AARCH64,
        256,
        true,
        None,
    );
    let x86 = nekos_packaging::pe::synthetic_efi_image(256, true, None);
    let m = fake_build(&dir, "aarch64", &arm, &x86);
    let e = refusal("aarch64,fw,kernel,initramfs,uki,sb-pass", &m, &dir);
    let uki = dir.join("nekos.signed.efi");
    assert!(
        e.contains(&format!(
            "{} is a PE image for x86_64 (0x8664), expected arm64 (0xaa64)",
            uki.display()
        )) && e.contains("aarch64,fw,kernel,initramfs,uki,sb-pass boots aarch64 images only"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_arm64_uki_given_to_an_x86_deployment_is_refused_naming_file_and_arch() {
    let dir = std::env::temp_dir().join(format!("nekos-arm64-uki-on-x86-{}", std::process::id()));
    let arm = nekos_packaging::pe::synthetic_efi_image_for(
        nekos_packaging::pe::MACHINE_AARCH64,
        256,
        true,
        None,
    );
    let x86 = nekos_packaging::pe::synthetic_efi_image(256, true, None);
    let m = fake_build(&dir, "x86_64", &x86, &arm);
    let e = refusal("fw,kernel,initramfs,uki,sb-pass", &m, &dir);
    assert!(
        e.contains(&format!(
            "{} is a PE image for arm64 (0xaa64), expected x86_64 (0x8664)",
            dir.join("nekos.signed.efi").display()
        )),
        "{e}"
    );
    // The arm64 kernel given directly to an x86 boot: the same refusal for the kernel file.
    let m = fake_build(&dir, "x86_64", &arm, &x86);
    let e = refusal("kernel,initramfs", &m, &dir);
    assert!(
        e.contains(&format!(
            "{} is a PE image for arm64 (0xaa64), expected x86_64",
            dir.join("kernel.efi").display()
        )),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_x86_build_given_to_an_arm64_deployment_is_refused() {
    let dir = std::env::temp_dir().join(format!("nekos-x86-build-on-arm64-{}", std::process::id()));
    let x86 = nekos_packaging::pe::synthetic_efi_image(256, true, None);
    let m = fake_build(&dir, "x86_64", &x86, &x86);
    let e = refusal("aarch64,kernel,initramfs", &m, &dir);
    assert!(
        e.contains("boots the aarch64 build") && e.contains("cargo nekos build --arch aarch64"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// snpcheck on arm64 says SEV-SNP is not active with its documented exit code 3, without
/// reaching an x86 instruction or ioctl (the test initramfs ships it).
#[test]
fn aarch64_snpcheck_says_not_sev_snp_with_exit_code_3() {
    let Some(m) = arm64_manifest("aarch64_snpcheck") else {
        return;
    };
    let mut vm = start(
        &m,
        "aarch64-snpcheck",
        "aarch64,kernel,initramfs,serialonly",
        "production",
        &[],
    );
    vm.wait_for("nekos# ", BOOT).or_fail();
    let out = vm.run_at_prompt("snpcheck", STEP).or_fail();
    assert!(out.contains("SEV-SNP is not active"), "{out}");
    // Exit code 3 is snpcheck's documented "not SNP" (nsh prints the status).
    assert!(out.contains("nsh: exit status 3"), "{out}");
    vm.assert_absent("Illegal instruction").or_fail();
}

/// PCR 4, 7 and 11 of the arm64 sb-pass boot (the project's ArmVirtQemu with TPM2, the custom
/// store, the signed UKI as the ESP's removable-media boot option) read from sysfs at the
/// prompt equal `measurements.json`'s arm64 prediction; swtpm is the TPM (tpm-tis-device).
#[test]
fn aarch64_sb_pass_pcrs_match_swtpm() {
    let Some(m) = arm64_manifest("aarch64_sb_pass_pcrs") else {
        return;
    };
    let keys = nekos_packaging::keys::default_keys_dir();
    let predicted = nekos_packaging::measurements::compute(&m, &keys).or_fail();
    assert_eq!(predicted["arch"], "aarch64", "{predicted:#}");
    let want = &predicted["pcrs"]["custom"];
    let dir = std::env::temp_dir().join(format!("nekos-arm-pcrs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_swtpm, ctrl) = crate::measurements_qemu::start_swtpm(&dir);
    let dep = deployments::find("aarch64,fw,kernel,initramfs,uki,sb-pass").unwrap();
    let opts = BootOptions {
        tpm: Some(ctrl),
        log: Some(log_path("aarch64-sb-pass-pcrs")),
        ..BootOptions::default()
    };
    let mut vm = Vm::start(dep, &m, &opts).or_fail();
    vm.wait_for("nekos: tpm=present", BOOT).or_fail();
    vm.wait_for("nekos# ", BOOT).or_fail();
    for n in [4, 7, 11] {
        let out = vm
            .run_at_prompt(&format!("cat /sys/class/tpm/tpm0/pcr-sha256/{n}"), STEP)
            .or_fail();
        let got: Vec<String> = out
            .split_whitespace()
            .filter(|t| t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()))
            .map(|t| t.to_ascii_lowercase())
            .collect();
        assert_eq!(
            got,
            [want[format!("pcr{n}")].as_str().unwrap()],
            "PCR {n}: read vs predicted\n{want:#}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
