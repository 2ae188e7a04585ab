//! Reduced-scale JPEG decoding: chosen only when the photo is larger than what the output
//! shows of it, and the frame is laid out exactly as a full decode lays it out.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use nekos_viewer::ScaleMode;
use nekos_viewer::render::{Target, compose, decode, decode_for, jpeg_scale_denominator};

fn target(width: u32, height: u32, mode: ScaleMode) -> Target {
    Target {
        width,
        height,
        mode,
    }
}

/// A smooth colour gradient with a dark square, as a JPEG.
fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let dark = (w / 3..w / 2).contains(&x) && (h / 3..h / 2).contains(&y);
            let r = (x * 255 / w) as u8;
            let g = (y * 255 / h) as u8;
            raw.extend_from_slice(&if dark { [10, 10, 10] } else { [r, g, 128] });
        }
    }
    let mut jpg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpg, 90)
        .write_image(&raw, w, h, ExtendedColorType::Rgb8)
        .unwrap();
    jpg
}

#[test]
fn scale_is_reduced_only_when_the_photo_is_larger_than_shown() {
    let out = |mode| target(1280, 800, mode);
    // The shipped cats, the output's own size, and photos less than twice as large as
    // what is shown of them: full decode, in every mode.
    for (w, h) in [
        (451, 300),
        (1001, 648),
        (640, 960),
        (1280, 800),
        (2000, 1500),
    ] {
        for mode in [ScaleMode::Fit, ScaleMode::Fill, ScaleMode::Actual] {
            let n = jpeg_scale_denominator(w, h, 1, out(mode));
            assert_eq!(n, 1, "{w}x{h} {mode:?} decoded at 1/{n}");
        }
    }
    // A 12 MP camera photo on 1280×800 (fit: 1067×800 on screen): 1/2 has enough pixels,
    // 1/4 (1000×750) would not.
    assert_eq!(
        jpeg_scale_denominator(4000, 3000, 1, out(ScaleMode::Fit)),
        2
    );
    // Fill shows a 4000×2500 crop on 1280×800: 1/2 too (1/4 would be 1000 < 1280).
    assert_eq!(
        jpeg_scale_denominator(4000, 3000, 1, out(ScaleMode::Fill)),
        2
    );
    assert_eq!(
        jpeg_scale_denominator(6000, 4000, 1, out(ScaleMode::Fit)),
        4
    );
    assert_eq!(
        jpeg_scale_denominator(12000, 9000, 1, out(ScaleMode::Fit)),
        8
    );
    // Actual size never reduces: one photo pixel per screen pixel.
    assert_eq!(
        jpeg_scale_denominator(12000, 9000, 1, out(ScaleMode::Actual)),
        1
    );
    // A portrait photo stored sideways (EXIF 6): the axes swap before the comparison.
    // Upright 3000×4000 on 1280×800 is 600×800 on screen: 1/2 gives 1500×2000 ≥ that,
    // 1/4 gives 750×1000, still ≥ 600×800; 1/8 is 375×500, too few.
    assert_eq!(
        jpeg_scale_denominator(4000, 3000, 6, out(ScaleMode::Fit)),
        4
    );
    assert_eq!(
        jpeg_scale_denominator(4000, 3000, 1, out(ScaleMode::Fit)),
        2
    );
}

#[test]
fn reduced_decode_gives_the_same_frame_layout() {
    let (w, h) = (2600, 1800);
    let jpg = photo(w, h);
    let t = target(640, 400, ScaleMode::Fit);
    assert_eq!(jpeg_scale_denominator(w, h, 1, t), 4);
    let reduced = decode_for(&jpg, Some(t)).unwrap();
    assert_eq!((reduced.image.width, reduced.image.height), (650, 450));
    assert_eq!((reduced.full_width, reduced.full_height), (w, h));
    let full = decode(&jpg).unwrap();
    assert_eq!((full.image.width, full.image.height), (w, h));
    let a = compose(&reduced, 640, 400, ScaleMode::Fit);
    let b = compose(&full, 640, 400, ScaleMode::Fit);
    assert_eq!((a.width, a.height), (b.width, b.height));
    // The same letterbox: the photo covers exactly the same pixels.
    let black = |p: u32| p == 0xff00_0000;
    let covered_a: Vec<bool> = a.pixels.iter().map(|p| black(*p)).collect();
    let covered_b: Vec<bool> = b.pixels.iter().map(|p| black(*p)).collect();
    assert_eq!(covered_a, covered_b);
    assert!(covered_a.iter().filter(|b| **b).count() > 640 * 400 / 20);
    // And the same picture, up to the reduced IDCT's rounding.
    let mut total = 0u64;
    let mut worst = 0i32;
    for (p, q) in a.pixels.iter().zip(&b.pixels) {
        for shift in [0, 8, 16] {
            let d = ((p >> shift & 0xff) as i32 - (q >> shift & 0xff) as i32).abs();
            total += d as u64;
            worst = worst.max(d);
        }
    }
    let mean = total as f64 / (640.0 * 400.0 * 3.0);
    assert!(mean < 2.0, "mean difference {mean}");
    assert!(worst < 60, "worst difference {worst}");
}

#[test]
fn photo_not_larger_than_the_output_is_decoded_at_full_size() {
    let jpg = photo(320, 200);
    let d = decode_for(&jpg, Some(target(640, 400, ScaleMode::Fit))).unwrap();
    assert_eq!((d.image.width, d.image.height), (320, 200));
    // Just under twice the shown size (638×400 on screen): still full size.
    let jpg = photo(1260, 790);
    let d = decode_for(&jpg, Some(target(640, 400, ScaleMode::Fit))).unwrap();
    assert_eq!((d.image.width, d.image.height), (1260, 790));
    // Exactly twice (635×400 on screen): half.
    let jpg = photo(1270, 800);
    let d = decode_for(&jpg, Some(target(640, 400, ScaleMode::Fit))).unwrap();
    assert_eq!((d.image.width, d.image.height), (635, 400));
}

#[test]
fn header_sizes_without_decoding() {
    use nekos_viewer::render::dimensions;
    assert_eq!(dimensions(&photo(48, 40)), Some((48, 40)));
    let png =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cats/chelsea.png"))
            .unwrap();
    assert_eq!(dimensions(&png), Some((451, 300)));
    assert_eq!(dimensions(b"\xff\xd8\xff\xe0 cut"), None);
    assert_eq!(dimensions(b"plain text"), None);
}
