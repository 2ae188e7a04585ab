//! Boots a deployment in QEMU. Tests get a `Vm` with the serial line, QMP and markers to
//! wait for (never sleeps); users get QEMU in the foreground.

use crate::deployments::{
    Deployment, Display, Firmware, Machine, Medium, Network, Payload, UkiImage,
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
    /// A software TPM: the control socket of a running `swtpm socket --tpm2` (tpm-tis).
    pub tpm: Option<PathBuf>,
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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

/// How QEMU's display and serial line are connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frontend {
    /// Tests: no window, serial on a pipe, QMP on a socket.
    Headless,
    /// Users: a window if there is a display, the serial line on the terminal.
    Interactive { window: bool },
}

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

/// Writes what [`plan`] decided.
pub fn prepare(writes: &[MediaWrite], manifest: &Manifest, opts: &BootOptions) -> Result<()> {
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
                let bytes = if *esp_disk {
                    nekos_build::build::esp_image_bytes(&uki, manifest.source_date_epoch)?
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
    push(&[
        "-accel",
        if opts.accel == Accel::Kvm {
            "kvm"
        } else {
            "tcg"
        },
    ]);
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
        Machine::Pc => push(&["-M", "pc"]),
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
    }
    match dep.display {
        Display::SerialOnly => {}
        Display::StdVga => push(&["-vga", "std"]),
        Display::VirtioGpu => push(&["-device", "virtio-gpu-pci"]),
        Display::Ramfb => push(&["-device", "ramfb"]),
    }
    match frontend {
        Frontend::Headless => push(&["-display", "none", "-serial", "stdio", "-monitor", "none"]),
        Frontend::Interactive { window } => {
            if !window || dep.display == Display::SerialOnly {
                push(&["-display", "none"]);
            }
            // mon:stdio: the serial line on the terminal, Ctrl-A X quits, Ctrl-A C monitor.
            push(&["-serial", "mon:stdio"]);
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
            "tpm-tis,tpmdev=tpm0",
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
    let (media, writes) = plan(dep, manifest, opts, scratch)?;
    prepare(&writes, manifest, opts)?;
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(argv(dep, &media, opts, frontend, qmp_socket));
    Ok(cmd)
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
        let mut child = cmd
            .spawn()
            .context("cannot start qemu-system-x86_64 (Debian package qemu-system-x86 from bookworm-backports)")?;
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
    let window =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
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
    let status = cmd
        .status()
        .context("cannot start qemu-system-x86_64 (Debian package qemu-system-x86)");
    drop(server);
    let _ = fs::remove_dir_all(&scratch);
    status
}
