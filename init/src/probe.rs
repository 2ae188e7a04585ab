//! Facts for the boot banner. The decisions are pure functions over bytes and
//! booleans; the thin `read_*` wrappers do the file access.

use std::fs;
use std::path::Path;

pub const SECUREBOOT_VAR: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// VERSION_ID (or VERSION) from os-release text.
pub fn os_version(os_release: &str) -> Option<String> {
    let get = |key: &str| {
        os_release.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    get("VERSION_ID").or_else(|| get("VERSION"))
}

/// efivarfs files start with 4 attribute bytes, then the value.
pub fn secureboot(is_uefi: bool, var: Option<&[u8]>) -> &'static str {
    match (is_uefi, var.and_then(|v| v.get(4))) {
        (false, _) => "not-uefi",
        (true, Some(1)) => "on",
        (true, _) => "off",
    }
}

pub fn sev_snp(configfs_tsm: bool, sev_guest: bool) -> &'static str {
    if configfs_tsm {
        "configfs-tsm"
    } else if sev_guest {
        "sev-guest"
    } else {
        "absent"
    }
}

pub fn read_version() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| os_version(&t))
        .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string())
}

pub fn read_kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

pub fn read_secureboot() -> &'static str {
    let var = fs::read(SECUREBOOT_VAR).ok();
    secureboot(Path::new("/sys/firmware/efi").exists(), var.as_deref())
}

pub fn read_tpm() -> &'static str {
    if Path::new("/dev/tpm0").exists() || Path::new("/dev/tpmrm0").exists() {
        "present"
    } else {
        "absent"
    }
}

/// configfs-tsm counts only when it can actually produce SEV-SNP reports:
/// the report directory exists on every kernel with TSM_REPORTS, even on
/// non-SNP guests (where creating an entry fails with ENXIO). So create a
/// probe entry, check that its provider is `sev_guest`, and remove it again.
pub fn read_sev_snp() -> &'static str {
    sev_snp(configfs_tsm_usable(), Path::new("/dev/sev-guest").exists())
}

fn configfs_tsm_usable() -> bool {
    let dir = Path::new("/sys/kernel/config/tsm/report");
    if !dir.exists() {
        return false;
    }
    let entry = dir.join("nekos-init-probe");
    if fs::create_dir(&entry).is_err() {
        return false;
    }
    let provider = fs::read_to_string(entry.join("provider")).unwrap_or_default();
    let _ = fs::remove_dir(&entry);
    provider.trim() == "sev_guest"
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME).
pub fn boot_ms() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| (t.tv_sec() as u64).saturating_mul(1000) + (t.tv_nsec() as u64) / 1_000_000)
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        assert_eq!(
            os_version("NAME=NekOS\nVERSION_ID=\"0.1.0\"\n").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(
            os_version("VERSION='1 (cat)'\n").as_deref(),
            Some("1 (cat)")
        );
        assert_eq!(os_version("VERSION_ID_LIKE=x\nNAME=a"), None);
        assert_eq!(os_version("VERSION_ID=\"\""), None);
    }

    #[test]
    fn secureboot_states() {
        assert_eq!(secureboot(false, None), "not-uefi");
        assert_eq!(secureboot(false, Some(&[6, 0, 0, 0, 1])), "not-uefi");
        assert_eq!(secureboot(true, Some(&[6, 0, 0, 0, 1])), "on");
        assert_eq!(secureboot(true, Some(&[6, 0, 0, 0, 0])), "off");
        assert_eq!(secureboot(true, Some(&[6, 0, 0])), "off");
        assert_eq!(secureboot(true, None), "off");
    }

    #[test]
    fn sev_states() {
        assert_eq!(sev_snp(true, true), "configfs-tsm");
        assert_eq!(sev_snp(false, true), "sev-guest");
        assert_eq!(sev_snp(false, false), "absent");
    }
}
