//! The slideshow: photos decoded ahead on a background thread, shown through the
//! Wayland window, moved by keys and a timer.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wayland_client::Connection;

use crate::ScaleMode;
use crate::config::Config;
use crate::order::Browser;
use crate::render::{Frame, message_frame, render_xrgb};
use crate::wl::{Waker, Window};

/// evdev key codes.
const KEY_SPACE: u32 = 57;
const KEY_RIGHT: u32 = 106;
const KEY_LEFT: u32 = 105;
const KEY_P: u32 = 25;
const KEY_HOME: u32 = 102;

struct Job {
    idx: usize,
    path: PathBuf,
    width: u32,
    height: u32,
    mode: ScaleMode,
}

struct Done {
    idx: usize,
    width: u32,
    height: u32,
    result: Result<Frame, String>,
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Decodes and scales photos on a background thread, ahead of time.
fn start_decoder(wake: Waker) -> (mpsc::Sender<Job>, mpsc::Receiver<Done>) {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::spawn(move || {
        for job in job_rx {
            let result = std::fs::read(&job.path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    // A decoder bug on a hostile file must cost one photo, not the viewer.
                    std::panic::catch_unwind(|| {
                        render_xrgb(&bytes, job.width, job.height, job.mode)
                    })
                    .unwrap_or_else(|_| Err("decoder panicked".into()))
                });
            let done = Done {
                idx: job.idx,
                width: job.width,
                height: job.height,
                result,
            };
            if done_tx.send(done).is_err() {
                break;
            }
            wake.wake();
        }
    });
    (job_tx, done_rx)
}

struct Slideshow {
    cfg: Config,
    photos: Vec<PathBuf>,
    browser: Browser,
    size: (u32, u32),
    cache: Vec<(usize, Arc<Frame>)>,
    requested: Vec<usize>,
    /// Photo to show as soon as it is decoded.
    want: Option<usize>,
    shown: Option<usize>,
    paused: bool,
    next_switch: Option<Instant>,
    message_shown: bool,
    jobs: mpsc::Sender<Job>,
    /// Whether the once-per-run "showing" line (a boot marker) is out.
    announced: bool,
    log: LevelLog,
}

impl Slideshow {
    fn request(&mut self, idx: usize) {
        if self.requested.contains(&idx) || self.cache.iter().any(|(i, _)| *i == idx) {
            return;
        }
        let Some(path) = self.photos.get(idx).cloned() else {
            return;
        };
        self.requested.push(idx);
        let job = Job {
            idx,
            path,
            width: self.size.0,
            height: self.size.1,
            mode: self.cfg.scale,
        };
        let _ = self.jobs.send(job);
    }

    fn cached(&self, idx: usize) -> Option<Arc<Frame>> {
        self.cache
            .iter()
            .find(|(i, _)| *i == idx)
            .map(|(_, f)| f.clone())
    }

    /// Goes to photo `idx` (now if decoded, else when it is).
    fn go(&mut self, idx: Option<usize>, win: &mut Window) {
        let Some(idx) = idx else {
            self.show_message_if_needed(win);
            return;
        };
        if self.shown == Some(idx) && self.want.is_none() {
            self.restart_timer();
            return;
        }
        match self.cached(idx) {
            Some(f) => self.display(idx, &f, win),
            None => {
                self.want = Some(idx);
                self.request(idx);
            }
        }
    }

    fn display(&mut self, idx: usize, frame: &Frame, win: &mut Window) {
        if let Some(p) = self.photos.get(idx) {
            // The first photo is a boot marker; every later one is routine.
            let level = if self.announced {
                Level::Routine
            } else {
                Level::Notice
            };
            self.announced = true;
            (self.log)(level, &format!("viewer: showing {}", file_name(p)));
        }
        win.present(frame);
        self.want = None;
        self.shown = Some(idx);
        self.restart_timer();
        // Keep the frames around the current one, drop the rest.
        let next = self.browser.peek_next();
        self.cache.retain(|(i, _)| *i == idx || Some(*i) == next);
        if let Some(n) = next {
            self.request(n);
        }
    }

    fn restart_timer(&mut self) {
        self.next_switch = if self.paused {
            None
        } else {
            Some(Instant::now() + self.cfg.interval)
        };
    }

    fn show_message_if_needed(&mut self, win: &mut Window) {
        if self.message_shown {
            return;
        }
        let dir = self.cfg.dir.display().to_string();
        let lines: Vec<&str> = if self.photos.is_empty() {
            vec!["=^.^=", "NO CAT PHOTOS FOUND IN", &dir]
        } else {
            vec!["=^.^=", "NO PHOTO IN", &dir, "COULD BE DECODED"]
        };
        let f = message_frame(&lines, self.size.0, self.size.1);
        win.present(&f);
        (self.log)(
            Level::Notice,
            &format!("viewer: no photos to show in {dir}"),
        );
        self.message_shown = true;
        self.next_switch = None;
    }

    fn on_done(&mut self, d: Done, win: &mut Window) {
        self.requested.retain(|i| *i != d.idx);
        if (d.width, d.height) != self.size {
            return; // stale size
        }
        match d.result {
            Ok(f) => {
                let f = Arc::new(f);
                self.cache.push((d.idx, f.clone()));
                if self.want == Some(d.idx) {
                    self.display(d.idx, &f, win);
                }
            }
            Err(e) => {
                let name = self
                    .photos
                    .get(d.idx)
                    .map(|p| file_name(p))
                    .unwrap_or_default();
                // Once per file (it is marked bad), and the owner wants to know.
                (self.log)(Level::Notice, &format!("viewer: skipping {name}: {e}"));
                self.browser.mark_bad(d.idx);
                if self.want == Some(d.idx) {
                    self.want = None;
                    let n = self.browser.next();
                    self.go(n, win);
                } else if let Some(n) = self.browser.peek_next() {
                    self.request(n);
                }
            }
        }
    }

    fn on_key(&mut self, key: u32, win: &mut Window) {
        match key {
            KEY_RIGHT | KEY_SPACE => {
                let n = self.browser.next();
                self.go(n, win);
            }
            KEY_LEFT => {
                let n = self.browser.prev();
                self.go(n, win);
            }
            KEY_HOME => {
                let n = self.browser.first();
                self.go(n, win);
            }
            KEY_P => {
                self.paused = !self.paused;
                let what = if self.paused { "paused" } else { "resumed" };
                (self.log)(Level::Routine, &format!("viewer: {what}"));
                self.restart_timer();
            }
            _ => {}
        }
    }

    fn on_resize(&mut self, size: (u32, u32), win: &mut Window) {
        if size == self.size {
            return;
        }
        self.size = size;
        self.cache.clear();
        self.requested.clear();
        self.message_shown = false;
        if self.photos.is_empty() || self.browser.all_bad() {
            self.show_message_if_needed(win);
            return;
        }
        let idx = match self.shown.or(self.want) {
            Some(i) => Some(i),
            None => self.browser.next(),
        };
        self.shown = None;
        self.go(idx, win);
    }

    fn timeout(&self) -> Option<Duration> {
        if self.want.is_some() {
            return None;
        }
        self.next_switch
            .map(|t| t.saturating_duration_since(Instant::now()))
    }

    fn on_tick(&mut self, win: &mut Window) {
        if let Some(t) = self.next_switch
            && Instant::now() >= t
            && self.want.is_none()
            && !self.paused
        {
            let n = self.browser.next();
            if n == self.shown {
                self.restart_timer(); // only one photo
                return;
            }
            self.go(n, win);
        }
    }
}

/// How much a log line matters to someone at the serial console, which is also where
/// the prompt is: routine lines would land in the middle of what they type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Once per run, or a problem: the first photo shown, a skipped file, an empty
    /// directory.
    Notice,
    /// Repeats while the slideshow runs: every later photo, pause and resume.
    Routine,
}

/// Where the slideshow's log lines go ("viewer: showing NAME", "viewer: skipping NAME:
/// why", ...), without their level: a channel in tests.
pub type Log = Box<dyn FnMut(&str) + Send>;

/// The same with each line's level: the binary sends routine lines to the kernel log.
pub type LevelLog = Box<dyn FnMut(Level, &str) + Send>;

/// Runs the slideshow on an already-connected Wayland socket (the compositor's end of a
/// socketpair, or a test's) until the compositor closes the window or the connection.
pub fn run_on_socket(
    stream: UnixStream,
    cfg: Config,
    photos: Vec<PathBuf>,
    log: Log,
) -> Result<(), String> {
    let conn = Connection::from_socket(stream).map_err(|e| format!("wayland connect: {e}"))?;
    run(conn, cfg, photos, log)
}

/// Runs the slideshow on a Wayland connection.
pub fn run(
    conn: Connection,
    cfg: Config,
    photos: Vec<PathBuf>,
    mut log: Log,
) -> Result<(), String> {
    run_with_levels(conn, cfg, photos, Box::new(move |_, line| log(line)))
}

/// Runs the slideshow on a Wayland connection, logging each line with its level.
pub fn run_with_levels(
    conn: Connection,
    cfg: Config,
    photos: Vec<PathBuf>,
    log: LevelLog,
) -> Result<(), String> {
    let mut win = Window::new(conn, "NekOS cats")?;
    let (jobs, done) = start_decoder(win.waker());
    let browser = Browser::new(photos.len(), cfg.order, cfg.seed);
    let mut show = Slideshow {
        cfg,
        photos,
        browser,
        size: (0, 0),
        cache: Vec::new(),
        requested: Vec::new(),
        want: None,
        shown: None,
        paused: false,
        next_switch: None,
        message_shown: false,
        jobs,
        announced: false,
        log,
    };
    loop {
        let events = win.wait(show.timeout())?;
        if events.closed {
            return Ok(());
        }
        if let Some(size) = events.configured {
            show.on_resize(size, &mut win);
        }
        while let Ok(d) = done.try_recv() {
            show.on_done(d, &mut win);
        }
        for key in events.keys {
            if show.size != (0, 0) {
                show.on_key(key, &mut win);
            }
        }
        show.on_tick(&mut win);
    }
}
