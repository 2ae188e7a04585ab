//! The loop driver (niri's `State { backend, niri }`): the protocol state (`NekState`)
//! and the backend side by side, the backend called from here, never from the state.
//! The production binary and the headless test fixture both build on `Compositor`.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use smithay::backend::drm::{DrmDeviceNotifier, DrmEvent};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::signals::{Signal, Signals};
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, LoopHandle, LoopSignal, Mode, PostAction};
use smithay::reexports::wayland_server::Display;

use crate::backend::{Backend, Rendered};
use crate::state::{ClientState, NekState};
use crate::timeline::{self, Phase, Timeline};
use crate::{clock, input, process, sys};

/// Everything the event loop callbacks see.
pub struct State {
    pub backend: Backend,
    pub nek: NekState,
    loop_signal: LoopSignal,
    /// Set once the compositor decided to stop (viewer gone, signal, error, timeout).
    pub stopped: bool,
    /// Exit status to return once the loop stops.
    pub exit_code: i32,
    /// Viewer process, if the compositor started one.
    pub child: Option<Child>,
    /// Client frames included in the last frame that reached the screen.
    pub presented_client_frames: u64,
    /// CLOCK_BOOTTIME milliseconds when the first client frame reached the screen.
    pub first_frame_ms: Option<u64>,
    /// Input devices already looked at.
    input_paths: Vec<PathBuf>,
    /// [`timeline::debug_logging`]: log keyboards and input events to stderr.
    debug: bool,
    /// Phase marks (debug log level).
    pub timeline: Timeline,
    /// Whether a client frame has been composited into a scanout buffer yet.
    first_composited: bool,
    /// Client frames committed when the last key press arrived, until a later client
    /// frame is on screen (`next-frame-flipped`).
    key_pending: Option<u64>,
}

impl State {
    /// Stops the event loop with `code`.
    pub fn quit(&mut self, code: i32) {
        self.exit_code = code;
        self.stopped = true;
        self.loop_signal.stop();
        self.loop_signal.wakeup();
    }

    /// Draws pending damage if the output is free; answers callbacks otherwise idle.
    pub fn redraw(&mut self) {
        let nek = &mut self.nek;
        match self.backend.render(&mut nek.scene) {
            Ok(Rendered::Busy) => {}
            Ok(Rendered::Idle) => NekState::send_frame_callbacks(&mut nek.pending_callbacks),
            Ok(Rendered::Queued) => {
                nek.inflight_callbacks.append(&mut nek.pending_callbacks);
                self.on_composited();
            }
            Ok(Rendered::Presented) => {
                nek.inflight_callbacks.append(&mut nek.pending_callbacks);
                self.on_composited();
                self.on_presented();
            }
            Err(e) => {
                eprintln!("nekos-compositor: {e}");
                self.stop_child();
                self.quit(1);
            }
        }
    }

    /// The client's buffer is in a scanout buffer: give it back to the client now, not
    /// after the flip (the copy is all we need of it).
    fn on_composited(&mut self) {
        self.nek.scene.release_content();
        if !self.first_composited && self.nek.scene.client_frames > 0 {
            self.first_composited = true;
            self.timeline.mark(Phase::FirstFrameComposited);
        }
    }

    /// A frame reached the screen (vblank after a flip, or drawn headless).
    pub fn on_presented(&mut self) {
        let client_frames = self.backend.presented(&self.nek.scene);
        NekState::send_frame_callbacks(&mut self.nek.inflight_callbacks);
        // Now, not at the end of this dispatch: after the first frame the keyboard is set
        // up below (under TCG ~40 ms of our CPU, 70-82 ms of wall time), and the viewer
        // waits for this callback to put its decoder back to normal priority.
        let _ = self.nek.display_handle.flush_clients();
        self.presented_client_frames = client_frames;
        if client_frames > 0 && self.first_frame_ms.is_none() {
            self.timeline.mark(Phase::PageFlipDone);
            let ms = clock::boottime_ms();
            self.first_frame_ms = Some(ms);
            println!("nekos: first frame after {ms} ms");
            self.nek.add_keyboard();
            self.timeline.mark(Phase::KeyboardReady);
        }
        if self
            .key_pending
            .is_some_and(|at_key| client_frames > at_key)
        {
            self.key_pending = None;
            self.timeline.mark(Phase::NextFrameFlipped);
        }
        // More damage may have come in while the flip was pending.
        if self.backend.is_async() {
            self.redraw();
        }
    }

    /// Terminates the viewer (if still running) and reaps it.
    pub fn stop_child(&mut self) {
        if let Some(child) = self.child.take()
            && let Some(code) = process::stop(child)
        {
            self.exit_code = code;
        }
    }

    /// The viewer's pidfd became readable.
    fn on_child_exit(&mut self) {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(st) = status {
            self.child = None;
            let code = process::exit_code(st);
            if code != 0 {
                eprintln!("nekos-compositor: viewer exited with status {code}");
            }
            self.quit(code);
        }
    }

    fn scan_keyboards(&mut self, handle: &LoopHandle<'static, State>) {
        for path in input::event_devices() {
            if self.input_paths.contains(&path) {
                continue;
            }
            self.input_paths.push(path.clone());
            let Some(fd) = input::open_keyboard(&path) else {
                continue;
            };
            let res = handle.insert_source(
                Generic::new(fd, Interest::READ, Mode::Level),
                |_, fd, state| match input::read_events(fd) {
                    Some(events) => {
                        for ev in events {
                            if state.debug {
                                let how = if ev.pressed { "down" } else { "up" };
                                eprintln!("nekos-compositor: key {} {how}", ev.code);
                            }
                            state.key(ev.code, ev.pressed, ev.time_ms);
                        }
                        Ok(PostAction::Continue)
                    }
                    None => Ok(PostAction::Remove),
                },
            );
            // Which keyboard was found is a debugging aid: at the default level it would land
            // on the serial prompt's line right after the first `nekos# `.
            if res.is_ok() && self.debug {
                eprintln!("nekos-compositor: keyboard {}", path.display());
            }
        }
    }

    /// A key from a keyboard (or a test) to the focused client.
    fn key(&mut self, code: u16, pressed: bool, time_ms: u32) {
        if pressed {
            self.timeline.mark(Phase::KeyReceived);
            self.key_pending = Some(self.nek.scene.client_frames);
        }
        self.nek.key(code, pressed, time_ms);
    }

    /// What every loop iteration ends with: draw, then send what the handlers queued.
    fn after_dispatch(&mut self) {
        // The client may just have asked for its keyboard.
        self.nek.deliver_held_keys();
        if !self.stopped {
            self.redraw();
        }
        let _ = self.nek.display_handle.flush_clients();
    }
}

/// The event loop and its state.
pub struct Compositor {
    event_loop: EventLoop<'static, State>,
    pub state: State,
}

impl Compositor {
    /// A compositor on `backend` with the Wayland globals, serving no client yet.
    pub fn new(backend: Backend) -> Result<Compositor, String> {
        let event_loop: EventLoop<State> =
            EventLoop::try_new().map_err(|e| format!("event loop: {e}"))?;
        let display: Display<NekState> = Display::new().map_err(|e| format!("display: {e}"))?;
        let (w, h) = backend.size();
        let nek = NekState::new(&display.handle(), w, h);
        event_loop
            .handle()
            .insert_source(
                Generic::new(display, Interest::READ, Mode::Level),
                |_, display, state| {
                    let d = sys::display_mut(display);
                    if let Err(e) = d.dispatch_clients(&mut state.nek) {
                        eprintln!("nekos-compositor: dispatch: {e}");
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| format!("display source: {e}"))?;
        let state = State {
            backend,
            nek,
            loop_signal: event_loop.get_signal(),
            stopped: false,
            exit_code: 0,
            child: None,
            presented_client_frames: 0,
            first_frame_ms: None,
            input_paths: Vec::new(),
            debug: timeline::debug_logging(),
            timeline: Timeline::from_env(),
            first_composited: false,
            key_pending: None,
        };
        Ok(Compositor { event_loop, state })
    }

    pub fn handle(&self) -> LoopHandle<'static, State> {
        self.event_loop.handle()
    }

    /// SIGTERM/SIGINT stop the viewer and the compositor (status 0). The signals are
    /// blocked in the calling thread, which must be the one running the loop; call this
    /// before other threads start so they inherit the mask.
    pub fn watch_signals(&mut self) -> Result<(), String> {
        let signals = Signals::new(&[Signal::SIGTERM, Signal::SIGINT])
            .map_err(|e| format!("signalfd: {e}"))?;
        self.handle()
            .insert_source(signals, |_, _, state| {
                state.stop_child();
                state.quit(0);
            })
            .map_err(|e| format!("signal source: {e}"))?;
        Ok(())
    }

    /// Vblanks of the DRM backend.
    pub fn watch_drm(&mut self, notifier: DrmDeviceNotifier) -> Result<(), String> {
        self.handle()
            .insert_source(notifier, |event, _meta, state| match event {
                DrmEvent::VBlank(_) => state.on_presented(),
                DrmEvent::Error(e) => eprintln!("nekos-compositor: DRM error: {e}"),
            })
            .map_err(|e| format!("DRM source: {e}"))?;
        Ok(())
    }

    /// Keyboards from /dev/input, now and every 2 s (hot plug without udev).
    pub fn watch_keyboards(&mut self) -> Result<(), String> {
        let handle = self.handle();
        self.state.scan_keyboards(&handle);
        self.handle()
            .insert_source(
                Timer::from_duration(Duration::from_secs(2)),
                move |_, _, state| {
                    state.scan_keyboards(&handle);
                    TimeoutAction::ToDuration(Duration::from_secs(2))
                },
            )
            .map_err(|e| format!("timer: {e}"))?;
        Ok(())
    }

    /// Gives up after `after` (exit status 124).
    pub fn set_timeout(&mut self, after: Duration) -> Result<(), String> {
        self.handle()
            .insert_source(Timer::from_duration(after), |_, _, state| {
                eprintln!("nekos-compositor: timed out");
                state.stop_child();
                state.quit(124);
                TimeoutAction::Drop
            })
            .map_err(|e| format!("timer: {e}"))?;
        Ok(())
    }

    /// Serves a client already connected on `stream`.
    pub fn insert_client(&mut self, stream: UnixStream) -> Result<(), String> {
        self.state
            .nek
            .display_handle
            .insert_client(stream, Arc::new(ClientState::default()))
            .map_err(|e| format!("insert client: {e}"))?;
        Ok(())
    }

    /// Starts the viewer as a child process on a socketpair; its exit stops the loop
    /// with its exit status.
    pub fn spawn_viewer(
        &mut self,
        viewer: &Path,
        args: &[String],
        original_runtime_dir: Option<Option<std::ffi::OsString>>,
    ) -> Result<(), String> {
        let (child, stream) = process::spawn_viewer(viewer, args, original_runtime_dir)?;
        self.adopt_viewer(child, stream)
    }

    /// Serves a viewer started earlier (`process::spawn_viewer`) on its socketpair; what
    /// it sent meanwhile waits in the socket. Its exit stops the loop with its status.
    pub fn adopt_viewer(&mut self, child: Child, stream: UnixStream) -> Result<(), String> {
        let pidfd = match process::pidfd(&child) {
            Ok(fd) => fd,
            Err(e) => {
                process::stop(child);
                return Err(e);
            }
        };
        self.state.child = Some(child);
        self.handle()
            .insert_source(
                Generic::new(pidfd, Interest::READ, Mode::Level),
                |_, _, state| {
                    state.on_child_exit();
                    Ok(if state.child.is_some() {
                        PostAction::Continue
                    } else {
                        PostAction::Remove
                    })
                },
            )
            .map_err(|e| format!("pidfd source: {e}"))?;
        self.insert_client(stream)
    }

    /// One loop iteration: waits up to `timeout` for events, handles them, draws.
    pub fn dispatch(&mut self, timeout: Option<Duration>) -> Result<(), String> {
        self.event_loop
            .dispatch(timeout, &mut self.state)
            .map_err(|e| format!("event loop: {e}"))?;
        self.state.after_dispatch();
        Ok(())
    }

    /// Sends a key press or release (evdev code) to the focused client, as a keyboard
    /// would.
    pub fn key(&mut self, code: u16, pressed: bool) {
        let t = clock::monotonic_ms() as u32;
        self.state.key(code, pressed, t);
        let _ = self.state.nek.display_handle.flush_clients();
    }

    /// Runs until the viewer exits or a signal, error or timeout stops the compositor;
    /// returns the exit status.
    pub fn run(mut self) -> Result<i32, String> {
        if !self.state.stopped {
            self.event_loop
                .run(None, &mut self.state, State::after_dispatch)
                .map_err(|e| format!("event loop: {e}"))?;
        }
        self.state.stop_child();
        Ok(self.state.exit_code)
    }
}
