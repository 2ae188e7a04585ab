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

#[test]
fn startup_runs_the_viewer_while_the_output_opens() {
    // The "viewer" is a shell that writes one line into a FIFO and waits. The output step
    // (headless here, the DRM modeset in production) does not return until it has read
    // that line, within a deadline: it succeeds only if the viewer is already running
    // while the output is being set up, which is the point of the start-up order.
    use std::io::BufRead;
    use std::sync::mpsc;

    use nekos_compositor::startup::{self, Options};
    use nekos_compositor::timeline::Timeline;

    let fifo = tmp("viewer-running.fifo");
    let _ = std::fs::remove_file(&fifo);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let opts = Options {
        viewer: "/bin/sh".into(),
        viewer_args: vec![
            "-c".into(),
            "echo running > \"$1\"; exec sleep 600".into(),
            "viewer".into(),
            fifo.display().to_string(),
        ],
        timeout: None,
        signals: false,
        keyboards: false,
        timeline: Timeline::new(false),
    };
    let (tx, rx) = mpsc::channel();
    let reader_fifo = fifo.clone();
    // Opening a FIFO for reading blocks until a writer opens it: on a thread, so the wait
    // below has a deadline.
    std::thread::spawn(move || {
        let f = std::fs::File::open(&reader_fifo).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(f).read_line(&mut line).unwrap();
        let _ = tx.send(line);
    });
    let mut comp = startup::start(&opts, || {
        let line = rx
            .recv_timeout(crate::fixture::DEADLINE)
            .map_err(|_| "the viewer was not running while the output opened".to_string())?;
        assert_eq!(line, "running\n");
        Ok((Backend::Headless(Headless::new(64, 48)), None))
    })
    .unwrap();
    assert_eq!(comp.state.backend.size(), (64, 48));
    assert!(
        comp.state.child.is_some(),
        "the viewer is served and watched"
    );
    comp.state.stop_child();
    assert!(comp.state.child.is_none());
    let _ = std::fs::remove_file(&fifo);
}

#[test]
fn startup_stops_the_viewer_when_the_output_fails() {
    use nekos_compositor::startup::{self, Options};
    use nekos_compositor::timeline::Timeline;

    let pidfile = tmp("viewer-pid");
    let opts = Options {
        viewer: "/bin/sh".into(),
        viewer_args: vec![
            "-c".into(),
            "echo $$ > \"$1\"; exec sleep 600".into(),
            "viewer".into(),
            pidfile.display().to_string(),
        ],
        timeout: None,
        signals: false,
        keyboards: false,
        timeline: Timeline::new(false),
    };
    let err = startup::start(&opts, || Err("no DRM device".to_string())).err();
    assert_eq!(err.as_deref(), Some("no DRM device"));
    // process::stop reaped it: if the shell got as far as writing its pid, that pid is
    // gone now.
    if let Ok(text) = std::fs::read_to_string(&pidfile)
        && let Ok(pid) = text.trim().parse::<i32>()
    {
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        assert!(rustix::process::test_kill_process(pid).is_err());
    }
}
