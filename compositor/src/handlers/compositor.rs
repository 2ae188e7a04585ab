//! wl_compositor + wl_shm + wl_buffer: a committed shm buffer becomes the scene's content
//! (held, not copied, until the backend copies it into a scanout buffer).

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

use crate::compose::Pixels;
use crate::damage::Rect;
use crate::scene::Content;
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
            Some(BufferAssignment::Removed) => self.scene.clear(),
            Some(BufferAssignment::NewBuffer(buffer)) => self.take_buffer(buffer, &damage),
        }
    }
}

/// A committed wl_shm buffer the scene shows until the backend has copied it; dropping it
/// gives it back to the client.
struct HeldBuffer(WlBuffer);

impl HeldBuffer {
    /// The buffer's pixels in its pool's mapping, validated (format, sizes, bounds). With
    /// `then_forget`, the buffer's pages leave our page tables after `f` (see
    /// [`sys::drop_shared_pages`]): for the copy into a scanout buffer, after which we have
    /// no use for them.
    fn with_pixels<R>(
        &self,
        then_forget: bool,
        f: impl FnOnce(&Pixels<'_>) -> R,
    ) -> Result<R, String> {
        with_buffer_contents(&self.0, |ptr, len, data| {
            if !matches!(
                data.format,
                wl_shm::Format::Xrgb8888 | wl_shm::Format::Argb8888
            ) {
                return Err(format!("shm format {:?} not supported", data.format));
            }
            let (Ok(offset), Ok(width), Ok(height), Ok(stride)) = (
                usize::try_from(data.offset),
                u32::try_from(data.width),
                u32::try_from(data.height),
                usize::try_from(data.stride),
            ) else {
                return Err("negative shm buffer geometry".to_string());
            };
            let needed = stride.saturating_mul(height as usize);
            let result = sys::with_shm_bytes(ptr, len, offset, needed, |bytes| {
                Pixels::new(bytes, width, height, stride).map(|p| f(&p))
            })
            .flatten()
            .ok_or_else(|| "truncated shm buffer".to_string());
            if then_forget && result.is_ok() {
                // Still inside with_buffer_contents: the mapping cannot move meanwhile.
                sys::drop_shared_pages(ptr, len, offset, needed);
            }
            result
        })
        .map_err(|e| format!("buffer is not wl_shm ({e:?})"))?
    }
}

impl Content for HeldBuffer {
    /// The backend's one read of the buffer: the copy into a scanout buffer.
    fn with_pixels(&self, f: &mut dyn FnMut(&Pixels<'_>)) -> bool {
        HeldBuffer::with_pixels(self, true, f).is_ok()
    }
}

impl Drop for HeldBuffer {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl NekState {
    /// A new buffer for the toplevel: the scene holds it (no copy yet) and gets its damage.
    fn take_buffer(&mut self, buffer: WlBuffer, damage: &[Damage]) {
        let held = HeldBuffer(buffer);
        let size = match held.with_pixels(false, |p| (p.width, p.height)) {
            Ok(size) => size,
            Err(e) => {
                // Dropping `held` releases it; the scene keeps what it showed.
                eprintln!("nekos-compositor: {e}; buffer ignored");
                return;
            }
        };
        let old_pos = self.scene.position();
        let old_size = self.scene.image_size;
        // Replacing the held buffer releases the previous one, if it was not copied yet:
        // this one has the whole surface, so it also covers the previous one's damage.
        self.scene.content = Some(Box::new(held));
        self.scene.image_size = Some(size);
        self.scene.client_frames += 1;
        let new_pos = self.scene.position();
        let bounds = self.scene.bounds();
        if new_pos != old_pos || Some(size) != old_size {
            self.scene.damage_all();
            return;
        }
        let buffer_rect = Rect::new(0, 0, size.0 as i32, size.1 as i32);
        for d in damage {
            // Without scale or transform, surface and buffer coordinates are the same.
            let r = match d {
                Damage::Surface(r) => Rect::new(r.loc.x, r.loc.y, r.size.w, r.size.h),
                Damage::Buffer(r) => Rect::new(r.loc.x, r.loc.y, r.size.w, r.size.h),
            };
            if let Some(r) = r.intersect(&buffer_rect) {
                self.scene
                    .damage
                    .add(r.translate(new_pos.0, new_pos.1), bounds);
            }
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
