//! xdg_shell with the kiosk policy: one toplevel, fullscreen at output size.

use smithay::delegate_xdg_shell;
use smithay::reexports::wayland_protocols::xdg::shell::server::xdg_toplevel;
use smithay::reexports::wayland_server::protocol::{wl_output, wl_seat};
use smithay::utils::{SERIAL_COUNTER, Serial};
use smithay::wayland::shell::xdg::{
    PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState,
};

use crate::state::NekState;

impl NekState {
    fn configure_fullscreen(&self, surface: &ToplevelSurface) {
        let (w, h) = (self.scene.output_w as i32, self.scene.output_h as i32);
        surface.with_pending_state(|state| {
            state.states.set(xdg_toplevel::State::Fullscreen);
            state.states.set(xdg_toplevel::State::Activated);
            state.size = Some((w, h).into());
        });
    }
}

impl XdgShellHandler for NekState {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg_shell_state
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        if self.toplevel.as_ref().is_some_and(|t| t.alive()) {
            eprintln!("nekos-compositor: kiosk shows one window; closing the extra toplevel");
            surface.send_close();
            return;
        }
        self.configure_fullscreen(&surface);
        if let Some(kbd) = self.keyboard.clone() {
            kbd.set_focus(
                self,
                Some(surface.wl_surface().clone()),
                SERIAL_COUNTER.next_serial(),
            );
        }
        self.toplevel = Some(surface);
    }

    fn new_popup(&mut self, _surface: PopupSurface, _positioner: PositionerState) {}

    fn grab(&mut self, _surface: PopupSurface, _seat: wl_seat::WlSeat, _serial: Serial) {}

    fn reposition_request(
        &mut self,
        _surface: PopupSurface,
        _positioner: PositionerState,
        _token: u32,
    ) {
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        self.keep_fullscreen(surface);
    }

    fn unmaximize_request(&mut self, surface: ToplevelSurface) {
        self.keep_fullscreen(surface);
    }

    fn fullscreen_request(
        &mut self,
        surface: ToplevelSurface,
        _output: Option<wl_output::WlOutput>,
    ) {
        self.keep_fullscreen(surface);
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        self.keep_fullscreen(surface);
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        if self.toplevel.as_ref() == Some(&surface) {
            self.toplevel = None;
            self.scene.clear();
        }
    }
}

impl NekState {
    fn keep_fullscreen(&mut self, surface: ToplevelSurface) {
        if self.toplevel.as_ref() == Some(&surface) {
            self.configure_fullscreen(&surface);
            if surface.is_initial_configure_sent() {
                surface.send_configure();
            }
        }
    }
}

delegate_xdg_shell!(NekState);
