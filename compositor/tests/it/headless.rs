//! End to end without a GPU: the compositor (headless) starts the real viewer, and the
//! screenshot must equal what `nekos_viewer::render_frame` computes.

use std::process::Command;

use crate::common::*;
use nekos_viewer::{ScaleMode, render_frame};

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(compositor())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_matches_reference(shot: &std::path::Path, photo: &str, w: u32, h: u32, mode: ScaleMode) {
    let (sw, sh, rgb) = read_png_rgb(shot);
    assert_eq!((sw, sh), (w, h));
    let bytes = std::fs::read(cats_dir().join(photo)).unwrap();
    let want = render_frame(&bytes, w, h, mode).unwrap();
    let mut diff = 0usize;
    for (i, px) in rgb.chunks(3).enumerate() {
        if px != &want[i * 4..i * 4 + 3] {
            diff += 1;
        }
    }
    assert_eq!(
        diff, 0,
        "{diff} pixels differ from the reference rendering of {photo}"
    );
}

#[test]
fn first_frame_is_the_first_photo_by_name() {
    let shot = tmp("name.png");
    let viewer = viewer();
    let cats = cats_dir();
    let (code, out, err) = run(
        &[
            "--headless",
            "320x240",
            "--screenshot",
            shot.to_str().unwrap(),
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "60000",
            "--",
            cats.to_str().unwrap(),
        ],
        &[("NEKOS_ORDER", "name"), ("NEKOS_SCALE", "fit")],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("viewer: showing chelsea.png"), "{out}");
    let marker = out
        .lines()
        .find(|l| l.starts_with("nekos: first frame after "))
        .expect(&out);
    let ms: u64 = marker
        .trim_start_matches("nekos: first frame after ")
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(ms > 0);
    assert_matches_reference(&shot, "chelsea.png", 320, 240, ScaleMode::Fit);
}

#[test]
fn keys_move_through_the_photos() {
    let shot = tmp("keys.png");
    let viewer = viewer();
    let cats = cats_dir();
    // Name order: chelsea, ginger, grey, tabby, white. Right, Right, Left → ginger.
    // The gap lets even a debug build decode each photo before the next key.
    let (code, out, err) = run(
        &[
            "--headless",
            "200x300",
            "--screenshot",
            shot.to_str().unwrap(),
            "--frames",
            "4",
            "--keys",
            "106,106,105",
            "--key-gap-ms",
            "2500",
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "60000",
            "--",
            cats.to_str().unwrap(),
        ],
        &[
            ("NEKOS_ORDER", "name"),
            ("NEKOS_SCALE", "fill"),
            ("NEKOS_INTERVAL", "1000"),
        ],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let shown: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("viewer: showing "))
        .collect();
    assert_eq!(
        shown,
        vec![
            "chelsea.png",
            "ginger-kitten.jpg",
            "grey-longhair.jpg",
            "ginger-kitten.jpg"
        ],
        "{out}"
    );
    assert_matches_reference(&shot, "ginger-kitten.jpg", 200, 300, ScaleMode::Fill);
}

#[test]
fn viewer_exit_status_is_passed_through() {
    // The viewer rejects an unknown option with status 2 before connecting.
    let viewer = viewer();
    let (code, _, _) = run(
        &[
            "--headless",
            "64x64",
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "20000",
            "--",
            "--bogus",
        ],
        &[],
    );
    assert_eq!(code, 2);
}

#[test]
fn empty_directory_shows_a_message_not_black() {
    let shot = tmp("empty.png");
    let empty = tmp("empty-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let viewer = viewer();
    let (code, out, err) = run(
        &[
            "--headless",
            "320x200",
            "--screenshot",
            shot.to_str().unwrap(),
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "20000",
            "--",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let (_, _, rgb) = read_png_rgb(&shot);
    let black = rgb.chunks(3).filter(|p| p == &[0, 0, 0]).count();
    assert_eq!(black, 0, "message screen has black pixels");
    let bright = rgb.chunks(3).filter(|p| p[0] > 200).count();
    assert!(bright > 100, "no text drawn");
}

#[test]
fn corrupt_files_are_skipped_with_a_log_line() {
    let dir = tmp("mixed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a-broken.jpg"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    std::fs::write(dir.join("b-notes.gif"), b"GIF89a nope").unwrap();
    std::fs::copy(cats_dir().join("tabby-kitten.jpg"), dir.join("c-tabby.jpg")).unwrap();
    let shot = tmp("mixed.png");
    let viewer = viewer();
    let (code, out, err) = run(
        &[
            "--headless",
            "160x120",
            "--screenshot",
            shot.to_str().unwrap(),
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "30000",
            "--",
            dir.to_str().unwrap(),
        ],
        &[("NEKOS_ORDER", "name")],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("viewer: skipping a-broken.jpg"), "{out}");
    assert!(out.contains("viewer: skipping b-notes.gif"), "{out}");
    assert!(out.contains("viewer: showing c-tabby.jpg"), "{out}");
}

#[test]
fn sigterm_stops_compositor_and_viewer_cleanly() {
    use std::io::BufRead;
    let viewer = viewer();
    let cats = cats_dir();
    let mut child = Command::new(compositor())
        .args([
            "--headless",
            "160x120",
            "--viewer",
            viewer.to_str().unwrap(),
            "--timeout-ms",
            "60000",
            "--",
            cats.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut seen = false;
    for line in lines.by_ref() {
        if line.unwrap().starts_with("nekos: first frame after ") {
            seen = true;
            break;
        }
    }
    assert!(seen, "no first-frame marker");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "compositor ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    // The viewer shared our stdout pipe: EOF means it is gone too.
    assert!(lines.all(|l| l.is_ok()));
}
