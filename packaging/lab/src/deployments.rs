//! The deployments — ways to boot NekOS in QEMU — defined once, as data. `cargo nekos run
//! <name>` boots one interactively; the tests boot the same definitions and assert markers.
//! Names follow the original NekOS test matrix: the parts that make up the boot, by commas.

use crate::nginx::NginxCase;
use crate::stboot_server::{Served, Server};
use anyhow::{Result, bail};
pub use nekos_build::arch::Arch;
use nekos_build::build::Parts;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `-M pc`: i440fx, PS/2 keyboard, ACPI power button.
    Pc,
    /// `-M microvm`: no PCI display, serial only; needs `tsc_early_khz` under TCG.
    Microvm,
    /// `-M q35,smm=on` with secure pflash: what an SMM Secure Boot firmware needs.
    Q35Smm,
    /// `-M virt` (arm64): PL011 serial, PCI for virtio devices, pflash for the firmware, no
    /// PS/2 (the keyboard is virtio) and no ACPI power button (a GPIO key instead).
    Virt,
}

/// What the guest boots. The fields of a UKI boot live in its variant, so a direct boot
/// cannot name a UKI image or a boot medium, and only a network boot has a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Only the kernel: it must end in "VFS: Unable to mount root fs" (nothing to run).
    Kernel,
    /// Kernel + initramfs given to QEMU directly (`-kernel`/`-initrd`).
    KernelInitramfs,
    /// UEFI firmware loads a UKI (kernel + initramfs + embedded cmdline).
    Uki { image: UkiImage, medium: Medium },
    /// UEFI firmware loads the stage-1 UKI (the same kernel + the stage-1 initramfs, see
    /// stboot.rs): it fetches the OS package from `server` (the project's HTTPS server or
    /// Debian's nginx on 127.0.0.1, the guest's 10.0.2.2; `None`: nothing listens) over the
    /// network, verifies it and kexecs its kernel.
    Stboot {
        image: UkiImage,
        medium: Medium,
        server: Option<Server>,
    },
}

impl Payload {
    /// The UKI image and how it reaches the firmware, for the two UKI payloads.
    pub fn uki(&self) -> Option<(UkiImage, Medium)> {
        match *self {
            Payload::Kernel | Payload::KernelInitramfs => None,
            Payload::Uki { image, medium } | Payload::Stboot { image, medium, .. } => {
                Some((image, medium))
            }
        }
    }

    pub fn is_stboot(&self) -> bool {
        matches!(self, Payload::Stboot { .. })
    }
}

/// The guest's network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// `-nic none` (also keeps the firmware's PXE ROM from looking for a boot server).
    None,
    /// QEMU user networking on virtio-net (DHCP; the host's loopback is 10.0.2.2) and a
    /// virtio-rng (TLS needs the kernel CRNG ready). The NIC has no option ROM.
    User,
}

/// A UEFI variable store preset (packaging/src/varstore), as written by `cargo nekos build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// No keys: Secure Boot off.
    Blank,
    /// The project's PK/KEK/db (the keys that sign the UKIs): Secure Boot on.
    Custom,
    /// Microsoft's KEK/db with a distribution PK: Secure Boot on, NekOS's db key absent.
    Microsoft,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Blank => "blank",
            Store::Custom => "custom",
            Store::Microsoft => "microsoft",
        }
    }
}

/// The UEFI firmware a deployment boots through; the machine follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// Direct kernel boot: QEMU's own loader, no UEFI, on `machine` (`pc` or `microvm`).
    None(DirectMachine),
    /// The project's OVMF (firmware/: QEMU_PV_VARS, Secure Boot, TPM2, no SMM). QEMU keeps
    /// the variables (`-device uefi-vars-x64,jsonfile=` a fresh copy of the store's JSON);
    /// the launcher never starts this firmware without that device (it would hang silently).
    Nekos(Store),
    /// Debian's OVMF (`ovmf` package, 4 MiB, no Secure Boot) with a fresh copy of its blank
    /// variable store per boot: the comparison for the project's firmware.
    DebianOvmf,
    /// Debian's SMM Secure Boot OVMF (`OVMF_CODE_4M.secboot.fd`) with the store as a raw
    /// 4 MiB OVMF_VARS image in pflash (on q35 with SMM): what users of older QEMU would run.
    DebianSmmSecboot(Store),
}

/// The machines a direct kernel boot can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectMachine {
    Pc,
    Microvm,
}

impl Firmware {
    /// Direct boot on `-M pc`.
    pub const DIRECT: Firmware = Firmware::None(DirectMachine::Pc);

    /// The machine this firmware runs on: SMM firmware needs q35 with SMM, the others `pc`
    /// (microvm only for a direct boot).
    pub fn machine(self) -> Machine {
        match self {
            Firmware::None(DirectMachine::Microvm) => Machine::Microvm,
            Firmware::DebianSmmSecboot(_) => Machine::Q35Smm,
            Firmware::None(DirectMachine::Pc) | Firmware::Nekos(_) | Firmware::DebianOvmf => {
                Machine::Pc
            }
        }
    }

    /// A direct boot (no UEFI).
    pub fn is_direct(self) -> bool {
        matches!(self, Firmware::None(_))
    }
}

/// Which UKI the firmware is given. The attack images are made from the built UKIs at boot
/// time (qemu.rs), each modelling one way to get an unapproved image past Secure Boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UkiImage {
    /// The UKI without a signature.
    Unsigned,
    /// The UKI signed with the project's db key.
    Signed,
    /// The signed UKI with one byte of its `.initrd` section flipped after signing.
    TamperedInitrd,
    /// The UKI signed by a key that is not in db (a valid signature from the wrong signer).
    WrongKey,
}

/// How the UKI reaches the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// QEMU `-kernel`: OVMF's QEMU kernel loader (fw_cfg).
    KernelArg,
    /// A reproducible GPT disk whose ESP holds the UKI as `EFI/BOOT/BOOTX64.EFI` (virtio-blk),
    /// found by the firmware's boot manager as a real machine would.
    EspDisk,
}

/// The command line embedded in the UKI's `.cmdline` (defined with the build that embeds it).
pub use nekos_build::ukis::UKI_CMDLINE;

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
    /// The firmware refuses the UKI (Secure Boot); the kernel never starts.
    Refused,
    /// Stage 1 refuses the OS package: its console says why (this text is in the failure
    /// line) and the package's kernel never starts (no kexec).
    Stage1Refused(&'static str),
}

/// The second kernel's init says it was started by stage 1 (`nekos.bootflow=stboot`).
pub const STARTED_BY_STBOOT: &str = "nekos: started by stboot";
/// Stage 1's line after a failed attempt: the attempt is over and nothing was kexec'd.
pub const STAGE1_RETRY: &str = "nekos: stboot: retry in ";

/// What the firmware prints once it has given up on every boot option (both media).
pub const FIRMWARE_GAVE_UP: &str = "No bootable option or device was found";
/// OVMF's refusal of a UKI on a disk: `BdsDxe: failed to load Boot0001 … Access Denied`.
pub const REFUSED_FROM_DISK: &str = "Access Denied";
/// OVMF's refusal of a UKI given with `-kernel`.
pub const REFUSED_FROM_KERNEL_ARG: &str = "Secure boot image verification failed";
/// OVMF's fallback for `-kernel` images it could not verify. Printed on every refusal; a
/// boot that *reaches the kernel* after it would be a Secure Boot bypass.
pub const LEGACY_LOADER: &str = "Using legacy linux kernel loader";

#[derive(Clone, Copy, Debug)]
pub struct Deployment {
    pub name: &'static str,
    pub about: &'static str,
    /// The guest architecture: which build (its manifest under `Arch::out_dir`), QEMU binary,
    /// machine and serial console. x86_64 unless the name starts with `aarch64,`.
    pub arch: Arch,
    pub payload: Payload,
    pub firmware: Firmware,
    pub display: Display,
    pub outcome: Outcome,
}

/// Defaults the table below overrides: direct boot on `-M pc` with stdvga.
const DIRECT: Deployment = Deployment {
    name: "",
    about: "",
    arch: Arch::X86_64,
    payload: Payload::KernelInitramfs,
    firmware: Firmware::DIRECT,
    display: Display::StdVga,
    outcome: Outcome::BootOk,
};

/// A signed UKI from an ESP disk through the project's firmware with the custom store.
const SECURE_BOOT: Deployment = Deployment {
    payload: uki(UkiImage::Signed, Medium::EspDisk),
    firmware: Firmware::Nekos(Store::Custom),
    ..DIRECT
};

/// arm64 on `-M virt`: a direct boot on virtio-gpu (the machine has no VGA), virtio keyboard.
const AARCH64: Deployment = Deployment {
    arch: Arch::Aarch64,
    display: Display::VirtioGpu,
    ..DIRECT
};

/// arm64: the signed UKI from an ESP disk through the project's ArmVirtQemu (pflash) with the
/// custom store.
const AARCH64_SECURE_BOOT: Deployment = Deployment {
    payload: uki(UkiImage::Signed, Medium::EspDisk),
    firmware: Firmware::Nekos(Store::Custom),
    ..AARCH64
};

/// A UKI boot (shorthand for the table).
const fn uki(image: UkiImage, medium: Medium) -> Payload {
    Payload::Uki { image, medium }
}

/// The signed stage-1 UKI from an ESP disk, network on, the good package served: stboot
/// with the blank store (Secure Boot off).
const STBOOT: Deployment = Deployment {
    payload: Payload::Stboot {
        image: UkiImage::Signed,
        medium: Medium::EspDisk,
        server: Some(Server::Ospkg(Served::Good)),
    },
    firmware: Firmware::Nekos(Store::Blank),
    ..DIRECT
};

/// The network boot (blank store) with Debian's nginx serving the built package.
const fn nginx_boot(name: &'static str, about: &'static str, case: NginxCase) -> Deployment {
    Deployment {
        name,
        about,
        payload: Payload::Stboot {
            image: UkiImage::Signed,
            medium: Medium::EspDisk,
            server: Some(Server::Nginx(case)),
        },
        ..STBOOT
    }
}

/// An attack on the network boot: stage 1 (Secure Boot on) must refuse with `reason`.
const fn stboot_attack(
    name: &'static str,
    about: &'static str,
    server: Option<Server>,
    reason: &'static str,
) -> Deployment {
    Deployment {
        name,
        about,
        payload: Payload::Stboot {
            image: UkiImage::Signed,
            medium: Medium::EspDisk,
            server,
        },
        firmware: Firmware::Nekos(Store::Custom),
        outcome: Outcome::Stage1Refused(reason),
        ..STBOOT
    }
}

pub const DEPLOYMENTS: &[Deployment] = &[
    Deployment {
        name: "kernel",
        about: "kernel only, with a display: boots to the expected root-fs panic",
        payload: Payload::Kernel,
        outcome: Outcome::RootFsPanic,
        ..DIRECT
    },
    Deployment {
        name: "kernel,serialonly",
        about: "kernel only, no display device: the root-fs panic on the serial line",
        payload: Payload::Kernel,
        display: Display::SerialOnly,
        outcome: Outcome::RootFsPanic,
        ..DIRECT
    },
    Deployment {
        name: "kernel,initramfs",
        about: "kernel + initramfs on stdvga (bochs-drm): init, prompt, cats",
        ..DIRECT
    },
    Deployment {
        name: "kernel,initramfs,virtio",
        about: "as kernel,initramfs on virtio-gpu",
        display: Display::VirtioGpu,
        ..DIRECT
    },
    Deployment {
        name: "microvm,kernel,initramfs,serialonly",
        about: "QEMU microvm, serial console only",
        firmware: Firmware::None(DirectMachine::Microvm),
        display: Display::SerialOnly,
        ..DIRECT
    },
    Deployment {
        name: "fw,kernel",
        about: "the project's OVMF (blank store) + kernel only: the root-fs panic",
        payload: Payload::Kernel,
        firmware: Firmware::Nekos(Store::Blank),
        outcome: Outcome::RootFsPanic,
        ..DIRECT
    },
    Deployment {
        name: "fw,kernel,initramfs",
        about: "the project's OVMF (blank store) + kernel + initramfs, not a UKI: cats",
        firmware: Firmware::Nekos(Store::Blank),
        ..DIRECT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki",
        about: "the project's OVMF, blank store (Secure Boot off), the UKI from an ESP disk: cats",
        firmware: Firmware::Nekos(Store::Blank),
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,simpledrm",
        about: "as fw,kernel,initramfs,uki (-kernel) on ramfb: the UEFI framebuffer through simpledrm",
        firmware: Firmware::Nekos(Store::Blank),
        display: Display::Ramfb,
        payload: uki(UkiImage::Signed, Medium::KernelArg),
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-pass",
        about: "custom store (Secure Boot on), the signed UKI from an ESP disk: secureboot=on, cats",
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-pass,virtio",
        about: "as sb-pass on virtio-gpu",
        display: Display::VirtioGpu,
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-fail",
        about: "Microsoft store: the NekOS-signed UKI is refused (its db key is not in db)",
        firmware: Firmware::Nekos(Store::Microsoft),
        outcome: Outcome::Refused,
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-tampered-initrd",
        about: "attack: one byte of the signed UKI's .initrd flipped after signing — refused",
        payload: uki(UkiImage::TamperedInitrd, Medium::EspDisk),
        outcome: Outcome::Refused,
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-wrong-key",
        about: "attack: the UKI validly signed by a key that is not in db — refused",
        payload: uki(UkiImage::WrongKey, Medium::EspDisk),
        outcome: Outcome::Refused,
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,uki,sb-unsigned",
        about: "attack: the UKI without any signature — refused",
        payload: uki(UkiImage::Unsigned, Medium::EspDisk),
        outcome: Outcome::Refused,
        ..SECURE_BOOT
    },
    Deployment {
        name: "debian-fw,kernel,initramfs,uki",
        about: "comparison: Debian's OVMF (pflash, Secure Boot off) boots the unsigned UKI (-kernel)",
        firmware: Firmware::DebianOvmf,
        payload: uki(UkiImage::Unsigned, Medium::KernelArg),
        ..SECURE_BOOT
    },
    Deployment {
        name: "debian-smm-fw,kernel,initramfs,uki,sb-pass",
        about: "comparison: Debian's SMM Secure Boot OVMF, raw custom store, signed UKI from the ESP disk",
        firmware: Firmware::DebianSmmSecboot(Store::Custom),
        ..SECURE_BOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,stboot",
        about: "network boot: blank store, stage-1 UKI fetches the signed OS package over HTTPS, kexec: cats",
        ..STBOOT
    },
    Deployment {
        name: "fw,kernel,initramfs,stboot,sb-pass",
        about: "network boot under Secure Boot (custom store, signed stage-1 UKI), kexec: cats",
        firmware: Firmware::Nekos(Store::Custom),
        ..STBOOT
    },
    nginx_boot(
        "fw,kernel,initramfs,stboot,nginx",
        "network boot from Debian's nginx (TLS, ALPN h2 + http/1.1, keep-alive): kexec",
        NginxCase::Plain,
    ),
    nginx_boot(
        "fw,kernel,initramfs,stboot,nginx,redirect",
        "nginx answers 302 for the descriptor and 301 for the zip (to /other/…): followed, kexec",
        NginxCase::Redirect,
    ),
    nginx_boot(
        "fw,kernel,initramfs,stboot,nginx,gzip",
        "nginx gzips the descriptor (Content-Encoding: gzip, chunked): decoded, kexec",
        NginxCase::Gzip,
    ),
    nginx_boot(
        "fw,kernel,initramfs,stboot,nginx,chunked",
        "nginx sends descriptor and zip Transfer-Encoding: chunked, no Content-Length: kexec",
        NginxCase::Chunked,
    ),
    nginx_boot(
        "fw,kernel,initramfs,stboot,nginx,keepalive-off",
        "nginx with keepalive_timeout 0 closes the connection after each GET: kexec",
        NginxCase::KeepaliveOff,
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,nginx,redirect-untrusted",
        "nginx redirects the descriptor to a server whose certificate is not in tls_roots.pem — refused",
        Some(Server::Nginx(NginxCase::RedirectUntrusted)),
        "fetch descriptor https://10.0.2.2:18443/nekos.json: redirected to https://10.0.2.2:18444/nekos.json: certificate not trusted (UnknownIssuer)",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,ospkg-tampered-zip",
        "attack: one byte of the OS package zip flipped after signing — stage 1 refuses",
        Some(Server::Ospkg(Served::TamperedZip)),
        "Ed25519 signature over the package digest does not verify",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,ospkg-wrong-signer",
        "attack: the package validly signed by keys under another root — stage 1 refuses",
        Some(Server::Ospkg(Served::WrongSigner)),
        "certificate is not issued by a trusted root",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,ospkg-expired-cert",
        "attack: signed by our root's signers whose certificates have expired — stage 1 refuses",
        Some(Server::Ospkg(Served::ExpiredCert)),
        "certificate expired at",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,ospkg-below-threshold",
        "attack: one valid signature where the trust policy wants two — stage 1 refuses",
        Some(Server::Ospkg(Served::BelowThreshold)),
        "1 valid signature(s) of 1, threshold is 2",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,ospkg-malformed-descriptor",
        "attack: a descriptor that is not valid JSON — stage 1 refuses",
        Some(Server::Ospkg(Served::MalformedDescriptor)),
        "descriptor https://10.0.2.2:18443/nekos.json: descriptor: not a JSON object",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,https-untrusted-server",
        "attack: the server's TLS certificate is from another CA — stage 1 refuses to talk to it",
        Some(Server::UntrustedTls),
        "fetch descriptor https://10.0.2.2:18443/nekos.json: certificate not trusted (UnknownIssuer)",
    ),
    stboot_attack(
        "fw,kernel,initramfs,stboot,server-unreachable",
        "nothing listens at the descriptor URL — stage 1 retries, never boots anything",
        None,
        "fetch descriptor https://10.0.2.2:18443/nekos.json: connect 10.0.2.2:18443: Connection refused",
    ),
    Deployment {
        name: "aarch64,kernel,initramfs",
        about: "arm64 on -M virt: kernel + initramfs on virtio-gpu, virtio keyboard: init, prompt, cats",
        ..AARCH64
    },
    Deployment {
        name: "aarch64,kernel,initramfs,serialonly",
        about: "arm64 on -M virt, no display device: init and the prompt on the PL011 serial line",
        display: Display::SerialOnly,
        ..AARCH64
    },
    Deployment {
        name: "aarch64,fw,kernel,initramfs,uki,sb-pass",
        about: "arm64: the project's ArmVirtQemu, custom store (Secure Boot on), the signed UKI from an ESP disk: cats",
        ..AARCH64_SECURE_BOOT
    },
    Deployment {
        name: "aarch64,fw,kernel,initramfs,uki,sb-fail",
        about: "arm64: Microsoft store: the NekOS-signed UKI is refused (its db key is not in db)",
        firmware: Firmware::Nekos(Store::Microsoft),
        outcome: Outcome::Refused,
        ..AARCH64_SECURE_BOOT
    },
    Deployment {
        name: "aarch64,fw,kernel,initramfs,uki,sb-tampered-initrd",
        about: "arm64 attack: one byte of the signed UKI's .initrd flipped after signing — refused",
        payload: uki(UkiImage::TamperedInitrd, Medium::EspDisk),
        outcome: Outcome::Refused,
        ..AARCH64_SECURE_BOOT
    },
];

/// What `cargo nekos run` boots without an argument: the project's main job — the signed
/// UKI from the ESP disk under Secure Boot on the project's own firmware, cats on screen.
pub const DEFAULT_DEPLOYMENT: &str = "fw,kernel,initramfs,uki,sb-pass";

pub fn find(name: &str) -> Result<&'static Deployment> {
    if let Some(d) = DEPLOYMENTS.iter().find(|d| d.name == name) {
        return Ok(d);
    }
    let names: Vec<&str> = DEPLOYMENTS.iter().map(|d| d.name).collect();
    bail!(
        "unknown deployment {name:?}; valid deployments:\n  {}",
        names.join("\n  ")
    )
}

impl Deployment {
    /// The build parts this deployment boots from, and nothing more.
    pub fn parts(&self) -> Parts {
        let payload = match self.payload {
            Payload::Kernel => Parts {
                kernel: true,
                ..Parts::NONE
            },
            Payload::KernelInitramfs => Parts {
                kernel: true,
                initramfs: true,
                ..Parts::NONE
            },
            Payload::Uki { .. } => Parts {
                kernel: true,
                initramfs: true,
                uki: true,
                ..Parts::NONE
            },
            Payload::Stboot { .. } => Parts {
                kernel: true,
                initramfs: true,
                stboot: true,
                stage1_init: true,
                ..Parts::NONE
            },
        };
        let firmware = match self.firmware {
            Firmware::None(_) | Firmware::DebianOvmf => Parts::NONE,
            Firmware::Nekos(_) => Parts {
                firmware: true,
                varstores: true,
                ..Parts::NONE
            },
            Firmware::DebianSmmSecboot(_) => Parts {
                varstores: true,
                ..Parts::NONE
            },
        };
        payload.union(firmware)
    }

    /// The x86_64 deployment this one is measured against: the name without the arch prefix,
    /// preferring the x86 boot on the same display device (`aarch64,kernel,initramfs` →
    /// `kernel,initramfs,virtio`) and, for a serial-only direct boot, x86's serial-only one
    /// (`microvm,kernel,initramfs,serialonly`). `None` for x86 deployments.
    pub fn x86_twin(&self) -> Option<&'static Deployment> {
        if self.arch == Arch::X86_64 {
            return None;
        }
        let rest = self.name.strip_prefix(self.arch.deployment_prefix())?;
        [
            format!("{rest},virtio"),
            rest.to_string(),
            format!("microvm,{rest}"),
        ]
        .iter()
        .filter_map(|n| DEPLOYMENTS.iter().find(|d| d.name == n))
        .find(|t| t.display == self.display)
        .or_else(|| DEPLOYMENTS.iter().find(|d| d.name == rest))
    }

    /// The machine: every arm64 deployment runs on `-M virt` (with or without firmware); on
    /// x86_64 the firmware decides.
    pub fn machine(&self) -> Machine {
        match self.arch {
            Arch::Aarch64 => Machine::Virt,
            Arch::X86_64 => self.firmware.machine(),
        }
    }

    /// The network follows from the payload: only a network boot has one.
    pub fn network(&self) -> Network {
        if self.payload.is_stboot() {
            Network::User
        } else {
            Network::None
        }
    }

    /// What the project's HTTPS server serves during the boot (network boots only).
    pub fn server(&self) -> Option<Server> {
        match self.payload {
            Payload::Stboot { server, .. } => server,
            _ => None,
        }
    }

    /// Guest memory: at least what the deployment needs (stage 1 holds the downloaded zip,
    /// the unpacked kernel and initramfs, and the kexec segments at once: 512 MiB).
    pub fn memory_mib(&self, requested: u32) -> u32 {
        match self.payload {
            Payload::Stboot { .. } => requested.max(512),
            _ => requested,
        }
    }

    /// What init must report as `secureboot=`: on exactly when a Secure Boot store is loaded.
    pub fn secure_boot(&self) -> Option<bool> {
        match self.firmware {
            Firmware::None(_) => None,
            Firmware::DebianOvmf
            | Firmware::Nekos(Store::Blank)
            | Firmware::DebianSmmSecboot(Store::Blank) => Some(false),
            Firmware::Nekos(_) | Firmware::DebianSmmSecboot(_) => Some(true),
        }
    }

    /// The kernel command line. The serial console (`console=ttyS0`, on arm64
    /// `console=ttyAMA0`, the PL011) comes last so it becomes /dev/console and userspace output
    /// reaches the serial log.
    pub fn cmdline(&self, extra: &[String]) -> String {
        if self.payload.uki().is_some() {
            // The UKI carries its command line; extra words would be ignored under Secure
            // Boot and would hide whether the embedded one is in effect, so none are added.
            return match self.arch {
                Arch::X86_64 => UKI_CMDLINE.to_string(),
                // The same rule as x86's embedded line (a test holds them equal), with the
                // PL011 console.
                Arch::Aarch64 => self.direct_cmdline(&[], true),
            };
        }
        self.direct_cmdline(extra, self.display != Display::SerialOnly)
    }

    fn direct_cmdline(&self, extra: &[String], display: bool) -> String {
        let mut parts: Vec<String> = vec!["panic=-1".into()];
        if self.machine() == Machine::Microvm {
            // Under TCG microvm hangs calibrating the TSC without this.
            parts.push("tsc_early_khz=2000000".into());
        }
        parts.extend(extra.iter().cloned());
        if display {
            parts.push("console=tty0".into());
        }
        parts.push(format!("console={}", self.arch.serial_console()));
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
            let console = format!("console={}", d.arch.serial_console());
            assert!(
                d.cmdline(&["nekos.seed=1".into()]).ends_with(&console),
                "{}",
                d.name
            );
        }
        assert_eq!(
            find("aarch64,kernel,initramfs")
                .unwrap()
                .cmdline(&["nekos.seed=1".into()]),
            "panic=-1 nekos.seed=1 console=tty0 console=ttyAMA0"
        );
    }

    #[test]
    fn the_uki_command_line_follows_the_direct_boot_rule() {
        // x86's embedded line is a constant of the build; arm64's is derived by the same rule.
        let x86 = find("fw,kernel,initramfs,uki").unwrap();
        assert_eq!(x86.direct_cmdline(&[], true), UKI_CMDLINE);
        let arm = find("aarch64,fw,kernel,initramfs,uki,sb-pass").unwrap();
        assert_eq!(arm.cmdline(&[]), "panic=-1 console=tty0 console=ttyAMA0");
    }

    #[test]
    fn the_arch_is_in_the_name_and_arm64_runs_on_virt() {
        for d in DEPLOYMENTS {
            let prefixed = d.name.starts_with(Arch::Aarch64.deployment_prefix());
            assert_eq!(prefixed, d.arch == Arch::Aarch64, "{}", d.name);
            if d.arch == Arch::Aarch64 {
                assert_eq!(d.machine(), Machine::Virt, "{}", d.name);
                // virt has no VGA, no microvm, no Debian OVMF, no network boot here.
                assert!(
                    matches!(d.display, Display::VirtioGpu | Display::SerialOnly),
                    "{}",
                    d.name
                );
                assert!(
                    matches!(
                        d.firmware,
                        Firmware::None(DirectMachine::Pc) | Firmware::Nekos(_)
                    ),
                    "{}",
                    d.name
                );
                assert!(!d.payload.is_stboot(), "{}", d.name);
            } else {
                assert_ne!(d.machine(), Machine::Virt, "{}", d.name);
            }
        }
    }

    #[test]
    fn every_arm64_deployment_has_its_x86_twin() {
        // Boot times are reported side by side: the twin is the name without the prefix
        // (the x86 direct boot on virtio-gpu for the arm64 one on virtio-gpu).
        for d in DEPLOYMENTS.iter().filter(|d| d.arch == Arch::Aarch64) {
            let twin = d.x86_twin().unwrap();
            assert_eq!(twin.arch, Arch::X86_64);
            assert_eq!(
                (twin.payload, twin.outcome),
                (d.payload, d.outcome),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn ramfb_only_with_firmware() {
        // Nothing but UEFI firmware sets up a framebuffer on ramfb.
        for d in DEPLOYMENTS {
            assert!(
                d.display != Display::Ramfb || !d.firmware.is_direct(),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn refusals_are_uki_boots_under_secure_boot() {
        // A refusal can only be asserted where the firmware verifies an image: a UKI with a
        // Secure Boot store (a plain bzImage would slip through the legacy loader).
        for d in DEPLOYMENTS.iter().filter(|d| d.outcome == Outcome::Refused) {
            assert!(matches!(d.payload, Payload::Uki { .. }), "{}", d.name);
            assert!(
                matches!(
                    d.firmware,
                    Firmware::Nekos(Store::Custom | Store::Microsoft)
                ),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn only_network_boots_are_refused_by_stage_1() {
        for d in DEPLOYMENTS {
            assert!(
                d.payload.is_stboot() || !matches!(d.outcome, Outcome::Stage1Refused(_)),
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn direct_boots_never_build_the_firmware() {
        for d in DEPLOYMENTS {
            let uses_firmware = matches!(d.firmware, Firmware::Nekos(_));
            assert_eq!(d.parts().firmware, uses_firmware, "{}", d.name);
        }
        assert_eq!(
            find("kernel,initramfs").unwrap().parts(),
            Parts {
                kernel: true,
                initramfs: true,
                ..Parts::NONE
            }
        );
        assert!(!find("kernel").unwrap().parts().initramfs);
    }

    #[test]
    fn the_default_deployment_is_the_secure_boot_uki_from_the_esp() {
        let d = find(DEFAULT_DEPLOYMENT).unwrap();
        assert_eq!(
            (d.payload, d.firmware, d.outcome),
            (
                uki(UkiImage::Signed, Medium::EspDisk),
                Firmware::Nekos(Store::Custom),
                Outcome::BootOk
            )
        );
        assert_eq!(d.secure_boot(), Some(true));
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = DEPLOYMENTS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DEPLOYMENTS.len());
    }
}
