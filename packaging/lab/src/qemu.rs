//! Boots a deployment in QEMU. Tests get a `Vm` with the serial line, QMP and markers to
//! wait for (never sleeps); users get QEMU in the foreground.

use crate::deployments::{
    Arch, Deployment, Display, Firmware, Machine, Medium, Network, Payload, UkiImage,
};
use crate::qmp::Qmp;
use anyhow::{Context, Result, bail};
use nekos_build::artifacts::Manifest;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Which initramfs: "production" or "test".
    pub variant: String,
    /// Extra kernel command-line words (before `console=ttyS0`).
    pub cmdline: Vec<String>,
    pub memory_mib: u32,
    pub accel: Accel,
    /// Where to keep the serial log (a copy of everything the guest printed).
    pub log: Option<PathBuf>,
    /// Give the UKI through this medium instead of the deployment's (tests cover both).
    pub medium: Option<Medium>,
    /// A software TPM: the control socket of a running `swtpm socket --tpm2` (tpm-tis on
    /// x86, tpm-tis-device on arm64's virt).
    pub tpm: Option<PathBuf>,
    /// The host QEMU runs on: decides the window and the hints in errors. The argv is a pure
    /// function of it, so the golden tests on Linux can ask for a Mac's command line.
    pub host: HostOs,
    /// `-M q35` instead of `pc` for a `pc` deployment (`bench --compare` boots its three
    /// systems on q35, issue #15).
    pub q35: bool,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            variant: "production".into(),
            cmdline: Vec::new(),
            memory_mib: 256,
            accel: Accel::Tcg,
            log: None,
            medium: None,
            tpm: None,
            host: HostOs::current(),
            q35: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// QEMU's emulator: works everywhere (the default on Linux: KVM fails on nested hosts).
    Tcg,
    /// Linux KVM, only for a guest of the host's own architecture.
    Kvm,
    /// Apple's Hypervisor.framework: arm64 guests on Apple Silicon.
    Hvf,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
        }
    }

    pub fn parse(text: &str) -> Result<Accel> {
        match text {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            "hvf" => Ok(Accel::Hvf),
            other => bail!("unknown accelerator {other:?}: expected tcg, kvm or hvf"),
        }
    }

    /// What `cargo nekos run` uses when `--accel` is not given: HVF for an arm64 guest on a
    /// Mac (Apple Silicon), else TCG.
    pub fn default_for(arch: Arch, host: HostOs) -> Accel {
        match (host, arch) {
            (HostOs::Macos, Arch::Aarch64) => Accel::Hvf,
            _ => Accel::Tcg,
        }
    }

    /// A hardware accelerator runs only guests of the host's architecture: refuses the
    /// others with what to use instead.
    pub fn check(self, arch: Arch, host: HostOs) -> Result<()> {
        match (self, host) {
            (Accel::Tcg, _) => Ok(()),
            (Accel::Hvf, HostOs::Macos) if arch == Arch::Aarch64 => Ok(()),
            (Accel::Hvf, _) => bail!(
                "--accel hvf runs arm64 guests (aarch64,… deployments) on a Mac with Apple Silicon; \
                 this is a {} guest on {}: use --accel tcg",
                arch,
                host.name()
            ),
            (Accel::Kvm, HostOs::Linux) if Some(arch) == host_cpu_arch() => Ok(()),
            (Accel::Kvm, HostOs::Linux) => bail!(
                "--accel kvm runs guests of the host's own architecture only; this is a {arch} \
                 guest: use --accel tcg"
            ),
            (Accel::Kvm, _) => bail!(
                "--accel kvm needs a Linux host; on {} use --accel {}",
                host.name(),
                Accel::default_for(arch, host).name()
            ),
        }
    }
}

/// The architecture this program runs on, when it is one a guest can have.
fn host_cpu_arch() -> Option<Arch> {
    if cfg!(target_arch = "x86_64") {
        Some(Arch::X86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(Arch::Aarch64)
    } else {
        None
    }
}

/// The host operating system QEMU runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostOs {
    Linux,
    /// macOS: QEMU from Homebrew, its Cocoa window, HVF for arm64 guests.
    Macos,
}

impl HostOs {
    pub fn current() -> HostOs {
        if cfg!(target_os = "macos") {
            HostOs::Macos
        } else {
            HostOs::Linux
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HostOs::Linux => "Linux",
            HostOs::Macos => "macOS",
        }
    }

    /// Whether QEMU can open a window: a Mac always has one (Cocoa, no DISPLAY variable);
    /// Linux when X11 or Wayland is there (`x_or_wayland`).
    pub fn has_window(self, x_or_wayland: bool) -> bool {
        self == HostOs::Macos || x_or_wayland
    }

    /// How to get QEMU for `arch` on this host (for the error when it is missing).
    pub fn qemu_hint(self, arch: Arch) -> String {
        let package = match arch {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        };
        match self {
            HostOs::Linux => format!(
                "Debian package {package} from bookworm-backports: \
                 apt-get install -t bookworm-backports {package} (packaging/host-setup.sh does it)"
            ),
            HostOs::Macos => "Homebrew: brew install qemu".to_string(),
        }
    }
}

/// How QEMU's display and serial line are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontend {
    /// Tests: no window, serial on a pipe, QMP on a socket.
    Headless,
    /// Users: a window if there is a display, the serial line on the terminal.
    Interactive { window: bool },
}

/// The CPU model of arm64 guests under TCG (see the `Machine::Virt` arm of [`argv`]).
/// Measured (direct boot to `nekos: boot ok`, serial only, 2 runs each): `max` 0.67 s,
/// `cortex-a72` 0.52–0.56 s, `max,pauth-impdef=on` 0.52 s — max's features (RNDR for the
/// CRNG) without the cost of emulating QARMA pointer authentication.
pub const VIRT_TCG_CPU: &str = "max,pauth-impdef=on";

pub const DEBIAN_OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const DEBIAN_OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
pub const DEBIAN_OVMF_SECBOOT_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";

/// The files one boot uses, decided before anything is written: the kernel, initramfs and
/// firmware images are the build's; the variable store, the UKI and the ESP disk are this
/// boot's own copies in its scratch directory (QEMU writes to the store; the attack images
/// are made per boot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootMedia {
    pub firmware: FirmwareMedia,
    pub boot: BootFrom,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirmwareMedia {
    /// Direct boot: QEMU's loader.
    None,
    /// The project's OVMF as `-bios`, its variables in QEMU's `uefi-vars-x64` device.
    PvVars { code: PathBuf, vars_json: PathBuf },
    /// A pflash firmware: read-only code, writable variables.
    Pflash { code: PathBuf, vars: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootFrom {
    /// `-kernel` [`-initrd`] `-append`.
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
    },
    /// A UKI as `-kernel`, no `-append`/`-initrd`: the stub uses its own `.cmdline`/`.initrd`.
    UkiKernelArg { uki: PathBuf },
    /// A GPT disk image with the UKI on its ESP, on virtio-blk.
    EspDisk { image: PathBuf },
}

/// What [`prepare`] must write before QEMU starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaWrite {
    /// A fresh copy of a variable store template.
    Copy { from: PathBuf, to: PathBuf },
    /// The deployment's UKI image (signed, or one of the attacks), as a file or on an ESP disk.
    Uki {
        image: UkiImage,
        stage1: bool,
        to: PathBuf,
        esp_disk: bool,
    },
}

/// Decides the boot's files from the deployment, the build manifest and the options; reads
/// and writes nothing (the manifest names the build's files).
pub fn plan(
    dep: &Deployment,
    manifest: &Manifest,
    opts: &BootOptions,
    scratch: &Path,
) -> Result<(BootMedia, Vec<MediaWrite>)> {
    let mut writes = Vec::new();
    let firmware = match dep.firmware {
        Firmware::None(_) => FirmwareMedia::None,
        // arm64: ArmVirtQemu keeps its variables in the second pflash bank, a fresh copy of
        // the store in its raw layout (QEMU writes to it).
        Firmware::Nekos(store) if dep.arch == Arch::Aarch64 => {
            let vars = scratch.join("vars.fd");
            writes.push(MediaWrite::Copy {
                from: manifest
                    .varstore_path(&format!("{}.fd", store.name()))?
                    .to_path_buf(),
                to: vars.clone(),
            });
            FirmwareMedia::Pflash {
                code: aarch64_firmware_code(manifest)?,
                vars,
            }
        }
        Firmware::Nekos(store) => {
            let vars_json = scratch.join("vars.json");
            writes.push(MediaWrite::Copy {
                from: manifest
                    .varstore_path(&format!("{}.json", store.name()))?
                    .to_path_buf(),
                to: vars_json.clone(),
            });
            FirmwareMedia::PvVars {
                code: manifest.firmware()?.pv_vars.clone(),
                vars_json,
            }
        }
        Firmware::DebianOvmf => {
            let vars = scratch.join("OVMF_VARS.fd");
            writes.push(MediaWrite::Copy {
                from: DEBIAN_OVMF_VARS.into(),
                to: vars.clone(),
            });
            FirmwareMedia::Pflash {
                code: DEBIAN_OVMF_CODE.into(),
                vars,
            }
        }
        Firmware::DebianSmmSecboot(store) => {
            let vars = scratch.join("OVMF_VARS.fd");
            writes.push(MediaWrite::Copy {
                from: manifest
                    .varstore_path(&format!("{}.fd", store.name()))?
                    .to_path_buf(),
                to: vars.clone(),
            });
            FirmwareMedia::Pflash {
                code: DEBIAN_OVMF_SECBOOT_CODE.into(),
                vars,
            }
        }
    };
    let boot = match dep.payload {
        Payload::Kernel => BootFrom::Kernel {
            kernel: manifest.kernel_path()?.to_path_buf(),
            initrd: None,
            append: dep.cmdline(&opts.cmdline),
        },
        Payload::KernelInitramfs => BootFrom::Kernel {
            kernel: manifest.kernel_path()?.to_path_buf(),
            initrd: Some(manifest.initramfs_path(&opts.variant)?.to_path_buf()),
            append: dep.cmdline(&opts.cmdline),
        },
        Payload::Uki { image, medium } | Payload::Stboot { image, medium, .. } => {
            let stage1 = dep.payload.is_stboot();
            match opts.medium.unwrap_or(medium) {
                Medium::KernelArg => {
                    let uki = scratch.join("nekos.efi");
                    writes.push(MediaWrite::Uki {
                        image,
                        stage1,
                        to: uki.clone(),
                        esp_disk: false,
                    });
                    BootFrom::UkiKernelArg { uki }
                }
                Medium::EspDisk => {
                    let image_path = scratch.join("esp.img");
                    writes.push(MediaWrite::Uki {
                        image,
                        stage1,
                        to: image_path.clone(),
                        esp_disk: true,
                    });
                    BootFrom::EspDisk { image: image_path }
                }
            }
        }
    };
    Ok((BootMedia { firmware, boot }, writes))
}

/// Writes what [`plan`] decided. Every UKI is checked to be for the deployment's
/// architecture before it is written.
pub fn prepare(
    writes: &[MediaWrite],
    manifest: &Manifest,
    opts: &BootOptions,
    dep: &Deployment,
) -> Result<()> {
    for w in writes {
        match w {
            MediaWrite::Copy { from, to } => {
                fs::copy(from, to).with_context(|| format!("cannot copy {}", from.display()))?;
            }
            MediaWrite::Uki {
                image,
                stage1,
                to,
                esp_disk,
            } => {
                let uki = if *stage1 {
                    stage1_uki_bytes(*image, manifest)?
                } else {
                    crate::attacks::uki_bytes(*image, manifest, &opts.variant)?
                };
                let source = if *stage1 {
                    manifest.stboot()?.uki.signed.path.clone()
                } else {
                    manifest.uki_path(&opts.variant, true)?.to_path_buf()
                };
                expect_arch(&uki, dep.arch, &source.display().to_string(), dep.name)?;
                let bytes = if *esp_disk {
                    esp_image_bytes(&uki, dep.arch, manifest.source_date_epoch)?
                } else {
                    uki
                };
                fs::write(to, bytes).with_context(|| format!("cannot write {}", to.display()))?;
            }
        }
    }
    Ok(())
}

/// QEMU's arguments: a pure function of the deployment, the prepared media and the options
/// (golden-tested for every deployment in packaging/tests/it/qemu_argv.rs).
pub fn argv(
    dep: &Deployment,
    media: &BootMedia,
    opts: &BootOptions,
    frontend: Frontend,
    qmp_socket: Option<&Path>,
) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |args: &[&str]| a.extend(args.iter().map(|s| s.to_string()));
    push(&["-nodefaults", "-no-user-config", "-no-reboot"]);
    push(&["-accel", opts.accel.name()]);
    push(&[
        "-smp",
        "1",
        "-m",
        &dep.memory_mib(opts.memory_mib).to_string(),
    ]);
    match dep.network() {
        // No NIC: otherwise the PXE option ROM spends seconds looking for a boot server.
        Network::None => push(&["-nic", "none"]),
        // User networking: DHCP from QEMU, the host's 127.0.0.1 as 10.0.2.2. The NIC has no
        // option ROM (no PXE attempt); the rng feeds the guest's CRNG for TLS.
        Network::User => push(&[
            "-netdev",
            "user,id=n0",
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
            "-device",
            "virtio-rng-pci",
        ]),
    }
    match dep.machine() {
        Machine::Pc => push(&["-M", if opts.q35 { "q35" } else { "pc" }]),
        Machine::Microvm => push(&["-M", "microvm"]),
        // The variable store's pflash is writable only from SMM: what makes an SMM Secure
        // Boot firmware's variables tamper-proof from the OS.
        Machine::Q35Smm => push(&[
            "-M",
            "q35,smm=on",
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-global",
            "ICH9-LPC.disable_s3=1",
        ]),
        // Under HVF the guest runs on the host CPU; highmem=on (QEMU's default, spelled out)
        // lets QEMU ≥ 7 fit the memory map into the host's IPA size by itself, where older
        // advice (highmem=off) now fails.
        // acpi=off on both: the arm64 kernel is configured for the device tree (no ACPI,
        // kernel-config/aarch64.config), and ArmVirtQemu hands the guest QEMU's device tree
        // only when QEMU offers no ACPI tables; otherwise the EFI stub boots the kernel with
        // an empty DTB and it never reaches its console.
        Machine::Virt if opts.accel != Accel::Tcg => {
            push(&["-M", "virt,highmem=on,acpi=off", "-cpu", "host"])
        }
        // TCG: every feature QEMU emulates (the RNG instructions the kernel's CRNG seeds
        // from at once) with a cheap pointer-authentication algorithm; see `VIRT_TCG_CPU`.
        Machine::Virt => push(&["-M", "virt,acpi=off", "-cpu", VIRT_TCG_CPU]),
    }
    match dep.display {
        Display::SerialOnly => {}
        Display::StdVga => push(&["-vga", "std"]),
        Display::VirtioGpu => push(&["-device", "virtio-gpu-pci"]),
        Display::Ramfb => push(&["-device", "ramfb"]),
    }
    // virt has no PS/2 controller: the keys (QMP send-key, the window) reach the guest
    // through a virtio keyboard, and only where there is a screen to show them on.
    if dep.machine() == Machine::Virt && dep.display != Display::SerialOnly {
        push(&["-device", "virtio-keyboard-pci"]);
    }
    match frontend {
        Frontend::Headless => push(&["-display", "none", "-serial", "stdio", "-monitor", "none"]),
        Frontend::Interactive { window } => {
            if !window || dep.display == Display::SerialOnly {
                push(&["-display", "none"]);
            }
            // mon:stdio: the serial line on the terminal, Ctrl-A X quits, Ctrl-A C monitor.
            push(&["-serial", "mon:stdio"]);
            // The window on a Mac is Cocoa's (no DISPLAY variable there); QEMU picks it.
        }
    }
    if let Some(sock) = qmp_socket {
        push(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", sock.display()),
        ]);
    }
    match &media.firmware {
        FirmwareMedia::None => {}
        // One arm, both flags: this firmware keeps no variables itself and hangs silently
        // without QEMU's variable device, so it is never started without it.
        FirmwareMedia::PvVars { code, vars_json } => push(&[
            "-bios",
            &code.display().to_string(),
            "-device",
            &format!("uefi-vars-x64,jsonfile={}", vars_json.display()),
        ]),
        FirmwareMedia::Pflash { code, vars } => push(&[
            "-drive",
            &format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ),
            "-drive",
            &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        ]),
    }
    match &media.boot {
        BootFrom::Kernel {
            kernel,
            initrd,
            append,
        } => {
            push(&["-kernel", &kernel.display().to_string()]);
            if let Some(initrd) = initrd {
                push(&["-initrd", &initrd.display().to_string()]);
            }
            push(&["-append", append]);
        }
        BootFrom::UkiKernelArg { uki } => push(&["-kernel", &uki.display().to_string()]),
        BootFrom::EspDisk { image } => push(&[
            "-drive",
            &format!("file={},format=raw,if=virtio,readonly=on", image.display()),
        ]),
    }
    if let Some(ctrl) = &opts.tpm {
        push(&[
            "-chardev",
            &format!("socket,id=chrtpm,path={}", ctrl.display()),
            "-tpmdev",
            "emulator,id=tpm0,chardev=chrtpm",
            "-device",
            // virt has no ISA bus: the TIS interface as a sysbus device (in the device tree).
            if dep.machine() == Machine::Virt {
                "tpm-tis-device,tpmdev=tpm0"
            } else {
                "tpm-tis,tpmdev=tpm0"
            },
        ]);
    }
    a
}

/// The QEMU command for a deployment: [`plan`], [`prepare`] (into `scratch`, this boot's own
/// directory), [`argv`].
pub fn command(
    dep: &Deployment,
    manifest: &Manifest,
    opts: &BootOptions,
    frontend: Frontend,
    scratch: &Path,
    qmp_socket: Option<&Path>,
) -> Result<Command> {
    // Wrong inputs first (they are wrong whatever QEMU is installed), then the tool.
    check_manifest_arch(dep, manifest)?;
    opts.accel.check(dep.arch, opts.host)?;
    let (media, writes) = plan(dep, manifest, opts, scratch)?;
    check_kernel_arch(dep, &media)?;
    prepare(&writes, manifest, opts, dep)?;
    let qemu = find_qemu(dep.arch, opts.host)?;
    let mut cmd = Command::new(qemu);
    cmd.args(argv(dep, &media, opts, frontend, qmp_socket));
    Ok(cmd)
}

/// The QEMU binary for `arch` on the search path, or an error naming it and where it comes
/// from.
pub fn find_qemu(arch: Arch, host: HostOs) -> Result<PathBuf> {
    find_qemu_in(arch, host, &std::env::var_os("PATH").unwrap_or_default())
}

/// [`find_qemu`] on the search path `path` (`PATH`'s syntax).
pub fn find_qemu_in(arch: Arch, host: HostOs, path: &std::ffi::OsStr) -> Result<PathBuf> {
    let name = arch.qemu_binary();
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "{name} not found on PATH: the {arch} deployments need it ({})",
                host.qemu_hint(arch)
            )
        })
}

/// The kernel QEMU is given directly must be the deployment's architecture (both kernels
/// carry an EFI stub, so their PE header says which): an x86 bzImage in the arm64 manifest
/// would otherwise fail silently inside QEMU.
fn check_kernel_arch(dep: &Deployment, media: &BootMedia) -> Result<()> {
    let BootFrom::Kernel { kernel, .. } = &media.boot else {
        return Ok(());
    };
    let mut head = Vec::with_capacity(4096);
    fs::File::open(kernel)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .with_context(|| format!("cannot read the kernel {}", kernel.display()))?;
    expect_arch(&head, dep.arch, &kernel.display().to_string(), dep.name)
}

/// Refuses a PE image (kernel, UKI) that is not for `arch`, naming the file, what it is,
/// and the architecture the deployment expected.
pub fn expect_arch(bytes: &[u8], arch: Arch, file: &str, deployment: &str) -> Result<()> {
    nekos_formats::pe::expect_machine(bytes, arch.pe_machine(), file)
        .with_context(|| format!("deployment {deployment} boots {arch} images only"))
}

/// The project's ArmVirtQemu image (pflash0) from the arm64 manifest.
fn aarch64_firmware_code(manifest: &Manifest) -> Result<PathBuf> {
    Ok(manifest.firmware_aarch64()?.code.clone())
}

/// A deployment boots from its own architecture's build: the x86 manifest given to an arm64
/// deployment (or the reverse) is refused before any file is read, naming both.
pub fn check_manifest_arch(dep: &Deployment, manifest: &Manifest) -> Result<()> {
    if manifest.arch != dep.arch {
        bail!(
            "deployment {} boots the {} build, but this manifest is the {} build's \
             (build it with `cargo nekos build --arch {}`; its manifest is \
             target/nekos/{}manifest.json)",
            dep.name,
            dep.arch,
            manifest.arch,
            dep.arch,
            match dep.arch {
                Arch::X86_64 => "",
                Arch::Aarch64 => "aarch64/",
            }
        );
    }
    Ok(())
}

/// The ESP disk image holding `uki` at the architecture's removable-media path: the build's
/// own function, so an x86 disk is the very image the build records.
fn esp_image_bytes(uki: &[u8], arch: Arch, source_date_epoch: u64) -> Result<Vec<u8>> {
    nekos_build::build::esp_image_bytes_for(uki, arch, source_date_epoch)
}

/// The stage-1 UKI as the deployment's `uki` says (the Secure Boot attacks apply to it too).
pub fn stage1_uki_bytes(kind: UkiImage, manifest: &Manifest) -> Result<Vec<u8>> {
    let uki = &manifest.stboot()?.uki;
    let read = |a: &nekos_build::artifacts::FileArtifact| {
        fs::read(&a.path).with_context(|| format!("cannot read {}", a.path.display()))
    };
    match kind {
        UkiImage::Signed => read(&uki.signed),
        UkiImage::Unsigned => read(&uki.unsigned),
        UkiImage::TamperedInitrd => crate::attacks::flip_initrd_byte(&read(&uki.signed)?),
        UkiImage::WrongKey => crate::attacks::sign_with_wrong_key(&read(&uki.unsigned)?),
    }
}

#[derive(Default)]
struct Serial {
    text: String,
    closed: bool,
}

/// A running guest under test.
pub struct Vm {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    serial: Arc<(Mutex<Serial>, Condvar)>,
    dir: PathBuf,
    pub started: Instant,
    qmp_path: PathBuf,
    log: Option<PathBuf>,
    /// The deployment's HTTPS server (stboot), stopped after QEMU.
    server: Option<crate::stboot_server::Running>,
}

static VM_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Vm {
    pub fn start(dep: &Deployment, manifest: &Manifest, opts: &BootOptions) -> Result<Vm> {
        let dir = std::env::temp_dir().join(format!(
            "nekos-vm-{}-{}",
            std::process::id(),
            VM_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let qmp_path = dir.join("qmp.sock");
        let mut cmd = command(
            dep,
            manifest,
            opts,
            Frontend::Headless,
            &dir,
            Some(&qmp_path),
        )?;
        let server = start_server(dep, manifest)?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} ({})",
                dep.arch.qemu_binary(),
                opts.host.qemu_hint(dep.arch)
            )
        })?;
        let serial = Arc::new((Mutex::new(Serial::default()), Condvar::new()));
        let log_file = match &opts.log {
            Some(p) => {
                if let Some(parent) = p.parent() {
                    fs::create_dir_all(parent)?;
                }
                Some(fs::File::create(p)?)
            }
            None => None,
        };
        for (stream, is_stderr) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                false,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                true,
            ),
        ] {
            let Some(mut stream) = stream else { continue };
            let serial = serial.clone();
            let mut log = log_file.as_ref().and_then(|f| f.try_clone().ok());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let (lock, cvar) = &*serial;
                    let Ok(mut s) = lock.lock() else { return };
                    if n == 0 {
                        if !is_stderr {
                            s.closed = true;
                        }
                        cvar.notify_all();
                        return;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    // QEMU's own stderr is kept in the same transcript, marked, so a failed
                    // test shows QEMU's complaints next to the guest's output.
                    if is_stderr {
                        for line in chunk.lines() {
                            s.text.push_str(&format!("\n[qemu stderr] {line}\n"));
                        }
                    } else {
                        s.text.push_str(&chunk.replace('\r', ""));
                    }
                    if let Some(f) = log.as_mut() {
                        let _ = f.write_all(&buf[..n]);
                    }
                    cvar.notify_all();
                }
            });
        }
        Ok(Vm {
            name: dep.name.to_string(),
            stdin: child.stdin.take(),
            child,
            serial,
            dir,
            started,
            qmp_path,
            log: opts.log.clone(),
            server,
        })
    }

    /// Everything the guest printed so far.
    pub fn transcript(&self) -> String {
        self.serial
            .0
            .lock()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    }

    /// A position in the transcript; `wait_from` only looks at what comes after it.
    pub fn mark(&self) -> usize {
        self.serial.0.lock().map(|s| s.text.len()).unwrap_or(0)
    }

    pub fn wait_for(&self, marker: &str, timeout: Duration) -> Result<Duration> {
        self.wait_from(0, marker, timeout)
            .map(|_| self.started.elapsed())
    }

    /// Waits until `marker` appears after byte `from`; returns the offset just past it.
    /// Fails at the timeout or as soon as QEMU exits, with the tail of the serial log.
    pub fn wait_from(&self, from: usize, marker: &str, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.serial;
        let mut s = lock
            .lock()
            .map_err(|_| anyhow::anyhow!("serial reader poisoned"))?;
        loop {
            if let Some(pos) = s.text.get(from..).and_then(|t| t.find(marker)) {
                return Ok(from + pos + marker.len());
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                let why = if s.closed { "QEMU exited" } else { "timed out" };
                let tail = nekos_build::util::tail_lines(&s.text, 40);
                drop(s);
                bail!(
                    "{}: {why} after {:.1}s waiting for {marker:?}{}\n--- last serial lines ---\n{tail}",
                    self.name,
                    self.started.elapsed().as_secs_f64(),
                    self.log
                        .as_ref()
                        .map(|p| format!(" (serial log: {})", p.display()))
                        .unwrap_or_default()
                );
            }
            s = cvar
                .wait_timeout(s, deadline - now)
                .map_err(|_| anyhow::anyhow!("serial reader poisoned"))?
                .0;
        }
    }

    /// Fails if `marker` appears anywhere in the transcript (e.g. a panic).
    pub fn assert_absent(&self, marker: &str) -> Result<()> {
        let text = self.transcript();
        if text.contains(marker) {
            bail!(
                "{}: unexpected {marker:?} on the serial line\n{}",
                self.name,
                nekos_build::util::tail_lines(&text, 40)
            );
        }
        Ok(())
    }

    /// Types on the serial line.
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("serial input closed")?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Types a command at the prompt and waits for the status line it produces.
    pub fn run_at_prompt(&mut self, line: &str, timeout: Duration) -> Result<String> {
        let from = self.mark();
        self.send(&format!("{line}\n"))?;
        let end = self.wait_from(from, "nekos# ", timeout)?;
        let text = self.transcript();
        Ok(text.get(from..end).unwrap_or("").to_string())
    }

    pub fn qmp(&self) -> Result<Qmp> {
        Qmp::connect(&self.qmp_path, Duration::from_secs(10))
    }

    /// What the deployment's HTTPS server was asked so far (`GET /path -> status`, errors).
    pub fn server_requests(&self) -> Vec<String> {
        self.server
            .as_ref()
            .map(|s| s.requests())
            .unwrap_or_default()
    }

    /// The deployment's server while it runs (e.g. nginx, for its access log).
    pub fn server(&self) -> Option<&crate::stboot_server::Running> {
        self.server.as_ref()
    }

    pub fn scratch_dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for QEMU to exit by itself (a guest poweroff, reboot or panic with -no-reboot).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: QEMU still running {:.0}s after the deadline\n{}",
                    self.name,
                    timeout.as_secs_f64(),
                    nekos_build::util::tail_lines(&self.transcript(), 40)
                );
            }
            // QEMU's exit is not observable as an event on a Child without a reaper
            // thread; a short poll interval is the bounded wait here.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server = None;
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The deployment's HTTPS server, if it has one (before QEMU starts: stage 1 fetches at once).
fn start_server(
    dep: &Deployment,
    manifest: &Manifest,
) -> Result<Option<crate::stboot_server::Running>> {
    dep.server()
        .map(|server| crate::stboot_server::start_server(server, manifest))
        .transpose()
}

/// `cargo nekos run`: QEMU in the foreground, a window when a display exists.
pub fn run_interactive(
    dep: &Deployment,
    manifest: &Manifest,
    opts: &BootOptions,
    qmp_socket: Option<&Path>,
) -> Result<ExitStatus> {
    let window = opts.host.has_window(
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some(),
    );
    let scratch = std::env::temp_dir().join(format!("nekos-run-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let mut cmd = command(
        dep,
        manifest,
        opts,
        Frontend::Interactive { window },
        &scratch,
        qmp_socket,
    )?;
    let server = start_server(dep, manifest)?;
    if let Some(s) = &server {
        eprintln!(
            "nekos: serving the OS package at https://{} (the guest's https://10.0.2.2:{})",
            s.addr(),
            nekos_build::stboot::PORT
        );
    }
    eprintln!(
        "nekos: booting {} ({}){}",
        dep.name,
        dep.about,
        if window {
            ""
        } else {
            "; serial console below, Ctrl-A X quits"
        }
    );
    let status = cmd.status().with_context(|| {
        format!(
            "cannot start {} ({})",
            dep.arch.qemu_binary(),
            opts.host.qemu_hint(dep.arch)
        )
    });
    drop(server);
    let _ = fs::remove_dir_all(&scratch);
    status
}

/// The file name of the manifest in a bundle directory.
pub const BUNDLE_MANIFEST: &str = "manifest.json";

/// Every file a deployment can boot from, by the name it gets in a bundle: the kernel, the
/// initramfs and UKI of each variant, the firmware and the variable stores. (Stage 1, the
/// userland binaries and the ESP images of the build are not needed: the launcher makes its
/// ESP disk from the UKI.)
fn boot_files(m: &mut Manifest) -> Vec<(String, &mut PathBuf)> {
    let mut files: Vec<(String, &mut PathBuf)> = Vec::new();
    if let Some(k) = m.kernel.as_mut() {
        let name = k
            .bzimage
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "kernel".into());
        files.push((format!("kernel/{name}"), &mut k.bzimage));
    }
    for (variant, a) in m.initramfs.iter_mut() {
        files.push((format!("initramfs/{variant}.cpio"), &mut a.path));
    }
    for (variant, u) in m.uki.iter_mut() {
        files.push((format!("uki/{variant}.efi"), &mut u.unsigned.path));
        files.push((format!("uki/{variant}.signed.efi"), &mut u.signed.path));
    }
    if let Some(fw) = m.firmware.as_mut() {
        files.push(("firmware/OVMF.pv-vars.fd".into(), &mut fw.pv_vars));
    }
    if let Some(fw) = m.firmware_aarch64.as_mut() {
        files.push(("firmware/QEMU_EFI.fd".into(), &mut fw.code));
        files.push(("firmware/QEMU_VARS.fd".into(), &mut fw.vars));
    }
    for (name, a) in m.varstores.iter_mut() {
        files.push((format!("varstores/{name}"), &mut a.path));
    }
    files
}

/// Copies what the deployments of `manifest` boot from into `dir`, with a manifest whose
/// paths are relative to `dir`: a directory to copy to another machine (a Mac) and boot
/// there with [`load_bundle`], without building. Returns the files written.
pub fn write_bundle(manifest: &Manifest, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut m = manifest.clone();
    // Only what a boot reads travels; the rest names files of this machine.
    m.userland.clear();
    m.esp.clear();
    m.stboot = None;
    let mut written = Vec::new();
    for (name, path) in boot_files(&mut m) {
        let to = dir.join(&name);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let tmp = to.with_extension("part");
        fs::copy(&*path, &tmp)
            .with_context(|| format!("cannot copy {} to {}", path.display(), tmp.display()))?;
        fs::rename(&tmp, &to).with_context(|| format!("cannot write {}", to.display()))?;
        written.push(to);
        *path = PathBuf::from(name);
    }
    let manifest_path = dir.join(BUNDLE_MANIFEST);
    m.save(&manifest_path)?;
    written.push(manifest_path);
    Ok(written)
}

/// The manifest of a bundle made by [`write_bundle`], its paths resolved against `dir`.
/// Every file must be there: a missing one is named (and its sha256 checked, so a truncated
/// copy is refused before QEMU sees it).
pub fn load_bundle(dir: &Path) -> Result<Manifest> {
    let manifest_path = dir.join(BUNDLE_MANIFEST);
    let mut m = Manifest::load(&manifest_path)?;
    let mut checks = Vec::new();
    if let Some(k) = &m.kernel {
        checks.push((k.bzimage.clone(), k.sha256.clone()));
    }
    for a in m.initramfs.values().chain(m.varstores.values()) {
        checks.push((a.path.clone(), a.sha256.clone()));
    }
    for u in m.uki.values() {
        checks.push((u.unsigned.path.clone(), u.unsigned.sha256.clone()));
        checks.push((u.signed.path.clone(), u.signed.sha256.clone()));
    }
    if let Some(fw) = &m.firmware {
        checks.push((fw.pv_vars.clone(), fw.pv_vars_sha256.clone()));
    }
    if let Some(fw) = &m.firmware_aarch64 {
        checks.push((fw.code.clone(), fw.code_sha256.clone()));
        checks.push((fw.vars.clone(), fw.vars_sha256.clone()));
    }
    for (_, path) in boot_files(&mut m) {
        if path.is_relative() {
            *path = dir.join(&*path);
        }
    }
    for (rel, sha) in checks {
        let path = if rel.is_relative() {
            dir.join(&rel)
        } else {
            rel
        };
        let got = nekos_build::util::sha256_file(&path).with_context(|| {
            format!(
                "bundle {}: cannot read {} (copy the whole directory `cargo nekos bundle` wrote)",
                dir.display(),
                path.display()
            )
        })?;
        if got != sha {
            bail!(
                "bundle {}: {} has sha256 {got}, the bundle's manifest says {sha} (an incomplete copy?)",
                dir.display(),
                path.display()
            );
        }
    }
    Ok(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::deployments::find;
    use nekos_formats::pe::{MACHINE_AARCH64, synthetic_efi_image, synthetic_efi_image_for};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nekos-qemu-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn hvf_is_the_macs_default_for_arm64_only() {
        assert_eq!(Accel::default_for(Arch::Aarch64, HostOs::Macos), Accel::Hvf);
        assert_eq!(Accel::default_for(Arch::X86_64, HostOs::Macos), Accel::Tcg);
        assert_eq!(Accel::default_for(Arch::Aarch64, HostOs::Linux), Accel::Tcg);
        for a in [Accel::Tcg, Accel::Kvm, Accel::Hvf] {
            assert_eq!(Accel::parse(a.name()).unwrap(), a);
        }
        assert!(
            Accel::parse("whpx")
                .unwrap_err()
                .to_string()
                .contains("tcg, kvm or hvf")
        );
    }

    #[test]
    fn a_hardware_accelerator_for_the_wrong_guest_or_host_is_refused() {
        Accel::Hvf.check(Arch::Aarch64, HostOs::Macos).unwrap();
        Accel::Tcg.check(Arch::X86_64, HostOs::Macos).unwrap();
        let e = Accel::Hvf
            .check(Arch::X86_64, HostOs::Macos)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x86_64 guest") && e.contains("--accel tcg"),
            "{e}"
        );
        let e = Accel::Hvf
            .check(Arch::Aarch64, HostOs::Linux)
            .unwrap_err()
            .to_string();
        assert!(e.contains("on Linux"), "{e}");
        let other = if cfg!(target_arch = "aarch64") {
            Arch::X86_64
        } else {
            Arch::Aarch64
        };
        let e = Accel::Kvm
            .check(other, HostOs::Linux)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("own architecture") && e.contains("--accel tcg"),
            "{e}"
        );
        let e = Accel::Kvm
            .check(Arch::Aarch64, HostOs::Macos)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--accel hvf"), "{e}");
    }

    #[test]
    fn a_missing_qemu_names_the_binary_and_the_package() {
        let empty = scratch("empty-path");
        let e = find_qemu_in(Arch::Aarch64, HostOs::Linux, empty.as_os_str())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("qemu-system-aarch64 not found")
                && e.contains("qemu-system-arm")
                && e.contains("bookworm-backports"),
            "{e}"
        );
        let e = find_qemu_in(Arch::Aarch64, HostOs::Macos, empty.as_os_str())
            .unwrap_err()
            .to_string();
        assert!(e.contains("brew install qemu"), "{e}");
        let e = find_qemu_in(Arch::X86_64, HostOs::Linux, empty.as_os_str())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("qemu-system-x86_64") && e.contains("qemu-system-x86 "),
            "{e}"
        );
        // Found when it is there.
        fs::write(empty.join("qemu-system-aarch64"), b"").unwrap();
        assert_eq!(
            find_qemu_in(Arch::Aarch64, HostOs::Linux, empty.as_os_str()).unwrap(),
            empty.join("qemu-system-aarch64")
        );
        fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn an_image_of_the_other_architecture_is_refused_by_name() {
        let x86 = synthetic_efi_image(64, true, None);
        let arm = synthetic_efi_image_for(MACHINE_AARCH64, 64, true, None);
        expect_arch(&arm, Arch::Aarch64, "nekos.efi", "aarch64,kernel,initramfs").unwrap();
        let e = format!(
            "{:#}",
            expect_arch(
                &x86,
                Arch::Aarch64,
                "/b/nekos.efi",
                "aarch64,fw,kernel,initramfs,uki,sb-pass"
            )
            .unwrap_err()
        );
        assert!(
            e.contains("aarch64,fw,kernel,initramfs,uki,sb-pass boots aarch64 images only")
                && e.contains(
                    "/b/nekos.efi is a PE image for x86_64 (0x8664), expected arm64 (0xaa64)"
                ),
            "{e}"
        );
        let e = format!(
            "{:#}",
            expect_arch(&arm, Arch::X86_64, "/b/Image", "kernel,initramfs").unwrap_err()
        );
        assert!(
            e.contains("/b/Image is a PE image for arm64 (0xaa64), expected x86_64"),
            "{e}"
        );
    }

    #[test]
    fn the_other_architectures_manifest_is_refused() {
        let arm = find("aarch64,kernel,initramfs").unwrap();
        let e = check_manifest_arch(arm, &Manifest::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("boots the aarch64 build")
                && e.contains("x86_64 build's")
                && e.contains("--arch aarch64"),
            "{e}"
        );
        let x86 = find("kernel,initramfs").unwrap();
        check_manifest_arch(x86, &Manifest::default()).unwrap();
    }

    /// A manifest whose kernel and initramfs are small files in `dir`.
    fn small_build(dir: &Path, kernel: &[u8]) -> Manifest {
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            fs::write(&path, bytes).unwrap();
            nekos_build::artifacts::FileArtifact {
                path,
                sha256: nekos_build::util::sha256_hex(bytes),
                size: bytes.len() as u64,
                inputs: Default::default(),
            }
        };
        let k = file("Image", kernel);
        let mut m: Manifest = serde_json::from_value(serde_json::json!({
            "schema": 1, "arch": "aarch64", "source_date_epoch": 1,
            "kernel": {
                "bzimage": k.path, "config": "", "sha256": k.sha256,
                "source": { "package": "", "version": "", "sha256": "" },
                "gcc": "", "binutils": "", "input_hash": "", "inputs": {},
                "clean_build_seconds": 0.0, "cached": true
            },
            "userland": {}, "initramfs": {}, "cats": {}
        }))
        .unwrap();
        m.initramfs.insert(
            "production".into(),
            file("initramfs.cpio", b"070701 not really"),
        );
        m
    }

    #[test]
    fn an_x86_kernel_in_the_arm64_build_is_refused_before_qemu_starts() {
        let dir = scratch("x86-kernel");
        let m = small_build(&dir, &synthetic_efi_image(64, true, None));
        let dep = find("aarch64,kernel,initramfs").unwrap();
        let opts = BootOptions {
            host: HostOs::Linux,
            ..BootOptions::default()
        };
        let e = format!(
            "{:#}",
            command(dep, &m, &opts, Frontend::Headless, &dir, None).unwrap_err()
        );
        assert!(
            e.contains(&format!(
                "{} is a PE image for x86_64",
                dir.join("Image").display()
            )) && e.contains("expected arm64"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bundle_boots_from_anywhere_and_a_bad_copy_is_named() {
        let dir = scratch("bundle");
        let build = dir.join("build");
        fs::create_dir_all(&build).unwrap();
        let m = small_build(
            &build,
            &synthetic_efi_image_for(MACHINE_AARCH64, 64, true, None),
        );
        let out = dir.join("copied-to-a-mac");
        let written = write_bundle(&m, &out).unwrap();
        assert_eq!(written.len(), 3, "{written:?}");
        // The build's files may be gone: the bundle stands alone.
        fs::remove_dir_all(&build).unwrap();
        let loaded = load_bundle(&out).unwrap();
        assert_eq!(loaded.kernel_path().unwrap(), out.join("kernel/Image"));
        assert_eq!(
            loaded.initramfs_path("production").unwrap(),
            out.join("initramfs/production.cpio")
        );
        let dep = find("aarch64,kernel,initramfs").unwrap();
        let (media, _) = plan(dep, &loaded, &BootOptions::default(), &dir).unwrap();
        check_kernel_arch(dep, &media).unwrap();
        // A truncated copy is refused by name.
        fs::write(out.join("kernel/Image"), b"MZ").unwrap();
        let e = load_bundle(&out).unwrap_err().to_string();
        assert!(e.contains("kernel/Image has sha256"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
