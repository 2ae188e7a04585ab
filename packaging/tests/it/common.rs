//! Shared test fixture: the build manifest made by `cargo nekos test`, and booting helpers.
#![allow(dead_code)]

use nekos_packaging::artifacts::Manifest;
use nekos_packaging::deployments;
use nekos_packaging::qemu::{BootOptions, Vm};
use nekos_viewer::ScaleMode;
use std::path::PathBuf;
use std::time::Duration;

/// Generous: TCG boots take ~2–3 s, but CI may run two guests next to a compiler.
pub const BOOT: Duration = Duration::from_secs(90);
pub const STEP: Duration = Duration::from_secs(30);

pub fn manifest() -> Manifest {
    let path = std::env::var("NEKOS_MANIFEST").unwrap_or_else(|_| {
        panic!("NEKOS_MANIFEST is not set: run the QEMU tests through `cargo nekos test`, which builds the artifacts first")
    });
    Manifest::load(std::path::Path::new(&path)).unwrap()
}

pub fn log_path(test: &str) -> PathBuf {
    let root = std::env::var("NEKOS_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    nekos_packaging::artifacts::out_dir(&root)
        .join("test-logs")
        .join(format!("{test}.serial.log"))
}

/// Boots a deployment; `test` names the serial log.
pub fn boot(test: &str, deployment: &str, variant: &str, cmdline: &[&str]) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        variant: variant.into(),
        cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
        log: Some(log_path(test)),
        ..BootOptions::default()
    };
    Vm::start(dep, &manifest(), &opts).unwrap()
}

/// Boots and waits for init's `boot ok` and the first prompt.
pub fn boot_to_prompt(test: &str, deployment: &str, variant: &str, cmdline: &[&str]) -> Vm {
    let vm = boot(test, deployment, variant, cmdline);
    vm.wait_for("nekos: boot ok", BOOT).unwrap();
    vm.wait_for("nekos# ", BOOT).unwrap();
    vm
}

/// Unwraps with the error's full text (it carries the serial tail).
pub trait OrFail<T> {
    fn or_fail(self) -> T;
}
impl<T> OrFail<T> for anyhow::Result<T> {
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }
}

// --- cats on screen, judged from QEMU screendumps (cats.rs, secure_boot.rs) ---

pub fn cats_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cats")
}

pub fn photo_names() -> Vec<String> {
    nekos_viewer::config::list_photos(&cats_dir())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

pub struct Shot {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

pub fn screendump(vm: &nekos_packaging::qemu::Vm, name: &str) -> Shot {
    let path = vm.scratch_dir().join(format!("{name}.png"));
    vm.qmp().or_fail().screendump_png(&path).or_fail();
    let img = image::open(&path).unwrap().to_rgba8();
    // Keep a copy next to the serial logs for humans (and the README screenshot).
    let keep = log_path(name).with_extension("png");
    let _ = std::fs::copy(&path, &keep);
    Shot {
        width: img.width(),
        height: img.height(),
        rgba: img.into_raw(),
    }
}

/// Compares a screendump with the host rendering. The tolerance is computed from the
/// rendering itself: the viewer in the guest runs the same scaling code as the host, so
/// every pixel should be equal; we allow what one step of 8-bit rounding can change
/// (|Δ| ≤ 1 per channel) and fail on anything more.
pub fn assert_same_picture(shot: &Shot, expected: &[u8], what: &str) {
    assert_eq!(shot.rgba.len(), expected.len(), "{what}: size differs");
    let mut off = 0usize;
    let mut worst = 0u8;
    for (a, b) in shot.rgba.chunks_exact(4).zip(expected.chunks_exact(4)) {
        let d = (0..3).map(|i| a[i].abs_diff(b[i])).max().unwrap_or(0);
        worst = worst.max(d);
        if d > 1 {
            off += 1;
        }
    }
    assert_eq!(
        off, 0,
        "{what}: {off} pixels differ by more than 1 (worst {worst})"
    );
}

pub fn render(name: &str, shot: &Shot) -> Vec<u8> {
    let bytes = std::fs::read(cats_dir().join(name)).unwrap();
    nekos_viewer::render_frame(&bytes, shot.width, shot.height, ScaleMode::Fit).unwrap()
}

pub fn showing(vm: &nekos_packaging::qemu::Vm, from: usize) -> (String, usize) {
    let end = vm.wait_from(from, "viewer: showing ", BOOT).or_fail();
    let line_end = vm.wait_from(end, "\n", STEP).or_fail();
    let text = vm.transcript();
    (text[end..line_end - 1].trim().to_string(), line_end)
}

/// The photo the viewer announced last after byte `from` of the transcript.
pub fn latest_shown(vm: &nekos_packaging::qemu::Vm, from: usize) -> Option<String> {
    let text = vm.transcript();
    let tail = text.get(from..)?;
    let line = tail.lines().rfind(|l| l.contains("viewer: showing "))?;
    Some(line.split("viewer: showing ").nth(1)?.trim().to_string())
}

/// Screendumps until the screen equals the host rendering of the photo the viewer says it
/// is showing (the slideshow may advance meanwhile); bounded by STEP.
pub fn wait_for_announced_picture(
    vm: &nekos_packaging::qemu::Vm,
    from: usize,
    shot_name: &str,
) -> String {
    let deadline = std::time::Instant::now() + STEP;
    loop {
        if let Some(name) = latest_shown(vm, from) {
            let shot = screendump(vm, shot_name);
            let expected = render(&name, &shot);
            let matches = shot.rgba.len() == expected.len()
                && shot
                    .rgba
                    .chunks_exact(4)
                    .zip(expected.chunks_exact(4))
                    .all(|(a, b)| (0..3).all(|i| a[i].abs_diff(b[i]) <= 1));
            if matches {
                return name;
            }
            if std::time::Instant::now() >= deadline {
                assert_same_picture(&shot, &expected, &name);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no photo announced and shown within {STEP:?}"
        );
    }
}
