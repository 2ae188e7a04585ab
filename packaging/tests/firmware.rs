//! The firmware's inputs are checked before use (every bad input names its file), and the
//! build outputs that must be reproducible are: variable stores and ESP disk images.
//! (Firmware reproducibility itself takes two ~12-minute builds: `cargo nekos repro
//! firmware`, recorded in firmware/README.md.)

mod common;
use common::*;
use nekos_packaging::firmware;
use std::path::PathBuf;

fn workspace() -> PathBuf {
    std::env::var("NEKOS_WORKSPACE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-fw-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A patch directory shaped like the real one, with files whose content the test controls,
/// and a lock that pins those contents.
fn fake_patches(dir: &std::path::Path) -> firmware::Lock {
    let mut lock = firmware::read_lock(&workspace()).unwrap();
    for (i, p) in lock.patches.iter_mut().enumerate() {
        let body = format!("patch {i}\n");
        std::fs::write(dir.join(&p.file), &body).unwrap();
        p.sha256 = nekos_packaging::util::sha256_hex(body.as_bytes());
    }
    lock
}

#[test]
fn the_lock_pins_nine_patches_and_both_tarballs() {
    let lock = firmware::read_lock(&workspace()).unwrap();
    assert_eq!(lock.patches.len(), 9);
    assert_eq!(lock.orig.sha256, "b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049");
    for p in &lock.patches {
        assert_eq!(p.sha256.len(), 64, "{}", p.file);
        assert!(p.file.ends_with(".patch"));
    }
}

#[test]
fn a_patch_with_a_different_sha256_is_refused_naming_the_file() {
    let dir = tmp("patch-changed");
    let lock = fake_patches(&dir);
    firmware::verified_patches(&lock, &dir).unwrap();
    let victim = dir.join(&lock.patches[4].file);
    std::fs::write(&victim, "patch 4 with one more line\n+evil\n").unwrap();
    let err = format!("{:#}", firmware::verified_patches(&lock, &dir).unwrap_err());
    assert!(err.contains(&victim.display().to_string()) && err.contains("pins"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_patch_is_refused_naming_file_and_commit() {
    let dir = tmp("patch-missing");
    let lock = fake_patches(&dir);
    std::fs::remove_file(dir.join(&lock.patches[8].file)).unwrap();
    let err = format!("{:#}", firmware::verified_patches(&lock, &dir).unwrap_err());
    assert!(err.contains(&lock.patches[8].file) && err.contains(&lock.patches[8].commit), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tarball_with_a_different_sha256_is_refused() {
    let dir = tmp("tarball");
    let fake = dir.join("edk2_2025.02.orig.tar.xz");
    std::fs::write(&fake, b"not the edk2 source").unwrap();
    let lock = firmware::read_lock(&workspace()).unwrap();
    let err = format!("{:#}", firmware::verify_pinned(&fake, &lock.orig.sha256, "the edk2 orig tarball").unwrap_err());
    assert!(err.contains(&fake.display().to_string()) && err.contains(&lock.orig.sha256), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pinned_real_patches_verify_when_present() {
    // The real patch directory (../shared/vendor/…) is an input outside the repository; when
    // it is where the build looks, every file must match its pin.
    let root = workspace();
    let Ok(dir) = firmware::patch_dir(&root, None) else {
        eprintln!("NOTE: no QEMU_PV_VARS patch directory on this machine; the firmware comes from the cache");
        return;
    };
    let lock = firmware::read_lock(&root).unwrap();
    assert_eq!(firmware::verified_patches(&lock, &dir).unwrap().len(), 9);
}

#[test]
fn the_built_firmware_matches_its_manifest_entry() {
    let m = manifest();
    let fw = m.firmware().unwrap();
    assert_eq!(nekos_packaging::util::sha256_file(&fw.pv_vars).unwrap(), fw.pv_vars_sha256);
    assert_eq!(nekos_packaging::util::sha256_file(&fw.amdsev).unwrap(), fw.amdsev_sha256);
    for fd in [&fw.pv_vars, &fw.amdsev] {
        assert_eq!(std::fs::metadata(fd).unwrap().len(), 4 << 20, "{}: a 4 MiB flash image", fd.display());
    }
    // The QEMU_PV_VARS driver is in the image: its module name is in a UI section (UTF-16).
    let image = std::fs::read(&fw.pv_vars).unwrap();
    let _ = image; // (the FV is compressed; the boot tests in secure_boot.rs are the proof)
}

#[test]
fn variable_stores_are_reproducible() {
    let m = manifest();
    let keys = nekos_packaging::keys::default_keys_dir();
    for name in ["blank", "custom", "microsoft"] {
        let a = nekos_packaging::measurements::preset_store(name, &keys).unwrap();
        let b = nekos_packaging::measurements::preset_store(name, &keys).unwrap();
        assert_eq!(a.to_json(), b.to_json(), "{name}.json");
        assert_eq!(a.to_raw_4m().unwrap(), b.to_raw_4m().unwrap(), "{name}.fd");
        // …and equal to what the build wrote.
        assert_eq!(std::fs::read(m.varstore_path(&format!("{name}.json")).unwrap()).unwrap(), a.to_json(), "{name}.json");
        assert_eq!(std::fs::read(m.varstore_path(&format!("{name}.fd")).unwrap()).unwrap(), a.to_raw_4m().unwrap(), "{name}.fd");
    }
}

#[test]
fn esp_disk_image_is_reproducible() {
    let m = manifest();
    let art = &m.esp["production-signed"];
    let uki = std::fs::read(m.uki_path("production", true).unwrap()).unwrap();
    let a = nekos_packaging::build::esp_image_bytes(&uki, m.source_date_epoch).unwrap();
    let b = nekos_packaging::build::esp_image_bytes(&uki, m.source_date_epoch).unwrap();
    assert_eq!(a, b);
    assert_eq!(nekos_packaging::util::sha256_hex(&a), art.sha256);
    assert_eq!(std::fs::read(&art.path).unwrap(), a);
    // A judge: mtools reads the UKI back out of the image, byte for byte.
    let dir = tmp("esp");
    let out = dir.join("BOOTX64.EFI");
    let st = std::process::Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(format!("{}@@1M", art.path.display()))
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&out).unwrap(), uki);
    let _ = std::fs::remove_dir_all(&dir);
}
