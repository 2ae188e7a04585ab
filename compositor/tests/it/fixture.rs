//! The headless test fixture: the compositor library on its headless backend and the
//! viewer library in a thread, joined by a socketpair, all in this process. The test
//! drives the compositor's event loop itself: it waits for frames by dispatching until
//! they are composited (bounded by a deadline, never by sleeping), injects keys through
//! the seat keyboard and reads the frame back as pixels.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nekos_compositor::{Backend, Compositor, Headless};
use nekos_viewer::config::{Config, list_photos};
use nekos_viewer::slideshow;

/// How long a test may wait for what it expects: generous for debug builds.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub comp: Compositor,
    /// The viewer's log lines so far ("viewer: showing NAME", ...).
    pub lines: Vec<String>,
    rx: mpsc::Receiver<String>,
    viewer: Option<JoinHandle<Result<(), String>>>,
}

impl Fixture {
    /// A `width`×`height` headless compositor serving the viewer on `dir`; `env` is the
    /// viewer's whole environment (NEKOS_ORDER, NEKOS_SCALE, ...).
    pub fn start(width: u32, height: u32, dir: &Path, env: &[(&str, &str)]) -> Fixture {
        let lookup = |k: &str| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        };
        let cfg = Config::parse(&[dir.to_str().unwrap().to_string()], lookup).unwrap();
        let photos = list_photos(&cfg.dir).unwrap();
        let mut comp = Compositor::new(Backend::Headless(Headless::new(width, height))).unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        comp.insert_client(ours).unwrap();
        let (tx, rx) = mpsc::channel();
        let log: slideshow::Log = Box::new(move |line| {
            let _ = tx.send(line.to_string());
        });
        let viewer = std::thread::spawn(move || slideshow::run_on_socket(theirs, cfg, photos, log));
        Fixture {
            comp,
            lines: Vec::new(),
            rx,
            viewer: Some(viewer),
        }
    }

    /// Dispatches until `n` client frames have been composited.
    pub fn run_until_frames(&mut self, n: u64) {
        let deadline = Instant::now() + DEADLINE;
        while self.comp.state.presented_client_frames < n {
            assert!(!self.comp.state.stopped, "compositor stopped");
            if self.viewer.as_ref().is_some_and(|v| v.is_finished()) {
                let res = self.viewer.take().unwrap().join().unwrap();
                panic!("viewer ended early: {res:?}; log: {:?}", self.lines);
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no frame {n} in {DEADLINE:?}; log: {:?}", self.lines));
            self.comp.dispatch(Some(left)).unwrap();
            self.lines.extend(self.rx.try_iter());
        }
        self.lines.extend(self.rx.try_iter());
    }

    /// A key press and release (evdev code), as a keyboard would send them.
    pub fn press(&mut self, code: u16) {
        self.comp.key(code, true);
        self.comp.key(code, false);
    }

    /// The photos the viewer said it showed, in order.
    pub fn shown(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("viewer: showing "))
            .collect()
    }

    /// The composited frame: (width, height, RGB bytes).
    pub fn rgb(&self) -> (u32, u32, Vec<u8>) {
        let Backend::Headless(h) = &self.comp.state.backend else {
            panic!("not headless");
        };
        let rgb = h
            .bytes
            .chunks_exact(4)
            .flat_map(|px| [px[2], px[1], px[0]]) // XRGB8888 little-endian: B, G, R, X
            .collect();
        (h.width, h.height, rgb)
    }
}

/// Dispatches `comp` until `done` holds.
pub fn dispatch_until(comp: &mut Compositor, what: &str, done: impl Fn(&Compositor) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done(comp) {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("{what}: not within {DEADLINE:?}"));
        comp.dispatch(Some(left)).unwrap();
    }
}
