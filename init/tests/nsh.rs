//! Drives the real binary as `nsh` through pipes (no terminal): builtins,
//! external programs and the status lines the QEMU tests depend on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

fn nsh(input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nekos-init"))
        .arg0("nsh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn builtins_and_status_lines() {
    let out = nsh(concat!(
        "echo hello 'a  b' \"c\"\n",
        "nosuch-command\n",
        "/bin/sh -c 'exit 7'\n",
        "/bin/sh -c 'kill -TERM $$'\n",
        "ps\n",
        "exit\n",
        "echo not reached\n",
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("nekos# "), "{stdout}");
    assert!(stdout.contains("hello a  b c\n"), "{stdout}");
    assert!(
        stderr.contains("nsh: nosuch-command: command not found\n"),
        "{stderr}"
    );
    assert!(stdout.contains("nsh: exit status 127\n"), "{stdout}");
    assert!(stdout.contains("nsh: exit status 7\n"), "{stdout}");
    assert!(
        stdout.contains("nsh: killed by signal 15 (SIGTERM)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("PID PPID S COMMAND\n"), "{stdout}");
    assert!(!stdout.contains("not reached"), "{stdout}");
}

#[test]
fn eof_ends_the_prompt() {
    let out = nsh("echo x\n");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "nekos# x\nnekos# \n");
}

#[test]
fn syntax_errors_are_reported() {
    let out = nsh("echo 'open\n");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("nsh: syntax error: unterminated single quote")
    );
}

#[test]
fn refuses_to_be_init_when_not_pid_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_nekos-init"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as PID 1"));
}
