//! Keyboards from evdev, without libinput/udev: read `struct input_event` records.

use std::os::unix::io::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::sys;

const EV_KEY: u16 = 0x01;
const KEY_A: usize = 30;
const KEY_SPACE: usize = 57;
const KEY_ENTER: usize = 28;

/// A key event: evdev code and pressed/released. Autorepeat (value 2) is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEvent {
    pub code: u16,
    pub pressed: bool,
    pub time_ms: u32,
}

/// Size of `struct input_event` on 64-bit Linux.
pub const EVENT_SIZE: usize = 24;

/// Parses raw `input_event` records into key events (pure; unit-tested).
pub fn parse_events(buf: &[u8]) -> Vec<KeyEvent> {
    let mut out = Vec::new();
    for rec in buf.chunks_exact(EVENT_SIZE) {
        let mut sec = [0u8; 8];
        sec.copy_from_slice(&rec[0..8]);
        let mut usec = [0u8; 8];
        usec.copy_from_slice(&rec[8..16]);
        let ty = u16::from_ne_bytes([rec[16], rec[17]]);
        let code = u16::from_ne_bytes([rec[18], rec[19]]);
        let value = i32::from_ne_bytes([rec[20], rec[21], rec[22], rec[23]]);
        if ty != EV_KEY || !(value == 0 || value == 1) {
            continue;
        }
        let ms = i64::from_ne_bytes(sec).wrapping_mul(1000) + i64::from_ne_bytes(usec) / 1000;
        out.push(KeyEvent {
            code,
            pressed: value == 1,
            time_ms: ms as u32,
        });
    }
    out
}

fn test_bit(bits: &[u8], n: usize) -> bool {
    bits.get(n / 8).is_some_and(|b| b & (1 << (n % 8)) != 0)
}

/// Opens `path` if it is a keyboard, grabbing it so the console does not see keys.
pub fn open_keyboard(path: &Path) -> Option<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).ok()?;
    let (evbits, keybits) = sys::evdev_bits(&fd)?;
    if !test_bit(&evbits, EV_KEY as usize) {
        return None;
    }
    if !(test_bit(&keybits, KEY_A)
        && test_bit(&keybits, KEY_SPACE)
        && test_bit(&keybits, KEY_ENTER))
    {
        return None;
    }
    if sys::evdev_grab(&fd).is_err() {
        eprintln!("nekos-compositor: EVIOCGRAB {} failed", path.display());
    }
    Some(fd)
}

/// `/dev/input/event*` paths, sorted.
pub fn event_devices() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/dev/input")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("event"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Reads what is available; `None` means the device is gone.
pub fn read_events(fd: &OwnedFd) -> Option<Vec<KeyEvent>> {
    let mut out = Vec::new();
    let mut buf = [0u8; EVENT_SIZE * 64];
    loop {
        let n = match rustix::io::read(fd, &mut buf) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return Some(out),
            Err(_) => return None,
        };
        out.extend(parse_events(&buf[..n]));
        if n < buf.len() {
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: u16, code: u16, value: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&5i64.to_ne_bytes());
        v.extend_from_slice(&250_000i64.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&code.to_ne_bytes());
        v.extend_from_slice(&value.to_ne_bytes());
        v
    }

    #[test]
    fn keeps_press_release_drops_repeat_and_other_types() {
        let mut buf = ev(4, 4, 30); // EV_MSC scan code
        buf.extend(ev(1, 106, 1));
        buf.extend(ev(1, 106, 2)); // autorepeat
        buf.extend(ev(0, 0, 0)); // SYN
        buf.extend(ev(1, 106, 0));
        let got = parse_events(&buf);
        assert_eq!(
            got,
            vec![
                KeyEvent {
                    code: 106,
                    pressed: true,
                    time_ms: 5250
                },
                KeyEvent {
                    code: 106,
                    pressed: false,
                    time_ms: 5250
                },
            ]
        );
    }

    #[test]
    fn ioctl_numbers() {
        assert_eq!(sys::EVIOCGRAB, 0x4004_4590);
        assert_eq!(sys::EVIOCGBIT_KEY, 0x8060_4521);
        assert_eq!(sys::EVIOCGBIT_EV, 0x8004_4520);
    }
}
