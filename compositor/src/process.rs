//! The viewer child process: start it on a socketpair, watch it through a pidfd, stop it.

use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::sys;

/// Starts the viewer with `WAYLAND_SOCKET` set to its end of a fresh socketpair and
/// returns the child and our end. The child gets the compositor's environment (with
/// `XDG_RUNTIME_DIR` put back if `ensure_runtime_dir` changed it); std resets the
/// signal mask in the child, so it does not inherit the signals we block.
pub fn spawn_viewer(
    viewer: &Path,
    args: &[String],
    original_runtime_dir: Option<Option<std::ffi::OsString>>,
) -> Result<(Child, UnixStream), String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let child_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(viewer);
    cmd.args(args)
        .env("WAYLAND_SOCKET", child_fd.to_string())
        .env_remove("WAYLAND_DISPLAY");
    match original_runtime_dir {
        Some(Some(v)) => {
            cmd.env("XDG_RUNTIME_DIR", v);
        }
        Some(None) => {
            cmd.env_remove("XDG_RUNTIME_DIR");
        }
        None => {}
    }
    // The child inherits its end because that end is not close-on-exec (std opens
    // everything with O_CLOEXEC). Clearing the flag here, rather than in a pre_exec hook
    // between fork and exec, leaves std free to start the child with posix_spawn (a
    // vfork: no copy of our page tables, no copy-on-write faults in the DRM setup that
    // follows), which under TCG is the cheaper start. The compositor spawns nothing else,
    // so no other child inherits the socket meanwhile (in the multi-threaded tests one
    // might, which only keeps that socket open until the other child exits).
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty())
        .map_err(|e| format!("socketpair: {e}"))?;
    let spawned = cmd.spawn();
    // Closes the child's end in this process.
    drop(theirs);
    let child = spawned.map_err(|e| format!("start viewer {}: {e}", viewer.display()))?;
    Ok((child, ours))
}

/// A descriptor that becomes readable when `child` exits. Unlike SIGCHLD it needs no
/// process-wide signal mask, so it also works inside a multi-threaded test.
pub fn pidfd(child: &Child) -> Result<OwnedFd, String> {
    rustix::process::pidfd_open(Pid::from_child(child), PidfdFlags::NONBLOCK)
        .map_err(|e| format!("pidfd_open: {e}"))
}

/// Terminates `child` (SIGTERM, then SIGKILL after a second) and reaps it. Returns its
/// exit code if it had already exited on its own.
pub fn stop(mut child: Child) -> Option<i32> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(exit_code(st));
    }
    let _ = rustix::process::kill_process(Pid::from_child(&child), Signal::TERM);
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Shell-style exit code: the code, or 128 + signal.
pub fn exit_code(st: ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    }
}

fn writable_dir(p: &Path) -> bool {
    p.is_dir() && rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok()
}

/// If neither $XDG_RUNTIME_DIR nor the temp dir is writable, sets XDG_RUNTIME_DIR to a
/// writable tmpfs. Returns `Some(original value)` if it changed the variable, so the
/// viewer can get the original back. Call before threads start.
pub fn ensure_runtime_dir() -> Option<Option<std::ffi::OsString>> {
    let original = std::env::var_os("XDG_RUNTIME_DIR");
    if original
        .as_ref()
        .is_some_and(|d| writable_dir(Path::new(d)))
    {
        return None;
    }
    if writable_dir(&std::env::temp_dir()) {
        return None;
    }
    for cand in ["/run", "/dev/shm", "/dev"] {
        if writable_dir(Path::new(cand)) {
            sys::set_env_single_threaded("XDG_RUNTIME_DIR", cand);
            return Some(original);
        }
    }
    None
}
