//! The deployments — ways to boot NekOS in QEMU — defined once, as data. `cargo nekos run
//! <name>` boots one interactively; the tests boot the same definitions and assert markers.
//! Names follow the original NekOS test matrix: the parts that make up the boot, by commas.

use anyhow::{Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `-M pc`: i440fx, PS/2 keyboard, ACPI power button.
    Pc,
    /// `-M microvm`: no PCI display, serial only; needs `tsc_early_khz` under TCG.
    Microvm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Only the kernel: it must end in "VFS: Unable to mount root fs" (nothing to run).
    Kernel,
    /// Kernel + initramfs given to QEMU directly (`-kernel`/`-initrd`).
    KernelInitramfs,
    /// UEFI firmware loads the UKI (kernel + initramfs + embedded cmdline) given as `-kernel`.
    Uki,
}

/// The UEFI firmware a deployment boots through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// Direct kernel boot: QEMU's own loader, no UEFI.
    None,
    /// Debian's OVMF (`ovmf` package, 4 MiB, no Secure Boot) with a fresh copy of its blank
    /// variable store per boot.
    DebianOvmf,
}

/// The command line embedded in the UKI's `.cmdline` (the firmware passes none).
pub const UKI_CMDLINE: &str = "panic=-1 console=tty0 console=ttyS0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// No graphics device: the serial line is all there is.
    SerialOnly,
    /// `-vga std`: bochs-drm in the guest.
    StdVga,
    /// `-device virtio-gpu-pci`: virtio_gpu with KMS in the guest.
    VirtioGpu,
    /// `-device ramfb`: only the firmware drives it (OVMF's GOP); the guest sees the UEFI
    /// framebuffer through simpledrm.
    Ramfb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The serial line shows the root-fs panic and QEMU exits (`panic=-1`, `-no-reboot`).
    RootFsPanic,
    /// init prints `nekos: boot ok`.
    BootOk,
}

#[derive(Clone, Copy, Debug)]
pub struct Deployment {
    pub name: &'static str,
    pub about: &'static str,
    pub machine: Machine,
    pub payload: Payload,
    pub firmware: Firmware,
    pub display: Display,
    pub outcome: Outcome,
}

pub const DEPLOYMENTS: &[Deployment] = &[
    Deployment {
        name: "kernel",
        about: "kernel only, with a display: boots to the expected root-fs panic",
        machine: Machine::Pc,
        payload: Payload::Kernel,
        firmware: Firmware::None,
        display: Display::StdVga,
        outcome: Outcome::RootFsPanic,
    },
    Deployment {
        name: "kernel,serialonly",
        about: "kernel only, no display device: the root-fs panic on the serial line",
        machine: Machine::Pc,
        payload: Payload::Kernel,
        firmware: Firmware::None,
        display: Display::SerialOnly,
        outcome: Outcome::RootFsPanic,
    },
    Deployment {
        name: "kernel,initramfs",
        about: "kernel + initramfs on stdvga (bochs-drm): init, prompt, cats",
        machine: Machine::Pc,
        payload: Payload::KernelInitramfs,
        firmware: Firmware::None,
        display: Display::StdVga,
        outcome: Outcome::BootOk,
    },
    Deployment {
        name: "kernel,initramfs,virtio",
        about: "as kernel,initramfs on virtio-gpu",
        machine: Machine::Pc,
        payload: Payload::KernelInitramfs,
        firmware: Firmware::None,
        display: Display::VirtioGpu,
        outcome: Outcome::BootOk,
    },
    Deployment {
        name: "microvm,kernel,initramfs,serialonly",
        about: "QEMU microvm, serial console only",
        machine: Machine::Microvm,
        payload: Payload::KernelInitramfs,
        firmware: Firmware::None,
        display: Display::SerialOnly,
        outcome: Outcome::BootOk,
    },
    Deployment {
        name: "fw,kernel,initramfs,uki",
        about: "OVMF (Secure Boot off) boots the UKI; its embedded cmdline is in effect",
        machine: Machine::Pc,
        payload: Payload::Uki,
        firmware: Firmware::DebianOvmf,
        display: Display::StdVga,
        outcome: Outcome::BootOk,
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,simpledrm",
        about: "as fw,kernel,initramfs,uki on ramfb: the UEFI framebuffer through simpledrm",
        machine: Machine::Pc,
        payload: Payload::Uki,
        firmware: Firmware::DebianOvmf,
        display: Display::Ramfb,
        outcome: Outcome::BootOk,
    },
];

pub fn find(name: &str) -> Result<&'static Deployment> {
    if let Some(d) = DEPLOYMENTS.iter().find(|d| d.name == name) {
        return Ok(d);
    }
    let names: Vec<&str> = DEPLOYMENTS.iter().map(|d| d.name).collect();
    bail!("unknown deployment {name:?}; valid deployments:\n  {}", names.join("\n  "))
}

impl Deployment {
    /// The kernel command line. `console=ttyS0` comes last so it becomes /dev/console and
    /// userspace output reaches the serial log.
    pub fn cmdline(&self, extra: &[String]) -> String {
        if self.payload == Payload::Uki {
            // The UKI carries its command line; extra words would be ignored under Secure
            // Boot and would hide whether the embedded one is in effect, so none are added.
            return UKI_CMDLINE.to_string();
        }
        let mut parts: Vec<String> = vec!["panic=-1".into()];
        if self.machine == Machine::Microvm {
            // Under TCG microvm hangs calibrating the TSC without this.
            parts.push("tsc_early_khz=2000000".into());
        }
        parts.extend(extra.iter().cloned());
        if self.display != Display::SerialOnly {
            parts.push("console=tty0".into());
        }
        parts.push("console=ttyS0".into());
        parts.join(" ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_deployment_lists_valid_names() {
        let err = find("kernal").unwrap_err().to_string();
        for d in DEPLOYMENTS {
            assert!(err.contains(d.name), "{err}");
        }
    }

    #[test]
    fn serial_console_is_last() {
        for d in DEPLOYMENTS {
            assert!(d.cmdline(&["nekos.seed=1".into()]).ends_with("console=ttyS0"));
        }
    }

    #[test]
    fn ramfb_only_with_firmware() {
        // Nothing but UEFI firmware sets up a framebuffer on ramfb.
        for d in DEPLOYMENTS {
            assert!(d.display != Display::Ramfb || d.firmware != Firmware::None, "{}", d.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = DEPLOYMENTS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DEPLOYMENTS.len());
    }
}
