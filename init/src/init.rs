//! PID 1: one fallible setup phase, then one run loop that cannot fail, then
//! the shutdown path (shutdown.rs) — the only way out.
//!
//! Everything asynchronous (signals, power button, restart and display
//! timers) is a calloop source on a single thread, so the state below is
//! never shared and a child's pid is registered in `by_pid` before the loop
//! can possibly read its SIGCHLD.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calloop::generic::Generic;
use calloop::timer::{TimeoutAction, Timer};
use calloop::{EventLoop, Interest, LoopHandle, Mode, PostAction};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::backoff::{Backoff, Decision, Policy};
use crate::cmdline::{self, Config, DisplayMode, LogLevel};
use crate::console::ScreenMode;
use crate::shutdown::{self, Action};
use crate::sys::{self, ChildSetup};
use crate::timeline::{self, Phase};
use crate::{console, mounts, probe, status};

const COMPOSITOR: &str = "/bin/compositor";
const DRM_CARD: &str = "/dev/dri/card0";
const PROMPT: &str = "/bin/nsh";
/// Its presence makes this a stage-1 image (stboot's trust policy).
const TRUST_POLICY: &str = "/etc/trust_policy/trust_policy.json";
/// Stage 1 of the network boot, a program of its own (init/stboot/).
const STAGE1: &str = "/bin/nekos-stboot";
/// How often we look for /dev/dri/card0 while waiting for it.
const DISPLAY_POLL: Duration = Duration::from_millis(25);
/// How often /dev/input is rescanned for a late power button.
const INPUT_RESCAN: Duration = Duration::from_secs(2);
const KEY_POWER: u16 = 116;
const EV_KEY: u16 = 1;

/// Signals that report a fault in our own code; blocking them would turn a
/// crash into a hang, so they stay deliverable (and end in the panic hook
/// or the kernel's default action).
const SYNCHRONOUS: [Signal; 6] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prompt,
    Display,
    Extra,
    /// Stage 1 of the network boot (`/bin/nekos-stboot`): runs once; its exit
    /// decides the shutdown (0: kexec the kernel it loaded, else reboot).
    Stage1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    WaitingRestart,
    Rescue,
}

struct Service {
    name: String,
    kind: Kind,
    program: PathBuf,
    arg0: Option<String>,
    args: Vec<String>,
    backoff: Backoff,
    state: State,
    started: Instant,
    announced: bool,
}

impl Service {
    fn command_line(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

pub struct Init {
    handle: LoopHandle<'static, Init>,
    services: Vec<Service>,
    by_pid: BTreeMap<i32, usize>,
    orphans_reaped: u64,
    env: Vec<(String, String)>,
    request: Option<(Action, String)>,
    inputs_seen: BTreeSet<PathBuf>,
    /// Print timeline marks (`nekos.loglevel=debug`).
    timeline: bool,
}

/// Entry point when running as PID 1. Never returns.
pub fn main() -> ! {
    // The first timeline mark's time; printed once the log level is known.
    let start_ms = probe::boot_ms();
    // Signals first, before anything can fork or spawn a thread: every thread
    // and child inherits this mask, and PID 1 must not miss a SIGCHLD.
    let mask = blocked_set();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None) {
        console::warn(&format!("cannot block signals: {e}"));
    }
    // From here on a panic powers off cleanly instead of unwinding out of
    // main (which would exit PID 1 and panic the kernel).
    shutdown::install_panic_hook();
    console::say("init started");
    let mount_problems = mounts::mount_all();
    reopen_console();
    console::init_logger();
    for p in &mount_problems {
        log::warn!("{p}");
    }

    let mut event_loop = match EventLoop::<Init>::try_new() {
        Ok(l) => l,
        Err(e) => shutdown::run(Action::Poweroff, &format!("setup failed: event loop: {e}")),
    };
    let mut state = match setup(&event_loop, mask, start_ms) {
        Ok(s) => s,
        Err(e) => shutdown::run(Action::Poweroff, &format!("setup failed: {e}")),
    };
    console::say("boot ok");
    if state.timeline {
        console::line(&timeline::mark_line(probe::boot_ms(), Phase::BootOk));
    }

    // The run loop: total. Errors are logged and the loop goes on.
    loop {
        if let Err(e) = event_loop.dispatch(None, &mut state) {
            log::error!("event loop: {e}");
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some((action, reason)) = state.request.take() {
            shutdown::run(action, &reason);
        }
    }
}

fn blocked_set() -> SigSet {
    let mut set = SigSet::all();
    for s in SYNCHRONOUS {
        set.remove(s);
    }
    set
}

/// The kernel opened /dev/console for us from the initramfs; open it again
/// from devtmpfs so 0/1/2 are a real, fresh console (O_NOCTTY: PID 1 must
/// not get a controlling terminal and its job-control signals).
fn reopen_console() {
    let Ok(f) = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/console")
    else {
        return;
    };
    let _ = nix::unistd::dup2_stdin(&f);
    let _ = nix::unistd::dup2_stdout(&f);
    let _ = nix::unistd::dup2_stderr(&f);
    if f.as_raw_fd() <= 2 {
        // It landed on 0..2 itself (no stdio at start): keep it open.
        std::mem::forget(f);
    }
}

fn setup(
    event_loop: &EventLoop<'static, Init>,
    mask: SigSet,
    start_ms: u64,
) -> Result<Init, String> {
    // Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        log::warn!("reboot(CAD_OFF): {e}");
    }

    let cmdline_text = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let parsed = cmdline::parse(&cmdline_text);
    for w in &parsed.warnings {
        console::warn(w);
    }
    let config = parsed.config;
    log::set_max_level(match config.loglevel {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
    });
    let marks = config.loglevel == LogLevel::Debug;
    if marks {
        console::line(&timeline::mark_line(start_ms, Phase::InitStart));
    }

    let handle = event_loop.handle();
    let mut state = Init {
        handle: handle.clone(),
        services: Vec::new(),
        by_pid: BTreeMap::new(),
        orphans_reaped: 0,
        env: child_env(&config),
        request: None,
        inputs_seen: BTreeSet::new(),
        timeline: marks,
    };

    // Stage 1 of the network boot runs instead of the services (see below).
    let trust_policy = Path::new(TRUST_POLICY).exists();
    let stage1 = trust_policy && Path::new(STAGE1).exists();

    // The display first: everything it needs (mounts, console, the child environment
    // from the command line) is in place, and the rest of the setup — banner probes,
    // hostname, loopback, the signalfd, the input scan — runs while the compositor
    // pages itself in and sets the mode, instead of before it (~255 ms under TCG).
    // Reaping stays correct: SIGCHLD has been blocked since the first line of `main`,
    // so a child that exits before the signalfd below exists leaves it pending, and a
    // signalfd reports signals pending at its creation too; `reap` then collects every
    // exited child by waitpid(-1), whose pid `add_service` registered before we got here.
    if !stage1 {
        state.setup_display(&config);
    }

    console::say(&format!(
        "NekOS {} kernel {}",
        probe::read_version(),
        probe::read_kernel_release()
    ));
    console::say(&format!("secureboot={}", probe::read_secureboot()));
    console::say(&format!("tpm={}", probe::read_tpm()));
    console::say(&format!("sev-snp-report={}", probe::read_sev_snp()));
    console::say(&format!(
        "started {} ms after kernel start",
        probe::boot_ms()
    ));
    console::say(&format!("started by {}", config.bootflow.word()));

    if let Err(e) = nix::unistd::sethostname("nekos") {
        log::warn!("sethostname: {e}");
    }
    loopback_up();

    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    handle
        .insert_source(
            Generic::new(sfd, Interest::READ, Mode::Level),
            |_, sfd, st: &mut Init| {
                loop {
                    match sfd.read_signal() {
                        Ok(Some(info)) => st.on_signal(info.ssi_signo as i32, info.ssi_pid),
                        Ok(None) => break,
                        Err(nix::errno::Errno::EINTR) => {}
                        Err(e) => {
                            log::error!("signalfd read: {e}");
                            break;
                        }
                    }
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("signal source: {e}"))?;

    // The ACPI power button exists by now; later devices are found by the
    // periodic rescan (listing /dev/input is cheap).
    state.scan_inputs();
    if let Err(e) =
        handle.insert_source(Timer::from_duration(INPUT_RESCAN), |_, _, st: &mut Init| {
            st.scan_inputs();
            TimeoutAction::ToDuration(INPUT_RESCAN)
        })
    {
        log::warn!("input rescan timer: {e}");
    }

    // Stage 1 of the network boot: no services, no prompt; the stage-1
    // program's exit becomes a shutdown request (kexec, or reboot).
    if stage1 {
        console::say("stboot: trust policy found, running stage 1");
        let deadline = vec![
            "--deadline".to_string(),
            config.stboot_deadline_s.to_string(),
        ];
        state.add_service(Kind::Stage1, &deadline);
        return Ok(state);
    }
    if trust_policy {
        console::warn(&format!(
            "trust policy found, but no stage-1 program ({STAGE1}); booting normally"
        ));
    }

    // The other services start from the loop's first iteration, i.e. after
    // "boot ok", so every boot marker is out before the first prompt appears.
    // The prompt comes last for the same reason.
    handle
        .insert_source(Timer::immediate(), move |_, _, st: &mut Init| {
            for argv in &config.services {
                st.add_service(Kind::Extra, argv);
            }
            if config.shell {
                st.add_service(Kind::Prompt, &[]);
            }
            TimeoutAction::Drop
        })
        .map_err(|e| format!("start timer: {e}"))?;
    Ok(state)
}

/// The environment every child gets; the kernel's leftovers in ours are not
/// passed on.
fn child_env(config: &Config) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), "/bin".to_string()),
        ("HOME".to_string(), "/root".to_string()),
        ("TERM".to_string(), "linux".to_string()),
        ("XDG_RUNTIME_DIR".to_string(), "/run/user/0".to_string()),
        // Services keep routine lines off the console (the prompt's line) below debug.
        (
            "NEKOS_LOGLEVEL".to_string(),
            config.loglevel.word().to_string(),
        ),
    ];
    env.extend(
        config
            .viewer_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone())),
    );
    env
}

fn loopback_up() {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    match socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    ) {
        Ok(sock) => match sys::loopback_up(sock.as_fd()) {
            Ok(()) => log::debug!("loopback up"),
            Err(e) => log::info!("loopback: {e}"),
        },
        // No networking in this kernel: nothing to bring up.
        Err(e) => log::info!("loopback: no IPv4 sockets ({e})"),
    }
}

/// Did this chunk of input_event records contain a KEY_POWER press?
/// Layout on x86_64: struct timeval (16 bytes), u16 type, u16 code, i32 value.
pub fn power_pressed(buf: &[u8]) -> bool {
    buf.chunks_exact(24).any(|ev| {
        let u16_at = |i: usize| {
            ev.get(i..i + 2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_ne_bytes)
        };
        let value = ev
            .get(20..24)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_ne_bytes);
        u16_at(16) == Some(EV_KEY) && u16_at(18) == Some(KEY_POWER) && value == Some(1)
    })
}

impl Init {
    pub(crate) fn request(&mut self, action: Action, reason: String) {
        if self.request.is_none() {
            self.request = Some((action, reason));
        }
    }

    fn on_signal(&mut self, signo: i32, sender: u32) {
        let from = if sender == 0 {
            String::new()
        } else {
            format!(" from pid {sender}")
        };
        let Ok(sig) = Signal::try_from(signo) else {
            log::debug!("ignoring signal {signo}{from}");
            return;
        };
        match sig {
            Signal::SIGCHLD => self.reap(),
            Signal::SIGINT => self.request(Action::Reboot, format!("SIGINT{from}")),
            Signal::SIGTERM | Signal::SIGPWR | Signal::SIGUSR2 => {
                self.request(Action::Poweroff, format!("{}{from}", sig.as_str()));
            }
            Signal::SIGUSR1 => self.request(Action::Halt, format!("SIGUSR1{from}")),
            other => log::debug!("ignoring {}{from}", other.as_str()),
        }
    }

    /// Collect every exited child; ours go to the supervisor, the rest are
    /// adopted orphans (reparented to PID 1) and only counted.
    fn reap(&mut self) {
        loop {
            match sys::waitpid_raw(-1, libc::WNOHANG) {
                Ok(Some((pid, raw))) => {
                    let exit = status::decode(raw);
                    if let Some(idx) = self.by_pid.remove(&pid) {
                        shutdown::group_gone(pid);
                        if self
                            .services
                            .get(idx)
                            .is_some_and(|s| s.kind == Kind::Stage1)
                        {
                            self.stage1_done(exit);
                            continue;
                        }
                        self.on_stopped(idx, status::describe(exit));
                    } else {
                        self.orphans_reaped += 1;
                        log::debug!(
                            "reaped adopted orphan {pid} ({}); {} orphans so far",
                            status::describe(exit),
                            self.orphans_reaped
                        );
                    }
                }
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => break, // ECHILD: no children at all
            }
        }
    }

    /// Stage 1 ended: exit 0 means the verified kernel is loaded.
    fn stage1_done(&mut self, exit: status::Exit) {
        if exit == status::Exit::Exited(0) {
            self.request(Action::Kexec, "stboot: kernel loaded".into());
        } else {
            self.request(
                Action::Reboot,
                format!("stboot: stage 1 gave up ({})", status::describe(exit)),
            );
        }
    }

    fn add_service(&mut self, kind: Kind, argv: &[String]) {
        let (name, program, arg0, args, policy) = match kind {
            Kind::Prompt => {
                // /bin/nsh is a symlink to us; if it is missing, run ourselves
                // and select the prompt via argv[0].
                let program = if Path::new(PROMPT).exists() {
                    PathBuf::from(PROMPT)
                } else {
                    PathBuf::from("/proc/self/exe")
                };
                (
                    "nsh".to_string(),
                    program,
                    Some("nsh".to_string()),
                    Vec::new(),
                    Policy::PROMPT,
                )
            }
            Kind::Display => (
                "compositor".to_string(),
                PathBuf::from(COMPOSITOR),
                None,
                Vec::new(),
                Policy::SERVICE,
            ),
            Kind::Stage1 => (
                "stboot".to_string(),
                PathBuf::from(STAGE1),
                None,
                argv.to_vec(),
                Policy::SERVICE,
            ),
            Kind::Extra => {
                let Some(first) = argv.first() else { return };
                // A bare name means /bin/<name>, as at the prompt.
                let program = if first.contains('/') {
                    PathBuf::from(first)
                } else {
                    Path::new("/bin").join(first)
                };
                let name = program
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| first.clone());
                (
                    name,
                    program,
                    None,
                    argv.get(1..).unwrap_or_default().to_vec(),
                    Policy::SERVICE,
                )
            }
        };
        self.services.push(Service {
            name,
            kind,
            program,
            arg0,
            args,
            backoff: Backoff::new(policy),
            state: State::WaitingRestart,
            started: Instant::now(),
            announced: false,
        });
        self.start(self.services.len() - 1);
    }

    fn start(&mut self, idx: usize) {
        let Some(svc) = self.services.get_mut(idx) else {
            return;
        };
        svc.started = Instant::now();
        // The child announces itself before exec; do not let a missing
        // program claim it "started".
        if !svc.program.exists() {
            let what = format!("failed to start: {}: not found", svc.program.display());
            self.on_stopped(idx, what);
            return;
        }
        let mut cmd = Command::new(&svc.program);
        if let Some(a0) = &svc.arg0 {
            cmd.arg0(a0);
        }
        cmd.args(&svc.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir("/")
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        // The "started" marker is written by the child itself just before
        // exec, so it always precedes the program's own output.
        let mut after = b")\n".to_vec();
        let first_display = svc.kind == Kind::Display && !svc.announced;
        if first_display {
            after.extend_from_slice(b"nekos: display: compositor started\n");
        }
        let announce = sys::Announce {
            before: format!(
                "{}nekos: service {} started (pid ",
                console::line_start(),
                svc.name
            )
            .into_bytes(),
            after,
        };
        if svc.kind == Kind::Display {
            // Before the spawn, so nothing logged from here on is drawn behind the cat.
            console::set_screen_mode(ScreenMode::Graphics);
        }
        match sys::spawn(&mut cmd, ChildSetup::NewSession(Some(announce))) {
            Ok(child) => {
                // Dropping a std Child neither waits nor kills: we reap it
                // through SIGCHLD like every other process.
                let pid = child.id() as i32;
                drop(child);
                if svc.kind == Kind::Display && self.timeline {
                    let mark = timeline::mark_line(probe::boot_ms(), Phase::CompositorSpawned);
                    console::line(&mark);
                }
                svc.state = State::Running;
                svc.announced |= first_display;
                if svc.kind == Kind::Prompt {
                    console::set_prompt_live(true);
                }
                self.by_pid.insert(pid, idx);
                shutdown::group_started(pid); // setsid: pgid == pid
                log::debug!("nekos: service {} started (pid {pid})", svc.name);
            }
            Err(e) => self.on_stopped(
                idx,
                format!("failed to start: {}", status::io_error_text(&e)),
            ),
        }
    }

    fn on_stopped(&mut self, idx: usize, what: String) {
        let uptime = probe::boot_ms();
        let Some(svc) = self.services.get_mut(idx) else {
            return;
        };
        if svc.kind == Kind::Display {
            // The console shows again until (and unless) the display comes back.
            console::set_screen_mode(ScreenMode::Text);
        }
        let ran = svc.started.elapsed();
        match svc.backoff.on_exit(ran) {
            Decision::RestartAfter(delay) => {
                svc.state = State::WaitingRestart;
                console::say(&format!(
                    "service {} exited ({what}), restart in {} ms",
                    svc.name,
                    delay.as_millis()
                ));
                if svc.kind == Kind::Prompt {
                    // Its prompt is gone; the next one announces itself.
                    console::set_prompt_live(false);
                }
                let timer = Timer::from_duration(delay);
                if let Err(e) = self
                    .handle
                    .insert_source(timer, move |_, _, st: &mut Init| {
                        st.start(idx);
                        TimeoutAction::Drop
                    })
                {
                    log::error!("cannot schedule restart of {}: {e}", svc.name);
                    svc.state = State::Rescue;
                }
            }
            Decision::Rescue { failures } => {
                svc.state = State::Rescue;
                console::say(&format!(
                    "rescue: service {} failed {failures} times, not restarting",
                    svc.name
                ));
                console::say(&format!("rescue: last exit: {what}"));
                console::say(&format!("rescue: command: {}", svc.command_line()));
                console::say(&format!(
                    "rescue: last run lasted {} ms; system up {}.{:03} s",
                    ran.as_millis(),
                    uptime / 1000,
                    uptime % 1000
                ));
                console::say(
                    "rescue: init keeps running; use the serial prompt (help, dmesg, ps, ls, cat) to investigate",
                );
            }
        }
    }

    fn setup_display(&mut self, config: &Config) {
        if config.display == DisplayMode::Off {
            console::say("display: disabled by nekos.display=off, text mode");
            return;
        }
        if !Path::new(COMPOSITOR).exists() {
            console::say(&format!("display: no {COMPOSITOR}, text mode"));
            return;
        }
        // Poll for the DRM device from the loop instead of blocking: the
        // prompt and signals keep working while the GPU driver probes.
        if Path::new(DRM_CARD).exists() {
            // The usual case: built-in DRM drivers probe before init runs.
            self.add_service(Kind::Display, &[]);
            return;
        }
        let wait = Duration::from_millis(config.display_wait_ms);
        let since = Instant::now();
        let r = self.handle.insert_source(
            Timer::from_duration(DISPLAY_POLL),
            move |_, _, st: &mut Init| {
                if Path::new(DRM_CARD).exists() {
                    st.add_service(Kind::Display, &[]);
                    TimeoutAction::Drop
                } else if since.elapsed() >= wait {
                    console::say(&format!(
                        "display: no DRM device after {} ms, text mode",
                        wait.as_millis()
                    ));
                    TimeoutAction::Drop
                } else {
                    TimeoutAction::ToDuration(DISPLAY_POLL)
                }
            },
        );
        if let Err(e) = r {
            log::error!("display timer: {e}");
            console::say("display: no DRM device after 0 ms, text mode");
        }
    }

    /// Watch every not yet seen /dev/input/event* named "Power Button".
    fn scan_inputs(&mut self) {
        let Ok(dir) = fs::read_dir("/dev/input") else {
            return;
        };
        let mut fresh: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("event"))
            })
            .filter(|p| !self.inputs_seen.contains(p))
            .collect();
        fresh.sort();
        for path in fresh {
            self.inputs_seen.insert(path.clone());
            let Ok(file) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&path)
            else {
                continue;
            };
            match sys::evdev_name(file.as_fd()) {
                Ok(name) if name == "Power Button" => {}
                _ => continue,
            }
            log::info!("watching {} (Power Button)", path.display());
            let src = Generic::new(file, Interest::READ, Mode::Level);
            let watched = path.clone();
            let r = self
                .handle
                .insert_source(src, move |_, file, st: &mut Init| {
                    let mut buf = [0u8; 24 * 16];
                    loop {
                        match (&**file).read(&mut buf) {
                            Ok(0) => return Ok(PostAction::Continue),
                            Ok(n) => {
                                if power_pressed(buf.get(..n).unwrap_or_default()) {
                                    st.request(Action::Poweroff, "power button".to_string());
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                return Ok(PostAction::Continue);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                // Device gone: forget it so a rescan can find it again.
                                log::info!("{}: {e}; no longer watched", watched.display());
                                st.inputs_seen.remove(&watched);
                                return Ok(PostAction::Remove);
                            }
                        }
                    }
                });
            if let Err(e) = r {
                log::warn!("cannot watch {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut v = vec![0u8; 16];
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&code.to_ne_bytes());
        v.extend_from_slice(&value.to_ne_bytes());
        v
    }

    #[test]
    fn power_key_press_detected() {
        let mut buf = event(EV_KEY, KEY_POWER, 1);
        buf.extend(event(0, 0, 0)); // EV_SYN
        assert!(power_pressed(&buf));
    }

    #[test]
    fn other_events_ignored() {
        assert!(!power_pressed(&event(EV_KEY, KEY_POWER, 0))); // release
        assert!(!power_pressed(&event(EV_KEY, 115, 1)));
        assert!(!power_pressed(&event(2, KEY_POWER, 1)));
        assert!(!power_pressed(&event(EV_KEY, KEY_POWER, 1)[..23]));
        assert!(!power_pressed(&[]));
    }

    #[test]
    fn blocked_set_keeps_faults_deliverable() {
        let set = blocked_set();
        assert!(set.contains(Signal::SIGCHLD));
        assert!(set.contains(Signal::SIGTERM));
        assert!(set.contains(Signal::SIGINT));
        assert!(!set.contains(Signal::SIGSEGV));
        assert!(!set.contains(Signal::SIGBUS));
    }
}
