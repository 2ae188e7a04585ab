//! `nsh`: the serial prompt. Same binary as init, selected by argv[0].
//!
//! It is a rescue tool, not a scripting shell: one command per line, quotes
//! for arguments with spaces, a handful of builtins, and external programs
//! run in the foreground with working Ctrl-C. The terminal stays in canonical
//! mode, so the kernel does line editing and echo (serial consoles and test
//! harnesses both cope with that best).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices};
use nix::unistd::Pid;

use crate::sys::{self, ChildSetup};
use crate::{status, words};

const PROMPT: &str = "nekos# ";

/// What a builtin asks the read loop to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit(u8),
}

pub struct Builtin {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    run: fn(&[String]) -> Flow,
}

/// The builtins, with their help text: `help` prints this table.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "help",
        usage: "help",
        help: "list the builtins",
        run: help,
    },
    Builtin {
        name: "ls",
        usage: "ls [path...]",
        help: "list a directory (default /)",
        run: ls,
    },
    Builtin {
        name: "cat",
        usage: "cat file...",
        help: "print files",
        run: cat,
    },
    Builtin {
        name: "echo",
        usage: "echo [word...]",
        help: "print the words",
        run: echo,
    },
    Builtin {
        name: "dmesg",
        usage: "dmesg [-n level]",
        help: "print the kernel log; -n sets what reaches the console (debug: all)",
        run: dmesg,
    },
    Builtin {
        name: "ps",
        usage: "ps",
        help: "list processes: PID PPID S COMMAND",
        run: ps,
    },
    Builtin {
        name: "mounts",
        usage: "mounts",
        help: "list mounted filesystems",
        run: mounts,
    },
    Builtin {
        name: "uptime",
        usage: "uptime",
        help: "time since the kernel started",
        run: uptime,
    },
    Builtin {
        name: "reboot",
        usage: "reboot",
        help: "ask init to reboot (SIGINT to PID 1)",
        run: reboot,
    },
    Builtin {
        name: "poweroff",
        usage: "poweroff",
        help: "ask init to power off (SIGTERM to PID 1)",
        run: poweroff,
    },
    Builtin {
        name: "halt",
        usage: "halt",
        help: "ask init to halt (SIGUSR1 to PID 1)",
        run: halt,
    },
    Builtin {
        name: "exit",
        usage: "exit",
        help: "leave the prompt (init starts a new one)",
        run: exit,
    },
];

pub fn find_builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub fn main() -> ExitCode {
    // Under init we own the console; started from another prompt we just use
    // the terminal we were given.
    if nix::unistd::getppid().as_raw() == 1 {
        take_console();
    }
    // SIGINT/SIGQUIT interrupt the read (redraw the prompt) instead of killing
    // us; the job-control stop signals would only stop the prompt itself.
    let _ = sys::interrupt_on(libc::SIGINT);
    let _ = sys::interrupt_on(libc::SIGQUIT);
    for sig in [libc::SIGTTOU, libc::SIGTTIN, libc::SIGTSTP] {
        let _ = sys::ignore(sig);
    }
    sane_terminal();

    let mut pending = Vec::new();
    loop {
        out(PROMPT);
        let line = match read_line(&mut pending) {
            Read::Line(l) => l,
            Read::Interrupted => {
                out("\n");
                continue;
            }
            Read::Eof => {
                out("\n");
                return ExitCode::SUCCESS;
            }
        };
        match run_line(&line) {
            Flow::Continue => {}
            Flow::Exit(code) => return ExitCode::from(code),
        }
    }
}

enum Read {
    Line(String),
    Interrupted,
    Eof,
}

/// Read one line from stdin. In canonical mode one read returns one line,
/// but we still buffer in case a read returns less (or more).
fn read_line(pending: &mut Vec<u8>) -> Read {
    loop {
        if let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let rest = pending.split_off(pos + 1);
            let line = std::mem::replace(pending, rest);
            let text = String::from_utf8_lossy(line.get(..pos).unwrap_or_default()).into_owned();
            return Read::Line(apply_erase(&text));
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(io::stdin(), &mut buf) {
            Ok(0) => {
                if pending.is_empty() {
                    return Read::Eof;
                }
                // Ctrl-D after some text: take it as the line.
                let text = String::from_utf8_lossy(pending).into_owned();
                pending.clear();
                return Read::Line(apply_erase(&text));
            }
            Ok(n) => pending.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(nix::errno::Errno::EINTR) => {
                pending.clear();
                return Read::Interrupted;
            }
            Err(nix::errno::Errno::EAGAIN) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(_) => return Read::Eof,
        }
    }
}

/// The kernel only knows one erase character (DEL here); a terminal that
/// sends Backspace (^H) instead leaves it in the line. Apply both, and drop
/// a stray CR from terminals that send CR LF.
pub fn apply_erase(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        match c {
            '\u{8}' | '\u{7f}' => {
                out.pop();
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

pub fn run_line(line: &str) -> Flow {
    let argv = match words::split(line) {
        Ok(a) => a,
        Err(e) => {
            err(&format!("nsh: syntax error: {e}"));
            return Flow::Continue;
        }
    };
    let Some(name) = argv.first() else {
        return Flow::Continue;
    };
    if let Some(b) = find_builtin(name) {
        return (b.run)(argv.get(1..).unwrap_or_default());
    }
    run_external(&argv);
    Flow::Continue
}

/// A bare name is looked up in /bin only; anything with a slash is a path.
pub fn resolve(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("/bin").join(name)
    }
}

/// Run a program in the foreground and print exactly one status line;
/// returns the shell-style status code.
fn run_external(argv: &[String]) -> i32 {
    let Some(name) = argv.first() else { return 0 };
    let path = resolve(name);
    if !path.exists() {
        err(&format!("nsh: {name}: command not found"));
        out("nsh: exit status 127\n");
        return 127;
    }
    let tty = io::stdin();
    let saved = termios::tcgetattr(&tty).ok();
    let mut cmd = Command::new(&path);
    cmd.arg0(name).args(argv.get(1..).unwrap_or_default());
    let child = match sys::spawn(&mut cmd, ChildSetup::Foreground { tty_fd: 0 }) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            if code == 127 {
                err(&format!("nsh: {name}: command not found"));
            } else {
                err(&format!("nsh: {name}: {}", status::io_error_text(&e)));
            }
            out(&format!("nsh: exit status {code}\n"));
            return code;
        }
    };
    let pid = child.id() as i32;
    drop(child); // we wait ourselves, with WUNTRACED
    // Also from the parent side: whichever runs first wins the race.
    let _ = nix::unistd::setpgid(Pid::from_raw(pid), Pid::from_raw(pid));
    let _ = nix::unistd::tcsetpgrp(&tty, Pid::from_raw(pid));

    let exit = loop {
        match sys::waitpid_raw(pid, libc::WUNTRACED) {
            Ok(Some((_, raw))) => match status::decode(raw) {
                status::Exit::Stopped(_) | status::Exit::Continued => {
                    // No job control here: a stopped foreground job would
                    // hang the prompt, so let it go on.
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGCONT);
                }
                done => break Some(done),
            },
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(_) => break None,
        }
    };

    // Take the terminal back and undo whatever modes the program left.
    let _ = nix::unistd::tcsetpgrp(&tty, nix::unistd::getpgrp());
    if let Some(t) = saved {
        let _ = termios::tcsetattr(&tty, SetArg::TCSADRAIN, &t);
    }
    match exit {
        Some(e) => {
            // The tty echoed "^C" (or "^\\") without a newline: start the
            // status line at column 0.
            if let status::Exit::Signaled {
                signal: libc::SIGINT | libc::SIGQUIT,
                ..
            } = e
            {
                out("\n");
            }
            out(&format!("nsh: {}\n", status::describe(e)));
            status::code(e)
        }
        None => {
            out("nsh: exit status 0\n");
            0
        }
    }
}

fn out(s: &str) {
    let mut o = io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn err(s: &str) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{s}");
}

/// The real console device: the last entry of /sys/class/tty/console/active
/// ("tty0 ttyS0" -> ttyS0). /dev/console itself cannot do job control well.
pub fn console_name(active: &str) -> Option<&str> {
    active.split_whitespace().last()
}

fn take_console() {
    // New session (fails if we already lead one — then we keep it).
    let _ = nix::unistd::setsid();
    let active = fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(name) = console_name(&active) {
        candidates.push(Path::new("/dev").join(name));
    }
    candidates.push(PathBuf::from("/dev/console"));
    for path in candidates {
        let Ok(f) = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        else {
            continue;
        };
        if sys::set_controlling_tty(f.as_fd()).is_err() {
            continue;
        }
        let _ = nix::unistd::dup2_stdin(&f);
        let _ = nix::unistd::dup2_stdout(&f);
        let _ = nix::unistd::dup2_stderr(&f);
        let _ = nix::unistd::tcsetpgrp(io::stdin(), nix::unistd::getpgrp());
        return;
    }
}

/// Canonical mode with echo and signals, DEL as erase, ^Z disabled (no job
/// control to resume a stopped program).
fn sane_terminal() {
    let tty = io::stdin();
    let Ok(mut t) = termios::tcgetattr(&tty) else {
        return;
    };
    t.local_flags |= LocalFlags::ICANON
        | LocalFlags::ECHO
        | LocalFlags::ECHOE
        | LocalFlags::ECHOK
        | LocalFlags::ISIG
        | LocalFlags::IEXTEN;
    t.input_flags |= termios::InputFlags::ICRNL;
    t.output_flags |= termios::OutputFlags::OPOST | termios::OutputFlags::ONLCR;
    t.control_chars[SpecialCharacterIndices::VERASE as usize] = 0x7f;
    t.control_chars[SpecialCharacterIndices::VSUSP as usize] = 0;
    let _ = termios::tcsetattr(&tty, SetArg::TCSANOW, &t);
}

// ---- builtins ----

fn help(_: &[String]) -> Flow {
    let mut text = String::from("builtins:\n");
    for b in BUILTINS {
        text.push_str(&format!("  {:<16} {}\n", b.usage, b.help));
    }
    text.push_str("other commands run from /bin (a name) or a path; Ctrl-C interrupts them\n");
    out(&text);
    Flow::Continue
}

fn ls(args: &[String]) -> Flow {
    let targets: Vec<&str> = if args.is_empty() {
        vec!["/"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for (i, target) in targets.iter().enumerate() {
        if targets.len() > 1 {
            out(&format!("{}{target}:\n", if i > 0 { "\n" } else { "" }));
        }
        let md = match fs::symlink_metadata(target) {
            Ok(m) => m,
            Err(e) => {
                err(&format!("nsh: ls: {target}: {}", status::io_error_text(&e)));
                continue;
            }
        };
        if !md.is_dir() {
            out(&format!("{}\n", describe_entry(Path::new(target), target)));
            continue;
        }
        let mut names: Vec<String> = match fs::read_dir(target) {
            Ok(d) => d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                err(&format!("nsh: ls: {target}: {}", status::io_error_text(&e)));
                continue;
            }
        };
        names.sort();
        let mut text = String::new();
        for n in names {
            text.push_str(&describe_entry(&Path::new(target).join(&n), &n));
            text.push('\n');
        }
        out(&text);
    }
    Flow::Continue
}

/// `name/` for directories, `name -> target` for symlinks, `name` otherwise.
fn describe_entry(path: &Path, shown: &str) -> String {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            format!("{shown} -> {to}")
        }
        Ok(m) if m.is_dir() => format!("{shown}/"),
        Ok(m) if m.file_type().is_char_device() || m.file_type().is_block_device() => {
            format!("{shown} (device)")
        }
        _ => shown.to_string(),
    }
}

fn cat(args: &[String]) -> Flow {
    if args.is_empty() {
        err("nsh: usage: cat file...");
    }
    for f in args {
        match fs::read(f) {
            Ok(bytes) => {
                let mut o = io::stdout().lock();
                let _ = o.write_all(&bytes);
                let _ = o.flush();
            }
            Err(e) => err(&format!("nsh: cat: {f}: {}", status::io_error_text(&e))),
        }
    }
    Flow::Continue
}

fn echo(args: &[String]) -> Flow {
    out(&format!("{}\n", args.join(" ")));
    Flow::Continue
}

/// One /dev/kmsg record ("pri,seq,usec,flags;text") as a dmesg line.
pub fn format_kmsg(record: &str) -> Option<String> {
    let (header, text) = record.split_once(';')?;
    let mut fields = header.split(',');
    let _prio = fields.next()?;
    let _seq = fields.next()?;
    let usec: u64 = fields.next()?.parse().ok()?;
    // Continuation lines (" KEY=value") follow after a newline; skip them.
    let text = text.lines().next().unwrap_or_default();
    Some(format!(
        "[{:5}.{:06}] {text}",
        usec / 1_000_000,
        usec % 1_000_000
    ))
}

/// Priority names as syslog(3) spells them, most urgent first.
const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// `dmesg -n`'s argument as the kernel's console level (records more urgent than it
/// reach the console): a number 1-8, or a priority name, which shows that priority and
/// everything more urgent (as util-linux dmesg reads it: `debug` is 8, all records).
pub fn console_level(arg: &str) -> Option<u8> {
    match arg.parse::<u8>() {
        Ok(n) if (1..=8).contains(&n) => Some(n),
        Ok(_) => None,
        Err(_) => PRIORITIES
            .iter()
            .position(|p| *p == arg)
            .and_then(|i| u8::try_from(i + 1).ok()),
    }
}

/// `dmesg -n`: the first field of /proc/sys/kernel/printk is the console level (the
/// kernel leaves the other three as they are when only one is written).
fn set_console_level(arg: &str) -> Flow {
    let Some(level) = console_level(arg) else {
        err(&format!(
            "nsh: dmesg: -n {arg}: expected 1-8 or one of {}",
            PRIORITIES.join(", ")
        ));
        return Flow::Continue;
    };
    match fs::write("/proc/sys/kernel/printk", format!("{level}\n")) {
        Ok(()) => out(&format!("nsh: dmesg: console level {level}\n")),
        Err(e) => err(&format!(
            "nsh: dmesg: /proc/sys/kernel/printk: {}",
            status::io_error_text(&e)
        )),
    }
    Flow::Continue
}

fn dmesg(args: &[String]) -> Flow {
    match args {
        [] => {}
        [n, level] if n == "-n" => return set_console_level(level),
        _ => {
            err("nsh: dmesg: usage: dmesg [-n level]");
            return Flow::Continue;
        }
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
    {
        Ok(f) => f,
        Err(e) => {
            err(&format!(
                "nsh: dmesg: /dev/kmsg: {}",
                status::io_error_text(&e)
            ));
            return Flow::Continue;
        }
    };
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    loop {
        // Each read returns exactly one record.
        match nix::unistd::read(file.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
                if let Some(line) = format_kmsg(&rec) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            // The record we were about to read was overwritten: go on.
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::EINTR) => {}
            Err(_) => break, // EAGAIN: the end of the buffer
        }
    }
    out(&text);
    Flow::Continue
}

/// (pid, ppid, state, comm) from /proc/<pid>/stat. comm may contain spaces
/// and parentheses, so it ends at the *last* ')'.
pub fn parse_stat(stat: &str) -> Option<(i32, i32, char, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat.get(..open)?.trim().parse().ok()?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, ppid, state, comm))
}

fn ps(_: &[String]) -> Flow {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let mut text = String::from("PID PPID S COMMAND\n");
    for pid in pids {
        // A process may vanish between listing and reading: skip it.
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((pid, ppid, state, comm)) = parse_stat(&stat) {
            text.push_str(&format!("{pid} {ppid} {state} {comm}\n"));
        }
    }
    out(&text);
    Flow::Continue
}

fn mounts(_: &[String]) -> Flow {
    match fs::read_to_string("/proc/self/mounts") {
        Ok(t) => out(&t),
        Err(e) => err(&format!("nsh: mounts: {}", status::io_error_text(&e))),
    }
    Flow::Continue
}

/// "up 12.34 s" from the first field of /proc/uptime.
pub fn format_uptime(proc_uptime: &str) -> Option<String> {
    let secs: f64 = proc_uptime.split_whitespace().next()?.parse().ok()?;
    Some(format!("up {secs:.2} s"))
}

fn uptime(_: &[String]) -> Flow {
    match fs::read_to_string("/proc/uptime")
        .ok()
        .as_deref()
        .and_then(format_uptime)
    {
        Some(s) => out(&format!("{s}\n")),
        None => err("nsh: uptime: cannot read /proc/uptime"),
    }
    Flow::Continue
}

fn ask_init(sig: Signal, what: &str) -> Flow {
    match kill(Pid::from_raw(1), sig) {
        Ok(()) => out(&format!("nsh: asked init to {what}\n")),
        Err(e) => err(&format!("nsh: {what}: {e}")),
    }
    Flow::Continue
}

fn reboot(_: &[String]) -> Flow {
    ask_init(Signal::SIGINT, "reboot")
}

fn poweroff(_: &[String]) -> Flow {
    ask_init(Signal::SIGTERM, "power off")
}

fn halt(_: &[String]) -> Flow {
    ask_init(Signal::SIGUSR1, "halt")
}

fn exit(_: &[String]) -> Flow {
    Flow::Exit(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table() {
        for name in [
            "help", "ls", "cat", "dmesg", "ps", "mounts", "uptime", "reboot", "poweroff", "exit",
        ] {
            let b = find_builtin(name).unwrap();
            assert!(b.usage.starts_with(name));
            assert!(!b.help.is_empty());
        }
        assert!(find_builtin("sh").is_none());
        for (i, b) in BUILTINS.iter().enumerate() {
            assert!(BUILTINS.iter().skip(i + 1).all(|o| o.name != b.name));
        }
        assert_eq!(run_line("exit"), Flow::Exit(0));
        assert_eq!(run_line("   "), Flow::Continue);
    }

    #[test]
    fn erase_handling() {
        assert_eq!(apply_erase("lx\u{7f}s"), "ls");
        assert_eq!(apply_erase("ab\u{8}\u{8}\u{8}c"), "c");
        assert_eq!(apply_erase("ps\r"), "ps");
        assert_eq!(apply_erase("héj\u{7f}"), "hé");
    }

    #[test]
    fn resolution() {
        assert_eq!(resolve("orphans"), PathBuf::from("/bin/orphans"));
        assert_eq!(resolve("/usr/bin/x"), PathBuf::from("/usr/bin/x"));
        assert_eq!(resolve("./x"), PathBuf::from("./x"));
    }

    #[test]
    fn console_active() {
        assert_eq!(console_name("tty0 ttyS0\n"), Some("ttyS0"));
        assert_eq!(console_name("ttyS0\n"), Some("ttyS0"));
        assert_eq!(console_name("\n"), None);
    }

    #[test]
    fn stat_parsing() {
        assert_eq!(
            parse_stat("1 (nekos-init) S 0 1 1 0 -1 4194560"),
            Some((1, 0, 'S', "nekos-init".to_string()))
        );
        assert_eq!(
            parse_stat("42 (a) b) (c) Z 1 42 42"),
            Some((42, 1, 'Z', "a) b) (c".to_string()))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x)"), None);
    }

    #[test]
    fn kmsg_records() {
        assert_eq!(
            format_kmsg("6,339,5140900,-;NET: Registered protocol family 10\n").as_deref(),
            Some("[    5.140900] NET: Registered protocol family 10")
        );
        assert_eq!(
            format_kmsg("7,1,12,-;line\n SUBSYSTEM=x\n").as_deref(),
            Some("[    0.000012] line")
        );
        assert_eq!(format_kmsg("nonsense"), None);
    }

    #[test]
    fn console_levels() {
        assert_eq!(console_level("debug"), Some(8));
        assert_eq!(console_level("info"), Some(7));
        assert_eq!(console_level("emerg"), Some(1));
        assert_eq!(console_level("8"), Some(8));
        assert_eq!(console_level("1"), Some(1));
        for bad in ["0", "9", "", "loud", "-1"] {
            assert_eq!(console_level(bad), None, "{bad}");
        }
    }

    #[test]
    fn uptime_format() {
        assert_eq!(
            format_uptime("12.345 20.00\n").as_deref(),
            Some("up 12.35 s")
        );
        assert_eq!(format_uptime(""), None);
    }
}
