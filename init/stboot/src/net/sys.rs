//! Interface ioctls for IPv4 configuration (the same old-style ioctls
//! ifconfig/route use; enough for one address and one default route).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// struct ifreq with a struct sockaddr in the union (40 bytes).
#[repr(C)]
struct IfreqAddr {
    name: [u8; 16],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

/// struct ifreq with the flags member of the union (40 bytes).
#[repr(C)]
struct IfreqFlags {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// struct rtentry from <net/route.h> (120 bytes on x86_64).
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr_in,
    rt_gateway: libc::sockaddr_in,
    rt_genmask: libc::sockaddr_in,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn ifname(name: &str) -> io::Result<[u8; 16]> {
    let mut out = [0u8; 16];
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 15 || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    if let Some(dst) = out.get_mut(..b.len()) {
        dst.copy_from_slice(b);
    }
    Ok(out)
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// IFF_UP on `name`.
pub fn link_up(sock: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut req = IfreqFlags {
        name: ifname(name)?,
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: `req` has the layout of struct ifreq (name[16], then the short
    // flags member of the union, padded to 40 bytes); the kernel reads and
    // writes only within it; sock is a live borrowed descriptor.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) })?;
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &mut req) })
}

/// SIOCSIFADDR then SIOCSIFNETMASK.
pub fn set_address(
    sock: BorrowedFd<'_>,
    name: &str,
    addr: Ipv4Addr,
    mask: Ipv4Addr,
) -> io::Result<()> {
    let mut req = IfreqAddr {
        name: ifname(name)?,
        addr: sockaddr(addr),
        _pad: [0; 8],
    };
    // SAFETY: `req` has the layout of struct ifreq with a sockaddr_in in the
    // union (40 bytes); the kernel reads only within it.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFADDR as _, &mut req) })?;
    req.addr = sockaddr(mask);
    // SAFETY: as above.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFNETMASK as _, &mut req) })
}

/// SIOCADDRT: 0.0.0.0/0 via `gateway` on `name`. An existing route is fine.
pub fn add_default_route(sock: BorrowedFd<'_>, name: &str, gateway: Ipv4Addr) -> io::Result<()> {
    let mut dev = ifname(name)?;
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr(gateway),
        rt_genmask: sockaddr(Ipv4Addr::UNSPECIFIED),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: dev.as_mut_ptr().cast(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    // SAFETY: `rt` has the layout of struct rtentry (checked by a test);
    // rt_dev points to `dev`, a NUL-terminated 16-byte buffer that lives on
    // this frame for the whole call; the kernel only reads both.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCADDRT as _, &mut rt) };
    match check(r) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(std::mem::size_of::<IfreqAddr>(), 40);
        assert_eq!(std::mem::size_of::<IfreqFlags>(), 40);
        assert_eq!(std::mem::size_of::<RtEntry>(), 120);
        assert_eq!(std::mem::offset_of!(RtEntry, rt_flags), 56);
        assert_eq!(std::mem::offset_of!(RtEntry, rt_dev), 88);
    }

    #[test]
    fn names() {
        assert_eq!(&ifname("eth0").unwrap()[..5], b"eth0\0");
        assert!(ifname("").is_err());
        assert!(ifname("sixteen-chars-xx").is_err());
        assert!(ifname("a\0b").is_err());
    }
}
