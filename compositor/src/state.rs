//! Compositor state: the protocol states (smallvil shape) plus the kiosk scene.

use smithay::input::keyboard::KeyboardHandle;
use smithay::input::{Seat, SeatState};
use smithay::reexports::calloop::LoopSignal;
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::wl_callback::WlCallback;
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::shell::xdg::{ToplevelSurface, XdgShellState};
use smithay::wayland::shm::ShmState;

use crate::compose::{Image, placement};
use crate::damage::{DamageList, Rect};

/// Per-client data.
#[derive(Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, _client_id: ClientId, _reason: DisconnectReason) {}
}

/// What is on screen: the one toplevel's last buffer, centred on black.
pub struct Scene {
    pub output_w: u32,
    pub output_h: u32,
    pub image: Option<Image>,
    /// Output damage not yet rendered.
    pub damage: DamageList,
    /// Number of client buffers committed so far.
    pub client_frames: u64,
}

impl Scene {
    pub fn new(output_w: u32, output_h: u32) -> Scene {
        let mut damage = DamageList::new();
        let bounds = Rect::new(0, 0, output_w as i32, output_h as i32);
        damage.add(bounds, bounds);
        Scene {
            output_w,
            output_h,
            image: None,
            damage,
            client_frames: 0,
        }
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.output_w as i32, self.output_h as i32)
    }

    pub fn position(&self) -> (i32, i32) {
        match &self.image {
            Some(i) => placement(self.output_w, self.output_h, i.width, i.height),
            None => (0, 0),
        }
    }

    pub fn damage_all(&mut self) {
        let b = self.bounds();
        self.damage.add(b, b);
    }
}

pub struct NekState {
    pub display_handle: DisplayHandle,
    pub loop_signal: LoopSignal,

    pub compositor_state: CompositorState,
    pub xdg_shell_state: XdgShellState,
    pub shm_state: ShmState,
    pub seat_state: SeatState<NekState>,
    #[allow(dead_code)] // owns the wl_seat global
    pub seat: Seat<NekState>,
    pub keyboard: Option<KeyboardHandle<NekState>>,

    /// The one toplevel the kiosk shows.
    pub toplevel: Option<ToplevelSurface>,
    pub scene: Scene,
    /// Frame callbacks committed but not yet answered.
    pub pending_callbacks: Vec<WlCallback>,
    /// Callbacks whose content is in the frame being flipped.
    pub inflight_callbacks: Vec<WlCallback>,

    /// Milliseconds since boot when the first client frame reached the screen.
    pub first_frame_logged: bool,
    /// Exit status to return once the loop stops.
    pub exit_code: i32,
    /// Viewer process.
    pub child: Option<std::process::Child>,
    /// Input devices already looked at.
    pub input_paths: Vec<std::path::PathBuf>,
    pub output: crate::backend::Output,
    /// Client frames included in the last frame that reached the screen.
    pub presented_client_frames: u64,
    pub args: crate::args::Args,
    pub keys_scheduled: bool,
    /// NEKOS_DEBUG set: log input events to stderr.
    pub debug: bool,
    pub loop_handle: Option<smithay::reexports::calloop::LoopHandle<'static, NekState>>,
}

impl NekState {
    /// Stops the event loop with `code`.
    pub fn quit(&mut self, code: i32) {
        self.exit_code = code;
        self.loop_signal.stop();
        self.loop_signal.wakeup();
    }

    /// Answers frame callbacks (the frame they asked about is on screen).
    pub fn send_frame_callbacks(list: &mut Vec<WlCallback>) {
        let t = crate::clock::monotonic_ms() as u32;
        for cb in list.drain(..) {
            cb.done(t);
        }
    }
}
