//! The arm64 build (issue 16, items 1 and 2): the kernel fragment split, the arm64 kernel's
//! final .config, static aarch64 binaries, and the refusals (a missing cross compiler, an x86
//! binary where an arm64 one belongs). The tests that read built artifacts need the arm64
//! manifest that `cargo nekos test` (or `cargo nekos build --arch aarch64`) writes.

use crate::common::*;
use nekos_packaging::artifacts::{Manifest, manifest_path_for};
use nekos_packaging::kernel::{self, Arch};
use nekos_packaging::userland;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    std::env::var("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn arm64_manifest() -> Manifest {
    let path = manifest_path_for(&workspace(), Arch::Aarch64);
    let m = Manifest::load(&path)
        .unwrap_or_else(|e| panic!("{e:#}: build it with `cargo nekos build --arch aarch64`"));
    assert_eq!(
        m.arch,
        Arch::Aarch64,
        "{} is not an arm64 build",
        path.display()
    );
    m
}

/// What issue 16 names for the arm64 kernel, plus what x86 has that applies.
const ARM64_OPTIONS: &[&str] = &[
    "EFI_STUB",
    "EFIVAR_FS",
    "VIRTIO_PCI",
    "VIRTIO_MMIO",
    "DRM_VIRTIO_GPU",
    "DRM_VIRTIO_GPU_KMS",
    "VIRTIO_INPUT",
    "INPUT_EVDEV",
    "SERIAL_AMBA_PL011",
    "SERIAL_AMBA_PL011_CONSOLE",
    "TCG_TPM",
    "TCG_TIS",
    "CONFIGFS_FS",
    "KEXEC_FILE",
    "BLK_DEV_INITRD",
    "DEVTMPFS",
    "FILE_LOCKING",
    "UNIX",
    "SHMEM",
    "TMPFS",
    "DRM",
    "FRAMEBUFFER_CONSOLE",
    "PCI_HOST_GENERIC",
    "RTC_DRV_PL031",
    "ARM_GIC",
    "HW_RANDOM_VIRTIO",
];

#[test]
fn the_fragment_split_keeps_x86_64_and_sets_no_option_twice() {
    // The x86 set against the pre-split list is a unit test of kernel.rs; here: the public
    // entry point refuses nothing for either arch and the arm64 set has the named options.
    for arch in Arch::ALL {
        let (_, wanted) = kernel::fragment(&workspace(), arch).or_fail();
        let mut names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "{arch}: an option is set twice");
    }
    let (_, arm) = kernel::fragment(&workspace(), Arch::Aarch64).or_fail();
    for name in ARM64_OPTIONS {
        let full = format!("CONFIG_{name}");
        assert!(
            arm.iter()
                .any(|w| w.name == full && w.value.as_deref() == Some("y")),
            "{full} is not asked for on arm64"
        );
    }
}

#[test]
fn arm64_kernel_config_has_every_wanted_option() {
    let m = arm64_manifest();
    let k = m.kernel.as_ref().expect("the arm64 manifest has no kernel");
    let config = std::fs::read_to_string(&k.config).unwrap();
    let values = kernel::parse_dotconfig(&config);
    let (_, wanted) = kernel::fragment(&workspace(), Arch::Aarch64).or_fail();
    let dropped = kernel::dropped_options(&wanted, &values);
    assert!(dropped.is_empty(), "dropped: {dropped:?}");
    for name in ARM64_OPTIONS {
        assert_eq!(
            values.get(&format!("CONFIG_{name}")).map(String::as_str),
            Some("y"),
            "CONFIG_{name} in {}",
            k.config.display()
        );
    }
    assert_eq!(values.get("CONFIG_ARM64").map(String::as_str), Some("y"));
    // The image is an arm64 Linux Image: "ARM\x64" magic at 0x38 and, with the EFI stub,
    // a PE header for machine 0xaa64.
    let image = std::fs::read(&k.bzimage).unwrap();
    assert_eq!(&image[0x38..0x3c], b"ARM\x64", "{}", k.bzimage.display());
    nekos_packaging::pe::expect_machine(&image, Arch::Aarch64.pe_machine(), "Image").or_fail();
    assert_eq!(k.inputs.get("arch").map(String::as_str), Some("aarch64"));
}

#[test]
fn arm64_binaries_are_static_aarch64_elf() {
    let m = arm64_manifest();
    for name in ["nekos-init", "nekos-compositor", "nekos-viewer", "snpcheck"] {
        assert!(m.userland.contains_key(name), "{name} missing");
    }
    assert!(!m.userland.contains_key("nekos-stboot"));
    for (name, art) in &m.userland {
        userland::check_static_for(&art.path, Arch::Aarch64).or_fail();
        // The judge: readelf sees an AArch64 executable without interpreter or NEEDED.
        let out = Command::new("readelf")
            .args(["-h", "-l", "-d", "-W"])
            .arg(&art.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Machine:                           AArch64"),
            "{name}: {text}"
        );
        assert!(!text.contains("INTERP"), "{name} has an ELF interpreter");
        assert!(!text.contains("(NEEDED)"), "{name} has NEEDED entries");
        assert_eq!(
            art.inputs.get("target").map(String::as_str),
            Some("aarch64-unknown-linux-musl")
        );
    }
}

#[test]
fn a_missing_cross_compiler_is_refused_by_name() {
    // A PATH holding this host's own gcc and ld (what x86_64 needs) and no cross compiler.
    let dir = std::env::temp_dir().join(format!("nekos-nocross-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for tool in ["gcc", "ld"] {
        let _ = std::fs::remove_file(dir.join(tool));
        std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), dir.join(tool)).unwrap();
    }
    let e = kernel::toolchain_in(Arch::Aarch64, dir.as_os_str())
        .unwrap_err()
        .to_string();
    assert!(e.contains("aarch64-linux-gnu-gcc is not on PATH"), "{e}");
    assert!(e.contains("gcc-aarch64-linux-gnu"), "{e}");
    assert!(e.contains("arch aarch64"), "{e}");
    // The x86_64 kernel needs no cross compiler: the same PATH is enough for it.
    let x86 = kernel::toolchain_in(Arch::X86_64, dir.as_os_str());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(x86.or_fail(), ("gcc".to_string(), "ld".to_string()));
}

#[test]
fn an_x86_binary_where_arm64_is_expected_is_refused_naming_the_file() {
    // The x86 build's init when there is one, else any x86_64 ELF of this host.
    let x86: PathBuf = std::env::var("NEKOS_MANIFEST")
        .ok()
        .and_then(|p| Manifest::load(Path::new(&p)).ok())
        .and_then(|m| m.userland.get("nekos-init").map(|a| a.path.clone()))
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    let e = userland::check_static_for(&x86, Arch::Aarch64)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&x86.display().to_string()), "{e}");
    assert!(
        e.contains("x86_64 (EM 62), expected aarch64 (EM 183) for arch aarch64"),
        "{e}"
    );
}
