//! `bench --compare`'s results: the data (`bench.json`), the Markdown table (`bench.md`),
//! the per-phase timeline (`timeline.svg`) and the refusal to compare runs that measured
//! different things. Pure: values in, text out (the harness in bench_compare.rs writes).

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const SCHEMA: u32 = 1;

/// What makes two runs comparable: the same kernel, the same QEMU and the same photos.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    pub kernel_sha256: String,
    /// First line of `qemu-system-x86_64 --version`.
    pub qemu_version: String,
    /// Photo file name → sha256, as packed.
    pub photos: BTreeMap<String, String>,
}

/// Refuses to put `theirs` (described by `what`, e.g. the file name) next to `ours` when
/// they measured different things, naming every difference with both values.
pub fn refuse_different(ours: &Identity, theirs: &Identity, what: &str) -> Result<()> {
    let mut diffs = Vec::new();
    if ours.kernel_sha256 != theirs.kernel_sha256 {
        diffs.push(format!(
            "the kernel differs: this run's sha256 {}, {what}'s {}",
            ours.kernel_sha256, theirs.kernel_sha256
        ));
    }
    if ours.qemu_version != theirs.qemu_version {
        diffs.push(format!(
            "the QEMU version differs: this run {:?}, {what} {:?}",
            ours.qemu_version, theirs.qemu_version
        ));
    }
    if ours.photos != theirs.photos {
        diffs.push(format!(
            "the photo set differs: {}",
            photo_differences(&ours.photos, &theirs.photos, what)
        ));
    }
    if diffs.is_empty() {
        return Ok(());
    }
    bail!("refusing to compare with {what}: {}", diffs.join("; "))
}

fn photo_differences(
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    what: &str,
) -> String {
    let mut out = Vec::new();
    for (name, sha) in ours {
        match theirs.get(name) {
            None => out.push(format!("{name} only in this run")),
            Some(t) if t != sha => {
                out.push(format!("{name} is sha256 {sha} in this run, {t} in {what}"))
            }
            Some(_) => {}
        }
    }
    for name in theirs.keys().filter(|n| !ours.contains_key(*n)) {
        out.push(format!("{name} only in {what}"));
    }
    out.join(", ")
}

/// One boot of one system.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub run: usize,
    /// Host seconds from QEMU start to the first screendump showing a cat.
    pub qemu_to_cat_s: Option<f64>,
    /// How late that can be: the time between that screendump and the one before it.
    pub cat_uncertainty_s: Option<f64>,
    /// Host seconds from the `init-start` line's arrival on the serial line to the cat.
    pub init_to_cat_s: Option<f64>,
    /// Host seconds from QEMU start to the `init-start` line's arrival.
    pub init_start_host_s: Option<f64>,
    /// Host seconds from the key press (QMP send-key returned) to another cat on screen.
    pub key_to_next_s: Option<f64>,
    /// MemTotal − MemFree with the cat shown, kB.
    pub mem_used_kb: Option<u64>,
    /// Sum of VmRSS of the userland processes, kB.
    pub rss_kb: Option<u64>,
    /// VmRSS by process name (kB; names repeated are summed).
    #[serde(default)]
    pub rss_kb_by_process: BTreeMap<String, u64>,
    /// The guest's `nekos: t=<ms> <phase>` marks, in order (ms since boot, CLOCK_BOOTTIME).
    #[serde(default)]
    pub phases_ms: Vec<(String, f64)>,
    /// What went wrong, if the run did not measure everything.
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    pub n: usize,
}

impl Stats {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Stats {
            min: v[0],
            median: nekos_build::util::median(v.clone()),
            max: v[v.len() - 1],
            n: v.len(),
        })
    }
}

/// The metrics, in table order: key in bench.json, row label, unit, digits.
pub const METRICS: &[(&str, &str, &str, usize)] = &[
    ("init_to_cat_s", "/init → first cat on screen", "s", 2),
    ("qemu_to_cat_s", "QEMU start → first cat", "s", 2),
    (
        "mem_used_mib",
        "memory in use with the cat shown (MemTotal − MemFree)",
        "MiB",
        1,
    ),
    ("rss_mib", "userland RSS", "MiB", 1),
    ("key_to_next_s", "key → next photo on screen", "s", 3),
    (
        "min_ram_mib",
        "minimum guest RAM that shows a cat",
        "MiB",
        0,
    ),
    ("initramfs_mib", "initramfs (uncompressed cpio)", "MiB", 1),
];

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SystemReport {
    pub label: String,
    pub about: String,
    pub initramfs_sha256: String,
    pub initramfs_bytes: u64,
    pub photos: BTreeMap<String, String>,
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    pub runs: Vec<Run>,
    /// Smallest `-m` (MiB) that still showed a cat; None when skipped or never.
    pub min_ram_mib: Option<u32>,
    /// Metric key → min/median/max over the runs.
    pub metrics: BTreeMap<String, Stats>,
    /// Phase → min/median/max of its guest time (ms since boot), in order of the median.
    pub timeline_ms: Vec<(String, Stats)>,
    /// Median host seconds from QEMU start to `init-start` (maps guest marks to host time).
    pub init_start_host_s: Option<f64>,
}

impl SystemReport {
    /// Fills `metrics` and `timeline_ms` from the runs.
    pub fn summarise(&mut self) {
        let mib = |kb: u64| kb as f64 / 1024.0;
        let mut m = BTreeMap::new();
        let mut put = |key: &str, s: Option<Stats>| {
            if let Some(s) = s {
                m.insert(key.to_string(), s);
            }
        };
        put(
            "init_to_cat_s",
            Stats::of(self.runs.iter().filter_map(|r| r.init_to_cat_s)),
        );
        put(
            "qemu_to_cat_s",
            Stats::of(self.runs.iter().filter_map(|r| r.qemu_to_cat_s)),
        );
        put(
            "key_to_next_s",
            Stats::of(self.runs.iter().filter_map(|r| r.key_to_next_s)),
        );
        put(
            "mem_used_mib",
            Stats::of(self.runs.iter().filter_map(|r| r.mem_used_kb.map(mib))),
        );
        put(
            "rss_mib",
            Stats::of(self.runs.iter().filter_map(|r| r.rss_kb.map(mib))),
        );
        put("min_ram_mib", Stats::of(self.min_ram_mib.map(f64::from)));
        put(
            "initramfs_mib",
            Stats::of([self.initramfs_bytes as f64 / 1048576.0]),
        );
        self.metrics = m;
        let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &self.runs {
            for (p, t) in &r.phases_ms {
                // A phase printed twice in one run (a restart) counts once: the first.
                let v = phases.entry(p.clone()).or_default();
                if v.len() < self.runs.iter().filter(|x| x.run <= r.run).count() {
                    v.push(*t);
                }
            }
        }
        let mut timeline: Vec<(String, Stats)> = phases
            .into_iter()
            .filter_map(|(p, v)| Stats::of(v).map(|s| (p, s)))
            .collect();
        timeline.sort_by(|a, b| a.1.median.total_cmp(&b.1.median));
        self.timeline_ms = timeline;
        self.init_start_host_s =
            Stats::of(self.runs.iter().filter_map(|r| r.init_start_host_s)).map(|s| s.median);
    }

    pub fn median(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).map(|s| s.median)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Host {
    pub nproc: usize,
    /// /proc/loadavg's 1, 5 and 15 minute averages when the bench started and ended.
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
    /// UTC, RFC 3339.
    pub date: String,
}

/// One issue #15 target, judged for one system.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Target {
    pub system: String,
    pub what: String,
    pub value: Option<f64>,
    pub bound: Option<f64>,
    pub unit: String,
    /// None: a value is missing.
    pub pass: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub schema: u32,
    pub identity: Identity,
    pub host: Host,
    pub runs: usize,
    pub systems: Vec<SystemReport>,
    /// System → metric → {vs_probe, vs_reference}: the system's median ÷ theirs.
    pub ratios: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    pub targets: Vec<Target>,
    /// The medians of an earlier bench.json (`--against`), system → metric → median.
    #[serde(default)]
    pub against: Option<Against>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Against {
    pub file: String,
    pub date: String,
    pub medians: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Only the identity of an earlier bench.json is needed to decide whether it compares.
#[derive(Deserialize)]
struct OldReport {
    schema: u32,
    identity: Identity,
    #[serde(default)]
    host: Host,
    #[serde(default)]
    systems: Vec<SystemReport>,
}

/// Reads an earlier bench.json and refuses it unless it measured the same things.
pub fn against(ours: &Identity, text: &str, file: &str) -> Result<Against> {
    let old: OldReport = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!("{file}: not a `bench --compare` bench.json ({e}); expected the file a previous `cargo nekos bench --compare` wrote")
    })?;
    if old.schema != SCHEMA {
        bail!(
            "{file}: bench.json schema {}, this bench writes {SCHEMA}",
            old.schema
        );
    }
    refuse_different(ours, &old.identity, file)?;
    Ok(Against {
        file: file.to_string(),
        date: old.host.date,
        medians: old
            .systems
            .iter()
            .map(|s| {
                (
                    s.label.clone(),
                    s.metrics
                        .iter()
                        .map(|(k, v)| (k.clone(), v.median))
                        .collect(),
                )
            })
            .collect(),
    })
}

impl Report {
    fn system(&self, label: &str) -> Option<&SystemReport> {
        self.systems.iter().find(|s| s.label == label)
    }

    /// Summaries, ratios and targets from the runs.
    pub fn finish(&mut self) {
        for s in &mut self.systems {
            s.summarise();
        }
        let mut ratios = BTreeMap::new();
        for s in &self.systems {
            let mut per_metric = BTreeMap::new();
            for (key, ..) in METRICS {
                let mut r = BTreeMap::new();
                for base in ["probe", "reference"] {
                    if s.label == base {
                        continue;
                    }
                    if let (Some(a), Some(b)) =
                        (s.median(key), self.system(base).and_then(|b| b.median(key)))
                        && b != 0.0
                    {
                        r.insert(format!("vs_{base}"), a / b);
                    }
                }
                if !r.is_empty() {
                    per_metric.insert(key.to_string(), r);
                }
            }
            ratios.insert(s.label.clone(), per_metric);
        }
        self.ratios = ratios;
        self.targets = self.judge();
    }

    /// Issue #15's targets for every system that is not one of the two baselines.
    fn judge(&self) -> Vec<Target> {
        let probe = |k: &str| self.system("probe").and_then(|s| s.median(k));
        let reference = |k: &str| self.system("reference").and_then(|s| s.median(k));
        let mut out = Vec::new();
        for s in self
            .systems
            .iter()
            .filter(|s| s.label != "probe" && s.label != "reference")
        {
            let rules: [(&str, &str, Option<f64>, &str); 6] = [
                (
                    "/init → first cat ≤ 2 × probe",
                    "init_to_cat_s",
                    probe("init_to_cat_s").map(|p| 2.0 * p),
                    "s",
                ),
                (
                    "QEMU start → first cat ≤ probe + 0.3 s",
                    "qemu_to_cat_s",
                    probe("qemu_to_cat_s").map(|p| p + 0.3),
                    "s",
                ),
                (
                    "key → next ≤ ½ × reference",
                    "key_to_next_s",
                    reference("key_to_next_s").map(|r| r / 2.0),
                    "s",
                ),
                ("userland RSS ≤ 16 MiB", "rss_mib", Some(16.0), "MiB"),
                (
                    "memory in use ≤ ⅕ × reference",
                    "mem_used_mib",
                    reference("mem_used_mib").map(|r| r / 5.0),
                    "MiB",
                ),
                (
                    "minimum RAM ≤ probe + 4 MiB",
                    "min_ram_mib",
                    probe("min_ram_mib").map(|p| p + 4.0),
                    "MiB",
                ),
            ];
            for (what, key, bound, unit) in rules {
                let value = s.median(key);
                out.push(Target {
                    system: s.label.clone(),
                    what: what.to_string(),
                    value,
                    bound,
                    unit: unit.to_string(),
                    pass: value.zip(bound).map(|(v, b)| v <= b),
                });
            }
        }
        out
    }
}

fn num(v: f64, digits: usize) -> String {
    format!("{v:.digits$}")
}

fn cell(s: Option<&Stats>, digits: usize) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.n == 1 || s.min == s.max => num(s.median, digits),
        Some(s) => format!(
            "{} ({}–{})",
            num(s.median, digits),
            num(s.min, digits),
            num(s.max, digits)
        ),
    }
}

/// `bench.md`: the table (median, then min–max over the runs), the ratios, the
/// targets with pass/fail, the per-phase medians and how the numbers were taken.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let others: Vec<&SystemReport> = r
        .systems
        .iter()
        .filter(|s| s.label != "probe" && s.label != "reference")
        .collect();
    let _ = writeln!(o, "# NekOS vs the bare probe vs busybox + cage + swayimg\n");
    let _ = writeln!(
        o,
        "{} interleaved run(s) per system; median (min–max). Kernel sha256 `{}`, {}, {} photo(s). \
         Host: {} CPU(s), load {:.2} at start, {:.2} at end, {}.\n",
        r.runs,
        short(&r.identity.kernel_sha256),
        r.identity.qemu_version,
        r.identity.photos.len(),
        r.host.nproc,
        r.host.load_start[0],
        r.host.load_end[0],
        r.host.date
    );
    let mut head = String::from("| |");
    let mut rule = String::from("|---|");
    for s in &r.systems {
        let _ = write!(head, " {} |", s.label);
        rule.push_str("---|");
    }
    for s in &others {
        for base in ["probe", "reference"] {
            let _ = write!(head, " {} ÷ {base} |", s.label);
            rule.push_str("---|");
        }
    }
    let _ = writeln!(o, "{head}\n{rule}");
    for (key, label, unit, digits) in METRICS {
        let _ = write!(o, "| {label} ({unit}) |");
        for s in &r.systems {
            let _ = write!(o, " {} |", cell(s.metrics.get(*key), *digits));
        }
        for s in &others {
            for base in ["vs_probe", "vs_reference"] {
                let ratio = r
                    .ratios
                    .get(&s.label)
                    .and_then(|m| m.get(*key))
                    .and_then(|m| m.get(base));
                let _ = write!(
                    o,
                    " {} |",
                    ratio
                        .map(|x| format!("{x:.2}×"))
                        .unwrap_or_else(|| "—".into())
                );
            }
        }
        o.push('\n');
    }
    // Userland RSS per process (medians), the row the issue gives in parentheses.
    let _ = write!(o, "| RSS by process (MiB) |");
    for s in &r.systems {
        let mut per: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for run in &s.runs {
            for (p, kb) in &run.rss_kb_by_process {
                per.entry(p).or_default().push(*kb as f64 / 1024.0);
            }
        }
        let text: Vec<String> = per
            .into_iter()
            .map(|(p, v)| format!("{p} {:.1}", nekos_build::util::median(v)))
            .collect();
        let _ = write!(
            o,
            " {} |",
            if text.is_empty() {
                "—".into()
            } else {
                text.join(", ")
            }
        );
    }
    for _ in 0..others.len() * 2 {
        o.push_str(" |");
    }
    o.push('\n');

    if !r.targets.is_empty() {
        let _ = writeln!(o, "\n## Issue #15 targets (medians)\n");
        let _ = writeln!(
            o,
            "| system | target | value | bound | |\n|---|---|---|---|---|"
        );
        for t in &r.targets {
            let v = |x: Option<f64>| {
                x.map(|x| format!("{x:.3} {}", t.unit))
                    .unwrap_or_else(|| "—".into())
            };
            let verdict = match t.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "n/a",
            };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {verdict} |",
                t.system,
                t.what,
                v(t.value),
                v(t.bound)
            );
        }
    }

    if let Some(a) = &r.against {
        let _ = writeln!(o, "\n## Against {} ({})\n", a.file, a.date);
        let _ = writeln!(o, "| system | metric | then | now |\n|---|---|---|---|");
        for s in &r.systems {
            for (key, label, unit, digits) in METRICS {
                let then = a.medians.get(&s.label).and_then(|m| m.get(*key));
                let now = s.median(key);
                if then.is_none() && now.is_none() {
                    continue;
                }
                let f = |x: Option<f64>| {
                    x.map(|x| format!("{} {unit}", num(x, *digits)))
                        .unwrap_or_else(|| "—".into())
                };
                let _ = writeln!(
                    o,
                    "| {} | {label} | {} | {} |",
                    s.label,
                    f(then.copied()),
                    f(now)
                );
            }
        }
    }

    let _ = writeln!(o, "\n## Per-phase timeline (guest ms since boot, median)\n");
    for s in &r.systems {
        let phases: Vec<String> = s
            .timeline_ms
            .iter()
            .map(|(p, st)| format!("{p} {:.0}", st.median))
            .collect();
        let _ = writeln!(
            o,
            "- **{}**: {}",
            s.label,
            if phases.is_empty() {
                "no `nekos: t=` marks".into()
            } else {
                phases.join(" → ")
            }
        );
    }
    let _ = writeln!(o, "\n## Systems\n");
    for s in &r.systems {
        let _ = writeln!(
            o,
            "- **{}** — {}; initramfs {} bytes, sha256 `{}`{}",
            s.label,
            s.about,
            s.initramfs_bytes,
            short(&s.initramfs_sha256),
            if s.packages.is_empty() {
                String::new()
            } else {
                format!(
                    "; {}",
                    s.packages
                        .iter()
                        .map(|(p, v)| format!("{p} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    let _ = writeln!(o, "\n{METHOD}");
    o
}

/// How the numbers were taken (printed under the table so a reader need not find the code).
pub const METHOD: &str = "Method: QEMU start is when the harness spawned QEMU. The first cat is the first QMP \
screendump (PPM) in which at least 8 % of a 32×20 grid of cells hold more than 24 distinct colours \
(text consoles and blank screens hold at most 16); its uncertainty is the gap to the screendump \
before it. /init → cat is the host time of that screendump minus the host time the guest's \
`init-start` line arrived on the serial line (a few ms of serial latency make it that much \
too short). key → next: QMP send-key, then screendumps until another cat is on screen. Memory: \
MemTotal − MemFree from /proc/meminfo and VmRSS of every process with one (the serial shell \
included), read at the system's serial prompt after the cat is shown (the probe prints its own). \
Minimum RAM: bisection on -m in MiB; a boot counts when a cat appears within the time limit.";

fn short(sha: &str) -> &str {
    sha.get(..16).unwrap_or(sha)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `timeline.svg`: one lane per system on one host time axis (seconds since QEMU start):
/// the kernel up to `init-start`, the guest's marks after it (mapped to host time by the
/// `init-start` line's arrival), and the first cat as the screendumps saw it.
///
/// Hand-written SVG: a few rectangles, lines and labels; a plotting crate would bring a font
/// stack and a renderer for that.
pub fn svg(r: &Report) -> String {
    const LEFT: f64 = 110.0;
    const WIDTH: f64 = 1000.0;
    const LANE: f64 = 90.0;
    const TOP: f64 = 40.0;
    // Per system: the lane's system, init-start (host s), the marks (host s), the cat.
    type Lane<'a> = (
        &'a SystemReport,
        Option<f64>,
        Vec<(String, f64)>,
        Option<f64>,
    );
    let lanes: Vec<Lane> = r
        .systems
        .iter()
        .map(|s| {
            let start = s.init_start_host_s;
            let init_guest = s
                .timeline_ms
                .iter()
                .find(|(p, _)| p == "init-start")
                .map(|(_, st)| st.median);
            // Guest ms → host s: shift so `init-start` sits where its line arrived.
            let marks: Vec<(String, f64)> = match (start, init_guest) {
                (Some(h), Some(g)) => s
                    .timeline_ms
                    .iter()
                    .map(|(p, st)| (p.clone(), h + (st.median - g) / 1000.0))
                    .collect(),
                _ => Vec::new(),
            };
            (s, start, marks, s.median("qemu_to_cat_s"))
        })
        .collect();
    let end = lanes
        .iter()
        .flat_map(|(_, a, m, c)| {
            a.iter()
                .chain(m.iter().map(|x| &x.1))
                .chain(c.iter())
                .copied()
                .collect::<Vec<_>>()
        })
        .fold(0.5_f64, f64::max)
        * 1.05;
    let x = |t: f64| LEFT + t.max(0.0) / end * WIDTH;
    let height = TOP + LANE * lanes.len() as f64 + 40.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">",
        LEFT + WIDTH + 30.0
    );
    let _ = writeln!(
        o,
        "<!-- Hand-written SVG (see bench_report.rs): a few rects, lines and labels do not need a plotting crate. -->"
    );
    let _ = writeln!(o, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        o,
        "<text x=\"{LEFT}\" y=\"20\" font-size=\"13\">Per-phase timeline, seconds since QEMU start (medians of {} run(s))</text>",
        r.runs
    );
    // Axis with a tick every 0.5 s (every 1 s beyond 6 s).
    let step = if end > 6.0 { 1.0 } else { 0.5 };
    let axis_y = TOP + LANE * lanes.len() as f64;
    let _ = writeln!(
        o,
        "<line x1=\"{LEFT}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"black\"/>",
        LEFT + WIDTH
    );
    let mut t = 0.0;
    while t <= end {
        let _ = writeln!(
            o,
            "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{t:.1}</text>",
            x(t),
            axis_y + 4.0,
            axis_y + 16.0
        );
        t += step;
    }
    for (i, (s, start, marks, cat)) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64 + 10.0;
        let _ = writeln!(
            o,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
            y + 14.0,
            esc(&s.label)
        );
        if let Some(h) = start {
            let _ = writeln!(
                o,
                "<rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" fill=\"#c8d3e0\"><title>QEMU + kernel until init-start: {h:.3} s</title></rect>",
                x(*h) - LEFT
            );
            if let Some(c) = cat {
                let _ = writeln!(
                    o,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" fill=\"#f3d9a4\"><title>init-start → cat on screen: {:.3} s</title></rect>",
                    x(*h),
                    (x(*c) - x(*h)).max(0.0),
                    c - h
                );
            }
        }
        for (j, (p, t)) in marks.iter().enumerate() {
            // Labels alternate between three rows below the bar so neighbours stay readable.
            let ly = y + 34.0 + 14.0 * (j % 3) as f64;
            let _ = writeln!(
                o,
                "<line x1=\"{0:.1}\" y1=\"{y:.1}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#555\"/><text x=\"{0:.1}\" y=\"{ly:.1}\" fill=\"#333\">{2} {3:.0} ms</text>",
                x(*t),
                ly - 9.0,
                esc(p),
                (t - start.unwrap_or(0.0)) * 1000.0
            );
        }
        if let Some(c) = cat {
            let _ = writeln!(
                o,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#c00\" stroke-width=\"3\"/><text x=\"{3:.1}\" y=\"{4:.1}\" fill=\"#c00\">cat on screen {c:.2} s</text>",
                x(*c),
                y - 4.0,
                y + 24.0,
                x(*c) + 4.0,
                y + 4.0
            );
        }
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            kernel_sha256: "aa".repeat(32),
            qemu_version: "QEMU emulator version 10.0.2".into(),
            photos: [("a.jpg", "11"), ("b.jpg", "22")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn run(i: usize, qemu: f64, init: f64, key: Option<f64>, mem: u64, rss: u64) -> Run {
        Run {
            run: i,
            qemu_to_cat_s: Some(qemu),
            cat_uncertainty_s: Some(0.02),
            init_to_cat_s: Some(init),
            init_start_host_s: Some(qemu - init),
            key_to_next_s: key,
            mem_used_kb: Some(mem),
            rss_kb: Some(rss),
            rss_kb_by_process: [
                ("init".to_string(), rss / 2),
                ("viewer".to_string(), rss / 2),
            ]
            .into(),
            phases_ms: vec![
                ("init-start".into(), 1000.0 + i as f64),
                ("frame-shown".into(), 1200.0 + i as f64),
            ],
            error: None,
        }
    }

    /// A fixed report: three systems, three runs each.
    pub fn fixed() -> Report {
        let sys = |label: &str, base: f64, key: Option<f64>, mem: u64, min: u32| SystemReport {
            label: label.into(),
            about: format!("the {label} system"),
            initramfs_sha256: "bb".repeat(32),
            initramfs_bytes: 3 * 1048576,
            photos: identity().photos,
            packages: BTreeMap::new(),
            runs: (0..3)
                .map(|i| {
                    run(
                        i,
                        base + 0.1 * i as f64,
                        base / 3.0 + 0.01 * i as f64,
                        key.map(|k| k + 0.001 * i as f64),
                        mem + i as u64,
                        mem / 2,
                    )
                })
                .collect(),
            min_ram_mib: Some(min),
            ..SystemReport::default()
        };
        let mut r = Report {
            schema: SCHEMA,
            identity: identity(),
            host: Host {
                nproc: 2,
                load_start: [0.2, 0.3, 0.4],
                load_end: [0.5, 0.6, 0.7],
                date: "2026-12-07T03:00:00Z".into(),
            },
            runs: 3,
            systems: vec![
                sys("nekos", 2.2, Some(0.116), 40960, 53),
                sys("probe", 1.5, None, 18432, 46),
                sys("reference", 3.5, Some(0.115), 156672, 330),
            ],
            ..Report::default()
        };
        r.finish();
        r
    }

    #[test]
    fn the_markdown_table_of_a_fixed_report_is_the_golden_one() {
        let got = markdown(&fixed());
        let golden = include_str!("../tests/golden/bench.md");
        assert_eq!(
            got, golden,
            "bench.md changed; if on purpose, update packaging/lab/tests/golden/bench.md:\n{got}"
        );
    }

    #[test]
    fn stats_ratios_and_targets_follow_the_runs() {
        let r = fixed();
        let nekos = &r.systems[0];
        let q = nekos.metrics["qemu_to_cat_s"];
        assert_eq!((q.min, q.n), (2.2, 3));
        assert!((q.median - 2.3).abs() < 1e-9);
        assert!((q.max - 2.4).abs() < 1e-9);
        let ratio = r.ratios["nekos"]["qemu_to_cat_s"]["vs_probe"];
        assert!((ratio - 2.3 / 1.6).abs() < 1e-9);
        assert!(!r.ratios["probe"].contains_key("key_to_next_s"));
        let t = |what: &str| r.targets.iter().find(|t| t.what.starts_with(what)).unwrap();
        // 2.3 s vs probe 1.6 + 0.3.
        assert_eq!(t("QEMU start").pass, Some(false));
        // 53 vs 46 + 4.
        assert_eq!(t("minimum RAM").pass, Some(false));
        // RSS 20 MiB vs 16.
        assert_eq!(t("userland RSS").pass, Some(false));
        // /init → cat 0.743 vs 2 × 0.543.
        assert_eq!(t("/init").pass, Some(true));
        assert_eq!(
            r.targets.len(),
            6,
            "targets only for systems that are not baselines"
        );
    }

    #[test]
    fn the_json_round_trips() {
        let r = fixed();
        let text = serde_json::to_string_pretty(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        // Floats may come back one ulp off (serde_json's fast parser): compare what is shown.
        assert_eq!(markdown(&back), markdown(&r));
        assert_eq!(back.identity, r.identity);
        assert_eq!(
            back.systems[2].runs[1].rss_kb_by_process,
            r.systems[2].runs[1].rss_kb_by_process
        );
        let a = against(&r.identity, &text, "old/bench.json").unwrap();
        assert_eq!(a.medians["nekos"]["min_ram_mib"], 53.0);
    }

    #[test]
    fn comparing_runs_of_different_kernels_is_refused() {
        let mut old = identity();
        old.kernel_sha256 = "cc".repeat(32);
        let e = refuse_different(&identity(), &old, "old.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel differs"), "{e}");
        assert!(
            e.contains(&"aa".repeat(32)) && e.contains(&"cc".repeat(32)),
            "both values: {e}"
        );
        assert!(
            !e.contains("QEMU") && !e.contains("photo"),
            "only what differs: {e}"
        );
    }

    #[test]
    fn comparing_runs_of_different_qemu_versions_is_refused() {
        let mut old = identity();
        old.qemu_version = "QEMU emulator version 9.2.0".into();
        let e = refuse_different(&identity(), &old, "old.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("QEMU version differs") && e.contains("9.2.0") && e.contains("10.0.2"),
            "{e}"
        );
    }

    #[test]
    fn comparing_runs_of_different_photo_sets_is_refused() {
        let mut old = identity();
        old.photos.insert("b.jpg".into(), "99".into());
        old.photos.insert("c.jpg".into(), "33".into());
        old.photos.remove("a.jpg");
        let e = refuse_different(&identity(), &old, "old.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("photo set differs"), "{e}");
        assert!(e.contains("a.jpg only in this run"), "{e}");
        assert!(
            e.contains("b.jpg is sha256 22 in this run, 99 in old.json"),
            "{e}"
        );
        assert!(e.contains("c.jpg only in old.json"), "{e}");
    }

    #[test]
    fn an_against_file_that_is_not_a_bench_json_is_refused_by_name() {
        let e = against(&identity(), "{\"kernel\": {}}", "x/bench.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x/bench.json") && e.contains("bench --compare"),
            "{e}"
        );
        let mut r = fixed();
        r.identity.kernel_sha256 = "dd".repeat(32);
        let text = serde_json::to_string(&r).unwrap();
        let e = against(&identity(), &text, "x/bench.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refusing to compare with x/bench.json") && e.contains("kernel"),
            "{e}"
        );
    }

    #[test]
    fn the_timeline_svg_has_a_lane_per_system_and_parses_as_xml() {
        let s = svg(&fixed());
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n"));
        for label in ["nekos", "probe", "reference"] {
            assert!(s.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(
            s.contains("frame-shown 200 ms"),
            "guest marks relative to init-start"
        );
        assert_eq!(s.matches(">cat on screen").count(), 3);
        // Well-formed XML, judged by an XML parser.
        let mut reader = quick_xml::Reader::from_str(&s);
        let mut elements = 0;
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                    elements += 1
                }
                Ok(_) => {}
                Err(e) => panic!("timeline.svg is not well-formed XML: {e}\n{s}"),
            }
        }
        assert!(elements > 20, "{elements} elements");
    }
}
