//! wl_compositor + wl_shm + wl_buffer: copy committed shm buffers into the scene.

use smithay::reexports::wayland_server::Client;
use smithay::reexports::wayland_server::protocol::wl_buffer::WlBuffer;
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    BufferAssignment, CompositorClientState, CompositorHandler, CompositorState, Damage,
    SurfaceAttributes, with_states,
};
use smithay::wayland::shm::{ShmHandler, ShmState, with_buffer_contents};
use smithay::{delegate_compositor, delegate_shm};

use crate::compose::{PixelFormat, copy_from_shm};
use crate::damage::Rect;
use crate::state::{ClientState, NekState};
use crate::sys;

/// For clients inserted without our `ClientState` (none are).
static FALLBACK_CLIENT_STATE: std::sync::LazyLock<CompositorClientState> =
    std::sync::LazyLock::new(CompositorClientState::default);

impl CompositorHandler for NekState {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor_state
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        match client.get_data::<ClientState>() {
            Some(d) => &d.compositor_state,
            None => &FALLBACK_CLIENT_STATE,
        }
    }

    fn commit(&mut self, surface: &WlSurface) {
        let is_toplevel = self
            .toplevel
            .as_ref()
            .is_some_and(|t| t.wl_surface() == surface);

        if is_toplevel
            && let Some(t) = &self.toplevel
            && !t.is_initial_configure_sent()
        {
            t.send_configure();
        }

        let mut assignment = None;
        let mut damage = Vec::new();
        let mut callbacks = Vec::new();
        with_states(surface, |states| {
            let mut guard = states.cached_state.get::<SurfaceAttributes>();
            let attrs = guard.current();
            assignment = attrs.buffer.take();
            damage = attrs.damage.drain(..).collect::<Vec<_>>();
            callbacks = attrs.frame_callbacks.drain(..).collect::<Vec<_>>();
        });

        if !is_toplevel {
            // Not shown (popups, subsurfaces, extra toplevels): release and answer at once.
            if let Some(BufferAssignment::NewBuffer(b)) = assignment {
                b.release();
            }
            let mut cbs = callbacks;
            NekState::send_frame_callbacks(&mut cbs);
            return;
        }

        self.pending_callbacks.extend(callbacks);
        match assignment {
            None => {}
            Some(BufferAssignment::Removed) => {
                self.scene.image = None;
                self.scene.damage_all();
            }
            Some(BufferAssignment::NewBuffer(buffer)) => {
                self.take_buffer(&buffer, &damage);
                buffer.release();
            }
        }
    }
}

impl NekState {
    fn take_buffer(&mut self, buffer: &WlBuffer, damage: &[Damage]) {
        let rects: Vec<Rect> = damage
            .iter()
            .map(|d| match d {
                Damage::Surface(r) => Rect::new(r.loc.x, r.loc.y, r.size.w, r.size.h),
                Damage::Buffer(r) => Rect::new(r.loc.x, r.loc.y, r.size.w, r.size.h),
            })
            .collect();
        let old_pos = self.scene.position();
        let old_size = self.scene.image.as_ref().map(|i| (i.width, i.height));
        let mut image = self.scene.image.take().unwrap_or_default();
        let res = with_buffer_contents(buffer, |ptr, len, data| {
            let format = match data.format {
                wl_shm::Format::Xrgb8888 => PixelFormat::Xrgb8888,
                wl_shm::Format::Argb8888 => PixelFormat::Argb8888,
                _ => return None,
            };
            if data.offset < 0 || data.width <= 0 || data.height <= 0 || data.stride <= 0 {
                return None;
            }
            let offset = data.offset as usize;
            let needed = data.stride as usize * data.height as usize;
            sys::with_shm_bytes(ptr, len, offset, needed, |bytes| {
                copy_from_shm(
                    &mut image,
                    bytes,
                    data.width as u32,
                    data.height as u32,
                    data.stride as usize,
                    format,
                    &rects,
                )
            })
        });
        let changed = match res {
            Ok(Some(c)) => c,
            Ok(None) => {
                eprintln!("nekos-compositor: unsupported or truncated shm buffer ignored");
                return self.restore_image(image, old_size);
            }
            Err(e) => {
                eprintln!("nekos-compositor: buffer is not wl_shm ({e:?}); ignored");
                return self.restore_image(image, old_size);
            }
        };
        self.scene.image = Some(image);
        self.scene.client_frames += 1;
        let new_pos = self.scene.position();
        let new_size = self.scene.image.as_ref().map(|i| (i.width, i.height));
        let bounds = self.scene.bounds();
        if new_pos != old_pos || new_size != old_size {
            self.scene.damage_all();
        } else {
            for r in changed {
                self.scene
                    .damage
                    .add(r.translate(new_pos.0, new_pos.1), bounds);
            }
        }
    }

    fn restore_image(&mut self, image: crate::compose::Image, old_size: Option<(u32, u32)>) {
        if old_size.is_some() {
            self.scene.image = Some(image);
        }
    }
}

impl BufferHandler for NekState {
    fn buffer_destroyed(&mut self, _buffer: &WlBuffer) {}
}

impl ShmHandler for NekState {
    fn shm_state(&self) -> &ShmState {
        &self.shm_state
    }
}

delegate_compositor!(NekState);
delegate_shm!(NekState);
