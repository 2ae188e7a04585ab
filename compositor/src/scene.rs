//! What is on screen: the one toplevel's last buffer, centred on black. No protocol
//! types here, so both the protocol state and the backends can use it.

use crate::compose::{Image, placement};
use crate::damage::{DamageList, Rect};

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
