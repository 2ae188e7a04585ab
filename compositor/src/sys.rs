//! The compositor's `unsafe`: what neither std nor rustix offers as a safe call (evdev
//! ioctls, the child's inherited socket, smithay's raw shm mapping, calloop's display
//! source). Each block states the invariant it relies on.

use std::os::unix::io::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::ioctl::{IntegerSetter, Opcode, Updater, ioctl, opcode};
use smithay::reexports::calloop::generic::NoIoDrop;
use smithay::reexports::wayland_server::Display;

/// `EVIOCGBIT(0, 4)`: which event types a device reports (EV_CNT = 32 bits).
pub const EVIOCGBIT_EV: Opcode = opcode::read::<[u8; 4]>(b'E', 0x20);
/// `EVIOCGBIT(EV_KEY, 96)`: which keys a device has (KEY_CNT = 768 bits).
pub const EVIOCGBIT_KEY: Opcode = opcode::read::<[u8; 96]>(b'E', 0x21);
/// `EVIOCGRAB`: exclusive access, so the console does not see the keys too.
pub const EVIOCGRAB: Opcode = opcode::write::<std::ffi::c_int>(b'E', 0x90);

/// The event-type and key bitmaps of an evdev device.
pub fn evdev_bits(fd: impl AsFd) -> Option<([u8; 4], [u8; 96])> {
    let mut ev = [0u8; 4];
    let mut keys = [0u8; 96];
    // SAFETY: both opcodes are EVIOCGBIT reads of exactly the buffer's size; the kernel
    // writes at most that many bytes into our zeroed (initialised) arrays.
    unsafe {
        ioctl(&fd, Updater::<EVIOCGBIT_EV, [u8; 4]>::new(&mut ev)).ok()?;
        ioctl(&fd, Updater::<EVIOCGBIT_KEY, [u8; 96]>::new(&mut keys)).ok()?;
    }
    Some((ev, keys))
}

/// Grabs an evdev device for this open file.
pub fn evdev_grab(fd: impl AsFd) -> rustix::io::Result<()> {
    // SAFETY: EVIOCGRAB takes an int by value; 1 means grab.
    unsafe { ioctl(fd, IntegerSetter::<EVIOCGRAB>::new_usize(1)) }
}

/// Lets `cmd`'s child inherit `sock` (std opens everything close-on-exec). The socket is
/// moved into the hook, so it closes in the parent when `cmd` is dropped.
pub fn inherit_on_exec(cmd: &mut Command, sock: UnixStream) {
    // SAFETY: the hook runs between fork and exec and makes one fcntl(2) system call
    // (async-signal-safe, no allocation) on a descriptor the child owns a copy of.
    unsafe {
        cmd.pre_exec(move || {
            rustix::io::fcntl_setfd(&sock, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
}

/// Calls `f` on `needed` bytes at `offset` of an shm pool mapping, if they lie inside it.
/// `ptr`/`len` must be the mapping smithay's `with_buffer_contents` hands out.
pub fn with_shm_bytes<R>(
    ptr: *const u8,
    len: usize,
    offset: usize,
    needed: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Option<R> {
    if offset.checked_add(needed).is_none_or(|end| end > len) {
        return None;
    }
    // SAFETY: smithay keeps the pool mapping (ptr, len) alive and readable during the
    // with_buffer_contents callback we are called from; [offset, offset + needed) was
    // checked to lie inside it. The slice does not outlive `f`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.add(offset), needed) };
    Some(f(bytes))
}

/// The display inside calloop's source wrapper.
pub fn display_mut<D>(d: &mut NoIoDrop<Display<D>>) -> &mut Display<D> {
    // SAFETY: calloop forbids replacing or dropping the inner value while its fd is
    // registered; we only dispatch through the reference.
    unsafe { d.get_mut() }
}

/// `std::env::set_var`, for the start of `main` (see `process::ensure_runtime_dir`).
pub fn set_env_single_threaded(key: &str, value: &str) {
    // SAFETY: callers run before any other thread exists, so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(key, value) };
}
