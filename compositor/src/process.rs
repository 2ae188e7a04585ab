//! The viewer child process and signal handling (signalfd).

use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};

const HANDLED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGCHLD];

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in HANDLED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks SIGTERM/SIGINT/SIGCHLD and returns a signalfd that reports them.
pub fn block_signals_and_open_signalfd() -> Result<OwnedFd, String> {
    let set = handled_set();
    // SAFETY: standard signal mask and signalfd calls with a valid set.
    unsafe {
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err("pthread_sigmask failed".into());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(format!("signalfd: {}", std::io::Error::last_os_error()));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Signal numbers waiting on the signalfd.
pub fn read_signals(fd: i32) -> Vec<i32> {
    let mut out = Vec::new();
    loop {
        // SAFETY: signalfd_siginfo is plain data; read at most its size.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = unsafe { libc::read(fd, (&raw mut info).cast(), size) };
        if n != size as isize {
            break;
        }
        out.push(info.ssi_signo as i32);
    }
    out
}

/// Starts the viewer with `WAYLAND_SOCKET` set to its end of a fresh socketpair.
/// The child gets the compositor's environment and an empty signal mask.
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
    // SAFETY: only async-signal-safe calls (fcntl, sigprocmask) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(child_fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(child_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("start viewer {}: {e}", viewer.display()))?;
    drop(theirs);
    Ok((child, ours))
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
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a NUL-terminated path.
    p.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0
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
            // SAFETY: called at the start of main, before any other thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", cand) };
            return Some(original);
        }
    }
    None
}
