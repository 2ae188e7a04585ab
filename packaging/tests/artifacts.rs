//! The built artifacts themselves: static binaries, what each initramfs variant holds,
//! no host paths, and reproducibility from clean.

mod common;
use common::*;
use std::process::{Command, Stdio};

fn cpio_listing(path: &std::path::Path) -> String {
    let out = Command::new("cpio")
        .args(["-t", "-v", "--quiet", "-F"])
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .expect("cpio (Debian package cpio)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn userland_binaries_are_fully_static() {
    let m = manifest();
    assert!(m.userland.contains_key("nekos-init"));
    for (name, art) in &m.userland {
        nekos_packaging::userland::check_static(&art.path).or_fail();
        // The judge as well: readelf finds no interpreter and no NEEDED entry.
        let out = Command::new("readelf").args(["-l", "-d", "-W"]).arg(&art.path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("INTERP"), "{name} has an ELF interpreter");
        assert!(!text.contains("(NEEDED)"), "{name} has NEEDED entries");
    }
}

#[test]
fn production_initramfs_has_no_test_programs() {
    let m = manifest();
    let prod = cpio_listing(m.initramfs_path("production").unwrap());
    let test = cpio_listing(m.initramfs_path("test").unwrap());
    for listing in [&prod, &test] {
        for path in ["init", "bin/nsh -> /init", "etc/os-release", "usr/share/nekos/cats"] {
            assert!(listing.contains(path), "{path} missing:\n{listing}");
        }
        let console = listing.lines().find(|l| l.ends_with(" dev/console")).expect("dev/console");
        assert!(console.starts_with("crw-------") && console.contains("5,"), "{console}");
        assert!(listing.lines().all(|l| l.contains(" root ") || l.contains(" 0 ")), "owner is not root:\n{listing}");
    }
    assert!(!prod.contains("bin/crashloop") && !prod.contains("bin/orphans"), "{prod}");
    assert!(test.contains("bin/crashloop") && test.contains("bin/orphans"), "{test}");
}

#[test]
fn no_host_paths_in_guest_binaries() {
    let m = manifest();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let workspace = std::env::var("NEKOS_WORKSPACE").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    for (name, art) in &m.userland {
        let bytes = std::fs::read(&art.path).unwrap();
        for needle in [format!("{home}/.cargo"), workspace.clone()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{name} contains the host path {needle}"
            );
        }
    }
}

#[test]
fn initramfs_is_reproducible_from_two_clean_checkouts() {
    // Builds the userland and the production initramfs twice, from two copies of the
    // workspace in different directories with separate target dirs, and compares bytes.
    let out = Command::new(env!("CARGO_BIN_EXE_nekos"))
        .args(["repro", "initramfs"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reproducible: sha256 "), "{stdout}");
}

#[test]
fn unsatisfiable_kernel_option_names_its_unmet_dependency() {
    // SEV_GUEST without AMD_MEM_ENCRYPT: kconfig drops it silently; we must not.
    let work = std::env::temp_dir().join(format!("nekos-kconfig-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let log_path = work.join("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let src = nekos_packaging::kernel::unpack(&work, &log).or_fail();
    let fragment = work.join("bad.config");
    std::fs::write(&fragment, "CONFIG_64BIT=y\nCONFIG_VIRT_DRIVERS=y\nCONFIG_SEV_GUEST=y\n").unwrap();
    let err = nekos_packaging::kernel::configure(&src, &fragment, &log_path).unwrap_err().to_string();
    let _ = std::fs::remove_dir_all(&work);
    assert!(err.contains("CONFIG_SEV_GUEST=y"), "{err}");
    assert!(err.contains("AMD_MEM_ENCRYPT=not set"), "{err}");
}
