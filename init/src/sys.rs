//! The only place with `unsafe`: thin wrappers over syscalls that neither nix
//! nor std expose safely. Each block states the invariant it relies on.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A console line the child writes itself, right before exec:
/// `before` + its pid in decimal + `after`. Printed from the child so that it
/// is guaranteed to precede anything the program itself prints (the parent
/// would race with it).
#[derive(Debug, Clone)]
pub struct Announce {
    pub before: Vec<u8>,
    pub after: Vec<u8>,
}

/// What a freshly forked child does before exec.
#[derive(Debug, Clone)]
pub enum ChildSetup {
    /// A service: its own session (and so its own process group, which
    /// shutdown signals as a unit). The prompt needs the session to take a
    /// controlling terminal.
    NewSession(Option<Announce>),
    /// A command run from the prompt: own process group, made the foreground
    /// group of the terminal on `tty_fd`, so Ctrl-C reaches it and not us.
    Foreground { tty_fd: i32 },
}

/// Spawn `cmd` with clean signal state: empty mask and default dispositions.
/// Init blocks nearly every signal and the mask survives exec; the prompt
/// ignores SIGTTOU and friends; neither must leak into programs.
pub fn spawn(cmd: &mut Command, setup: ChildSetup) -> io::Result<Child> {
    let hook = move || -> io::Result<()> {
        match &setup {
            ChildSetup::NewSession(announce) => {
                // SAFETY: setsid is async-signal-safe and takes no pointers.
                if unsafe { libc::setsid() } < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(a) = announce {
                    announce_self(a);
                }
            }
            ChildSetup::Foreground { tty_fd } => {
                // SAFETY: setpgid/getpid/tcsetpgrp are async-signal-safe and
                // take no pointers; tty_fd is inherited from the parent, which
                // keeps it open across the fork. SIGTTOU is still ignored here
                // (inherited), so tcsetpgrp from a background group succeeds.
                unsafe {
                    if libc::setpgid(0, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // Failure is harmless (no tty); the parent retries too.
                    libc::tcsetpgrp(*tty_fd, libc::getpid());
                }
            }
        }
        reset_signals();
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec in the child. It only makes
    // async-signal-safe syscalls (setsid, setpgid, tcsetpgrp, getpid, write,
    // sigprocmask, sigaction), allocates nothing and takes no locks, so it
    // cannot deadlock on state copied from the parent.
    unsafe {
        cmd.pre_exec(hook);
    }
    cmd.spawn()
}

/// Write `before` + pid + `after` to fd 1 in one write(2). No allocation:
/// the line is assembled on the stack (and cut at 512 bytes).
fn announce_self(a: &Announce) {
    let mut line = [0u8; 512];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        for &b in bytes {
            if let Some(slot) = line.get_mut(len) {
                *slot = b;
                len += 1;
            }
        }
    };
    push(&a.before);
    // SAFETY: getpid cannot fail and takes no pointers.
    let pid = unsafe { libc::getpid() };
    let mut digits = [0u8; 12];
    push(format_decimal(pid.unsigned_abs(), &mut digits));
    push(&a.after);
    // SAFETY: `line` is a live stack buffer and `len` <= its length.
    unsafe {
        libc::write(1, line.as_ptr().cast(), len);
    }
}

/// Decimal digits of `n` in `buf`, without allocating.
pub fn format_decimal(mut n: u32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or_default()
}

/// Empty signal mask and SIG_DFL for every catchable signal. Async-signal-safe.
fn reset_signals() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use;
    // sigprocmask and sigaction only read the structures we pass, which live
    // on this stack frame. Errors (e.g. EINVAL for the libc-reserved signals
    // 32/33 or for KILL/STOP) are expected and ignored.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// waitpid(pid, flags) returning the raw status; Ok(None) when WNOHANG found
/// nothing. Raw, because nix rejects statuses with real-time signals.
pub fn waitpid_raw(pid: i32, flags: i32) -> io::Result<Option<(i32, i32)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable c_int for the duration of the call.
    let r = unsafe { libc::waitpid(pid, &mut status, flags) };
    match r {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// Make `fd` (a terminal) our controlling terminal, stealing it if needed.
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument, no pointer; fd is a live
    // descriptor borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY as _, 0 as libc::c_int) };
    if r == 0 {
        return Ok(());
    }
    // SAFETY: as above; argument 1 asks to steal it from another session
    // (allowed for root), e.g. from a previous prompt that was killed.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY as _, 1 as libc::c_int) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// EVIOCGNAME: the name of an evdev input device ("Power Button", ...).
pub fn evdev_name(fd: BorrowedFd<'_>) -> io::Result<String> {
    let mut buf = [0u8; 256];
    // _IOC(_IOC_READ, 'E', 0x06, len)
    let request: u32 = (2 << 30) | ((buf.len() as u32) << 16) | ((b'E' as u32) << 8) | 0x06;
    // SAFETY: the kernel writes at most `len` (encoded in the request) bytes
    // into `buf`, which is exactly that long and outlives the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned())
}

/// struct ifreq with the flags member of the union (40 bytes on Linux).
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Bring the loopback interface up (SIOCGIFFLAGS then SIOCSIFFLAGS on "lo").
pub fn loopback_up(sock: BorrowedFd<'_>) -> io::Result<()> {
    let mut req = IfreqFlags {
        name: [0; 16],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: `req` has the layout of struct ifreq (name[16] + short in the
    // union, padded to 40 bytes); the kernel reads/writes only within it.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    req.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: as above.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut req) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// For the prompt: catch `sig` with a handler that does nothing and does not
/// restart syscalls, so a blocking read returns EINTR and we redraw the prompt.
pub fn interrupt_on(sig: i32) -> io::Result<()> {
    set_action(sig, noop_handler as *const () as libc::sighandler_t, 0)
}

/// SIG_IGN for `sig` (the prompt ignores SIGTTOU/SIGTTIN/SIGTSTP).
pub fn ignore(sig: i32) -> io::Result<()> {
    set_action(sig, libc::SIG_IGN, 0)
}

fn set_action(sig: i32, handler: libc::sighandler_t, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: the struct is zero-initialised plain data with an empty mask;
    // `handler` is SIG_IGN or an extern "C" fn that touches no state, so it is
    // async-signal-safe whenever it runs.
    let r = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut())
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `KDSETMODE` (linux/kd.h): switch a virtual terminal between text and graphics mode.
const KDSETMODE: libc::c_ulong = 0x4B3A;

/// Puts the virtual terminal `fd` in graphics (`KD_GRAPHICS`) or text (`KD_TEXT`) mode.
pub fn set_vt_graphics(fd: BorrowedFd<'_>, graphics: bool) -> io::Result<()> {
    let mode: libc::c_int = if graphics { 1 } else { 0 };
    // SAFETY: KDSETMODE takes the mode as an integer argument, not a pointer, so the
    // kernel reads none of our memory; fd is a live descriptor borrowed for the call (one
    // that is not a VT fails with ENOTTY).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), KDSETMODE as _, mode) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        let mut b = [0u8; 12];
        assert_eq!(format_decimal(0, &mut b), b"0");
        assert_eq!(format_decimal(7, &mut b), b"7");
        assert_eq!(format_decimal(4194304, &mut b), b"4194304");
        assert_eq!(format_decimal(u32::MAX, &mut b), b"4294967295");
    }
}
