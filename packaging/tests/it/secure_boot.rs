//! The Secure Boot matrix on the project's firmware (OVMF with QEMU_PV_VARS, TCG, each boot
//! with a fresh copy of its uefi-vars JSON store): every `fw,…` deployment reaches the outcome
//! it promises, the UKI both from the ESP disk image and through `-kernel`. Refusals pass only
//! on the firmware's refusal line and fail if the kernel ever starts; the attack deployments
//! are named after the attack they model.

use crate::common::*;
use nekos_packaging::deployments::{
    self, FIRMWARE_GAVE_UP, LEGACY_LOADER, Medium, REFUSED_FROM_DISK, REFUSED_FROM_KERNEL_ARG,
};
use nekos_packaging::qemu::{BootOptions, Vm};
use serde_json::Value;

fn start(test: &str, deployment: &str, medium: Option<Medium>) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        log: Some(log_path(test)),
        medium,
        ..BootOptions::default()
    };
    Vm::start(dep, &manifest(), &opts).or_fail()
}

/// The variables of a uefi-vars JSON store by name, as (guid, attr, data).
fn variables(json: &[u8]) -> std::collections::BTreeMap<String, (String, u64, String)> {
    let v: Value = serde_json::from_slice(json).unwrap();
    v["variables"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .map(|var| {
                    (
                        var["name"].as_str().unwrap().to_string(),
                        (
                            var["guid"].as_str().unwrap().to_string(),
                            var["attr"].as_u64().unwrap(),
                            var["data"].as_str().unwrap().to_string(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// After a boot, the store QEMU wrote back keeps PK, KEK, db and dbx exactly as enrolled.
fn assert_keys_unchanged(vm: &Vm, store: &str) {
    let template =
        std::fs::read(manifest().varstore_path(&format!("{store}.json")).unwrap()).unwrap();
    let written = std::fs::read(vm.scratch_dir().join("vars.json")).unwrap();
    let (before, after) = (variables(&template), variables(&written));
    for name in ["PK", "KEK", "db", "dbx"] {
        assert_eq!(
            before.get(name),
            after.get(name),
            "{store} store: {name} changed during the boot"
        );
    }
    if store != "blank" {
        assert!(after.contains_key("PK"), "{store} store lost its PK");
    }
}

/// Boots to cats: init's `secureboot=` as expected, the stub (never OVMF's legacy loader)
/// started the kernel, the screen shows the photo the viewer announces.
fn assert_cats(test: &str, deployment: &str, medium: Option<Medium>) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let vm = start(test, deployment, medium);
    vm.wait_for("nekos: boot ok", BOOT).or_fail();
    let want = if dep.secure_boot() == Some(true) {
        "on"
    } else {
        "off"
    };
    vm.wait_for(&format!("nekos: secureboot={want}"), STEP)
        .or_fail();
    if want == "on" {
        vm.wait_for("EFI stub: UEFI Secure Boot is enabled.", STEP)
            .or_fail();
    }
    vm.wait_for("nekos: display: compositor started", BOOT)
        .or_fail();
    showing(&vm, 0);
    wait_for_announced_picture(&vm, 0, test);
    vm.assert_absent(LEGACY_LOADER).or_fail();
    vm.assert_absent("Kernel panic").or_fail();
    vm
}

/// The firmware refuses: its refusal line for this medium, then it gives up on every boot
/// option; the kernel never starts.
fn assert_refused(test: &str, deployment: &str, medium: Medium) {
    let vm = start(test, deployment, Some(medium));
    vm.wait_for(FIRMWARE_GAVE_UP, BOOT).or_fail();
    let refusal = match medium {
        Medium::EspDisk => REFUSED_FROM_DISK,
        Medium::KernelArg => REFUSED_FROM_KERNEL_ARG,
    };
    vm.wait_for(refusal, STEP).or_fail();
    // With -kernel OVMF also tries its legacy loader after the refusal; that attempt must
    // fail too. Any kernel output at all means an unapproved image ran.
    for started in ["EFI stub", "Linux version", "nekos: init started"] {
        vm.assert_absent(started).or_fail();
    }
}

#[test]
fn fw_kernel_initramfs_without_uki_shows_cats() {
    assert_cats("fw-kernel-initramfs", "fw,kernel,initramfs", None);
}

#[test]
fn fw_uki_blank_store_boots_with_secure_boot_off_from_esp_disk() {
    let vm = assert_cats(
        "fw-uki-esp",
        "fw,kernel,initramfs,uki",
        Some(Medium::EspDisk),
    );
    assert_keys_unchanged(&vm, "blank");
}

#[test]
fn fw_uki_blank_store_boots_with_secure_boot_off_from_kernel_arg() {
    assert_cats(
        "fw-uki-kernel-arg",
        "fw,kernel,initramfs,uki",
        Some(Medium::KernelArg),
    );
}

#[test]
fn sb_pass_boots_signed_uki_from_esp_disk_and_keeps_the_keys() {
    let vm = assert_cats(
        "sb-pass-esp",
        "fw,kernel,initramfs,uki,sb-pass",
        Some(Medium::EspDisk),
    );
    assert_keys_unchanged(&vm, "custom");
}

#[test]
fn sb_pass_boots_signed_uki_from_kernel_arg_and_keeps_the_keys() {
    let vm = assert_cats(
        "sb-pass-kernel-arg",
        "fw,kernel,initramfs,uki,sb-pass",
        Some(Medium::KernelArg),
    );
    assert_keys_unchanged(&vm, "custom");
}

#[test]
fn sb_pass_virtio_gpu_shows_cats() {
    assert_cats(
        "sb-pass-virtio",
        "fw,kernel,initramfs,uki,sb-pass,virtio",
        None,
    );
}

#[test]
fn sb_fail_microsoft_store_refuses_the_nekos_signed_uki() {
    assert_refused(
        "sb-fail-esp",
        "fw,kernel,initramfs,uki,sb-fail",
        Medium::EspDisk,
    );
    assert_refused(
        "sb-fail-kernel-arg",
        "fw,kernel,initramfs,uki,sb-fail",
        Medium::KernelArg,
    );
}

#[test]
fn sb_tampered_initrd_is_refused() {
    assert_refused(
        "sb-tampered-initrd-esp",
        "fw,kernel,initramfs,uki,sb-tampered-initrd",
        Medium::EspDisk,
    );
    assert_refused(
        "sb-tampered-initrd-kernel-arg",
        "fw,kernel,initramfs,uki,sb-tampered-initrd",
        Medium::KernelArg,
    );
}

#[test]
fn sb_wrong_key_is_refused() {
    assert_refused(
        "sb-wrong-key-esp",
        "fw,kernel,initramfs,uki,sb-wrong-key",
        Medium::EspDisk,
    );
    assert_refused(
        "sb-wrong-key-kernel-arg",
        "fw,kernel,initramfs,uki,sb-wrong-key",
        Medium::KernelArg,
    );
}

#[test]
fn sb_unsigned_is_refused() {
    assert_refused(
        "sb-unsigned-esp",
        "fw,kernel,initramfs,uki,sb-unsigned",
        Medium::EspDisk,
    );
    assert_refused(
        "sb-unsigned-kernel-arg",
        "fw,kernel,initramfs,uki,sb-unsigned",
        Medium::KernelArg,
    );
}

#[test]
fn the_attack_images_differ_from_the_signed_uki_only_as_the_attack_says() {
    use nekos_packaging::attacks;
    use nekos_packaging::deployments::UkiImage;
    let m = manifest();
    let signed = attacks::uki_bytes(UkiImage::Signed, &m, "production").unwrap();
    let tampered = attacks::uki_bytes(UkiImage::TamperedInitrd, &m, "production").unwrap();
    assert_eq!(signed.len(), tampered.len());
    let diffs: Vec<usize> = (0..signed.len())
        .filter(|&i| signed[i] != tampered[i])
        .collect();
    assert_eq!(diffs.len(), 1, "exactly one byte flipped");
    let pe = nekos_packaging::pe::PeFile::parse(&signed).unwrap();
    let initrd = pe.section(".initrd").unwrap();
    let start = initrd.pointer_to_raw_data as usize;
    assert!(
        (start..start + initrd.size_of_raw_data as usize).contains(&diffs[0]),
        "the flipped byte is in .initrd"
    );
    // The wrong-key image carries a valid signature — just not one db trusts.
    let wrong = attacks::uki_bytes(UkiImage::WrongKey, &m, "production").unwrap();
    let unsigned = attacks::uki_bytes(UkiImage::Unsigned, &m, "production").unwrap();
    assert!(
        nekos_packaging::pe::PeFile::parse(&wrong)
            .unwrap()
            .is_signed(&wrong)
            .unwrap()
    );
    assert_eq!(
        nekos_packaging::authenticode::authenticode_sha256(&wrong).unwrap(),
        nekos_packaging::authenticode::authenticode_sha256(&unsigned).unwrap()
    );
    assert_ne!(wrong, signed);
    // Deterministic: the attack images are the same every time.
    assert_eq!(
        wrong,
        attacks::uki_bytes(UkiImage::WrongKey, &m, "production").unwrap()
    );
}

#[test]
fn the_launcher_never_starts_the_pv_vars_firmware_without_its_variable_device() {
    let m = manifest();
    let dir = std::env::temp_dir().join(format!("nekos-sb-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fw = m.firmware().unwrap().pv_vars.to_string_lossy().into_owned();
    // The x86 build's deployments: ArmVirtQemu has no paravirtual variables (and boots from
    // its own manifest).
    for dep in deployments::DEPLOYMENTS
        .iter()
        .filter(|d| d.arch == deployments::Arch::X86_64)
    {
        let cmd = nekos_packaging::qemu::command(
            dep,
            &m,
            &BootOptions::default(),
            nekos_packaging::qemu::Frontend::Headless,
            &dir,
            None,
        )
        .unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let uses_fw = args.iter().any(|a| a == &fw);
        let has_device = args
            .iter()
            .any(|a| a.starts_with("uefi-vars-x64,jsonfile="));
        assert_eq!(uses_fw, has_device, "{}: {args:?}", dep.name);
        assert_eq!(
            uses_fw,
            dep.name.starts_with("fw,"),
            "{}: every fw,… deployment uses the project's firmware",
            dep.name
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
