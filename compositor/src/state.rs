//! Compositor state: the protocol states (smallvil shape) plus the kiosk scene. The
//! backend is driven from outside (`run.rs`); nothing here knows about outputs.

use smithay::backend::input::KeyState;
use smithay::input::keyboard::{FilterResult, KeyboardHandle, Keycode, XkbConfig};
use smithay::input::{Seat, SeatState};
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::wl_callback::WlCallback;
use smithay::utils::SERIAL_COUNTER;
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::shell::xdg::{ToplevelSurface, XdgShellState};
use smithay::wayland::shm::ShmState;

use crate::scene::Scene;

/// Per-client data.
#[derive(Default)]
pub struct ClientState {
    pub compositor_state: CompositorClientState,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {}
    fn disconnected(&self, _client_id: ClientId, _reason: DisconnectReason) {}
}

pub struct NekState {
    pub display_handle: DisplayHandle,

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
}

impl NekState {
    /// Creates the globals (wl_compositor, xdg_wm_base, wl_shm, wl_seat with a keyboard)
    /// for an output of `width`×`height`.
    pub fn new(dh: &DisplayHandle, width: u32, height: u32) -> NekState {
        let compositor_state = CompositorState::new::<NekState>(dh);
        let xdg_shell_state = XdgShellState::new::<NekState>(dh);
        let shm_state = ShmState::new::<NekState>(dh, vec![]);
        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(dh, "seat0");
        let keyboard = match seat.add_keyboard(XkbConfig::default(), 400, 25) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("nekos-compositor: no keyboard: {e}");
                None
            }
        };
        NekState {
            display_handle: dh.clone(),
            compositor_state,
            xdg_shell_state,
            shm_state,
            seat_state,
            seat,
            keyboard,
            toplevel: None,
            scene: Scene::new(width, height),
            pending_callbacks: Vec::new(),
            inflight_callbacks: Vec::new(),
        }
    }

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

    /// Answers frame callbacks (the frame they asked about is on screen).
    pub fn send_frame_callbacks(list: &mut Vec<WlCallback>) {
        let t = crate::clock::monotonic_ms() as u32;
        for cb in list.drain(..) {
            cb.done(t);
        }
    }
}
