//! Test-only program that prints the mode of the screen's virtual terminal (`/dev/tty0`):
//! `vtmode: graphics` or `vtmode: text`. The QEMU tests type it at the prompt to check that
//! init puts the console in graphics mode while the display runs and back in text mode
//! once it stops.
//!
//! `vtmode --kill NAME` first kills (SIGKILL, as a crash would) every process whose
//! command name is NAME, then waits up to 10 s for the text mode and prints the mode it
//! ends with. It polls: init restores the mode when it reaps the process and restarts the
//! service 100 ms later at the earliest, which switches it back.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `KDGETMODE` (linux/kd.h).
const KDGETMODE: libc::c_ulong = 0x4B3B;
const KD_GRAPHICS: libc::c_int = 1;
const WAIT: Duration = Duration::from_secs(10);

fn graphics(tty: &std::fs::File) -> Result<bool, String> {
    let mut mode: libc::c_int = -1;
    // SAFETY: KDGETMODE writes one int through the pointer, which points at the local
    // `mode` for the duration of the call; the descriptor is open.
    let r = unsafe {
        libc::ioctl(
            tty.as_raw_fd(),
            KDGETMODE as _,
            &mut mode as *mut libc::c_int,
        )
    };
    if r != 0 {
        return Err(format!("KDGETMODE: {}", std::io::Error::last_os_error()));
    }
    Ok(mode == KD_GRAPHICS)
}

/// SIGKILL to every process named `name`; how many there were.
fn kill_all(name: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            // SAFETY: kill(2) takes plain integers.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

fn run() -> Result<&'static str, String> {
    let tty = std::fs::File::open("/dev/tty0").map_err(|e| format!("/dev/tty0: {e}"))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name] = args.as_slice() {
        if flag != "--kill" {
            return Err(format!("usage: vtmode [--kill NAME] (got {flag})"));
        }
        if kill_all(name) == 0 {
            return Err(format!("no process named {name}"));
        }
        let start = Instant::now();
        while graphics(&tty)? && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(1));
        }
    } else if !args.is_empty() {
        return Err("usage: vtmode [--kill NAME]".to_string());
    }
    Ok(if graphics(&tty)? { "graphics" } else { "text" })
}

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    match run() {
        Ok(word) => {
            let _ = writeln!(out, "vtmode: {word}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(out, "vtmode: error: {e}");
            ExitCode::FAILURE
        }
    }
}
