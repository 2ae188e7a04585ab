//! Output: contract lines straight to the console, logs to /dev/kmsg.
//!
//! The `nekos: ...` markers are what the test harness waits for, so they go
//! to stdout (= /dev/console) directly, one write(2) per line so they are not
//! torn by concurrent writers, and independent of the kernel loglevel. A copy
//! goes to the log at debug level only (`nekos.loglevel=debug`): kmsg
//! rate-limits writers to a burst of 10 records per 5 s, and the boot markers
//! alone would use that up and hide real log messages.
//!
//! `log` records go to /dev/kmsg through the `kernlog` crate, re-targeted so
//! every record reads `<pri>nekos-init[pid]: …` (kernlog prints the record's
//! target, which would otherwise be a module path). The panic hook does not
//! use it: kernlog holds a mutex while writing, so the hook writes through
//! `kmsg_raw` on a second, lock-free descriptor instead. Without /dev/kmsg,
//! warnings and errors fall back to the console.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static KMSG: OnceLock<File> = OnceLock::new();
static KERNLOG: OnceLock<kernlog::KernelLog> = OnceLock::new();

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
    if let Ok(k) = kernlog::KernelLog::with_level(log::LevelFilter::Trace) {
        let _ = KERNLOG.set(k);
        // kernlog opens /dev/kmsg without O_CLOEXEC; services must not inherit it.
        crate::sys::set_cloexec_on_open("/dev/kmsg");
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
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
        let priority = match record.level() {
            log::Level::Error => 3,
            log::Level::Warn => 4,
            log::Level::Info => 6,
            log::Level::Debug | log::Level::Trace => 7,
        };
        if let Some(kernlog) = KERNLOG.get() {
            kernlog.log(
                &log::Record::builder()
                    .args(*record.args())
                    .level(record.level())
                    .target("nekos-init")
                    .build(),
            );
        } else if KMSG.get().is_some() {
            kmsg_raw(priority, &record.args().to_string());
        } else if priority <= 4 {
            write_stdout(format!("nekos-init: {}\n", record.args()).as_bytes());
        }
    }

    fn flush(&self) {}
}
