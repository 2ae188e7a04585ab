//! The `nekos` binary's contract: one tree with real `--help` everywhere, usage errors exit
//! 2 naming the option, failures exit 1, completions and man pages come from the tree.

use std::process::{Command, Output};

fn nekos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nekos"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_verb_has_real_help() {
    let top = nekos(&["--help"]);
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout).to_string();
    assert!(text.contains("Exit codes"), "{text}");
    for verb in [
        "build",
        "run",
        "make-uki",
        "uki",
        "sign",
        "verify",
        "inspect",
        "snp-measure",
        "measure",
        "varstore",
        "genkey",
        "ospkg",
    ] {
        assert!(text.contains(verb), "{verb} missing from --help");
        let o = nekos(&[verb, "--help"]);
        assert!(o.status.success(), "{verb} --help: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage: cargo nekos"),
            "{verb}"
        );
    }
    let o = nekos(&["genkey", "secure-boot", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--seed"));
}

#[test]
fn a_usage_error_exits_2_naming_the_option() {
    for (args, needle) in [
        (&["make-uki", "--kernal", "x"][..], "--kernal"),
        (
            &[
                "snp-measure",
                "--ovmf",
                "f",
                "--vcpus",
                "one",
                "--vcpu-type",
                "EPYC",
            ][..],
            "--vcpus",
        ),
        (
            &[
                "snp-measure",
                "--ovmf",
                "f",
                "--vcpus",
                "1",
                "--vcpu-type",
                "Nope",
            ][..],
            "Nope",
        ),
        (&["varstore", "--preset", "blank"][..], "--uefi-vars"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let o = nekos(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_failure_exits_1_naming_the_file() {
    let o = nekos(&["inspect", "/nonexistent/nekos.efi"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/nekos.efi"), "{err}");
}

#[test]
fn json_selects_a_format_and_never_names_a_file() {
    // `inspect --json` is a switch: a following word is the file to inspect.
    let o = nekos(&["inspect", "--json", "/nonexistent/x.efi"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.efi"));
}

#[test]
fn completions_and_man_pages_come_from_the_tree() {
    let o = nekos(&["completions", "bash"]);
    assert!(o.status.success());
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("make-uki") && script.contains("secure-boot"));
    let dir = std::env::temp_dir().join(format!("nekos-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = nekos(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    for page in [
        "cargo-nekos.1",
        "cargo-nekos-make-uki.1",
        "cargo-nekos-genkey-secure-boot.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
