//! Reduced-size JPEG decoding for photos too large to decode in memory: only the DC
//! coefficient of each 8×8 block is kept, giving the photo at 1/8 scale (a 12000×9000
//! photo becomes 1500×1125) with memory proportional to that. Baseline, extended and
//! progressive Huffman JPEGs; AC data is skipped. Pure code, no protocol types.

use crate::resample::Rgb;

#[derive(Clone)]
struct Huffman {
    /// Fast path: index by the next 8 bits → (code length, symbol); length 0 = slow path.
    fast: Vec<(u8, u8)>,
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, String> {
        let total: usize = counts.iter().map(|c| *c as usize).sum();
        if total != values.len() || total > 256 {
            return Err("bad Huffman table".into());
        }
        let mut h = Huffman {
            fast: vec![(0, 0); 256],
            maxcode: [-1; 18],
            valptr: [0; 17],
            mincode: [0; 17],
            values,
        };
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for len in 1..=16usize {
            let n = i32::from(counts[len - 1]);
            if n > 0 {
                h.valptr[len] = k;
                h.mincode[len] = code;
                for i in 0..n {
                    let c = code + i;
                    if len <= 8 {
                        let shift = 8 - len;
                        for low in 0..(1 << shift) {
                            let idx = ((c << shift) | low) as usize;
                            if let (Some(slot), Some(v)) =
                                (h.fast.get_mut(idx), h.values.get((k + i) as usize))
                            {
                                *slot = (len as u8, *v);
                            }
                        }
                    }
                }
                code += n;
                k += n;
                h.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        Ok(h)
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            marker: false,
        }
    }

    fn refill(&mut self) {
        while self.n <= 56 {
            let mut b = 0u8;
            if !self.marker && self.pos < self.data.len() {
                let v = self.data[self.pos];
                if v == 0xff {
                    if self.data.get(self.pos + 1) == Some(&0) {
                        self.pos += 2;
                        b = 0xff;
                    } else {
                        self.marker = true;
                    }
                } else {
                    self.pos += 1;
                    b = v;
                }
            }
            self.acc |= u64::from(b) << (56 - self.n);
            self.n += 8;
        }
    }

    fn peek(&mut self, k: u32) -> u32 {
        if self.n < k {
            self.refill();
        }
        (self.acc >> (64 - k)) as u32
    }

    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        let v = self.peek(k);
        self.consume(k);
        v
    }

    fn decode(&mut self, h: &Huffman) -> Result<u8, String> {
        let p = self.peek(16);
        let (len, v) = h.fast[(p >> 8) as usize];
        if len > 0 {
            self.consume(u32::from(len));
            return Ok(v);
        }
        let mut code: i32 = 0;
        for len in 1..=16usize {
            code = (code << 1) | ((p >> (16 - len)) & 1) as i32;
            if code <= h.maxcode[len] {
                self.consume(len as u32);
                let idx = h.valptr[len] + code - h.mincode[len];
                return h
                    .values
                    .get(idx as usize)
                    .copied()
                    .ok_or_else(|| "bad Huffman code".to_string());
            }
        }
        Err("bad Huffman code".into())
    }

    /// Receive-and-extend of an `s`-bit signed value.
    fn signed(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        }
    }

    /// Skips to just after the next RSTn marker (restart interval boundary).
    fn restart(&mut self) {
        self.acc = 0;
        self.n = 0;
        self.marker = false;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xff && (0xd0..=0xd7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return;
            }
            self.pos += 1;
        }
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Padded block grid (MCU multiple) and the DC coefficient of each block.
    bw: usize,
    bh: usize,
    dc: Vec<i32>,
}

fn be16(d: &[u8], p: usize) -> Result<usize, String> {
    match (d.get(p), d.get(p + 1)) {
        (Some(a), Some(b)) => Ok(usize::from(*a) << 8 | usize::from(*b)),
        _ => Err("truncated JPEG".into()),
    }
}

/// Position of the next marker (0xFF followed by something other than 0x00/fill/RSTn).
fn next_marker(d: &[u8], mut p: usize) -> usize {
    while p + 1 < d.len() {
        if d[p] == 0xff {
            let m = d[p + 1];
            if m != 0 && m != 0xff && !(0xd0..=0xd7).contains(&m) {
                return p;
            }
        }
        p += 1;
    }
    d.len()
}

/// Decodes a JPEG at 1/8 scale (one pixel per 8×8 block), as stored (no orientation).
pub fn decode_dc(d: &[u8]) -> Result<Rgb, String> {
    if d.len() < 4 || d[0] != 0xff || d[1] != 0xd8 {
        return Err("not a JPEG".into());
    }
    let mut qt = [[1i32; 1]; 4];
    let mut dc_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac_tables: [Option<Huffman>; 4] = [None, None, None, None];
    let mut comps: Vec<Component> = Vec::new();
    let (mut width, mut height) = (0usize, 0usize);
    let (mut hmax, mut vmax) = (1usize, 1usize);
    let mut progressive = false;
    let mut restart_interval = 0usize;
    let mut pos = 2usize;
    loop {
        pos = next_marker(d, pos);
        if pos + 1 >= d.len() {
            break;
        }
        let m = d[pos + 1];
        pos += 2;
        match m {
            0xd8 => continue,
            0xd9 => break,
            0x01 => continue,
            _ => {}
        }
        let len = be16(d, pos)?;
        let seg_end = pos + len;
        if len < 2 || seg_end > d.len() {
            return Err("truncated JPEG segment".into());
        }
        let seg = &d[pos + 2..seg_end];
        match m {
            0xc0..=0xc2 => {
                progressive = m == 0xc2;
                if seg.len() < 6 || seg[0] != 8 {
                    return Err("unsupported JPEG precision".into());
                }
                height = be16(seg, 1)?;
                width = be16(seg, 3)?;
                let nf = usize::from(seg[5]);
                if width == 0 || height == 0 || nf == 0 || seg.len() < 6 + nf * 3 {
                    return Err("bad JPEG frame header".into());
                }
                comps.clear();
                for i in 0..nf {
                    let c = &seg[6 + i * 3..9 + i * 3];
                    let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return Err("bad sampling factors".into());
                    }
                    comps.push(Component {
                        id: c[0],
                        h,
                        v,
                        tq: usize::from(c[2] & 3),
                        bw: 0,
                        bh: 0,
                        dc: Vec::new(),
                    });
                }
                hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
                vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
                let mcux = width.div_ceil(8 * hmax);
                let mcuy = height.div_ceil(8 * vmax);
                for c in &mut comps {
                    c.bw = mcux * c.h;
                    c.bh = mcuy * c.v;
                    c.dc = vec![0; c.bw * c.bh];
                }
            }
            0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => {
                return Err("unsupported JPEG coding (lossless/arithmetic)".into());
            }
            0xc4 => {
                let mut p = 0usize;
                while p + 17 <= seg.len() {
                    let (class, id) = (seg[p] >> 4, usize::from(seg[p] & 3));
                    let mut counts = [0u8; 16];
                    counts.copy_from_slice(&seg[p + 1..p + 17]);
                    let total: usize = counts.iter().map(|c| *c as usize).sum();
                    let vals = seg
                        .get(p + 17..p + 17 + total)
                        .ok_or("truncated DHT")?
                        .to_vec();
                    let h = Huffman::new(&counts, vals)?;
                    if class == 0 {
                        dc_tables[id] = Some(h);
                    } else {
                        ac_tables[id] = Some(h);
                    }
                    p += 17 + total;
                }
            }
            0xdb => {
                let mut p = 0usize;
                while p < seg.len() {
                    let (pq, id) = (seg[p] >> 4, usize::from(seg[p] & 3));
                    let q0 = if pq == 0 {
                        i32::from(*seg.get(p + 1).ok_or("truncated DQT")?)
                    } else {
                        be16(seg, p + 1)? as i32
                    };
                    qt[id][0] = q0.max(1);
                    p += 1 + if pq == 0 { 64 } else { 128 };
                }
            }
            0xdd => restart_interval = be16(seg, 0)?,
            0xda => {
                if comps.is_empty() {
                    return Err("scan before frame header".into());
                }
                let ns = usize::from(*seg.first().ok_or("bad SOS")?);
                if seg.len() < 1 + ns * 2 + 3 || ns == 0 {
                    return Err("bad SOS".into());
                }
                let mut scomps = Vec::new();
                for i in 0..ns {
                    let id = seg[1 + i * 2];
                    let t = seg[2 + i * 2];
                    let ci = comps
                        .iter()
                        .position(|c| c.id == id)
                        .ok_or("scan of unknown component")?;
                    scomps.push((ci, usize::from(t >> 4), usize::from(t & 15) & 3));
                }
                let ss = seg[1 + ns * 2];
                let ah = seg[3 + ns * 2] >> 4;
                let al = u32::from(seg[3 + ns * 2] & 15);
                let data_start = seg_end;
                if progressive && ss > 0 {
                    // AC scan: not needed at 1/8 scale.
                    pos = next_marker(d, data_start);
                    continue;
                }
                let mut bits = Bits::new(d, data_start);
                let mut preds = vec![0i32; comps.len()];
                let mut mcus_left = restart_interval;
                let interleaved = ns > 1;
                let (units_x, units_y) = if interleaved {
                    (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax))
                } else {
                    let c = &comps[scomps[0].0];
                    (
                        (width * c.h).div_ceil(hmax).div_ceil(8),
                        (height * c.v).div_ceil(vmax).div_ceil(8),
                    )
                };
                for uy in 0..units_y {
                    for ux in 0..units_x {
                        if restart_interval > 0 {
                            if mcus_left == 0 {
                                bits.restart();
                                preds.iter_mut().for_each(|p| *p = 0);
                                mcus_left = restart_interval;
                            }
                            mcus_left -= 1;
                        }
                        for &(ci, td, ta) in &scomps {
                            let (ch, cv) = if interleaved {
                                (comps[ci].h, comps[ci].v)
                            } else {
                                (1, 1)
                            };
                            for by in 0..cv {
                                for bx in 0..ch {
                                    let (x, y) = if interleaved {
                                        (ux * ch + bx, uy * cv + by)
                                    } else {
                                        (ux, uy)
                                    };
                                    let c = &mut comps[ci];
                                    let idx = y * c.bw + x;
                                    if !progressive {
                                        let dct =
                                            dc_tables[td].as_ref().ok_or("missing DC table")?;
                                        let act =
                                            ac_tables[ta].as_ref().ok_or("missing AC table")?;
                                        let s = u32::from(bits.decode(dct)?);
                                        preds[ci] += bits.signed(s.min(16));
                                        if let Some(v) = c.dc.get_mut(idx) {
                                            *v = preds[ci];
                                        }
                                        let mut k = 1;
                                        while k < 64 {
                                            let rs = bits.decode(act)?;
                                            let (r, s) = (usize::from(rs >> 4), u32::from(rs & 15));
                                            if s == 0 {
                                                if r != 15 {
                                                    break;
                                                }
                                                k += 16;
                                                continue;
                                            }
                                            k += r;
                                            bits.consume_checked(s);
                                            k += 1;
                                        }
                                    } else if ah == 0 {
                                        let dct =
                                            dc_tables[td].as_ref().ok_or("missing DC table")?;
                                        let s = u32::from(bits.decode(dct)?);
                                        preds[ci] += bits.signed(s.min(16));
                                        if let Some(v) = c.dc.get_mut(idx) {
                                            *v = preds[ci] << al;
                                        }
                                    } else if bits.bits(1) == 1
                                        && let Some(v) = c.dc.get_mut(idx)
                                    {
                                        *v |= 1 << al;
                                    }
                                }
                            }
                        }
                    }
                }
                pos = next_marker(d, bits.pos.max(data_start));
                continue;
            }
            _ => {}
        }
        pos = seg_end;
    }
    if comps.is_empty() {
        return Err("no JPEG frame".into());
    }
    to_rgb(&comps, &qt, width, height, hmax, vmax)
}

impl Bits<'_> {
    fn consume_checked(&mut self, s: u32) {
        let _ = self.bits(s.min(16));
    }
}

fn to_rgb(
    comps: &[Component],
    qt: &[[i32; 1]; 4],
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
) -> Result<Rgb, String> {
    let ow = width.div_ceil(8);
    let oh = height.div_ceil(8);
    let sample = |c: &Component, x: usize, y: usize| -> i32 {
        let bx = (x * c.h / hmax).min(c.bw.saturating_sub(1));
        let by = (y * c.v / vmax).min(c.bh.saturating_sub(1));
        let coef = c.dc.get(by * c.bw + bx).copied().unwrap_or(0);
        (coef * qt[c.tq][0] / 8 + 128).clamp(0, 255)
    };
    let mut out = Rgb::new(ow as u32, oh as u32);
    match comps.len() {
        1 => {
            for y in 0..oh {
                for x in 0..ow {
                    let v = sample(&comps[0], x, y) as u8;
                    let o = (y * ow + x) * 3;
                    out.data[o..o + 3].copy_from_slice(&[v, v, v]);
                }
            }
        }
        3 => {
            for y in 0..oh {
                for x in 0..ow {
                    let yy = sample(&comps[0], x, y) << 16;
                    let cb = sample(&comps[1], x, y) - 128;
                    let cr = sample(&comps[2], x, y) - 128;
                    // ITU-R BT.601 full range, 16.16 fixed point.
                    let r = (yy + 91_881 * cr + 32_768) >> 16;
                    let g = (yy - 22_554 * cb - 46_802 * cr + 32_768) >> 16;
                    let b = (yy + 116_130 * cb + 32_768) >> 16;
                    let o = (y * ow + x) * 3;
                    out.data[o] = r.clamp(0, 255) as u8;
                    out.data[o + 1] = g.clamp(0, 255) as u8;
                    out.data[o + 2] = b.clamp(0, 255) as u8;
                }
            }
        }
        n => return Err(format!("unsupported JPEG with {n} components")),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use image::codecs::jpeg::JpegEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    fn encode(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> (Vec<u8>, Vec<u8>) {
        let mut raw = Vec::new();
        for y in 0..h {
            for x in 0..w {
                raw.extend_from_slice(&f(x, y));
            }
        }
        let mut jpg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpg, 90)
            .write_image(&raw, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        (jpg, raw)
    }

    #[test]
    fn block_averages_match_full_decode() {
        let (w, h) = (203u32, 157u32);
        let (jpg, raw) = encode(w, h, |x, y| {
            [
                (x * 255 / 203) as u8,
                (y * 255 / 157) as u8,
                ((x ^ y) & 0xff) as u8,
            ]
        });
        let small = decode_dc(&jpg).unwrap();
        assert_eq!((small.width, small.height), (w.div_ceil(8), h.div_ceil(8)));
        // Compare with block means of the original (chroma subsampling blurs a bit).
        let mut worst = 0i32;
        for by in 0..(h / 8) {
            for bx in 0..(w / 8) {
                for ch in 0..2 {
                    let mut sum = 0u32;
                    for y in 0..8 {
                        for x in 0..8 {
                            sum +=
                                u32::from(raw[(((by * 8 + y) * w + bx * 8 + x) * 3 + ch) as usize]);
                        }
                    }
                    let mean = (sum / 64) as i32;
                    let got = i32::from(small.get(bx, by)[ch as usize]);
                    worst = worst.max((mean - got).abs());
                }
            }
        }
        assert!(worst < 24, "worst block error {worst}");
    }

    #[test]
    fn grey_and_garbage() {
        let mut jpg = Vec::new();
        let raw: Vec<u8> = (0..64 * 64).map(|i| (i % 64 * 4) as u8).collect();
        JpegEncoder::new(&mut jpg)
            .write_image(&raw, 64, 64, ExtendedColorType::L8)
            .unwrap();
        let g = decode_dc(&jpg).unwrap();
        assert_eq!((g.width, g.height), (8, 8));
        assert!(
            g.get(0, 0)[0] < 40 && g.get(7, 0)[0] > 200,
            "{:?} {:?}",
            g.get(0, 0),
            g.get(7, 0)
        );
        assert!(decode_dc(b"\xff\xd8\xff\xc4\x00").is_err());
        assert!(decode_dc(b"hello").is_err());
    }

    #[test]
    fn shipped_progressive_and_baseline_cats() {
        for name in [
            "tabby-kitten.jpg",
            "white-kitten.jpg",
            "grey-longhair.jpg",
            "ginger-kitten.jpg",
        ] {
            let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../cats")
                .join(name);
            let bytes = std::fs::read(&p).unwrap();
            let small = decode_dc(&bytes).unwrap();
            let full = image::load_from_memory(&bytes).unwrap().into_rgb8();
            assert_eq!(small.width, full.width().div_ceil(8), "{name}");
            // Mean colour of the whole photo agrees.
            let mean_small: u64 =
                small.data.iter().map(|v| u64::from(*v)).sum::<u64>() / small.data.len() as u64;
            let mean_full: u64 = full.as_raw().iter().map(|v| u64::from(*v)).sum::<u64>()
                / full.as_raw().len() as u64;
            assert!(
                (mean_small as i64 - mean_full as i64).abs() < 6,
                "{name}: {mean_small} vs {mean_full}"
            );
        }
    }
}
