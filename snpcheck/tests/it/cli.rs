use crate::common::*;
use snpcheck::certtable;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snpcheck"))
        .args(args)
        .output()
        .unwrap()
}

fn f(p: &str) -> String {
    fixture(p).to_string_lossy().into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("snpcheck-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

#[test]
fn verify_real_reports() {
    for (rep, vcek) in REAL {
        let o = run(&["verify", "--report", &f(rep), "--vcek", &f(vcek)]);
        assert_eq!(code(&o), 0, "{rep}: {}", String::from_utf8_lossy(&o.stdout));
        assert!(String::from_utf8_lossy(&o.stdout).contains("VERIFIED"));
    }
    let o = run(&[
        "verify",
        "--report",
        &f(REAL[1].0),
        "--vcek",
        &f(REAL[1].1),
        "--forbid-debug",
    ]);
    assert_eq!(code(&o), 1);
    let o = run(&["verify", "--report", &f(REAL[0].0), "--vcek", &f(REAL[2].1)]);
    assert_eq!(code(&o), 1);
    let o = run(&[
        "verify",
        "--report",
        &f(REAL[2].0),
        "--vcek",
        &f(REAL[2].1),
        "--product",
        "genoa",
    ]);
    assert_eq!(code(&o), 1);
    // certs directory (ARK/ASK/VCEK PEM files)
    let o = run(&[
        "verify",
        "--report",
        &f(REAL[0].0),
        "--certs",
        &f("ms-tav-milan"),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn verify_json_is_one_document() {
    let o = run(&[
        "verify",
        "--json",
        "--report",
        &f(REAL[0].0),
        "--vcek",
        &f(REAL[0].1),
        "--host-data",
        "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10",
    ]);
    assert_eq!(code(&o), 0);
    let s = String::from_utf8(o.stdout).unwrap();
    assert_eq!(s.trim().lines().count(), 1);
    assert!(
        s.starts_with("{\"command\":\"verify\",\"exit_code\":0"),
        "{s}"
    );
    assert!(s.contains("\"verified\":true"));
    assert!(s.contains("{\"name\":\"host_data\",\"status\":\"pass\""));
}

#[test]
fn verify_with_cert_table_file() {
    let g = |s| certtable::guid_bytes(s).unwrap();
    let vcek = read("virtee-sev/vcek_milan.der");
    let chain = read("virtee-sev/cert_chain_milan"); // PEM ASK + ARK
    let table = certtable::build(&[
        (g(certtable::GUID_VCEK), &vcek),
        (g(certtable::GUID_ASK), &chain),
    ]);
    let p = tmp("table.bin");
    std::fs::write(&p, &table).unwrap();
    let o = run(&[
        "verify",
        "--report",
        &f(REAL[2].0),
        "--certs",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
    // out-of-bounds table: bad input
    let mut t = table.clone();
    t[20..24].copy_from_slice(&0xffffu32.to_le_bytes());
    std::fs::write(&p, &t).unwrap();
    let o = run(&[
        "verify",
        "--report",
        &f(REAL[2].0),
        "--certs",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn show_reports() {
    for (rep, _) in REAL {
        let o = run(&["show", &f(rep)]);
        assert_eq!(code(&o), 0);
        assert!(String::from_utf8_lossy(&o.stdout).contains("measurement"));
    }
    let o = run(&["show", "--json", &f(REAL[2].0)]);
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("\"measurement\":\"7a1e5c26"), "{s}");
    // version 5 and masked chip id
    let mut b = report_bytes(REAL[2].0);
    b[0..4].copy_from_slice(&5u32.to_le_bytes());
    b[0x1A0..0x1E0].fill(0);
    let p = tmp("v5.bin");
    std::fs::write(&p, &b).unwrap();
    let o = run(&["show", p.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("current_mit_vector") && s.contains("(masked)"),
        "{s}"
    );
}

#[test]
fn bad_input_exit_2() {
    let base = report_bytes(REAL[2].0);
    let trunc = tmp("trunc.bin");
    std::fs::write(&trunc, &base[..1000]).unwrap();
    let over = tmp("over.bin");
    let mut o = base.clone();
    o.push(0);
    std::fs::write(&over, &o).unwrap();
    let unk = tmp("v9.bin");
    let mut u = base.clone();
    u[0] = 9;
    std::fs::write(&unk, &u).unwrap();
    let junk = tmp("junk.der");
    std::fs::write(&junk, b"\x30\x03\x02\x01\x00 not a cert").unwrap();
    let r = f(REAL[2].0);
    let long_nonce = "ab".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["show", trunc.to_str().unwrap()],
            "1184 bytes, got 1000",
        ),
        (vec!["show", over.to_str().unwrap()], "got 1185"),
        (
            vec!["verify", "--report", over.to_str().unwrap()],
            "got 1185",
        ),
        (
            vec!["show", unk.to_str().unwrap()],
            "unknown attestation report version 9",
        ),
        (
            vec!["verify", "--report", &r, "--vcek", junk.to_str().unwrap()],
            "not a PEM or DER",
        ),
        (vec!["report", "--nonce", &long_nonce], "at most 64"),
        (vec!["verify", "--nonce", &long_nonce], "at most 64"),
        (vec!["report", "--nonce", "xyz1"], "not hex"),
        (
            vec!["verify", "--report", &r, "--expected-measurement", "0g"],
            "not hex",
        ),
        (
            vec!["verify", "--report", &r, "--expected-measurement", "00"],
            "expected 48 bytes",
        ),
        (
            vec!["verify", "--report", &r, "--product", "rome"],
            "unknown product",
        ),
        (vec!["report", "--vmpl", "7"], "expected 0..3"),
        (vec!["frobnicate"], "unknown command"),
        (vec!["verify", "--bogus"], "unknown option"),
        (vec!["show"], "needs a FILE"),
    ];
    for (args, msg) in cases {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), 2, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // --json error document
    let o = run(&["show", "--json", trunc.to_str().unwrap()]);
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(
        s.starts_with("{\"command\":\"show\",\"exit_code\":2,\"error\":"),
        "{s}"
    );
}

#[test]
fn io_error_exit_4() {
    let o = run(&["show", "/nonexistent/report.bin"]);
    assert_eq!(code(&o), 4);
}

#[test]
fn status_on_a_non_snp_host() {
    // The test machine is not an SEV-SNP guest.
    if std::path::Path::new("/dev/sev-guest").exists() {
        return;
    }
    let o = run(&["status"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("SEV-SNP is not active"));
    let o = run(&["--json"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"snp_active\":false"));
    let o = run(&["report", "--nonce", "00"]);
    assert_eq!(code(&o), 3);
    let o = run(&["verify"]);
    assert_eq!(code(&o), 3);
}

#[test]
fn help() {
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("EXIT CODES"));
}
