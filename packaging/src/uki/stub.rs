//! The pinned systemd-stub (and, for tests, the pinned ukify), fetched from Debian trixie
//! with `apt-get download` (apt sources from packaging/host-setup.sh), checked against
//! recorded SHA-256s, unpacked with `dpkg-deb -x`, and cached under
//! `~/.cache/nekos/deb-<sha256 of the .deb>/` (or `$NEKOS_CACHE_DIR`, `$XDG_CACHE_HOME/nekos`).
//! Nothing is installed: trixie's systemd packages would conflict with bookworm's systemd.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::{Context, Result, anyhow, bail};

use std::path::PathBuf;
use std::process::Command;

pub const STUB_PACKAGE: &str = "systemd-boot-efi";
pub const STUB_VERSION: &str = "257.13-1~deb13u1";
/// SHA-256 of `systemd-boot-efi_257.13-1~deb13u1_amd64.deb`.
pub const STUB_DEB_SHA256: &str =
    "390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933";
pub const STUB_PATH_IN_DEB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";
/// SHA-256 of that `linuxx64.efi.stub`.
pub const STUB_SHA256: &str = "9c623743834bb904a3cb941092cffc958c31230263ce896d332a75e9ec48aa85";

/// The judge of UKI layout in the tests: ukify from the same systemd release.
pub const UKIFY_PACKAGE: &str = "systemd-ukify";
pub const UKIFY_VERSION: &str = "257.13-1~deb13u1";
/// SHA-256 of `systemd-ukify_257.13-1~deb13u1_all.deb`.
pub const UKIFY_DEB_SHA256: &str =
    "78e1f7921f39d07512d848244b8b3e320e93e77d0b5778c211809e9f3b8b8284";
pub const UKIFY_PATH_IN_DEB: &str = "usr/bin/ukify";

/// `$NEKOS_CACHE_DIR`, else `$XDG_CACHE_HOME/nekos`, else `~/.cache/nekos`.
pub use crate::cache::cache_root;
use crate::util::sha256_file;

/// Downloads `package=version` (a Debian .deb) with apt-get, checks its SHA-256, unpacks it,
/// and returns the directory it was unpacked into (cached; an entry appears only complete).
pub fn fetch_deb(package: &str, version: &str, deb_sha256: &str) -> Result<PathBuf> {
    let root = cache_root();
    let dir = root.join(format!("deb-{deb_sha256}"));
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let work = root.join(format!(
        ".deb-{deb_sha256}.tmp-{}",
        crate::keys::unique_suffix()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let spec = format!("{package}={version}");
        let out = Command::new("apt-get")
            .args(["download", "-q", &spec])
            .current_dir(&work)
            .output()
            .with_context(|| format!("running apt-get download {spec} (is this Debian?)"))?;
        if !out.status.success() {
            bail!(
                "apt-get download {spec} failed (run packaging/host-setup.sh for the trixie apt source; \
                 if Debian has moved past {version}, update the pin in packaging/src/uki/stub.rs): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let deb = std::fs::read_dir(&work)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| anyhow!("apt-get download {spec} produced no .deb"))?;
        let got = sha256_file(&deb)?;
        if got != deb_sha256 {
            bail!(
                "{} has SHA-256 {got}, expected the pinned {deb_sha256}",
                deb.display()
            );
        }
        let tree = work.join("tree");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .status()
            .context("running dpkg-deb -x (package dpkg)")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
        std::fs::write(
            tree.join(".complete"),
            format!("{package} {version} {deb_sha256}\n"),
        )?;
        match std::fs::rename(&tree, &dir) {
            Ok(()) => Ok(()),
            // Someone else finished first.
            Err(_) if dir.join(".complete").exists() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("moving into {}", dir.display())),
        }
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    Ok(dir)
}

/// Path of the pinned systemd-stub 257 (`linuxx64.efi.stub`), fetched and cached on first use.
pub fn pinned_stub_path() -> Result<PathBuf> {
    let dir = fetch_deb(STUB_PACKAGE, STUB_VERSION, STUB_DEB_SHA256)?;
    let p = dir.join(STUB_PATH_IN_DEB);
    let got = sha256_file(&p)?;
    if got != STUB_SHA256 {
        bail!(
            "stub {} has SHA-256 {got}, expected the pinned {STUB_SHA256}",
            p.display()
        );
    }
    Ok(p)
}

/// The bytes of the pinned stub.
pub fn load_pinned_stub() -> Result<Vec<u8>> {
    let p = pinned_stub_path()?;
    std::fs::read(&p).with_context(|| format!("reading stub {}", p.display()))
}

/// Path of the pinned `ukify` script (run it with /usr/bin/python3 and python3-pefile).
pub fn pinned_ukify_path() -> Result<PathBuf> {
    let dir = fetch_deb(UKIFY_PACKAGE, UKIFY_VERSION, UKIFY_DEB_SHA256)?;
    Ok(dir.join(UKIFY_PATH_IN_DEB))
}
