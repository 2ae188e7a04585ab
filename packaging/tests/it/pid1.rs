//! PID 1 behaviour, observed in a real guest: shutdown paths, supervision, reaping, the
//! serial prompt and option handling.

use crate::common::*;
use std::time::{Duration, Instant};

#[test]
fn power_button_powers_off_cleanly() {
    let mut vm = boot_to_prompt("power-button", "kernel,initramfs", "production", &[]);
    vm.qmp().or_fail().system_powerdown().or_fail();
    vm.wait_for("nekos: shutdown: poweroff", STEP).or_fail();
    vm.wait_for("nekos: poweroff now", STEP).or_fail();
    let status = vm.wait_exit(Duration::from_secs(30)).or_fail();
    assert!(status.success(), "QEMU exit status {status}");
    vm.assert_absent("Kernel panic").or_fail();
}

#[test]
fn ctrl_alt_delete_reboots() {
    let mut vm = boot_to_prompt("ctrl-alt-delete", "kernel,initramfs", "production", &[]);
    vm.qmp()
        .or_fail()
        .send_keys(&["ctrl", "alt", "delete"])
        .or_fail();
    vm.wait_for("nekos: shutdown: reboot", STEP).or_fail();
    vm.wait_for("nekos: reboot now", STEP).or_fail();
    // -no-reboot: the guest's reboot makes QEMU exit.
    vm.wait_exit(Duration::from_secs(30)).or_fail();
    vm.assert_absent("Kernel panic").or_fail();
}

#[test]
fn poweroff_typed_at_the_prompt_shuts_down() {
    let mut vm = boot_to_prompt(
        "prompt-poweroff",
        "microvm,kernel,initramfs,serialonly",
        "production",
        &[],
    );
    vm.send("poweroff\n").or_fail();
    vm.wait_for("nekos: poweroff now", STEP).or_fail();
    vm.wait_exit(Duration::from_secs(30)).or_fail();
}

#[test]
fn crashing_service_is_restarted_with_backoff_then_rescued() {
    let mut vm = boot(
        "crashloop",
        "microvm,kernel,initramfs,serialonly",
        "test",
        &["nekos.service=/bin/crashloop"],
    );
    vm.wait_for("nekos: boot ok", BOOT).or_fail();
    // Exponential backoff: each delay doubles.
    let mut from = 0;
    for delay in [
        "restart in 100 ms",
        "restart in 200 ms",
        "restart in 400 ms",
        "restart in 800 ms",
    ] {
        from = vm.wait_from(from, delay, STEP).or_fail();
    }
    vm.wait_from(
        from,
        "nekos: rescue: service crashloop failed 5 times",
        STEP,
    )
    .or_fail();
    // init is still up and the prompt still answers.
    let out = vm.run_at_prompt("uptime", STEP).or_fail();
    assert!(out.contains("up"), "uptime printed: {out}");
    vm.assert_absent("Attempted to kill init").or_fail();
}

#[test]
fn orphaned_grandchildren_are_reaped() {
    let mut vm = boot_to_prompt(
        "orphans",
        "microvm,kernel,initramfs,serialonly",
        "test",
        &[],
    );
    let out = vm.run_at_prompt("orphans", STEP).or_fail();
    assert!(out.contains("orphans: grandchild"), "{out}");
    assert!(out.contains("nsh: exit status 0"), "{out}");
    // The grandchild lives ~300 ms after being orphaned; poll `ps` (a condition, bounded)
    // until it is gone, then no process may be left a zombie.
    let deadline = Instant::now() + STEP;
    loop {
        let ps = vm.run_at_prompt("ps", STEP).or_fail();
        let rows: Vec<&str> = ps
            .lines()
            .filter(|l| l.split_whitespace().count() >= 4)
            .collect();
        let zombies: Vec<&&str> = rows
            .iter()
            .filter(|l| l.split_whitespace().nth(2) == Some("Z"))
            .collect();
        let orphan_alive = rows
            .iter()
            .any(|l| l.ends_with("orphans") || l.ends_with("nekos-orphans"));
        if zombies.is_empty() && !orphan_alive {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still zombies or orphans after {STEP:?}:\n{ps}"
        );
    }
}

#[test]
fn prompt_runs_programs_and_shows_their_status() {
    let mut vm = boot_to_prompt("prompt", "microvm,kernel,initramfs,serialonly", "test", &[]);
    let out = vm.run_at_prompt("crashloop", STEP).or_fail();
    assert!(
        out.contains("crashloop: start") && out.contains("nsh: exit status 3"),
        "{out}"
    );
    let out = vm.run_at_prompt("ls /bin", STEP).or_fail();
    assert!(out.contains("nsh") && out.contains("crashloop"), "{out}");
    let out = vm.run_at_prompt("no-such-program", STEP).or_fail();
    assert!(out.contains("no-such-program: command not found"), "{out}");
    let out = vm.run_at_prompt("cat /etc/os-release", STEP).or_fail();
    assert!(out.contains("ID=nekos"), "{out}");
    let out = vm.run_at_prompt("mounts", STEP).or_fail();
    for fs in [
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "securityfs",
        "configfs",
    ] {
        assert!(out.contains(fs), "{fs} missing from mounts:\n{out}");
    }
    let out = vm.run_at_prompt("dmesg", STEP).or_fail();
    assert!(out.contains("Linux version"), "{out}");
    // init's own log records (log + kernlog) reach the kernel log under its name.
    assert!(out.contains("nekos-init[1]: "), "{out}");
    let out = vm.run_at_prompt("help", STEP).or_fail();
    for b in [
        "ls", "cat", "dmesg", "ps", "mounts", "uptime", "reboot", "poweroff",
    ] {
        assert!(out.contains(b), "help lacks {b}:\n{out}");
    }
}

#[test]
fn bad_nekos_options_warn_and_boot_continues() {
    let vm = boot(
        "bad-options",
        "microvm,kernel,initramfs,serialonly",
        "production",
        &["nekos.bogus=1", "nekos.seed=abc", "nekos.shell=maybe"],
    );
    vm.wait_for("nekos: boot ok", BOOT).or_fail();
    let text = vm.transcript();
    for opt in ["nekos.bogus", "nekos.seed", "nekos.shell"] {
        assert!(
            text.lines()
                .any(|l| l.contains("nekos: warning") && l.contains(opt)),
            "no warning naming {opt}:\n{text}"
        );
    }
}

#[test]
fn ctrl_c_interrupts_the_foreground_program_not_the_prompt() {
    let mut vm = boot_to_prompt("ctrl-c", "microvm,kernel,initramfs,serialonly", "test", &[]);
    let from = vm.mark();
    vm.send("hang\n").or_fail();
    vm.wait_from(from, "hang: running until interrupted", STEP)
        .or_fail();
    let from = vm.mark();
    vm.send("\x03").or_fail();
    let end = vm
        .wait_from(from, "nsh: killed by signal 2 (SIGINT)", STEP)
        .or_fail();
    // The prompt survived and answers.
    vm.wait_from(end, "nekos# ", STEP).or_fail();
    let out = vm.run_at_prompt("uptime", STEP).or_fail();
    assert!(out.contains("up"), "{out}");
}
