//! Progress for long steps: what is being built, the elapsed time and where the log is.
//! On a terminal one line is updated in place; elsewhere (CI) a line every 30 s.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    what: String,
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Progress {
    pub fn start(what: &str, log: Option<&std::path::Path>) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let log_note = log
            .map(|p| format!(" (log: {})", p.display()))
            .unwrap_or_default();
        eprintln!("nekos: {what}…{log_note}");
        let tty = std::io::stderr().is_terminal();
        let flag = done.clone();
        let label = what.to_string();
        let thread = std::thread::spawn(move || {
            let tick = if tty {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(30)
            };
            let mut next = Instant::now() + tick;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if Instant::now() >= next {
                    next += tick;
                    let line = format!("nekos: {label}… {}", fmt_duration(started.elapsed()));
                    let mut err = std::io::stderr();
                    if tty {
                        let _ = write!(err, "\r{line}\x1b[K");
                    } else {
                        let _ = writeln!(err, "{line}");
                    }
                    let _ = err.flush();
                }
            }
            if tty {
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            }
        });
        Progress {
            done,
            thread: Some(thread),
            started,
            what: what.to_string(),
        }
    }

    pub fn finish(mut self, outcome: &str) -> Duration {
        let elapsed = self.started.elapsed();
        self.stop();
        eprintln!(
            "nekos: {} {outcome} in {}",
            self.what,
            fmt_duration(elapsed)
        );
        elapsed
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
