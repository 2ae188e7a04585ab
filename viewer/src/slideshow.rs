//! The slideshow: photos decoded ahead on a background thread, shown through the
//! Wayland window, moved by keys and a timer. The first photo's decode starts before
//! the Wayland connection; after each photo the next one is decoded, then scaled
//! straight into the spare wl_buffer, so a key press is one attach + damage + commit. At
//! most two frames are held: the one on screen and the next.
//!
//! The scaling runs on the main thread, into the buffer's shared mapping: the buffers
//! belong to the window (the compositor may hold one until it releases it), and scaling
//! there means no frame-sized copy and no frame-sized allocation (under TCG, writing
//! 4 MB of fresh pages costs about as much again as the scaling). With one vCPU nothing
//! runs in parallel anyway; the thread is there so the first decode overlaps the
//! connection and the compositor's mode setting.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use wayland_client::Connection;

use crate::ScaleMode;
use crate::config::Config;
use crate::order::Browser;
use crate::render::{Decoded, Target, compose_into, decode_for, dimensions, message_frame};
use crate::timeline::{Phase, mark_line, now_ms};
use crate::wl::{Waker, Window, wake_pipe};

/// evdev key codes.
const KEY_SPACE: u32 = 57;
const KEY_RIGHT: u32 = 106;
const KEY_LEFT: u32 = 105;
const KEY_P: u32 = 25;
const KEY_HOME: u32 = 102;

/// Photos larger than this (≈ 1920×1200) are not decoded before the output size is
/// known: the output may be small enough for a reduced-scale decode, which is several
/// times faster than the full one this would otherwise be.
const EARLY_DECODE_MAX_PIXELS: u64 = 2_304_000;

/// Work for the decoder thread.
enum Job {
    /// The first photo, sent before the Wayland connection is made: decode it now
    /// (the compositor sets its mode in the meantime), hand it over at `Size`.
    Early { idx: usize, path: PathBuf },
    /// The output size for the `Early` photo.
    Size {
        width: u32,
        height: u32,
        mode: ScaleMode,
    },
    /// Decode a photo for an output size (a large JPEG at reduced scale).
    Render {
        idx: usize,
        path: PathBuf,
        width: u32,
        height: u32,
        mode: ScaleMode,
    },
}

/// A photo decoded (or not) by the decoder thread, for an output of `width`×`height`.
struct Done {
    idx: usize,
    width: u32,
    height: u32,
    result: Result<Decoded, String>,
    /// CLOCK_BOOTTIME ms when the decode finished.
    decoded_ms: u64,
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Runs `f` so that a decoder bug on a hostile file costs one photo, not the viewer.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("decoder panicked".into()))
}

/// The early photo between `Early` and `Size`.
enum Early {
    /// Decoded (the source image, kept only until the size arrives).
    Decoded(Decoded, u64),
    /// Too large to decode before the size is known: the file's bytes.
    Bytes(Vec<u8>),
    Failed(String),
}

fn early(path: &std::path::Path) -> Early {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Early::Failed(e.to_string()),
    };
    let pixels = guarded(|| Ok(dimensions(&bytes)))
        .ok()
        .flatten()
        .map(|(w, h)| u64::from(w) * u64::from(h));
    if pixels.is_some_and(|p| p > EARLY_DECODE_MAX_PIXELS) {
        return Early::Bytes(bytes);
    }
    match guarded(|| decode_for(&bytes, None)) {
        Ok(d) => Early::Decoded(d, now_ms()),
        Err(e) => Early::Failed(e),
    }
}

/// Decodes for the output size (so large JPEGs at reduced scale).
fn render(
    bytes: &[u8],
    width: u32,
    height: u32,
    mode: ScaleMode,
) -> (Result<Decoded, String>, u64) {
    let target = Target {
        width,
        height,
        mode,
    };
    let result = guarded(|| decode_for(bytes, Some(target)));
    (result, now_ms())
}

/// The decoder thread's priority: lowered (nice 19) while a frame is on its way to the
/// screen — the first one, and each one a key or the timer commits — and normal once the
/// compositor reports it shown (the surface's frame callback, sent after the page flip).
///
/// With one vCPU the decode ahead would otherwise take half the CPU from what the user is
/// waiting for: the first frame's scale, commit, composite and flip; after a key, the
/// compositor's copy of the new frame and its flip (under TCG that copy took 15 ms of wall
/// time for 6 ms of the compositor's CPU while the following photo decoded beside it).
/// Between frames the decode ahead is what the next key waits for, so it runs at normal
/// priority then: at nice 19 it shared the CPU with everything else still starting (the
/// compositor's keyboard, a shell) and was not done when the bench's key came (about 0.5 s
/// after the cat). A nice thread still gets a CPU nothing else wants, so a frame callback
/// that never comes only slows the decode. Linux keeps nice per thread, so `setpriority`
/// on the thread id touches that thread alone; going back up needs CAP_SYS_NICE (root, as
/// in the guest). Failing changes only timing, so errors are ignored.
#[derive(Clone)]
struct DecoderPriority(Arc<PriorityState>);

struct PriorityState {
    /// The decoder thread, 0 until it has handed over the first photo.
    tid: AtomicI32,
    /// A frame is on its way: from the start (the first frame) until it is shown.
    yielding: AtomicBool,
}

impl Default for DecoderPriority {
    fn default() -> DecoderPriority {
        DecoderPriority(Arc::new(PriorityState {
            tid: AtomicI32::new(0),
            yielding: AtomicBool::new(true),
        }))
    }
}

impl DecoderPriority {
    const YIELDING: i32 = 19;
    const NORMAL: i32 = 0;

    fn apply(tid: rustix::process::Pid, yielding: bool) {
        let nice = if yielding {
            Self::YIELDING
        } else {
            Self::NORMAL
        };
        let _ = rustix::process::setpriority_process(Some(tid), nice);
    }

    /// On the decoder thread, once the first photo is handed over (its decode and scale
    /// are the first frame and run at normal priority): from now on the thread's priority
    /// follows [`DecoderPriority::set_yielding`].
    fn follow_from_now(&self) {
        let tid = rustix::thread::gettid();
        self.0
            .tid
            .store(tid.as_raw_nonzero().get(), Ordering::SeqCst);
        // The main thread may change the state between our read and our setpriority, and
        // its own setpriority may come first: read again until what we applied is current.
        loop {
            let yielding = self.0.yielding.load(Ordering::SeqCst);
            Self::apply(tid, yielding);
            if self.0.yielding.load(Ordering::SeqCst) == yielding {
                break;
            }
        }
    }

    /// On the main thread: whether a frame is on its way to the screen.
    fn set_yielding(&self, yielding: bool) {
        if self.0.yielding.swap(yielding, Ordering::SeqCst) == yielding {
            return;
        }
        if let Some(tid) = rustix::process::Pid::from_raw(self.0.tid.load(Ordering::SeqCst)) {
            Self::apply(tid, yielding);
        }
    }
}

/// Decodes photos on a background thread, ahead of time.
fn start_decoder(
    wake: Waker,
    priority: DecoderPriority,
) -> (mpsc::Sender<Job>, mpsc::Receiver<Done>) {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    std::thread::spawn(move || {
        let mut pending: Option<(usize, Early)> = None;
        let mut following = false;
        for job in job_rx {
            let done = match job {
                Job::Early { idx, path } => {
                    pending = Some((idx, early(&path)));
                    continue;
                }
                Job::Size {
                    width,
                    height,
                    mode,
                } => {
                    let Some((idx, e)) = pending.take() else {
                        continue;
                    };
                    let (result, decoded_ms) = match e {
                        Early::Decoded(d, ms) => (Ok(d), ms),
                        Early::Bytes(bytes) => render(&bytes, width, height, mode),
                        Early::Failed(e) => (Err(e), now_ms()),
                    };
                    Done {
                        idx,
                        width,
                        height,
                        result,
                        decoded_ms,
                    }
                }
                Job::Render {
                    idx,
                    path,
                    width,
                    height,
                    mode,
                } => {
                    let (result, decoded_ms) = match std::fs::read(&path) {
                        Ok(bytes) => render(&bytes, width, height, mode),
                        Err(e) => (Err(e.to_string()), now_ms()),
                    };
                    Done {
                        idx,
                        width,
                        height,
                        result,
                        decoded_ms,
                    }
                }
            };
            if done_tx.send(done).is_err() {
                break;
            }
            wake.wake();
            if !following {
                following = true;
                priority.follow_from_now();
            }
        }
    });
    (job_tx, done_rx)
}

/// Where the slideshow puts frames: the window (two wl_shm buffers), or a test's double.
pub trait Screen {
    /// Has `paint` draw a `width`×`height` frame (XRGB words, rows packed) straight into a
    /// buffer that is not on screen; its slot, or `None` (nothing painted) while the
    /// compositor still holds that buffer.
    fn upload(&mut self, width: u32, height: u32, paint: Paint) -> Result<Option<usize>, String>;
    /// Attaches, damages and commits the buffer in `slot`.
    fn show(&mut self, slot: usize);
}

/// Draws a frame into a buffer's pixels.
pub type Paint<'a> = &'a mut dyn FnMut(&mut [u32]);

impl Screen for Window {
    fn upload(&mut self, width: u32, height: u32, paint: Paint) -> Result<Option<usize>, String> {
        Window::upload(self, width, height, paint)
    }
    fn show(&mut self, slot: usize) {
        Window::show(self, slot)
    }
}

struct Slideshow {
    cfg: Config,
    photos: Vec<PathBuf>,
    browser: Browser,
    size: (u32, u32),
    /// Photos the decoder thread is working on.
    requested: Vec<usize>,
    /// The first photo, decoded before the output size was known (until it is sized).
    early: Option<usize>,
    /// Photo to show as soon as it is decoded.
    want: Option<usize>,
    shown: Option<usize>,
    /// The photo after the one on screen, already in a buffer: (photo, slot).
    prepared: Option<(usize, usize)>,
    /// A decoded photo whose buffer the compositor still holds (scaled once it is back).
    waiting: Option<(usize, Decoded)>,
    /// Most frames held at once (on screen, prepared, waiting): at most two.
    peak_frames: usize,
    paused: bool,
    next_switch: Option<Instant>,
    message_shown: bool,
    jobs: mpsc::Sender<Job>,
    /// Whether the once-per-run "showing" line (a boot marker) is out.
    announced: bool,
    /// Whether the first photo's decode and commit marks are out.
    first_decoded: bool,
    first_committed: bool,
    log: LevelLog,
}

impl Slideshow {
    fn new(cfg: Config, photos: Vec<PathBuf>, jobs: mpsc::Sender<Job>, log: LevelLog) -> Slideshow {
        let browser = Browser::new(photos.len(), cfg.order, cfg.seed);
        Slideshow {
            cfg,
            photos,
            browser,
            size: (0, 0),
            requested: Vec::new(),
            early: None,
            want: None,
            shown: None,
            prepared: None,
            waiting: None,
            peak_frames: 0,
            paused: false,
            next_switch: None,
            message_shown: false,
            jobs,
            announced: false,
            first_decoded: false,
            first_committed: false,
            log,
        }
    }

    fn mark(&mut self, ms: u64, phase: Phase) {
        (self.log)(Level::Timeline, &mark_line(ms, phase));
    }

    /// Frames held now: the one on screen, the next one in a buffer, one waiting for a
    /// buffer.
    fn frames_held(&self) -> usize {
        usize::from(self.shown.is_some())
            + usize::from(self.prepared.is_some())
            + usize::from(self.waiting.is_some())
    }

    fn count_frames(&mut self) {
        self.peak_frames = self.peak_frames.max(self.frames_held());
    }

    /// Starts decoding the first photo before there is a window.
    fn start_early(&mut self) {
        let Some(idx) = self.browser.next() else {
            return;
        };
        let Some(path) = self.photos.get(idx).cloned() else {
            return;
        };
        if self.jobs.send(Job::Early { idx, path }).is_ok() {
            self.early = Some(idx);
            self.want = Some(idx);
            self.requested.push(idx);
        }
    }

    fn request(&mut self, idx: usize) {
        if self.requested.contains(&idx)
            || self.prepared.is_some_and(|(i, _)| i == idx)
            || self.waiting.as_ref().is_some_and(|(i, _)| *i == idx)
        {
            return;
        }
        let Some(path) = self.photos.get(idx).cloned() else {
            return;
        };
        self.requested.push(idx);
        let job = Job::Render {
            idx,
            path,
            width: self.size.0,
            height: self.size.1,
            mode: self.cfg.scale,
        };
        let _ = self.jobs.send(job);
    }

    /// Goes to photo `idx` (now if it is in a buffer, else when it is decoded).
    fn go(&mut self, idx: Option<usize>, win: &mut dyn Screen) {
        let Some(idx) = idx else {
            self.show_message_if_needed(win);
            return;
        };
        if self.shown == Some(idx) && self.want.is_none() {
            self.restart_timer();
            return;
        }
        if let Some((p, slot)) = self.prepared
            && p == idx
        {
            // The key press path: one attach + damage + commit.
            self.prepared = None;
            self.show(idx, slot, win);
            return;
        }
        self.want = Some(idx);
        if let Some((w, photo)) = self.waiting.take() {
            self.place(w, photo, win);
        } else {
            self.request(idx);
        }
    }

    /// Decoded photo `idx`: scaled into the spare buffer and on screen if wanted, there
    /// and ready if it is the next one, else dropped. The decoded image is dropped as soon
    /// as it is scaled.
    fn place(&mut self, idx: usize, photo: Decoded, win: &mut dyn Screen) {
        let wanted = self.want == Some(idx);
        if !wanted && self.browser.peek_next() != Some(idx) {
            return;
        }
        let (width, height, mode) = (self.size.0, self.size.1, self.cfg.scale);
        let mut scaled = Ok(());
        let mut paint = |dst: &mut [u32]| {
            scaled = guarded(|| {
                compose_into(&photo, width, height, mode, dst);
                Ok(())
            });
        };
        match win.upload(width, height, &mut paint) {
            Ok(Some(slot)) => {
                drop(photo);
                if self.prepared.is_some_and(|(_, s)| s == slot) {
                    self.prepared = None; // overwritten
                }
                if let Err(e) = scaled {
                    self.skip(idx, &e, win);
                    return;
                }
                if wanted {
                    self.show(idx, slot, win);
                } else {
                    self.prepared = Some((idx, slot));
                    self.count_frames();
                    self.mark(now_ms(), Phase::NextPhotoReady);
                }
            }
            Ok(None) => {
                self.waiting = Some((idx, photo));
                self.count_frames();
            }
            Err(e) => (self.log)(Level::Notice, &format!("viewer: {e}")),
        }
    }

    /// Puts the buffer in `slot`, holding photo `idx`, on screen.
    fn show(&mut self, idx: usize, slot: usize, win: &mut dyn Screen) {
        // Said before the commit, so whoever sees the frame has the line already.
        self.announce(idx);
        win.show(slot);
        if !self.first_committed {
            self.first_committed = true;
            self.mark(now_ms(), Phase::FirstBufferCommitted);
        }
        self.after_show(idx);
    }

    /// The "showing" line of photo `idx`.
    fn announce(&mut self, idx: usize) {
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
    }

    /// Bookkeeping after photo `idx` was committed; asks for the next one.
    fn after_show(&mut self, idx: usize) {
        self.want = None;
        self.shown = Some(idx);
        self.count_frames();
        self.restart_timer();
        if let Some(n) = self.browser.peek_next()
            && n != idx
        {
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

    fn show_message_if_needed(&mut self, win: &mut dyn Screen) {
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
        let mut paint = |dst: &mut [u32]| {
            let n = dst.len().min(f.pixels.len());
            dst[..n].copy_from_slice(&f.pixels[..n]);
        };
        if let Ok(Some(slot)) = win.upload(f.width, f.height, &mut paint) {
            win.show(slot);
        }
        self.prepared = None;
        self.shown = None;
        (self.log)(
            Level::Notice,
            &format!("viewer: no photos to show in {dir}"),
        );
        self.message_shown = true;
        self.next_switch = None;
    }

    fn on_done(&mut self, d: Done, win: &mut dyn Screen) {
        self.requested.retain(|i| *i != d.idx);
        if (d.width, d.height) != self.size {
            return; // stale size
        }
        match d.result {
            Ok(photo) => {
                if !self.first_decoded && self.want == Some(d.idx) {
                    self.first_decoded = true;
                    self.mark(d.decoded_ms, Phase::FirstPhotoDecoded);
                }
                self.place(d.idx, photo, win);
            }
            Err(e) => self.skip(d.idx, &e, win),
        }
    }

    /// Photo `idx` could not be decoded or scaled: it is marked bad and passed over.
    fn skip(&mut self, idx: usize, why: &str, win: &mut dyn Screen) {
        let name = self
            .photos
            .get(idx)
            .map(|p| file_name(p))
            .unwrap_or_default();
        // Once per file (it is marked bad), and the owner wants to know.
        (self.log)(Level::Notice, &format!("viewer: skipping {name}: {why}"));
        self.browser.mark_bad(idx);
        if self.want == Some(idx) {
            self.want = None;
            let n = self.browser.next();
            self.go(n, win);
        } else if let Some(n) = self.browser.peek_next() {
            self.request(n);
        }
    }

    /// The compositor gave a buffer back: a photo waiting for one is scaled into it now.
    fn on_released(&mut self, win: &mut dyn Screen) {
        if let Some((idx, photo)) = self.waiting.take() {
            self.place(idx, photo, win);
        }
    }

    fn on_key(&mut self, key: u32, win: &mut dyn Screen) {
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

    fn on_resize(&mut self, size: (u32, u32), win: &mut dyn Screen) {
        if size == self.size {
            return;
        }
        let first = self.size == (0, 0);
        self.size = size;
        if first
            && let Some(idx) = self.early.take()
            && self.requested.contains(&idx)
        {
            // The first photo is decoded or being decoded: it only needs the size.
            let _ = self.jobs.send(Job::Size {
                width: size.0,
                height: size.1,
                mode: self.cfg.scale,
            });
            return;
        }
        self.early = None;
        self.requested.clear();
        self.prepared = None;
        self.waiting = None;
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

    fn on_tick(&mut self, win: &mut dyn Screen) {
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
    /// A boot timeline mark (`nekos: t=<ms> <phase>`, see [`crate::timeline`]): for the
    /// bench, printed only at debug log level.
    Timeline,
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
    // The first photo's decode needs no connection: it starts now, on the decoder
    // thread, while the Wayland globals are bound and the compositor sets its mode.
    let (wake_r, waker) = wake_pipe()?;
    let priority = DecoderPriority::default();
    let (jobs, done) = start_decoder(waker, priority.clone());
    let mut show = Slideshow::new(cfg, photos, jobs, log);
    show.start_early();
    let mut win = Window::new(conn, "NekOS cats", wake_r)?;
    show.mark(now_ms(), Phase::ViewerConnected);
    let mut first_frame_shown = false;
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
        if events.released {
            show.on_released(&mut win);
        }
        for key in events.keys {
            if show.size != (0, 0) {
                show.on_key(key, &mut win);
            }
        }
        show.on_tick(&mut win);
        first_frame_shown |= events.presented;
        priority.set_yielding(!first_frame_shown || win.frame_on_its_way());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Two buffers like the window's: uploads never touch the one on screen, and a
    /// buffer the compositor holds cannot be written.
    #[derive(Default)]
    struct FakeScreen {
        /// The first pixel of the frame in each slot (our frames are flat colours).
        slots: [Option<u32>; 2],
        on_screen: Option<usize>,
        held: [bool; 2],
        ops: Vec<String>,
    }

    impl Screen for FakeScreen {
        fn upload(
            &mut self,
            width: u32,
            height: u32,
            paint: Paint,
        ) -> Result<Option<usize>, String> {
            let Some(slot) = (0..2).find(|i| Some(*i) != self.on_screen) else {
                return Ok(None);
            };
            if self.held[slot] {
                return Ok(None);
            }
            let mut pixels = vec![0u32; (width * height) as usize];
            paint(&mut pixels);
            // Our photos are flat colours: the whole frame is the first pixel's.
            assert!(
                pixels.iter().all(|p| *p == pixels[0]),
                "a letterboxed frame"
            );
            self.slots[slot] = Some(pixels[0]);
            self.ops.push(format!("upload {:x}", pixels[0]));
            Ok(Some(slot))
        }
        fn show(&mut self, slot: usize) {
            self.on_screen = Some(slot);
            self.ops
                .push(format!("show {:x}", self.slots[slot].unwrap()));
        }
    }

    fn colour(idx: usize) -> u32 {
        0xff00_0000 | (idx as u32 + 1)
    }

    /// Photo `idx` decoded: a flat 4×3 image of its colour, which fills the 64×48
    /// output exactly.
    fn done(idx: usize) -> Done {
        let [_, r, g, b] = colour(idx).to_be_bytes();
        let image = crate::resample::Rgb {
            width: 4,
            height: 3,
            data: [r, g, b].repeat(12),
        };
        Done {
            idx,
            width: 64,
            height: 48,
            result: Ok(Decoded {
                image,
                exif_orientation: 1,
                full_width: 4,
                full_height: 3,
            }),
            decoded_ms: 7,
        }
    }

    fn slideshow() -> (Slideshow, mpsc::Receiver<Job>, Arc<Mutex<Vec<String>>>) {
        let env = |k: &str| match k {
            "NEKOS_ORDER" => Some("name".to_string()),
            "NEKOS_INTERVAL" => Some("1000".to_string()),
            "NEKOS_SEED" => Some("1".to_string()),
            _ => None,
        };
        let cfg = Config::parse(&["cats".to_string()], env).unwrap();
        let photos = ["a.jpg", "b.jpg", "c.jpg"].map(PathBuf::from).to_vec();
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let log: LevelLog = Box::new(move |_, line: &str| sink.lock().unwrap().push(line.into()));
        (Slideshow::new(cfg, photos, tx, log), rx, lines)
    }

    /// The photo indices of the decode jobs sent so far.
    fn jobs(rx: &mpsc::Receiver<Job>) -> Vec<String> {
        rx.try_iter()
            .map(|j| match j {
                Job::Early { idx, .. } => format!("early {idx}"),
                Job::Size { width, height, .. } => format!("size {width}x{height}"),
                Job::Render { idx, .. } => format!("render {idx}"),
            })
            .collect()
    }

    #[test]
    fn next_photo_is_in_a_buffer_before_the_key_and_the_key_only_commits() {
        let (mut s, rx, lines) = slideshow();
        let mut scr = FakeScreen::default();
        // The first photo is decoded before there is a window, then sized.
        s.start_early();
        assert_eq!(jobs(&rx), ["early 0"]);
        s.on_resize((64, 48), &mut scr);
        assert_eq!(jobs(&rx), ["size 64x48"]);
        s.on_done(done(0), &mut scr);
        assert_eq!(scr.ops, ["upload ff000001", "show ff000001"]);
        // ... and the next one is asked for at once.
        assert_eq!(jobs(&rx), ["render 1"]);
        s.on_done(done(1), &mut scr);
        assert_eq!(scr.ops[2..], ["upload ff000002"]);
        assert_eq!(s.prepared.map(|(i, _)| i), Some(1));
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("nekos: t=") && l.ends_with(" next-photo-ready"))
        );
        // The key: one show (attach + damage + commit), no decode, no copy.
        scr.ops.clear();
        s.on_key(KEY_RIGHT, &mut scr);
        assert_eq!(scr.ops, ["show ff000002"]);
        assert_eq!(s.shown, Some(1));
        assert_eq!(jobs(&rx), ["render 2"]);
        s.on_done(done(2), &mut scr);
        s.on_key(KEY_SPACE, &mut scr);
        assert_eq!(scr.ops[1..], ["upload ff000003", "show ff000003"]);
        assert!(s.peak_frames <= 2, "{} frames held", s.peak_frames);
        let lines = lines.lock().unwrap();
        let marks: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("nekos: t="))
            .filter_map(|l| l.split_once(' ').map(|(_, p)| p))
            .collect();
        assert_eq!(
            marks[..3],
            [
                "first-photo-decoded",
                "first-buffer-committed",
                "next-photo-ready"
            ]
        );
        assert!(lines.iter().any(|l| l == "nekos: t=7 first-photo-decoded"));
    }

    #[test]
    fn at_most_two_frames_even_when_the_compositor_holds_a_buffer() {
        let (mut s, rx, _) = slideshow();
        let mut scr = FakeScreen::default();
        s.start_early();
        s.on_resize((64, 48), &mut scr);
        s.on_done(done(0), &mut scr);
        // The compositor scans out of the spare buffer still (e.g. an older frame).
        scr.held = [true, true];
        s.on_done(done(1), &mut scr);
        assert!(s.prepared.is_none());
        assert_eq!(s.waiting.as_ref().map(|(i, _)| *i), Some(1));
        assert_eq!(s.frames_held(), 2);
        // A key before the buffer is back: nothing to show yet, still two frames.
        s.on_key(KEY_RIGHT, &mut scr);
        assert_eq!(s.shown, Some(0));
        assert_eq!(s.frames_held(), 2);
        // The release: the waiting frame goes on screen.
        scr.held = [false, false];
        s.on_released(&mut scr);
        assert_eq!(s.shown, Some(1));
        assert!(s.waiting.is_none());
        assert_eq!(scr.ops.last().map(String::as_str), Some("show ff000002"));
        assert!(s.peak_frames <= 2, "{} frames held", s.peak_frames);
        assert_eq!(jobs(&rx), ["early 0", "size 64x48", "render 1", "render 2"]);
    }

    #[test]
    fn a_stale_or_unneeded_frame_is_dropped() {
        let (mut s, rx, _) = slideshow();
        let mut scr = FakeScreen::default();
        s.start_early();
        s.on_resize((64, 48), &mut scr);
        s.on_done(done(0), &mut scr);
        // Photo 2 is neither wanted nor next: not kept.
        s.on_done(done(2), &mut scr);
        assert!(s.prepared.is_none() && s.waiting.is_none());
        // A frame for another output size is not used.
        let mut d = done(1);
        d.width = 10;
        s.on_done(d, &mut scr);
        assert!(s.prepared.is_none());
        assert_eq!(scr.ops.len(), 2);
        assert_eq!(jobs(&rx), ["early 0", "size 64x48", "render 1"]);
    }

    fn nice_of(tid: i32) -> i32 {
        rustix::process::getpriority_process(rustix::process::Pid::from_raw(tid)).unwrap()
    }

    /// Raising a thread's priority back needs CAP_SYS_NICE; without it the decoder stays
    /// at nice 19 (slower next photo, nothing else), and that is what is checked then.
    fn restored_nice() -> i32 {
        if rustix::process::geteuid().is_root() {
            0
        } else {
            19
        }
    }

    #[test]
    fn the_decoder_yields_until_the_first_frame_is_on_screen_then_runs_at_normal_priority() {
        let priority = DecoderPriority::default();
        let (lowered_tx, lowered_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let decoder = {
            let priority = priority.clone();
            std::thread::spawn(move || {
                priority.follow_from_now();
                let tid = rustix::thread::gettid().as_raw_nonzero().get();
                lowered_tx.send((tid, nice_of(tid))).unwrap();
                go_rx.recv().unwrap();
                nice_of(tid)
            })
        };
        let (tid, while_waiting) = lowered_rx.recv().unwrap();
        assert_eq!(while_waiting, 19);
        priority.set_yielding(false);
        go_tx.send(()).unwrap();
        assert_eq!(decoder.join().unwrap(), restored_nice(), "thread {tid}");
    }

    #[test]
    fn a_first_frame_shown_before_the_decoder_lowers_itself_leaves_it_at_normal_priority() {
        let priority = DecoderPriority::default();
        priority.set_yielding(false);
        let decoder = std::thread::spawn(move || {
            priority.follow_from_now();
            nice_of(rustix::thread::gettid().as_raw_nonzero().get())
        });
        assert_eq!(decoder.join().unwrap(), restored_nice());
    }

    #[test]
    fn the_decoder_yields_again_while_a_key_s_frame_is_on_its_way() {
        let priority = DecoderPriority::default();
        let (step_tx, step_rx) = mpsc::channel::<()>();
        let (nice_tx, nice_rx) = mpsc::channel();
        let decoder = {
            let priority = priority.clone();
            std::thread::spawn(move || {
                priority.follow_from_now();
                let tid = rustix::thread::gettid().as_raw_nonzero().get();
                nice_tx.send(nice_of(tid)).unwrap();
                // Report the thread's nice after each change the main thread makes.
                while step_rx.recv().is_ok() {
                    nice_tx.send(nice_of(tid)).unwrap();
                }
            })
        };
        assert_eq!(
            nice_rx.recv().unwrap(),
            19,
            "while the first frame is on its way"
        );
        priority.set_yielding(false);
        step_tx.send(()).unwrap();
        assert_eq!(
            nice_rx.recv().unwrap(),
            restored_nice(),
            "first frame shown"
        );
        priority.set_yielding(true);
        step_tx.send(()).unwrap();
        assert_eq!(nice_rx.recv().unwrap(), 19, "a key's frame committed");
        priority.set_yielding(false);
        step_tx.send(()).unwrap();
        assert_eq!(nice_rx.recv().unwrap(), restored_nice(), "that frame shown");
        drop(step_tx);
        decoder.join().unwrap();
    }
}
