//! Image scaling: a separable triangle filter whose width follows the scale factor
//! (area-averaging when shrinking, bilinear when enlarging), in fixed point.

use crate::geometry::SrcRect;

/// 8-bit RGB, rows packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn new(width: u32, height: u32) -> Rgb {
        Rgb {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        let o = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[o], self.data[o + 1], self.data[o + 2]]
    }
}

const SHIFT: u32 = 14;
const ONE: i32 = 1 << SHIFT;

/// For each output sample along one axis: first source index and fixed-point weights.
struct Taps {
    start: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

fn taps(src_len: u32, start: f64, len: f64, dst_len: u32) -> Taps {
    let scale = len / f64::from(dst_len.max(1));
    let support = scale.max(1.0);
    let max = src_len.saturating_sub(1) as i64;
    let mut t = Taps {
        start: Vec::with_capacity(dst_len as usize),
        weights: Vec::with_capacity(dst_len as usize),
    };
    for o in 0..dst_len {
        let center = start + (f64::from(o) + 0.5) * scale;
        let lo = ((center - support).floor() as i64).clamp(0, max);
        let hi = ((center + support).ceil() as i64).clamp(0, max);
        let mut ws: Vec<f64> = (lo..=hi)
            .map(|i| (1.0 - ((i as f64 + 0.5 - center).abs() / support)).max(0.0))
            .collect();
        let sum: f64 = ws.iter().sum();
        if sum <= 0.0 {
            // Centre outside the image: take the nearest pixel.
            let near = ((center.floor() as i64).clamp(0, max) - lo) as usize;
            ws = vec![0.0; ws.len()];
            if let Some(w) = ws.get_mut(near) {
                *w = 1.0;
            }
        }
        let sum: f64 = ws.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut fixed: Vec<i32> = ws
            .iter()
            .map(|w| (w / sum * f64::from(ONE)).round() as i32)
            .collect();
        // Make the weights add up to exactly ONE so flat areas stay flat.
        let err = ONE - fixed.iter().sum::<i32>();
        if let Some(m) = fixed.iter_mut().max_by_key(|w| **w) {
            *m += err;
        }
        // Trim zero weights at both ends.
        let first = fixed.iter().position(|w| *w != 0).unwrap_or(0);
        let last = fixed.iter().rposition(|w| *w != 0).unwrap_or(0);
        t.start.push(lo as usize + first);
        t.weights.push(fixed[first..=last].to_vec());
    }
    t
}

fn clamp_u8(v: i32) -> u8 {
    ((v + (ONE >> 1)) >> SHIFT).clamp(0, 255) as u8
}

/// Scales the `crop` region of `src` to `dst_w`×`dst_h`.
pub fn resize(src: &Rgb, crop: SrcRect, dst_w: u32, dst_h: u32) -> Rgb {
    let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
    if src.width == 0 || src.height == 0 {
        return Rgb::new(dst_w, dst_h);
    }
    let hx = taps(src.width, crop.x, crop.w, dst_w);
    let vy = taps(src.height, crop.y, crop.h, dst_h);
    // Source rows the vertical pass needs.
    let row_lo = vy.start.iter().copied().min().unwrap_or(0);
    let row_hi = vy
        .start
        .iter()
        .zip(&vy.weights)
        .map(|(s, w)| s + w.len())
        .max()
        .unwrap_or(0)
        .min(src.height as usize);
    let rows = row_hi.saturating_sub(row_lo);
    // Horizontal pass into an intermediate of dst_w × rows.
    let mut mid = vec![0u8; dst_w as usize * rows * 3];
    let sw = src.width as usize;
    for r in 0..rows {
        let srow = &src.data[(row_lo + r) * sw * 3..(row_lo + r + 1) * sw * 3];
        let mrow = &mut mid[r * dst_w as usize * 3..(r + 1) * dst_w as usize * 3];
        for (o, (s, ws)) in hx.start.iter().zip(&hx.weights).enumerate() {
            let (mut a, mut b, mut c) = (0i32, 0i32, 0i32);
            for (k, w) in ws.iter().enumerate() {
                let p = (s + k) * 3;
                a += i32::from(srow[p]) * w;
                b += i32::from(srow[p + 1]) * w;
                c += i32::from(srow[p + 2]) * w;
            }
            mrow[o * 3] = clamp_u8(a);
            mrow[o * 3 + 1] = clamp_u8(b);
            mrow[o * 3 + 2] = clamp_u8(c);
        }
    }
    // Vertical pass.
    let mut out = Rgb::new(dst_w, dst_h);
    let stride = dst_w as usize * 3;
    let mut acc = vec![0i32; stride];
    for (o, (s, ws)) in vy.start.iter().zip(&vy.weights).enumerate() {
        acc.iter_mut().for_each(|v| *v = 0);
        for (k, w) in ws.iter().enumerate() {
            let r = s + k - row_lo;
            let mrow = &mid[r * stride..(r + 1) * stride];
            for (a, m) in acc.iter_mut().zip(mrow) {
                *a += i32::from(*m) * w;
            }
        }
        for (d, a) in out.data[o * stride..(o + 1) * stride].iter_mut().zip(&acc) {
            *d = clamp_u8(*a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(img: &Rgb) -> SrcRect {
        SrcRect {
            x: 0.0,
            y: 0.0,
            w: f64::from(img.width),
            h: f64::from(img.height),
        }
    }

    #[test]
    fn identity_at_one_to_one() {
        let mut img = Rgb::new(5, 4);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 7 % 251) as u8;
        }
        assert_eq!(resize(&img, full(&img), 5, 4), img);
        // A 1:1 crop.
        let c = resize(
            &img,
            SrcRect {
                x: 1.0,
                y: 1.0,
                w: 3.0,
                h: 2.0,
            },
            3,
            2,
        );
        assert_eq!(c.get(0, 0), img.get(1, 1));
        assert_eq!(c.get(2, 1), img.get(3, 2));
    }

    #[test]
    fn flat_stays_flat() {
        let mut img = Rgb::new(37, 23);
        img.data.iter_mut().for_each(|v| *v = 200);
        for (w, h) in [(10, 7), (80, 50), (1, 1), (37, 3)] {
            let r = resize(&img, full(&img), w, h);
            assert!(r.data.iter().all(|v| *v == 200), "{w}x{h}");
        }
    }

    #[test]
    fn halving_averages_pairs() {
        let mut img = Rgb::new(4, 1);
        img.data = vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 50, 50, 50];
        let r = resize(&img, full(&img), 2, 1);
        // Triangle filter of radius 2 centred between each pair.
        assert!(
            r.get(0, 0)[0] > 30 && r.get(0, 0)[0] < 110,
            "{:?}",
            r.get(0, 0)
        );
        assert!(
            r.get(1, 0)[0] > 90 && r.get(1, 0)[0] < 170,
            "{:?}",
            r.get(1, 0)
        );
    }
}
