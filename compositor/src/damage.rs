//! Damage tracking: rectangles in output pixel coordinates. No protocol types here.

/// An axis-aligned rectangle; `w`/`h` ≤ 0 means empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub const fn new(x: i32, y: i32, w: i32, h: i32) -> Rect {
        Rect { x, y, w, h }
    }

    pub fn is_empty(&self) -> bool {
        self.w <= 0 || self.h <= 0
    }

    fn right(&self) -> i64 {
        i64::from(self.x) + i64::from(self.w)
    }

    fn bottom(&self) -> i64 {
        i64::from(self.y) + i64::from(self.h)
    }

    /// The overlap of two rectangles, if any.
    pub fn intersect(&self, other: &Rect) -> Option<Rect> {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        if i64::from(x0) >= x1 || i64::from(y0) >= y1 {
            return None;
        }
        Some(Rect::new(
            x0,
            y0,
            (x1 - i64::from(x0)) as i32,
            (y1 - i64::from(y0)) as i32,
        ))
    }

    /// The smallest rectangle containing both.
    pub fn bounding(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x0 = self.x.min(other.x);
        let y0 = self.y.min(other.y);
        let x1 = self.right().max(other.right());
        let y1 = self.bottom().max(other.bottom());
        Rect::new(
            x0,
            y0,
            (x1 - i64::from(x0)) as i32,
            (y1 - i64::from(y0)) as i32,
        )
    }

    pub fn contains(&self, other: &Rect) -> bool {
        other.is_empty()
            || (self.x <= other.x
                && self.y <= other.y
                && self.right() >= other.right()
                && self.bottom() >= other.bottom())
    }

    /// Moves the rectangle by (dx, dy).
    pub fn translate(&self, dx: i32, dy: i32) -> Rect {
        Rect::new(
            self.x.saturating_add(dx),
            self.y.saturating_add(dy),
            self.w,
            self.h,
        )
    }
}

/// Above this many rectangles the list collapses into its bounding box.
const MAX_RECTS: usize = 16;

/// A set of damaged rectangles, clipped to the output.
#[derive(Clone, Debug, Default)]
pub struct DamageList {
    rects: Vec<Rect>,
}

impl DamageList {
    pub fn new() -> DamageList {
        DamageList::default()
    }

    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    #[cfg(test)]
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    /// Adds a rectangle (clipped to `bounds`), dropping rectangles it covers.
    pub fn add(&mut self, rect: Rect, bounds: Rect) {
        let Some(r) = rect.intersect(&bounds) else {
            return;
        };
        if self.rects.iter().any(|e| e.contains(&r)) {
            return;
        }
        self.rects.retain(|e| !r.contains(e));
        self.rects.push(r);
        if self.rects.len() > MAX_RECTS {
            let bb = self
                .rects
                .iter()
                .fold(Rect::new(0, 0, 0, 0), |acc, r| acc.bounding(r));
            self.rects.clear();
            self.rects.push(bb);
        }
    }

    pub fn take(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.rects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Rect = Rect::new(0, 0, 100, 50);

    #[test]
    fn intersect_and_bounding() {
        let a = Rect::new(0, 0, 10, 10);
        let b = Rect::new(5, 5, 10, 10);
        assert_eq!(a.intersect(&b), Some(Rect::new(5, 5, 5, 5)));
        assert_eq!(a.intersect(&Rect::new(10, 0, 5, 5)), None);
        assert_eq!(a.bounding(&b), Rect::new(0, 0, 15, 15));
        assert_eq!(Rect::new(0, 0, 0, 0).bounding(&b), b);
        assert!(a.contains(&Rect::new(2, 2, 3, 3)));
        assert!(!a.contains(&b));
    }

    #[test]
    fn add_clips_and_dedups() {
        let mut d = DamageList::new();
        d.add(Rect::new(-10, -10, 20, 20), B);
        assert_eq!(d.rects(), &[Rect::new(0, 0, 10, 10)]);
        d.add(Rect::new(2, 2, 2, 2), B);
        assert_eq!(d.rects().len(), 1);
        d.add(Rect::new(0, 0, 50, 50), B);
        assert_eq!(d.rects(), &[Rect::new(0, 0, 50, 50)]);
        d.add(Rect::new(200, 0, 5, 5), B);
        assert_eq!(d.rects().len(), 1);
        d.add(Rect::new(0, 0, 0, 5), B);
        assert_eq!(d.rects().len(), 1);
    }

    #[test]
    fn many_rects_collapse() {
        let mut d = DamageList::new();
        let added: Vec<Rect> = (0..20).map(|i| Rect::new(i * 4, i * 2, 2, 1)).collect();
        for r in &added {
            d.add(*r, B);
        }
        assert!(d.rects().len() <= MAX_RECTS);
        for r in &added {
            assert!(d.rects().iter().any(|e| e.contains(r)), "{r:?} lost");
        }
        assert!(!d.take().is_empty());
        assert!(d.is_empty());
    }
}
