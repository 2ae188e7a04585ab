//! Boots the raw custom-key variable store (packaging/src/varstore) with Debian's SMM
//! Secure Boot OVMF (`OVMF_CODE_4M.secboot.fd`, TCG): a UKI signed with the test db key
//! boots with Secure Boot enforced, an unsigned one is refused ("Access Denied"); the
//! Microsoft store refuses the NekOS-signed UKI; the blank store boots it with Secure Boot off.
//! Needs a built kernel (~/.cache/nekos/kernel-*/bzImage, from `cargo nekos build`); without
//! one it only says so.

use nekos_packaging::varstore::{self, Preset};
use nekos_packaging::{authenticode, keys, uki};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEED: &str = "6e656b6f732d76617273746f72652d626f6f74"; // "nekos-varstore-boot"
const SECBOOT_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-varstore-boot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn built_kernel() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(nekos_packaging::cache::cache_root())
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("kernel-"))
        .map(|e| e.path().join("bzImage"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Boots `efi` as the removable-media loader with `vars`; returns the serial output once it
/// contains any of `until` (or the time runs out).
fn boot(dir: &Path, efi: &[u8], vars: &[u8], until: &[&str], limit: Duration) -> String {
    let esp = dir.join("esp");
    std::fs::create_dir_all(esp.join("EFI/BOOT")).unwrap();
    std::fs::write(esp.join("EFI/BOOT/BOOTX64.EFI"), efi).unwrap();
    let vars_file = dir.join("vars.fd");
    std::fs::write(&vars_file, vars).unwrap();
    let serial = dir.join("serial.log");
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35,smm=on,accel=tcg", "-m", "512", "-smp", "1"])
        .args(["-global", "driver=cfi.pflash01,property=secure,value=on"])
        .args(["-global", "ICH9-LPC.disable_s3=1"])
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={SECBOOT_CODE}"
        ))
        .arg("-drive")
        .arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars_file.display()
        ))
        .arg("-drive")
        .arg(format!(
            "file=fat:{},format=raw,if=virtio,readonly=on",
            esp.display()
        ))
        .args([
            "-display",
            "none",
            "-nic",
            "none",
            "-no-reboot",
            "-vga",
            "none",
        ])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 (package qemu-system-x86)");
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(500));
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
    for line in text.lines().filter(|l| {
        [
            "Secure boot",
            "secureboot",
            "Access Denied",
            "Linux version",
            "BdsDxe",
        ]
        .iter()
        .any(|k| l.contains(k))
    }) {
        eprintln!("serial: {}", line.trim());
    }
    eprintln!("({:.1} s)", start.elapsed().as_secs_f64());
    text
}

#[test]
fn custom_raw_store_enforces_secure_boot_in_debian_secboot_ovmf() {
    let Some(kernel) = built_kernel() else {
        eprintln!("NOTE: no built kernel (~/.cache/nekos/kernel-*/bzImage): boot test skipped");
        return;
    };
    assert!(
        Path::new(SECBOOT_CODE).is_file(),
        "{SECBOOT_CODE} missing: install Debian's ovmf (packaging/host-setup.sh does)"
    );
    let dir = tmp("custom");
    let keys_dir = dir.join("keys");
    let h = keys::generate_hierarchy(Some(&hex::decode(SEED).unwrap())).unwrap();
    keys::write_hierarchy(&keys_dir, &h, true).unwrap();
    let vars = varstore::build(&Preset::Custom(keys_dir.clone()))
        .unwrap()
        .to_raw_4m()
        .unwrap();

    let linux = std::fs::read(&kernel).unwrap();
    let unsigned = uki::build_nekos_uki(
        &linux,
        &[0u8; 512],
        "console=ttyS0 panic=-1 earlyprintk=ttyS0",
    )
    .unwrap();
    let signer = keys::load_db_signer(&keys_dir).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();

    let limit = Duration::from_secs(
        std::env::var("NEKOS_BOOT_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    let ok = boot(
        &dir.join("signed"),
        &signed,
        &vars,
        &[
            "Secure boot enabled",
            "Secure boot disabled",
            "Access Denied",
        ],
        limit,
    );
    assert!(
        ok.contains("Linux version") && ok.contains("Secure boot enabled"),
        "signed UKI did not boot with Secure Boot on:\n{ok}"
    );
    let denied = boot(
        &dir.join("unsigned"),
        &unsigned,
        &vars,
        &["Access Denied", "Linux version"],
        limit,
    );
    assert!(
        denied.contains("Access Denied") && !denied.contains("Linux version"),
        "unsigned UKI was not refused:\n{denied}"
    );
    // The Microsoft store refuses the NekOS-signed UKI (the NekOS db key is not in its db)…
    let ms_vars = varstore::build(&Preset::Microsoft)
        .unwrap()
        .to_raw_4m()
        .unwrap();
    let ms = boot(
        &dir.join("ms"),
        &signed,
        &ms_vars,
        &["Access Denied", "Linux version"],
        limit,
    );
    assert!(
        ms.contains("Access Denied") && !ms.contains("Linux version"),
        "the Microsoft store let a NekOS-signed UKI through:\n{ms}"
    );
    // …and the blank store boots anything, with Secure Boot off.
    let blank_vars = varstore::build(&Preset::Blank)
        .unwrap()
        .to_raw_4m()
        .unwrap();
    let blank = boot(
        &dir.join("blank"),
        &unsigned,
        &blank_vars,
        &[
            "Secure boot enabled",
            "Secure boot disabled",
            "Access Denied",
        ],
        limit,
    );
    assert!(
        blank.contains("Linux version") && blank.contains("Secure boot disabled"),
        "unsigned UKI did not boot with the blank store:\n{blank}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
