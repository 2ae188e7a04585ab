//! QEMU's command line for every deployment, golden: `qemu::argv` is a pure function of the
//! deployment and its prepared boot media, so the whole matrix is checked without booting.
//! After an intended change, `NEKOS_BLESS=1 cargo test -p nekos-packaging --test it qemu_argv`
//! rewrites `golden/qemu-argv.txt`; review its diff like code.

use nekos_packaging::artifacts::Manifest;
use nekos_packaging::deployments::DEPLOYMENTS;
use nekos_packaging::qemu::{self, BootOptions, Frontend, MediaWrite};
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

fn render() -> String {
    let manifest = manifest();
    let scratch = Path::new("/scratch");
    let opts = BootOptions::default();
    let mut out = String::new();
    for dep in DEPLOYMENTS {
        let (media, writes) = qemu::plan(dep, &manifest, &opts, scratch).unwrap();
        out.push_str(&format!("## {}\n", dep.name));
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
        let qmp = scratch.join("qmp.sock");
        let argv = qemu::argv(dep, &media, &opts, Frontend::Headless, Some(&qmp));
        out.push_str("qemu-system-x86_64");
        for a in argv {
            if a.starts_with('-') {
                out.push_str(" \\\n   ");
            }
            out.push(' ');
            out.push_str(&a);
        }
        out.push_str("\n\n");
    }
    out
}

#[test]
fn every_deployments_qemu_command_line_is_the_golden_one() {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden/qemu-argv.txt");
    let got = render();
    if std::env::var_os("NEKOS_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
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
