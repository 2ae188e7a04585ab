//! Decode and scale timings per photo, for the photo → frame path under user-mode TCG
//! (issue #15). Build static and run it under QEMU's user-mode emulator, which translates
//! the code the way the guest's TCG does:
//!
//! ```sh
//! cargo build --release --target x86_64-unknown-linux-musl -p nekos-viewer --example frame_bench
//! qemu-x86_64 -cpu qemu64 target/x86_64-unknown-linux-musl/release/examples/frame_bench cats 1280 800 5
//! ```
//!
//! Arguments: the photo directory, the output size, and how many runs per photo (the median
//! is printed, in ms). "scale" is `compose` (a fresh frame, as the probe does), "into" is
//! `compose_into` a buffer drawn before (as the viewer scales into a wl_shm buffer). Each
//! line also carries an FNV-1a digest of the frame, so two builds can be checked for the
//! same pixels as well as timed.

use std::path::PathBuf;
use std::time::Instant;

use nekos_viewer::ScaleMode;
use nekos_viewer::render::{Frame, Target, compose, compose_into, decode_for};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn fnv1a(frame: &Frame) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in &frame.pixels {
        for b in p.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// `--digests DIR`: the digest of every photo's frame at several sizes in every mode (to
/// compare two builds' pixels), no timing.
fn digests(dir: &std::path::Path) -> Result<(), String> {
    let sizes = [
        (1280, 800),
        (1024, 768),
        (800, 600),
        (640, 480),
        (333, 777),
        (1, 1),
    ];
    let modes = [ScaleMode::Fit, ScaleMode::Fill, ScaleMode::Actual];
    for path in nekos_viewer::config::list_photos(dir).map_err(|e| e.to_string())? {
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        for (w, h) in sizes {
            for mode in modes {
                let f = nekos_viewer::render::render_xrgb(&bytes, w, h, mode)?;
                println!("{} {w}x{h} {mode:?} {:016x}", path.display(), fnv1a(&f));
            }
        }
    }
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--digests") {
        return digests(&PathBuf::from(args.get(1).map_or("cats", String::as_str)));
    }
    let dir = PathBuf::from(args.first().map_or("cats", String::as_str));
    let num = |i: usize, d: u32| args.get(i).and_then(|s| s.parse::<u32>().ok()).unwrap_or(d);
    let (w, h, runs) = (num(1, 1280), num(2, 800), num(3, 5).max(1));
    let photos = nekos_viewer::config::list_photos(&dir).map_err(|e| e.to_string())?;
    println!(
        "photo | decoded | decode ms | scale ms | into ms | digest   ({w}x{h}, fit, median of {runs})"
    );
    let mut shm = vec![0u32; w as usize * h as usize];
    for path in photos {
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        let target = Target {
            width: w,
            height: h,
            mode: ScaleMode::Fit,
        };
        let (mut dec_ms, mut scale_ms, mut into_ms) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        let mut size = (0, 0);
        for _ in 0..runs {
            let t0 = Instant::now();
            let d = decode_for(&bytes, Some(target))?;
            let t1 = Instant::now();
            size = (d.image.width, d.image.height);
            let f = compose(&d, w, h, ScaleMode::Fit);
            let t2 = Instant::now();
            compose_into(&d, w, h, ScaleMode::Fit, &mut shm);
            into_ms.push(t2.elapsed().as_secs_f64() * 1e3);
            drop(d);
            dec_ms.push((t1 - t0).as_secs_f64() * 1e3);
            scale_ms.push((t2 - t1).as_secs_f64() * 1e3);
            last = Some(f);
        }
        let digest = last.as_ref().map_or(0, fnv1a);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        println!(
            "{} | {}x{} | {:.1} | {:.1} | {:.1} | {digest:016x}",
            name.unwrap_or_default(),
            size.0,
            size.1,
            median(dec_ms),
            median(scale_ms),
            median(into_ms)
        );
    }
    Ok(())
}
