//! nekos-viewer: a full-screen cat slideshow, a Wayland (wl_shm + xdg-shell) client.
//! The slideshow is the library (`slideshow.rs`); this wrapper reads the command line
//! and environment and connects through WAYLAND_SOCKET / WAYLAND_DISPLAY.

use std::fs::{File, OpenOptions};
use std::io::Write;

use nekos_viewer::config::{Config, USAGE, list_photos};
use nekos_viewer::slideshow::{self, Level};
use nekos_viewer::timeline;
use wayland_client::Connection;

/// Where the log lines go. In NekOS our stdout is the serial console (init and the
/// compositor pass theirs on), and that is where the prompt is: a line per photo every few
/// seconds would land in the middle of what someone types. So notices (the first photo,
/// problems) go to stdout; every line also goes to the kernel log at debug priority, for
/// `dmesg` (the kernel's default console level keeps debug records off the console, so it
/// never prints a second copy); routine lines reach stdout only with NEKOS_LOGLEVEL=debug
/// (init sets it from `nekos.loglevel=`), or when there is no kernel log to keep them.
/// Timeline marks (`nekos: t=<ms> <phase>`) are for the bench: only at debug level, on
/// stderr and in the kernel log, never on stdout between the notices.
struct Sink {
    kmsg: Option<File>,
    routine_to_stdout: bool,
    debug: bool,
}

impl Sink {
    fn open() -> Sink {
        let debug = match std::env::var("NEKOS_LOGLEVEL").ok().as_deref() {
            None | Some("error" | "warn" | "info") => false,
            Some("debug") => true,
            Some(other) => {
                eprintln!(
                    "viewer: ignoring NEKOS_LOGLEVEL={other:?}: expected error, warn, info or debug"
                );
                false
            }
        };
        // Not there or not ours (a desktop test run as a user): stdout keeps everything.
        let kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        let routine_to_stdout = debug || kmsg.is_none();
        Sink {
            kmsg,
            routine_to_stdout,
            debug,
        }
    }

    fn log(&mut self, level: Level, line: &str) {
        if level == Level::Timeline {
            if !self.debug {
                return;
            }
            // One write(2) per line, so the console never splits it between processes.
            let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
        } else if level == Level::Notice || self.routine_to_stdout {
            println!("{line}");
        }
        if let Some(k) = self.kmsg.as_mut() {
            // One write is one record; a rate-limited or failed one is only lost from dmesg.
            let _ = k.write_all(format!("<7>{line}\n").as_bytes());
        }
    }
}

fn main() {
    // Before anything else, so the mark says when the process started.
    let start_ms = timeline::now_ms();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let cfg = match Config::parse(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("viewer: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let photos = match list_photos(&cfg.dir) {
        Ok(p) => p,
        Err(e) => {
            println!("viewer: cannot read {}: {e}", cfg.dir.display());
            Vec::new()
        }
    };
    let mut sink = Sink::open();
    sink.log(
        Level::Timeline,
        &timeline::mark_line(start_ms, timeline::Phase::ViewerStart),
    );
    let log = Box::new(move |level, line: &str| sink.log(level, line));
    let result = Connection::connect_to_env()
        .map_err(|e| format!("wayland connect: {e}"))
        .and_then(|conn| slideshow::run_with_levels(conn, cfg, photos, log));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("viewer: {e}");
            1
        }
    };
    std::process::exit(code);
}
