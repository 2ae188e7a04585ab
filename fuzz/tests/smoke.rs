//! The harness works (a few hundred inputs per target; the long runs are
//! `cargo nekos fuzz`, outside the suite): every target runs from its seeds without a
//! crash or hang, and a planted panic and a planted hang are caught and saved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nekos_fuzz::engine::{self, Config, Target};
use nekos_fuzz::targets;

fn out_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-fuzz-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(out: PathBuf, inputs: u64) -> Config {
    Config {
        duration: Duration::from_secs(600),
        max_inputs: Some(inputs),
        seed: 42,
        out,
    }
}

#[test]
fn every_target_runs_from_its_seeds() {
    let ws = targets::workspace();
    let out = out_dir("all");
    for (name, _) in targets::TARGETS {
        let t = targets::build(name, &ws).unwrap();
        assert!(!t.seeds.is_empty(), "{name}: no seeds");
        let s = engine::fuzz(&t, &config(out.clone(), 200)).unwrap();
        assert_eq!(s.inputs, 200, "{name}");
        assert_eq!((s.crashes, s.hangs), (0, 0), "{name}: {:?}", s.saved);
        // The unmutated seeds are accepted, and mutations reach other outcomes.
        assert!(s.accepted >= 1, "{name}: nothing accepted");
        assert!(s.outcomes >= 2, "{name}: only {} outcome(s)", s.outcomes);
    }
    assert!(!out.exists(), "nothing should have been saved");
}

fn planted(parse: impl Fn(&[u8]) -> String + Send + Sync + 'static, hang_ms: u64) -> Target {
    Target {
        name: "planted",
        about: "test",
        seeds: vec![b"hello world".to_vec(), b"BOOM at the start".to_vec()],
        parse: Arc::new(parse),
        hang_limit: Duration::from_millis(hang_ms),
    }
}

#[test]
fn a_panic_is_a_crash_with_the_input_saved() {
    let out = out_dir("panic");
    let t = planted(
        |b| {
            if b.starts_with(b"BOOM") {
                panic!("planted panic on {} bytes", b.len());
            }
            format!("ok {}", b.len())
        },
        5000,
    );
    let s = engine::fuzz(&t, &config(out.clone(), 200)).unwrap();
    assert_eq!(s.inputs, 200);
    assert!(s.crashes >= 1);
    assert_eq!(s.hangs, 0);
    let (path, msg) = &s.saved[0];
    assert!(msg.contains("planted panic"), "{msg}");
    let saved = std::fs::read(path).unwrap();
    assert!(saved.starts_with(b"BOOM"));
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("crash-{}", nekos_fuzz::sha256_hex(&saved))
    );
    assert!(path.starts_with(out.join("planted")));
    // The saved input replays as the same crash.
    let replayed = engine::replay(&t, &saved).unwrap_err();
    assert!(replayed.starts_with("crash:"), "{replayed}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_slow_input_is_a_hang_and_stops_the_target() {
    let out = out_dir("hang");
    let t = planted(
        |b| {
            if b.starts_with(b"BOOM") {
                std::thread::sleep(Duration::from_secs(2));
            }
            "ok".to_string()
        },
        200,
    );
    let s = engine::fuzz(&t, &config(out.clone(), 200)).unwrap();
    assert_eq!(s.hangs, 1);
    assert_eq!(s.crashes, 0);
    // The seeds run first, unmutated: the second one hangs and ends the target.
    assert_eq!(s.inputs, 2);
    let (path, what) = &s.saved[0];
    assert!(what.contains("200 ms"), "{what}");
    assert_eq!(std::fs::read(path).unwrap(), b"BOOM at the start");
    assert!(
        path.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("hang-")
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let ws = targets::workspace();
    let t = targets::build("dhcp", &ws).unwrap();
    let a = engine::fuzz(&t, &config(out_dir("det"), 500)).unwrap();
    let b = engine::fuzz(&t, &config(out_dir("det"), 500)).unwrap();
    assert_eq!(
        (a.accepted, a.outcomes, a.corpus),
        (b.accepted, b.outcomes, b.corpus)
    );
    let mut other = config(out_dir("det"), 500);
    other.seed = 43;
    let c = engine::fuzz(&t, &other).unwrap();
    assert_eq!(c.inputs, 500);
}

#[test]
fn unknown_parsers_are_named_in_the_error() {
    let err = targets::build("pdf", &targets::workspace()).err().unwrap();
    assert!(
        err.contains("\"pdf\"") && err.contains("snp-report"),
        "{err}"
    );
}
