//! Which build a report stands for: the report's MEASUREMENT looked up among the launch
//! digests of a `measurements.json` (`cargo nekos measure`, section `sev_snp`), and its
//! POLICY against the launch policy that build expects.
//!
//! Pure (bytes in, answers out): the guest's `snpcheck verify --expected-from FILE` and the
//! host's `cargo nekos attest` share it. The host may add launches measurements.json does not
//! list (the same artifacts with other vCPU counts, computed there) so a miss can name what
//! was launched instead.

use crate::hex;
use crate::json::Json;
use crate::report::{Report, policy};
use crate::verify::{Check, Status};
use serde_json::Value;

/// The `format` this reader understands.
pub const FORMAT: &str = "nekos-measurements/1";

/// The launch policy assumed when measurements.json records none (files written before
/// `sev_snp.policy` existed): QEMU's `sev-snp-guest` default 0x30000 — SMT allowed, no
/// migration agent, no debugging.
pub const DEFAULT_POLICY: ExpectedPolicy = ExpectedPolicy {
    debug: false,
    migrate_ma: false,
    smt: true,
    recorded: false,
};

/// One launch configuration and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// QEMU `-cpu` name (`EPYC-Milan`, …).
    pub cpu_type: String,
    pub vcpus: u32,
    /// SHA-384 launch digest.
    pub digest: Vec<u8>,
    /// Listed in measurements.json (else computed by the caller from the same artifacts).
    pub listed: bool,
}

impl Launch {
    pub fn label(&self) -> String {
        let n = self.vcpus;
        format!(
            "{} with {n} vCPU{}",
            self.cpu_type,
            if n == 1 { "" } else { "s" }
        )
    }
    pub fn to_json(&self) -> Json {
        Json::obj()
            .with("cpu_type", self.cpu_type.as_str())
            .with("vcpus", self.vcpus)
            .with("digest", hex::encode(&self.digest))
            .with("listed", self.listed)
    }
}

/// The policy bits a build expects; a bit may be clear where the build allows it (stricter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedPolicy {
    pub debug: bool,
    pub migrate_ma: bool,
    pub smt: bool,
    /// Read from measurements.json (false: [`DEFAULT_POLICY`]).
    pub recorded: bool,
}

/// The `sev_snp` section of a measurements.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// How the firmware was made (`build` text, or Debian `package version`).
    pub firmware: String,
    pub ovmf_sha256: String,
    pub kernel_sha256: String,
    pub initramfs_sha256: String,
    pub cmdline: String,
    pub guest_features: String,
    /// Sorted by CPU type, then vCPU count.
    pub launches: Vec<Launch>,
    pub policy: ExpectedPolicy,
}

/// What kind of JSON value a member is, for messages ("is a number, expected a string").
trait Kind {
    fn kind(&self) -> &'static str;
}

impl Kind for Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

fn field<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("{path}.{key} is missing"))
}

fn text(v: &Value, path: &str, key: &str) -> Result<String, String> {
    let f = field(v, path, key)?;
    f.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{path}.{key} is {}, expected a string", f.kind()))
}

fn sha256_text(v: &Value, path: &str, key: &str) -> Result<String, String> {
    let s = text(v, path, key)?;
    if s.len() != 64 || hex::decode(&s).is_err() {
        return Err(format!(
            "{path}.{key} is \"{s}\", expected a sha256 (64 hex digits)"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// Parse a measurements.json (the whole file's bytes). Errors say what is wrong and where,
/// without the file name (the caller adds it).
pub fn parse(bytes: &[u8]) -> Result<Build, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        let what = if bytes.iter().all(u8::is_ascii_whitespace) {
            return "not a measurements.json: empty: no JSON value".to_string();
        } else if e.is_eof() {
            "truncated JSON"
        } else {
            "invalid JSON"
        };
        format!(
            "not a measurements.json: {what} at line {} column {} ({e})",
            e.line(),
            e.column()
        )
    })?;
    if doc.as_object().is_none() {
        return Err(format!(
            "not a measurements.json: the document is {}, expected an object",
            doc.kind()
        ));
    }
    match doc.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "format is \"{other}\", this snpcheck reads \"{FORMAT}\""
            ));
        }
        None => {
            return Err(format!(
                "not a measurements.json: no \"format\": \"{FORMAT}\" member"
            ));
        }
    }
    let snp = doc.get("sev_snp").ok_or(
        "no sev_snp section (written by `cargo nekos measure`; this file has no SEV-SNP launch digests)",
    )?;
    let p = "sev_snp";
    let ovmf = field(snp, p, "ovmf")?;
    let firmware = match (
        ovmf.get("build").and_then(Value::as_str),
        ovmf.get("package").and_then(Value::as_str),
        ovmf.get("version").and_then(Value::as_str),
    ) {
        (Some(b), _, _) => b.to_string(),
        (None, Some(pkg), Some(ver)) => format!("{pkg} {ver}"),
        _ => "unnamed firmware".to_string(),
    };
    let mut launches = Vec::new();
    let digests = field(snp, p, "launch_digests")?;
    let Some(types) = digests.as_object() else {
        return Err(format!(
            "sev_snp.launch_digests is {}, expected an object",
            digests.kind()
        ));
    };
    for (cpu, per) in types {
        let Some(per) = per.as_object() else {
            return Err(format!(
                "sev_snp.launch_digests.{cpu} is {}, expected an object",
                per.kind()
            ));
        };
        for (n, d) in per {
            let at = format!("sev_snp.launch_digests.{cpu}.{n}");
            let vcpus = n
                .parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{at}: \"{n}\" is not a vCPU count"))?;
            let digest = d
                .as_str()
                .and_then(|s| hex::decode(s).ok())
                .filter(|b| b.len() == 48)
                .ok_or_else(|| format!("{at} is not a SHA-384 digest (96 hex digits)"))?;
            launches.push(Launch {
                cpu_type: cpu.clone(),
                vcpus,
                digest,
                listed: true,
            });
        }
    }
    if launches.is_empty() {
        return Err("sev_snp.launch_digests lists no launch digest".into());
    }
    launches.sort_by(|a, b| (&a.cpu_type, a.vcpus).cmp(&(&b.cpu_type, b.vcpus)));
    let policy = match snp.get("policy") {
        None => DEFAULT_POLICY,
        Some(pv) => {
            let bit = |k: &str| -> Result<bool, String> {
                let f = field(pv, "sev_snp.policy", k)?;
                f.as_bool().ok_or_else(|| {
                    format!("sev_snp.policy.{k} is {}, expected true or false", f.kind())
                })
            };
            ExpectedPolicy {
                debug: bit("debug")?,
                migrate_ma: bit("migrate_ma")?,
                smt: bit("smt")?,
                recorded: true,
            }
        }
    };
    Ok(Build {
        firmware,
        ovmf_sha256: sha256_text(ovmf, "sev_snp.ovmf", "sha256")?,
        kernel_sha256: sha256_text(snp, p, "kernel_sha256")?,
        initramfs_sha256: sha256_text(snp, p, "initramfs_sha256")?,
        cmdline: text(snp, p, "cmdline")?,
        guest_features: text(snp, p, "guest_features")?,
        launches,
        policy,
    })
}

/// What is known about the launch besides the report (the guest knows its own vCPU count).
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub vcpus: Option<u32>,
}

/// How many CPUs a sysfs CPU list names (`/sys/devices/system/cpu/online`: "0-3,6").
pub fn cpu_count(list: &str) -> Option<u32> {
    let mut n: u32 = 0;
    for part in list.trim().split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

/// The lookup's answer.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The launch whose digest equals MEASUREMENT (listed, or one the caller added).
    pub found: Option<Launch>,
    /// No listed launch matched: the candidates nearest to what is known, nearest first.
    pub closest: Vec<Launch>,
}

impl Lookup {
    /// A listed launch matched.
    pub fn matched(&self) -> bool {
        self.found.as_ref().is_some_and(|l| l.listed)
    }
}

/// Look MEASUREMENT up among the build's launches, then among `extra` (same artifacts,
/// configurations measurements.json does not list).
pub fn lookup(build: &Build, measurement: &[u8], extra: &[Launch], hints: &Hints) -> Lookup {
    let found = build
        .launches
        .iter()
        .chain(extra)
        .find(|l| l.digest == measurement)
        .cloned();
    let mut closest = Vec::new();
    if !found.as_ref().is_some_and(|l| l.listed) {
        closest = build.launches.clone();
        // Same vCPU count as the guest first; the sort is stable, so CPU type order stays.
        closest.sort_by_key(|l| hints.vcpus != Some(l.vcpus));
    }
    Lookup { found, closest }
}

/// The build's artifacts in one line.
pub fn describe_build(b: &Build) -> String {
    format!(
        "firmware {} (sha256 {}), kernel sha256 {}, initramfs sha256 {}, command line \"{}\", guest features {}",
        b.firmware, b.ovmf_sha256, b.kernel_sha256, b.initramfs_sha256, b.cmdline, b.guest_features
    )
}

/// The human lines for a lookup (each ends in a newline).
pub fn human(build: &Build, measurement: &[u8], l: &Lookup, hints: &Hints) -> String {
    let mut h = String::new();
    match &l.found {
        Some(f) if f.listed => {
            h.push_str(&format!(
                "[pass] build: MEASUREMENT is this build's launch digest for {}\n",
                f.label()
            ));
            h.push_str(&format!("  {}\n", describe_build(build)));
        }
        Some(f) => {
            h.push_str(&format!(
                "[FAIL] build: MEASUREMENT {} is not listed in measurements.json; it is the launch digest of the same artifacts on {} (measurements.json lists {})\n",
                hex::encode(measurement),
                f.label(),
                listed_summary(build)
            ));
            h.push_str(&format!("  {}\n", describe_build(build)));
        }
        None => {
            h.push_str(&format!(
                "[FAIL] build: MEASUREMENT {} matches no launch digest of this build: another firmware, kernel, initramfs, command line, guest features or vCPU setup was launched\n",
                hex::encode(measurement)
            ));
            h.push_str(&format!("  this build: {}\n", describe_build(build)));
            let n = hints
                .vcpus
                .map_or(0, |v| l.closest.iter().filter(|c| c.vcpus == v).count());
            if n > 0 {
                h.push_str(&format!(
                    "  closest candidates, this build's launch digests (this guest runs {} vCPUs: those first):\n",
                    hints.vcpus.unwrap_or(0)
                ));
            } else {
                h.push_str("  candidates, this build's launch digests:\n");
            }
            for c in &l.closest {
                h.push_str(&format!(
                    "    {:<24} {}\n",
                    c.label(),
                    hex::encode(&c.digest)
                ));
            }
        }
    }
    h
}

fn listed_summary(b: &Build) -> String {
    let mut types: Vec<(String, Vec<u32>)> = Vec::new();
    for l in &b.launches {
        match types.iter_mut().find(|(t, _)| *t == l.cpu_type) {
            Some((_, v)) => v.push(l.vcpus),
            None => types.push((l.cpu_type.clone(), vec![l.vcpus])),
        }
    }
    types
        .iter()
        .map(|(t, v)| {
            let n: Vec<String> = v.iter().map(u32::to_string).collect();
            format!("{t}: {} vCPUs", n.join("/"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The lookup as JSON (`expected` member of `snpcheck verify --json`).
pub fn to_json(build: &Build, l: &Lookup) -> Json {
    Json::obj()
        .with("matched", l.matched())
        .with(
            "found",
            l.found.as_ref().map_or(Json::Null, Launch::to_json),
        )
        .with(
            "closest",
            Json::Arr(l.closest.iter().map(Launch::to_json).collect()),
        )
        .with(
            "build",
            Json::obj()
                .with("firmware", build.firmware.as_str())
                .with("ovmf_sha256", build.ovmf_sha256.as_str())
                .with("kernel_sha256", build.kernel_sha256.as_str())
                .with("initramfs_sha256", build.initramfs_sha256.as_str())
                .with("cmdline", build.cmdline.as_str())
                .with("guest_features", build.guest_features.as_str())
                .with("policy_recorded", build.policy.recorded),
        )
}

/// POLICY against the build's policy: a bit the build does not allow must be clear.
pub fn policy_checks(build: &Build, report: &Report) -> Vec<Check> {
    let pol = report.policy();
    let source = if build.policy.recorded {
        "measurements.json"
    } else {
        "measurements.json records none; QEMU's default 0x30000 assumed"
    };
    [
        ("debug", policy::DEBUG, build.policy.debug),
        (
            "migration agent",
            policy::MIGRATE_MA,
            build.policy.migrate_ma,
        ),
        ("SMT", policy::SMT, build.policy.smt),
    ]
    .into_iter()
    .map(|(name, bit, allowed)| {
        let set = pol & bit != 0;
        let want = if allowed { "allowed" } else { "not allowed" };
        let (status, detail) = match (set, allowed) {
            (true, false) => (
                Status::Fail,
                format!("POLICY {pol:#x} allows it, the build's policy does not ({source})"),
            ),
            (false, true) => (
                Status::Pass,
                format!(
                    "not allowed by POLICY, stricter than the build's policy ({want}; {source})"
                ),
            ),
            _ => (
                Status::Pass,
                format!("{want} by POLICY, as the build's policy ({source})"),
            ),
        };
        Check {
            name: format!("build policy: {name}"),
            status,
            detail,
        }
    })
    .collect()
}
