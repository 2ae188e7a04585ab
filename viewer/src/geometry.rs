//! Where a photo goes on the screen for each scale mode, and EXIF orientation
//! arithmetic. Pure functions, no protocol types.

/// How a photo is scaled to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleMode {
    /// Whole photo visible, as large as fits, centred; black bars (default).
    Fit,
    /// Output covered, photo centred and cropped.
    Fill,
    /// One photo pixel per screen pixel, centred, cropped if larger.
    Actual,
}

impl ScaleMode {
    pub fn parse(s: &str) -> Option<ScaleMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fit" => Some(ScaleMode::Fit),
            "fill" => Some(ScaleMode::Fill),
            "actual" => Some(ScaleMode::Actual),
            _ => None,
        }
    }
}

/// A rectangle in source pixels (fractional for fill mode crops).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SrcRect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Result of [`layout`]: take `crop` of the (upright) photo, scale it to
/// `dst_w`×`dst_h` and put it at (`dst_x`, `dst_y`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    pub crop: SrcRect,
    pub dst_x: u32,
    pub dst_y: u32,
    pub dst_w: u32,
    pub dst_h: u32,
}

/// Computes the layout of a `src_w`×`src_h` upright photo on an `out_w`×`out_h` output.
pub fn layout(src_w: u32, src_h: u32, out_w: u32, out_h: u32, mode: ScaleMode) -> Layout {
    let (sw, sh) = (f64::from(src_w.max(1)), f64::from(src_h.max(1)));
    let (ow, oh) = (f64::from(out_w.max(1)), f64::from(out_h.max(1)));
    match mode {
        ScaleMode::Fit => {
            let s = (ow / sw).min(oh / sh);
            let dw = ((sw * s).round() as u32).clamp(1, out_w.max(1));
            let dh = ((sh * s).round() as u32).clamp(1, out_h.max(1));
            Layout {
                crop: SrcRect {
                    x: 0.0,
                    y: 0.0,
                    w: sw,
                    h: sh,
                },
                dst_x: (out_w.saturating_sub(dw)) / 2,
                dst_y: (out_h.saturating_sub(dh)) / 2,
                dst_w: dw,
                dst_h: dh,
            }
        }
        ScaleMode::Fill => {
            let s = (ow / sw).max(oh / sh);
            let cw = (ow / s).min(sw);
            let ch = (oh / s).min(sh);
            Layout {
                crop: SrcRect {
                    x: (sw - cw) / 2.0,
                    y: (sh - ch) / 2.0,
                    w: cw,
                    h: ch,
                },
                dst_x: 0,
                dst_y: 0,
                dst_w: out_w.max(1),
                dst_h: out_h.max(1),
            }
        }
        ScaleMode::Actual => {
            let (cx, dx, w) = axis_actual(src_w.max(1), out_w.max(1));
            let (cy, dy, h) = axis_actual(src_h.max(1), out_h.max(1));
            Layout {
                crop: SrcRect {
                    x: f64::from(cx),
                    y: f64::from(cy),
                    w: f64::from(w),
                    h: f64::from(h),
                },
                dst_x: dx,
                dst_y: dy,
                dst_w: w,
                dst_h: h,
            }
        }
    }
}

/// (crop start, destination start, length) along one axis at 1:1.
fn axis_actual(src: u32, out: u32) -> (u32, u32, u32) {
    if src > out {
        ((src - out) / 2, 0, out)
    } else {
        (0, (out - src) / 2, src)
    }
}

/// True for EXIF orientations 5–8, which swap width and height.
pub fn swaps_axes(exif: u8) -> bool {
    (5..=8).contains(&exif)
}

/// For an output pixel (ox, oy) of the upright image, the pixel of the stored image
/// (`w`×`h`, as decoded) it comes from, for EXIF orientation `exif` (1–8).
pub fn source_pixel(exif: u8, w: u32, h: u32, ox: u32, oy: u32) -> (u32, u32) {
    let (mw, mh) = (w.saturating_sub(1), h.saturating_sub(1));
    match exif {
        2 => (mw - ox, oy),
        3 => (mw - ox, mh - oy),
        4 => (ox, mh - oy),
        5 => (oy, ox),
        6 => (oy, mh - ox),
        7 => (mw - oy, mh - ox),
        8 => (mw - oy, ox),
        _ => (ox, oy),
    }
}

/// Maps a rectangle of the upright image to the stored image (`w`×`h` stored size).
pub fn source_rect(exif: u8, w: f64, h: f64, r: SrcRect) -> SrcRect {
    let SrcRect { x, y, w: rw, h: rh } = r;
    let (x, y, rw, rh) = match exif {
        2 => (w - x - rw, y, rw, rh),
        3 => (w - x - rw, h - y - rh, rw, rh),
        4 => (x, h - y - rh, rw, rh),
        5 => (y, x, rh, rw),
        6 => (y, h - x - rw, rh, rw),
        7 => (w - y - rh, h - x - rw, rh, rw),
        8 => (w - y - rh, x, rh, rw),
        _ => (x, y, rw, rh),
    };
    SrcRect { x, y, w: rw, h: rh }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_letterboxes() {
        let l = layout(200, 100, 100, 100, ScaleMode::Fit);
        assert_eq!((l.dst_x, l.dst_y, l.dst_w, l.dst_h), (0, 25, 100, 50));
        let l = layout(100, 200, 100, 100, ScaleMode::Fit);
        assert_eq!((l.dst_x, l.dst_y, l.dst_w, l.dst_h), (25, 0, 50, 100));
        // Small photos are enlarged to fit.
        let l = layout(451, 300, 1024, 768, ScaleMode::Fit);
        assert_eq!((l.dst_x, l.dst_y, l.dst_w, l.dst_h), (0, 43, 1024, 681));
    }

    #[test]
    fn fill_crops_centre() {
        let l = layout(200, 100, 100, 100, ScaleMode::Fill);
        assert_eq!((l.dst_x, l.dst_y, l.dst_w, l.dst_h), (0, 0, 100, 100));
        assert_eq!(
            l.crop,
            SrcRect {
                x: 50.0,
                y: 0.0,
                w: 100.0,
                h: 100.0
            }
        );
    }

    #[test]
    fn actual_is_one_to_one() {
        let l = layout(50, 300, 100, 100, ScaleMode::Actual);
        assert_eq!((l.dst_x, l.dst_y, l.dst_w, l.dst_h), (25, 0, 50, 100));
        assert_eq!(
            l.crop,
            SrcRect {
                x: 0.0,
                y: 100.0,
                w: 50.0,
                h: 100.0
            }
        );
    }

    #[test]
    fn parse_modes() {
        assert_eq!(ScaleMode::parse("Fill"), Some(ScaleMode::Fill));
        assert_eq!(ScaleMode::parse("zoom"), None);
    }

    /// Stored 3×2 image whose pixel value is its index; for each orientation the
    /// mapping is a bijection onto the stored pixels with the right output size.
    #[test]
    fn source_pixel_is_bijective() {
        let (w, h) = (3u32, 2u32);
        for exif in 1..=8u8 {
            let (ow, oh) = if swaps_axes(exif) { (h, w) } else { (w, h) };
            let mut seen = vec![false; (w * h) as usize];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (sx, sy) = source_pixel(exif, w, h, ox, oy);
                    assert!(sx < w && sy < h, "exif {exif}");
                    seen[(sy * w + sx) as usize] = true;
                }
            }
            assert!(seen.iter().all(|s| *s), "exif {exif}");
        }
    }

    /// Known answers: EXIF 6 means "rotate 90° clockwise to display", 8 counter-clockwise.
    #[test]
    fn rotations_go_the_right_way() {
        // Stored 2×1: [A B]. Rotated 90° CW it is a column: A on top, B below.
        assert_eq!(source_pixel(6, 2, 1, 0, 0), (0, 0));
        assert_eq!(source_pixel(6, 2, 1, 0, 1), (1, 0));
        // 90° CCW: B on top.
        assert_eq!(source_pixel(8, 2, 1, 0, 0), (1, 0));
        // Mirror: right pixel first.
        assert_eq!(source_pixel(2, 2, 1, 0, 0), (1, 0));
        // Stored 1×2 column [A; B]. EXIF 6 displays it as a row [B A].
        assert_eq!(source_pixel(6, 1, 2, 0, 0), (0, 1));
        assert_eq!(source_pixel(5, 1, 2, 1, 0), (0, 1));
    }

    /// source_rect agrees with source_pixel on every single-pixel rectangle.
    #[test]
    fn source_rect_matches_pixels() {
        let (w, h) = (4u32, 3u32);
        for exif in 1..=8u8 {
            let (ow, oh) = if swaps_axes(exif) { (h, w) } else { (w, h) };
            for oy in 0..oh {
                for ox in 0..ow {
                    let r = source_rect(
                        exif,
                        f64::from(w),
                        f64::from(h),
                        SrcRect {
                            x: f64::from(ox),
                            y: f64::from(oy),
                            w: 1.0,
                            h: 1.0,
                        },
                    );
                    let (sx, sy) = source_pixel(exif, w, h, ox, oy);
                    assert_eq!(
                        (r.x, r.y, r.w, r.h),
                        (f64::from(sx), f64::from(sy), 1.0, 1.0),
                        "exif {exif}"
                    );
                }
            }
        }
    }
}
