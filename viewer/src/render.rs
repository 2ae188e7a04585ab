//! Photo → screen frame: decode (JPEG/PNG), EXIF orientation (applied once), scale to
//! the output in the chosen mode, letterbox on black. Also the text message screen.
//!
//! [`render_frame`] is what the viewer puts on screen, as RGBA: host tests call it to
//! compute the expected picture.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::font;
use crate::geometry::{Layout, ScaleMode, SrcRect, layout, source_rect, swaps_axes};
use crate::resample::{Resizer, Rgb};

/// Largest decoded image we accept in memory (the guest may have 256 MiB in all).
pub const MAX_DECODED_BYTES: u64 = 96 << 20;

/// JPEGs with more pixels than this are always decoded at 1/8 scale (see [`crate::jpeg_dc`]).
pub const MAX_FULL_DECODE_PIXELS: u64 = 24_000_000;

/// An XRGB8888 frame (`0xffRRGGBB` per pixel), rows packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Frame {
    pub fn filled(width: u32, height: u32, color: u32) -> Frame {
        Frame {
            width,
            height,
            pixels: vec![color; width as usize * height as usize],
        }
    }

    /// RGBA bytes.
    pub fn to_rgba(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pixels.len() * 4);
        for p in &self.pixels {
            out.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, *p as u8, 0xff]);
        }
        out
    }
}

/// A decoded photo as stored in the file (possibly at a reduced scale), plus its EXIF
/// orientation (1–8).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub image: Rgb,
    pub exif_orientation: u8,
    /// The photo's size in the file. The layout is computed from it, so a photo decoded
    /// at 1/2, 1/4 or 1/8 scale lands on exactly the same screen rectangle as a full
    /// decode would put it.
    pub full_width: u32,
    pub full_height: u32,
}

/// The output a photo is decoded for: lets [`decode_for`] decode a large JPEG at a
/// reduced DCT scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub width: u32,
    pub height: u32,
    pub mode: ScaleMode,
}

/// The scale (1, 2, 4 or 8: decode at 1/n) for a JPEG stored as `w`×`h` with EXIF
/// orientation `exif`, shown on `target`: the largest n for which the part of the photo
/// on screen still has at least as many decoded pixels as screen pixels in both axes, so
/// the scaler only ever shrinks and the picture keeps its detail. 1 when the photo is
/// not larger than what the output shows of it.
pub fn jpeg_scale_denominator(w: u32, h: u32, exif: u8, target: Target) -> u32 {
    let (crop, rw, rh) = placement(w, h, exif, target.width, target.height, target.mode);
    [8u32, 4, 2]
        .into_iter()
        .find(|&n| crop.w >= f64::from(rw * n) && crop.h >= f64::from(rh * n))
        .unwrap_or(1)
}

/// Where a stored `sw`×`sh` photo goes: the crop in stored pixels and the size (in
/// stored orientation) it is scaled to.
fn placement(
    sw: u32,
    sh: u32,
    exif: u8,
    out_w: u32,
    out_h: u32,
    mode: ScaleMode,
) -> (SrcRect, u32, u32) {
    let swap = swaps_axes(exif);
    let (uw, uh) = if swap { (sh, sw) } else { (sw, sh) };
    let l = layout(uw, uh, out_w, out_h, mode);
    let crop = source_rect(exif, f64::from(sw), f64::from(sh), l.crop);
    let (rw, rh) = if swap {
        (l.dst_h, l.dst_w)
    } else {
        (l.dst_w, l.dst_h)
    };
    (crop, rw, rh)
}

/// [`placement`] for a decoded photo: the crop moved into the pixels of the (possibly
/// reduced-scale) decoded image, the size it is scaled to, and where it goes on screen.
/// The layout is of the photo as stored in the file, so a reduced-scale decode lands
/// exactly where the full one would.
fn decoded_placement(
    d: &Decoded,
    out_w: u32,
    out_h: u32,
    mode: ScaleMode,
) -> (SrcRect, u32, u32, Layout) {
    let exif = d.exif_orientation;
    let (fw, fh) = (d.full_width.max(1), d.full_height.max(1));
    let (crop, rw, rh) = placement(fw, fh, exif, out_w, out_h, mode);
    let (kx, ky) = (
        f64::from(d.image.width) / f64::from(fw),
        f64::from(d.image.height) / f64::from(fh),
    );
    let crop = SrcRect {
        x: crop.x * kx,
        y: crop.y * ky,
        w: crop.w * kx,
        h: crop.h * ky,
    };
    let (uw, uh) = if swaps_axes(exif) { (fh, fw) } else { (fw, fh) };
    (crop, rw, rh, layout(uw, uh, out_w, out_h, mode))
}

/// Decodes JPEG (baseline/progressive) or PNG bytes at full size; the format is sniffed.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    decode_for(bytes, None)
}

/// Decodes JPEG or PNG bytes for `target`: a JPEG larger than what the output shows of it
/// is decoded at a reduced DCT scale (see [`jpeg_scale_denominator`]), which is faster
/// and needs a fraction of the memory; `None` decodes at full size.
pub fn decode_for(bytes: &[u8], target: Option<Target>) -> Result<Decoded, String> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        return decode_jpeg(bytes, target);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("read: {e}"))?;
    if reader.format() != Some(image::ImageFormat::Png) {
        return Err("not a JPEG or PNG file".into());
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    let mut dec = reader.into_decoder().map_err(|e| e.to_string())?;
    let exif_orientation = dec.orientation().map(|o| o.to_exif()).unwrap_or(1);
    let (w, h) = dec.dimensions();
    let total = dec.total_bytes();
    if total > MAX_DECODED_BYTES {
        return Err(format!(
            "{w}x{h} is too large to decode in memory ({} MiB)",
            total >> 20
        ));
    }
    let img = DynamicImage::from_decoder(dec).map_err(|e| e.to_string())?;
    Ok(Decoded {
        image: to_rgb_over_black(img),
        exif_orientation,
        full_width: w,
        full_height: h,
    })
}

/// The size stored in a JPEG's or PNG's header, without decoding the pixels.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.starts_with(&[0xff, 0xd8]) {
        let mut dec = jpeg_decoder::Decoder::new(bytes);
        dec.read_info().ok()?;
        let info = dec.info()?;
        return Some((u32::from(info.width), u32::from(info.height)));
    }
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The EXIF orientation (1–8) in a JPEG's Exif segment, 1 without one.
fn exif_orientation(dec: &jpeg_decoder::Decoder<&[u8]>) -> u8 {
    dec.exif_data()
        .and_then(image::metadata::Orientation::from_exif_chunk)
        .map(|o| o.to_exif())
        .unwrap_or(1)
}

/// JPEGs go through jpeg-decoder: under TCG it decodes the shipped cats about twice as
/// fast as zune-jpeg (image's JPEG decoder, whose speed comes from SIMD the guest CPU
/// model lacks), and it has a reduced-size inverse DCT (1/2, 1/4) for large photos.
fn decode_jpeg(bytes: &[u8], target: Option<Target>) -> Result<Decoded, String> {
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    dec.set_max_decoding_buffer_size(usize::try_from(MAX_DECODED_BYTES).unwrap_or(usize::MAX));
    dec.read_info().map_err(|e| format!("jpeg: {e}"))?;
    let info = dec.info().ok_or("jpeg: no frame header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    // The Exif segment comes before the frame header in every camera's files; if it
    // came later, the scale below would be chosen as for an upright photo (still a
    // valid choice, only perhaps not the smallest).
    let early_exif = exif_orientation(&dec);
    let n = target.map_or(1, |t| jpeg_scale_denominator(w, h, early_exif, t));
    let decoded_bytes = u64::from(w) * u64::from(h) * 3;
    if decoded_bytes > MAX_DECODED_BYTES
        || u64::from(w) * u64::from(h) > MAX_FULL_DECODE_PIXELS
        || n == 8
    {
        // Too big for memory, or the output needs only every eighth pixel: the DC
        // coefficients are the photo at 1/8 scale.
        let image = crate::jpeg_dc::decode_dc(bytes)?;
        return Ok(Decoded {
            image,
            exif_orientation: early_exif,
            full_width: w,
            full_height: h,
        });
    }
    if n > 1 {
        // jpeg-decoder picks the smallest scale whose result is at least the requested
        // size in one axis; asking for exactly 1/n of the photo makes that n.
        let want = |v: u32| u16::try_from(v.div_ceil(n)).unwrap_or(u16::MAX);
        dec.scale(want(w), want(h))
            .map_err(|e| format!("jpeg: {e}"))?;
    }
    let data = dec.decode().map_err(|e| format!("jpeg: {e}"))?;
    let info = dec.info().ok_or("jpeg: no frame header")?;
    let (sw, sh) = (u32::from(info.width), u32::from(info.height));
    let px = sw as usize * sh as usize;
    let data = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 if data.len() == px * 3 => data,
        jpeg_decoder::PixelFormat::L8 if data.len() == px => {
            data.iter().flat_map(|v| [*v, *v, *v]).collect()
        }
        jpeg_decoder::PixelFormat::CMYK32 if data.len() == px * 4 => data
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - u16::from(p[3]);
                [0, 1, 2].map(|i| ((255 - u16::from(p[i])) * k / 255) as u8)
            })
            .collect(),
        other => return Err(format!("jpeg: {other:?} pixels not supported")),
    };
    Ok(Decoded {
        image: Rgb {
            width: sw,
            height: sh,
            data,
        },
        exif_orientation: exif_orientation(&dec),
        full_width: w,
        full_height: h,
    })
}

fn to_rgb_over_black(img: DynamicImage) -> Rgb {
    let (width, height) = (img.width(), img.height());
    if img.color().has_alpha() {
        let rgba = img.into_rgba8();
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for p in rgba.pixels() {
            let a = u16::from(p[3]);
            for c in 0..3 {
                data.push(((u16::from(p[c]) * a + 127) / 255) as u8);
            }
        }
        Rgb {
            width,
            height,
            data,
        }
    } else {
        let rgb = img.into_rgb8();
        Rgb {
            width,
            height,
            data: rgb.into_raw(),
        }
    }
}

/// Lays a decoded photo out on a black `out_w`×`out_h` frame.
pub fn compose(d: &Decoded, out_w: u32, out_h: u32, mode: ScaleMode) -> Frame {
    // Zeroed memory comes from the kernel as it is touched; `compose_into` writes every
    // pixel once (the letterbox too), so nothing is filled twice.
    let mut frame = Frame::filled(out_w, out_h, 0);
    compose_into(d, out_w, out_h, mode, &mut frame.pixels);
    frame
}

/// What [`compose`] draws, written straight into `dst`: `out_w`×`out_h` XRGB words, rows
/// packed (a wl_shm buffer's mapping, or a [`Frame`]'s pixels). Each pixel is written
/// once: the letterbox bars black, the photo's rectangle row by row from the scaler, so
/// there is no scaled intermediate image and no second pass over the frame. A `dst`
/// shorter than the frame gets nothing drawn past its end.
pub fn compose_into(d: &Decoded, out_w: u32, out_h: u32, mode: ScaleMode, dst: &mut [u32]) {
    const BLACK: u32 = 0xff00_0000;
    let exif = d.exif_orientation;
    let (crop, rw, rh, l) = decoded_placement(d, out_w, out_h, mode);
    let stride = out_w as usize;
    let dst_len = dst.len().min(stride * out_h as usize);
    let dst = &mut dst[..dst_len];
    // The photo's rectangle on screen (clipped to the frame, as a layout always fits).
    let (x0, y0) = (l.dst_x as usize, l.dst_y as usize);
    let cw = l.dst_w.min(out_w.saturating_sub(l.dst_x)) as usize;
    let ch = l.dst_h.min(out_h.saturating_sub(l.dst_y)) as usize;
    // The bars: the rows above and below, and left and right of the photo in between.
    for (y, row) in dst.chunks_mut(stride.max(1)).enumerate() {
        if y < y0 || y >= y0 + ch {
            row.fill(BLACK);
        } else {
            let (left, rest) = row.split_at_mut(x0.min(row.len()));
            left.fill(BLACK);
            if let Some(right) = rest.get_mut(cw..) {
                right.fill(BLACK);
            }
        }
    }
    let mut scaler = Resizer::new(&d.image, crop, rw, rh);
    let (rw, rh) = (scaler.width(), scaler.height());
    if matches!(exif, 1 | 4) || !(1..=8).contains(&exif) {
        // Stored rows are screen rows (upright, or flipped top to bottom): the scaler
        // writes each one straight into the frame.
        let flipped = exif == 4;
        let mut sy = 0;
        while sy < rh {
            let oy = if flipped { rh - 1 - sy } else { sy } as usize;
            // Two frame rows at once where the scaler can (see `Resizer::row_pair`): the
            // upper of the two in the frame, and the pair's other row right below it.
            let upper = if flipped { oy.checked_sub(1) } else { Some(oy) };
            if let Some(top) = upper
                && sy + 1 < rh
                && top + 1 < ch
            {
                let at = (y0 + top) * stride + x0;
                if let Some(two) = dst.get_mut(at..at + stride + cw) {
                    let (first, rest) = two.split_at_mut(stride);
                    let keep = cw.min(first.len());
                    let (first, second) = (&mut first[..keep], &mut rest[..cw]);
                    let (a, b) = if flipped {
                        (second, first)
                    } else {
                        (first, second)
                    };
                    if scaler.row_pair(sy, a, b) {
                        sy += 2;
                        continue;
                    }
                }
            }
            if oy < ch {
                let at = (y0 + oy) * stride + x0;
                if let Some(row) = dst.get_mut(at..(at + cw).min(dst_len)) {
                    scaler.row(sy, row);
                }
            }
            sy += 1;
        }
        return;
    }
    // Mirrored or turned: each scaled row goes to its place pixel by pixel (the inverse
    // of `source_pixel`); rare, as cameras mostly write 1, 6 or 8.
    let mut line = vec![0u32; rw as usize];
    let (mw, mh) = (rw - 1, rh - 1);
    for sy in 0..rh {
        scaler.row(sy, &mut line);
        for (sx, p) in (0..rw).zip(&line) {
            let (ox, oy) = match exif {
                2 => (mw - sx, sy),
                3 => (mw - sx, mh - sy),
                5 => (sy, sx),
                6 => (mh - sy, sx),
                7 => (mh - sy, mw - sx),
                _ => (sy, mw - sx), // 8
            };
            let (ox, oy) = (ox as usize, oy as usize);
            if ox < cw
                && oy < ch
                && let Some(d) = dst.get_mut((y0 + oy) * stride + x0 + ox)
            {
                *d = *p;
            }
        }
    }
}

/// Photo bytes → XRGB frame as the viewer shows it.
pub fn render_xrgb(photo: &[u8], out_w: u32, out_h: u32, mode: ScaleMode) -> Result<Frame, String> {
    let target = Target {
        width: out_w,
        height: out_h,
        mode,
    };
    let d = decode_for(photo, Some(target))?;
    Ok(compose(&d, out_w, out_h, mode))
}

/// Photo bytes → RGBA (`out_w * out_h * 4` bytes), exactly what the viewer shows.
pub fn render_frame(
    photo: &[u8],
    out_w: u32,
    out_h: u32,
    mode: ScaleMode,
) -> Result<Vec<u8>, String> {
    render_xrgb(photo, out_w, out_h, mode).map(|f| f.to_rgba())
}

/// Background of the message screen.
pub const MESSAGE_BG: u32 = 0xff20_2430;
const MESSAGE_FG: u32 = 0xfff0_e6d2;

/// A readable text screen (used when there is nothing to show).
pub fn message_frame(lines: &[&str], out_w: u32, out_h: u32) -> Frame {
    let mut f = Frame::filled(out_w, out_h, MESSAGE_BG);
    let longest = lines
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(1)
        .max(1) as u32;
    let n = lines.len().max(1) as u32;
    let by_w = out_w.saturating_mul(9) / 10 / (longest * (font::GLYPH_W + 1));
    let by_h = out_h.saturating_mul(8) / 10 / (n * (font::GLYPH_H + 4));
    let scale = by_w.min(by_h).clamp(1, 6);
    let line_h = (font::GLYPH_H + 4) * scale;
    let total_h = n * line_h;
    let mut y = i64::from(out_h.saturating_sub(total_h) / 2);
    for line in lines {
        let w = font::text_width(line, scale);
        let x = i64::from(out_w.saturating_sub(w) / 2);
        font::draw_text(&mut f.pixels, out_w, out_h, x, y, line, scale, MESSAGE_FG);
        y += i64::from(line_h);
    }
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        assert!(render_frame(b"definitely not an image", 10, 10, ScaleMode::Fit).is_err());
        assert!(render_frame(b"\xff\xd8\xff\xe0 truncated jpeg", 10, 10, ScaleMode::Fit).is_err());
    }

    /// What `compose` drew before the fast scaler: the reference resize into an RGB
    /// image, then every frame pixel looked up through `source_pixel`.
    fn reference_compose(d: &Decoded, out_w: u32, out_h: u32, mode: ScaleMode) -> Frame {
        use crate::geometry::source_pixel;
        let exif = d.exif_orientation;
        let (crop, rw, rh, l) = decoded_placement(d, out_w, out_h, mode);
        let scaled = crate::resample::reference::resize(&d.image, crop, rw, rh);
        let mut frame = Frame::filled(out_w, out_h, 0xff00_0000);
        for oy in 0..l.dst_h.min(out_h.saturating_sub(l.dst_y)) {
            let row = (l.dst_y + oy) as usize * out_w as usize;
            for ox in 0..l.dst_w.min(out_w.saturating_sub(l.dst_x)) {
                let (sx, sy) = source_pixel(exif, rw, rh, ox, oy);
                let [r, g, b] = scaled.get(sx, sy);
                frame.pixels[row + (l.dst_x + ox) as usize] =
                    0xff00_0000 | u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b);
            }
        }
        frame
    }

    const MODES: [ScaleMode; 3] = [ScaleMode::Fit, ScaleMode::Fill, ScaleMode::Actual];

    fn cats() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cats");
        let photos = crate::config::list_photos(&dir).unwrap();
        assert!(photos.len() >= 5, "{photos:?}");
        photos
            .iter()
            .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
            .collect()
    }

    /// Every shipped photo at the common screen sizes, odd ones and 1×1, in every mode,
    /// decoded as the viewer decodes it for that output: the frame is the reference's,
    /// bit for bit (the tests' expected screendumps come from `render_frame`).
    #[test]
    fn every_cat_is_drawn_bit_for_bit_as_before() {
        let sizes = [
            (1280, 800),
            (1024, 768),
            (800, 600),
            (640, 480),
            (333, 777),
            (1001, 3),
            (7, 5),
            (1, 1),
        ];
        for (name, bytes) in cats() {
            for (w, h) in sizes {
                for mode in MODES {
                    let target = Target {
                        width: w,
                        height: h,
                        mode,
                    };
                    let d = decode_for(&bytes, Some(target)).unwrap();
                    let fast = compose(&d, w, h, mode);
                    assert!(
                        fast == reference_compose(&d, w, h, mode),
                        "{name} {w}x{h} {mode:?}"
                    );
                }
            }
        }
    }

    /// The same under every EXIF orientation (the cats are upright; the mirrored and
    /// turned ones take the per-pixel path).
    #[test]
    fn every_orientation_is_drawn_bit_for_bit_as_before() {
        for (name, bytes) in cats() {
            let mut d = decode(&bytes).unwrap();
            for exif in 0..=9u8 {
                d.exif_orientation = exif;
                for (w, h) in [(640, 480), (301, 517), (1, 1)] {
                    for mode in MODES {
                        let fast = compose(&d, w, h, mode);
                        assert!(
                            fast == reference_compose(&d, w, h, mode),
                            "{name} exif {exif} {w}x{h} {mode:?}"
                        );
                    }
                }
            }
        }
    }

    /// Drawn into a longer buffer (a wl_shm pool may be), nothing past the frame changes;
    /// into a shorter one, what fits is the frame's beginning.
    #[test]
    fn compose_into_stays_inside_its_buffer() {
        let (_, bytes) = cats().remove(0);
        let d = decode(&bytes).unwrap();
        let want = compose(&d, 64, 40, ScaleMode::Fit);
        let mut long = vec![7u32; 64 * 40 + 9];
        compose_into(&d, 64, 40, ScaleMode::Fit, &mut long);
        assert!(long[..64 * 40] == want.pixels[..]);
        assert!(long[64 * 40..].iter().all(|p| *p == 7));
        let mut short = vec![7u32; 64 * 10 + 3];
        compose_into(&d, 64, 40, ScaleMode::Fit, &mut short);
        assert!(short[..] == want.pixels[..short.len()]);
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Random small photos (any stored size against its decoded size, as a
            /// reduced-scale decode gives), orientations, modes and outputs.
            #[test]
            fn compose_is_the_reference(
                (w, h, data) in (1u32..20, 1u32..20).prop_flat_map(|(w, h)| {
                    (Just(w), Just(h), proptest::collection::vec(any::<u8>(), (w * h * 3) as usize))
                }),
                reduce in 1u32..4,
                exif in 0u8..10,
                mode in 0usize..3,
                out in (1u32..50, 1u32..50),
            ) {
                let d = Decoded {
                    image: Rgb { width: w, height: h, data },
                    exif_orientation: exif,
                    full_width: w * reduce,
                    full_height: h * reduce,
                };
                let mode = MODES[mode];
                let fast = compose(&d, out.0, out.1, mode);
                prop_assert!(fast == reference_compose(&d, out.0, out.1, mode));
            }
        }
    }

    #[test]
    fn message_is_not_black() {
        let f = message_frame(&["NO CATS HERE", "/usr/share/nekos/cats"], 320, 200);
        assert!(f.pixels.contains(&MESSAGE_FG));
        assert!(f.pixels.iter().all(|p| *p != 0xff00_0000));
    }
}
