//! Peak memory of the viewer's photo → frame path for one photo: decode as the viewer
//! decodes for the output, scale into a `width`×`height` XRGB buffer standing in for the
//! wl_shm buffer (touched in full, as the compositor maps it), drop the decoded image, and
//! print VmHWM (peak RSS) and VmRSS. Run the static build natively (RSS does not depend
//! on TCG):
//!
//! ```sh
//! cargo build --release --target x86_64-unknown-linux-musl -p nekos-viewer --example frame_rss
//! target/x86_64-unknown-linux-musl/release/examples/frame_rss cats/grey-longhair.jpg 1280 800
//! ```

use nekos_viewer::ScaleMode;
use nekos_viewer::render::{Target, compose_into, decode_for};

fn status_kb(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map_or_else(|| "?".into(), |v| v.trim().to_string())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .ok_or("usage: frame_rss PHOTO [WIDTH HEIGHT]")?;
    let num = |i: usize, d: u32| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (w, h) = (num(1, 1280), num(2, 800));
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    // The buffer the frame goes to, all pages present (as a shown wl_shm buffer's are).
    let mut shm = vec![0x5au32; w as usize * h as usize];
    let before = status_kb("VmRSS");
    let target = Target {
        width: w,
        height: h,
        mode: ScaleMode::Fit,
    };
    let d = decode_for(&bytes, Some(target))?;
    compose_into(&d, w, h, ScaleMode::Fit, &mut shm);
    drop(d);
    drop(bytes);
    println!(
        "{path}: rss with the buffer {before}, peak {}, after {} (pixel {:08x})",
        status_kb("VmHWM"),
        status_kb("VmRSS"),
        shm[shm.len() / 2]
    );
    Ok(())
}
