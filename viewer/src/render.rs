//! Photo → screen frame: decode (JPEG/PNG), EXIF orientation (applied once), scale to
//! the output in the chosen mode, letterbox on black. Also the text message screen.
//!
//! [`render_frame`] is what the viewer puts on screen, as RGBA: host tests call it to
//! compute the expected picture.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::font;
use crate::geometry::{ScaleMode, layout, source_pixel, source_rect, swaps_axes};
use crate::resample::{Rgb, resize};

/// Largest decoded image we accept in memory (the guest may have 256 MiB in all).
pub const MAX_DECODED_BYTES: u64 = 96 << 20;

/// JPEGs with more pixels than this are decoded at 1/8 scale (see [`crate::jpeg_dc`]).
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

/// A decoded photo as stored in the file, plus its EXIF orientation (1–8).
#[derive(Clone, Debug)]
pub struct Decoded {
    pub image: Rgb,
    pub exif_orientation: u8,
}

/// Decodes JPEG (baseline/progressive) or PNG bytes; the format is sniffed.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("read: {e}"))?;
    if reader.format().is_none() {
        return Err("not a JPEG or PNG file".into());
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    let is_jpeg = reader.format() == Some(image::ImageFormat::Jpeg);
    let mut dec = reader.into_decoder().map_err(|e| e.to_string())?;
    let exif_orientation = dec.orientation().map(|o| o.to_exif()).unwrap_or(1);
    let (w, h) = dec.dimensions();
    let total = dec.total_bytes();
    if total > MAX_DECODED_BYTES || u64::from(w) * u64::from(h) > MAX_FULL_DECODE_PIXELS {
        if is_jpeg {
            // Too big for memory: decode at 1/8 scale from the DC coefficients.
            drop(dec);
            let image = crate::jpeg_dc::decode_dc(bytes)?;
            return Ok(Decoded {
                image,
                exif_orientation,
            });
        }
        return Err(format!(
            "{w}x{h} is too large to decode in memory ({} MiB)",
            total >> 20
        ));
    }
    let img = DynamicImage::from_decoder(dec).map_err(|e| e.to_string())?;
    Ok(Decoded {
        image: to_rgb_over_black(img),
        exif_orientation,
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
    let exif = d.exif_orientation;
    let (sw, sh) = (d.image.width, d.image.height);
    let swap = swaps_axes(exif);
    let (uw, uh) = if swap { (sh, sw) } else { (sw, sh) };
    let l = layout(uw, uh, out_w, out_h, mode);
    let crop = source_rect(exif, f64::from(sw), f64::from(sh), l.crop);
    let (rw, rh) = if swap {
        (l.dst_h, l.dst_w)
    } else {
        (l.dst_w, l.dst_h)
    };
    let scaled = resize(&d.image, crop, rw, rh);
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

/// Photo bytes → XRGB frame as the viewer shows it.
pub fn render_xrgb(photo: &[u8], out_w: u32, out_h: u32, mode: ScaleMode) -> Result<Frame, String> {
    let d = decode(photo)?;
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

    #[test]
    fn message_is_not_black() {
        let f = message_frame(&["NO CATS HERE", "/usr/share/nekos/cats"], 320, 200);
        assert!(f.pixels.contains(&MESSAGE_FG));
        assert!(f.pixels.iter().all(|p| *p != 0xff00_0000));
    }
}
