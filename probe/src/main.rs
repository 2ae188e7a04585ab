//! nekos-probe: the floor of issue #15's comparison. As `/init` it does the least a system
//! needs to put one cat on screen — mount /dev and /proc, decode one photo with the viewer's
//! own render core, scale it to the mode, set that mode on one dumb buffer and copy the frame
//! in — printing a `nekos: t=<ms> <phase>` mark (CLOCK_BOOTTIME) after each step, then its
//! memory use, then sleeps forever (PID 1 must never exit).
//!
//! No `unsafe`: the `drm` crate wraps the ioctls and the mapping, rustix the mounts.

mod pure;

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use drm::buffer::{Buffer as _, DrmFourcc};
use drm::control::{Device as _, ModeTypeFlags, connector};
use nekos_viewer::ScaleMode;

const PHOTO_DIR: &str = "/usr/share/nekos/cats";
const CARD: &str = "/dev/dri/card0";
/// How long to wait for the DRM driver to register its device (bochs probes in well under
/// a second under TCG; NekOS's init waits 5 s by default).
const CARD_WAIT: Duration = Duration::from_secs(10);

struct Card(std::fs::File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl drm::control::Device for Card {}

fn now_ms() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    (ts.tv_sec as u64).saturating_mul(1000) + (ts.tv_nsec as u64) / 1_000_000
}

/// Writes one line to the console; a console that fails is no reason to stop.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn mark(phase: &str) {
    say(&pure::mark(now_ms(), phase));
}

fn mount(source: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    if let Err(e) = rustix::mount::mount(
        source,
        target,
        fstype,
        rustix::mount::MountFlags::empty(),
        None,
    ) {
        // EBUSY: already mounted (e.g. the kernel's devtmpfs automount).
        if e != rustix::io::Errno::BUSY {
            say(&format!("probe: mount {fstype} on {target}: {e}"));
        }
    }
}

/// Waits (bounded) for the DRM device node to appear in devtmpfs.
fn wait_for_card() -> Result<(), String> {
    let start = Instant::now();
    while !Path::new(CARD).exists() {
        if start.elapsed() > CARD_WAIT {
            return Err(format!(
                "{CARD} did not appear within {} s (no KMS driver? expected -vga std)",
                CARD_WAIT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

struct Output {
    card: Card,
    conn: connector::Handle,
    crtc: drm::control::crtc::Handle,
    mode: drm::control::Mode,
}

/// The first connected connector, its preferred mode, and a CRTC its encoders can drive.
fn open_output() -> Result<Output, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(CARD)
        .map_err(|e| format!("open {CARD}: {e}"))?;
    let card = Card(file);
    let res = card
        .resource_handles()
        .map_err(|e| format!("{CARD}: resources: {e}"))?;
    for &conn in res.connectors() {
        let Ok(info) = card.get_connector(conn, true) else {
            continue;
        };
        if info.state() != connector::State::Connected {
            continue;
        }
        let Some(mode) = info
            .modes()
            .iter()
            .find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED))
            .or_else(|| info.modes().first())
            .copied()
        else {
            continue;
        };
        for enc in info
            .current_encoder()
            .into_iter()
            .chain(info.encoders().iter().copied())
        {
            let Ok(e) = card.get_encoder(enc) else {
                continue;
            };
            if let Some(crtc) = e
                .crtc()
                .or_else(|| res.filter_crtcs(e.possible_crtcs()).first().copied())
            {
                return Ok(Output {
                    card,
                    conn,
                    crtc,
                    mode,
                });
            }
        }
    }
    Err(format!(
        "{CARD}: no connected connector with a mode and a CRTC"
    ))
}

fn run() -> Result<(), String> {
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("proc", "/proc", "proc");
    mark("init-start");

    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let photos = nekos_viewer::config::list_photos(Path::new(PHOTO_DIR))
        .map_err(|e| format!("cannot list {PHOTO_DIR}: {e}"))?;
    let names: Vec<String> = photos
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let idx = pure::pick_photo(&names, &cmdline).ok_or(format!("no photo in {PHOTO_DIR}"))?;
    let path = photos.get(idx).ok_or("photo index out of range")?;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let decoded = nekos_viewer::render::decode(&bytes)
        .map_err(|e| format!("{}: does not decode: {e}", path.display()))?;
    drop(bytes);
    mark("photo-decoded");

    wait_for_card()?;
    let out = open_output()?;
    let (w, h) = out.mode.size();
    let (w, h) = (u32::from(w), u32::from(h));
    let frame = nekos_viewer::render::compose(&decoded, w, h, ScaleMode::Fit);
    drop(decoded);
    mark("photo-scaled");

    let mut db = out
        .card
        .create_dumb_buffer((w, h), DrmFourcc::Xrgb8888, 32)
        .map_err(|e| format!("{CARD}: dumb buffer {w}x{h}: {e}"))?;
    let fb = out
        .card
        .add_framebuffer(&db, 24, 32)
        .map_err(|e| format!("{CARD}: add framebuffer: {e}"))?;
    out.card
        .set_crtc(out.crtc, Some(fb), (0, 0), &[out.conn], Some(out.mode))
        .map_err(|e| format!("{CARD}: set mode {w}x{h}: {e}"))?;
    mark("mode-set");

    // The buffer is being scanned out: writing into it is what puts the cat on screen.
    let pitch = db.pitch() as usize;
    let mut map = out
        .card
        .map_dumb_buffer(&mut db)
        .map_err(|e| format!("{CARD}: map dumb buffer: {e}"))?;
    let row_bytes = w as usize * 4;
    for (y, row) in frame.pixels.chunks_exact(w as usize).enumerate() {
        let Some(dst) = map.get_mut(y * pitch..y * pitch + row_bytes) else {
            break;
        };
        for (d, p) in dst.chunks_exact_mut(4).zip(row) {
            d.copy_from_slice(&p.to_le_bytes());
        }
    }
    drop(map);
    drop(frame);
    mark("frame-shown");
    say(&format!(
        "probe: showing {}",
        names.get(idx).map(String::as_str).unwrap_or("?")
    ));

    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    say(&pure::mem_line(&meminfo, &status));
    // Keep the DRM fd (and so the mode and the buffer) for as long as the probe lives.
    std::mem::forget(out);
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        say(&format!("probe: error: {e}"));
    }
    // PID 1 must never exit (the kernel would panic): sleep forever.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
