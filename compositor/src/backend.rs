//! Backends: DRM/KMS on dumb buffers, or headless (memory). They draw a `Scene` and know
//! nothing of Wayland; the loop driver (`run.rs`) calls them from outside.

use std::os::unix::io::OwnedFd;
use std::path::Path;

use smithay::backend::drm::{
    DrmDevice, DrmDeviceFd, DrmDeviceNotifier, DrmSurface, PlaneConfig, PlaneState,
};
use smithay::reexports::drm::buffer::{Buffer as _, DrmFourcc};
use smithay::reexports::drm::control::dumbbuffer::DumbBuffer;
use smithay::reexports::drm::control::{
    Device as ControlDevice, ModeTypeFlags, connector, framebuffer,
};
use smithay::utils::{DeviceFd, Rectangle, Transform};

use crate::compose::{Target, render_rect};
use crate::damage::DamageList;
use crate::scene::Scene;

struct Scanout {
    db: DumbBuffer,
    fb: framebuffer::Handle,
    pitch: usize,
    /// Scene damage this buffer has not seen yet.
    damage: DamageList,
}

pub struct DrmOutput {
    _device: DrmDevice,
    surface: DrmSurface,
    fd: DrmDeviceFd,
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
    /// Opens a DRM device, picks the first connected connector and its preferred mode.
    pub fn open(path: &Path) -> Result<(DrmOutput, DrmDeviceNotifier), String> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let fd = DrmDeviceFd::new(DeviceFd::from(OwnedFd::from(file)));
        let (mut device, notifier) =
            DrmDevice::new(fd.clone(), true).map_err(|e| format!("DRM device: {e}"))?;
        let res = fd
            .resource_handles()
            .map_err(|e| format!("resources: {e}"))?;

        let mut chosen = None;
        for &conn in res.connectors() {
            let Ok(info) = fd.get_connector(conn, true) else {
                continue;
            };
            if info.state() != connector::State::Connected || info.modes().is_empty() {
                continue;
            }
            let mode = info
                .modes()
                .iter()
                .find(|m| m.mode_type().contains(ModeTypeFlags::PREFERRED))
                .copied()
                .unwrap_or(info.modes()[0]);
            // An encoder and a CRTC it can drive.
            let mut crtc = None;
            let encoders = info
                .current_encoder()
                .into_iter()
                .chain(info.encoders().iter().copied());
            for enc in encoders {
                let Ok(e) = fd.get_encoder(enc) else { continue };
                if let Some(c) = e.crtc() {
                    crtc = Some(c);
                    break;
                }
                if let Some(c) = res.filter_crtcs(e.possible_crtcs()).first() {
                    crtc = Some(*c);
                    break;
                }
            }
            if let Some(crtc) = crtc {
                chosen = Some((conn, mode, crtc));
                break;
            }
        }
        let (conn, mode, crtc) = chosen.ok_or("no connected connector with a mode and CRTC")?;
        let (w, h) = mode.size();
        let (width, height) = (u32::from(w), u32::from(h));
        let surface = device
            .create_surface(crtc, mode, &[conn])
            .map_err(|e| format!("create surface: {e}"))?;

        let mut buffers = Vec::new();
        for _ in 0..2 {
            let db = fd
                .create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32)
                .map_err(|e| format!("dumb buffer: {e}"))?;
            let fb = fd
                .add_framebuffer(&db, 24, 32)
                .map_err(|e| format!("add framebuffer: {e}"))?;
            let pitch = db.pitch() as usize;
            let mut damage = DamageList::new();
            let b = crate::damage::Rect::new(0, 0, width as i32, height as i32);
            damage.add(b, b);
            buffers.push(Scanout {
                db,
                fb,
                pitch,
                damage,
            });
        }
        Ok((
            DrmOutput {
                _device: device,
                surface,
                fd,
                buffers,
                front: None,
                flip_pending: false,
                committed: false,
                width,
                height,
                flipping_client_frames: 0,
            },
            notifier,
        ))
    }

    pub fn busy(&self) -> bool {
        self.flip_pending
    }

    /// Draws the scene's damage into the back buffer and queues a flip.
    /// Returns Ok(true) if a flip was queued.
    pub fn render(&mut self, scene: &mut Scene) -> Result<bool, String> {
        if self.flip_pending {
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
        let Some(buf) = self.buffers.get_mut(back) else {
            return Ok(false);
        };
        if buf.damage.is_empty() {
            return Ok(false);
        }
        {
            let pitch = buf.pitch;
            let mut map = self
                .fd
                .map_dumb_buffer(&mut buf.db)
                .map_err(|e| format!("map dumb buffer: {e}"))?;
            let mut target = Target {
                bytes: &mut map,
                width: self.width,
                height: self.height,
                stride: pitch,
            };
            let pos = scene.position();
            for r in buf.damage.take() {
                render_rect(&mut target, scene.image.as_ref().map(|i| (i, pos)), r);
            }
        }
        let plane = PlaneState {
            handle: self.surface.plane(),
            config: Some(PlaneConfig {
                src: Rectangle::from_size((f64::from(self.width), f64::from(self.height)).into()),
                dst: Rectangle::from_size((self.width as i32, self.height as i32).into()),
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
        self.front = Some(back);
        self.flipping_client_frames = scene.client_frames;
        Ok(true)
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
    pub fn new(width: u32, height: u32) -> Headless {
        Headless {
            width,
            height,
            bytes: vec![0; width as usize * height as usize * 4],
        }
    }

    /// Returns true if anything was drawn.
    pub fn render(&mut self, scene: &mut Scene) -> bool {
        if scene.damage.is_empty() {
            return false;
        }
        let pos = scene.position();
        let mut target = Target {
            bytes: &mut self.bytes,
            width: self.width,
            height: self.height,
            stride: self.width as usize * 4,
        };
        for r in scene.damage.take() {
            render_rect(&mut target, scene.image.as_ref().map(|i| (i, pos)), r);
        }
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
