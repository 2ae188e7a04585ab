//! EXIF orientation is applied exactly once, for all eight values, through the real
//! decode path (JPEG with an EXIF APP1 segment), plus scale-mode checks.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use nekos_viewer::{ScaleMode, render_frame};

const RED: [u8; 3] = [230, 20, 20];
const GREEN: [u8; 3] = [20, 200, 20];
const BLUE: [u8; 3] = [20, 20, 230];
const WHITE: [u8; 3] = [240, 240, 240];

/// The upright picture: 64×32, quadrants red | green over blue | white.
fn upright(x: u32, y: u32) -> [u8; 3] {
    match (x < 32, y < 16) {
        (true, true) => RED,
        (false, true) => GREEN,
        (true, false) => BLUE,
        (false, false) => WHITE,
    }
}
const UW: u32 = 64;
const UH: u32 = 32;

/// How a camera would store the upright picture for EXIF orientation `v`
/// (written out per value, independent of the viewer's own mapping).
fn stored(v: u8) -> (u32, u32, Vec<u8>) {
    let (w, h) = if v >= 5 { (UH, UW) } else { (UW, UH) };
    let mut data = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (ux, uy) = match v {
                1 => (x, y),
                2 => (UW - 1 - x, y),
                3 => (UW - 1 - x, UH - 1 - y),
                4 => (x, UH - 1 - y),
                5 => (y, x),
                // Displayed = stored rotated 90° clockwise, so stored = upright rotated
                // 90° counter-clockwise.
                6 => (UW - 1 - y, x),
                7 => (UW - 1 - y, UH - 1 - x),
                // Displayed = stored rotated 90° counter-clockwise.
                8 => (y, UH - 1 - x),
                _ => unreachable!(),
            };
            data.extend_from_slice(&upright(ux, uy));
        }
    }
    (w, h, data)
}

/// Minimal EXIF APP1 with one IFD0 entry: Orientation = v.
fn exif_app1(v: u8) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&u16::from(v).to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut seg = vec![0xff, 0xe1];
    seg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

fn jpeg_with_orientation(v: u8) -> Vec<u8> {
    let (w, h, data) = stored(v);
    let mut jpg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpg, 95)
        .write_image(&data, w, h, ExtendedColorType::Rgb8)
        .unwrap();
    assert_eq!(&jpg[..2], &[0xff, 0xd8]);
    let mut out = jpg[..2].to_vec();
    out.extend(exif_app1(v));
    out.extend_from_slice(&jpg[2..]);
    out
}

fn px(rgba: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let o = ((y * w + x) * 4) as usize;
    [rgba[o], rgba[o + 1], rgba[o + 2]]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i16::from(*x) - i16::from(y)).abs() < 40)
}

#[test]
fn all_eight_orientations_display_upright() {
    for v in 1..=8u8 {
        let jpg = jpeg_with_orientation(v);
        // Output of the upright size: fit is 1:1, so quadrant centres are exact.
        let out = render_frame(&jpg, UW, UH, ScaleMode::Fit).unwrap();
        for (x, y) in [(8, 4), (56, 4), (8, 28), (56, 28), (20, 10), (44, 22)] {
            let got = px(&out, UW, x, y);
            assert!(
                close(got, upright(x, y)),
                "orientation {v}: pixel ({x},{y}) is {got:?}, want {:?}",
                upright(x, y)
            );
        }
    }
}

#[test]
fn rotated_photo_is_letterboxed_as_landscape() {
    // Stored portrait (32×64) with orientation 6 is a 64×32 landscape picture:
    // on a 128×128 output, fit gives 128×64 with black bars above and below.
    let jpg = jpeg_with_orientation(6);
    let out = render_frame(&jpg, 128, 128, ScaleMode::Fit).unwrap();
    assert_eq!(px(&out, 128, 64, 10), [0, 0, 0]);
    assert_eq!(px(&out, 128, 64, 118), [0, 0, 0]);
    assert!(close(px(&out, 128, 16, 40), RED));
    assert!(close(px(&out, 128, 112, 88), WHITE));
}

#[test]
fn fill_and_actual_modes() {
    let jpg = jpeg_with_orientation(1);
    // Fill a square: the centre 32×32 of the photo is cropped and enlarged, no bars.
    let out = render_frame(&jpg, 64, 64, ScaleMode::Fill).unwrap();
    assert!(close(px(&out, 64, 2, 2), RED));
    assert!(close(px(&out, 64, 61, 61), WHITE));
    // Actual: centred 1:1 on a larger output, black around it.
    let out = render_frame(&jpg, 100, 50, ScaleMode::Actual).unwrap();
    assert_eq!(px(&out, 100, 2, 2), [0, 0, 0]);
    assert!(close(px(&out, 100, 18 + 8, 9 + 4), RED));
    assert!(close(px(&out, 100, 18 + 56, 9 + 28), WHITE));
}

#[test]
fn shipped_cats_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cats");
    let photos = nekos_viewer::config::list_photos(&dir).unwrap();
    assert!(photos.len() >= 5, "{photos:?}");
    for p in photos {
        let bytes = std::fs::read(&p).unwrap();
        let out = render_frame(&bytes, 320, 240, ScaleMode::Fit)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(out.len(), 320 * 240 * 4);
        // Not a black frame.
        assert!(
            out.chunks(4)
                .filter(|c| c[0] > 40 || c[1] > 40 || c[2] > 40)
                .count()
                > 320 * 100
        );
    }
}
