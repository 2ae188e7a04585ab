//! The guest architecture as a parameter: every step, deployment and launcher that differs
//! between x86_64 and arm64 asks this table instead of spelling a target, a path or a tool.
//!
//! x86_64 keeps the paths it always had (`target/nekos/manifest.json`); arm64 builds go to
//! `target/nekos/aarch64/`, with their own manifest, so the two never overwrite each other.

use anyhow::{Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Arch {
    #[default]
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The name in deployments (`aarch64,kernel,initramfs`), `--arch` and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn parse(text: &str) -> Result<Arch> {
        match text {
            "x86_64" | "x86-64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => bail!("unknown architecture {other:?}: expected x86_64 or aarch64"),
        }
    }

    /// The Rust target the guest userland is built for (fully static musl).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The kernel's `ARCH=`.
    pub fn kernel_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The kernel's boot image: make target and where it lands in the source tree.
    pub fn kernel_image(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("bzImage", "arch/x86/boot/bzImage"),
            Arch::Aarch64 => ("Image", "arch/arm64/boot/Image"),
        }
    }

    /// `CROSS_COMPILE=` prefix on an x86_64 Linux host (Debian's `gcc-aarch64-linux-gnu`);
    /// `None` when the host compiler builds for this architecture.
    pub fn cross_prefix(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => None,
            Arch::Aarch64 => Some("aarch64-linux-gnu-"),
        }
    }

    /// The Debian architecture (packages such as `systemd-boot-efi` are per architecture).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The PE/COFF machine type of this architecture's EFI images.
    pub fn pe_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 0x8664,
            Arch::Aarch64 => 0xaa64,
        }
    }

    pub fn from_pe_machine(machine: u16) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.pe_machine() == machine)
    }

    /// The removable-media boot path on an ESP (UEFI spec 3.5.1.1).
    pub fn efi_boot_file(self) -> &'static str {
        match self {
            Arch::X86_64 => "BOOTX64.EFI",
            Arch::Aarch64 => "BOOTAA64.EFI",
        }
    }

    /// systemd-stub's file name in `systemd-boot-efi`.
    pub fn stub_file(self) -> &'static str {
        match self {
            Arch::X86_64 => "linuxx64.efi.stub",
            Arch::Aarch64 => "linuxaa64.efi.stub",
        }
    }

    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The guest's serial console device name.
    pub fn serial_console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }

    /// The prefix of this architecture's deployment names ("" for x86_64, which came first).
    pub fn deployment_prefix(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Aarch64 => "aarch64,",
        }
    }

    /// Where this architecture's build outputs live under `target/nekos`.
    pub fn out_dir(self, nekos_out: &Path) -> PathBuf {
        match self {
            Arch::X86_64 => nekos_out.to_path_buf(),
            Arch::Aarch64 => nekos_out.join("aarch64"),
        }
    }
}

/// In the manifest as its name (`"x86_64"`, `"aarch64"`).
impl serde::Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Arch, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        Arch::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.name()).unwrap(), a);
            assert_eq!(Arch::from_pe_machine(a.pe_machine()), Some(a));
        }
        let e = Arch::parse("riscv64").unwrap_err().to_string();
        assert!(
            e.contains("riscv64") && e.contains("x86_64 or aarch64"),
            "{e}"
        );
        assert_eq!(Arch::from_pe_machine(0x14c), None);
    }
}
