//! Decoding and wording of wait(2) statuses. Pure.
//!
//! We decode the raw status integer ourselves (instead of nix's WaitStatus)
//! because nix refuses statuses carrying real-time signal numbers, and a reap
//! loop in PID 1 must never drop a child on the floor.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Exited(i32),
    Signaled { signal: i32, core: bool },
    Stopped(i32),
    Continued,
}

/// Decode a raw status as returned by waitpid (Linux layout).
pub fn decode(raw: i32) -> Exit {
    let low = raw & 0x7f;
    if low == 0 {
        Exit::Exited((raw >> 8) & 0xff)
    } else if raw == 0xffff {
        Exit::Continued
    } else if raw & 0xff == 0x7f {
        Exit::Stopped((raw >> 8) & 0xff)
    } else {
        Exit::Signaled {
            signal: low,
            core: raw & 0x80 != 0,
        }
    }
}

/// Conventional name of a Linux x86_64 signal number.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match usize::try_from(sig).ok().and_then(|i| NAMES.get(i)) {
        Some(name) if sig > 0 => (*name).to_string(),
        _ if (34..=64).contains(&sig) => format!("SIGRTMIN+{}", sig - 34),
        _ => format!("SIG{sig}"),
    }
}

/// "exit status 3" / "killed by signal 9 (SIGKILL)": used after `nsh:` and
/// inside the service markers.
pub fn describe(exit: Exit) -> String {
    match exit {
        Exit::Exited(code) => format!("exit status {code}"),
        // The core flag is left out on purpose: the wording is a contract
        // the tests match on, and NekOS keeps RLIMIT_CORE at 0 anyway.
        Exit::Signaled { signal, .. } => {
            format!("killed by signal {signal} ({})", signal_name(signal))
        }
        Exit::Stopped(signal) => format!("stopped by signal {signal} ({})", signal_name(signal)),
        Exit::Continued => "continued".to_string(),
    }
}

/// Shell-style numeric status: the code, or 128+signal.
pub fn code(exit: Exit) -> i32 {
    match exit {
        Exit::Exited(code) => code,
        Exit::Signaled { signal, .. } | Exit::Stopped(signal) => 128 + signal,
        Exit::Continued => 0,
    }
}

/// An io::Error as the classic C text ("No such file or directory"),
/// without std's " (os error 2)" suffix, which reads badly inside markers.
pub fn io_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn decode_layouts() {
        assert_eq!(decode(0), Exit::Exited(0));
        assert_eq!(decode(3 << 8), Exit::Exited(3));
        assert_eq!(decode(255 << 8), Exit::Exited(255));
        assert_eq!(
            decode(9),
            Exit::Signaled {
                signal: 9,
                core: false
            }
        );
        assert_eq!(
            decode(11 | 0x80),
            Exit::Signaled {
                signal: 11,
                core: true
            }
        );
        assert_eq!(
            decode(40),
            Exit::Signaled {
                signal: 40,
                core: false
            }
        );
        assert_eq!(decode((19 << 8) | 0x7f), Exit::Stopped(19));
        assert_eq!(decode(0xffff), Exit::Continued);
    }

    #[test]
    fn wording() {
        assert_eq!(describe(Exit::Exited(3)), "exit status 3");
        assert_eq!(
            describe(Exit::Signaled {
                signal: 2,
                core: false
            }),
            "killed by signal 2 (SIGINT)"
        );
        assert_eq!(
            describe(Exit::Signaled {
                signal: 11,
                core: true
            }),
            "killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            describe(Exit::Signaled {
                signal: 35,
                core: false
            }),
            "killed by signal 35 (SIGRTMIN+1)"
        );
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(0), "SIG0");
        assert_eq!(signal_name(-1), "SIG-1");
        assert_eq!(signal_name(99), "SIG99");
    }

    #[test]
    fn error_text() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_error_text(&e), "No such file or directory");
        let e = std::io::Error::other("custom");
        assert_eq!(io_error_text(&e), "custom");
    }

    #[test]
    fn shell_codes() {
        assert_eq!(code(Exit::Exited(127)), 127);
        assert_eq!(
            code(Exit::Signaled {
                signal: 2,
                core: false
            }),
            130
        );
    }
}
