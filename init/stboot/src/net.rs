//! Bring the network up as the host configuration says: pick the interface
//! (by MAC when the configuration lists interfaces, else the first Ethernet
//! one), set it up, then either the static address and default route or a
//! lease from a small DHCP client; write /etc/resolv.conf for name lookups.

mod sys;

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socket, sockopt};

use super::dhcp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Static {
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    },
    Dhcp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub dns: Vec<Ipv4Addr>,
    /// Interfaces the configuration allows: (name, MAC). Empty = any.
    pub interfaces: Vec<(Option<String>, Option<[u8; 6]>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Up {
    pub ifname: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

/// How long we wait for the NIC to appear (virtio-net probes before init
/// runs, but a slow PCI scan must not be fatal).
const IFACE_WAIT: Duration = Duration::from_secs(10);
const CARRIER_WAIT: Duration = Duration::from_secs(5);
const DHCP_TRIES: u32 = 4;
const DHCP_REPLY_WAIT: Duration = Duration::from_secs(2);

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (slot, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

pub fn mask_of(prefix: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// A candidate interface as seen in /sys/class/net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Option<[u8; 6]>,
    /// ARPHRD_* from `type` (1 = Ethernet).
    pub kind: u32,
}

/// The interface to use, given what exists. Pure.
pub fn choose(present: &[Iface], wanted: &[(Option<String>, Option<[u8; 6]>)]) -> Option<Iface> {
    let mut sorted: Vec<&Iface> = present.iter().filter(|i| i.name != "lo").collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if wanted.is_empty() {
        return sorted.iter().find(|i| i.kind == 1).map(|i| (*i).clone());
    }
    for (name, mac) in wanted {
        let hit = sorted.iter().find(|i| match (mac, name) {
            (Some(m), _) => i.mac.as_ref() == Some(m),
            (None, Some(n)) => &i.name == n,
            (None, None) => false,
        });
        if let Some(i) = hit {
            return Some((*i).clone());
        }
    }
    None
}

fn list_interfaces() -> Vec<Iface> {
    let Ok(dir) = fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = Path::new("/sys/class/net").join(&name);
            let mac = fs::read_to_string(base.join("address"))
                .ok()
                .and_then(|s| parse_mac(&s));
            let kind = fs::read_to_string(base.join("type"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            Iface { name, mac, kind }
        })
        .collect()
}

fn describe_wanted(wanted: &[(Option<String>, Option<[u8; 6]>)]) -> String {
    if wanted.is_empty() {
        return "an Ethernet interface".to_string();
    }
    let items: Vec<String> = wanted
        .iter()
        .map(|(n, m)| match (n, m) {
            (_, Some(m)) => format!("MAC {}", fmt_mac(m)),
            (Some(n), None) => n.clone(),
            (None, None) => "?".to_string(),
        })
        .collect();
    items.join(" or ")
}

pub fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn bring_up(settings: &Settings) -> Result<Up, String> {
    let since = Instant::now();
    let iface = loop {
        let present = list_interfaces();
        if let Some(i) = choose(&present, &settings.interfaces) {
            break i;
        }
        if since.elapsed() >= IFACE_WAIT {
            let names: Vec<String> = present.iter().map(|i| i.name.clone()).collect();
            return Err(format!(
                "no interface matching {} after {} s (present: {})",
                describe_wanted(&settings.interfaces),
                IFACE_WAIT.as_secs(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    sys::link_up(sock.as_fd(), &iface.name).map_err(|e| format!("{}: link up: {e}", iface.name))?;
    let carrier = Path::new("/sys/class/net")
        .join(&iface.name)
        .join("carrier");
    let since = Instant::now();
    while fs::read_to_string(&carrier)
        .map(|s| s.trim() != "1")
        .unwrap_or(true)
        && since.elapsed() < CARRIER_WAIT
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let up = match &settings.mode {
        Mode::Static {
            addr,
            prefix,
            gateway,
        } => Up {
            ifname: iface.name.clone(),
            addr: *addr,
            prefix: *prefix,
            gateway: *gateway,
            dns: settings.dns.clone(),
        },
        Mode::Dhcp => {
            let mac = iface
                .mac
                .ok_or_else(|| format!("{}: no MAC address for DHCP", iface.name))?;
            let lease = dhcp_lease(&iface.name, mac)?;
            let dns = if settings.dns.is_empty() {
                lease.dns.clone()
            } else {
                settings.dns.clone()
            };
            Up {
                ifname: iface.name.clone(),
                addr: lease.your_addr,
                prefix: lease.prefix_len(),
                gateway: lease.routers.first().copied(),
                dns,
            }
        }
    };
    sys::set_address(sock.as_fd(), &up.ifname, up.addr, mask_of(up.prefix))
        .map_err(|e| format!("{}: set address {}/{}: {e}", up.ifname, up.addr, up.prefix))?;
    if let Some(gw) = up.gateway {
        sys::add_default_route(sock.as_fd(), &up.ifname, gw)
            .map_err(|e| format!("{}: default route via {gw}: {e}", up.ifname))?;
    }
    if !up.dns.is_empty() {
        let text: String = up.dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        let _ = fs::create_dir_all("/etc");
        if let Err(e) = fs::write("/etc/resolv.conf", text) {
            log::warn!("stboot: /etc/resolv.conf: {e}");
        }
    }
    Ok(up)
}

/// DISCOVER → OFFER → REQUEST → ACK on `ifname`, a few tries.
fn dhcp_lease(ifname: &str, mac: [u8; 6]) -> Result<dhcp::Reply, String> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, dhcp::CLIENT_PORT))
        .map_err(|e| format!("dhcp: bind port 68: {e}"))?;
    setsockopt(
        &sock,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )
    .map_err(|e| format!("dhcp: SO_BINDTODEVICE {ifname}: {e}"))?;
    setsockopt(&sock, sockopt::Broadcast, &true).map_err(|e| format!("dhcp: SO_BROADCAST: {e}"))?;
    let server = SocketAddrV4::new(Ipv4Addr::BROADCAST, dhcp::SERVER_PORT);
    let mut last = String::from("no reply");
    for attempt in 0..DHCP_TRIES {
        let xid = transaction_id(mac, attempt);
        let offer = match exchange(
            &sock,
            server,
            &dhcp::client_message(xid, mac, None),
            xid,
            mac,
        ) {
            Ok(r) if r.msg_type == dhcp::OFFER => r,
            Ok(r) => {
                last = format!("expected OFFER, got message type {}", r.msg_type);
                continue;
            }
            Err(e) => {
                last = format!("DISCOVER: {e}");
                continue;
            }
        };
        let Some(server_id) = offer.server_id else {
            last = "OFFER without server identifier".to_string();
            continue;
        };
        let req = dhcp::client_message(xid, mac, Some((offer.your_addr, server_id)));
        match exchange(&sock, server, &req, xid, mac) {
            Ok(r) if r.msg_type == dhcp::ACK => {
                log::info!(
                    "stboot: dhcp: lease {}/{} from {server_id}, {} s",
                    r.your_addr,
                    r.prefix_len(),
                    r.lease_secs.unwrap_or(0)
                );
                return Ok(r);
            }
            Ok(r) if r.msg_type == dhcp::NAK => last = "server sent NAK".to_string(),
            Ok(r) => last = format!("expected ACK, got message type {}", r.msg_type),
            Err(e) => last = format!("REQUEST: {e}"),
        }
    }
    Err(format!(
        "dhcp on {ifname}: no lease after {DHCP_TRIES} tries ({last})"
    ))
}

fn exchange(
    sock: &UdpSocket,
    to: SocketAddrV4,
    msg: &[u8],
    xid: u32,
    mac: [u8; 6],
) -> Result<dhcp::Reply, String> {
    sock.send_to(msg, to).map_err(|e| format!("send: {e}"))?;
    let since = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        let left = DHCP_REPLY_WAIT.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(format!("no reply within {} s", DHCP_REPLY_WAIT.as_secs()));
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| format!("timeout: {e}"))?;
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Ok(r) = dhcp::parse_reply(buf.get(..n).unwrap_or_default(), xid, mac) {
                    return Ok(r);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

/// Transaction ids need not be secret, only distinct: MAC and boot time
/// (no getrandom, which could block before the CRNG is ready).
fn transaction_id(mac: [u8; 6], attempt: u32) -> u32 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_nsec() as u32 ^ (t.tv_sec() as u32).rotate_left(16))
        .unwrap_or(0);
    let m = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    t ^ m.rotate_left(7) ^ attempt.wrapping_mul(0x9e37_79b9)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn iface(name: &str, mac: u8, kind: u32) -> Iface {
        Iface {
            name: name.to_string(),
            mac: Some([0x52, 0x54, 0, 0, 0, mac]),
            kind,
        }
    }

    #[test]
    fn macs_and_masks() {
        assert_eq!(
            parse_mac("52:54:00:12:34:56\n"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            parse_mac("52-54-00-AB-cd-EF"),
            Some([0x52, 0x54, 0, 0xab, 0xcd, 0xef])
        );
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:5"), None);
        assert_eq!(parse_mac("52:54:00:12:34:zz"), None);
        assert_eq!(
            fmt_mac(&[0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            "52:54:00:12:34:56"
        );
        assert_eq!(mask_of(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(mask_of(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(mask_of(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(mask_of(77), Ipv4Addr::new(255, 255, 255, 255));
    }

    #[test]
    fn choosing() {
        let present = vec![
            iface("lo", 0, 772),
            iface("sit0", 9, 776),
            iface("eth1", 2, 1),
            iface("eth0", 1, 1),
        ];
        assert_eq!(choose(&present, &[]).unwrap().name, "eth0");
        let by_mac = [(Some("ignored".to_string()), Some([0x52, 0x54, 0, 0, 0, 2]))];
        assert_eq!(choose(&present, &by_mac).unwrap().name, "eth1");
        let by_name = [(Some("eth1".to_string()), None)];
        assert_eq!(choose(&present, &by_name).unwrap().name, "eth1");
        let missing = [(None, Some([1, 2, 3, 4, 5, 6]))];
        assert_eq!(choose(&present, &missing), None);
        assert_eq!(choose(&[iface("lo", 0, 772)], &[]), None);
        assert_eq!(describe_wanted(&missing), "MAC 01:02:03:04:05:06");
    }
}
