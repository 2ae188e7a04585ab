//! `bench --compare` end to end, one interleaved run without the minimum-RAM bisection
//! (about a minute under TCG): all three systems boot on the same kernel, each shows a cat
//! the screendumps recognise, memory and RSS come back from each system's own channel, and
//! the three files are written. No timing goal here: the numbers are the benchmark's.

use crate::common::*;
use nekos_lab::bench_compare::{CompareOptions, run, write};
use std::path::PathBuf;

#[test]
fn compare_bench_boots_the_three_systems_and_sees_each_cat_from_outside() {
    let manifest = manifest();
    let root = std::env::var("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    let out = nekos_packaging::artifacts::out_dir(&root)
        .join("test-logs")
        .join("bench-compare");
    let opts = CompareOptions {
        runs: 1,
        min_ram: false,
        extras: Vec::new(),
        against: None,
        out: out.clone(),
    };
    let report = run(&root, &manifest, &opts).or_fail();
    write(&report, &out).or_fail();
    let labels: Vec<&str> = report.systems.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["nekos", "probe", "reference"]);
    for s in &report.systems {
        let r = &s.runs[0];
        assert_eq!(r.error, None, "{}: the run failed", s.label);
        let cat = r
            .qemu_to_cat_s
            .unwrap_or_else(|| panic!("{}: no cat", s.label));
        let init = r
            .init_start_host_s
            .unwrap_or_else(|| panic!("{}: no init-start line", s.label));
        assert!(
            init < cat,
            "{}: /init started at {init} s, after the cat at {cat} s",
            s.label
        );
        assert!(
            r.mem_used_kb.is_some_and(|kb| kb > 0),
            "{}: memory in use",
            s.label
        );
        assert!(r.rss_kb.is_some_and(|kb| kb > 0), "{}: RSS", s.label);
        assert_eq!(
            r.key_to_next_s.is_some(),
            s.label != "probe",
            "{}: key → next is measured exactly for the systems with a next key",
            s.label
        );
        assert!(s.metrics.contains_key("initramfs_mib"));
    }
    let probe = &report.systems[1];
    let phases: Vec<&str> = probe.runs[0]
        .phases_ms
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        phases.contains(&"init-start") && phases.contains(&"frame-shown"),
        "probe marks: {phases:?}"
    );
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("| QEMU start → first cat (s) |"), "{md}");
    let svg = std::fs::read_to_string(out.join("timeline.svg")).unwrap();
    assert!(svg.contains(">reference</text>"));
    // A bench.json compares with itself (same kernel, QEMU and photos).
    let json = std::fs::read_to_string(out.join("bench.json")).unwrap();
    nekos_lab::bench_report::against(&report.identity, &json, "bench.json").or_fail();
}
