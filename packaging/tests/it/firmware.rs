//! The firmware's inputs are checked before use (every bad input names its file), the nine
//! patches are downloaded by commit id from the project's own local HTTPS server (never the
//! internet) and refused when they differ, and the build outputs that must be reproducible are:
//! variable stores and ESP disk images. (Firmware reproducibility itself takes two ~10-minute
//! builds: `cargo nekos repro firmware`, recorded in firmware/README.md.)

use crate::common::*;
use nekos_packaging::firmware;
use std::path::PathBuf;

fn workspace() -> PathBuf {
    std::env::var("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
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
        p.sha256_body = p.sha256.clone();
    }
    lock
}

#[test]
fn the_lock_pins_nine_patches_and_both_tarballs() {
    let lock = firmware::read_lock(&workspace()).unwrap();
    assert_eq!(lock.patches.len(), 9);
    assert_eq!(
        lock.orig.sha256,
        "b63b6053d6d89c74d9291f9e96fde1584be99e6fb9c169ba9511505129d6b049"
    );
    for p in &lock.patches {
        assert_eq!(p.sha256.len(), 64, "{}", p.file);
        assert_eq!(p.commit.len(), 40, "{}: the full commit id", p.file);
        assert!(p.file.ends_with(".patch"));
    }
    assert!(
        lock.patch_source.url.starts_with("https://") && lock.patch_source.url.contains("{commit}")
    );
}

#[test]
fn a_lock_with_a_missing_or_malformed_field_is_refused_naming_it() {
    let text = std::fs::read_to_string(firmware::lock_path(&workspace())).unwrap();
    let lock = firmware::parse_lock(&text).unwrap();
    let commit = &lock.patches[2].commit;
    let short = text.replace(
        &format!("commit = \"{commit}\""),
        &format!("commit = \"{}\"", &commit[..10]),
    );
    let err = format!("{:#}", firmware::parse_lock(&short).unwrap_err());
    assert!(
        err.contains("commit")
            && err.contains(&commit[..10])
            && err.contains(&lock.patches[2].file),
        "{err}"
    );
    let body = &lock.patches[5].sha256_body;
    let missing = text.replace(&format!("sha256_body = \"{body}\"\n"), "");
    let err = format!("{:#}", firmware::parse_lock(&missing).unwrap_err());
    assert!(err.contains("sha256_body"), "{err}");
    let url = text.replace("{commit}.patch", "f25e3d0.patch");
    let err = format!("{:#}", firmware::parse_lock(&url).unwrap_err());
    assert!(
        err.contains("[patch_source] url") && err.contains("{commit}"),
        "{err}"
    );
}

/// A patch as `git format-patch` writes it, with a signature trailer for git `version`.
fn format_patch(commit: &str, version: &str) -> Vec<u8> {
    format!(
        "From {commit} Mon Sep 17 00:00:00 2001\nSubject: [PATCH] OvmfPkg: test\n\n---\n a | 1 +\n\n\
         diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -0,0 +1 @@\n+x\r\n-- \n{version}\n\n"
    )
    .into_bytes()
}

#[test]
fn the_signature_trailer_is_the_only_part_allowed_to_differ() {
    let commit = "f25e3d0d2c556723792bb216c030836604b4a89d";
    let local = format_patch(commit, "2.47.3");
    let body = firmware::strip_signature(&local).to_vec();
    assert!(
        body.ends_with(b"+x\r\n"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let p = firmware::PinnedPatch {
        file: "0001-test.patch".into(),
        commit: commit.into(),
        sha256: nekos_packaging::util::sha256_hex(&local),
        sha256_body: nekos_packaging::util::sha256_hex(&body),
    };
    // Another git version's signature: accepted by the body pin, and what is applied is the body.
    assert_eq!(
        firmware::check_patch(&p, &format_patch(commit, "2.43.0")).unwrap(),
        &body[..]
    );
    assert_eq!(firmware::check_patch(&p, &body).unwrap(), &body[..]);
    // Any change before the trailer is refused.
    let mut changed = format_patch(commit, "2.47.3");
    changed.splice(0..0, b"X".iter().copied());
    assert!(firmware::check_patch(&p, &changed).is_err());
    // A patch without a trailer is left as it is.
    assert_eq!(firmware::strip_signature(b"diff\n+a\n"), b"diff\n+a\n");
}

/// The project's HTTPS server on an ephemeral loopback port, serving `replies`, with a CA the
/// download client is given as its extra root.
fn download_server(
    replies: std::collections::BTreeMap<String, nekos_packaging::https_server::Reply>,
) -> (nekos_packaging::https_server::HttpsServer, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let pki = nekos_packaging::stboot::tls_pki("NekOS download test CA", now - 3600, now + 86400)
        .unwrap();
    let srv = nekos_packaging::https_server::HttpsServer::start_replies(
        "127.0.0.1:0".parse().unwrap(),
        pki.server_cert_pem.as_bytes(),
        pki.server_key_pem.as_bytes(),
        replies,
    )
    .unwrap();
    (srv, pki.ca_cert_pem)
}

/// A pinned patch (the `git format-patch` form of git 2.47.3) and the GitHub-like download of it
/// (another git version in the trailer).
fn pinned_test_patch() -> (firmware::PinnedPatch, Vec<u8>) {
    let commit = "9dd47eeea171c4073798b7afb095a5c9cb1d3a69";
    let local = format_patch(commit, "2.47.3");
    let p = firmware::PinnedPatch {
        file: "0004-OvmfPkg-add-new-VirtMmCommunicationDxe-driver.patch".into(),
        commit: commit.into(),
        sha256: nekos_packaging::util::sha256_hex(&local),
        sha256_body: nekos_packaging::util::sha256_hex(firmware::strip_signature(&local)),
    };
    (p, format_patch(commit, "2.39.5"))
}

fn fetch_from(
    srv: &nekos_packaging::https_server::HttpsServer,
    ca: &str,
    case: &str,
    sources: &std::path::Path,
) -> firmware::PatchFetch {
    firmware::PatchFetch {
        sources: sources.to_path_buf(),
        url_template: format!(
            "https://127.0.0.1:{}/{case}/{{commit}}.patch",
            srv.addr().port()
        ),
        extra_ca_pem: Some(ca.as_bytes().to_vec()),
    }
}

/// Nothing under the cache's directory for this patch: no file, no temporary, no directory.
fn assert_nothing_cached(fetch: &firmware::PatchFetch, p: &firmware::PinnedPatch) {
    let dir = fetch.cached_path(p).parent().unwrap().to_path_buf();
    assert!(
        !dir.exists(),
        "{} must not exist after a refused download",
        dir.display()
    );
}

#[test]
fn a_pinned_patch_is_downloaded_by_commit_checked_and_cached() {
    let (p, served) = pinned_test_patch();
    let (srv, ca) = download_server(
        [(
            format!("/good/{}.patch", p.commit),
            nekos_packaging::https_server::Reply::Body(served.clone()),
        )]
        .into(),
    );
    let dir = tmp("download-good");
    let fetch = fetch_from(&srv, &ca, "good", &dir.join("sources"));
    let path = fetch.patch(&p, &mut None).unwrap();
    assert_eq!(path, dir.join("sources").join(&p.sha256_body).join(&p.file));
    // The cache holds the body (no signature trailer) under its own sha256.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        firmware::strip_signature(&served)
    );
    assert_eq!(
        nekos_packaging::util::sha256_file(&path).unwrap(),
        p.sha256_body
    );
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1,
        "no temporary file left"
    );
    // The second time it comes from the cache: no new request.
    let before = srv.requests().len();
    assert_eq!(fetch.patch(&p, &mut None).unwrap(), path);
    assert_eq!(srv.requests().len(), before, "{:?}", srv.requests());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tampered_download_is_refused_naming_file_and_both_hashes_and_not_cached() {
    let (p, mut served) = pinned_test_patch();
    let at = served.windows(3).position(|w| w == b"+x\r").unwrap();
    served[at + 1] = b'y';
    let actual = nekos_packaging::util::sha256_hex(&served);
    let (srv, ca) = download_server(
        [(
            format!("/tampered/{}.patch", p.commit),
            nekos_packaging::https_server::Reply::Body(served),
        )]
        .into(),
    );
    let dir = tmp("download-tampered");
    let fetch = fetch_from(&srv, &ca, "tampered", &dir.join("sources"));
    let err = format!("{:#}", fetch.patch(&p, &mut None).unwrap_err());
    eprintln!("refused as expected: {err}");
    for want in [
        p.file.as_str(),
        p.sha256.as_str(),
        p.sha256_body.as_str(),
        actual.as_str(),
        "refused",
        "--edk2-patches",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert_nothing_cached(&fetch, &p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_commit_404_is_an_error_naming_file_and_url_and_nothing_is_cached() {
    let (p, _) = pinned_test_patch();
    let (srv, ca) = download_server(std::collections::BTreeMap::new());
    let dir = tmp("download-404");
    let fetch = fetch_from(&srv, &ca, "nowhere", &dir.join("sources"));
    let err = format!("{:#}", fetch.patch(&p, &mut None).unwrap_err());
    eprintln!("refused as expected: {err}");
    for want in [
        p.file.as_str(),
        p.commit.as_str(),
        "HTTP 404",
        "/nowhere/",
        "--edk2-patches",
    ] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert_nothing_cached(&fetch, &p);
    assert!(
        srv.requests().iter().any(|r| r.contains("404")),
        "{:?}",
        srv.requests()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_download_cut_off_half_way_is_an_error_and_nothing_is_cached() {
    let (p, served) = pinned_test_patch();
    let half = served[..served.len() / 2].to_vec();
    let reply = nekos_packaging::https_server::Reply::Truncated {
        body: half,
        content_length: served.len(),
    };
    let (srv, ca) = download_server([(format!("/cut/{}.patch", p.commit), reply)].into());
    let dir = tmp("download-cut");
    let fetch = fetch_from(&srv, &ca, "cut", &dir.join("sources"));
    let err = format!("{:#}", fetch.patch(&p, &mut None).unwrap_err());
    eprintln!("refused as expected: {err}");
    for want in [p.file.as_str(), "cannot download", "--edk2-patches"] {
        assert!(err.contains(want), "missing {want:?} in: {err}");
    }
    assert_nothing_cached(&fetch, &p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_with_a_certificate_from_another_ca_is_refused() {
    let (p, served) = pinned_test_patch();
    let (srv, _ca) = download_server(
        [(
            format!("/good/{}.patch", p.commit),
            nekos_packaging::https_server::Reply::Body(served),
        )]
        .into(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let other = nekos_packaging::stboot::tls_pki("another CA", now - 3600, now + 86400).unwrap();
    let dir = tmp("download-untrusted");
    let fetch = fetch_from(&srv, &other.ca_cert_pem, "good", &dir.join("sources"));
    let err = format!("{:#}", fetch.patch(&p, &mut None).unwrap_err());
    eprintln!("refused as expected: {err}");
    assert!(
        err.contains(&p.file) && err.contains("cannot download"),
        "{err}"
    );
    assert_nothing_cached(&fetch, &p);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repro_against_lists_differing_modules_and_tool_versions() {
    let text = "aa00000000000000000000000000000000000000000000000000000000000000  OvmfX64/X64/IScsiDxe.efi\n\
                bb00000000000000000000000000000000000000000000000000000000000000  OvmfX64/FV/OVMF.fd\n";
    let modules = firmware::parse_module_hashes(text).unwrap();
    assert_eq!(modules.len(), 2);
    assert!(firmware::parse_module_hashes("nothex  X64/a.efi\n").is_err());
    let art = |modules: std::collections::BTreeMap<String, String>, gcc: &str| {
        firmware::FirmwareArtifact {
            pv_vars: "a".into(),
            pv_vars_sha256: "11".repeat(32),
            amdsev: "b".into(),
            amdsev_sha256: "22".repeat(32),
            input_hash: String::new(),
            inputs: [
                ("gcc".to_string(), gcc.to_string()),
                ("nasm".to_string(), "NASM version 2.16.01".to_string()),
            ]
            .into(),
            modules,
            clean_build_seconds: 0.0,
            cached: true,
        }
    };
    let ours = art(modules.clone(), "gcc (Debian 12.2.0-14+deb12u1) 12.2.0");
    let (same, lines) = firmware::compare(&ours, &ours.clone());
    assert!(same, "{lines:?}");
    let mut theirs_modules = modules.clone();
    theirs_modules.insert("OvmfX64/X64/IScsiDxe.efi".into(), "cc".repeat(32));
    let mut theirs = art(theirs_modules, "gcc (Debian 14.2.0-19) 14.2.0");
    theirs.pv_vars_sha256 = "33".repeat(32);
    let (same, lines) = firmware::compare(&ours, &theirs);
    let report = lines.join("\n");
    assert!(!same);
    assert!(
        report.contains("OVMF.pv-vars.fd: DIFFERS") && report.contains("OVMF.amdsev.fd: same"),
        "{report}"
    );
    assert!(
        report.contains("OvmfX64/X64/IScsiDxe.efi") && !report.contains("OvmfX64/FV/OVMF.fd:"),
        "{report}"
    );
    assert!(
        report.contains("gcc (tool version)")
            && report.contains("14.2.0")
            && !report.contains("nasm"),
        "{report}"
    );
}

/// `firmware/reference-firmware.json` is what another machine checks its build against
/// (`cargo nekos repro --against`): it must be a firmware.json that command reads, name the
/// images `firmware/README.md` records, and be a build of the inputs pinned today (tool
/// versions aside: those are what the comparison reports).
#[test]
fn the_reference_firmware_json_is_a_build_of_todays_inputs_with_the_readmes_hashes() {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("firmware/reference-firmware.json")).unwrap();
    let reference: firmware::FirmwareArtifact = serde_json::from_str(&text).unwrap();
    let readme = std::fs::read_to_string(root.join("firmware/README.md")).unwrap();
    for (image, sha) in [
        ("OVMF.pv-vars.fd", &reference.pv_vars_sha256),
        ("OVMF.amdsev.fd", &reference.amdsev_sha256),
    ] {
        assert!(
            readme
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [image, sha]),
            "firmware/README.md does not record {image} {sha}"
        );
    }
    assert_eq!(
        reference.modules.get("OvmfX64/FV/OVMF.fd"),
        Some(&reference.pv_vars_sha256),
        "the pv-vars image is one of the recorded modules"
    );
    assert_eq!(
        reference.modules.get("AmdSev/FV/OVMF.fd"),
        Some(&reference.amdsev_sha256)
    );
    assert!(
        reference.modules.len() > 200,
        "{} modules",
        reference.modules.len()
    );
    let lock = firmware::read_lock(&root).unwrap();
    let today = firmware::inputs(&root, &lock).unwrap();
    for (name, value) in &today.inputs {
        if firmware::TOOL_INPUTS.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(
            reference.inputs.get(name),
            Some(value),
            "input {name} changed since reference-firmware.json was recorded: rebuild the \
             firmware, copy its firmware.json (paths reduced to file names) there and update \
             firmware/README.md"
        );
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
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("pins"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_patch_is_refused_naming_file_and_commit() {
    let dir = tmp("patch-missing");
    let lock = fake_patches(&dir);
    std::fs::remove_file(dir.join(&lock.patches[8].file)).unwrap();
    let err = format!("{:#}", firmware::verified_patches(&lock, &dir).unwrap_err());
    assert!(
        err.contains(&lock.patches[8].file) && err.contains(&lock.patches[8].commit),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tarball_with_a_different_sha256_is_refused() {
    let dir = tmp("tarball");
    let fake = dir.join("edk2_2025.02.orig.tar.xz");
    std::fs::write(&fake, b"not the edk2 source").unwrap();
    let lock = firmware::read_lock(&workspace()).unwrap();
    let err = format!(
        "{:#}",
        firmware::verify_pinned(&fake, &lock.orig.sha256, "the edk2 orig tarball").unwrap_err()
    );
    assert!(
        err.contains(&fake.display().to_string()) && err.contains(&lock.orig.sha256),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pinned_real_patches_verify_when_present() {
    // A patch directory (NEKOS_EDK2_PATCHES; CI sets it) is an input outside the repository;
    // when one is given, every file must match its pins.
    let root = workspace();
    let Some(dir) = firmware::patch_dir(None) else {
        eprintln!("NOTE: no NEKOS_EDK2_PATCHES; the patches come from the cache or a download");
        return;
    };
    let lock = firmware::read_lock(&root).unwrap();
    assert_eq!(firmware::verified_patches(&lock, &dir).unwrap().len(), 9);
}

#[test]
fn the_built_firmware_matches_its_manifest_entry() {
    let m = manifest();
    let fw = m.firmware().unwrap();
    assert_eq!(
        nekos_packaging::util::sha256_file(&fw.pv_vars).unwrap(),
        fw.pv_vars_sha256
    );
    assert_eq!(
        nekos_packaging::util::sha256_file(&fw.amdsev).unwrap(),
        fw.amdsev_sha256
    );
    for fd in [&fw.pv_vars, &fw.amdsev] {
        assert_eq!(
            std::fs::metadata(fd).unwrap().len(),
            4 << 20,
            "{}: a 4 MiB flash image",
            fd.display()
        );
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
        assert_eq!(
            std::fs::read(m.varstore_path(&format!("{name}.json")).unwrap()).unwrap(),
            a.to_json(),
            "{name}.json"
        );
        assert_eq!(
            std::fs::read(m.varstore_path(&format!("{name}.fd")).unwrap()).unwrap(),
            a.to_raw_4m().unwrap(),
            "{name}.fd"
        );
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
