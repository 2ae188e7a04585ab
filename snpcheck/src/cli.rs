//! Command line: parsing, the four commands, output (human or `--json`) and exit codes.

use crate::certs::{CertSet, Role};
use crate::certtable;
use crate::detect::{self, Evidence, Verdict};
use crate::expected;
use crate::fetch::{self, FetchError, Fetched};
use crate::hex;
use crate::json::Json;
use crate::report::{self, Product, Report};
use crate::verify::{self, Expect, Status};
use std::path::Path;

/// Exit codes (documented in snpcheck/README.md).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BAD_INPUT: i32 = 2;
pub const EXIT_NOT_SNP: i32 = 3;
pub const EXIT_IO: i32 = 4;
/// Verified, but the MEASUREMENT is none of the launch digests `--expected-from` lists.
pub const EXIT_NO_BUILD: i32 = 5;

pub const USAGE: &str = "\
snpcheck - in-guest AMD SEV-SNP checker

USAGE:
  snpcheck [status]                      detect SEV-SNP, strongest evidence first
  snpcheck report [--nonce HEX | --random] [--vmpl N] [--out FILE] [--certs-out FILE]
                                         fetch a report bound to a nonce (+ host cert table)
  snpcheck verify [--report FILE] [--certs DIR|TABLE|PEM] [--vcek FILE] [--vlek FILE]
                  [--product milan|genoa|turin] [--forbid-debug] [--forbid-migration-agent]
                  [--forbid-smt] [--expected-measurement HEX] [--host-data HEX]
                  [--report-data HEX] [--nonce HEX | --random] [--vmpl N]
                  [--expected-from measurements.json] [--trust-ark FILE]
                                         verify a report file, or a fresh live report;
                                         --expected-from: which build's launch it is, and
                                         the policy bits that build expects
                                         --trust-ark: TESTS/LABS ONLY, anchor the chain at
                                         this root instead of AMD's built-in ARKs
  snpcheck show FILE [--product P]       print every field of a report (raw or hex text)
  snpcheck help | version

  --json   one JSON document on stdout, for every command

EXIT CODES:
  0 ok / verified / SEV-SNP active    1 verification or a check failed
  2 bad input (usage, malformed file) 3 SEV-SNP is not active     4 I/O error
  5 verified, but the MEASUREMENT is no launch digest of --expected-from
";

/// A failure with its exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub msg: String,
}

fn bad(msg: impl Into<String>) -> Fail {
    Fail {
        code: EXIT_BAD_INPUT,
        msg: msg.into(),
    }
}
fn io_fail(msg: impl Into<String>) -> Fail {
    Fail {
        code: EXIT_IO,
        msg: msg.into(),
    }
}

/// Parsed arguments.
#[derive(Debug, Default)]
struct Args {
    cmd: String,
    json: bool,
    opts: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

/// Options per command: (name, takes a value).
fn known_opts(cmd: &str) -> &'static [(&'static str, bool)] {
    match cmd {
        "status" => &[],
        "report" => &[
            ("nonce", true),
            ("random", false),
            ("vmpl", true),
            ("out", true),
            ("certs-out", true),
        ],
        "verify" => &[
            ("report", true),
            ("certs", true),
            ("vcek", true),
            ("vlek", true),
            ("product", true),
            ("forbid-debug", false),
            ("forbid-migration-agent", false),
            ("forbid-smt", false),
            ("expected-measurement", true),
            ("host-data", true),
            ("report-data", true),
            ("nonce", true),
            ("random", false),
            ("vmpl", true),
            ("expected-from", true),
            ("trust-ark", true),
        ],
        "show" => &[("product", true)],
        _ => &[],
    }
}

fn parse_args(raw: Vec<String>) -> Result<Args, Fail> {
    let mut a = Args::default();
    let mut it = raw.into_iter().peekable();
    let mut rest = Vec::new();
    while let Some(s) = it.next() {
        if s == "--json" {
            a.json = true;
        } else if a.cmd.is_empty() && !s.starts_with('-') {
            a.cmd = s;
        } else {
            rest.push(s);
            // keep option values attached
            if rest
                .last()
                .is_some_and(|x| x.starts_with("--") && !x.contains('='))
                && let Some(n) = it.peek()
                && !n.starts_with("--")
                && let Some(v) = it.next()
            {
                rest.push(v);
            }
        }
    }
    if a.cmd.is_empty() {
        if rest.iter().any(|r| r == "--help" || r == "-h") {
            a.cmd = "help".into();
            return Ok(a);
        }
        if rest.iter().any(|r| r == "--version" || r == "-V") {
            a.cmd = "version".into();
            return Ok(a);
        }
        a.cmd = "status".into();
    }
    let cmd = a.cmd.clone();
    if !["status", "report", "verify", "show", "help", "version"].contains(&cmd.as_str()) {
        return Err(bad(format!(
            "unknown command \"{cmd}\" (try: snpcheck help)"
        )));
    }
    let known = known_opts(&cmd);
    let mut i = 0;
    while i < rest.len() {
        let s = rest.get(i).cloned().unwrap_or_default();
        i += 1;
        if s == "--help" || s == "-h" {
            a.cmd = "help".into();
            return Ok(a);
        }
        if let Some(body) = s.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            let Some((_, takes)) = known.iter().find(|(n, _)| *n == name) else {
                return Err(bad(format!(
                    "unknown option --{name} for \"{cmd}\" (try: snpcheck help)"
                )));
            };
            let value = if *takes {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = rest.get(i).cloned();
                        i += 1;
                        match v {
                            Some(v) if !v.starts_with("--") => Some(v),
                            _ => return Err(bad(format!("--{name} needs a value"))),
                        }
                    }
                }
            } else {
                if inline.is_some() {
                    return Err(bad(format!("--{name} takes no value")));
                }
                None
            };
            if a.opts.iter().any(|(n, _)| *n == name) {
                return Err(bad(format!("--{name} given twice")));
            }
            a.opts.push((name, value));
        } else {
            a.positional.push(s);
        }
    }
    let max_pos = if cmd == "show" { 1 } else { 0 };
    if a.positional.len() > max_pos {
        return Err(bad(format!(
            "unexpected argument \"{}\"",
            a.positional.last().cloned().unwrap_or_default()
        )));
    }
    Ok(a)
}

impl Args {
    fn flag(&self, n: &str) -> bool {
        self.opts.iter().any(|(k, _)| k == n)
    }
    fn val(&self, n: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.as_deref())
    }
    fn hex(&self, n: &str) -> Result<Option<Vec<u8>>, Fail> {
        self.val(n)
            .map(|v| hex::decode(v).map_err(|e| bad(format!("--{n}: not hex: {e}"))))
            .transpose()
    }
    fn hex_len(&self, n: &str, len: usize) -> Result<Option<Vec<u8>>, Fail> {
        match self.hex(n)? {
            Some(v) if v.len() != len => Err(bad(format!(
                "--{n}: expected {len} bytes ({} hex digits), got {}",
                len * 2,
                v.len()
            ))),
            v => Ok(v),
        }
    }
    fn product(&self) -> Result<Option<Product>, Fail> {
        self.val("product")
            .map(|p| {
                Product::parse(p).ok_or_else(|| {
                    bad(format!(
                        "--product: unknown product \"{p}\" (milan, genoa, turin)"
                    ))
                })
            })
            .transpose()
    }
    fn vmpl(&self) -> Result<Option<u32>, Fail> {
        self.val("vmpl")
            .map(|v| match v.trim().parse::<u32>() {
                Ok(n) if n <= 3 => Ok(n),
                _ => Err(bad(format!("--vmpl: expected 0..3, got \"{v}\""))),
            })
            .transpose()
    }
    /// REPORT_DATA from --nonce / --random (None: all zero, not fresh).
    fn nonce(&self) -> Result<Option<Vec<u8>>, Fail> {
        if self.flag("random") && self.flag("nonce") {
            return Err(bad("--nonce and --random exclude each other"));
        }
        if self.flag("random") {
            let mut b = vec![0u8; 64];
            // Only here may snpcheck wait for the kernel's entropy pool.
            getrandom::getrandom(&mut b).map_err(|e| io_fail(format!("getrandom: {e}")))?;
            return Ok(Some(b));
        }
        match self.hex("nonce")? {
            Some(n) if n.len() > 64 => Err(bad(format!(
                "--nonce: {} bytes, REPORT_DATA holds at most 64",
                n.len()
            ))),
            n => Ok(n),
        }
    }
}

fn pad64(v: &[u8]) -> [u8; 64] {
    let mut o = [0u8; 64];
    for (d, s) in o.iter_mut().zip(v) {
        *d = *s;
    }
    o
}

fn read_file(path: &str) -> Result<Vec<u8>, Fail> {
    std::fs::read(path).map_err(|e| io_fail(format!("{path}: {e}")))
}

/// Entry point: returns the exit code.
pub fn run(raw: Vec<String>) -> i32 {
    run_with(raw, &[])
}

/// [`run`], with launches `verify --expected-from` may also name when no listed one matches
/// (the host computes them from the same artifacts: `cargo nekos attest`).
pub fn run_with(raw: Vec<String>, extra: &[expected::Launch]) -> i32 {
    let json = raw.iter().any(|a| a == "--json");
    let cmd_guess = raw
        .iter()
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_else(|| "status".into());
    let result = parse_args(raw).and_then(|a| match a.cmd.as_str() {
        "help" => {
            let j = Json::obj()
                .with("command", "help")
                .with("exit_code", EXIT_OK)
                .with("usage", USAGE);
            emit(&a, j, USAGE);
            Ok(EXIT_OK)
        }
        "version" => {
            let v = env!("CARGO_PKG_VERSION");
            let j = Json::obj()
                .with("command", "version")
                .with("exit_code", EXIT_OK)
                .with("version", v);
            emit(&a, j, &format!("snpcheck {v}\n"));
            Ok(EXIT_OK)
        }
        "status" => cmd_status(&a),
        "report" => cmd_report(&a),
        "verify" => cmd_verify(&a, extra),
        "show" => cmd_show(&a),
        _ => Err(bad("unknown command")),
    });
    match result {
        Ok(code) => code,
        Err(f) => {
            if json {
                let j = Json::obj()
                    .with("command", cmd_guess)
                    .with("exit_code", f.code)
                    .with("error", f.msg.as_str());
                println!("{}", j.render());
            }
            eprintln!("snpcheck: error: {}", f.msg);
            if f.code == EXIT_BAD_INPUT {
                eprintln!("(exit {}: bad input; see snpcheck help)", f.code);
            }
            f.code
        }
    }
}

fn emit(a: &Args, j: Json, human: &str) {
    if a.json {
        println!("{}", j.render());
    } else {
        print!("{human}");
    }
}

fn mark(s: Status) -> &'static str {
    match s {
        Status::Pass => "[pass]",
        Status::Fail => "[FAIL]",
        Status::Skip => "[skip]",
    }
}

// ---------------------------------------------------------------- show

fn cmd_show(a: &Args) -> Result<i32, Fail> {
    let path = a
        .positional
        .first()
        .ok_or_else(|| bad("show needs a FILE"))?;
    let bytes = read_file(path)?;
    let r = report::from_file_bytes(&bytes).map_err(|e| bad(format!("{path}: {e}")))?;
    let product = a.product()?;
    let mut h = format!("SEV-SNP attestation report {path}\n");
    for (name, _, text) in r.fields(product) {
        h.push_str(&format!("  {name:<20} {text}\n"));
    }
    let j = Json::obj()
        .with("command", "show")
        .with("exit_code", EXIT_OK)
        .with("file", path.as_str())
        .with("report", r.to_json(product));
    emit(a, j, &h);
    Ok(EXIT_OK)
}

// ---------------------------------------------------------------- report

/// Fetch and parse a live report; Unavailable -> exit 3, Io -> exit 4.
fn live_report(
    nonce: &[u8; 64],
    vmpl: Option<u32>,
) -> Result<(Report, Fetched, Vec<fetch::Attempt>), Fail> {
    let (r, log) = fetch::fetch(nonce, vmpl);
    let f = match r {
        Ok(f) => f,
        Err(FetchError::Unavailable(m)) => {
            return Err(Fail {
                code: EXIT_NOT_SNP,
                msg: format!("SEV-SNP is not active: no attestation interface ({m})"),
            });
        }
        Err(FetchError::Io(m)) => return Err(io_fail(format!("could not get a report: {m}"))),
    };
    let rep = Report::parse(&f.report)
        .map_err(|e| io_fail(format!("the firmware returned a malformed report: {e}")))?;
    Ok((rep, f, log))
}

fn table_summary(certs: &Option<Vec<u8>>) -> (Json, String) {
    match certs {
        None => (Json::Null, "host certificate table: none offered\n".into()),
        Some(b) => match certtable::parse(b) {
            Ok(entries) => {
                let mut h = String::from("host certificate table:\n");
                let arr = entries
                    .iter()
                    .map(|e| {
                        h.push_str(&format!(
                            "  {} {} ({} bytes)\n",
                            e.kind.name(),
                            e.guid_string(),
                            e.data.len()
                        ));
                        Json::obj()
                            .with("kind", e.kind.name())
                            .with("guid", e.guid_string())
                            .with("length", e.data.len())
                    })
                    .collect();
                (Json::Arr(arr), h)
            }
            Err(e) => (
                Json::obj().with("error", e.to_string()),
                format!("host certificate table: unusable: {e}\n"),
            ),
        },
    }
}

fn cmd_report(a: &Args) -> Result<i32, Fail> {
    let nonce = a.nonce()?;
    let vmpl = match a.vmpl()? {
        Some(v) => Some(v),
        None => fetch::own_vmpl(),
    };
    let data = pad64(nonce.as_deref().unwrap_or(&[]));
    let (rep, f, _log) = live_report(&data, vmpl)?;
    let exp = Expect {
        report_data: Some(data.to_vec()),
        vmpl,
        ..Expect::default()
    };
    let mut checks = Vec::new();
    let rd_ok = rep.report_data() == data;
    checks.push(verify::Check {
        name: "report_data".into(),
        status: if rd_ok { Status::Pass } else { Status::Fail },
        detail: if rd_ok {
            "carries the nonce".into()
        } else {
            format!(
                "REPORT_DATA {} is not the nonce",
                hex::encode(rep.report_data())
            )
        },
    });
    match exp.vmpl {
        Some(v) => checks.push(verify::Check {
            name: "vmpl".into(),
            status: if rep.vmpl() == v {
                Status::Pass
            } else {
                Status::Fail
            },
            detail: format!("requested {v}, report has {}", rep.vmpl()),
        }),
        None => checks.push(verify::Check {
            name: "vmpl".into(),
            status: Status::Skip,
            detail: format!(
                "no VMPL requested and the guest's own is unknown; report has {}",
                rep.vmpl()
            ),
        }),
    }
    let mut written = Vec::new();
    if let Some(out) = a.val("out") {
        std::fs::write(out, rep.bytes()).map_err(|e| io_fail(format!("{out}: {e}")))?;
        written.push(out.to_string());
    }
    if let Some(c) = &f.certs {
        let target = a
            .val("certs-out")
            .map(str::to_string)
            .or_else(|| a.val("out").map(|o| format!("{o}.certs")));
        if let Some(t) = target {
            std::fs::write(&t, c).map_err(|e| io_fail(format!("{t}: {e}")))?;
            written.push(t);
        }
    }
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    let code = if ok { EXIT_OK } else { EXIT_FAILED };
    let (tj, th) = table_summary(&f.certs);
    let mut h = format!(
        "report via {} (version {}, VMPL {})\n",
        f.via,
        rep.version(),
        rep.vmpl()
    );
    if nonce.is_none() {
        h.push_str("warning: no --nonce/--random: REPORT_DATA is all zero, the report proves no freshness\n");
    }
    for (k, v) in &f.details {
        h.push_str(&format!("  {k}: {v}\n"));
    }
    h.push_str(&format!(
        "  report_data  {}\n  measurement  {}\n  chip_id      {}\n",
        hex::encode(rep.report_data()),
        hex::encode(rep.measurement()),
        hex::encode(rep.chip_id())
    ));
    h.push_str(&th);
    for c in &checks {
        h.push_str(&format!("{} {}: {}\n", mark(c.status), c.name, c.detail));
    }
    for w in &written {
        h.push_str(&format!("wrote {w}\n"));
    }
    let j = Json::obj()
        .with("command", "report")
        .with("exit_code", code)
        .with("via", f.via)
        .with("nonce", nonce.as_deref().map(hex::encode))
        .with(
            "details",
            Json::Obj(
                f.details
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
                    .collect(),
            ),
        )
        .with(
            "checks",
            Json::Arr(checks.iter().map(verify::Check::to_json).collect()),
        )
        .with("cert_table", tj)
        .with(
            "written",
            Json::Arr(written.iter().map(|w| Json::from(w.as_str())).collect()),
        )
        .with("report_hex", hex::encode(rep.bytes()))
        .with("report", rep.to_json(None));
    emit(a, j, &h);
    Ok(code)
}

// ---------------------------------------------------------------- verify

fn role_hint(file_name: &str) -> Option<Role> {
    let stem = file_name
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match stem.as_str() {
        "ark" => Some(Role::Ark),
        "ask" => Some(Role::Ask),
        "asvk" => Some(Role::Asvk),
        "vcek" => Some(Role::Vcek),
        "vlek" => Some(Role::Vlek),
        _ => None,
    }
}

fn load_certs_arg(set: &mut CertSet, path: &str) -> Result<(), Fail> {
    let p = Path::new(path);
    if p.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .map_err(|e| io_fail(format!("{path}: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut any = false;
        for f in names {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let lower = name.to_ascii_lowercase();
            let hint = role_hint(&name);
            let certish = [".pem", ".der", ".crt", ".cer"]
                .iter()
                .any(|e| lower.ends_with(e))
                || lower.starts_with("cert_chain");
            if hint.is_none() && !certish {
                continue;
            }
            let display = f.display().to_string();
            let bytes = read_file(&display)?;
            set.add_file(&bytes, hint, &display).map_err(bad)?;
            any = true;
        }
        if !any {
            return Err(bad(format!(
                "{path}: no certificates (ark/ask/asvk/vcek/vlek .pem/.der) found"
            )));
        }
        Ok(())
    } else {
        let bytes = read_file(path)?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        set.add_file(&bytes, role_hint(&name), path).map_err(bad)
    }
}

/// `--expected-from FILE`: the build it names (bad file: exit 2, unreadable: exit 4).
fn expected_build(a: &Args) -> Result<Option<(String, expected::Build)>, Fail> {
    let Some(path) = a.val("expected-from") else {
        return Ok(None);
    };
    let bytes = read_file(path)?;
    let b = expected::parse(&bytes).map_err(|e| bad(format!("--expected-from {path}: {e}")))?;
    Ok(Some((path.to_string(), b)))
}

/// `--trust-ark FILE`: one self-contained root certificate.
fn trust_ark(a: &Args) -> Result<Option<(String, x509_cert::Certificate)>, Fail> {
    let Some(path) = a.val("trust-ark") else {
        return Ok(None);
    };
    let bytes = read_file(path)?;
    let mut certs =
        crate::certs::load(&bytes).map_err(|e| bad(format!("--trust-ark {path}: {e}")))?;
    if certs.len() != 1 {
        return Err(bad(format!(
            "--trust-ark {path}: expected one certificate, found {}",
            certs.len()
        )));
    }
    Ok(certs.pop().map(|c| (path.to_string(), c)))
}

fn cmd_verify(a: &Args, extra: &[expected::Launch]) -> Result<i32, Fail> {
    let build = expected_build(a)?;
    let anchor = trust_ark(a)?;
    let mut hints = expected::Hints::default();
    let product = a.product()?;
    let mut exp = Expect {
        product,
        forbid_debug: a.flag("forbid-debug"),
        forbid_migration_agent: a.flag("forbid-migration-agent"),
        forbid_smt: a.flag("forbid-smt"),
        measurement: a.hex_len("expected-measurement", 48)?,
        host_data: a.hex_len("host-data", 32)?,
        report_data: None,
        vmpl: None,
    };
    exp.report_data = match a.hex("report-data")? {
        Some(v) if v.len() > 64 => {
            return Err(bad(format!(
                "--report-data: {} bytes, REPORT_DATA holds at most 64",
                v.len()
            )));
        }
        v => v,
    };
    let mut set = CertSet::default();
    if let Some(c) = a.val("certs") {
        load_certs_arg(&mut set, c)?;
    }
    for (opt, role) in [("vcek", Role::Vcek), ("vlek", Role::Vlek)] {
        if let Some(f) = a.val(opt) {
            let bytes = read_file(f)?;
            let certs = crate::certs::load(&bytes).map_err(|e| bad(format!("--{opt} {f}: {e}")))?;
            for c in certs {
                set.add(c, Some(role), f).map_err(bad)?;
            }
        }
    }
    let source: String;
    let mut live = Json::Null;
    let rep = match a.val("report") {
        Some(path) => {
            if a.flag("nonce") || a.flag("random") || a.flag("vmpl") {
                return Err(bad(
                    "--nonce/--random/--vmpl apply to a live report, not to --report FILE",
                ));
            }
            let bytes = read_file(path)?;
            source = path.to_string();
            report::from_file_bytes(&bytes).map_err(|e| bad(format!("{path}: {e}")))?
        }
        None => {
            let nonce = a.nonce()?;
            let vmpl = match a.vmpl()? {
                Some(v) => Some(v),
                None => fetch::own_vmpl(),
            };
            let data = pad64(nonce.as_deref().unwrap_or(&[]));
            let (rep, f, _) = live_report(&data, vmpl)?;
            if exp.report_data.is_none() {
                exp.report_data = Some(data.to_vec());
            }
            exp.vmpl = vmpl;
            if let Some(c) = &f.certs {
                match certtable::parse(c) {
                    Ok(entries) => {
                        if let Err(e) = set.add_table(&entries, "host certificate table") {
                            set.sources
                                .push(format!("host certificate table partly unusable: {e}"));
                        }
                    }
                    Err(e) => set
                        .sources
                        .push(format!("host certificate table unusable: {e}")),
                }
            }
            source = format!("live report via {}", f.via);
            // A live report is this guest's own launch: its vCPU count ranks the candidates.
            // (sysfs rather than std's available_parallelism: the same answer in the guest,
            // without 12 KB of cgroup-quota code in the binary.)
            hints.vcpus = std::fs::read_to_string("/sys/devices/system/cpu/online")
                .ok()
                .and_then(|t| expected::cpu_count(&t));
            live = Json::obj()
                .with("via", f.via)
                .with("nonce", nonce.as_deref().map(hex::encode))
                .with("report_hex", hex::encode(rep.bytes()));
            rep
        }
    };
    let mut out = match &anchor {
        Some((path, root)) => {
            crate::anchor::verify_with_root(&rep, &set, &exp, root, &format!("--trust-ark {path}"))
        }
        None => verify::verify(&rep, &set, &exp),
    };
    let verified = out.verified();
    // The build's policy bits count as checks; its launch digest decides exit 5.
    let lookup = build.as_ref().map(|(_, b)| {
        out.checks.extend(expected::policy_checks(b, &rep));
        expected::lookup(b, rep.measurement(), extra, &hints)
    });
    let policy_ok = out.checks.iter().all(|c| c.status != Status::Fail);
    let code = if !verified || !policy_ok {
        EXIT_FAILED
    } else if lookup.as_ref().is_some_and(|l| !l.matched()) {
        EXIT_NO_BUILD
    } else {
        EXIT_OK
    };
    let mut h = format!(
        "report: {source} (version {}, VMPL {}, measurement {})\n",
        rep.version(),
        rep.vmpl(),
        hex::encode(rep.measurement())
    );
    for s in &set.sources {
        h.push_str(&format!("  certificate: {s}\n"));
    }
    for c in &out.checks {
        h.push_str(&format!("{} {}: {}\n", mark(c.status), c.name, c.detail));
    }
    if let (Some((path, b)), Some(l)) = (&build, &lookup) {
        h.push_str(&format!("expected from {path}:\n"));
        h.push_str(&expected::human(b, rep.measurement(), l, &hints));
    }
    if let Some((path, _)) = &anchor {
        h.push_str(&format!(
            "warning: chain anchored at --trust-ark {path}, not at AMD's roots\n"
        ));
    }
    if verified && !policy_ok {
        h.push_str("NOT VERIFIED: the report's POLICY allows what the build's policy does not\n");
    } else if code == EXIT_NO_BUILD {
        h.push_str("VERIFIED, but it is no launch of this build (exit 5)\n");
    } else if verified {
        h.push_str("VERIFIED: chain, signature and all requested checks pass\n");
    } else {
        let failed = out.failed();
        if failed.is_empty() {
            h.push_str(
                "NOT VERIFIED: chain or signature could not be checked (see skipped checks)\n",
            );
        } else {
            h.push_str(&format!("NOT VERIFIED: {} check(s) failed\n", failed.len()));
        }
    }
    let mut j = out.to_json();
    if let Json::Obj(v) = &mut j {
        v.insert(0, ("command".into(), Json::from("verify")));
        v.insert(1, ("exit_code".into(), Json::from(code)));
        v.insert(2, ("source".into(), Json::from(source.as_str())));
    }
    j.set(
        "certificates",
        Json::Arr(set.sources.iter().map(|s| Json::from(s.as_str())).collect()),
    );
    j.set("live", live);
    if let (Some((path, b)), Some(l)) = (&build, &lookup) {
        j.set(
            "expected",
            expected::to_json(b, l).with("file", path.as_str()),
        );
    }
    j.set(
        "trust_ark",
        anchor
            .as_ref()
            .map(|(p, _)| Json::from(p.as_str()))
            .unwrap_or(Json::Null),
    );
    j.set("report", rep.to_json(out.product));
    emit(a, j, &h);
    Ok(code)
}

// ---------------------------------------------------------------- status

fn cmd_status(a: &Args) -> Result<i32, Fail> {
    let mut ev: Vec<Evidence> = Vec::new();
    // A fixed, recognisable REPORT_DATA: status proves presence, not freshness.
    let data = pad64(b"snpcheck status");
    let vmpl = fetch::own_vmpl();
    let (r, log) = fetch::fetch(&data, vmpl);
    for at in &log {
        let src = format!("attestation report via {}", at.interface);
        ev.push(match &at.result {
            Ok(m) => Evidence::new(&src, "report", Verdict::Yes, m.clone()),
            Err(FetchError::Unavailable(m)) => {
                Evidence::new(&src, "report", Verdict::No, m.clone())
            }
            Err(FetchError::Io(m)) => Evidence::new(&src, "report", Verdict::Unknown, m.clone()),
        });
    }
    let mut report_json = Json::Null;
    let mut verification = Json::Null;
    let mut extra = String::new();
    if let Ok(f) = &r {
        match Report::parse(&f.report) {
            Ok(rep) => {
                extra.push_str(&format!(
                    "report: version {}, VMPL {}, measurement {}\n",
                    rep.version(),
                    rep.vmpl(),
                    hex::encode(rep.measurement())
                ));
                let mut set = CertSet::default();
                let table = f.certs.as_ref().map(|c| certtable::parse(c));
                match table {
                    Some(Ok(entries)) if set.add_table(&entries, "host certificate table").is_ok() => {
                        let out = verify::verify(&rep, &set, &Expect { report_data: Some(data.to_vec()), ..Expect::default() });
                        extra.push_str(&format!(
                            "report verification with the host's certificates: {}\n",
                            if out.verified() { "VERIFIED".to_string() } else {
                                format!("not verified ({})", out.failed().iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))
                            }
                        ));
                        verification = out.to_json();
                    }
                    Some(_) => extra.push_str("host certificate table unusable; run `snpcheck verify --vcek FILE`\n"),
                    None => extra.push_str("no host certificates offered; verify offline with `snpcheck report --out` + `snpcheck verify`\n"),
                }
                report_json = rep.to_json(None);
            }
            Err(e) => ev.push(Evidence::new(
                "attestation report parse",
                "report",
                Verdict::Unknown,
                e.to_string(),
            )),
        }
    }
    ev.push(detect::msr());
    ev.push(detect::sysfs_vmpl());
    ev.push(detect::dev_sev_guest());
    ev.push(detect::dmesg());
    ev.push(detect::cpuinfo());
    let strongest = ev
        .iter()
        .find(|e| e.verdict == Verdict::Yes && e.strength != "hint");
    let active = strongest.is_some();
    let code = if active { EXIT_OK } else { EXIT_NOT_SNP };
    let verdict = match strongest {
        Some(e) if e.strength == "report" => {
            "SEV-SNP is active (the firmware produced an attestation report)".to_string()
        }
        Some(e) => format!(
            "SEV-SNP appears active (evidence: {}; no attestation report obtained)",
            e.source
        ),
        None => "SEV-SNP is not active".to_string(),
    };
    let mut h = String::from("SEV-SNP evidence, strongest first:\n");
    for e in &ev {
        let m = match e.verdict {
            Verdict::Yes => "[yes]",
            Verdict::No => "[no ]",
            Verdict::Unknown => "[ ? ]",
        };
        h.push_str(&format!(
            "  {m} {} ({}): {}\n",
            e.source, e.strength, e.detail
        ));
    }
    h.push_str(&extra);
    h.push_str(&verdict);
    h.push('\n');
    let j = Json::obj()
        .with("command", "status")
        .with("exit_code", code)
        .with("snp_active", active)
        .with("verdict", verdict.as_str())
        .with(
            "evidence",
            Json::Arr(ev.iter().map(Evidence::to_json).collect()),
        )
        .with("report", report_json)
        .with("verification", verification);
    emit(a, j, &h);
    Ok(code)
}
