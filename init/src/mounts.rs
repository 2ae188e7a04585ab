//! The filesystems NekOS mounts at boot, as a table that reads like
//! documentation, plus the small routine that applies it.
//!
//! Order matters: /proc first (later steps read /proc/self/mounts), /sys
//! before anything below it, /dev before /dev/pts and /dev/shm.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

/// When a row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only if this path exists (checked after the earlier rows are mounted).
    PathExists(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub fstype: &'static str,
    pub target: &'static str,
    pub flags: MsFlags,
    pub data: &'static str,
    pub when: When,
    /// Why NekOS needs it; printed in debug logs and README.
    pub why: &'static str,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);
const NOSUID_NODEV: MsFlags = MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV);

pub const TABLE: &[Mount] = &[
    Mount {
        fstype: "proc",
        target: "/proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        when: When::Always,
        why: "process list for ps, /proc/cmdline for nekos.* options, mount list",
    },
    Mount {
        fstype: "sysfs",
        target: "/sys",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        when: When::Always,
        why: "device discovery, the console's real tty, firmware facts for the banner",
    },
    Mount {
        fstype: "devtmpfs",
        target: "/dev",
        flags: MsFlags::MS_NOSUID,
        data: "mode=0755",
        when: When::Always,
        why: "device nodes (DRM, input, tty, TPM, sev-guest) made by the kernel",
    },
    Mount {
        fstype: "devpts",
        target: "/dev/pts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: "newinstance,ptmxmode=0666,mode=0620",
        when: When::Always,
        why: "pseudo terminals; a private instance so /dev/ptmx -> pts/ptmx is ours",
    },
    Mount {
        fstype: "tmpfs",
        target: "/dev/shm",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        when: When::Always,
        why: "POSIX shared memory (shm_open) for the compositor's buffers",
    },
    Mount {
        fstype: "tmpfs",
        target: "/run",
        flags: NOSUID_NODEV,
        data: "mode=0755",
        when: When::Always,
        why: "runtime state; /run/user/0 is XDG_RUNTIME_DIR for the Wayland socket",
    },
    Mount {
        fstype: "tmpfs",
        target: "/tmp",
        flags: NOSUID_NODEV,
        data: "mode=1777",
        when: When::Always,
        why: "scratch space; the initramfs root stays clean",
    },
    Mount {
        fstype: "securityfs",
        target: "/sys/kernel/security",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        when: When::Always,
        why: "TPM event log and IMA measurements",
    },
    Mount {
        fstype: "configfs",
        target: "/sys/kernel/config",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        when: When::Always,
        why: "configfs-tsm: SEV-SNP attestation reports (/sys/kernel/config/tsm/report)",
    },
    Mount {
        fstype: "efivarfs",
        target: "/sys/firmware/efi/efivars",
        flags: NOSUID_NODEV_NOEXEC,
        data: "",
        when: When::PathExists("/sys/firmware/efi"),
        why: "UEFI variables, to report the Secure Boot state",
    },
];

/// Is `target` already a mount point of `fstype`, per /proc/self/mounts text?
pub fn is_mounted(mounts: &str, target: &str, fstype: &str) -> bool {
    mounts.lines().any(|line| {
        let mut f = line.split_ascii_whitespace();
        let _source = f.next();
        f.next() == Some(target) && f.next() == Some(fstype)
    })
}

/// Mount every applicable row. Failures are collected, not fatal: a missing
/// kernel feature (say, no securityfs) must not stop the boot.
pub fn mount_all() -> Vec<String> {
    let mut problems = Vec::new();
    for m in TABLE {
        if let When::PathExists(p) = m.when
            && !Path::new(p).exists()
        {
            log::debug!("mount {}: skipped, {p} does not exist", m.target);
            continue;
        }
        // The kernel may have mounted it already (CONFIG_DEVTMPFS_MOUNT), and
        // proc/sysfs would happily stack a second copy: check first.
        let current = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        if is_mounted(&current, m.target, m.fstype) {
            log::debug!("mount {}: already mounted", m.target);
            continue;
        }
        if let Err(e) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(m.target)
        {
            log::debug!("mount {}: mkdir: {e}", m.target);
        }
        let data = if m.data.is_empty() {
            None
        } else {
            Some(m.data)
        };
        match mount(Some(m.fstype), m.target, Some(m.fstype), m.flags, data) {
            Ok(()) => log::debug!("mounted {} on {} ({})", m.fstype, m.target, m.why),
            Err(Errno::EBUSY) => log::debug!("mount {}: busy, assuming mounted", m.target),
            Err(e) => problems.push(format!("mount {} on {}: {e}", m.fstype, m.target)),
        }
    }
    problems.extend(
        after_mounts()
            .err()
            .map(|e| format!("/dev and /run setup: {e}")),
    );
    problems
}

/// Nodes and directories that only make sense once the table is mounted.
fn after_mounts() -> io::Result<()> {
    // With a private devpts instance the multiplexer must be its ptmx.
    match fs::symlink_metadata("/dev/ptmx") {
        Ok(md) if md.file_type().is_symlink() => {}
        Ok(_) => {
            fs::remove_file("/dev/ptmx")?;
            std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx")?;
        }
        Err(_) => std::os::unix::fs::symlink("pts/ptmx", "/dev/ptmx")?,
    }
    // XDG_RUNTIME_DIR for root must be private (Wayland clients check).
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create("/run/user/0")?;
    fs::set_permissions("/run/user/0", fs::Permissions::from_mode(0o700))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create("/root")?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn index(target: &str) -> usize {
        TABLE.iter().position(|m| m.target == target).unwrap()
    }

    #[test]
    fn parents_are_mounted_before_children() {
        for (i, m) in TABLE.iter().enumerate() {
            for (j, parent) in TABLE.iter().enumerate() {
                if m.target != parent.target && m.target.starts_with(&format!("{}/", parent.target))
                {
                    assert!(j < i, "{} must come after {}", m.target, parent.target);
                }
            }
        }
        assert_eq!(index("/proc"), 0);
    }

    #[test]
    fn targets_unique_and_absolute() {
        for (i, m) in TABLE.iter().enumerate() {
            assert!(m.target.starts_with('/'));
            assert!(!m.why.is_empty());
            assert!(
                TABLE.iter().skip(i + 1).all(|o| o.target != m.target),
                "{}",
                m.target
            );
        }
    }

    #[test]
    fn contract_rows() {
        let devpts = &TABLE[index("/dev/pts")];
        assert_eq!(devpts.fstype, "devpts");
        assert!(devpts.data.contains("newinstance"));
        assert!(devpts.data.contains("ptmxmode=0666"));
        let efi = &TABLE[index("/sys/firmware/efi/efivars")];
        assert_eq!(efi.when, When::PathExists("/sys/firmware/efi"));
        for t in ["/dev/shm", "/run", "/tmp"] {
            assert_eq!(TABLE[index(t)].fstype, "tmpfs");
        }
        assert_eq!(TABLE[index("/sys/kernel/config")].fstype, "configfs");
        assert_eq!(TABLE[index("/sys/kernel/security")].fstype, "securityfs");
        // Only efivarfs is conditional.
        assert_eq!(TABLE.iter().filter(|m| m.when != When::Always).count(), 1);
    }

    #[test]
    fn mounted_detection() {
        let text = "rootfs / rootfs rw 0 0\nproc /proc proc rw,nosuid 0 0\ndevtmpfs /dev devtmpfs rw 0 0\n";
        assert!(is_mounted(text, "/proc", "proc"));
        assert!(is_mounted(text, "/dev", "devtmpfs"));
        assert!(!is_mounted(text, "/sys", "sysfs"));
        assert!(!is_mounted(text, "/dev", "tmpfs"));
        assert!(!is_mounted("", "/proc", "proc"));
    }
}
