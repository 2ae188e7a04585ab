//! Image scaling: a separable triangle filter whose width follows the scale factor
//! (area-averaging when shrinking, bilinear when enlarging), in fixed point.
//!
//! The guest runs this under TCG, where every executed instruction and memory access is
//! emulated, so the layout is chosen for few of both: the taps of all output samples of
//! an axis in flat arrays padded to one common length (2 when enlarging, the usual case
//! for the shipped photos), with the common lengths 1 and 2 unrolled; the horizontal pass
//! kept only for the few source rows the current output row needs (a ring that output
//! rows sharing source rows reuse); and the vertical pass writing XRGB words straight
//! into the caller's row (the frame, or the wl_shm buffer) — no intermediate image of the
//! output size.
//!
//! The arithmetic is exactly that of the straightforward two-pass filter kept as the test
//! reference below (same f64 weights, same rounding to 8 bits between the passes), so the
//! frames are the same bit for bit.

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
/// The alpha byte of every XRGB word we write (opaque, as the compositor expects).
const OPAQUE: u32 = 0xff00_0000;

/// One output sample's filter along an axis: the source indices `start..start + n` and
/// their fixed-point weights (which add up to [`ONE`]), zero weights trimmed at both ends.
/// `weights` is the caller's scratch space, so computing an axis allocates nothing per
/// sample.
fn sample_taps(
    src_len: u32,
    center: f64,
    support: f64,
    ws: &mut Vec<f64>,
    fixed: &mut Vec<i32>,
) -> usize {
    let max = src_len.saturating_sub(1) as i64;
    let lo = ((center - support).floor() as i64).clamp(0, max);
    let hi = ((center + support).ceil() as i64).clamp(0, max);
    ws.clear();
    ws.extend((lo..=hi).map(|i| (1.0 - ((i as f64 + 0.5 - center).abs() / support)).max(0.0)));
    let sum: f64 = ws.iter().sum();
    if sum <= 0.0 {
        // Centre outside the image: take the nearest pixel.
        let near = ((center.floor() as i64).clamp(0, max) - lo) as usize;
        ws.iter_mut().for_each(|w| *w = 0.0);
        if let Some(w) = ws.get_mut(near) {
            *w = 1.0;
        }
    }
    let sum: f64 = ws.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    fixed.clear();
    fixed.extend(ws.iter().map(|w| (w / sum * f64::from(ONE)).round() as i32));
    // Make the weights add up to exactly ONE so flat areas stay flat.
    let err = ONE - fixed.iter().sum::<i32>();
    if let Some(m) = fixed.iter_mut().max_by_key(|w| **w) {
        *m += err;
    }
    // Trim zero weights at both ends.
    let first = fixed.iter().position(|w| *w != 0).unwrap_or(0);
    let last = fixed.iter().rposition(|w| *w != 0).unwrap_or(0);
    fixed.truncate(last + 1);
    fixed.drain(..first.min(fixed.len()));
    lo as usize + first
}

/// The filters of every output sample along one axis, flat: sample `o` reads the `len`
/// source samples from `start[o]` with weights `weights[o * len..][..len]`. Samples with
/// fewer taps are zero-padded, their window moved left where it would run past the
/// source's end (a zero weight adds nothing, so the sum is unchanged).
struct Taps {
    start: Vec<usize>,
    weights: Vec<i32>,
    len: usize,
    /// No negative weight (the triangle filter has none, but the rounding fix-up could
    /// make one for a filter of hundreds of taps): the two-tap loops need no clamp.
    non_negative: bool,
}

fn taps(src_len: u32, start: f64, len: f64, dst_len: u32) -> Taps {
    let scale = len / f64::from(dst_len.max(1));
    let support = scale.max(1.0);
    let (mut ws, mut fixed) = (Vec::new(), Vec::new());
    // First the trimmed filters (start, offset into `flat`, count) ...
    let mut raw = Vec::with_capacity(dst_len as usize);
    let mut flat: Vec<i32> = Vec::with_capacity(dst_len as usize * 2);
    for o in 0..dst_len {
        let center = start + (f64::from(o) + 0.5) * scale;
        let s = sample_taps(src_len, center, support, &mut ws, &mut fixed);
        raw.push((s, flat.len(), fixed.len()));
        flat.extend_from_slice(&fixed);
    }
    // ... then padded to the longest: every window still lies inside the source, whose
    // length is at least that of any one filter.
    let pad = raw.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    let src_len = src_len as usize;
    let mut t = Taps {
        start: Vec::with_capacity(raw.len()),
        weights: vec![0; raw.len() * pad],
        len: pad,
        non_negative: flat.iter().all(|w| *w >= 0),
    };
    for (o, &(s, off, n)) in raw.iter().enumerate() {
        let window = s.min(src_len.saturating_sub(pad));
        t.start.push(window);
        let at = o * pad + (s - window);
        if let (Some(dst), Some(src)) = (t.weights.get_mut(at..at + n), flat.get(off..off + n)) {
            dst.copy_from_slice(src);
        }
    }
    t
}

/// Rounds a fixed-point channel sum to 8 bits.
fn channel(v: i32) -> u64 {
    ((v + (ONE >> 1)) >> SHIFT).clamp(0, 255) as u64
}

// A horizontally scaled pixel is kept as one u64 with red at bit 32, green at 16 and blue
// at 0 ("spread"): red and blue, masked out together, can be multiplied by a weight and
// summed in one 64-bit operation, as a sum of two 8-bit values weighted by non-negative
// weights adding up to ONE stays below 2^22 and so never carries into the other lane.
// Under TCG that halves the emulated multiplies and shifts of the two hot loops.

/// The red and blue lanes of a spread pixel.
const RB: u64 = 0x0000_00ff_0000_00ff;
/// Half of ONE in both lanes: the rounding of `(sum + ONE / 2) >> SHIFT`.
const HALF_RB: u64 = (1 << (SHIFT - 1)) << 32 | 1 << (SHIFT - 1);
const HALF: u64 = 1 << (SHIFT - 1);

fn spread(r: u64, g: u64, b: u64) -> u64 {
    r << 32 | g << 16 | b
}

/// The three channels of a spread pixel.
fn unspread(m: u64) -> [i32; 3] {
    [
        (m >> 32 & 0xff) as i32,
        (m >> 16 & 0xff) as i32,
        (m & 0xff) as i32,
    ]
}

/// A spread pixel as an opaque XRGB word.
fn to_xrgb(m: u64) -> u32 {
    OPAQUE | (m >> 16 & 0xff_0000) as u32 | (m >> 8 & 0xff00) as u32 | (m & 0xff) as u32
}

/// `(a * w0 + b * w1 + ONE / 2) >> SHIFT` per channel of two spread pixels, for weights
/// that are non-negative and add up to ONE (so every result is 0..=255 without a clamp),
/// as an XRGB word.
fn blend2(a: u64, b: u64, w0: u64, w1: u64) -> u32 {
    let rb = (a & RB) * w0 + (b & RB) * w1 + HALF_RB;
    let g = (a >> 16 & 0xff) * w0 + (b >> 16 & 0xff) * w1 + HALF;
    pack2(rb, g)
}

/// The XRGB word of rounded two-lane red/blue and green sums (see [`blend2`]).
fn pack2(rb: u64, g: u64) -> u32 {
    OPAQUE | (rb >> 30 & 0xff_0000) as u32 | (g >> 6 & 0xff00) as u32 | (rb >> SHIFT & 0xff) as u32
}

/// Horizontal pass of one source row (already spread, see [`spread_row`]) into `out`
/// (one spread pixel per output sample; the 8-bit rounding here is the reference's
/// intermediate image).
fn horizontal(src: &[u64], h: &Taps, out: &mut [u64]) {
    match h.len {
        1 => {
            // 1:1 or a single nearest pixel per sample: the weight is ONE.
            for (o, &s) in out.iter_mut().zip(&h.start) {
                keep_scalar();
                *o = src.get(s).copied().unwrap_or(0);
            }
        }
        2 if h.non_negative => {
            for ((o, &s), w) in out.iter_mut().zip(&h.start).zip(h.weights.chunks_exact(2)) {
                keep_scalar();
                let (w0, w1) = (w[0] as u64, w[1] as u64);
                let (Some(&a), Some(&b)) = (src.get(s), src.get(s + 1)) else {
                    continue;
                };
                let rb = (a & RB) * w0 + (b & RB) * w1 + HALF_RB;
                let g = (a >> 16 & 0xff) * w0 + (b >> 16 & 0xff) * w1 + HALF;
                *o = (rb >> SHIFT & RB) | (g >> SHIFT) << 16;
            }
        }
        3 if h.non_negative => {
            // Shrinking by up to 1.5 (a 640×960 photo on 1280×800): three taps.
            for ((o, &s), w) in out.iter_mut().zip(&h.start).zip(h.weights.chunks_exact(3)) {
                keep_scalar();
                let (w0, w1, w2) = (w[0] as u64, w[1] as u64, w[2] as u64);
                let (Some(&a), Some(&b), Some(&c)) = (src.get(s), src.get(s + 1), src.get(s + 2))
                else {
                    continue;
                };
                let rb = (a & RB) * w0 + (b & RB) * w1 + (c & RB) * w2 + HALF_RB;
                let g =
                    (a >> 16 & 0xff) * w0 + (b >> 16 & 0xff) * w1 + (c >> 16 & 0xff) * w2 + HALF;
                *o = (rb >> SHIFT & RB) | (g >> SHIFT) << 16;
            }
        }
        n if h.non_negative => {
            // Shrinking: the same two-lane sums over n taps.
            for ((o, &s), ws) in out.iter_mut().zip(&h.start).zip(h.weights.chunks_exact(n)) {
                keep_scalar();
                let (mut rb, mut g) = (HALF_RB, HALF);
                for (&m, &w) in src.get(s..s + n).unwrap_or(&[]).iter().zip(ws) {
                    let w = w as u64;
                    rb += (m & RB) * w;
                    g += (m >> 16 & 0xff) * w;
                }
                *o = (rb >> SHIFT & RB) | (g >> SHIFT) << 16;
            }
        }
        n => {
            for ((o, &s), ws) in out.iter_mut().zip(&h.start).zip(h.weights.chunks_exact(n)) {
                let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
                for (&m, w) in src.get(s..s + n).unwrap_or(&[]).iter().zip(ws) {
                    let [pr, pg, pb] = unspread(m);
                    r += pr * w;
                    g += pg * w;
                    b += pb * w;
                }
                *o = spread(channel(r), channel(g), channel(b));
            }
        }
    }
}

/// One row of RGB bytes as spread pixels: each source pixel is read once here instead of
/// once per output sample that uses it (about 2.7 when enlarging 451 to 1203 pixels).
fn spread_row(srow: &[u8], out: &mut Vec<u64>) {
    out.clear();
    for p in srow.chunks_exact(3) {
        keep_scalar();
        out.push(spread(u64::from(p[0]), u64::from(p[1]), u64::from(p[2])));
    }
}

/// Called in the body of each per-pixel loop: keeps LLVM from vectorising it. The
/// guest's CPU model (qemu64) has SSE2, so vectorised loops are what the compiler picks,
/// but TCG emulates SSE far more slowly than plain integer code — measured with
/// `examples/frame_bench.rs` under qemu-x86_64 10.0: the same scaler builds to a 2–3×
/// slower frame vectorised. An empty `black_box` emits no instruction; it is only a
/// barrier the vectoriser does not cross.
#[inline(always)]
fn keep_scalar() {
    std::hint::black_box(());
}

/// Scales the `crop` region of an image to `width`×`height`, one output row at a time,
/// as opaque XRGB words (see the module comment).
pub struct Resizer<'a> {
    src: &'a Rgb,
    h: Taps,
    v: Taps,
    width: usize,
    height: usize,
    /// Horizontally scaled source rows: slot `r % v.len` holds source row `tags[slot]`.
    /// The rows one output row needs are `v.len` consecutive ones, so they never evict
    /// each other; the next output row usually needs the same ones or one more.
    rows: Vec<u64>,
    tags: Vec<Option<usize>>,
    /// The source row being scaled horizontally, spread.
    line: Vec<u64>,
}

impl<'a> Resizer<'a> {
    /// A scaler of the `crop` region of `src` to `dst_w`×`dst_h` (each at least 1).
    pub fn new(src: &'a Rgb, crop: SrcRect, dst_w: u32, dst_h: u32) -> Resizer<'a> {
        let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
        let empty = src.width == 0 || src.height == 0;
        let (h, v) = if empty {
            let none = || Taps {
                start: Vec::new(),
                weights: Vec::new(),
                len: 1,
                non_negative: true,
            };
            (none(), none())
        } else {
            (
                taps(src.width, crop.x, crop.w, dst_w),
                taps(src.height, crop.y, crop.h, dst_h),
            )
        };
        let ring = if empty { 0 } else { v.len };
        Resizer {
            src,
            width: dst_w as usize,
            height: dst_h as usize,
            rows: vec![0; ring * dst_w as usize],
            tags: vec![None; ring],
            line: Vec::with_capacity(src.width as usize),
            h,
            v,
        }
    }

    pub fn width(&self) -> u32 {
        self.width as u32
    }

    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// Makes sure ring slot `r % len` holds source row `r`, scaled horizontally.
    fn source_row(&mut self, r: usize) {
        let slot = r % self.v.len;
        if self.tags.get(slot).copied().flatten() != Some(r) {
            let sw = self.src.width as usize * 3;
            let srow = self.src.data.get(r * sw..(r + 1) * sw).unwrap_or(&[]);
            spread_row(srow, &mut self.line);
            if let Some(out) = self
                .rows
                .get_mut(slot * self.width..(slot + 1) * self.width)
            {
                horizontal(&self.line, &self.h, out);
            }
            if let Some(t) = self.tags.get_mut(slot) {
                *t = Some(r);
            }
        }
    }

    /// Writes output row `y` into `out` (its first `min(out.len(), width)` pixels). A row
    /// outside the output, or an empty source image, gives black.
    pub fn row(&mut self, y: u32, out: &mut [u32]) {
        let y = y as usize;
        let n = out.len().min(self.width);
        let out = &mut out[..n];
        let (len, w) = (self.v.len, self.width);
        let Some(&start) = self.v.start.get(y).filter(|_| !self.tags.is_empty()) else {
            out.iter_mut().for_each(|p| *p = OPAQUE);
            return;
        };
        for r in start..start + len {
            self.source_row(r);
        }
        let Some(ws) = self.v.weights.get(y * len..(y + 1) * len) else {
            return;
        };
        // Tap k reads source row start + k, which is in slot (start + k) % len now.
        let row = |k: usize| -> &[u64] {
            let s = (start + k) % len;
            self.rows.get(s * w..s * w + n).unwrap_or(&[])
        };
        match (len, ws) {
            (1, _) | (2, [_, 0]) => {
                // The weight is ONE: the horizontal pass already rounded this row.
                for (o, &m) in out.iter_mut().zip(row(0)) {
                    keep_scalar();
                    *o = to_xrgb(m);
                }
            }
            (2, &[w0, w1]) if w0 >= 0 && w1 >= 0 => {
                let (w0, w1) = (w0 as u64, w1 as u64);
                for ((o, &a), &b) in out.iter_mut().zip(row(0)).zip(row(1)) {
                    keep_scalar();
                    *o = blend2(a, b, w0, w1);
                }
            }
            (3, &[w0, w1, w2]) if self.v.non_negative => {
                let (w0, w1, w2) = (w0 as u64, w1 as u64, w2 as u64);
                let abc = row(0).iter().zip(row(1)).zip(row(2));
                for (o, ((&a, &b), &c)) in out.iter_mut().zip(abc) {
                    keep_scalar();
                    let rb = (a & RB) * w0 + (b & RB) * w1 + (c & RB) * w2 + HALF_RB;
                    let g = (a >> 16 & 0xff) * w0
                        + (b >> 16 & 0xff) * w1
                        + (c >> 16 & 0xff) * w2
                        + HALF;
                    *o = pack2(rb, g);
                }
            }
            _ if self.v.non_negative => {
                // Shrinking: the same two-lane sums over the taps' rows.
                let rows: Vec<&[u64]> = (0..len).map(row).collect();
                for (x, o) in out.iter_mut().enumerate() {
                    keep_scalar();
                    let (mut rb, mut g) = (HALF_RB, HALF);
                    for (src, &wk) in rows.iter().zip(ws) {
                        let m = src.get(x).copied().unwrap_or(0);
                        let wk = wk as u64;
                        rb += (m & RB) * wk;
                        g += (m >> 16 & 0xff) * wk;
                    }
                    *o = pack2(rb, g);
                }
            }
            _ => {
                let rows: Vec<&[u64]> = (0..len).map(row).collect();
                for (x, o) in out.iter_mut().enumerate() {
                    let (mut r, mut g, mut b) = (0i32, 0i32, 0i32);
                    for (src, wk) in rows.iter().zip(ws) {
                        let [pr, pg, pb] = unspread(src.get(x).copied().unwrap_or(0));
                        r += pr * wk;
                        g += pg * wk;
                        b += pb * wk;
                    }
                    *o = to_xrgb(spread(channel(r), channel(g), channel(b)));
                }
            }
        }
    }

    /// Writes output rows `y` and `y + 1` into `out_a` and `out_b` in one pass when both
    /// blend the same two source rows (enlarging more than 2×, most consecutive output
    /// rows do): each source pixel pair is loaded and unpacked once for both. False, with
    /// nothing written, when they do not; [`Resizer::row`] then does each row.
    pub fn row_pair(&mut self, y: u32, out_a: &mut [u32], out_b: &mut [u32]) -> bool {
        let y = y as usize;
        let len = self.v.len;
        if len != 2 || self.tags.is_empty() {
            return false;
        }
        let (Some(&start), Some(&next)) = (self.v.start.get(y), self.v.start.get(y + 1)) else {
            return false;
        };
        let (Some(&[w0, w1]), Some(&[v0, v1])) = (
            self.v.weights.get(y * 2..y * 2 + 2),
            self.v.weights.get(y * 2 + 2..y * 2 + 4),
        ) else {
            return false;
        };
        if start != next || [w0, w1, v0, v1].iter().any(|w| *w < 0) {
            return false;
        }
        self.source_row(start);
        self.source_row(start + 1);
        let (w, n) = (self.width, out_a.len().min(out_b.len()).min(self.width));
        let row = |r: usize| -> &[u64] {
            let s = r % len;
            self.rows.get(s * w..s * w + n).unwrap_or(&[])
        };
        let (w0, w1, v0, v1) = (w0 as u64, w1 as u64, v0 as u64, v1 as u64);
        let pixels = out_a.iter_mut().zip(out_b.iter_mut());
        for ((oa, ob), (&a, &b)) in pixels.zip(row(start).iter().zip(row(start + 1))) {
            keep_scalar();
            let (a_rb, b_rb) = (a & RB, b & RB);
            let (a_g, b_g) = (a >> 16 & 0xff, b >> 16 & 0xff);
            *oa = pack2(a_rb * w0 + b_rb * w1 + HALF_RB, a_g * w0 + b_g * w1 + HALF);
            *ob = pack2(a_rb * v0 + b_rb * v1 + HALF_RB, a_g * v0 + b_g * v1 + HALF);
        }
        true
    }
}

/// Scales the `crop` region of `src` to `dst_w`×`dst_h`.
pub fn resize(src: &Rgb, crop: SrcRect, dst_w: u32, dst_h: u32) -> Rgb {
    let mut rs = Resizer::new(src, crop, dst_w, dst_h);
    let mut out = Rgb::new(rs.width(), rs.height());
    let mut line = vec![0u32; rs.width];
    for (y, dst) in out.data.chunks_exact_mut(rs.width * 3).enumerate() {
        rs.row(y as u32, &mut line);
        for (d, p) in dst.chunks_exact_mut(3).zip(&line) {
            d.copy_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8]);
        }
    }
    out
}

/// The straightforward two-pass filter the fast one replaced, kept as the tests' reference
/// for bit-identity: nested weight vectors, the whole intermediate image, an RGB output.
#[cfg(test)]
pub(crate) mod reference {
    use super::{ONE, Rgb, SHIFT};
    use crate::geometry::SrcRect;

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
            let err = ONE - fixed.iter().sum::<i32>();
            if let Some(m) = fixed.iter_mut().max_by_key(|w| **w) {
                *m += err;
            }
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

    pub(crate) fn resize(src: &Rgb, crop: SrcRect, dst_w: u32, dst_h: u32) -> Rgb {
        let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
        if src.width == 0 || src.height == 0 {
            return Rgb::new(dst_w, dst_h);
        }
        let hx = taps(src.width, crop.x, crop.w, dst_w);
        let vy = taps(src.height, crop.y, crop.h, dst_h);
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

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

    /// Enlarging pads every filter to two taps; at the right edge the window moves left
    /// (zero weight first) instead of reading past the row.
    #[test]
    fn padded_windows_stay_inside_the_source() {
        for (src, dst) in [(3u32, 10u32), (1, 7), (2, 2), (5, 3), (451, 1280)] {
            let t = taps(src, 0.0, f64::from(src), dst);
            assert_eq!(t.start.len(), dst as usize);
            for (o, s) in t.start.iter().enumerate() {
                assert!(s + t.len <= src as usize, "{src}->{dst} sample {o}");
                let sum: i32 = t.weights[o * t.len..(o + 1) * t.len].iter().sum();
                assert_eq!(sum, ONE, "{src}->{dst} sample {o}");
            }
        }
        assert_eq!(taps(451, 0.0, 451.0, 1280).len, 2);
    }

    /// Rows asked for out of order (the ring must not hand back another row's pixels)
    /// give what rows asked for in order give.
    #[test]
    fn rows_in_any_order_are_the_same() {
        let mut img = Rgb::new(9, 13);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 31 % 256) as u8;
        }
        for (w, h) in [(20, 40), (4, 5), (9, 13)] {
            let mut rs = Resizer::new(&img, full(&img), w, h);
            let mut ordered = vec![0u32; (w * h) as usize];
            for (y, row) in ordered.chunks_exact_mut(w as usize).enumerate() {
                rs.row(y as u32, row);
            }
            let mut rs = Resizer::new(&img, full(&img), w, h);
            let mut line = vec![0u32; w as usize];
            for y in (0..h).rev().chain([3, 0, 2]) {
                rs.row(y, &mut line);
                let want = &ordered[(y * w) as usize..((y + 1) * w) as usize];
                assert_eq!(line, want, "{w}x{h} row {y}");
            }
        }
    }

    /// The two-lane blend is the per-channel formula for every pair of values.
    #[test]
    fn blend2_is_the_per_channel_sum() {
        for w1 in [0u64, 1, 5461, 8192, 10923, 16383, 16384] {
            let w0 = ONE as u64 - w1;
            for a in 0..=255u64 {
                for b in (0..=255u64).step_by(3) {
                    let want = ((a * w0 + b * w1 + HALF) >> SHIFT) as u32;
                    let got = blend2(spread(a, b, 255 - a), spread(b, a, 255 - b), w0, w1);
                    let other = ((b * w0 + a * w1 + HALF) >> SHIFT) as u32;
                    let third = (((255 - a) * w0 + (255 - b) * w1 + HALF) >> SHIFT) as u32;
                    assert_eq!(
                        got,
                        OPAQUE | want << 16 | other << 8 | third,
                        "{a} {b} {w1}"
                    );
                }
            }
        }
    }

    /// Two rows in one pass are the two rows one at a time, and pairs that do not share
    /// their source rows are refused.
    #[test]
    fn row_pairs_are_rows() {
        let mut img = Rgb::new(7, 5);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 53 % 256) as u8;
        }
        let (w, h) = (19u32, 23u32);
        let mut rs = Resizer::new(&img, full(&img), w, h);
        let mut want = vec![0u32; (w * h) as usize];
        for (y, row) in want.chunks_exact_mut(w as usize).enumerate() {
            rs.row(y as u32, row);
        }
        let mut rs = Resizer::new(&img, full(&img), w, h);
        let (mut a, mut b) = (vec![0u32; w as usize], vec![0u32; w as usize]);
        let mut paired = 0;
        for y in 0..h - 1 {
            if rs.row_pair(y, &mut a, &mut b) {
                paired += 1;
                assert_eq!(a, want[(y * w) as usize..((y + 1) * w) as usize], "row {y}");
                assert_eq!(
                    b,
                    want[((y + 1) * w) as usize..((y + 2) * w) as usize],
                    "row {y}"
                );
            }
        }
        assert!(paired >= 10, "{paired} pairs");
        // Shrinking: more than two taps, never paired.
        let mut rs = Resizer::new(&img, full(&img), 3, 2);
        assert!(!rs.row_pair(0, &mut a, &mut b));
    }

    #[test]
    fn an_empty_source_is_black() {
        let img = Rgb::new(0, 5);
        let r = resize(&img, full(&img), 3, 2);
        assert_eq!(r, Rgb::new(3, 2));
    }

    fn image() -> impl Strategy<Value = Rgb> {
        (1u32..24, 1u32..24).prop_flat_map(|(w, h)| {
            proptest::collection::vec(any::<u8>(), (w * h * 3) as usize).prop_map(move |data| Rgb {
                width: w,
                height: h,
                data,
            })
        })
    }

    proptest! {
        /// Random images, crops (fractional, as fill mode makes them, and a little outside
        /// the image) and sizes: the fast scaler gives the reference's bytes.
        #[test]
        fn same_bytes_as_the_reference(
            img in image(),
            crop in (0.0f64..1.0, 0.0f64..1.0, 0.05f64..1.2, 0.05f64..1.2),
            dst in (1u32..70, 1u32..70),
        ) {
            let (fw, fh) = (f64::from(img.width), f64::from(img.height));
            let crop = SrcRect {
                x: crop.0 * fw * 0.5,
                y: crop.1 * fh * 0.5,
                w: crop.2 * fw,
                h: crop.3 * fh,
            };
            let fast = resize(&img, crop, dst.0, dst.1);
            let slow = reference::resize(&img, crop, dst.0, dst.1);
            prop_assert_eq!(fast, slow);
        }
    }
}
