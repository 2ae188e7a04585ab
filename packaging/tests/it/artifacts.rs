//! The built artifacts themselves: static binaries, what each initramfs variant holds,
//! no host paths, and reproducibility from clean.

use crate::common::*;
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
        let out = Command::new("readelf")
            .args(["-l", "-d", "-W"])
            .arg(&art.path)
            .output()
            .unwrap();
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
        for path in [
            "init",
            "bin/nsh -> /init",
            "etc/os-release",
            "usr/share/nekos/cats",
        ] {
            assert!(listing.contains(path), "{path} missing:\n{listing}");
        }
        let console = listing
            .lines()
            .find(|l| l.ends_with(" dev/console"))
            .expect("dev/console");
        assert!(
            console.starts_with("crw-------") && console.contains("5,"),
            "{console}"
        );
        assert!(
            listing
                .lines()
                .all(|l| l.contains(" root ") || l.contains(" 0 ")),
            "owner is not root:\n{listing}"
        );
    }
    assert!(
        !prod.contains("bin/crashloop") && !prod.contains("bin/orphans"),
        "{prod}"
    );
    assert!(
        test.contains("bin/crashloop") && test.contains("bin/orphans"),
        "{test}"
    );
}

#[test]
fn no_host_paths_in_guest_binaries() {
    let m = manifest();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let workspace =
        std::env::var("NEKOS_WORKSPACE").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
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

/// The regular files of a newc archive (gzip or zstd compressed, or not), path → bytes.
fn cpio_files(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let raw = std::fs::read(path).unwrap();
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(&raw[..]).unwrap()
    } else {
        raw
    };
    let hex = |at: usize| {
        u32::from_str_radix(std::str::from_utf8(&data[at..at + 8]).unwrap(), 16).unwrap() as usize
    };
    let pad4 = |n: usize| (n + 3) & !3;
    let mut files = std::collections::BTreeMap::new();
    let mut at = 0;
    loop {
        assert_eq!(
            &data[at..at + 6],
            b"070701",
            "newc header at byte {at} of {}",
            path.display()
        );
        let (mode, size, namesize) = (hex(at + 14), hex(at + 54), hex(at + 94));
        let name = std::str::from_utf8(&data[at + 110..at + 110 + namesize - 1])
            .unwrap()
            .to_string();
        let start = pad4(at + 110 + namesize);
        if name == "TRAILER!!!" {
            return files;
        }
        if mode & 0o170000 == 0o100000 {
            files.insert(name, data[start..start + size].to_vec());
        }
        at = pad4(start + size);
    }
}

#[test]
fn the_plain_cargo_build_gives_the_binaries_of_the_production_initramfs() {
    // The userland a user builds with the plain command at the workspace root (no -p, no
    // flags from the environment; the flags are in .cargo/config.toml and the profiles) is
    // byte for byte what the production image holds.
    let m = manifest();
    let root = std::env::var("NEKOS_WORKSPACE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(&root).args([
        "build",
        "--release",
        "--target",
        "x86_64-unknown-linux-musl",
    ]);
    for var in nekos_packaging::userland::FOREIGN_BUILD_ENV {
        cargo.env_remove(var);
    }
    let out = cargo.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built =
        nekos_packaging::artifacts::target_dir(&root).join("x86_64-unknown-linux-musl/release");
    let image = cpio_files(m.initramfs_path("production").unwrap());
    for (bin, dest) in [
        ("nekos-init", "init"),
        ("nekos-compositor", "bin/compositor"),
        ("nekos-viewer", "bin/viewer"),
        ("snpcheck", "bin/snpcheck"),
    ] {
        let plain = std::fs::read(built.join(bin)).unwrap();
        let packed = image
            .get(dest)
            .unwrap_or_else(|| panic!("/{dest} missing from the production initramfs"));
        let sha = nekos_packaging::util::sha256_hex(&plain);
        assert!(
            &plain == packed,
            "{bin}: the plain build (sha256 {sha}) differs from /{dest} in the production initramfs (sha256 {})",
            nekos_packaging::util::sha256_hex(packed)
        );
        assert_eq!(
            m.userland[bin].sha256, sha,
            "{bin}: the manifest records other bytes"
        );
        eprintln!("{bin}: identical, sha256 {sha}");
    }
    // Stage 1 is a program of its own: the stage-1 image runs the production init (the
    // one `cargo test` builds and the image ships) and adds /bin/nekos-stboot.
    let st = m.stboot().unwrap();
    let stage1_image = cpio_files(&st.initramfs.path);
    assert!(
        stage1_image.get("init") == image.get("init"),
        "the stage-1 image's /init is not the production init"
    );
    let stage1 = std::fs::read(nekos_packaging::userland::stage1_program_path(&root)).unwrap();
    assert!(
        stage1_image.get("bin/nekos-stboot") == Some(&stage1),
        "the stage-1 image's /bin/nekos-stboot is not the built nekos-stboot"
    );
    assert!(!image.contains_key("bin/nekos-stboot"));
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
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
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
    std::fs::write(
        &fragment,
        "CONFIG_64BIT=y\nCONFIG_VIRT_DRIVERS=y\nCONFIG_SEV_GUEST=y\n",
    )
    .unwrap();
    let err = nekos_packaging::kernel::configure(&src, &fragment, &log_path)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&work);
    assert!(err.contains("CONFIG_SEV_GUEST=y"), "{err}");
    assert!(err.contains("AMD_MEM_ENCRYPT=not set"), "{err}");
}
