//! QEMU's command line for every deployment, golden: `qemu::argv` is a pure function of the
//! deployment, its prepared boot media, the accelerator and the host OS, so the whole matrix
//! is checked without booting — the x86 deployments in `golden/qemu-argv.txt`, the arm64 ones
//! under TCG in `golden/qemu-argv-aarch64.txt`, and what `cargo nekos run` starts on a Mac
//! (HVF, a Cocoa window) in `golden/qemu-argv-aarch64-hvf.txt`, checked here on Linux.
//! After an intended change, `NEKOS_BLESS=1 cargo test -p nekos-packaging --test it qemu_argv`
//! rewrites the golden files; review their diff like code.

use nekos_packaging::artifacts::Manifest;
use nekos_packaging::deployments::{Arch, DEPLOYMENTS, Deployment};
use nekos_packaging::qemu::{self, Accel, BootOptions, Frontend, HostOs, MediaWrite};
use std::path::{Path, PathBuf};

/// A manifest whose files live under `/build` (nothing is read: only the paths matter).
fn manifest() -> Manifest {
    let file = |p: &str| serde_json::json!({ "path": p, "sha256": "00", "size": 0 });
    serde_json::from_value(serde_json::json!({
        "schema": 1,
        "source_date_epoch": 1,
        "kernel": {
            "bzimage": "/build/bzImage", "config": "/build/config", "sha256": "00",
            "source": { "package": "linux-source-6.12", "version": "v", "sha256": "00" },
            "gcc": "", "binutils": "", "input_hash": "", "inputs": {},
            "clean_build_seconds": 0.0, "cached": true
        },
        "userland": {},
        "initramfs": {
            "production": file("/build/production/initramfs.cpio.zst"),
            "test": file("/build/test/initramfs.cpio.zst")
        },
        "cats": {},
        "firmware": {
            "pv_vars": "/build/OVMF.pv-vars.fd", "pv_vars_sha256": "00",
            "amdsev": "/build/OVMF.amdsev.fd", "amdsev_sha256": "00",
            "input_hash": "", "inputs": {}, "clean_build_seconds": 0.0
        },
        "varstores": {
            "blank.json": file("/build/varstores/blank.json"),
            "custom.json": file("/build/varstores/custom.json"),
            "microsoft.json": file("/build/varstores/microsoft.json"),
            "blank.fd": file("/build/varstores/blank.fd"),
            "custom.fd": file("/build/varstores/custom.fd"),
            "microsoft.fd": file("/build/varstores/microsoft.fd")
        }
    }))
    .unwrap()
}

/// The arm64 build's manifest: its own kernel, initramfs, UKIs, ArmVirtQemu and raw stores.
fn manifest_aarch64() -> Manifest {
    let file = |p: &str| serde_json::json!({ "path": p, "sha256": "00", "size": 0 });
    serde_json::from_value(serde_json::json!({
        "schema": 1,
        "arch": "aarch64",
        "source_date_epoch": 1,
        "kernel": {
            "bzimage": "/build/aarch64/Image", "config": "/build/aarch64/config", "sha256": "00",
            "source": { "package": "linux-source-6.12", "version": "v", "sha256": "00" },
            "gcc": "", "binutils": "", "input_hash": "", "inputs": {},
            "clean_build_seconds": 0.0, "cached": true
        },
        "userland": {},
        "initramfs": {
            "production": file("/build/aarch64/production/initramfs.cpio"),
            "test": file("/build/aarch64/test/initramfs.cpio")
        },
        "cats": {},
        "firmware_aarch64": {
            "code": "/build/aarch64/QEMU_EFI.fd", "code_sha256": "00",
            "vars": "/build/aarch64/QEMU_VARS.fd", "vars_sha256": "00",
            "input_hash": "", "inputs": {}, "clean_build_seconds": 0.0
        },
        "varstores": {
            "blank.fd": file("/build/aarch64/varstores/blank.fd"),
            "custom.fd": file("/build/aarch64/varstores/custom.fd"),
            "microsoft.fd": file("/build/aarch64/varstores/microsoft.fd")
        }
    }))
    .unwrap()
}

/// One deployment's boot: its writes and QEMU command line.
fn render_one(
    dep: &Deployment,
    manifest: &Manifest,
    opts: &BootOptions,
    frontend: Frontend,
    qmp: Option<&Path>,
) -> String {
    let scratch = Path::new("/scratch");
    let (media, writes) = qemu::plan(dep, manifest, opts, scratch).unwrap();
    let mut out = String::new();
    for w in &writes {
        match w {
            MediaWrite::Copy { from, to } => {
                out.push_str(&format!("# copy {} -> {}\n", from.display(), to.display()))
            }
            MediaWrite::Uki {
                image,
                stage1,
                to,
                esp_disk,
            } => out.push_str(&format!(
                "# write {}UKI {image:?}{} -> {}\n",
                if *stage1 { "stage-1 " } else { "" },
                if *esp_disk { " on an ESP disk" } else { "" },
                to.display()
            )),
        }
    }
    let argv = qemu::argv(dep, &media, opts, frontend, qmp);
    out.push_str(dep.arch.qemu_binary());
    for a in argv {
        if a.starts_with('-') {
            out.push_str(" \\\n   ");
        }
        out.push(' ');
        out.push_str(&a);
    }
    out.push_str("\n\n");
    out
}

/// The test suite's boots (headless, QMP) of every deployment of `arch`.
fn render_arch(arch: Arch, manifest: &Manifest) -> String {
    let opts = BootOptions {
        host: HostOs::Linux,
        ..BootOptions::default()
    };
    let qmp = Path::new("/scratch/qmp.sock");
    let mut out = String::new();
    for dep in DEPLOYMENTS.iter().filter(|d| d.arch == arch) {
        out.push_str(&format!("## {}\n", dep.name));
        out.push_str(&render_one(
            dep,
            manifest,
            &opts,
            Frontend::Headless,
            Some(qmp),
        ));
    }
    out
}

fn render() -> String {
    render_arch(Arch::X86_64, &manifest())
}

/// The arm64 matrix under TCG, plus sb-pass with an swtpm (tpm-tis-device on virt).
fn render_aarch64() -> String {
    let manifest = manifest_aarch64();
    let mut out = render_arch(Arch::Aarch64, &manifest);
    let dep =
        nekos_packaging::deployments::find("aarch64,fw,kernel,initramfs,uki,sb-pass").unwrap();
    let opts = BootOptions {
        host: HostOs::Linux,
        tpm: Some("/scratch/swtpm.ctrl".into()),
        ..BootOptions::default()
    };
    out.push_str(&format!("## {} with swtpm\n", dep.name));
    out.push_str(&render_one(
        dep,
        &manifest,
        &opts,
        Frontend::Headless,
        Some(Path::new("/scratch/qmp.sock")),
    ));
    out
}

/// What `cargo nekos run` starts on a Mac for each arm64 deployment: HVF (the default there),
/// the host CPU, a Cocoa window, the serial line on the terminal.
fn render_aarch64_hvf() -> String {
    let manifest = manifest_aarch64();
    let mut out = String::new();
    for dep in DEPLOYMENTS.iter().filter(|d| d.arch == Arch::Aarch64) {
        let host = HostOs::Macos;
        let opts = BootOptions {
            host,
            accel: Accel::default_for(dep.arch, host),
            ..BootOptions::default()
        };
        let frontend = Frontend::Interactive {
            window: host.has_window(false),
        };
        out.push_str(&format!("## {} on macOS\n", dep.name));
        out.push_str(&render_one(dep, &manifest, &opts, frontend, None));
    }
    out
}

fn assert_golden(file: &str, got: &str) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(file);
    if std::env::var_os("NEKOS_BLESS").is_some() {
        std::fs::write(&golden, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "QEMU command lines differ from {} at line {}:\n  got:  {:?}\n  want: {:?}\n\
             (if intended: NEKOS_BLESS=1 cargo test -p nekos-packaging --test it qemu_argv)",
            golden.display(),
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[test]
fn every_deployments_qemu_command_line_is_the_golden_one() {
    assert_golden("qemu-argv.txt", &render());
}

#[test]
fn every_arm64_deployments_qemu_command_line_is_the_golden_one() {
    assert_golden("qemu-argv-aarch64.txt", &render_aarch64());
}

#[test]
fn the_mac_hvf_command_line_is_the_golden_one() {
    assert_golden("qemu-argv-aarch64-hvf.txt", &render_aarch64_hvf());
}

/// arm64 boots on virt with PL011's console last, pflash for the firmware (code read-only,
/// the store a per-boot copy), never x86's devices.
#[test]
fn arm64_command_lines_use_virt_devices_only() {
    for text in [render_aarch64(), render_aarch64_hvf()] {
        for block in text.split("## ").filter(|b| !b.is_empty()) {
            assert!(block.contains("qemu-system-aarch64"), "{block}");
            assert!(block.contains("-M virt"), "{block}");
            for x86 in ["-vga", "uefi-vars-x64", "-bios", "tpm-tis,", "-M pc"] {
                assert!(!block.contains(x86), "{x86} in\n{block}");
            }
            if block.contains("-append") {
                assert!(block.trim_end().ends_with("console=ttyAMA0"), "{block}");
            }
            if block.contains("if=pflash") {
                assert!(
                    block.contains(
                        "if=pflash,format=raw,unit=0,readonly=on,file=/build/aarch64/QEMU_EFI.fd"
                    ),
                    "{block}"
                );
                assert!(
                    block.contains("# copy /build/aarch64/varstores/")
                        && block.contains("if=pflash,format=raw,unit=1,file=/scratch/vars.fd"),
                    "{block}"
                );
            }
            let screen = block.contains("virtio-gpu-pci");
            assert_eq!(screen, block.contains("virtio-keyboard-pci"), "{block}");
        }
    }
    let hvf = render_aarch64_hvf();
    for block in hvf.split("## ").filter(|b| !b.is_empty()) {
        assert!(
            block.contains("-accel hvf")
                && block.contains("-cpu host")
                && block.contains("virt,highmem=on"),
            "{block}"
        );
    }
}

/// The pv-vars firmware never appears without its variable device, in any deployment.
#[test]
fn the_pv_vars_firmware_always_comes_with_its_variable_device() {
    let text = render();
    for block in text.split("## ").filter(|b| !b.is_empty()) {
        let bios = block.contains("-bios /build/OVMF.pv-vars.fd");
        let device = block.contains("-device uefi-vars-x64,jsonfile=/scratch/vars.json");
        assert_eq!(bios, device, "{block}");
    }
}
