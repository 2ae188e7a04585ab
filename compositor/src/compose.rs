//! Software composition: the client's buffer onto a black output, copied straight from
//! the client's shm into the scanout buffer, damaged rows only. There is no intermediate
//! copy of the client's frame: each frame's pixels are read once (from shm) and written
//! once (into the scanout buffer). No protocol types here.

use crate::damage::Rect;

/// Opaque black in XRGB8888.
pub const BLACK: u32 = 0xff00_0000;

/// Pixel formats the compositor accepts from wl_shm. Both are copied byte for byte: the
/// scanout format is XRGB8888, whose X byte the display ignores, and premultiplied
/// ARGB8888 over a black background is exactly its colour channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Xrgb8888,
    Argb8888,
}

/// A client buffer's pixels, borrowed for one copy: little-endian 32-bit pixels in rows
/// of `stride` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Pixels<'a> {
    bytes: &'a [u8],
    pub width: u32,
    pub height: u32,
    stride: usize,
}

impl<'a> Pixels<'a> {
    /// `None` unless `bytes` holds `height` rows of `width` pixels at `stride` (the last
    /// row needs no padding) and the sizes are positive.
    pub fn new(bytes: &'a [u8], width: u32, height: u32, stride: usize) -> Option<Pixels<'a>> {
        let row = (width as usize).checked_mul(4)?;
        if width == 0 || height == 0 || stride < row {
            return None;
        }
        let needed = stride.checked_mul(height as usize - 1)?.checked_add(row)?;
        (bytes.len() >= needed).then_some(Pixels {
            bytes,
            width,
            height,
            stride,
        })
    }

    pub fn rect(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }

    /// Bytes of row `y`, pixels `x0..x1` (inside the buffer: the caller clipped).
    fn span(&self, y: i32, x0: i32, x1: i32) -> Option<&'a [u8]> {
        let start = y as usize * self.stride + x0 as usize * 4;
        self.bytes.get(start..start + (x1 - x0) as usize * 4)
    }
}

/// Where an image of `img` size sits on an output of `out` size: centred, and at the
/// top-left corner when it is larger than the output.
pub fn placement(out_w: u32, out_h: u32, img_w: u32, img_h: u32) -> (i32, i32) {
    let x = (i64::from(out_w) - i64::from(img_w)).max(0) / 2;
    let y = (i64::from(out_h) - i64::from(img_h)).max(0) / 2;
    (x as i32, y as i32)
}

/// Target buffer: XRGB8888 little-endian bytes with a row stride.
pub struct Target<'a> {
    pub bytes: &'a mut [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

/// Redraws `rect` (output coordinates) of the target from the scene: `img` at `pos`,
/// black elsewhere. Every pixel of `rect` is written once; nothing outside it is touched.
pub fn render_rect(target: &mut Target<'_>, img: Option<(&Pixels<'_>, (i32, i32))>, rect: Rect) {
    let out = Rect::new(0, 0, target.width as i32, target.height as i32);
    let Some(rect) = rect.intersect(&out) else {
        return;
    };
    let img_rect = img.map(|(p, (px, py))| (p, p.rect().translate(px, py), px, py));
    for y in rect.y..rect.y + rect.h {
        let row_start = y as usize * target.stride;
        let Some(row) = target
            .bytes
            .get_mut(row_start..row_start + target.width as usize * 4)
        else {
            return;
        };
        let mut x = rect.x;
        let x_end = rect.x + rect.w;
        // Span inside the image on this row, if any: one memcpy from the client's row.
        let span = img_rect.and_then(|(p, ir, px, py)| {
            let line = Rect::new(rect.x, y, rect.w, 1);
            line.intersect(&ir).map(|s| (p, s, px, py))
        });
        if let Some((p, s, px, py)) = span {
            fill(row, x, s.x, BLACK);
            let dst = &mut row[s.x as usize * 4..(s.x + s.w) as usize * 4];
            match p.span(y - py, s.x - px, s.x + s.w - px) {
                Some(src) => dst.copy_from_slice(src),
                // Unreachable for a validated `Pixels`; black beats a panic.
                None => fill(dst, 0, s.w, BLACK),
            }
            x = s.x + s.w;
        }
        fill(row, x, x_end, BLACK);
    }
}

fn fill(row: &mut [u8], x0: i32, x1: i32, v: u32) {
    let b = v.to_le_bytes();
    if let Some(span) = row.get_mut(x0.max(0) as usize * 4..x1.max(0) as usize * 4) {
        for px in span.chunks_exact_mut(4) {
            px.copy_from_slice(&b);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A `w`×`h` shm buffer with 8 bytes of stride padding per row.
    fn shm(w: u32, h: u32, f: impl Fn(u32, u32) -> u32) -> (Vec<u8>, usize) {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&f(x, y).to_le_bytes());
            }
            v.extend_from_slice(&[0xee; 8]);
        }
        (v, w as usize * 4 + 8)
    }

    fn px(b: &[u8], stride: usize, x: usize, y: usize) -> u32 {
        let o = y * stride + x * 4;
        u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }

    #[test]
    fn pixels_must_cover_their_rows() {
        let (src, stride) = shm(4, 3, |_, _| 0);
        assert!(Pixels::new(&src, 4, 3, stride).is_some());
        // The last row needs no stride padding.
        assert!(Pixels::new(&src[..src.len() - 8], 4, 3, stride).is_some());
        assert!(Pixels::new(&src[..src.len() - 9], 4, 3, stride).is_none());
        assert!(Pixels::new(&src, 4, 3, 15).is_none()); // stride < row
        assert!(Pixels::new(&src, 0, 3, stride).is_none());
        assert!(Pixels::new(&src, 4, 0, stride).is_none());
        assert!(Pixels::new(&[], u32::MAX, u32::MAX, usize::MAX).is_none());
    }

    #[test]
    fn placement_centres_or_pins() {
        assert_eq!(placement(100, 50, 100, 50), (0, 0));
        assert_eq!(placement(100, 50, 60, 20), (20, 15));
        assert_eq!(placement(100, 50, 200, 20), (0, 15));
    }

    #[test]
    fn damage_limited_copy_writes_only_damaged_rows() {
        // A client buffer the size of the output, copied straight into the target: only
        // the damaged rows change, they equal the client's rows byte for byte (its X/alpha
        // byte included: no conversion pass), every other row keeps its old bytes.
        const SENTINEL: u32 = 0x5a5a_5a5a;
        let (w, h) = (6u32, 5u32);
        let (src, stride) = shm(w, h, |x, y| 0x0010_0000 * y + x);
        let pixels = Pixels::new(&src, w, h, stride).unwrap();
        let tstride = w as usize * 4 + 4; // the scanout buffer has its own pitch
        let mut buf: Vec<u8> = SENTINEL
            .to_le_bytes()
            .iter()
            .copied()
            .cycle()
            .take(tstride * h as usize)
            .collect();
        let mut t = Target {
            bytes: &mut buf,
            width: w,
            height: h,
            stride: tstride,
        };
        render_rect(&mut t, Some((&pixels, (0, 0))), Rect::new(0, 1, 6, 2));
        for y in 0..h as usize {
            for x in 0..w as usize {
                let want = if (1..3).contains(&y) {
                    0x0010_0000 * y as u32 + x as u32
                } else {
                    SENTINEL
                };
                assert_eq!(px(&buf, tstride, x, y), want, "pixel ({x}, {y})");
            }
        }
        // The pitch padding is never written.
        assert_eq!(px(&buf, tstride, 6, 1), SENTINEL);
    }

    #[test]
    fn smaller_image_is_centred_on_black_inside_the_damage_only() {
        let (src, stride) = shm(2, 2, |x, y| 0x0011_1111 * (1 + x + 2 * y));
        let pixels = Pixels::new(&src, 2, 2, stride).unwrap();
        let mut buf = vec![0u8; 4 * 4 * 4];
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 4,
            stride: 16,
        };
        render_rect(&mut t, Some((&pixels, (1, 1))), Rect::new(0, 0, 2, 2));
        assert_eq!(px(&buf, 16, 0, 0), BLACK);
        assert_eq!(px(&buf, 16, 1, 1), 0x0011_1111);
        assert_eq!(px(&buf, 16, 2, 2), 0); // outside the damage: untouched
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 4,
            stride: 16,
        };
        render_rect(&mut t, Some((&pixels, (1, 1))), Rect::new(0, 0, 4, 4));
        assert_eq!(px(&buf, 16, 2, 2), 0x0044_4444);
        assert_eq!(px(&buf, 16, 3, 3), BLACK);
        assert_eq!(px(&buf, 16, 2, 1), 0x0022_2222);
        // No image: black.
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 4,
            stride: 16,
        };
        render_rect(&mut t, None, Rect::new(-5, -5, 100, 100));
        assert!(buf.chunks(4).all(|p| p == BLACK.to_le_bytes()));
    }

    #[test]
    fn image_larger_than_the_output_is_clipped() {
        let (src, stride) = shm(8, 8, |x, y| x + 16 * y);
        let pixels = Pixels::new(&src, 8, 8, stride).unwrap();
        let mut buf = vec![0u8; 4 * 3 * 4];
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 3,
            stride: 16,
        };
        render_rect(&mut t, Some((&pixels, (0, 0))), Rect::new(0, 0, 100, 100));
        assert_eq!(px(&buf, 16, 3, 2), 3 + 32);
    }
}
