//! The viewer puts the next photo into its spare wl_buffer before any key is pressed, so
//! the key is one attach + commit; the frame it then shows is still exactly the
//! reference rendering. Runs the real compositor library and the viewer library in this
//! process (`fixture.rs`).

use std::time::{Duration, Instant};

use nekos_viewer::{ScaleMode, render_frame};

use crate::common::*;
use crate::fixture::{DEADLINE, Fixture};

/// The CLOCK_BOOTTIME ms of the viewer's timeline mark `phase`, if it was logged.
fn mark(fx: &Fixture, phase: &str) -> Option<u64> {
    fx.lines.iter().find_map(|l| {
        let (t, p) = l.strip_prefix("nekos: t=")?.split_once(' ')?;
        (p == phase).then(|| t.parse().ok())?
    })
}

#[test]
fn next_photo_is_in_a_buffer_before_the_key() {
    // Name order: chelsea.png first, then ginger-kitten.jpg.
    let env = [
        ("NEKOS_ORDER", "name"),
        ("NEKOS_SCALE", "fit"),
        ("NEKOS_INTERVAL", "1000"),
    ];
    let mut fx = Fixture::start(320, 240, &cats_dir(), &env);
    fx.run_until_frames(1);
    // The viewer says when the next photo sits in its spare buffer; that copy sends
    // nothing to the compositor, so wait for the line with short bounded dispatches.
    let deadline = Instant::now() + DEADLINE;
    while mark(&fx, "next-photo-ready").is_none() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("no next-photo-ready mark; log: {:?}", fx.lines));
        fx.comp
            .dispatch(Some(left.min(Duration::from_millis(20))))
            .unwrap();
        fx.run_until_frames(1); // collects the log lines
    }
    let decoded = mark(&fx, "first-photo-decoded").expect("first-photo-decoded mark");
    let committed = mark(&fx, "first-buffer-committed").expect("first-buffer-committed mark");
    assert!(mark(&fx, "viewer-connected").is_some(), "{:?}", fx.lines);
    assert!(decoded <= committed, "{:?}", fx.lines);
    fx.press(106); // Right
    fx.run_until_frames(2);
    assert_eq!(
        fx.shown(),
        ["chelsea.png", "ginger-kitten.jpg"],
        "{:?}",
        fx.lines
    );
    let (w, h, rgb) = fx.rgb();
    assert_eq!((w, h), (320, 240));
    let bytes = std::fs::read(cats_dir().join("ginger-kitten.jpg")).unwrap();
    let want = render_frame(&bytes, w, h, ScaleMode::Fit).unwrap();
    let diff = rgb
        .chunks(3)
        .zip(want.chunks(4))
        .filter(|(a, b)| a[..] != b[..3])
        .count();
    assert_eq!(diff, 0, "{diff} pixels differ from the reference rendering");
}
