//! The pinned systemd-stub (and, for tests, the pinned ukify), fetched from Debian trixie
//! with `apt-get download` (apt sources from packaging/host-setup.sh), checked against the
//! SHA-256s in `packaging/debian-packages.lock` (moved by `cargo nekos lock`), unpacked with
//! `dpkg-deb -x`, and cached under
//! `~/.cache/nekos/deb-<sha256 of the .deb>/` (or `$NEKOS_CACHE_DIR`, `$XDG_CACHE_HOME/nekos`).
//! Nothing is installed: trixie's systemd packages would conflict with bookworm's systemd.

//!
//! The arm64 stub (`linuxaa64.efi.stub`, table `[systemd-boot-efi-arm64]`) is the same package
//! for another architecture: apt on an amd64 host does not serve it, so it is downloaded from
//! the archive's pool and checked by its pinned SHA-256 (see [`crate::pins::fetch_pool_deb`]).

use crate::arch::Arch;
use anyhow::{Context, Result, bail};

use std::path::PathBuf;

/// The package of the stub; its version, .deb SHA-256, the stub's path in it and the stub's
/// SHA-256 are the `[systemd-boot-efi]` table of `packaging/debian-packages.lock`.
pub const STUB_PACKAGE: &str = "systemd-boot-efi";
/// The judge of UKI layout in the tests: ukify from the same systemd release (`[systemd-ukify]`).
pub const UKIFY_PACKAGE: &str = "systemd-ukify";

/// The lock file's table of the stub for `arch`.
pub fn stub_table(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "systemd-boot-efi",
        Arch::Aarch64 => "systemd-boot-efi-arm64",
    }
}

/// The stub's pin (version, .deb and stub SHA-256s), read from the lock file.
pub fn stub_pin() -> Result<crate::pins::DebPin> {
    stub_pin_for(Arch::X86_64)
}

/// The pin of `arch`'s stub; its file must be `arch`'s stub file name.
pub fn stub_pin_for(arch: Arch) -> Result<crate::pins::DebPin> {
    let table = stub_table(arch);
    let pin = crate::pins::debian_pin(table)?;
    if pin.file.is_none() || pin.file_sha256.is_none() {
        bail!(
            "{}: [{table}] needs `file` and `file_sha256` (the stub is embedded in every UKI, so its bytes are pinned)",
            crate::pins::DEBIAN_LOCK
        );
    }
    let file = pin.file.as_deref().unwrap_or_default();
    if pin.package != STUB_PACKAGE || !file.ends_with(&format!("/{}", arch.stub_file())) {
        bail!(
            "{}: [{table}] pins {} {file}, expected {STUB_PACKAGE}'s {} (the {arch} stub)",
            crate::pins::DEBIAN_LOCK,
            pin.package,
            arch.stub_file()
        );
    }
    Ok(pin)
}

/// Path of the pinned systemd-stub 257 for `arch`, fetched and cached on first use, checked
/// against its pinned SHA-256 and its PE machine type.
pub fn pinned_stub_path_for(arch: Arch) -> Result<PathBuf> {
    let p = stub_pin_for(arch)?.fetch_file()?;
    let bytes = std::fs::read(&p).with_context(|| format!("reading stub {}", p.display()))?;
    crate::uki::check_pe_arch(&bytes, &p.display().to_string(), arch)?;
    Ok(p)
}

/// The bytes of `arch`'s pinned stub.
pub fn load_pinned_stub_for(arch: Arch) -> Result<Vec<u8>> {
    let p = pinned_stub_path_for(arch)?;
    std::fs::read(&p).with_context(|| format!("reading stub {}", p.display()))
}

/// ukify's pin, read from the lock file.
pub fn ukify_pin() -> Result<crate::pins::DebPin> {
    crate::pins::debian_pin(UKIFY_PACKAGE)
}

/// `$NEKOS_CACHE_DIR`, else `$XDG_CACHE_HOME/nekos`, else `~/.cache/nekos`.
pub use crate::cache::cache_root;

/// Path of the pinned x86_64 systemd-stub 257 (`linuxx64.efi.stub`), fetched and cached on
/// first use.
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
