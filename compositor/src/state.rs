//! Compositor state: the protocol states (smallvil shape) plus the kiosk scene. The
//! backend is driven from outside (`run.rs`); nothing here knows about outputs.

use smithay::backend::input::KeyState;
use smithay::input::keyboard::{FilterResult, KeyboardHandle, Keycode, XkbConfig};
use smithay::input::{Seat, SeatState};
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::wl_callback::WlCallback;
use smithay::reexports::wayland_server::{DisplayHandle, Resource};
use smithay::utils::SERIAL_COUNTER;
use smithay::wayland::compositor::{CompositorClientState, CompositorState};
use smithay::wayland::shell::xdg::{ToplevelSurface, XdgShellState};
use smithay::wayland::shm::ShmState;

use crate::scene::Scene;

/// Keys held before the client has a keyboard: a few seconds of typing at most; older
/// ones go first.
const MAX_HELD_KEYS: usize = 64;

/// A key event waiting for the client's keyboard.
#[derive(Debug, Clone, Copy)]
struct HeldKey {
    code: u16,
    pressed: bool,
    time_ms: u32,
}

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
    pub seat: Seat<NekState>,
    /// Added after the first frame ([`NekState::add_keyboard`]).
    pub keyboard: Option<KeyboardHandle<NekState>>,
    /// Keys that came before the client could get them, oldest first.
    held_keys: Vec<HeldKey>,

    /// The one toplevel the kiosk shows.
    pub toplevel: Option<ToplevelSurface>,
    pub scene: Scene,
    /// Frame callbacks committed but not yet answered.
    pub pending_callbacks: Vec<WlCallback>,
    /// Callbacks whose content is in the frame being flipped.
    pub inflight_callbacks: Vec<WlCallback>,
}

impl NekState {
    /// Creates the globals (wl_compositor, xdg_wm_base, wl_shm, wl_seat; its keyboard comes
    /// with the first frame) for an output of `width`×`height`.
    pub fn new(dh: &DisplayHandle, width: u32, height: u32) -> NekState {
        let compositor_state = CompositorState::new::<NekState>(dh);
        let xdg_shell_state = XdgShellState::new::<NekState>(dh);
        let shm_state = ShmState::new::<NekState>(dh, vec![]);
        let mut seat_state = SeatState::new();
        let seat = seat_state.new_wl_seat(dh, "seat0");
        NekState {
            display_handle: dh.clone(),
            compositor_state,
            xdg_shell_state,
            shm_state,
            seat_state,
            seat,
            keyboard: None,
            held_keys: Vec::new(),
            toplevel: None,
            scene: Scene::new(width, height),
            pending_callbacks: Vec::new(),
            inflight_callbacks: Vec::new(),
        }
    }

    /// Gives the seat its keyboard (compiling the keymap) and focuses the toplevel. Called
    /// once the first client frame is on screen, not at start-up: with one vCPU under TCG
    /// the compile shares the CPU with the first photo's decode (the full US keymap took
    /// 0.8 s in the guest, as long as that decode), and a cat on screen does not need it.
    /// Keys that come earlier are held (see [`NekState::key`]).
    pub fn add_keyboard(&mut self) {
        if self.keyboard.is_some() {
            return;
        }
        let kbd = match self.seat.add_keyboard(XkbConfig::default(), 400, 25) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("nekos-compositor: no keyboard: {e}");
                return;
            }
        };
        if let Some(surface) = self
            .toplevel
            .as_ref()
            .filter(|t| t.alive())
            .map(|t| t.wl_surface().clone())
        {
            kbd.set_focus(self, Some(surface), SERIAL_COUNTER.next_serial());
        }
        self.keyboard = Some(kbd);
    }

    /// Whether a key sent now reaches the client: the seat has its keyboard and the focused
    /// client has asked for its wl_keyboard (it does so after the capability appears).
    fn keys_reach_client(&self) -> bool {
        let (Some(kbd), Some(top)) = (self.keyboard.as_ref(), self.toplevel.as_ref()) else {
            return false;
        };
        let Some(client) = top.wl_surface().client() else {
            return false;
        };
        kbd.client_keyboards(&client).next().is_some()
    }

    /// Sends a key (evdev code) to the focused client; held, in order, while it cannot
    /// reach the client yet (a key pressed right after the first frame is not lost).
    pub fn key(&mut self, code: u16, pressed: bool, time_ms: u32) {
        if self.held_keys.len() >= MAX_HELD_KEYS {
            self.held_keys.remove(0);
        }
        self.held_keys.push(HeldKey {
            code,
            pressed,
            time_ms,
        });
        self.deliver_held_keys();
    }

    /// Sends the held keys once they can reach the client.
    pub fn deliver_held_keys(&mut self) {
        if self.held_keys.is_empty() || !self.keys_reach_client() {
            return;
        }
        let Some(kbd) = self.keyboard.clone() else {
            return;
        };
        for k in std::mem::take(&mut self.held_keys) {
            let st = if k.pressed {
                KeyState::Pressed
            } else {
                KeyState::Released
            };
            kbd.input::<(), _>(
                self,
                Keycode::new(u32::from(k.code) + 8),
                st,
                SERIAL_COUNTER.next_serial(),
                k.time_ms,
                |_, _, _| FilterResult::Forward,
            );
        }
    }

    /// Answers frame callbacks (the frame they asked about is on screen).
    pub fn send_frame_callbacks(list: &mut Vec<WlCallback>) {
        let t = crate::clock::monotonic_ms() as u32;
        for cb in list.drain(..) {
            cb.done(t);
        }
    }
}
