//! `snpcheck verify --expected-from measurements.json`: reports made for each case by the
//! synthetic signer (a fresh P-384 ARK → ASK → VCEK chain per test, keys in memory only),
//! verified under `--trust-ark` with that chain's ARK — never AMD's roots.

use snpcheck::expected::{self, Hints, Launch};
use snpcheck::report::{Report, policy};
use snpcheck::synthetic::{Chain, Platform, ReportSpec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory, removed on drop; only certificates, reports and JSON go in it.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("snpcheck-expected-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const KERNEL: &str = "d0f62b5dc425468121807e89fa5764c9c2810f420a74f5f5b4d9564371202e2b";

/// A digest per (CPU type, vCPU count), distinct and recognisable.
fn digest(cpu: usize, vcpus: u32) -> [u8; 48] {
    let mut d = [0u8; 48];
    for (i, b) in d.iter_mut().enumerate() {
        *b = (i as u8) ^ ((cpu as u8) << 4) ^ (vcpus as u8).wrapping_mul(31);
    }
    d
}

const CPUS: [&str; 3] = ["EPYC-Genoa", "EPYC-Milan", "EPYC-v4"];

/// A measurements.json shaped as `cargo nekos measure` writes it (1, 2, 4 vCPUs).
fn measurements(policy: Option<&str>) -> String {
    let mut types = Vec::new();
    for (c, name) in CPUS.iter().enumerate() {
        let per: Vec<String> = [1u32, 2, 4]
            .iter()
            .map(|&n| format!("\"{n}\": \"{}\"", hex::encode(digest(c, n))))
            .collect();
        types.push(format!("\"{name}\": {{{}}}", per.join(", ")));
    }
    let policy = policy
        .map(|p| format!(",\n    \"policy\": {p}"))
        .unwrap_or_default();
    format!(
        r#"{{
  "artifacts": {{}},
  "format": "nekos-measurements/1",
  "sev_snp": {{
    "cmdline": "panic=-1 console=tty0 console=ttyS0",
    "guest_features": "0x1",
    "initramfs_sha256": "{}",
    "kernel_sha256": "{KERNEL}",
    "launch_digests": {{{}}},
    "ovmf": {{"build": "nekos firmware/ AmdSevX64", "direct_boot": true, "input_hash": "x", "sha256": "{}"}}{policy}
  }}
}}
"#,
        "44".repeat(32),
        types.join(", "),
        "7d".repeat(32)
    )
}

struct Case {
    tmp: Tmp,
    certs: String,
    ark: String,
    chain: Chain,
}

/// A fresh chain, its certificates written to `tmp/certs/` (ark.pem, ask.pem, vcek.pem).
fn case(tag: &str) -> Case {
    let tmp = Tmp::new(tag);
    let chain = Chain::new(Platform::default()).unwrap();
    std::fs::create_dir_all(tmp.0.join("certs")).unwrap();
    for (n, c) in [
        ("ark", &chain.ark),
        ("ask", &chain.ask),
        ("vcek", &chain.vcek),
    ] {
        tmp.write(&format!("certs/{n}.pem"), Chain::pem(c).unwrap().as_bytes());
    }
    let ark = tmp.0.join("certs/ark.pem").to_string_lossy().into_owned();
    let certs = tmp.0.join("certs").to_string_lossy().into_owned();
    Case {
        tmp,
        certs,
        ark,
        chain,
    }
}

fn run(args: &[&str]) -> (i32, String) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_snpcheck"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap(), text)
}

impl Case {
    fn report(&self, measurement: [u8; 48], pol: u64) -> String {
        let r = self
            .chain
            .report(&ReportSpec {
                measurement,
                policy: pol,
                ..ReportSpec::default()
            })
            .unwrap();
        self.tmp.write("report.bin", &r)
    }
    fn verify(&self, report: &str, meas: &str, extra: &[&str]) -> (i32, String) {
        let mut args = vec![
            "verify",
            "--report",
            report,
            "--certs",
            &self.certs,
            "--trust-ark",
            &self.ark,
            "--expected-from",
            meas,
        ];
        args.extend(extra);
        run(&args)
    }
}

#[test]
fn match_names_the_launch() {
    let c = case("match");
    let rep = c.report(digest(1, 2), 0x30000);
    let meas = c.tmp.write("m.json", measurements(None).as_bytes());
    let (code, out) = c.verify(&rep, &meas, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "[pass] build: MEASUREMENT is this build's launch digest for EPYC-Milan with 2 vCPUs"
        ),
        "{out}"
    );
    assert!(out.contains(&format!("kernel sha256 {KERNEL}")), "{out}");
    assert!(
        out.contains("command line \"panic=-1 console=tty0 console=ttyS0\""),
        "{out}"
    );
    assert!(out.contains("[pass] ASK chain"), "{out}");
    assert!(out.contains("[pass] endorsement key chain"), "{out}");
    assert!(out.contains("[pass] report signature"), "{out}");
    assert!(out.contains("[pass] build policy: debug"), "{out}");
    assert!(out.contains("not at AMD's roots"), "{out}");

    // --json: one document naming the launch.
    let (code, out) = c.verify(&rep, &meas, &["--json"]);
    assert_eq!(code, 0, "{out}");
    let line = out.lines().next().unwrap();
    assert!(line.contains("\"matched\":true"), "{line}");
    assert!(
        line.contains("\"cpu_type\":\"EPYC-Milan\",\"vcpus\":2"),
        "{line}"
    );
    assert!(line.contains("\"exit_code\":0"), "{line}");
}

#[test]
fn the_synthetic_chain_is_not_trusted_without_trust_ark() {
    let c = case("untrusted");
    let rep = c.report(digest(1, 2), 0x30000);
    let meas = c.tmp.write("m.json", measurements(None).as_bytes());
    let (code, out) = run(&[
        "verify",
        "--report",
        &rep,
        "--certs",
        &c.certs,
        "--expected-from",
        &meas,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("NOT VERIFIED"), "{out}");
    // Another chain's root does not vouch for this one.
    let other = case("other-root");
    let (code, out) = run(&[
        "verify",
        "--report",
        &rep,
        "--certs",
        &c.certs,
        "--trust-ark",
        &other.ark,
        "--expected-from",
        &meas,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("[FAIL] supplied ARK") || out.contains("[FAIL] ASK chain"),
        "{out}"
    );
}

#[test]
fn wrong_vcpu_count_matches_nothing_listed() {
    let c = case("vcpus");
    // 3 vCPUs: the same build launched with a count measurements.json does not list.
    let three = digest(1, 3);
    let rep = c.report(three, 0x30000);
    let meas = c.tmp.write("m.json", measurements(None).as_bytes());
    let (code, out) = c.verify(&rep, &meas, &[]);
    assert_eq!(code, snpcheck::cli::EXIT_NO_BUILD, "{out}");
    assert!(
        out.contains("matches no launch digest of this build"),
        "{out}"
    );
    assert!(out.contains("EPYC-Milan with 2 vCPUs"), "{out}");
    assert!(
        out.contains("VERIFIED, but it is no launch of this build (exit 5)"),
        "{out}"
    );

    // Where the caller computed the unlisted configurations (the host does), the miss is named.
    let build = expected::parse(measurements(None).as_bytes()).unwrap();
    let extra = [Launch {
        cpu_type: "EPYC-Milan".into(),
        vcpus: 3,
        digest: three.to_vec(),
        listed: false,
    }];
    let l = expected::lookup(&build, &three, &extra, &Hints::default());
    assert!(!l.matched());
    let h = expected::human(&build, &three, &l, &Hints::default());
    assert!(
        h.contains("it is the launch digest of the same artifacts on EPYC-Milan with 3 vCPUs"),
        "{h}"
    );
    assert!(h.contains("EPYC-Milan: 1/2/4 vCPUs"), "{h}");

    // A guest with 2 vCPUs sees the 2-vCPU digests first.
    let l = expected::lookup(&build, &[9u8; 48], &[], &Hints { vcpus: Some(2) });
    assert!(
        l.closest.iter().take(3).all(|c| c.vcpus == 2),
        "{:?}",
        l.closest
    );
    assert_eq!(l.closest.len(), 9);
    let h = expected::human(&build, &[9u8; 48], &l, &Hints { vcpus: Some(2) });
    assert_eq!(expected::cpu_count("0-1\n"), Some(2));
    assert_eq!(expected::cpu_count("0-3,6,8-9"), Some(7));
    assert_eq!(expected::cpu_count("3-1"), None);
    assert_eq!(expected::cpu_count(""), None);
    assert!(h.contains("(this guest runs 2 vCPUs: those first)"), "{h}");
}

#[test]
fn other_kernel_matches_nothing() {
    let c = case("kernel");
    let rep = c.report([0xAB; 48], 0x30000);
    let meas = c.tmp.write("m.json", measurements(None).as_bytes());
    let (code, out) = c.verify(&rep, &meas, &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!(
            "MEASUREMENT {} matches no launch digest",
            "ab".repeat(48)
        )),
        "{out}"
    );
    // Every listed candidate is shown with its digest.
    for (cpu, n) in [(0usize, 1u32), (1, 4), (2, 2)] {
        assert!(out.contains(&hex::encode(digest(cpu, n))), "{out}");
    }
}

#[test]
fn debug_on_fails_the_build_policy() {
    let c = case("debug");
    let rep = c.report(digest(0, 4), 0x30000 | policy::DEBUG);
    let meas = c.tmp.write("m.json", measurements(None).as_bytes());
    let (code, out) = c.verify(&rep, &meas, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[FAIL] build policy: debug"), "{out}");
    // The launch is still named: the digest is right, the policy is not.
    assert!(out.contains("EPYC-Genoa with 4 vCPUs"), "{out}");
    assert!(
        out.contains("NOT VERIFIED: the report's POLICY allows"),
        "{out}"
    );

    // A recorded policy is what counts: SMT not allowed by the build, allowed by the report.
    let strict = c.tmp.write(
        "strict.json",
        measurements(Some(
            r#"{"debug": false, "migrate_ma": false, "smt": false}"#,
        ))
        .as_bytes(),
    );
    let rep = c.report(digest(0, 4), 0x30000);
    let (code, out) = c.verify(&rep, &strict, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[FAIL] build policy: SMT"), "{out}");
    // Stricter than the build is fine.
    let rep = c.report(digest(0, 4), 0x20000);
    let (code, out) = c.verify(
        &rep,
        &c.tmp.write("m2.json", measurements(None).as_bytes()),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stricter than the build's policy"), "{out}");
}

#[test]
fn bad_measurements_files() {
    let c = case("bad");
    let rep = c.report(digest(1, 2), 0x30000);
    let good = measurements(None);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.json",
            good.as_bytes()[..good.len() / 2].to_vec(),
            "truncated JSON at line",
        ),
        (
            "text.json",
            b"kernel=abc\n".to_vec(),
            "not a measurements.json: invalid JSON at line 1",
        ),
        ("empty.json", Vec::new(), "empty: no JSON value"),
        ("array.json", b"[]".to_vec(), "the document is an array"),
        (
            "format.json",
            good.replace("nekos-measurements/1", "nekos-measurements/9")
                .into_bytes(),
            "format is \"nekos-measurements/9\"",
        ),
        (
            "nosnp.json",
            br#"{"format": "nekos-measurements/1", "artifacts": {}}"#.to_vec(),
            "no sev_snp section",
        ),
        (
            "digest.json",
            good.replacen(&hex::encode(digest(0, 1)), "abcd", 1)
                .into_bytes(),
            "sev_snp.launch_digests.EPYC-Genoa.1 is not a SHA-384 digest",
        ),
    ];
    for (name, bytes, want) in cases {
        let meas = c.tmp.write(name, &bytes);
        let (code, out) = c.verify(&rep, &meas, &[]);
        assert_eq!(code, 2, "{name}: {out}");
        assert!(
            out.contains(&format!("--expected-from {meas}: ")),
            "{name}: {out}"
        );
        assert!(out.contains(want), "{name}: {out}");
    }
    let missing = c.tmp.0.join("missing.json").to_string_lossy().into_owned();
    let (code, out) = c.verify(&rep, &missing, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("missing.json"), "{out}");
}

#[test]
fn synthetic_reports_parse_and_sign_as_documented() {
    let c = case("format");
    let bytes = c
        .chain
        .report(&ReportSpec {
            measurement: digest(2, 1),
            ..ReportSpec::default()
        })
        .unwrap();
    let r = Report::parse(&bytes).unwrap();
    assert_eq!(r.measurement(), digest(2, 1));
    assert_eq!(r.signing_key(), 0);
    let sec1 = snpcheck::certs::public_key(&c.chain.vcek);
    snpcheck::verify::verify_signature(&r, sec1).unwrap();
    let mut flipped = bytes.clone();
    flipped[0x90] ^= 1;
    let r = Report::parse(&flipped).unwrap();
    assert!(snpcheck::verify::verify_signature(&r, sec1).is_err());
    assert!(Path::new(&c.ark).exists());
}

proptest::proptest! {
    #[test]
    fn measurements_reader_never_panics(buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = expected::parse(&buf);
    }

    #[test]
    fn every_truncation_is_refused(cut in 0usize..1000) {
        let good = measurements(None);
        let cut = cut.min(good.trim_end().len() - 1);
        proptest::prop_assert!(expected::parse(&good.as_bytes()[..cut]).is_err());
    }
}
