//! The pinned systemd-stub (and, for tests, the pinned ukify), fetched from Debian trixie
//! with `apt-get download` (apt sources from packaging/host-setup.sh), checked against the
//! SHA-256s in `packaging/debian-packages.lock` (moved by `cargo nekos lock`), unpacked with
//! `dpkg-deb -x`, and cached under
//! `~/.cache/nekos/deb-<sha256 of the .deb>/` (or `$NEKOS_CACHE_DIR`, `$XDG_CACHE_HOME/nekos`).
//! Nothing is installed: trixie's systemd packages would conflict with bookworm's systemd.

use anyhow::{Context, Result, anyhow, bail};

use std::path::PathBuf;
use std::process::Command;

/// The package of the stub; its version, .deb SHA-256, the stub's path in it and the stub's
/// SHA-256 are the `[systemd-boot-efi]` table of `packaging/debian-packages.lock`.
pub const STUB_PACKAGE: &str = "systemd-boot-efi";
/// The judge of UKI layout in the tests: ukify from the same systemd release (`[systemd-ukify]`).
pub const UKIFY_PACKAGE: &str = "systemd-ukify";

/// The stub's pin (version, .deb and stub SHA-256s), read from the lock file.
pub fn stub_pin() -> Result<crate::lock::DebPin> {
    let pin = crate::lock::debian_pin(STUB_PACKAGE)?;
    if pin.file.is_none() || pin.file_sha256.is_none() {
        bail!(
            "{}: [{STUB_PACKAGE}] needs `file` and `file_sha256` (the stub is embedded in every UKI, so its bytes are pinned)",
            crate::lock::DEBIAN_LOCK
        );
    }
    Ok(pin)
}

/// ukify's pin, read from the lock file.
pub fn ukify_pin() -> Result<crate::lock::DebPin> {
    crate::lock::debian_pin(UKIFY_PACKAGE)
}

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
            // Not in the cache and not served (any more): name the pin, what apt serves and
            // what to run.
            let served = Command::new("apt-cache")
                .args(["policy", package])
                .output()
                .ok()
                .and_then(|o| {
                    crate::lock::parse_policy_field(
                        &String::from_utf8_lossy(&o.stdout),
                        "Candidate",
                    )
                })
                .unwrap_or_else(|| "nothing".into());
            bail!(
                "apt-get download {spec} failed: {}\n  {} pins {package} {version} (.deb sha256 {deb_sha256}), \
                 which is not in the cache ({}); apt's candidate is {served}.\n  \
                 Run packaging/host-setup.sh (apt sources) and apt-get update; if Debian has dropped {version}, \
                 move the pin with `cargo nekos lock`",
                String::from_utf8_lossy(&out.stderr).trim(),
                crate::lock::DEBIAN_LOCK,
                dir.display()
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
                "{} has SHA-256 {got}, expected {deb_sha256} (pinned in {}); if Debian re-uploaded \
                 {package} {version}, check why, then `cargo nekos lock`",
                deb.display(),
                crate::lock::DEBIAN_LOCK
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
    // DebPin::fetch_file checks the stub against its pinned SHA-256.
    stub_pin()?.fetch_file()
}

/// The bytes of the pinned stub.
pub fn load_pinned_stub() -> Result<Vec<u8>> {
    let p = pinned_stub_path()?;
    std::fs::read(&p).with_context(|| format!("reading stub {}", p.display()))
}

/// Path of the pinned `ukify` script (run it with /usr/bin/python3 and python3-pefile).
pub fn pinned_ukify_path() -> Result<PathBuf> {
    ukify_pin()?.fetch_file()
}
