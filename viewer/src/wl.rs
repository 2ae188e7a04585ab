//! The Wayland side: one fullscreen xdg_toplevel drawn with wl_shm, keys from wl_keyboard.

use std::os::unix::io::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_registry, wl_seat, wl_shm, wl_shm_pool,
    wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

use crate::render::Frame;
use crate::sys::SharedMap;

/// Wakes the main loop from another thread (a pipe).
#[derive(Clone)]
pub struct Waker(Arc<OwnedFd>);

/// The pipe that wakes the main loop: its read end (for [`Window::new`]) and a [`Waker`].
/// Made before the window so a decoder can start before the Wayland connection is up.
pub fn wake_pipe() -> Result<(OwnedFd, Waker), String> {
    let (r, w) = pipe()?;
    Ok((r, Waker(Arc::new(w))))
}

impl Waker {
    pub fn wake(&self) {
        // A full pipe already holds a wake-up: nothing lost if this write fails.
        let _ = rustix::io::write(&*self.0, &[1u8]);
    }
}

/// What happened while waiting.
#[derive(Default)]
pub struct Events {
    pub closed: bool,
    pub configured: Option<(u32, u32)>,
    pub keys: Vec<u32>,
    /// The compositor released a buffer (a frame waiting for one can be uploaded).
    pub released: bool,
    /// A committed frame is on screen (its frame callback is done).
    pub presented: bool,
}

struct ShmBuffer {
    buffer: wl_buffer::WlBuffer,
    map: SharedMap,
    width: u32,
    height: u32,
    busy: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for ShmBuffer {
    fn drop(&mut self) {
        // The compositor has released the buffer or the window is going away; the
        // mapping is unmapped after this (field drop).
        self.buffer.destroy();
    }
}

#[derive(Default)]
struct State {
    compositor: Option<wl_compositor::WlCompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    seat: Option<wl_seat::WlSeat>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pending_size: (i32, i32),
    acked: bool,
    size: (u32, u32),
    /// Frames committed whose frame callback has not come yet.
    frames_on_their_way: u32,
    events: Events,
}

pub struct Window {
    conn: Connection,
    queue: EventQueue<State>,
    qh: QueueHandle<State>,
    state: State,
    surface: wl_surface::WlSurface,
    _xdg_surface: xdg_surface::XdgSurface,
    _toplevel: xdg_toplevel::XdgToplevel,
    /// At most two buffers: the one on screen and the next photo's.
    buffers: [Option<ShmBuffer>; 2],
    on_screen: Option<usize>,
    wake_r: OwnedFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    use rustix::pipe::{PipeFlags, pipe_with};
    pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(|e| format!("pipe: {e}"))
}

impl Window {
    /// Creates the fullscreen toplevel on `conn`; `wake_r` is the read end of
    /// [`wake_pipe`].
    pub fn new(conn: Connection, title: &str, wake_r: OwnedFd) -> Result<Window, String> {
        let mut queue = conn.new_event_queue::<State>();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        let mut state = State::default();
        queue
            .roundtrip(&mut state)
            .map_err(|e| format!("wayland: {e}"))?;
        let compositor = state.compositor.clone().ok_or("no wl_compositor")?;
        let wm_base = state.wm_base.clone().ok_or("no xdg_wm_base")?;
        if state.shm.is_none() {
            return Err("no wl_shm".into());
        }
        let surface = compositor.create_surface(&qh, ());
        let xdg_surface = wm_base.get_xdg_surface(&surface, &qh, ());
        let toplevel = xdg_surface.get_toplevel(&qh, ());
        toplevel.set_title(title.to_string());
        toplevel.set_app_id("nekos-viewer".to_string());
        toplevel.set_fullscreen(None);
        surface.commit();
        Ok(Window {
            conn,
            queue,
            qh,
            state,
            surface,
            _xdg_surface: xdg_surface,
            _toplevel: toplevel,
            buffers: [None, None],
            on_screen: None,
            wake_r,
        })
    }

    /// Waits for Wayland events, a wake-up or the timeout.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Events, String> {
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(|e| format!("wayland: {e}"))?;
        if !self.has_events() {
            self.conn
                .flush()
                .map_err(|e| format!("wayland flush: {e}"))?;
            if let Some(guard) = self.queue.prepare_read() {
                use rustix::event::{PollFd, PollFlags, Timespec, poll};
                let (wayland_ready, woken) = {
                    let wayland_fd = guard.connection_fd();
                    let mut fds = [
                        PollFd::new(&wayland_fd, PollFlags::IN),
                        PollFd::new(&self.wake_r, PollFlags::IN),
                    ];
                    // Round up to whole milliseconds, as poll(2) would: never wake early.
                    let ts = timeout.map(|d| {
                        let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
                        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
                        Timespec {
                            tv_sec: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
                            tv_nsec: i64::try_from(ms % 1000 * 1_000_000).unwrap_or(0),
                        }
                    });
                    let n = poll(&mut fds, ts.as_ref()).unwrap_or(0);
                    (
                        n > 0 && !fds[0].revents().is_empty(),
                        !fds[1].revents().is_empty(),
                    )
                };
                if wayland_ready {
                    match guard.read() {
                        Ok(_) => {}
                        // Only part of a message has arrived (it can be split between
                        // two writes, or its fd comes later): wait for the rest.
                        Err(wayland_client::backend::WaylandError::Io(e))
                            if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(format!("wayland read: {e}")),
                    }
                } else {
                    drop(guard);
                }
                if woken {
                    let mut b = [0u8; 64];
                    // Drain the nonblocking pipe; it ends with EAGAIN.
                    while rustix::io::read(&self.wake_r, &mut b).is_ok_and(|n| n > 0) {}
                }
            }
            self.queue
                .dispatch_pending(&mut self.state)
                .map_err(|e| format!("wayland: {e}"))?;
        }
        Ok(std::mem::take(&mut self.state.events))
    }

    fn has_events(&self) -> bool {
        let e = &self.state.events;
        e.closed || e.configured.is_some() || !e.keys.is_empty() || e.released || e.presented
    }

    fn new_buffer(&mut self, width: u32, height: u32) -> Result<ShmBuffer, String> {
        let shm = self.state.shm.clone().ok_or("no wl_shm")?;
        let stride = width as usize * 4;
        let len = stride * height as usize;
        let fd = rustix::fs::memfd_create(c"nekos-viewer", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd: {e}"))?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|e| format!("ftruncate: {e}"))?;
        let map = SharedMap::new(&fd, len).map_err(|e| format!("mmap: {e}"))?;
        let pool = shm.create_pool(fd.as_fd(), len as i32, &self.qh, ());
        let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let buffer = pool.create_buffer(
            0,
            width as i32,
            height as i32,
            stride as i32,
            wl_shm::Format::Xrgb8888,
            &self.qh,
            busy.clone(),
        );
        pool.destroy();
        Ok(ShmBuffer {
            buffer,
            map,
            width,
            height,
            busy,
        })
    }

    /// Has `paint` draw a `width`×`height` frame straight into the mapping of a buffer
    /// that is neither on screen nor held by the compositor and returns its slot for
    /// [`Window::show`]; `Ok(None)` while the compositor still holds it (retry after
    /// [`Events::released`]), with nothing painted. The slot's previous contents are gone.
    pub fn upload(
        &mut self,
        width: u32,
        height: u32,
        paint: &mut dyn FnMut(&mut [u32]),
    ) -> Result<Option<usize>, String> {
        use std::sync::atomic::Ordering;
        let Some(slot) = (0..2).find(|i| Some(*i) != self.on_screen) else {
            return Ok(None);
        };
        let fits = |b: &ShmBuffer| b.width == width && b.height == height;
        if self.buffers[slot].as_ref().is_some_and(|b| !fits(b)) {
            // A resize: the old buffer is never attached again.
            self.buffers[slot] = None;
        }
        if self.buffers[slot].is_none() {
            self.buffers[slot] = Some(self.new_buffer(width, height)?);
        }
        let Some(buf) = self.buffers[slot].as_mut() else {
            return Ok(None);
        };
        if buf.busy.load(Ordering::Acquire) {
            return Ok(None);
        }
        paint(buf.map.words_mut());
        Ok(Some(slot))
    }

    /// Puts the buffer in `slot` on screen: one attach, damage and commit.
    pub fn show(&mut self, slot: usize) {
        use std::sync::atomic::Ordering;
        let Some(buf) = self.buffers.get(slot).and_then(|b| b.as_ref()) else {
            return;
        };
        buf.busy.store(true, Ordering::Release);
        // Done once the compositor has this frame on screen (after its page flip).
        self.surface.frame(&self.qh, ());
        self.state.frames_on_their_way += 1;
        self.surface.attach(Some(&buf.buffer), 0, 0);
        self.surface
            .damage_buffer(0, 0, buf.width as i32, buf.height as i32);
        self.surface.commit();
        let _ = self.conn.flush();
        self.on_screen = Some(slot);
        // A buffer of another size (before a resize) is not needed any more.
        let (w, h) = (buf.width, buf.height);
        let other = 1 - slot;
        if self.buffers[other]
            .as_ref()
            .is_some_and(|b| (b.width, b.height) != (w, h))
        {
            self.buffers[other] = None;
        }
    }

    /// Puts a frame on screen now (a copy into a buffer + show). False if no buffer was
    /// free.
    pub fn present(&mut self, frame: &Frame) -> bool {
        let mut copy = |dst: &mut [u32]| {
            let n = dst.len().min(frame.pixels.len());
            dst[..n].copy_from_slice(&frame.pixels[..n]);
        };
        match self.upload(frame.width, frame.height, &mut copy) {
            Ok(Some(slot)) => {
                self.show(slot);
                true
            }
            Ok(None) => false,
            Err(e) => {
                eprintln!("viewer: {e}");
                false
            }
        }
    }

    /// Whether a committed frame has not reached the screen yet.
    pub fn frame_on_its_way(&self) -> bool {
        self.state.frames_on_their_way > 0
    }

    /// How many frame buffers exist (on screen and ready): never more than two.
    pub fn buffers_held(&self) -> usize {
        self.buffers.iter().filter(|b| b.is_some()).count()
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for State {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            match interface.as_str() {
                "wl_compositor" if version >= 4 => {
                    state.compositor = Some(registry.bind(name, 4, qh, ()));
                }
                "wl_shm" => state.shm = Some(registry.bind(name, 1, qh, ())),
                "xdg_wm_base" => state.wm_base = Some(registry.bind(name, 1, qh, ())),
                "wl_seat" if state.seat.is_none() => {
                    // Version 7+ makes smithay send the keymap as a sealed memfd instead
                    // of a temporary file (the guest may have no writable /tmp).
                    state.seat = Some(registry.bind(name, version.min(7), qh, ()));
                }
                _ => {}
            }
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for State {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for State {
    fn event(
        state: &mut Self,
        xs: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            xs.ack_configure(serial);
            let (w, h) = state.pending_size;
            // 0 means "you choose": use a common size.
            let size = (
                if w > 0 { w as u32 } else { 1024 },
                if h > 0 { h as u32 } else { 768 },
            );
            if !state.acked || size != state.size {
                state.acked = true;
                state.size = size;
                state.events.configured = Some(size);
            }
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for State {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_toplevel::Event::Configure { width, height, .. } => {
                state.pending_size = (width, height);
            }
            xdg_toplevel::Event::Close => state.events.closed = true,
            _ => {}
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for State {
    fn event(
        state: &mut Self,
        seat: &wl_seat::WlSeat,
        event: wl_seat::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_seat::Event::Capabilities {
            capabilities: WEnum::Value(caps),
        } = event
            && caps.contains(wl_seat::Capability::Keyboard)
            && state.keyboard.is_none()
        {
            state.keyboard = Some(seat.get_keyboard(qh, ()));
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // Keys are evdev codes; the keymap fd is simply closed (dropped).
        if let wl_keyboard::Event::Key {
            key,
            state: WEnum::Value(wl_keyboard::KeyState::Pressed),
            ..
        } = event
        {
            state.events.keys.push(key);
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, Arc<std::sync::atomic::AtomicBool>> for State {
    fn event(
        state: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        busy: &Arc<std::sync::atomic::AtomicBool>,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            busy.store(false, std::sync::atomic::Ordering::Release);
            state.events.released = true;
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frames_on_their_way = state.frames_on_their_way.saturating_sub(1);
            state.events.presented = true;
        }
    }
}

delegate_noop!(State: ignore wl_compositor::WlCompositor);
delegate_noop!(State: ignore wl_surface::WlSurface);
delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_shm_pool::WlShmPool);
