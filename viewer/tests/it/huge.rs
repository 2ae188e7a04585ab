//! A 12000×9000 JPEG is shown (decoded at 1/8 scale) without a big allocation.
//! (The image crates and the viewer are optimised in test builds: see the root Cargo.toml.)

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use nekos_viewer::{ScaleMode, render_frame};

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn huge_jpeg_is_shown_with_little_memory() {
    let (w, h) = (12000u32, 9000u32);
    let jpg = {
        // Left half dark, right half light.
        let raw: Vec<u8> = (0..h)
            .flat_map(|_| (0..w).map(move |x| if x < w / 2 { 40 } else { 220 }))
            .collect();
        let mut jpg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpg, 80)
            .write_image(&raw, w, h, ExtendedColorType::L8)
            .unwrap();
        jpg
    };
    // Reset the peak-RSS counter so only the viewer's work is measured.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let t = std::time::Instant::now();
    let out = render_frame(&jpg, 1024, 768, ScaleMode::Fit).unwrap();
    let peak = peak_rss_kib();
    eprintln!(
        "decoded in {:?}, peak RSS {} MiB (was {} MiB)",
        t.elapsed(),
        peak / 1024,
        before / 1024
    );
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "used {} MiB",
        (peak - before) / 1024
    );
    let px = |x: u32, y: u32| out[((y * 1024 + x) * 4) as usize];
    assert!(px(100, 384) < 80 && px(900, 384) > 180);
}
