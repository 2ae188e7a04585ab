//! Backends: DRM/KMS on dumb buffers, or headless (memory). They draw a `Scene` and know
//! nothing of Wayland; the loop driver (`run.rs`) calls them from outside.

use std::os::unix::io::OwnedFd;
use std::path::Path;

use smithay::backend::drm::{
    DrmDevice, DrmDeviceFd, DrmDeviceNotifier, DrmSurface, PlaneConfig, PlaneState,
};
use smithay::reexports::drm::buffer::{Buffer as _, DrmFourcc};
use smithay::reexports::drm::control::dumbbuffer::{DumbBuffer, DumbMapping};
use smithay::reexports::drm::control::{
    Device as ControlDevice, Mode, ModeTypeFlags, ResourceHandles, connector, crtc, framebuffer,
};
use smithay::utils::{DeviceFd, Rectangle, Transform};

use crate::compose::{BLACK, Target, render_rect};
use crate::damage::{DamageList, Rect};
use crate::scene::Scene;
use crate::timeline::{Phase, Timeline};

struct Scanout {
    fb: framebuffer::Handle,
    pitch: usize,
    /// Mapped once for the process's lifetime: no mmap, munmap and page faults per frame.
    map: DumbMapping<'static>,
    /// Scene damage this buffer has not seen yet.
    damage: DamageList,
}

/// Draws `rects` (output coordinates) of the scene into `target`: the client's buffer
/// straight from its shm where it lies, black elsewhere.
fn draw(target: &mut Target<'_>, scene: &Scene, rects: &[Rect]) {
    let pos = scene.position();
    let copied = match (&scene.content, scene.image_size) {
        (Some(content), Some(_)) => content.with_pixels(&mut |pixels| {
            for r in rects {
                render_rect(target, Some((pixels, pos)), *r);
            }
        }),
        _ => false,
    };
    // No buffer (or an unreadable one): the damaged area shows black.
    if !copied {
        for r in rects {
            render_rect(target, None, *r);
        }
    }
}

/// The first connected connector with a mode and a CRTC that can drive it: the
/// connector, its preferred (else first) mode and the CRTC. `probe` asks the kernel to
/// probe each connector afresh instead of reporting what it last found.
fn choose_output(
    fd: &DrmDeviceFd,
    res: &ResourceHandles,
    probe: bool,
) -> Option<(connector::Handle, Mode, crtc::Handle)> {
    for &conn in res.connectors() {
        let Ok(info) = fd.get_connector(conn, probe) else {
            continue;
        };
        if info.state() != connector::State::Connected {
            continue;
        }
        let modes = info.modes();
        let Some(mode) = modes
            .iter()
            .find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED))
            .or_else(|| modes.first())
            .copied()
        else {
            continue;
        };
        // An encoder and a CRTC it can drive.
        let encoders = info
            .current_encoder()
            .into_iter()
            .chain(info.encoders().iter().copied());
        for enc in encoders {
            let Ok(e) = fd.get_encoder(enc) else { continue };
            if let Some(c) = e.crtc() {
                return Some((conn, mode, c));
            }
            if let Some(c) = res.filter_crtcs(e.possible_crtcs()).first() {
                return Some((conn, mode, *c));
            }
        }
    }
    None
}

pub struct DrmOutput {
    _device: DrmDevice,
    surface: DrmSurface,
    buffers: Vec<Scanout>,
    /// Buffer on screen (or queued to be).
    front: Option<usize>,
    flip_pending: bool,
    committed: bool,
    pub width: u32,
    pub height: u32,
    /// Client frames included in the frame being flipped.
    pub flipping_client_frames: u64,
}

impl DrmOutput {
    /// Opens a DRM device, picks the first connected connector and its preferred mode,
    /// allocates and maps two scanout buffers and sets the mode on the first as the kernel
    /// allocated it (the flip completes later, through the notifier). `timeline` marks its
    /// phases.
    pub fn open(path: &Path, timeline: Timeline) -> Result<(DrmOutput, DrmDeviceNotifier), String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let fd = DrmDeviceFd::new(DeviceFd::from(OwnedFd::from(file)));
        // Connectors are not reset first: that is a modeset of its own (everything off)
        // before ours; the kiosk's one commit takes the CRTC and connector over directly.
        let (mut device, notifier) =
            DrmDevice::new(fd.clone(), false).map_err(|e| format!("DRM device: {e}"))?;
        timeline.mark(Phase::DrmDeviceOpen);
        let res = fd
            .resource_handles()
            .map_err(|e| format!("resources: {e}"))?;

        // The kernel's last probe first (the fbdev console's at boot): re-probing every
        // connector (EDID read, mode list rebuilt and validated) costs CPU the viewer's
        // first decode needs under TCG. Only if that finds nothing usable, probe.
        let chosen = choose_output(&fd, &res, false).or_else(|| choose_output(&fd, &res, true));
        let (conn, mode, crtc) = chosen.ok_or("no connected connector with a mode and CRTC")?;
        let (w, h) = mode.size();
        let (width, height) = (u32::from(w), u32::from(h));
        let surface = device
            .create_surface(crtc, mode, &[conn])
            .map_err(|e| format!("create surface: {e}"))?;
        timeline.mark(Phase::DrmModeChosen);

        let bounds = Rect::new(0, 0, width as i32, height as i32);
        let mut buffers = Vec::new();
        for _ in 0..2 {
            let db = fd
                .create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32)
                .map_err(|e| format!("dumb buffer: {e}"))?;
            let fb = fd
                .add_framebuffer(&db, 24, 32)
                .map_err(|e| format!("add framebuffer: {e}"))?;
            let pitch = db.pitch() as usize;
            // The mapping borrows the buffer; both live as long as the process (the kernel
            // frees them when the device closes at exit), so the buffer is leaked to give
            // the mapping a 'static borrow instead of a self-referential struct.
            let db: &'static mut DumbBuffer = Box::leak(Box::new(db));
            let map = fd
                .map_dumb_buffer(db)
                .map_err(|e| format!("map dumb buffer: {e}"))?;
            // A new dumb buffer's contents are undefined (VRAM): all of it is damaged.
            let mut damage = DamageList::new();
            damage.add(bounds, bounds);
            buffers.push(Scanout {
                fb,
                pitch,
                map,
                damage,
            });
        }
        timeline.mark(Phase::DrmBuffersMapped);
        let mut out = DrmOutput {
            _device: device,
            surface,
            buffers,
            front: None,
            flip_pending: false,
            committed: false,
            width,
            height,
            flipping_client_frames: 0,
        };
        // The modeset now, so it overlaps the viewer's first decode instead of waiting for
        // its first frame; on the first buffer undrawn. Kernels hand out dumb buffers
        // zeroed (none gives away stale memory), and zero is black in XRGB8888. Drawing
        // black into it first cost more than the time: under TCG a dumb buffer in VRAM
        // that the CPU has written is copied into VRAM when it is first scanned out
        // (bochs: ~40 ms of the one vCPU); one never written is only cleared there. The
        // buffer keeps its damage (all of it), so its first real frame repaints it whole.
        out.queue(0)?;
        timeline.mark(Phase::DrmModesetCommitted);
        Ok((out, notifier))
    }

    pub fn busy(&self) -> bool {
        self.flip_pending
    }

    /// Draws the scene's new damage into the back buffer and queues a flip. Only new
    /// scene damage makes a frame: the back buffer's older damage is repaired with it,
    /// never by a repaint of its own. Returns Ok(true) if a flip was queued.
    pub fn render(&mut self, scene: &mut Scene) -> Result<bool, String> {
        if self.flip_pending || scene.damage.is_empty() {
            return Ok(false);
        }
        let bounds = scene.bounds();
        let new = scene.damage.take();
        for b in &mut self.buffers {
            for r in &new {
                b.damage.add(*r, bounds);
            }
        }
        let back = match self.front {
            Some(i) => (i + 1) % self.buffers.len(),
            None => 0,
        };
        self.draw_and_queue(back, scene)?;
        self.flipping_client_frames = scene.client_frames;
        Ok(true)
    }

    /// Repairs buffer `idx`'s damage from `scene` and commits (first time: the modeset)
    /// or page-flips to it.
    fn draw_and_queue(&mut self, idx: usize, scene: &Scene) -> Result<(), String> {
        let (width, height) = (self.width, self.height);
        let Some(buf) = self.buffers.get_mut(idx) else {
            return Err(format!("no scanout buffer {idx}"));
        };
        let rects = buf.damage.take();
        let mut target = Target {
            bytes: &mut buf.map,
            width,
            height,
            stride: buf.pitch,
        };
        draw(&mut target, scene, &rects);
        self.queue(idx)
    }

    /// Commits buffer `idx` as it is: the modeset the first time, a page flip after.
    fn queue(&mut self, idx: usize) -> Result<(), String> {
        let (width, height) = (self.width, self.height);
        let Some(buf) = self.buffers.get(idx) else {
            return Err(format!("no scanout buffer {idx}"));
        };
        let plane = PlaneState {
            handle: self.surface.plane(),
            config: Some(PlaneConfig {
                src: Rectangle::from_size((f64::from(width), f64::from(height)).into()),
                dst: Rectangle::from_size((width as i32, height as i32).into()),
                transform: Transform::Normal,
                alpha: 1.0,
                damage_clips: None,
                fb: buf.fb,
                fence: None,
            }),
        };
        let res = if self.committed {
            self.surface.page_flip([plane], true)
        } else {
            self.surface.commit([plane], true)
        };
        res.map_err(|e| format!("page flip: {e}"))?;
        self.committed = true;
        self.flip_pending = true;
        self.front = Some(idx);
        Ok(())
    }

    /// The queued flip happened.
    pub fn flip_done(&mut self) {
        self.flip_pending = false;
    }
}

/// Renders into memory; a "frame" is presented as soon as it is drawn.
pub struct Headless {
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

impl Headless {
    /// A black output.
    pub fn new(width: u32, height: u32) -> Headless {
        Headless {
            width,
            height,
            bytes: BLACK.to_le_bytes().repeat(width as usize * height as usize),
        }
    }

    /// Returns true if anything was drawn.
    pub fn render(&mut self, scene: &mut Scene) -> bool {
        if scene.damage.is_empty() {
            return false;
        }
        let rects = scene.damage.take();
        let mut target = Target {
            bytes: &mut self.bytes,
            width: self.width,
            height: self.height,
            stride: self.width as usize * 4,
        };
        draw(&mut target, scene, &rects);
        true
    }
}

/// What a render call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendered {
    /// A flip is still pending; try again after it completes.
    Busy,
    /// Nothing to draw.
    Idle,
    /// Drawn and queued; it reaches the screen later (`Backend::presented`).
    Queued,
    /// Drawn and on screen now.
    Presented,
}

pub enum Backend {
    Drm(Box<DrmOutput>),
    Headless(Headless),
}

impl Backend {
    pub fn size(&self) -> (u32, u32) {
        match self {
            Backend::Drm(d) => (d.width, d.height),
            Backend::Headless(h) => (h.width, h.height),
        }
    }

    /// Draws the scene's pending damage if the output is free.
    pub fn render(&mut self, scene: &mut Scene) -> Result<Rendered, String> {
        match self {
            Backend::Drm(d) if d.busy() => Ok(Rendered::Busy),
            Backend::Drm(d) => Ok(if d.render(scene)? {
                Rendered::Queued
            } else {
                Rendered::Idle
            }),
            Backend::Headless(h) => Ok(if h.render(scene) {
                Rendered::Presented
            } else {
                Rendered::Idle
            }),
        }
    }

    /// A frame reached the screen: returns how many client frames it includes.
    pub fn presented(&mut self, scene: &Scene) -> u64 {
        match self {
            Backend::Drm(d) => {
                d.flip_done();
                d.flipping_client_frames
            }
            Backend::Headless(_) => scene.client_frames,
        }
    }

    /// True if frames reach the screen later (a flip), so more damage may wait.
    pub fn is_async(&self) -> bool {
        matches!(self, Backend::Drm(_))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;
    use crate::compose::Pixels;
    use crate::scene::Content;

    /// A client buffer in memory that counts how often it is read.
    struct Shm {
        bytes: Vec<u8>,
        width: u32,
        height: u32,
        reads: Rc<Cell<u32>>,
    }

    impl Content for Shm {
        fn with_pixels(&self, f: &mut dyn FnMut(&Pixels<'_>)) -> bool {
            self.reads.set(self.reads.get() + 1);
            let p = Pixels::new(
                &self.bytes,
                self.width,
                self.height,
                self.width as usize * 4,
            );
            p.map(|p| f(&p)).is_some()
        }
    }

    fn row_words(h: &Headless, y: usize) -> Vec<u32> {
        let w = h.width as usize * 4;
        h.bytes[y * w..(y + 1) * w]
            .chunks(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn headless_copies_only_the_damaged_rows_from_the_clients_buffer() {
        let (w, h) = (8u32, 6u32);
        let mut out = Headless::new(w, h);
        let mut scene = Scene::new(w, h);
        // A new scene is black and undamaged: nothing to draw.
        assert!(!out.render(&mut scene));
        let reads = Rc::new(Cell::new(0));
        let client = |v: u32| Shm {
            bytes: v.to_le_bytes().repeat((w * h) as usize),
            width: w,
            height: h,
            reads: reads.clone(),
        };
        scene.image_size = Some((w, h));
        scene.content = Some(Box::new(client(0x0011_2233)));
        scene.damage_all();
        assert!(out.render(&mut scene));
        assert_eq!(reads.get(), 1, "one read of the client's buffer per frame");
        assert!(row_words(&out, 5).iter().all(|p| *p == 0x0011_2233));

        // The next buffer damages rows 2 and 3 only.
        scene.content = Some(Box::new(client(0x00aa_bbcc)));
        scene.damage.add(Rect::new(0, 2, 8, 2), scene.bounds());
        assert!(out.render(&mut scene));
        assert_eq!(reads.get(), 2);
        for y in 0..h as usize {
            let want = if y == 2 || y == 3 {
                0x00aa_bbcc
            } else {
                0x0011_2233
            };
            assert!(row_words(&out, y).iter().all(|p| *p == want), "row {y}");
        }
        // No new damage: no frame, and the buffer is not read again.
        assert!(!out.render(&mut scene));
        assert_eq!(reads.get(), 2);
    }

    #[test]
    fn no_buffer_draws_black() {
        let mut out = Headless::new(4, 4);
        out.bytes.fill(0x77);
        let mut scene = Scene::new(4, 4);
        scene.clear();
        assert!(out.render(&mut scene));
        assert!(out.bytes.chunks(4).all(|p| p == BLACK.to_le_bytes()));
    }
}
