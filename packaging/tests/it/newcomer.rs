//! The newcomer's path: a copy of the repository in a fresh directory — no `../shared` next
//! to it, no patch directory in the environment, its own cargo target directory — runs the
//! README's first command, `cargo nekos run kernel,initramfs`, non-interactively, and a cat
//! appears on the screen. It must not start a firmware build: that deployment boots no
//! firmware. (The kernel may come from the shared cache; everything else is built here.)

use crate::common::{STEP, assert_same_picture, render};
use nekos_packaging::qmp::Qmp;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A first run compiles the host tool and the userland from nothing: minutes on 2 cores.
const FIRST_RUN: Duration = Duration::from_secs(40 * 60);

/// Lines a firmware build prints (firmware.rs, progress.rs); none may appear.
const FIRMWARE_BUILD_MARKERS: &[&str] = &[
    "building OVMF",
    "nekos: firmware built",
    "edk2 source tarballs",
    "QEMU_PV_VARS patch",
];

struct Output {
    text: Mutex<(String, usize)>,
    changed: Condvar,
}

impl Output {
    /// Waits until `marker` appears; panics with the output's tail at the deadline or when
    /// both pipes closed (the process ended).
    fn wait_for(&self, marker: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut guard = self.text.lock().unwrap();
        loop {
            if let Some(pos) = guard.0.find(marker) {
                return pos;
            }
            let now = Instant::now();
            if guard.1 == 2 || now >= deadline {
                let tail: Vec<&str> = guard.0.lines().rev().take(60).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!(
                    "{} waiting for {marker:?}; last output:\n{}",
                    if guard.1 == 2 {
                        "cargo nekos run exited"
                    } else {
                        "timed out"
                    },
                    tail.join("\n")
                );
            }
            guard = self.changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap().0.clone()
    }
}

#[test]
fn a_fresh_clone_boots_kernel_initramfs_to_a_cat_without_building_firmware() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let base = std::env::temp_dir().join(format!("nekos-newcomer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let repo = base.join("nekos");
    nekos_packaging::build::copy_workspace(&root, &repo).unwrap();
    assert!(!base.join("shared").exists() && !repo.join("target").exists());
    let qmp_socket = base.join("qmp.sock");

    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&repo)
        .args([
            "nekos",
            "run",
            "kernel,initramfs",
            "--append",
            "nekos.seed=7",
            "--qmp",
        ])
        .arg(&qmp_socket)
        .env("CARGO_TARGET_DIR", repo.join("target"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Nothing of this workspace's test set-up may leak into the newcomer's run.
    for var in [
        "NEKOS_MANIFEST",
        "NEKOS_WORKSPACE",
        "NEKOS_EDK2_PATCHES",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("cannot run cargo nekos run");
    let output = Arc::new(Output {
        text: Mutex::new((String::new(), 0)),
        changed: Condvar::new(),
    });
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let output = output.clone();
        let mut stream = stream;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                let mut guard = output.text.lock().unwrap();
                if n == 0 {
                    guard.1 += 1;
                    output.changed.notify_all();
                    return;
                }
                guard
                    .0
                    .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
                output.changed.notify_all();
            }
        });
    }

    let booted = output.wait_for("nekos: boot ok", FIRST_RUN);
    let shown = output.wait_for("viewer: showing ", STEP);
    let text = output.text();
    for marker in FIRMWARE_BUILD_MARKERS {
        assert!(
            !text.contains(marker),
            "the kernel,initramfs run started a firmware build ({marker:?}):\n{text}"
        );
    }
    assert!(booted > 0 && shown > booted);

    // The photo the viewer announced, on the screen as the host renders it.
    let mut qmp = Qmp::connect(&qmp_socket, Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + STEP;
    loop {
        let text = output.text();
        let name = text
            .lines()
            .filter_map(|l| l.split("viewer: showing ").nth(1))
            .next_back()
            .unwrap()
            .trim()
            .to_string();
        let png = base.join("screen.png");
        qmp.screendump_png(&png).unwrap();
        let img = image::open(&png).unwrap().to_rgba8();
        let shot = crate::common::Shot {
            width: img.width(),
            height: img.height(),
            rgba: img.into_raw(),
        };
        let expected = render(&name, &shot);
        let same = shot.rgba.len() == expected.len()
            && shot
                .rgba
                .chunks_exact(4)
                .zip(expected.chunks_exact(4))
                .all(|(a, b)| (0..3).all(|i| a[i].abs_diff(b[i]) <= 1));
        if same {
            break;
        }
        if Instant::now() >= deadline {
            assert_same_picture(&shot, &expected, &name);
        }
    }
    let _ = qmp.quit();
    let status = child.wait().unwrap();
    // QEMU quit by QMP is a clean exit: the CLI must not report a failure for it.
    assert!(status.success(), "cargo nekos run exited with {status}");
    let _ = std::fs::remove_dir_all(&base);
}
