//! Each deployment boots in QEMU (TCG) to the outcome it promises.

use crate::common::*;
use std::time::Duration;

fn assert_root_fs_panic(deployment: &str) {
    let mut vm = boot(
        &format!("root-fs-panic-{deployment}"),
        deployment,
        "production",
        &[],
    );
    vm.wait_for("VFS: Unable to mount root fs", BOOT).or_fail();
    // panic=-1 reboots at once and -no-reboot turns that into QEMU exiting.
    vm.wait_exit(Duration::from_secs(30)).or_fail();
    vm.assert_absent("nekos: init started").or_fail();
}

#[test]
fn kernel_only_ends_in_root_fs_panic() {
    assert_root_fs_panic("kernel");
}

#[test]
fn fw_kernel_ends_in_root_fs_panic() {
    // The project's firmware hands the bare kernel (its EFI stub) the -append line.
    assert_root_fs_panic("fw,kernel");
}

#[test]
fn kernel_serialonly_ends_in_root_fs_panic() {
    assert_root_fs_panic("kernel,serialonly");
}

fn assert_boots(deployment: &str) -> nekos_packaging::qemu::Vm {
    let vm = boot_to_prompt(&format!("boot-{deployment}"), deployment, "production", &[]);
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
fn kernel_initramfs_boots_to_init() {
    assert_boots("kernel,initramfs");
}

#[test]
fn kernel_initramfs_virtio_boots_to_init() {
    assert_boots("kernel,initramfs,virtio");
}

#[test]
fn microvm_serialonly_boots_to_init() {
    let vm = assert_boots("microvm,kernel,initramfs,serialonly");
    vm.wait_for("nekos: display: no DRM device", STEP).or_fail();
}

#[test]
fn uki_boots_through_ovmf_with_its_embedded_cmdline() {
    let mut vm = boot_to_prompt("boot-uki", "fw,kernel,initramfs,uki", "production", &[]);
    vm.wait_for("nekos: secureboot=off", STEP).or_fail();
    let out = vm.run_at_prompt("cat /proc/cmdline", STEP).or_fail();
    let embedded = manifest().uki["production"].cmdline.clone();
    assert!(
        out.lines().any(|l| l.trim() == embedded),
        "/proc/cmdline is not the UKI's {embedded:?}:\n{out}"
    );
    // The stub, not OVMF's legacy loader, must have started the kernel.
    vm.assert_absent("Using legacy linux kernel loader")
        .or_fail();
    vm.assert_absent("Kernel panic").or_fail();
}
