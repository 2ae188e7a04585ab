//! Cats on screen, judged from QEMU screendumps: the first frame for a fixed seed equals
//! the host-rendered fitted photo, `right` brings the expected next one, EXIF orientation 6
//! is shown upright, a corrupt file is skipped, and photo changes stay off the prompt line.

use crate::common::*;
use nekos_viewer::ScaleMode;
use nekos_viewer::order::{Browser, OrderMode};

const SEED: u64 = 7;

fn slideshow_follows_the_seed_on(deployment: &str, test: &str) {
    let names = photo_names();
    let mut expected = Browser::new(names.len(), OrderMode::Shuffle, SEED);
    let first = names[expected.next().unwrap()].clone();
    let second = names[expected.next().unwrap()].clone();
    let vm = boot(
        test,
        deployment,
        "production",
        // Debug level: every photo's line on the console, not only the first.
        &[
            &format!("nekos.seed={SEED}"),
            "nekos.interval=3600",
            "nekos.loglevel=debug",
        ],
    );
    vm.wait_for("nekos: display: compositor started", BOOT)
        .or_fail();
    let (shown, after) = showing(&vm, 0);
    assert_eq!(shown, first, "first photo for seed {SEED}");
    vm.wait_for("nekos: first frame after", STEP).or_fail();
    // The page flip that puts the frame on screen follows the marker; a screendump taken
    // before it shows the previous buffer, so retry until the picture matches or time runs out.
    let shot = wait_for_picture(&vm, &format!("{test}-first"), &first);
    assert_same_picture(&shot, &render(&first, &shot), &first);
    vm.qmp().or_fail().send_keys(&["right"]).or_fail();
    let (shown, _) = showing(&vm, after);
    assert_eq!(shown, second, "photo after `right`");
    let shot = wait_for_picture(&vm, &format!("{test}-second"), &second);
    assert_same_picture(&shot, &render(&second, &shot), &second);
}

/// Screendumps until the screen shows `name` (bounded by STEP); returns the last shot.
fn wait_for_picture(vm: &nekos_packaging::qemu::Vm, shot_name: &str, name: &str) -> Shot {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let shot = screendump(vm, shot_name);
        let expected = render(name, &shot);
        let matches = shot.rgba.len() == expected.len()
            && shot
                .rgba
                .chunks_exact(4)
                .zip(expected.chunks_exact(4))
                .all(|(a, b)| (0..3).all(|i| a[i].abs_diff(b[i]) <= 1));
        if matches || std::time::Instant::now() >= deadline {
            return shot;
        }
    }
}

#[test]
fn stdvga_shows_the_seeded_first_cat_and_the_next_on_right() {
    slideshow_follows_the_seed_on("kernel,initramfs", "cats-stdvga");
}

#[test]
fn virtio_gpu_shows_the_seeded_first_cat_and_the_next_on_right() {
    slideshow_follows_the_seed_on("kernel,initramfs,virtio", "cats-virtio");
}

#[test]
fn simpledrm_on_the_uefi_framebuffer_shows_cats() {
    // The UKI carries its own command line (no seed, default interval), so the check is that
    // the screen equals the host rendering of whatever photo the viewer announces.
    let mut vm = boot(
        "cats-simpledrm",
        "fw,kernel,initramfs,uki,simpledrm",
        "production",
        &[],
    );
    vm.wait_for("Initialized simpledrm", BOOT).or_fail();
    vm.wait_for("nekos: display: compositor started", BOOT)
        .or_fail();
    showing(&vm, 0);
    let first = wait_for_announced_picture(&vm, 0, "cats-simpledrm-first");
    // Only the first photo's line reaches the console at the default level, and the UKI's
    // command line cannot ask for more: let the kernel print its log records on the
    // console instead, as someone debugging a signed image would at the prompt.
    vm.wait_for("nekos# ", BOOT).or_fail();
    let out = vm.run_at_prompt("dmesg -n debug", STEP).or_fail();
    assert!(out.contains("nsh: dmesg: console level 8"), "{out}");
    let mark = vm.mark();
    vm.qmp().or_fail().send_keys(&["right"]).or_fail();
    showing(&vm, mark);
    let next = wait_for_announced_picture(&vm, mark, "cats-simpledrm-next");
    assert_ne!(next, first, "a key press shows another photo");
}

fn pixel(shot: &Shot, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * shot.width + x) * 4) as usize;
    [shot.rgba[i], shot.rgba[i + 1], shot.rgba[i + 2]]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    // JPEG at quality 95 keeps flat colour blocks within a few steps.
    (0..3).all(|i| a[i].abs_diff(b[i]) <= 24)
}

#[test]
fn exif_orientation_6_is_upright_and_a_corrupt_file_is_skipped() {
    let vm = boot(
        "cats-orientation",
        "kernel,initramfs",
        "test",
        &[
            "nekos.order=name",
            "nekos.interval=3600",
            "nekos.loglevel=debug",
        ],
    );
    let (shown, after) = showing(&vm, 0);
    assert_eq!(shown, "00-exif-orientation-6.jpg");
    let q = nekos_packaging::initramfs::ORIENTATION_QUADRANTS;
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let shot = screendump(&vm, "cats-orientation");
        let (cx, cy, dx, dy) = (
            shot.width / 2,
            shot.height / 2,
            shot.width / 8,
            shot.height / 8,
        );
        let seen = [
            pixel(&shot, cx - dx, cy - dy),
            pixel(&shot, cx + dx, cy - dy),
            pixel(&shot, cx + dx, cy + dy),
            pixel(&shot, cx - dx, cy + dy),
        ];
        if seen.iter().zip(q.iter()).all(|(s, e)| close(*s, *e)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "quadrants (clockwise from top-left) are {seen:?}, expected {q:?}"
        );
    }
    vm.qmp().or_fail().send_keys(&["right"]).or_fail();
    vm.wait_from(0, "viewer: skipping 01-corrupt.jpg", STEP)
        .or_fail();
    let (next, _) = showing(&vm, after);
    assert_eq!(
        next,
        photo_names()[0],
        "the first real photo follows the skipped one"
    );
}

/// Screendumps until the screen differs from `before` (bounded by STEP).
fn wait_for_change(vm: &nekos_packaging::qemu::Vm, before: &Shot, what: &str) -> Shot {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let shot = screendump(vm, "quiet-prompt");
        if shot.rgba != before.rgba {
            return shot;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the screen did not change within {STEP:?}"
        );
    }
}

/// `text` without the kernel's console records (`[ seconds.micros] message` up to the end
/// of the line), which may land anywhere in a line.
fn without_kernel_records(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let stamp = after.find(']').map(|close| &after[..close]);
        let is_record = stamp.is_some_and(|s| {
            let s = s.trim_start();
            s.contains('.') && s.chars().all(|c| c.is_ascii_digit() || c == '.')
        });
        if is_record {
            // Drop through the record's newline.
            rest = after.find('\n').map_or("", |nl| &after[nl + 1..]);
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Issue #18: the serial console is also the prompt. At the default log level the
/// slideshow changing photos (by key and by its timer) leaves the line someone is typing
/// alone; the photo lines are in the kernel log (`dmesg`).
#[test]
fn changing_photos_leave_the_prompt_line_alone() {
    let mut vm = boot_to_prompt(
        "quiet-prompt",
        "kernel,initramfs",
        "production",
        &["nekos.interval=2"],
    );
    // The one-time markers: the first photo and its frame.
    showing(&vm, 0);
    vm.wait_for("nekos: first frame after", STEP).or_fail();
    let from = vm.mark();
    vm.send("upt").or_fail();
    let a = screendump(&vm, "quiet-prompt");
    vm.qmp().or_fail().send_keys(&["right"]).or_fail();
    let b = wait_for_change(&vm, &a, "after `right`");
    // No key this time: the timer's change.
    wait_for_change(&vm, &b, "after the interval");
    vm.send("ime\n").or_fail();
    let end = vm.wait_from(from, "nekos# ", STEP).or_fail();
    let typed = vm.transcript()[from..end].to_string();
    assert!(
        !typed.contains("viewer: "),
        "a photo line landed on the prompt line:\n{typed}"
    );
    // The kernel's own records (`[  5.05] clocksource: …` under TCG) are not the
    // slideshow's doing; apart from them the echo is whole.
    assert!(
        without_kernel_records(&typed).contains("uptime"),
        "the echo was interrupted:\n{typed}"
    );
    assert!(typed.contains("up "), "uptime did not answer:\n{typed}");
    // Still there for debugging: the first photo and both changes.
    let log = vm.run_at_prompt("dmesg", STEP).or_fail();
    let shown = log.matches("viewer: showing ").count();
    assert!(shown >= 3, "{shown} photo lines in the kernel log:\n{log}");
}

#[test]
fn kernel_records_are_cut_out_of_a_typed_line() {
    assert_eq!(
        without_kernel_records("upt[    5.055730] clocksource: x\r\nime\r\n[a] b"),
        "uptime\r\n[a] b"
    );
}

#[test]
fn host_reference_render_is_deterministic() {
    // The reference the screendumps are compared with must itself be stable.
    let names = photo_names();
    assert!(
        names.len() >= 5,
        "cats/ must hold at least five photos: {names:?}"
    );
    let bytes = std::fs::read(cats_dir().join(&names[0])).unwrap();
    let a = nekos_viewer::render_frame(&bytes, 640, 480, ScaleMode::Fit).unwrap();
    let b = nekos_viewer::render_frame(&bytes, 640, 480, ScaleMode::Fit).unwrap();
    assert_eq!(a, b);
}

#[test]
fn the_console_draws_nothing_behind_the_cat_and_returns_when_the_compositor_dies() {
    let mut vm = boot(
        "console-behind-cat",
        "kernel,initramfs",
        "test",
        &["nekos.interval=3600", "nekos.loglevel=debug"],
    );
    vm.wait_for("nekos: first frame after", BOOT).or_fail();
    vm.wait_for("nekos# ", BOOT).or_fail();
    // init's debug copies of its markers go to the kernel log below the console loglevel:
    // not printed a second time on the serial line, nor drawn by the framebuffer console.
    let copy = "nekos-init[1]: nekos: service compositor started";
    let before_dmesg = vm.transcript();
    assert!(
        !before_dmesg.contains(copy),
        "a debug copy reached the console:\n{before_dmesg}"
    );
    let log = vm.run_at_prompt("dmesg", STEP).or_fail();
    assert!(
        log.contains(copy),
        "the debug copy is not in the kernel log:\n{log}"
    );
    // While the display runs, the virtual terminal is in graphics mode.
    let out = vm.run_at_prompt("vtmode", STEP).or_fail();
    assert!(out.contains("vtmode: graphics"), "{out}");
    // A compositor that dies (SIGKILL, nothing of its own runs) leaves the console in text
    // mode: init restores it when it reaps the process ...
    let mark = vm.mark();
    let out = vm.run_at_prompt("vtmode --kill compositor", STEP).or_fail();
    assert!(out.contains("vtmode: text"), "{out}");
    // ... and switches back to graphics when it restarts it.
    vm.wait_from(mark, "nekos: service compositor started", STEP)
        .or_fail();
    let out = vm.run_at_prompt("vtmode", STEP).or_fail();
    assert!(out.contains("vtmode: graphics"), "{out}");
}
