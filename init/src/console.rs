//! Output: contract lines straight to the console, logs to /dev/kmsg.
//!
//! The `nekos: ...` markers are what the test harness waits for, so they go
//! to stdout (= /dev/console) directly, one write(2) per line so they are not
//! torn by concurrent writers, and independent of the kernel loglevel. A copy
//! goes to the log at debug level only (`nekos.loglevel=debug`): kmsg
//! rate-limits writers to a burst of 10 records per 5 s, and the boot markers
//! alone would use that up and hide real log messages.
//!
//! `log` records go to /dev/kmsg as `<pri>nekos-init[pid]: …`, one write(2) per record,
//! with the syslog priority of their level (error 3, warning 4, info 6, debug 7). Debug
//! must be 7: the kernel prints records below its console loglevel (7 by default) on every
//! console, so at 6 the debug copies of the markers came out twice on the serial line and
//! were drawn a second time by the framebuffer console (under TCG, ~25 ms of CPU a line
//! while the first cat is on its way). The panic hook writes through the same descriptor
//! (`kmsg_raw`), which holds no lock. Without /dev/kmsg, warnings and errors fall back to
//! the console.
//!
//! The screen's virtual terminal is in graphics mode while the display service owns the
//! screen (`set_screen_mode`): the framebuffer console then stops drawing kernel messages
//! nobody can see. Under TCG every line scrolls the whole 1280×800 console, about 25 ms of
//! the one vCPU each, taken from the compositor and viewer.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static KMSG: OnceLock<File> = OnceLock::new();

/// True while the prompt runs: then an `nekos# ` may be sitting on the
/// current console line, so markers start with a newline to stay at column 0.
static PROMPT_LIVE: AtomicBool = AtomicBool::new(false);

pub fn set_prompt_live(live: bool) {
    PROMPT_LIVE.store(live, Ordering::SeqCst);
}

/// "\n" while the prompt may be on screen, else "".
pub fn line_start() -> &'static str {
    if PROMPT_LIVE.load(Ordering::SeqCst) {
        "\n"
    } else {
        ""
    }
}

/// Write all of `bytes` to fd 1, retrying on EINTR/EAGAIN; errors are dropped
/// (there is nowhere else to report them).
fn write_stdout(bytes: &[u8]) {
    let mut rest = bytes;
    let mut tries = 0;
    while !rest.is_empty() && tries < 1000 {
        match nix::unistd::write(std::io::stdout(), rest) {
            Ok(0) => break,
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => tries += 1,
            Err(_) => break,
        }
    }
}

/// A contract marker: `nekos: <msg>` on its own line.
pub fn say(msg: &str) {
    write_stdout(format!("{}nekos: {msg}\n", line_start()).as_bytes());
    log::debug!("nekos: {msg}");
}

/// A whole line as it is (a timeline mark), without a kmsg copy.
pub fn line(text: &str) {
    write_stdout(format!("{}{text}\n", line_start()).as_bytes());
}

/// `nekos: warning: <msg>`.
pub fn warn(msg: &str) {
    write_stdout(format!("{}nekos: warning: {msg}\n", line_start()).as_bytes());
    log::debug!("nekos: warning: {msg}");
}

/// Open /dev/kmsg (after devtmpfs is mounted) and install the logger.
pub fn init_logger() {
    if let Ok(f) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/dev/kmsg")
    {
        let _ = KMSG.set(f);
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// The syslog priority of a `log` level in kmsg: debug records stay below the default
/// console loglevel (7), so the kernel keeps them in its log without printing them.
pub fn kmsg_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// One kmsg record: `<pri>nekos-init[pid]: msg`.
pub fn kmsg_raw(priority: u8, msg: &str) {
    if let Some(mut f) = KMSG.get() {
        let line = format!("<{priority}>nekos-init[{}]: {msg}\n", std::process::id());
        let _ = f.write_all(line.as_bytes());
    }
}

struct KmsgLogger;
static LOGGER: KmsgLogger = KmsgLogger;

impl log::Log for KmsgLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = kmsg_priority(record.level());
        if KMSG.get().is_some() {
            kmsg_raw(priority, &record.args().to_string());
        } else if priority <= 4 {
            write_stdout(format!("nekos-init: {}\n", record.args()).as_bytes());
        }
    }

    fn flush(&self) {}
}

/// What the screen's virtual terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenMode {
    /// The framebuffer console draws the kernel's messages.
    Text,
    /// A display server owns the screen; the console draws nothing.
    Graphics,
}

/// Switches the foreground virtual terminal (`/dev/tty0`) to `mode`. A system without
/// virtual terminals has no /dev/tty0 and nothing to switch; other failures are logged.
pub fn set_screen_mode(mode: ScreenMode) {
    let tty = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open("/dev/tty0")
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            log::warn!("/dev/tty0: {e}");
            return;
        }
    };
    if let Err(e) = crate::sys::set_vt_graphics(tty.as_fd(), mode == ScreenMode::Graphics) {
        log::warn!("/dev/tty0: cannot switch to {mode:?} mode: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_records_stay_below_the_default_console_loglevel() {
        // The kernel prints a record on the consoles when its priority is below the
        // console loglevel, 7 unless the command line says otherwise.
        const DEFAULT_CONSOLE_LOGLEVEL: u8 = 7;
        assert!(kmsg_priority(log::Level::Debug) >= DEFAULT_CONSOLE_LOGLEVEL);
        assert!(kmsg_priority(log::Level::Trace) >= DEFAULT_CONSOLE_LOGLEVEL);
        for level in [log::Level::Error, log::Level::Warn, log::Level::Info] {
            assert!(kmsg_priority(level) < DEFAULT_CONSOLE_LOGLEVEL, "{level}");
        }
        assert_eq!(kmsg_priority(log::Level::Error), 3);
        assert_eq!(kmsg_priority(log::Level::Warn), 4);
    }
}
