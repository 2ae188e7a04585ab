//! What is on screen: the one toplevel's current buffer, centred on black. No protocol
//! types here (the buffer is behind [`Content`]), so both the protocol state and the
//! backends can use it.

use crate::compose::{Pixels, placement};
use crate::damage::{DamageList, Rect};

/// The client buffer a scene shows, readable while the backend copies it. The compositor
/// holds it from commit until it is copied into a scanout buffer, then drops it, which
/// gives it back to the client (wl_buffer.release): no copy of the frame is kept.
pub trait Content {
    /// Calls `f` with the buffer's pixels; false if they cannot be read (`f` not called).
    fn with_pixels(&self, f: &mut dyn FnMut(&Pixels<'_>)) -> bool;
}

pub struct Scene {
    pub output_w: u32,
    pub output_h: u32,
    /// Size of the client buffer on screen, if any.
    pub image_size: Option<(u32, u32)>,
    /// The current client buffer, until it has been copied.
    pub content: Option<Box<dyn Content>>,
    /// Output damage not yet rendered.
    pub damage: DamageList,
    /// Number of client buffers committed so far.
    pub client_frames: u64,
}

impl Scene {
    /// An empty (black) scene. It starts undamaged: the backends start black.
    pub fn new(output_w: u32, output_h: u32) -> Scene {
        Scene {
            output_w,
            output_h,
            image_size: None,
            content: None,
            damage: DamageList::new(),
            client_frames: 0,
        }
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.output_w as i32, self.output_h as i32)
    }

    pub fn position(&self) -> (i32, i32) {
        match self.image_size {
            Some((w, h)) => placement(self.output_w, self.output_h, w, h),
            None => (0, 0),
        }
    }

    pub fn damage_all(&mut self) {
        let b = self.bounds();
        self.damage.add(b, b);
    }

    /// Shows nothing (black).
    pub fn clear(&mut self) {
        self.image_size = None;
        self.content = None;
        self.damage_all();
    }

    /// The backend has copied the current buffer: give it back to the client.
    pub fn release_content(&mut self) {
        self.content = None;
    }
}
