//! The one and only way NekOS goes down, whatever asked for it (signal, power
//! button, prompt, failed setup, panic):
//!
//! 1. SIGTERM to each service's process group, newest first, then to every
//!    other process (orphans live in groups we do not know);
//! 2. reap for a bounded time;
//! 3. SIGKILL whatever is left and reap again;
//! 4. sync(2) on a helper thread, bounded (a stuck device must not hang the
//!    power-off);
//! 5. unmount everything we can, remount the rest read-only;
//! 6. the reboot syscall.
//!
//! It never returns. If the reboot syscall itself fails we sleep forever:
//! exiting PID 1 would panic the kernel, which is worse than a hung guest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::{console, status, sys};

const TERM_GRACE: Duration = Duration::from_secs(3);
const KILL_GRACE: Duration = Duration::from_secs(1);
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Poweroff,
    Reboot,
    Halt,
    /// Into the kernel that stboot loaded with kexec_file_load.
    Kexec,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Poweroff => "poweroff",
            Action::Reboot => "reboot",
            Action::Halt => "halt",
            Action::Kexec => "kexec",
        }
    }

    fn mode(self) -> RebootMode {
        match self {
            Action::Poweroff => RebootMode::RB_POWER_OFF,
            Action::Reboot => RebootMode::RB_AUTOBOOT,
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
            Action::Kexec => RebootMode::RB_KEXEC,
        }
    }
}

/// Process groups of running services, in start order. A global because the
/// panic hook needs it and cannot reach the event loop's state.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static IN_SHUTDOWN: AtomicBool = AtomicBool::new(false);
static SHUTDOWN_THREAD: OnceLock<ThreadId> = OnceLock::new();

pub fn group_started(pgid: i32) {
    let mut g = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    g.retain(|&p| p != pgid);
    g.push(pgid);
}

pub fn group_gone(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pgid);
}

/// Any panic in init ends here: log it and power off through the normal path.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("init panicked: {info}");
        console::kmsg_raw(2, &msg);
        console::warn(&msg);
        if IN_SHUTDOWN.swap(true, Ordering::SeqCst) {
            if SHUTDOWN_THREAD.get() == Some(&std::thread::current().id()) {
                // Panicked inside the shutdown path itself: skip to the end.
                finish(Action::Poweroff);
            }
            // A helper thread (the sync thread): let it unwind; the shutdown
            // path does not depend on it finishing.
            return;
        }
        run(Action::Poweroff, "init panicked");
    }));
}

pub fn run(action: Action, reason: &str) -> ! {
    IN_SHUTDOWN.store(true, Ordering::SeqCst);
    let _ = SHUTDOWN_THREAD.set(std::thread::current().id());
    console::say(&format!("shutdown: {} ({reason})", action.word()));

    let groups: Vec<i32> = match GROUPS.try_lock() {
        Ok(g) => g.clone(),
        Err(_) => Vec::new(), // poisoned/held by a panicking frame: kill(-1) covers it
    };
    for &pgid in groups.iter().rev() {
        log::debug!("shutdown: SIGTERM to process group {pgid}");
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
    }
    // Everyone else (adopted orphans); -1 never includes PID 1 itself.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let _ = kill(Pid::from_raw(-1), Signal::SIGCONT);
    if !reap_all(TERM_GRACE) {
        log::warn!("shutdown: processes left after {TERM_GRACE:?}, sending SIGKILL");
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        if !reap_all(KILL_GRACE) {
            log::warn!("shutdown: processes still left after SIGKILL");
        }
    }

    // The display is gone: the console shows the last lines (a reboot's, a kexec's).
    console::set_screen_mode(console::ScreenMode::Text);
    sync_bounded();
    unmount_all();
    finish(action)
}

/// Reap until no children are left (true) or the time is up (false).
fn reap_all(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match sys::waitpid_raw(-1, libc::WNOHANG) {
            Ok(Some((pid, raw))) => {
                log::debug!(
                    "shutdown: reaped {pid} ({})",
                    status::describe(status::decode(raw))
                );
            }
            Ok(None) => {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => return true, // ECHILD: nobody left
        }
    }
}

fn sync_bounded() {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || {
            nix::unistd::sync();
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            if rx.recv_timeout(SYNC_TIMEOUT).is_err() {
                log::warn!("shutdown: sync did not finish within {SYNC_TIMEOUT:?}, going on");
            }
        }
        Err(e) => {
            log::warn!("shutdown: no sync thread ({e}), syncing inline");
            nix::unistd::sync();
        }
    }
}

/// Unmount in reverse mount order; what stays busy (e.g. /dev, where the
/// console is open) is remounted read-only instead.
fn unmount_all() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let targets: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().nth(1))
        .map(unescape_mount_path)
        .collect();
    for target in targets.iter().rev() {
        if target == "/" {
            continue;
        }
        if nix::mount::umount2(target.as_str(), MntFlags::empty()).is_err() {
            let _ = nix::mount::mount(
                None::<&str>,
                target.as_str(),
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            );
        }
    }
    let _ = nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    );
}

/// /proc/self/mounts escapes space, tab, newline and backslash as \ooo.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b.get(i), octal) {
            (Some(b'\\'), Some(d)) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            (Some(&c), _) => {
                out.push(c);
                i += 1;
            }
            (None, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last line, then the syscall. Never returns.
fn finish(action: Action) -> ! {
    console::say(&format!("{} now", action.word()));
    let Err(e) = nix::sys::reboot::reboot(action.mode());
    if action == Action::Kexec {
        // Nothing loaded after all: a plain reboot is the recovery.
        console::warn(&format!("kexec failed: {e}; rebooting instead"));
        console::say("reboot now");
        let Err(e) = nix::sys::reboot::reboot(RebootMode::RB_AUTOBOOT);
        console::warn(&format!("reboot syscall failed: {e}; sleeping forever"));
    } else {
        console::warn(&format!("reboot syscall failed: {e}; sleeping forever"));
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(Action::Poweroff.word(), "poweroff");
        assert_eq!(Action::Reboot.word(), "reboot");
        assert_eq!(Action::Halt.word(), "halt");
        assert_eq!(Action::Kexec.word(), "kexec");
    }

    #[test]
    fn mount_path_unescape() {
        assert_eq!(unescape_mount_path("/a\\040b"), "/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/x\\"), "/x\\");
        assert_eq!(unescape_mount_path("/x\\09"), "/x\\09");
    }

    #[test]
    fn groups_registry() {
        group_started(10);
        group_started(20);
        group_started(10);
        assert_eq!(*GROUPS.lock().unwrap(), vec![20, 10]);
        group_gone(20);
        group_gone(10);
        assert!(GROUPS.lock().unwrap().is_empty());
    }
}
