//! The pinned systemd-stub (and, for tests, the pinned ukify), fetched from Debian trixie
//! with `apt-get download` (apt sources from packaging/host-setup.sh), checked against the
//! SHA-256s in `packaging/debian-packages.lock` (moved by `cargo nekos lock`), unpacked with
//! `dpkg-deb -x`, and cached under
//! `~/.cache/nekos/deb-<sha256 of the .deb>/` (or `$NEKOS_CACHE_DIR`, `$XDG_CACHE_HOME/nekos`).
//! Nothing is installed: trixie's systemd packages would conflict with bookworm's systemd.

use anyhow::{Context, Result, bail};

use std::path::PathBuf;

/// The package of the stub; its version, .deb SHA-256, the stub's path in it and the stub's
/// SHA-256 are the `[systemd-boot-efi]` table of `packaging/debian-packages.lock`.
pub const STUB_PACKAGE: &str = "systemd-boot-efi";
/// The judge of UKI layout in the tests: ukify from the same systemd release (`[systemd-ukify]`).
pub const UKIFY_PACKAGE: &str = "systemd-ukify";

/// The stub's pin (version, .deb and stub SHA-256s), read from the lock file.
pub fn stub_pin() -> Result<crate::pins::DebPin> {
    let pin = crate::pins::debian_pin(STUB_PACKAGE)?;
    if pin.file.is_none() || pin.file_sha256.is_none() {
        bail!(
            "{}: [{STUB_PACKAGE}] needs `file` and `file_sha256` (the stub is embedded in every UKI, so its bytes are pinned)",
            crate::pins::DEBIAN_LOCK
        );
    }
    Ok(pin)
}

/// ukify's pin, read from the lock file.
pub fn ukify_pin() -> Result<crate::pins::DebPin> {
    crate::pins::debian_pin(UKIFY_PACKAGE)
}

/// `$NEKOS_CACHE_DIR`, else `$XDG_CACHE_HOME/nekos`, else `~/.cache/nekos`.
pub use crate::cache::cache_root;

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
