//! Software composition: the client's last buffer (kept as an XRGB image) onto a black
//! output. No protocol types here.

use crate::damage::Rect;

/// Opaque black in XRGB8888.
pub const BLACK: u32 = 0xff00_0000;

/// Pixel formats the compositor accepts from wl_shm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Xrgb8888,
    /// Premultiplied alpha: over a black background this is just its colour channels.
    Argb8888,
}

/// A copy of the client's buffer, one `0xAARRGGBB` word per pixel (alpha forced to 0xff).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Image {
    pub fn new(width: u32, height: u32) -> Image {
        Image {
            width,
            height,
            pixels: vec![BLACK; width as usize * height as usize],
        }
    }

    pub fn rect(&self) -> Rect {
        Rect::new(0, 0, self.width as i32, self.height as i32)
    }
}

/// Copies the `rects` (buffer coordinates) of a wl_shm buffer into `img`.
///
/// If the buffer size differs from `img`, `img` is resized and copied whole. Returns
/// the rectangles that actually changed (buffer coordinates). A buffer whose bytes do
/// not cover `stride * height` copies nothing.
pub fn copy_from_shm(
    img: &mut Image,
    src: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    _format: PixelFormat,
    rects: &[Rect],
) -> Vec<Rect> {
    let row_bytes = width as usize * 4;
    if stride < row_bytes || src.len() < stride.saturating_mul(height as usize) {
        return Vec::new();
    }
    let full = Rect::new(0, 0, width as i32, height as i32);
    let rects: Vec<Rect> = if img.width != width || img.height != height {
        *img = Image::new(width, height);
        vec![full]
    } else {
        rects.iter().filter_map(|r| r.intersect(&full)).collect()
    };
    for r in &rects {
        for y in r.y..r.y + r.h {
            let row = &src[y as usize * stride..];
            let dst_row = &mut img.pixels[y as usize * width as usize..];
            for x in r.x..r.x + r.w {
                let o = x as usize * 4;
                let v = u32::from_le_bytes([row[o], row[o + 1], row[o + 2], row[o + 3]]);
                dst_row[x as usize] = v | BLACK;
            }
        }
    }
    rects
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

/// Redraws `rect` (output coordinates) of the target from the scene: `img` at `pos`, black
/// elsewhere.
pub fn render_rect(target: &mut Target<'_>, img: Option<(&Image, (i32, i32))>, rect: Rect) {
    let out = Rect::new(0, 0, target.width as i32, target.height as i32);
    let Some(rect) = rect.intersect(&out) else {
        return;
    };
    let img_rect = img.map(|(i, (px, py))| (i, i.rect().translate(px, py), px, py));
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
        // Span inside the image on this row, if any.
        let span = img_rect.and_then(|(i, ir, px, py)| {
            let line = Rect::new(rect.x, y, rect.w, 1);
            line.intersect(&ir).map(|s| (i, s, px, py))
        });
        if let Some((i, s, px, py)) = span {
            fill(row, x, s.x, BLACK);
            let src_row = (y - py) as usize * i.width as usize;
            for sx in s.x..s.x + s.w {
                let v = i.pixels[src_row + (sx - px) as usize];
                put(row, sx, v);
            }
            x = s.x + s.w;
        }
        fill(row, x, x_end, BLACK);
    }
}

fn put(row: &mut [u8], x: i32, v: u32) {
    let o = x as usize * 4;
    row[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn fill(row: &mut [u8], x0: i32, x1: i32, v: u32) {
    let b = v.to_le_bytes();
    for x in x0..x1 {
        let o = x as usize * 4;
        row[o..o + 4].copy_from_slice(&b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shm(w: u32, h: u32, f: impl Fn(u32, u32) -> u32) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&f(x, y).to_le_bytes());
            }
            v.extend_from_slice(&[0xee; 8]); // stride padding
        }
        v
    }

    #[test]
    fn copy_whole_then_damage_only() {
        let mut img = Image::default();
        let src = shm(4, 3, |x, y| x + 10 * y);
        let changed = copy_from_shm(&mut img, &src, 4, 3, 24, PixelFormat::Xrgb8888, &[]);
        assert_eq!(changed, vec![Rect::new(0, 0, 4, 3)]);
        assert_eq!(img.pixels[5], 0xff00_000b);
        let src2 = shm(4, 3, |_, _| 0x00ab_cdef);
        let changed = copy_from_shm(
            &mut img,
            &src2,
            4,
            3,
            24,
            PixelFormat::Argb8888,
            &[Rect::new(1, 1, 1, 1), Rect::new(3, 2, 9, 9)],
        );
        assert_eq!(changed, vec![Rect::new(1, 1, 1, 1), Rect::new(3, 2, 1, 1)]);
        assert_eq!(img.pixels[5], 0xffab_cdef);
        assert_eq!(img.pixels[4], 0xff00_000a); // undamaged pixel kept
        assert_eq!(img.pixels[11], 0xffab_cdef);
    }

    #[test]
    fn short_buffer_is_ignored() {
        let mut img = Image::default();
        assert!(copy_from_shm(&mut img, &[0; 10], 4, 3, 16, PixelFormat::Xrgb8888, &[]).is_empty());
    }

    #[test]
    fn placement_centres_or_pins() {
        assert_eq!(placement(100, 50, 100, 50), (0, 0));
        assert_eq!(placement(100, 50, 60, 20), (20, 15));
        assert_eq!(placement(100, 50, 200, 20), (0, 15));
    }

    #[test]
    fn render_only_touches_damage() {
        let mut img = Image::new(2, 2);
        img.pixels = vec![0xff11_1111, 0xff22_2222, 0xff33_3333, 0xff44_4444];
        let mut buf = vec![0u8; 4 * 4 * 4];
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 4,
            stride: 16,
        };
        render_rect(&mut t, Some((&img, (1, 1))), Rect::new(0, 0, 2, 2));
        let px = |b: &[u8], x: usize, y: usize| {
            u32::from_le_bytes([
                b[y * 16 + x * 4],
                b[y * 16 + x * 4 + 1],
                b[y * 16 + x * 4 + 2],
                b[y * 16 + x * 4 + 3],
            ])
        };
        assert_eq!(px(&buf, 0, 0), BLACK);
        assert_eq!(px(&buf, 1, 1), 0xff11_1111);
        assert_eq!(px(&buf, 2, 2), 0); // outside the damage: untouched
        let mut t = Target {
            bytes: &mut buf,
            width: 4,
            height: 4,
            stride: 16,
        };
        render_rect(&mut t, Some((&img, (1, 1))), Rect::new(0, 0, 4, 4));
        assert_eq!(px(&buf, 2, 2), 0xff44_4444);
        assert_eq!(px(&buf, 3, 3), BLACK);
        assert_eq!(px(&buf, 2, 1), 0xff22_2222);
    }
}
