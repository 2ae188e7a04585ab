//! End to end without a GPU, in one process (see `fixture.rs`): the composited frame must
//! equal what `nekos_viewer::render_frame` computes. The last two tests start the real
//! viewer binary as a child process, because what they check is process behaviour (the
//! child's exit status, SIGTERM cleanup).

use nekos_compositor::{Backend, Compositor, Headless};
use nekos_viewer::{ScaleMode, render_frame};

use crate::common::*;
use crate::fixture::{Fixture, dispatch_until};

fn assert_matches_reference(fx: &Fixture, photo: &str, w: u32, h: u32, mode: ScaleMode) {
    let (sw, sh, rgb) = fx.rgb();
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
    let env = [("NEKOS_ORDER", "name"), ("NEKOS_SCALE", "fit")];
    let mut fx = Fixture::start(320, 240, &cats_dir(), &env);
    fx.run_until_frames(1);
    assert!(
        fx.lines.iter().any(|l| l == "viewer: showing chelsea.png"),
        "{:?}",
        fx.lines
    );
    let ms = fx.comp.state.first_frame_ms.expect("first frame time");
    assert!(ms > 0);
    assert_matches_reference(&fx, "chelsea.png", 320, 240, ScaleMode::Fit);
}

#[test]
fn keys_move_through_the_photos() {
    // Name order: chelsea, ginger, grey, tabby, white. Right, Right, Left → ginger. Each
    // key goes out once the previous photo is on screen.
    let env = [
        ("NEKOS_ORDER", "name"),
        ("NEKOS_SCALE", "fill"),
        ("NEKOS_INTERVAL", "1000"),
    ];
    let mut fx = Fixture::start(200, 300, &cats_dir(), &env);
    fx.run_until_frames(1);
    for (frame, key) in [(2, 106), (3, 106), (4, 105)] {
        fx.press(key);
        fx.run_until_frames(frame);
    }
    assert_eq!(
        fx.shown(),
        vec![
            "chelsea.png",
            "ginger-kitten.jpg",
            "grey-longhair.jpg",
            "ginger-kitten.jpg"
        ],
        "{:?}",
        fx.lines
    );
    assert_matches_reference(&fx, "ginger-kitten.jpg", 200, 300, ScaleMode::Fill);
}

#[test]
fn empty_directory_shows_a_message_not_black() {
    let empty = tmp("empty-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let mut fx = Fixture::start(320, 200, &empty, &[]);
    fx.run_until_frames(1);
    let (_, _, rgb) = fx.rgb();
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
    let mut fx = Fixture::start(160, 120, &dir, &[("NEKOS_ORDER", "name")]);
    fx.run_until_frames(1);
    let has = |prefix: &str| fx.lines.iter().any(|l| l.starts_with(prefix));
    assert!(has("viewer: skipping a-broken.jpg"), "{:?}", fx.lines);
    assert!(has("viewer: skipping b-notes.gif"), "{:?}", fx.lines);
    assert!(has("viewer: showing c-tabby.jpg"), "{:?}", fx.lines);
}

#[test]
fn viewer_exit_status_is_passed_through() {
    // The viewer binary rejects an unknown option with status 2 before connecting.
    let mut comp = Compositor::new(Backend::Headless(Headless::new(64, 64))).unwrap();
    comp.set_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    comp.spawn_viewer(&viewer(), &["--bogus".to_string()], None)
        .unwrap();
    assert_eq!(comp.run().unwrap(), 2);
}

#[test]
fn sigterm_stops_compositor_and_viewer_cleanly() {
    use nix::sys::pthread::{pthread_kill, pthread_self};
    use nix::sys::signal::Signal;
    let mut comp = Compositor::new(Backend::Headless(Headless::new(160, 120))).unwrap();
    // Blocks SIGTERM in this thread only; the signal below is sent to this thread alone,
    // so the rest of the test process never sees it.
    comp.watch_signals().unwrap();
    let cats = cats_dir().to_str().unwrap().to_string();
    comp.spawn_viewer(&viewer(), &[cats], None).unwrap();
    let pid = rustix::process::Pid::from_child(comp.state.child.as_ref().unwrap());
    dispatch_until(&mut comp, "first frame", |c| {
        c.state.first_frame_ms.is_some()
    });
    pthread_kill(pthread_self(), Signal::SIGTERM).unwrap();
    dispatch_until(&mut comp, "stop on SIGTERM", |c| c.state.stopped);
    assert_eq!(comp.state.exit_code, 0);
    assert!(comp.state.child.is_none(), "viewer not reaped");
    // Reaped: the pid is gone.
    assert!(
        rustix::process::test_kill_process(pid).is_err(),
        "viewer still running"
    );
}
