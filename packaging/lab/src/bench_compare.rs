//! `cargo nekos bench --compare`: NekOS, the bare probe and busybox + cage + swayimg (plus
//! any `--extra` initramfs, e.g. NekOS from an older commit) booted on the same kernel with
//! the same photos and QEMU flags, interleaved (run 1 of each, run 2 of each, …), measured
//! from outside the guest. Timing goals live here and in the report, never in tests.
//!
//! How each number is taken (and its error):
//! - QEMU start → first cat: QMP `screendump` in PPM, back to back, each classified by
//!   [`crate::bench_frame`]; the cat appeared between the previous screendump and this one,
//!   so the value is at most one screendump interval late (recorded per run).
//! - /init → first cat: host time of that screendump minus the host time the guest's
//!   `init-start` line arrived on the serial line (a thread blocked on the transcript wakes
//!   on its arrival). The guest's clock cannot be compared with the screendumps directly; the
//!   serial line's latency (the UART under TCG, the pipe, a thread wake-up: milliseconds)
//!   makes the value too short by that much. An initramfs without the `t=` marks (an older
//!   NekOS) is timed from `nekos: init started` instead, printed a moment after /init starts.
//! - key → next: QMP `send-key`, then screendumps until another cat is on screen.
//! - memory and RSS: `/proc/meminfo` and `/proc/<pid>/status` through the system's serial
//!   shell with the cat shown; the probe prints its own `probe: mem` line.
//! - minimum RAM: bisection on `-m` (MiB); a boot counts when a cat shows within the limit.

use crate::bench_frame::{Grid, parse_ppm};
use crate::bench_report::{Host, Identity, Report, Run, SCHEMA, SystemReport};
use crate::qemu::{BootOptions, Vm};
use anyhow::{Context, Result, bail};
use nekos_build::artifacts::{FileArtifact, Manifest};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Memory for the measured boots (the contract's QEMU flags); the bisection varies it.
pub const MEMORY_MIB: u32 = 512;
/// The bisection's range (MiB).
pub const MIN_RAM_RANGE: (u32, u32) = (16, 512);
/// Every system boots as this deployment's direct kernel + initramfs boot (stdvga, no NIC).
const DEPLOYMENT: &str = "kernel,initramfs";
const FIRST_CAT_LIMIT: Duration = Duration::from_secs(120);
const STEP_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub runs: usize,
    pub min_ram: bool,
    /// `--extra LABEL=INITRAMFS`, in order.
    pub extras: Vec<(String, PathBuf)>,
    pub against: Option<PathBuf>,
    pub out: PathBuf,
}

/// One system the comparison boots (the contract's `CompareSystem`, owned).
#[derive(Clone, Debug, PartialEq)]
pub struct System {
    pub label: String,
    pub about: String,
    pub initramfs: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub cmdline: Vec<String>,
    pub shell_prompt: Option<String>,
    pub next_key: Option<String>,
    pub photos: BTreeMap<String, String>,
    pub packages: BTreeMap<String, String>,
}

impl From<nekos_build::compare::CompareSystem> for System {
    fn from(c: nekos_build::compare::CompareSystem) -> System {
        let about = match c.label {
            "probe" => "the bare probe: a static /init that decodes one photo and sets one mode"
                .to_string(),
            "reference" => "busybox + cage + swayimg from Debian".to_string(),
            other => other.to_string(),
        };
        System {
            label: c.label.to_string(),
            about,
            initramfs: c.initramfs,
            sha256: c.sha256,
            size: c.size,
            cmdline: c.cmdline,
            shell_prompt: c.shell_prompt,
            next_key: c.next_key.map(str::to_string),
            photos: c.photos,
            packages: c.packages,
        }
    }
}

/// The probe and the reference, built (or found up to date) by nekos_build::compare.
pub fn baselines(root: &Path, manifest: &Manifest) -> Result<Vec<System>> {
    Ok(vec![
        nekos_build::compare::probe_system(root, manifest)?.into(),
        nekos_build::compare::reference_system(root, manifest)?.into(),
    ])
}

/// NekOS's own command line for the bench: the timeline marks, a fixed first photo and no
/// slideshow advance of its own (the key → next measurement must see the key's photo).
pub const NEKOS_CMDLINE: &[&str] = &[
    "nekos.loglevel=debug",
    "nekos.seed=1",
    "nekos.interval=3600",
];

/// NekOS from the build manifest's production initramfs.
pub fn nekos_system(manifest: &Manifest) -> Result<System> {
    let art = manifest
        .initramfs
        .get("production")
        .context("the manifest has no production initramfs (run `cargo nekos build`)")?;
    Ok(System {
        label: "nekos".into(),
        about: "NekOS: nekos-init, compositor, viewer (production initramfs)".into(),
        initramfs: art.path.clone(),
        sha256: art.sha256.clone(),
        size: art.size,
        cmdline: NEKOS_CMDLINE.iter().map(|s| s.to_string()).collect(),
        shell_prompt: Some("nekos# ".into()),
        next_key: Some("right".into()),
        photos: manifest.cats.clone(),
        packages: BTreeMap::new(),
    })
}

/// `--extra LABEL=INITRAMFS`: a label for the tables and an existing file.
pub fn parse_extra(arg: &str) -> Result<(String, PathBuf)> {
    let Some((label, path)) = arg.split_once('=') else {
        bail!("--extra {arg:?}: expected LABEL=INITRAMFS, e.g. before=old/initramfs.cpio");
    };
    let ok = !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        bail!("--extra {arg:?}: the label {label:?} must be letters, digits, '-', '_' or '.'");
    }
    if ["nekos", "probe", "reference"].contains(&label) {
        bail!("--extra {arg:?}: the label {label:?} is one of the compared systems; pick another");
    }
    if path.is_empty() {
        bail!("--extra {arg:?}: no initramfs after '='");
    }
    Ok((label.to_string(), PathBuf::from(path)))
}

/// An `--extra` initramfs: must be an uncompressed newc cpio; its photos (under NekOS's
/// photo directory) are returned by name → sha256.
pub fn extra_system(label: &str, path: &Path) -> Result<System> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "--extra {label}={}: cannot read the initramfs",
            path.display()
        )
    })?;
    let photos = cpio_photos(&bytes).with_context(|| {
        format!(
            "--extra {label}={}: not an initramfs the bench can boot",
            path.display()
        )
    })?;
    Ok(System {
        label: label.to_string(),
        about: format!("NekOS from {} (--extra)", path.display()),
        initramfs: path.to_path_buf(),
        sha256: nekos_formats::digest::sha256_hex(&bytes),
        size: bytes.len() as u64,
        cmdline: NEKOS_CMDLINE.iter().map(|s| s.to_string()).collect(),
        shell_prompt: Some("nekos# ".into()),
        next_key: Some("right".into()),
        photos,
        packages: BTreeMap::new(),
    })
}

/// The photos in a newc archive (file name → sha256), read with the `cpio` crate.
pub fn cpio_photos(bytes: &[u8]) -> Result<BTreeMap<String, String>> {
    if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!(
            "it is compressed (gzip or zstd); expected an uncompressed newc cpio (`--compression none`, the default)"
        );
    }
    if !bytes.starts_with(b"070701") && !bytes.starts_with(b"070702") {
        bail!(
            "expected an uncompressed newc cpio (magic 070701), found {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(6)])
        );
    }
    let prefix = format!("{}/", nekos_build::initramfs::PHOTO_DIR);
    let mut photos = BTreeMap::new();
    let mut rest: &[u8] = bytes;
    loop {
        let mut reader = cpio::newc::Reader::new(rest).context("a broken cpio header")?;
        if reader.entry().is_trailer() {
            break;
        }
        let name = reader.entry().name().trim_start_matches("./").to_string();
        let is_file = reader.entry().mode() & 0o170000 == 0o100000;
        let mut data = Vec::new();
        reader
            .read_to_end(&mut data)
            .with_context(|| format!("cpio entry {name} is cut short"))?;
        rest = reader
            .finish()
            .with_context(|| format!("cpio entry {name} is cut short"))?;
        if let Some(file) = name.strip_prefix(&prefix)
            && is_file
            && !file.contains('/')
        {
            photos.insert(file.to_string(), nekos_formats::digest::sha256_hex(&data));
        }
    }
    Ok(photos)
}

/// The systems of this run: NekOS, the probe, the reference, then the extras. Extras must
/// show the same photos as NekOS (otherwise before/after compare different work).
pub fn systems(
    nekos: System,
    baselines: Vec<System>,
    extras: Vec<System>,
    identity: &Identity,
) -> Result<Vec<System>> {
    for e in &extras {
        let theirs = Identity {
            photos: e.photos.clone(),
            ..identity.clone()
        };
        crate::bench_report::refuse_different(
            identity,
            &theirs,
            &format!("--extra {}={}", e.label, e.initramfs.display()),
        )?;
    }
    let mut all = vec![nekos];
    all.extend(baselines);
    all.extend(extras);
    Ok(all)
}

/// Smallest value in `lo..=hi` for which `shows_cat` holds, assuming more memory never
/// hurts; None if even `hi` does not. ⌈log2(hi − lo + 2)⌉ + 1 boots at most.
pub fn bisect_min(
    lo: u32,
    hi: u32,
    mut shows_cat: impl FnMut(u32) -> Result<bool>,
) -> Result<Option<u32>> {
    if lo > hi || !shows_cat(hi)? {
        return Ok(None);
    }
    // `bad` never showed a cat (or is below the range), `good` did.
    let (mut bad, mut good) = (lo.saturating_sub(1), hi);
    if lo == 0 {
        // 0 MiB cannot boot; treat it as the known failure.
        bad = 0;
    }
    while good - bad > 1 {
        let mid = bad + (good - bad) / 2;
        if shows_cat(mid)? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    if lo == 0 && good == 1 && shows_cat(0)? {
        return Ok(Some(0));
    }
    Ok(Some(good))
}

/// The guest's `nekos: t=<ms> <phase>` marks in a transcript (other text on the line, e.g.
/// a kernel log prefix, is ignored).
pub fn phases(transcript: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in transcript.lines() {
        let Some(pos) = line.find("nekos: t=") else {
            continue;
        };
        let rest = &line[pos + "nekos: t=".len()..];
        let mut words = rest.split_whitespace();
        let (Some(ms), Some(phase)) = (words.next(), words.next()) else {
            continue;
        };
        if let Ok(ms) = ms.trim_end_matches("ms").parse::<f64>() {
            out.push((phase.to_string(), ms));
        }
    }
    out
}

/// MemTotal − MemFree (kB) from /proc/meminfo's text.
pub fn mem_used_kb(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemFree:")?))
}

/// Process name → VmRSS (kB) from concatenated /proc/<pid>/status texts; kernel threads
/// (no VmRSS) are left out, names seen twice are summed.
pub fn rss_by_process(statuses: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in statuses.lines() {
        let line = line.trim_start();
        if let Some(n) = line.strip_prefix("Name:") {
            name = Some(n.trim().to_string());
        } else if let Some(v) = line.strip_prefix("VmRSS:")
            && let (Some(n), Some(kb)) = (
                name.take(),
                v.split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<u64>().ok()),
            )
        {
            *out.entry(n).or_insert(0) += kb;
        }
    }
    out
}

/// The PIDs in `ps` output (NekOS's `PID PPID S COMMAND`, busybox's `PID USER TIME COMMAND`).
pub fn ps_pids(ps: &str) -> Vec<u32> {
    ps.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The probe's `probe: mem used_kb=<n> rss_kb=<n>` line.
pub fn probe_mem(transcript: &str) -> Option<(u64, u64)> {
    let line = transcript.lines().find(|l| l.contains("probe: mem "))?;
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("used_kb=")?, field("rss_kb=")?))
}

/// The manifest the bench boots from: the build's, plus each system's initramfs as a
/// variant named `bench-<label>` (how `BootOptions::variant` picks an initramfs).
fn manifest_with(manifest: &Manifest, systems: &[System]) -> Manifest {
    let mut m = manifest.clone();
    for s in systems {
        m.initramfs.insert(
            format!("bench-{}", s.label),
            FileArtifact {
                path: s.initramfs.clone(),
                sha256: s.sha256.clone(),
                size: s.size,
                inputs: BTreeMap::new(),
            },
        );
    }
    m
}

fn boot(manifest: &Manifest, sys: &System, memory_mib: u32, log: Option<PathBuf>) -> Result<Vm> {
    let dep = crate::deployments::find(DEPLOYMENT)?;
    let opts = BootOptions {
        variant: format!("bench-{}", sys.label),
        cmdline: sys.cmdline.clone(),
        memory_mib,
        log,
        q35: true,
        ..BootOptions::default()
    };
    Vm::start(dep, manifest, &opts)
}

/// One screendump, classified.
struct Shot {
    grid: Grid,
    /// When the screendump was asked for and when it was back (host, since QEMU start).
    asked: f64,
    done: f64,
}

struct Screen {
    qmp: crate::qmp::Qmp,
    path: PathBuf,
}

impl Screen {
    fn new(vm: &Vm) -> Result<Screen> {
        Ok(Screen {
            qmp: vm.qmp()?,
            path: vm.scratch_dir().join("bench.ppm"),
        })
    }

    fn shot(&mut self, vm: &Vm) -> Result<Shot> {
        let asked = vm.started.elapsed().as_secs_f64();
        self.qmp.execute(
            "screendump",
            serde_json::json!({ "filename": self.path, "format": "ppm" }),
        )?;
        let done = vm.started.elapsed().as_secs_f64();
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("cannot read the screendump {}", self.path.display()))?;
        Ok(Shot {
            grid: Grid::of(&parse_ppm(&bytes)?),
            asked,
            done,
        })
    }

    /// Screendumps until `pred` holds; returns that shot and the previous one's request
    /// time (the picture was not there yet then).
    fn until(
        &mut self,
        vm: &Vm,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Grid) -> bool,
    ) -> Result<(Shot, f64)> {
        let deadline = Instant::now() + limit;
        let mut before = vm.started.elapsed().as_secs_f64();
        loop {
            let shot = self
                .shot(vm)
                .with_context(|| format!("{}: waiting for {what}", vm.name))?;
            if pred(&shot.grid) {
                return Ok((shot, before));
            }
            before = shot.asked;
            if Instant::now() >= deadline {
                bail!(
                    "{}: no {what} on screen after {:.0} s (photo-like cells {:.0} %)\n{}",
                    vm.name,
                    limit.as_secs_f64(),
                    shot.grid.photo_coverage() * 100.0,
                    nekos_build::util::tail_lines(&vm.transcript(), 20)
                );
            }
        }
    }
}

/// Types `line` at `prompt` and returns what came back up to the next prompt.
fn at_prompt(vm: &mut Vm, prompt: &str, line: &str) -> Result<String> {
    let from = vm.mark();
    vm.send(&format!("{line}\n"))?;
    let end = vm.wait_from(from, prompt, STEP_LIMIT)?;
    Ok(vm.transcript().get(from..end).unwrap_or("").to_string())
}

/// Host seconds (since QEMU start) at which the first line containing one of `markers`
/// arrived, watched by a thread blocked on the transcript until `stop` is set.
fn watch_line(vm: &Vm, markers: &[&str], stop: &AtomicBool) -> Option<(String, f64)> {
    let mut from = 0;
    while !stop.load(Ordering::Relaxed) {
        // Wakes as soon as the next line is complete.
        match vm.wait_from(from, "\n", Duration::from_millis(100)) {
            Ok(end) => {
                let text = vm.transcript();
                let chunk = text.get(from..end).unwrap_or("");
                if let Some(m) = markers.iter().find(|m| chunk.contains(**m)) {
                    return Some((m.to_string(), vm.started.elapsed().as_secs_f64()));
                }
                from = end;
            }
            Err(e) if format!("{e}").contains("QEMU exited") => return None,
            Err(_) => {}
        }
    }
    None
}

/// Markers for "/init has started": the contract's timeline mark, and NekOS's own line as
/// the fallback for an initramfs from before the marks existed.
const INIT_MARKERS: &[&str] = &[" init-start", "nekos: init started"];

/// Boots `sys` once and measures everything but the minimum RAM.
fn measure(manifest: &Manifest, sys: &System, run: usize, log: PathBuf) -> Run {
    let mut out = Run {
        run,
        ..Run::default()
    };
    if let Err(e) = measure_into(manifest, sys, log, &mut out) {
        eprintln!("nekos: bench {} run {run}: {e:#}", sys.label);
        // One line in the report (the serial tail is in the run's log and on stderr).
        let text = format!("{e:#}");
        out.error = Some(text.lines().next().unwrap_or("").to_string());
    }
    out
}

fn measure_into(manifest: &Manifest, sys: &System, log: PathBuf, out: &mut Run) -> Result<()> {
    let mut vm = boot(manifest, sys, MEMORY_MIB, Some(log))?;
    let stop = AtomicBool::new(false);
    let (cat, init) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_line(&vm, INIT_MARKERS, &stop));
        let cat = Screen::new(&vm).and_then(|mut screen| {
            screen
                .until(&vm, FIRST_CAT_LIMIT, "cat", Grid::shows_a_cat)
                .map(|(shot, before)| (screen, shot, before))
        });
        // The init line comes before any cat; give it a moment if the screen was faster.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !watcher.is_finished() && Instant::now() < deadline && cat.is_ok() {
            std::thread::yield_now();
            let _ = vm.wait_from(vm.mark(), "\n", Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        (cat, watcher.join().ok().flatten())
    });
    let (mut screen, shot, before) = cat?;
    out.qemu_to_cat_s = Some(shot.done);
    out.cat_uncertainty_s = Some(shot.done - before);
    if let Some((_, at)) = &init {
        out.init_start_host_s = Some(*at);
        out.init_to_cat_s = Some(shot.done - at);
    }
    // The untimed prime key goes now, so the memory readout separates it from the timed
    // key (see `prime_keyboard`).
    let mut prime_start = None;
    if let (Some(_), Some(prompt)) = (&sys.next_key, &sys.shell_prompt) {
        at_prompt(&mut vm, prompt, "")?;
        prime_start = Some(keyboard_irq_count(&mut vm, prompt)?);
        screen.qmp.send_keys(&[nekos_build::compare::PRIME_KEY])?;
    }
    // Memory and RSS with the cat shown.
    match &sys.shell_prompt {
        Some(prompt) => {
            at_prompt(&mut vm, prompt, "")?;
            let meminfo = at_prompt(&mut vm, prompt, "cat /proc/meminfo")?;
            out.mem_used_kb = mem_used_kb(&meminfo);
            let ps = at_prompt(&mut vm, prompt, "ps")?;
            let pids: Vec<String> = ps_pids(&ps)
                .iter()
                .map(|p| format!("/proc/{p}/status"))
                .collect();
            let statuses = at_prompt(&mut vm, prompt, &format!("cat {}", pids.join(" ")))?;
            out.rss_kb_by_process = rss_by_process(&statuses);
            out.rss_kb = Some(out.rss_kb_by_process.values().sum());
        }
        None => {
            let end = vm.wait_from(0, "probe: mem ", STEP_LIMIT)?;
            let line_end = vm.wait_from(end, "\n", STEP_LIMIT)?;
            let text = vm.transcript();
            if let Some((used, rss)) = probe_mem(text.get(..line_end).unwrap_or("")) {
                out.mem_used_kb = Some(used);
                out.rss_kb = Some(rss);
                out.rss_kb_by_process.insert("init (probe)".into(), rss);
            }
        }
    }
    // The marks so far, kept even if the key step fails (updated after it).
    out.phases_ms = phases(&vm.transcript());
    // Key → next photo.
    if let Some(key) = &sys.next_key {
        // Untimed: a compositor that hands its keyboard over on the first key event
        // (cage) sees it here, not in the timed key (see `compare::PRIME_KEY`).
        if let Some(prompt) = &sys.shell_prompt {
            prime_keyboard(&mut vm, &mut screen.qmp, prompt, prime_start)?;
        }
        let before = screen.shot(&vm)?;
        let t0 = vm.started.elapsed().as_secs_f64();
        // The same QMP connection: QEMU serves one client at a time on this socket.
        screen.qmp.send_keys(&[key.as_str()])?;
        let (next, _) = screen.until(&vm, STEP_LIMIT, "next cat", |g| {
            g.shows_another_cat_than(&before.grid)
        })?;
        out.key_to_next_s = Some(next.done - t0);
    }
    out.phases_ms = phases(&vm.transcript());
    Ok(())
}

fn keyboard_irq_count(vm: &mut Vm, prompt: &str) -> Result<u64> {
    use nekos_build::compare::{KEYBOARD_IRQS_COMMAND, keyboard_irqs};
    let text = at_prompt(vm, prompt, KEYBOARD_IRQS_COMMAND)?;
    keyboard_irqs(&text).with_context(|| {
        format!("`{KEYBOARD_IRQS_COMMAND}` in the guest shows no i8042 line for IRQ 1")
    })
}

/// Waits until the guest's keyboard interrupt count shows the press and release of
/// `compare::PRIME_KEY` (sent after the first cat, count then `start`), so the timed key
/// comes in a later read.
fn prime_keyboard(
    vm: &mut Vm,
    _qmp: &mut crate::qmp::Qmp,
    prompt: &str,
    start: Option<u64>,
) -> Result<()> {
    let Some(start) = start else {
        return Ok(());
    };
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        if keyboard_irq_count(vm, prompt)? >= start + 2 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the guest's keyboard interrupts did not count the {} press and release within {} s",
                nekos_build::compare::PRIME_KEY,
                STEP_LIMIT.as_secs()
            );
        }
    }
}

/// Does a boot with `memory_mib` show a cat within `limit`?
fn shows_cat_with(
    manifest: &Manifest,
    sys: &System,
    memory_mib: u32,
    limit: Duration,
    log: PathBuf,
) -> Result<bool> {
    let vm = boot(manifest, sys, memory_mib, Some(log))?;
    let mut screen = Screen::new(&vm)?;
    // A failed boot ends as a timeout, a QEMU exit (panic=-1) or a refused screendump.
    Ok(screen.until(&vm, limit, "cat", Grid::shows_a_cat).is_ok())
}

fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut v = text
        .split_whitespace()
        .filter_map(|x| x.parse::<f64>().ok());
    [
        v.next().unwrap_or(f64::NAN),
        v.next().unwrap_or(f64::NAN),
        v.next().unwrap_or(f64::NAN),
    ]
}

fn utc_now() -> String {
    let secs = nekos_build::util::now_unix().unwrap_or(0);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// What this machine runs the comparison with.
pub fn identity(manifest: &Manifest) -> Result<Identity> {
    Ok(Identity {
        kernel_sha256: manifest
            .kernel
            .as_ref()
            .map(|k| k.sha256.clone())
            .context("the manifest has no kernel (run `cargo nekos build`)")?,
        qemu_version: nekos_build::util::tool_version("qemu-system-x86_64")?,
        photos: manifest.cats.clone(),
    })
}

/// Everything that can refuse before anything is built or booted: the extras and
/// `--against`. Returns this machine's identity, the extras and the earlier medians.
pub fn check_inputs(
    manifest: &Manifest,
    opts: &CompareOptions,
) -> Result<(Identity, Vec<System>, Option<crate::bench_report::Against>)> {
    let identity = identity(manifest)?;
    let extras = opts
        .extras
        .iter()
        .map(|(label, path)| extra_system(label, path))
        .collect::<Result<Vec<_>>>()?;
    for e in &extras {
        let theirs = Identity {
            photos: e.photos.clone(),
            ..identity.clone()
        };
        crate::bench_report::refuse_different(
            &identity,
            &theirs,
            &format!("--extra {}={}", e.label, e.initramfs.display()),
        )?;
    }
    let against = match &opts.against {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--against {}: cannot read it", p.display()))?;
            Some(crate::bench_report::against(
                &identity,
                &text,
                &p.display().to_string(),
            )?)
        }
    };
    Ok((identity, extras, against))
}

/// The comparison: checks the inputs, builds the probe and the reference
/// (nekos_build::compare, up to date when nothing changed), boots everything interleaved.
pub fn run(root: &Path, manifest: &Manifest, opts: &CompareOptions) -> Result<Report> {
    let (identity, extras, against) = check_inputs(manifest, opts)?;
    let systems = systems(
        nekos_system(manifest)?,
        baselines(root, manifest)?,
        extras,
        &identity,
    )?;
    for s in &systems {
        if s.photos != identity.photos {
            eprintln!(
                "nekos: bench: warning: {} packs other photos than NekOS: {:?}",
                s.label,
                s.photos.keys().collect::<Vec<_>>()
            );
        }
    }
    let view = manifest_with(manifest, &systems);
    let host_start = loadavg();
    let logs = opts.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let mut reports: Vec<SystemReport> = systems
        .iter()
        .map(|s| SystemReport {
            label: s.label.clone(),
            about: s.about.clone(),
            initramfs_sha256: s.sha256.clone(),
            initramfs_bytes: s.size,
            photos: s.photos.clone(),
            packages: s.packages.clone(),
            ..SystemReport::default()
        })
        .collect();
    for run in 1..=opts.runs.max(1) {
        for (sys, rep) in systems.iter().zip(reports.iter_mut()) {
            let r = measure(
                &view,
                sys,
                run,
                logs.join(format!("{}-run{run}.serial.log", sys.label)),
            );
            eprintln!(
                "nekos: bench {} run {run}/{}: QEMU→cat {} s, /init→cat {} s, key→next {} s",
                sys.label,
                opts.runs,
                fmt(r.qemu_to_cat_s),
                fmt(r.init_to_cat_s),
                fmt(r.key_to_next_s)
            );
            rep.runs.push(r);
        }
    }
    if opts.min_ram {
        for (sys, rep) in systems.iter().zip(reports.iter_mut()) {
            let median =
                crate::bench_report::Stats::of(rep.runs.iter().filter_map(|r| r.qemu_to_cat_s));
            let limit =
                Duration::from_secs_f64(median.map(|m| m.median * 3.0).unwrap_or(30.0).max(15.0));
            let min = bisect_min(MIN_RAM_RANGE.0, MIN_RAM_RANGE.1, |mib| {
                let ok = shows_cat_with(
                    &view,
                    sys,
                    mib,
                    limit,
                    logs.join(format!("{}-{mib}mib.serial.log", sys.label)),
                )?;
                eprintln!(
                    "nekos: bench {} -m {mib}: {}",
                    sys.label,
                    if ok { "cat" } else { "no cat" }
                );
                Ok(ok)
            })?;
            rep.min_ram_mib = min;
        }
    }
    let mut report = Report {
        schema: SCHEMA,
        identity,
        host: Host {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            load_start: host_start,
            load_end: loadavg(),
            date: utc_now(),
        },
        runs: opts.runs.max(1),
        systems: reports,
        against,
        ..Report::default()
    };
    report.finish();
    Ok(report)
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "—".into())
}

/// Writes bench.json, bench.md and timeline.svg into `out`, each atomically.
pub fn write(report: &Report, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    nekos_build::util::write_atomic(
        &out.join("bench.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    nekos_build::util::write_atomic(
        &out.join("bench.md"),
        crate::bench_report::markdown(report).as_bytes(),
    )?;
    nekos_build::util::write_atomic(
        &out.join("timeline.svg"),
        crate::bench_report::svg(report).as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn bisection_finds_the_smallest_memory_that_shows_a_cat() {
        for threshold in [16, 17, 46, 53, 330, 511, 512] {
            let boots = RefCell::new(Vec::new());
            let got = bisect_min(16, 512, |m| {
                boots.borrow_mut().push(m);
                Ok(m >= threshold)
            })
            .unwrap();
            assert_eq!(got, Some(threshold));
            assert!(
                boots.borrow().len() <= 11,
                "{threshold}: {:?}",
                boots.borrow()
            );
        }
    }

    #[test]
    fn bisection_reports_none_when_even_the_most_memory_shows_no_cat() {
        let boots = RefCell::new(0);
        assert_eq!(
            bisect_min(16, 512, |_| {
                *boots.borrow_mut() += 1;
                Ok(false)
            })
            .unwrap(),
            None
        );
        assert_eq!(*boots.borrow(), 1, "one boot at the top is enough to know");
        // A failing boot function (QEMU missing) is an error, not a number.
        assert!(bisect_min(16, 512, |_| bail!("no qemu")).is_err());
    }

    #[test]
    fn timeline_marks_are_read_from_any_line() {
        let t = "[    0.900000] nekos: t=912 init-start\nnoise\nnekos: t=1004.5 compositor-drm-ready extra words\r\nnekos: t=x broken\nnekos: t=1200\n";
        assert_eq!(
            phases(t),
            vec![
                ("init-start".to_string(), 912.0),
                ("compositor-drm-ready".to_string(), 1004.5)
            ]
        );
    }

    #[test]
    fn memory_rss_and_pids_are_read_from_the_shells_output() {
        let meminfo = "cat /proc/meminfo\nMemTotal:         500000 kB\nMemFree:          460000 kB\nMemAvailable: 1 kB\nnekos# ";
        assert_eq!(mem_used_kb(meminfo), Some(40000));
        assert_eq!(mem_used_kb("MemTotal: 5 kB"), None);
        let ps = "ps\nPID PPID S COMMAND\n1 0 S init\n2 0 S kthreadd\n45 1 S compositor\nnekos# ";
        assert_eq!(ps_pids(ps), vec![1, 2, 45]);
        let busybox = "  PID USER       TIME  COMMAND\n    1 0          0:00 /bin/sh /init\n   77 cat        0:01 swayimg\n";
        assert_eq!(ps_pids(busybox), vec![1, 77]);
        let statuses = "Name:\tinit\nPid:\t1\nVmRSS:\t    1200 kB\nName:\tkthreadd\nPid:\t2\nName:\tviewer\nVmRSS:\t13400 kB\ncat: /proc/99/status: No such file\nName:\tviewer\nVmRSS:\t100 kB\n";
        let rss = rss_by_process(statuses);
        assert_eq!(rss.len(), 2);
        assert_eq!(rss["init"], 1200);
        assert_eq!(rss["viewer"], 13500);
        assert_eq!(
            probe_mem("x\nprobe: mem used_kb=18000 rss_kb=700\n"),
            Some((18000, 700))
        );
        assert_eq!(probe_mem("probe: mem used_kb=oops\n"), None);
    }

    #[test]
    fn extra_labels_are_checked() {
        assert_eq!(
            parse_extra("before=a/b.cpio").unwrap(),
            ("before".into(), PathBuf::from("a/b.cpio"))
        );
        for bad in [
            "nolabel",
            "=x.cpio",
            "before=",
            "probe=x.cpio",
            "a b=x.cpio",
        ] {
            let e = parse_extra(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    fn newc(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (name, data)) in entries.iter().enumerate() {
            let mut w = cpio::newc::Builder::new(name)
                .ino(i as u32 + 1)
                .mode(0o100644)
                .write(&mut out, data.len() as u32);
            std::io::Write::write_all(&mut w, data).unwrap();
            w.finish().unwrap();
        }
        cpio::newc::trailer(&mut out).unwrap();
        out
    }

    #[test]
    fn an_extra_that_is_missing_or_not_a_cpio_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("nekos-bench-extra-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.cpio");
        let e = format!("{:#}", extra_system("before", &missing).unwrap_err());
        assert!(
            e.contains("--extra before=") && e.contains("missing.cpio"),
            "{e}"
        );
        let text = dir.join("notes.txt");
        std::fs::write(&text, b"hello, not an archive").unwrap();
        let e = format!("{:#}", extra_system("before", &text).unwrap_err());
        assert!(e.contains("notes.txt") && e.contains("newc cpio"), "{e}");
        let gz = dir.join("initramfs.cpio.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let e = format!("{:#}", extra_system("before", &gz).unwrap_err());
        assert!(
            e.contains("initramfs.cpio.gz") && e.contains("compressed"),
            "{e}"
        );
        let cut = dir.join("cut.cpio");
        let full = newc(&[("init", b"#!/bin/sh\n")]);
        std::fs::write(&cut, &full[..120]).unwrap();
        let e = format!("{:#}", extra_system("before", &cut).unwrap_err());
        assert!(e.contains("cut.cpio"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn identity_with(photos: &[(&str, &[u8])]) -> Identity {
        Identity {
            kernel_sha256: "k".into(),
            qemu_version: "q".into(),
            photos: photos
                .iter()
                .map(|(n, d)| (n.to_string(), nekos_formats::digest::sha256_hex(d)))
                .collect(),
        }
    }

    #[test]
    fn an_extra_whose_photos_differ_is_refused_naming_the_photo() {
        let dir = std::env::temp_dir().join(format!("nekos-bench-photos-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.cpio");
        std::fs::write(
            &old,
            newc(&[
                ("init", b"x"),
                ("usr/share/nekos/cats/a.jpg", b"cat a"),
                ("usr/share/nekos/cats/b.jpg", b"old cat b"),
            ]),
        )
        .unwrap();
        let extra = extra_system("before", &old).unwrap();
        assert_eq!(extra.photos.len(), 2);
        let same = identity_with(&[("a.jpg", b"cat a"), ("b.jpg", b"old cat b")]);
        let nekos = System {
            label: "nekos".into(),
            ..extra.clone()
        };
        assert_eq!(
            systems(nekos.clone(), vec![], vec![extra.clone()], &same)
                .unwrap()
                .len(),
            2
        );
        let ours = identity_with(&[("a.jpg", b"cat a"), ("b.jpg", b"new cat b")]);
        let e = systems(nekos, vec![], vec![extra], &ours)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("photo set differs") && e.contains("b.jpg") && e.contains("old.cpio"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
