//! Runs one target: mutate, run on the worker under `catch_unwind`, wait with a
//! time limit, count, save what crashed or hung.

use std::collections::HashSet;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::mutate;
use crate::rng::Rng;

/// A parser under test: returns a short description of the outcome (`ok …` or the
/// error). Panics are caught by the engine.
pub type Parse = Arc<dyn Fn(&[u8]) -> String + Send + Sync>;

pub struct Target {
    pub name: &'static str,
    /// What it calls, for `--list`.
    pub about: &'static str,
    pub seeds: Vec<Vec<u8>>,
    pub parse: Parse,
    /// Longer than this per input is a hang.
    pub hang_limit: Duration,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Fuzzing time for this target.
    pub duration: Duration,
    /// Stop after this many inputs (tests), even if time is left.
    pub max_inputs: Option<u64>,
    pub seed: u64,
    /// Saved inputs go to `<out>/<target>/`.
    pub out: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub name: String,
    pub seeds: usize,
    pub inputs: u64,
    pub seconds: f64,
    /// Inputs the parser accepted (outcome `ok …`).
    pub accepted: u64,
    pub crashes: u64,
    pub hangs: u64,
    /// Distinct outcomes (messages with numbers masked).
    pub outcomes: usize,
    pub corpus: usize,
    /// Inputs saved, with what happened.
    pub saved: Vec<(PathBuf, String)>,
}

impl Stats {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.inputs as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Seeds above this size are drawn only while they have taken less than a tenth
/// of the time so far, so multi-megabyte artifacts (UKIs, the OS package) take
/// part without dominating the run.
const LARGE: usize = 256 << 10;
/// The corpus grows by inputs with new outcomes, up to this many entries.
const CORPUS_MAX: usize = 512;

type Verdict = Result<String, String>;

/// The worker thread: runs inputs sent to it and answers each with the outcome or
/// the panic message. Abandoned (not joined) after a hang.
struct Worker {
    tx: mpsc::Sender<Arc<Vec<u8>>>,
    rx: mpsc::Receiver<Verdict>,
}

impl Worker {
    fn spawn(name: &str, parse: Parse) -> Result<Worker, String> {
        let (in_tx, in_rx) = mpsc::channel::<Arc<Vec<u8>>>();
        let (out_tx, out_rx) = mpsc::channel::<Verdict>();
        std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            // Deeply nested input (DER, JSON) must not overflow a small default stack
            // before the parser's own depth limits apply.
            .stack_size(64 << 20)
            .spawn(move || {
                quiet_panics::enter_worker();
                while let Ok(input) = in_rx.recv() {
                    let verdict = catch_unwind(AssertUnwindSafe(|| parse(&input)))
                        .map_err(|payload| quiet_panics::message(payload.as_ref()));
                    if out_tx.send(verdict).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the worker thread: {e}"))?;
        Ok(Worker {
            tx: in_tx,
            rx: out_rx,
        })
    }
}

/// Masks numbers and raw bytes (words with a digit, a non-ASCII or a control
/// character: `12`, `0x1f3a`, digests, section names read from the input) and drops
/// quoted input, so messages that differ only in offsets, sizes or the bytes they
/// quote count as one outcome.
pub fn outcome_class(s: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word
            .chars()
            .any(|c| c.is_ascii_digit() || !c.is_ascii() || c.is_ascii_control())
        {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in s.chars() {
        if matches!(c, '"' | '\'' | '`') {
            break;
        }
        if c.is_ascii_alphanumeric() || !c.is_ascii() || c.is_ascii_control() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    // Cut after masking, so the cut does not move with the length of a number.
    out.chars().take(160).collect()
}

/// Fuzzes one target for `cfg.duration` (or `cfg.max_inputs`). Errors are about the
/// harness itself (no seeds, cannot save an input).
pub fn fuzz(target: &Target, cfg: &Config) -> Result<Stats, String> {
    if target.seeds.is_empty() {
        return Err(format!("{}: no seeds", target.name));
    }
    quiet_panics::install();
    let mut rng = Rng::for_target(cfg.seed, target.name);
    let mut small: Vec<Arc<Vec<u8>>> = Vec::new();
    let mut large: Vec<Arc<Vec<u8>>> = Vec::new();
    for s in &target.seeds {
        if s.len() > LARGE {
            large.push(Arc::new(s.clone()));
        } else {
            small.push(Arc::new(s.clone()));
        }
    }
    let seeds = small.len() + large.len();
    let small_seeds = small.len();
    let worker = Worker::spawn(target.name, Arc::clone(&target.parse))?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut stats = Stats {
        name: target.name.to_string(),
        seeds,
        ..Stats::default()
    };
    let start = Instant::now();
    let mut large_time = Duration::ZERO;
    // The seeds themselves first, unmutated: a seed that crashes is a finding too.
    let mut pending: Vec<Arc<Vec<u8>>> = small.iter().chain(large.iter()).cloned().collect();
    pending.reverse();
    loop {
        if start.elapsed() >= cfg.duration || cfg.max_inputs.is_some_and(|m| stats.inputs >= m) {
            break;
        }
        let input = match pending.pop() {
            Some(s) => s,
            None => {
                let use_large =
                    !large.is_empty() && (small.is_empty() || large_time < start.elapsed() / 10);
                let pool = if use_large { &large } else { &small };
                // Splices stay within the pool, so small inputs stay small.
                let base = pool.get(rng.below(pool.len())).cloned().unwrap_or_default();
                let other = pool.get(rng.below(pool.len())).cloned().unwrap_or_default();
                let mut v = base.as_ref().clone();
                mutate::mutate(&mut rng, &mut v, &other, base.len() * 2 + 4096);
                Arc::new(v)
            }
        };
        if worker.tx.send(Arc::clone(&input)).is_err() {
            return Err(format!("{}: the worker thread is gone", target.name));
        }
        stats.inputs += 1;
        let t0 = Instant::now();
        let verdict = worker.rx.recv_timeout(target.hang_limit);
        if input.len() > LARGE {
            large_time += t0.elapsed();
        }
        match verdict {
            Ok(Ok(outcome)) => {
                if outcome.starts_with("ok") {
                    stats.accepted += 1;
                }
                if seen.insert(outcome_class(&outcome)) && seen.len() > 1 {
                    small.push(input);
                    // Full: an earlier grown entry makes room (seeds stay).
                    if small.len() > CORPUS_MAX.max(small_seeds + 1) {
                        let i = small_seeds + rng.below(small.len() - 1 - small_seeds);
                        small.swap_remove(i);
                    }
                }
            }
            Ok(Err(panic)) => {
                stats.crashes += 1;
                let path = save(&cfg.out, target.name, "crash", &input)?;
                eprintln!(
                    "nekos-fuzz: {}: CRASH saved {}: {}",
                    target.name,
                    path.display(),
                    panic.replace('\n', " ")
                );
                stats.saved.push((path, panic));
            }
            Err(RecvTimeoutError::Timeout) => {
                stats.hangs += 1;
                let path = save(&cfg.out, target.name, "hang", &input)?;
                let what = format!("no answer within {} ms", target.hang_limit.as_millis());
                eprintln!(
                    "nekos-fuzz: {}: HANG saved {}: {what}",
                    target.name,
                    path.display()
                );
                stats.saved.push((path, what));
                // The old worker is stuck on that input; it is abandoned, the process
                // exits non-zero at the end, and this target stops here.
                break;
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("{}: the worker thread ended", target.name));
            }
        }
    }
    stats.seconds = start.elapsed().as_secs_f64();
    stats.outcomes = seen.len();
    stats.corpus = small.len() + large.len();
    // The worker ends when its channel closes (unless it is stuck on a hang).
    drop(worker);
    Ok(stats)
}

/// Writes `<out>/<target>/<kind>-<sha256>` through a temporary file and a rename.
pub fn save(out: &Path, target: &str, kind: &str, input: &[u8]) -> Result<PathBuf, String> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{kind}-{}", crate::sha256_hex(input)));
    let tmp = dir.join(format!(".{kind}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(input)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("save {}: {e}", path.display()))?;
    Ok(path)
}

/// Runs one saved input (`--replay`): the outcome, or the panic message as Err.
pub fn replay(target: &Target, input: &[u8]) -> Result<String, String> {
    quiet_panics::install();
    let parse = Arc::clone(&target.parse);
    let data = Arc::new(input.to_vec());
    let worker = Worker::spawn(target.name, parse)?;
    worker
        .tx
        .send(data)
        .map_err(|_| "the worker thread is gone".to_string())?;
    match worker.rx.recv_timeout(target.hang_limit) {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(panic)) => Err(format!("crash: {panic}")),
        Err(_) => Err(format!(
            "hang: no answer within {} ms",
            target.hang_limit.as_millis()
        )),
    }
}

/// Panics on fuzz workers are expected findings: their message is captured for the
/// report instead of printed; panics elsewhere still print as usual.
mod quiet_panics {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static WORKER: Cell<bool> = const { Cell::new(false) };
        static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if WORKER.with(Cell::get) {
                    LAST.with(|l| *l.borrow_mut() = Some(info.to_string()));
                } else {
                    default(info);
                }
            }));
        });
    }

    pub fn enter_worker() {
        WORKER.with(|w| w.set(true));
    }

    /// The hook's text (with the location), else the payload's.
    pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
        if let Some(m) = LAST.with(|l| l.borrow_mut().take()) {
            return m;
        }
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_classes_mask_numbers() {
        assert_eq!(
            outcome_class("entry 12 at offset 0x1f3a out of bounds: \"abc\" x"),
            "entry # at offset # out of bounds: "
        );
        assert_eq!(outcome_class("ok"), "ok");
        assert_eq!(
            outcome_class("section .rod\u{fffd}\u{1} lies outside"),
            "section .# lies outside"
        );
    }
}
