//! nekos-compositor: a static, C-free kiosk Wayland compositor for NekOS.
//!
//! It shows exactly one xdg toplevel fullscreen on a DRM/KMS output (dumb buffers,
//! software composition), feeds it keys from evdev, starts the viewer itself over a
//! socketpair and exits with the viewer's exit status.

mod args;
mod backend;
mod clock;
mod compose;
mod damage;
mod handlers;
mod input;
mod png_out;
mod process;
mod state;

use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use smithay::backend::drm::DrmEvent;
use smithay::backend::input::KeyState;
use smithay::input::SeatState;
use smithay::input::keyboard::{FilterResult, Keycode, XkbConfig};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, LoopHandle, Mode, PostAction};
use smithay::reexports::wayland_server::Display;
use smithay::utils::SERIAL_COUNTER;
use smithay::wayland::compositor::CompositorState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shm::ShmState;

use crate::args::Args;
use crate::backend::{DrmOutput, Headless, Output};
use crate::state::{ClientState, NekState, Scene};

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nekos-compositor: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32, String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if args.help {
        println!("{}", args::USAGE);
        return Ok(0);
    }
    // smithay writes keymaps for wl_keyboard < v7 to a temporary file in
    // $XDG_RUNTIME_DIR or /tmp; the guest may have neither, so point it at a
    // writable tmpfs (only for us; the viewer gets the original environment).
    let original_runtime_dir = process::ensure_runtime_dir();
    // Block the signals we handle through a signalfd before any thread exists.
    let signal_fd = process::block_signals_and_open_signalfd()?;

    let mut event_loop: EventLoop<NekState> =
        EventLoop::try_new().map_err(|e| format!("event loop: {e}"))?;
    let handle = event_loop.handle();

    // The output decides the size the client is configured with.
    let mut drm_notifier = None;
    let output = match args.headless {
        Some((w, h)) => Output::Headless(Headless::new(w, h)),
        None => {
            let (out, notifier) = DrmOutput::open(&args.drm_device)?;
            drm_notifier = Some(notifier);
            Output::Drm(Box::new(out))
        }
    };
    let (w, h) = output.size();

    let display: Display<NekState> = Display::new().map_err(|e| format!("display: {e}"))?;
    let dh = display.handle();
    let compositor_state = CompositorState::new::<NekState>(&dh);
    let xdg_shell_state = XdgShellState::new::<NekState>(&dh);
    let shm_state = ShmState::new::<NekState>(&dh, vec![]);
    let mut seat_state = SeatState::new();
    let mut seat = seat_state.new_wl_seat(&dh, "seat0");
    let keyboard = match seat.add_keyboard(XkbConfig::default(), 400, 25) {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!("nekos-compositor: no keyboard: {e}");
            None
        }
    };

    let mut state = NekState {
        display_handle: dh.clone(),
        loop_signal: event_loop.get_signal(),
        compositor_state,
        xdg_shell_state,
        shm_state,
        seat_state,
        seat,
        keyboard,
        toplevel: None,
        scene: Scene::new(w, h),
        pending_callbacks: Vec::new(),
        inflight_callbacks: Vec::new(),
        first_frame_logged: false,
        exit_code: 0,
        child: None,
        input_paths: Vec::new(),
        loop_handle: None,
        output,
        presented_client_frames: 0,
        args: args.clone(),
        keys_scheduled: false,
        debug: std::env::var_os("NEKOS_DEBUG").is_some(),
    };

    handle
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, state| {
                // SAFETY: the display is not dropped while the source exists.
                let d = unsafe { display.get_mut() };
                if let Err(e) = d.dispatch_clients(state) {
                    eprintln!("nekos-compositor: dispatch: {e}");
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("display source: {e}"))?;

    handle
        .insert_source(
            Generic::new(signal_fd, Interest::READ, Mode::Level),
            |_, fd, state| {
                for sig in process::read_signals(fd.as_raw_fd()) {
                    state.on_signal(sig);
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("signal source: {e}"))?;

    if let Some(notifier) = drm_notifier {
        handle
            .insert_source(notifier, |event, _meta, state| match event {
                DrmEvent::VBlank(_) => state.on_presented(),
                DrmEvent::Error(e) => eprintln!("nekos-compositor: DRM error: {e}"),
            })
            .map_err(|e| format!("DRM source: {e}"))?;
        scan_keyboards(&mut state, &handle);
        handle
            .insert_source(
                Timer::from_duration(Duration::from_secs(2)),
                |_, _, state| {
                    let h = state.loop_handle.clone();
                    if let Some(h) = h {
                        scan_keyboards(state, &h);
                    }
                    TimeoutAction::ToDuration(Duration::from_secs(2))
                },
            )
            .map_err(|e| format!("timer: {e}"))?;
    }
    if let Some(ms) = args.timeout_ms {
        handle
            .insert_source(
                Timer::from_duration(Duration::from_millis(ms)),
                |_, _, state| {
                    eprintln!("nekos-compositor: timed out");
                    state.stop_child();
                    state.quit(124);
                    TimeoutAction::Drop
                },
            )
            .map_err(|e| format!("timer: {e}"))?;
    }
    state.loop_handle = Some(handle.clone());

    // Start the viewer on one end of a socketpair; the other end is our client.
    let (child, stream) =
        process::spawn_viewer(&args.viewer, &args.viewer_args, original_runtime_dir)?;
    state.child = Some(child);
    dh.clone()
        .insert_client(stream, Arc::new(ClientState::default()))
        .map_err(|e| format!("insert client: {e}"))?;

    event_loop
        .run(None, &mut state, |state| {
            state.redraw();
            let _ = state.display_handle.flush_clients();
        })
        .map_err(|e| format!("event loop: {e}"))?;

    state.stop_child();
    Ok(state.exit_code)
}

fn scan_keyboards(state: &mut NekState, handle: &LoopHandle<'static, NekState>) {
    for path in input::event_devices() {
        if state.input_paths.contains(&path) {
            continue;
        }
        state.input_paths.push(path.clone());
        let Some(fd) = input::open_keyboard(&path) else {
            continue;
        };
        let res = handle.insert_source(
            Generic::new(fd, Interest::READ, Mode::Level),
            |_, fd, state| match input::read_events(fd) {
                Some(events) => {
                    for ev in events {
                        if state.debug {
                            eprintln!(
                                "nekos-compositor: key {} {}",
                                ev.code,
                                if ev.pressed { "down" } else { "up" }
                            );
                        }
                        state.key(ev.code, ev.pressed, ev.time_ms);
                    }
                    Ok(PostAction::Continue)
                }
                None => Ok(PostAction::Remove),
            },
        );
        if res.is_ok() {
            eprintln!("nekos-compositor: keyboard {}", path.display());
        }
    }
}

impl NekState {
    /// Sends a key (evdev code) to the focused client.
    pub fn key(&mut self, code: u16, pressed: bool, time_ms: u32) {
        let Some(kbd) = self.keyboard.clone() else {
            return;
        };
        let st = if pressed {
            KeyState::Pressed
        } else {
            KeyState::Released
        };
        kbd.input::<(), _>(
            self,
            Keycode::new(u32::from(code) + 8),
            st,
            SERIAL_COUNTER.next_serial(),
            time_ms,
            |_, _, _| FilterResult::Forward,
        );
    }

    /// Draws pending damage if the output is free; answers callbacks otherwise idle.
    pub fn redraw(&mut self) {
        match &mut self.output {
            Output::Drm(d) => {
                if d.busy() {
                    return;
                }
                match d.render(&mut self.scene) {
                    Ok(true) => {
                        self.inflight_callbacks.append(&mut self.pending_callbacks);
                    }
                    Ok(false) => NekState::send_frame_callbacks(&mut self.pending_callbacks),
                    Err(e) => {
                        eprintln!("nekos-compositor: {e}");
                        self.stop_child();
                        self.quit(1);
                    }
                }
            }
            Output::Headless(h) => {
                let drew = h.render(&mut self.scene);
                self.inflight_callbacks.append(&mut self.pending_callbacks);
                if drew {
                    self.on_presented();
                } else {
                    NekState::send_frame_callbacks(&mut self.inflight_callbacks);
                }
            }
        }
    }

    /// A frame reached the screen (vblank after a flip, or drawn headless).
    pub fn on_presented(&mut self) {
        let client_frames = match &mut self.output {
            Output::Drm(d) => {
                d.flip_done();
                d.flipping_client_frames
            }
            Output::Headless(_) => self.scene.client_frames,
        };
        NekState::send_frame_callbacks(&mut self.inflight_callbacks);
        self.presented_client_frames = client_frames;
        if client_frames > 0 && !self.first_frame_logged {
            self.first_frame_logged = true;
            println!("nekos: first frame after {} ms", clock::boottime_ms());
            self.schedule_keys();
        }
        if let Output::Headless(h) = &self.output
            && client_frames >= self.args.frames
            && self.args.frames > 0
        {
            let mut code = 0;
            if let Some(path) = &self.args.screenshot {
                match std::fs::write(path, h.png()) {
                    Ok(()) => eprintln!("nekos-compositor: screenshot {}", path.display()),
                    Err(e) => {
                        eprintln!("nekos-compositor: write {}: {e}", path.display());
                        code = 1;
                    }
                }
            }
            self.stop_child();
            self.quit(code);
            return;
        }
        // More damage may have come in while the flip was pending.
        if matches!(self.output, Output::Drm(_)) {
            self.redraw();
        }
    }

    fn schedule_keys(&mut self) {
        if self.keys_scheduled || self.args.keys.is_empty() {
            return;
        }
        self.keys_scheduled = true;
        let Some(handle) = self.loop_handle.clone() else {
            return;
        };
        let keys = self.args.keys.clone();
        let gap = Duration::from_millis(self.args.key_gap_ms);
        let mut idx = 0usize;
        let _ = handle.insert_source(Timer::from_duration(gap), move |_, _, state| {
            let Some(&code) = keys.get(idx) else {
                return TimeoutAction::Drop;
            };
            let t = clock::monotonic_ms() as u32;
            state.key(code, true, t);
            state.key(code, false, t);
            let _ = state.display_handle.flush_clients();
            idx += 1;
            TimeoutAction::ToDuration(gap)
        });
    }

    fn on_signal(&mut self, sig: i32) {
        match sig {
            libc::SIGTERM | libc::SIGINT => {
                self.stop_child();
                self.quit(0);
            }
            libc::SIGCHLD => {
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
            _ => {}
        }
    }

    /// Terminates the viewer (if still running) and reaps it.
    pub fn stop_child(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(Some(st)) = child.try_wait() {
                self.exit_code = process::exit_code(st);
                return;
            }
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
