//! DHCPv4 messages (RFC 2131/2132): the four the client needs — DISCOVER,
//! OFFER, REQUEST, ACK (and NAK) — encoded and decoded by hand. Pure: the
//! socket work is in `net.rs`.
//!
//! Requests set the BROADCAST flag: until the lease is configured the
//! interface has no address, so replies must come to 255.255.255.255 (QEMU's
//! built-in server broadcasts them anyway).

use std::net::Ipv4Addr;

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

const MAGIC: [u8; 4] = [99, 130, 83, 99];
const FIXED_LEN: usize = 236;
/// BOOTP's minimum message size; some servers drop shorter ones.
const MIN_LEN: usize = 300;

pub const DISCOVER: u8 = 1;
pub const OFFER: u8 = 2;
pub const REQUEST: u8 = 3;
pub const ACK: u8 = 5;
pub const NAK: u8 = 6;

const OPT_PAD: u8 = 0;
const OPT_SUBNET_MASK: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_MSG_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAM_LIST: u8 = 55;
const OPT_END: u8 = 255;

/// A client message. `request` = Some((offered address, server id)) makes it
/// a REQUEST for that offer, None a DISCOVER.
pub fn client_message(xid: u32, mac: [u8; 6], request: Option<(Ipv4Addr, Ipv4Addr)>) -> Vec<u8> {
    let mut m = vec![0u8; FIXED_LEN];
    m[0] = 1; // op: BOOTREQUEST
    m[1] = 1; // htype: Ethernet
    m[2] = 6; // hlen
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // flags: BROADCAST
    m[28..34].copy_from_slice(&mac);
    m.extend_from_slice(&MAGIC);
    match request {
        None => m.extend_from_slice(&[OPT_MSG_TYPE, 1, DISCOVER]),
        Some((addr, server)) => {
            m.extend_from_slice(&[OPT_MSG_TYPE, 1, REQUEST]);
            m.extend_from_slice(&[OPT_REQUESTED_IP, 4]);
            m.extend_from_slice(&addr.octets());
            m.extend_from_slice(&[OPT_SERVER_ID, 4]);
            m.extend_from_slice(&server.octets());
        }
    }
    m.extend_from_slice(&[
        OPT_PARAM_LIST,
        4,
        OPT_SUBNET_MASK,
        OPT_ROUTER,
        OPT_DNS,
        OPT_LEASE_TIME,
    ]);
    m.push(OPT_END);
    if m.len() < MIN_LEN {
        m.resize(MIN_LEN, OPT_PAD);
    }
    m
}

/// What a server's OFFER/ACK/NAK says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub msg_type: u8,
    pub your_addr: Ipv4Addr,
    pub server_id: Option<Ipv4Addr>,
    pub subnet_mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: Option<u32>,
}

impl Reply {
    /// Prefix length of the subnet mask (a contiguous one; else /24, QEMU's).
    pub fn prefix_len(&self) -> u8 {
        match self.subnet_mask {
            Some(m) => {
                let bits = u32::from(m);
                let ones = bits.leading_ones();
                if bits.checked_shl(ones).unwrap_or(0) == 0 {
                    ones as u8
                } else {
                    24
                }
            }
            None => 24,
        }
    }
}

/// Decode a server message meant for us (`xid`, `mac`); Err says why it is
/// not (the caller just keeps waiting).
pub fn parse_reply(buf: &[u8], xid: u32, mac: [u8; 6]) -> Result<Reply, String> {
    if buf.len() < FIXED_LEN + MAGIC.len() {
        return Err(format!("short message ({} bytes)", buf.len()));
    }
    if buf.first() != Some(&2) {
        return Err("not a BOOTREPLY".into());
    }
    if buf.get(4..8) != Some(&xid.to_be_bytes()[..]) {
        return Err("other transaction".into());
    }
    if buf.get(28..34) != Some(&mac[..]) {
        return Err("other client".into());
    }
    if buf.get(FIXED_LEN..FIXED_LEN + 4) != Some(&MAGIC[..]) {
        return Err("no DHCP magic cookie".into());
    }
    let ip_at = |i: usize| -> Ipv4Addr {
        let mut o = [0u8; 4];
        if let Some(b) = buf.get(i..i + 4) {
            o.copy_from_slice(b);
        }
        Ipv4Addr::from(o)
    };
    let mut reply = Reply {
        msg_type: 0,
        your_addr: ip_at(16),
        server_id: None,
        subnet_mask: None,
        routers: Vec::new(),
        dns: Vec::new(),
        lease_secs: None,
    };
    let mut opts = buf.get(FIXED_LEN + 4..).unwrap_or_default();
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            OPT_PAD => {
                opts = rest;
                continue;
            }
            OPT_END => break,
            _ => {}
        }
        let Some((&len, rest)) = rest.split_first() else {
            return Err(format!("option {code} without length"));
        };
        let Some(value) = rest.get(..len as usize) else {
            return Err(format!("option {code} overruns the message"));
        };
        opts = rest.get(len as usize..).unwrap_or_default();
        let addrs = || -> Vec<Ipv4Addr> {
            value
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect()
        };
        match code {
            OPT_MSG_TYPE => reply.msg_type = value.first().copied().unwrap_or(0),
            OPT_SUBNET_MASK => reply.subnet_mask = addrs().first().copied(),
            OPT_ROUTER => reply.routers = addrs(),
            OPT_DNS => reply.dns = addrs(),
            OPT_SERVER_ID => reply.server_id = addrs().first().copied(),
            OPT_LEASE_TIME => {
                reply.lease_secs = value.try_into().ok().map(u32::from_be_bytes);
            }
            _ => {}
        }
    }
    if !matches!(reply.msg_type, OFFER | ACK | NAK) {
        return Err(format!("unexpected DHCP message type {}", reply.msg_type));
    }
    Ok(reply)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    #[test]
    fn discover_bytes() {
        let m = client_message(0xdeadbeef, MAC, None);
        assert_eq!(m.len(), 300);
        assert_eq!(
            &m[..12],
            &[1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0x80, 0]
        );
        assert_eq!(&m[12..28], &[0u8; 16]); // ciaddr yiaddr siaddr giaddr
        assert_eq!(
            &m[28..44],
            &[
                0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        assert!(m[44..236].iter().all(|&b| b == 0)); // sname, file
        assert_eq!(
            &m[236..251],
            &[99, 130, 83, 99, 53, 1, 1, 55, 4, 1, 3, 6, 51, 255, 0]
        );
        assert!(m[250..].iter().all(|&b| b == 0));
    }

    #[test]
    fn request_bytes() {
        let m = client_message(
            1,
            MAC,
            Some((Ipv4Addr::new(10, 0, 2, 15), Ipv4Addr::new(10, 0, 2, 2))),
        );
        assert_eq!(m.len(), 300);
        assert_eq!(
            &m[236..262],
            &[
                99, 130, 83, 99, 53, 1, 3, 50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2, 55, 4, 1, 3, 6,
                51, 255
            ]
        );
    }

    /// A reply as QEMU's slirp sends it (hand-assembled).
    fn slirp_reply(kind: u8, xid: u32) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = 2;
        m[1] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&xid.to_be_bytes());
        m[16..20].copy_from_slice(&[10, 0, 2, 15]); // yiaddr
        m[20..24].copy_from_slice(&[10, 0, 2, 2]); // siaddr
        m[28..34].copy_from_slice(&MAC);
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(&[53, 1, kind]);
        m.extend_from_slice(&[54, 4, 10, 0, 2, 2]);
        m.extend_from_slice(&[1, 4, 255, 255, 255, 0]);
        m.extend_from_slice(&[3, 4, 10, 0, 2, 2]);
        m.extend_from_slice(&[6, 4, 10, 0, 2, 3]);
        m.extend_from_slice(&[0, 0]); // pads
        m.extend_from_slice(&[51, 4, 0, 1, 81, 128]); // 86400 s
        m.push(255);
        m.resize(548, 0);
        m
    }

    #[test]
    fn parses_offer_and_ack() {
        for kind in [OFFER, ACK] {
            let r = parse_reply(&slirp_reply(kind, 7), 7, MAC).unwrap();
            assert_eq!(r.msg_type, kind);
            assert_eq!(r.your_addr, Ipv4Addr::new(10, 0, 2, 15));
            assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 0, 2, 2)));
            assert_eq!(r.subnet_mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
            assert_eq!(r.prefix_len(), 24);
            assert_eq!(r.routers, vec![Ipv4Addr::new(10, 0, 2, 2)]);
            assert_eq!(r.dns, vec![Ipv4Addr::new(10, 0, 2, 3)]);
            assert_eq!(r.lease_secs, Some(86400));
        }
    }

    #[test]
    fn rejects_foreign_and_malformed() {
        let ok = slirp_reply(OFFER, 7);
        assert!(
            parse_reply(&ok, 8, MAC)
                .unwrap_err()
                .contains("transaction")
        );
        assert!(parse_reply(&ok, 7, [0; 6]).unwrap_err().contains("client"));
        assert!(parse_reply(&ok[..200], 7, MAC).is_err());
        let mut req = ok.clone();
        req[0] = 1;
        assert!(parse_reply(&req, 7, MAC).is_err());
        let mut overrun = ok[..240].to_vec();
        overrun.extend_from_slice(&[53, 1, 2, 6, 200, 1]);
        assert!(
            parse_reply(&overrun, 7, MAC)
                .unwrap_err()
                .contains("overruns")
        );
        let mut discover = ok[..240].to_vec();
        discover.extend_from_slice(&[53, 1, 1, 255]);
        assert!(
            parse_reply(&discover, 7, MAC)
                .unwrap_err()
                .contains("type 1")
        );
        // Every truncation of a valid reply is handled without panicking.
        for n in 0..ok.len() {
            let _ = parse_reply(&ok[..n], 7, MAC);
        }
    }

    #[test]
    fn prefix_lengths() {
        let mut r = parse_reply(&slirp_reply(ACK, 1), 1, MAC).unwrap();
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(r.prefix_len(), 16);
        r.subnet_mask = Some(Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(r.prefix_len(), 32);
        r.subnet_mask = Some(Ipv4Addr::new(255, 0, 255, 0)); // not contiguous
        assert_eq!(r.prefix_len(), 24);
        r.subnet_mask = None;
        assert_eq!(r.prefix_len(), 24);
    }
}
