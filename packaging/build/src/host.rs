//! Host requirements: which tool comes from which Debian package. A missing tool is
//! installed by `packaging/host-setup.sh` when we run as root, otherwise the error prints the
//! exact command to run.

use anyhow::{Result, bail};
use std::path::Path;
use std::process::Command;

/// (tool on PATH or absolute path, Debian package, what it is for)
pub const HOST_TOOLS: &[(&str, &str, &str)] = &[
    (
        "qemu-system-x86_64",
        "qemu-system-x86 (from bookworm-backports)",
        "boots and tests",
    ),
    (
        "/usr/src/linux-source-6.12.tar.xz",
        "linux-source-6.12",
        "the kernel source",
    ),
    ("make", "make", "kernel build"),
    (
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu",
        "the arm64 kernel (cross build)",
    ),
    ("gcc", "gcc", "kernel build"),
    ("bc", "bc", "kernel build"),
    ("bison", "bison", "kernel build"),
    ("flex", "flex", "kernel build"),
    ("tar", "tar", "kernel source unpacking"),
    ("xz", "xz-utils", "kernel source unpacking"),
    ("cpio", "cpio", "judging the initramfs format in tests"),
    (
        "readelf",
        "binutils",
        "checking that userland binaries are static",
    ),
    (
        "musl-gcc",
        "musl-tools",
        "C parts of init's TLS stack (ring) for the musl target",
    ),
    (
        "/usr/include/libelf.h",
        "libelf-dev",
        "kernel build (objtool)",
    ),
    ("/usr/include/openssl/ssl.h", "libssl-dev", "kernel build"),
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "ovmf",
        "Debian's OVMF: comparison boots and the raw-store judge",
    ),
    (
        "qemu-system-aarch64",
        "qemu-system-arm (from bookworm-backports)",
        "arm64 boots and tests",
    ),
    (
        "/usr/share/AAVMF/AAVMF_CODE.fd",
        "qemu-efi-aarch64",
        "Debian's ArmVirtQemu: judge of the arm64 variable stores",
    ),
    ("nasm", "nasm", "firmware build (edk2)"),
    ("iasl", "acpica-tools", "firmware build (edk2 ACPI tables)"),
    (
        "/usr/include/uuid/uuid.h",
        "uuid-dev",
        "firmware build (edk2 BaseTools)",
    ),
    (
        "patch",
        "patch",
        "firmware build (applying the pinned edk2 patches)",
    ),
    ("sfdisk", "fdisk", "judging the ESP disk image in tests"),
    (
        "fsck.fat",
        "dosfstools",
        "judging the ESP disk image in tests",
    ),
    ("mcopy", "mtools", "judging the ESP disk image in tests"),
    ("sbverify", "sbsigntool", "judging signed UKIs in tests"),
    (
        "softhsm2-util",
        "softhsm2",
        "a PKCS#11 token for the signing tests",
    ),
    (
        "osslsigncode",
        "osslsigncode (2.9, from bookworm-backports)",
        "judging signed UKIs in tests",
    ),
    (
        "/usr/lib/python3/dist-packages/pefile.py",
        "python3-pefile",
        "running ukify 257 as the UKI judge",
    ),
    (
        "swtpm",
        "swtpm",
        "a software TPM for the measured-boot tests",
    ),
    (
        "/usr/sbin/nginx",
        "nginx",
        "Debian's nginx as the server of the stboot nginx deployments",
    ),
    (
        "curl",
        "curl",
        "judging what nginx sends in the stboot nginx tests",
    ),
];

pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

fn present(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

pub fn missing_tools() -> Vec<&'static (&'static str, &'static str, &'static str)> {
    HOST_TOOLS
        .iter()
        .filter(|(tool, _, _)| !present(tool))
        .collect()
}

fn is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false)
}

/// Makes sure every host tool is there: installs through host-setup.sh as root, otherwise
/// fails naming each missing tool, its package and the command to run.
pub fn ensure_tools(root: &Path) -> Result<()> {
    let missing = missing_tools();
    if missing.is_empty() {
        return Ok(());
    }
    let script = root.join("packaging/host-setup.sh");
    if is_root() {
        eprintln!(
            "nekos: installing missing host packages with {}",
            script.display()
        );
        let status = Command::new("bash").arg(&script).status()?;
        if status.success() && missing_tools().is_empty() {
            return Ok(());
        }
    }
    let missing = missing_tools();
    let mut msg = String::from("missing host tools:\n");
    for (tool, package, why) in &missing {
        msg.push_str(&format!("  {tool} — Debian package {package} ({why})\n"));
    }
    msg.push_str(&format!("{}\n", apt_line(&missing)));
    msg.push_str(&format!(
        "or run, as root, {} (it also adds the apt sources)\n",
        script.display()
    ));
    bail!(msg)
}

/// The exact apt-get command(s) for the missing tools; backports packages need `-t`.
pub fn apt_line(missing: &[&(&str, &str, &str)]) -> String {
    let mut plain = Vec::new();
    let mut backports = Vec::new();
    for (_, package, _) in missing {
        let name = package.split_whitespace().next().unwrap_or(package);
        let list = if package.contains("backports") {
            &mut backports
        } else {
            &mut plain
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }
    let mut lines = Vec::new();
    if !plain.is_empty() {
        lines.push(format!(
            "apt-get install --no-install-recommends {}",
            plain.join(" ")
        ));
    }
    if !backports.is_empty() {
        lines.push(format!(
            "apt-get install --no-install-recommends -t bookworm-backports {}",
            backports.join(" ")
        ));
    }
    format!("install them as root with:\n  {}", lines.join("\n  "))
}

/// The musl target must be installed for the pinned toolchain; the error gives the command.
pub fn ensure_musl_target(root: &Path) -> Result<()> {
    ensure_rust_target(root, MUSL_TARGET)
}

/// Any guest target (`Arch::rust_target`) must be installed for the pinned toolchain.
pub fn ensure_rust_target(root: &Path, target: &str) -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root)
        .output();
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target) =>
        {
            Ok(())
        }
        Ok(_) => bail!(
            "the Rust target {target} is not installed for the pinned toolchain; run:\n  \
             (cd {} && rustup target add {target})",
            root.display()
        ),
        Err(e) => {
            bail!("cannot run rustup ({e}); install rustup, then: rustup target add {target}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_line_names_packages_and_backports() {
        let a = ("make", "make", "kernel build");
        let b = (
            "qemu-system-x86_64",
            "qemu-system-x86 (from bookworm-backports)",
            "boots",
        );
        let c = ("gcc", "gcc", "kernel build");
        let line = apt_line(&[&a, &b, &c]);
        assert!(
            line.contains("apt-get install --no-install-recommends make gcc"),
            "{line}"
        );
        assert!(
            line.contains("-t bookworm-backports qemu-system-x86"),
            "{line}"
        );
    }
}
