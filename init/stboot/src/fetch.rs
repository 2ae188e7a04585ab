//! HTTP(S) GET for the descriptor and the package: a minimal HTTP/1.1 client
//! over std TCP and rustls.
//!
//! - TLS trusts only the certificates of `tls_roots.pem` (no system or
//!   built-in roots); certificate validity is checked against CLOCK_REALTIME.
//!   Plain `http://` URLs are allowed, as stboot allows them: the package's
//!   integrity comes from its signatures, not from the transport.
//! - Bounded everywhere: connect timeout, per-read/write timeout, a size limit
//!   per object, a redirect limit (a loop is an error at once), and a
//!   deadline per GET.
//! - Retries: the caller's `retry` (8 tries 1 s apart, as stboot does).
//!
//! Errors are one line: what failed and why (`certificate not trusted
//! (UnknownIssuer)`, `HTTP 404 Not Found`, `larger than 1048576 bytes`, …).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::url::{Scheme, Url};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// For each read(2)/write(2) on the socket.
    pub io_timeout: Duration,
    /// For the whole GET, redirects included.
    pub deadline: Duration,
    pub max_bytes: u64,
    pub max_redirects: usize,
}

impl Limits {
    /// Sizes as nekos-ospkg's default limits (1 MiB descriptor, 512 MiB zip).
    pub const DESCRIPTOR: Limits = Limits {
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(30),
        max_bytes: 1 << 20,
        max_redirects: 5,
    };
    pub const PACKAGE: Limits = Limits {
        connect_timeout: Duration::from_secs(5),
        io_timeout: Duration::from_secs(15),
        deadline: Duration::from_secs(300),
        max_bytes: 512 << 20,
        max_redirects: 5,
    };
}

/// The rustls client configuration: ring, TLS 1.2 + 1.3, only these roots.
pub fn tls_config(roots_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(roots_pem).enumerate() {
        let cert = cert.map_err(|e| format!("tls roots: certificate {i}: {e}"))?;
        store
            .add(cert)
            .map_err(|e| format!("tls roots: certificate {i}: {e}"))?;
    }
    if store.is_empty() {
        return Err("tls roots: no CERTIFICATE in the PEM file".to_string());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("tls: {e}"))?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// GET `url`, following redirects. Returns the final URL and the body.
pub fn get(
    url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    limits: &Limits,
) -> Result<(Url, Vec<u8>), String> {
    let start = Instant::now();
    let mut seen: Vec<Url> = Vec::new();
    let mut current = url.clone();
    loop {
        match get_once(&current, tls, limits, start)? {
            Outcome::Body(body) => return Ok((current, body)),
            Outcome::Redirect(status, location) => {
                let next = follow(&mut seen, &current, status, &location, limits.max_redirects)?;
                log::info!("stboot: {current}: HTTP {status} to {next}");
                current = next;
            }
        }
    }
}

/// Redirect bookkeeping (pure): the next URL, or why not.
pub fn follow(
    seen: &mut Vec<Url>,
    current: &Url,
    status: u16,
    location: &str,
    max: usize,
) -> Result<Url, String> {
    seen.push(current.clone());
    let next = current
        .join(location)
        .map_err(|e| format!("HTTP {status} with bad Location: {e}"))?;
    if seen.contains(&next) {
        return Err(format!("redirect loop (HTTP {status} back to {next})"));
    }
    if seen.len() > max {
        return Err(format!("more than {max} redirects"));
    }
    Ok(next)
}

enum Outcome {
    Body(Vec<u8>),
    Redirect(u16, String),
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

fn get_once(
    url: &Url,
    tls: &Arc<rustls::ClientConfig>,
    limits: &Limits,
    start: Instant,
) -> Result<Outcome, String> {
    let tcp = connect(url, limits)?;
    let mut stream: Box<dyn Stream> = match url.scheme {
        Scheme::Http => Box::new(tcp),
        Scheme::Https => {
            let name = ServerName::try_from(url.host.clone())
                .map_err(|e| format!("{}: not a valid TLS server name ({e})", url.host))?;
            let conn = rustls::ClientConnection::new(tls.clone(), name)
                .map_err(|e| format!("tls: {e}"))?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: nekos-stboot/{}\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| io_text(&e))?;
    let (head, rest) = read_head(&mut stream, limits, start)?;
    let head = parse_head(&head)?;
    if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
        let location = head
            .header("location")
            .ok_or_else(|| format!("HTTP {} without Location", head.status))?;
        return Ok(Outcome::Redirect(head.status, location.to_string()));
    }
    if head.status != 200 {
        return Err(format!("HTTP {} {}", head.status, head.reason));
    }
    let framing = head.framing()?;
    let body = read_body(&mut stream, rest, framing, limits, start)?;
    Ok(Outcome::Body(body))
}

fn connect(url: &Url, limits: &Limits) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", url.host))?
        .collect();
    let mut last = format!("resolve {}: no addresses", url.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, limits.connect_timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(limits.io_timeout))
                    .and_then(|()| s.set_write_timeout(Some(limits.io_timeout)))
                    .map_err(|e| format!("socket timeouts: {e}"))?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = format!(
                    "connect {addr}: timed out after {} s",
                    limits.connect_timeout.as_secs()
                );
            }
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Err(last)
}

/// One line for an I/O error, with the TLS reason spelled out.
pub fn io_text(e: &io::Error) -> String {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls_text(tls);
    }
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "timed out".to_string(),
        io::ErrorKind::UnexpectedEof => "connection closed early".to_string(),
        _ => e.to_string(),
    }
}

pub fn tls_text(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::ExpiredContext { .. }
                | C::NotValidYetContext { .. }
                | C::NotValidForNameContext { .. } => c.to_string(),
                other => format!("{other:?}"),
            };
            format!("certificate not trusted ({why})")
        }
        rustls::Error::AlertReceived(a) => format!("TLS alert from server: {a:?}"),
        other => format!("TLS: {other}"),
    }
}

fn check_deadline(limits: &Limits, start: Instant) -> Result<(), String> {
    if start.elapsed() > limits.deadline {
        Err(format!(
            "deadline of {} s exceeded",
            limits.deadline.as_secs()
        ))
    } else {
        Ok(())
    }
}

const MAX_HEAD: usize = 16 * 1024;

/// Read until the end of the response head; returns head and the body bytes
/// that came with it.
fn read_head(
    r: &mut dyn Read,
    limits: &Limits,
    start: Instant,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response head larger than {MAX_HEAD} bytes"));
        }
        check_deadline(limits, start)?;
        match r.read(&mut chunk) {
            Ok(0) => return Err("connection closed before the response head".to_string()),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_text(&e)),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn framing(&self) -> Result<Framing, String> {
        if let Some(te) = self.header("transfer-encoding") {
            if te.trim().eq_ignore_ascii_case("chunked") {
                return Ok(Framing::Chunked);
            }
            return Err(format!("unsupported Transfer-Encoding {te:?}"));
        }
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map(Framing::Length)
                .map_err(|_| format!("bad Content-Length {v:?}")),
            None => Ok(Framing::UntilClose),
        }
    }
}

pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            truncate(status_line, 60)
        ));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(|| format!("bad status line {:?}", truncate(status_line, 60)))?;
    let reason = parts.next().unwrap_or_default().trim().to_string();
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("bad header line {:?}", truncate(line, 60)));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Head {
        status,
        reason,
        headers,
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Read the body as framed, never more than `limits.max_bytes`.
pub fn read_body(
    r: &mut dyn Read,
    already: Vec<u8>,
    framing: Framing,
    limits: &Limits,
    start: Instant,
) -> Result<Vec<u8>, String> {
    let max = limits.max_bytes;
    let too_big = || format!("larger than {max} bytes");
    let mut src = Prefixed {
        first: already,
        pos: 0,
        inner: r,
    };
    match framing {
        Framing::Length(n) => {
            if n > max {
                return Err(format!("{} (Content-Length {n})", too_big()));
            }
            let mut body = Vec::with_capacity(n.min(64 << 20) as usize);
            read_exact_into(&mut src, &mut body, n, limits, start)?;
            Ok(body)
        }
        Framing::UntilClose => {
            let mut body = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                check_deadline(limits, start)?;
                match src.read(&mut chunk) {
                    Ok(0) => return Ok(body),
                    Ok(n) => {
                        if body.len() as u64 + n as u64 > max {
                            return Err(too_big());
                        }
                        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_text(&e)),
                }
            }
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let line = read_line(&mut src, limits, start)?;
                let size_text = line.split(';').next().unwrap_or_default().trim();
                let size = u64::from_str_radix(size_text, 16)
                    .map_err(|_| format!("bad chunk size {:?}", truncate(&line, 40)))?;
                if size == 0 {
                    // Trailers until the empty line.
                    while !read_line(&mut src, limits, start)?.is_empty() {}
                    return Ok(body);
                }
                if body.len() as u64 + size > max {
                    return Err(too_big());
                }
                read_exact_into(&mut src, &mut body, size, limits, start)?;
                if !read_line(&mut src, limits, start)?.is_empty() {
                    return Err("chunk not followed by CRLF".to_string());
                }
            }
        }
    }
}

fn read_exact_into(
    src: &mut dyn Read,
    body: &mut Vec<u8>,
    n: u64,
    limits: &Limits,
    start: Instant,
) -> Result<(), String> {
    let mut left = n;
    let mut chunk = [0u8; 64 * 1024];
    while left > 0 {
        check_deadline(limits, start)?;
        let want = (left.min(chunk.len() as u64)) as usize;
        match src.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => {
                return Err(format!("connection closed after {} of {n} bytes", n - left));
            }
            Ok(k) => {
                body.extend_from_slice(chunk.get(..k).unwrap_or_default());
                left -= k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_text(&e)),
        }
    }
    Ok(())
}

fn read_line(src: &mut dyn Read, limits: &Limits, start: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        check_deadline(limits, start)?;
        match src.read(&mut b) {
            Ok(0) => return Err("connection closed inside chunked body".to_string()),
            Ok(_) => {
                if b[0] == b'\n' {
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                line.push(b[0]);
                if line.len() > 4096 {
                    return Err("chunk header line too long".to_string());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_text(&e)),
        }
    }
}

/// Bytes already read with the head, then the stream.
struct Prefixed<'a> {
    first: Vec<u8>,
    pos: usize,
    inner: &'a mut dyn Read,
}

impl Read for Prefixed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self.first.get(self.pos..)
            && !rest.is_empty()
        {
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Retry `op` up to `tries` times, `pause` apart, never past `deadline`
/// (measured by `now`); `sleep` is injected for tests. Returns the last error
/// with the number of tries.
pub fn retry<T>(
    tries: u32,
    pause: Duration,
    deadline: Duration,
    now: &mut dyn FnMut() -> Duration,
    sleep: &mut dyn FnMut(Duration),
    op: &mut dyn FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = now();
    let mut last = String::new();
    for attempt in 1..=tries.max(1) {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        let elapsed = now().saturating_sub(start);
        if attempt == tries || elapsed + pause > deadline {
            return Err(format!("{last} (after {attempt} tries)"));
        }
        log::info!("stboot: try {attempt}/{tries} failed: {last}");
        sleep(pause);
    }
    Err(last)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A:  b \r\n").unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, "OK");
        assert_eq!(h.header("content-length"), Some("12"));
        assert_eq!(h.header("x-a"), Some("b"));
        assert_eq!(h.framing().unwrap(), Framing::Length(12));
        let h = parse_head(b"HTTP/1.0 404 Not Found\r\n").unwrap();
        assert_eq!((h.status, h.reason.as_str()), (404, "Not Found"));
        assert_eq!(h.framing().unwrap(), Framing::UntilClose);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n").unwrap();
        assert_eq!(h.framing().unwrap(), Framing::Chunked);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n").unwrap();
        assert!(h.framing().is_err());
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n").unwrap();
        assert!(h.framing().is_err());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nnocolon\r\n").is_err());
    }

    fn body_of(raw: &[u8], framing: Framing, max: u64) -> Result<Vec<u8>, String> {
        let limits = Limits {
            max_bytes: max,
            ..Limits::DESCRIPTOR
        };
        let (first, rest) = raw.split_at(raw.len().min(3));
        let mut r = rest;
        read_body(&mut r, first.to_vec(), framing, &limits, Instant::now())
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body_of(b"hello world", Framing::Length(5), 100).unwrap(),
            b"hello"
        );
        assert!(
            body_of(b"hel", Framing::Length(5), 100)
                .unwrap_err()
                .contains("closed after 3 of 5")
        );
        assert!(
            body_of(b"hello", Framing::Length(5), 4)
                .unwrap_err()
                .contains("larger than 4")
        );
        assert_eq!(body_of(b"abc", Framing::UntilClose, 3).unwrap(), b"abc");
        assert!(body_of(b"abcd", Framing::UntilClose, 3).is_err());
        let chunked = b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: 1\r\n\r\n";
        assert_eq!(
            body_of(chunked, Framing::Chunked, 100).unwrap(),
            b"hello world"
        );
        assert!(
            body_of(chunked, Framing::Chunked, 10)
                .unwrap_err()
                .contains("larger")
        );
        assert!(body_of(b"5\r\nhelloXX", Framing::Chunked, 100).is_err());
        assert!(body_of(b"zz\r\n", Framing::Chunked, 100).is_err());
        assert!(body_of(b"5\r\nhel", Framing::Chunked, 100).is_err());
    }

    #[test]
    fn redirects() {
        let a = Url::parse("http://h/a").unwrap();
        let mut seen = Vec::new();
        let b = follow(&mut seen, &a, 302, "/b", 5).unwrap();
        assert_eq!(b.to_string(), "http://h/b");
        let e = follow(&mut seen, &b, 301, "http://h/a", 5).unwrap_err();
        assert!(e.contains("redirect loop"), "{e}");
        let mut seen = Vec::new();
        let mut cur = a.clone();
        for i in 0..3 {
            cur = follow(&mut seen, &cur, 307, &format!("/r{i}"), 3).unwrap();
        }
        assert!(
            follow(&mut seen, &cur, 307, "/r9", 3)
                .unwrap_err()
                .contains("more than 3")
        );
        assert!(
            follow(&mut Vec::new(), &a, 302, "ftp://x/", 3)
                .unwrap_err()
                .contains("bad Location")
        );
    }

    #[test]
    fn retry_policy_with_injected_clock() {
        use std::cell::Cell;
        let clock = Cell::new(Duration::ZERO);
        let mut slept = Vec::new();
        let mut calls = 0;
        let r: Result<(), String> = retry(
            8,
            Duration::from_secs(1),
            Duration::from_secs(60),
            &mut || clock.get(),
            &mut |d| {
                slept.push(d);
                clock.set(clock.get() + d);
            },
            &mut || {
                calls += 1;
                Err(format!("boom {calls}"))
            },
        );
        assert_eq!(r.unwrap_err(), "boom 8 (after 8 tries)");
        assert_eq!(calls, 8);
        assert_eq!(slept, vec![Duration::from_secs(1); 7]);

        // The deadline cuts the tries short.
        let clock = Cell::new(Duration::ZERO);
        let mut calls = 0;
        let r: Result<(), String> = retry(
            8,
            Duration::from_secs(1),
            Duration::from_millis(2500),
            &mut || clock.get(),
            &mut |d| clock.set(clock.get() + d),
            &mut || {
                calls += 1;
                Err("no".to_string())
            },
        );
        assert_eq!(r.unwrap_err(), "no (after 3 tries)");
        assert_eq!(calls, 3);

        // Success on the third try.
        let mut calls = 0;
        let r = retry(
            8,
            Duration::ZERO,
            Duration::from_secs(1),
            &mut || Duration::ZERO,
            &mut |_| {},
            &mut || {
                calls += 1;
                if calls < 3 {
                    Err("x".to_string())
                } else {
                    Ok(calls)
                }
            },
        );
        assert_eq!(r.unwrap(), 3);
    }

    /// A tiny HTTP server on 127.0.0.1: answers each connection with the
    /// next canned response.
    fn serve(responses: Vec<Vec<u8>>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for resp in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while find(&buf, b"\r\n\r\n").is_none() {
                    let n = s.read(&mut b).unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&b[..n]);
                }
                requests.push(
                    String::from_utf8_lossy(&buf)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
                let _ = s.write_all(&resp);
            }
            requests
        });
        (port, t)
    }

    fn tls_dummy() -> Arc<rustls::ClientConfig> {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    #[test]
    fn local_server_redirects_and_limits() {
        let (port, t) = serve(vec![
            b"HTTP/1.1 302 Found\r\nLocation: /pkg/nekos.json\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\n\r\n".to_vec(),
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ]);
        let tls = tls_dummy();
        let base = Url::parse(&format!("http://127.0.0.1:{port}/start")).unwrap();
        let (final_url, body) = get(&base, &tls, &Limits::DESCRIPTOR).unwrap();
        assert_eq!(final_url.path, "/pkg/nekos.json");
        assert_eq!(body, b"{}\r\n");
        let small = Limits {
            max_bytes: 1000,
            ..Limits::DESCRIPTOR
        };
        let e = get(&base, &tls, &small).unwrap_err();
        assert!(e.contains("larger than 1000 bytes"), "{e}");
        let looping = Url::parse(&format!("http://127.0.0.1:{port}/loop")).unwrap();
        let e = get(&looping, &tls, &Limits::DESCRIPTOR).unwrap_err();
        assert!(e.contains("redirect loop"), "{e}");
        let e = get(&base, &tls, &Limits::DESCRIPTOR).unwrap_err();
        assert_eq!(e, "HTTP 404 Not Found");
        let requests = t.join().unwrap();
        assert_eq!(requests[0], "GET /start HTTP/1.1");
        assert_eq!(requests[1], "GET /pkg/nekos.json HTTP/1.1");
    }

    #[test]
    fn a_server_that_stalls_is_a_timeout_not_a_hang() {
        // Accepts, then never answers: every read must end at the io timeout and the whole
        // GET well inside its deadline.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let held = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        let u = Url::parse(&format!("http://127.0.0.1:{port}/stall")).unwrap();
        let limits = Limits {
            io_timeout: Duration::from_millis(300),
            ..Limits::DESCRIPTOR
        };
        let t = Instant::now();
        let e = get(&u, &tls_dummy(), &limits).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
        held.join().unwrap();
    }

    #[test]
    fn refused_connection_is_one_line() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let u = Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap();
        let e = get(&u, &tls_dummy(), &Limits::DESCRIPTOR).unwrap_err();
        assert!(e.starts_with(&format!("connect 127.0.0.1:{port}: ")), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn tls_roots_must_exist() {
        assert!(tls_config(b"").unwrap_err().contains("no CERTIFICATE"));
        assert!(
            tls_config(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn tls_error_wording() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(tls_text(&e), "certificate not trusted (UnknownIssuer)");
        let io = io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(io_text(&io), "certificate not trusted (UnknownIssuer)");
    }

    /// A CA and a server certificate for 127.0.0.1 (IP SAN), valid from
    /// `from` to `until` (years).
    fn pki(ca_name: &str, from: i32, until: i32) -> (String, Vec<u8>, Vec<u8>) {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let srv_key = KeyPair::generate().unwrap();
        let mut srv = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        srv.not_before = rcgen::date_time_ymd(from, 1, 1);
        srv.not_after = rcgen::date_time_ymd(until, 1, 1);
        let srv_cert = srv.signed_by(&srv_key, &issuer).unwrap();
        (
            ca_cert.pem(),
            srv_cert.der().to_vec(),
            srv_key.serialize_der(),
        )
    }

    /// One HTTPS exchange on 127.0.0.1 with a rustls server.
    fn tls_server(
        cert: Vec<u8>,
        key: Vec<u8>,
        body: &'static [u8],
    ) -> (u16, std::thread::JoinHandle<()>) {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (sock, _) = l.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let mut buf = Vec::new();
            let mut b = [0u8; 1024];
            while find(&buf, b"\r\n\r\n").is_none() {
                match tls.read(&mut b) {
                    Ok(0) | Err(_) => return, // the client refused the handshake
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = tls.write_all(head.as_bytes());
            let _ = tls.write_all(body);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        (port, t)
    }

    #[test]
    fn tls_trusts_only_the_given_roots() {
        let (ca_pem, cert, key) = pki("test CA", 2020, 2100);
        let (port, t) = tls_server(cert.clone(), key.clone(), b"hello");
        let url = Url::parse(&format!("https://127.0.0.1:{port}/nekos.json")).unwrap();
        let (_, body) = get(
            &url,
            &tls_config(ca_pem.as_bytes()).unwrap(),
            &Limits::DESCRIPTOR,
        )
        .unwrap();
        assert_eq!(body, b"hello");
        t.join().unwrap();

        // Another CA (a valid one, just not ours): refused.
        let (other_ca, _, _) = pki("other CA", 2020, 2100);
        let (port, t) = tls_server(cert, key, b"hello");
        let url = Url::parse(&format!("https://127.0.0.1:{port}/nekos.json")).unwrap();
        let e = get(
            &url,
            &tls_config(other_ca.as_bytes()).unwrap(),
            &Limits::DESCRIPTOR,
        )
        .unwrap_err();
        assert_eq!(e, "certificate not trusted (UnknownIssuer)");
        t.join().unwrap();
    }

    #[test]
    fn tls_expired_and_wrong_name() {
        let (ca_pem, cert, key) = pki("test CA", 2000, 2001);
        let (port, t) = tls_server(cert, key, b"x");
        let url = Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
        let e = get(
            &url,
            &tls_config(ca_pem.as_bytes()).unwrap(),
            &Limits::DESCRIPTOR,
        )
        .unwrap_err();
        assert!(
            e.starts_with("certificate not trusted (certificate expired"),
            "{e}"
        );
        t.join().unwrap();

        // Certificate for 127.0.0.1, URL names "localhost".
        let (ca_pem, cert, key) = pki("test CA", 2020, 2100);
        let (port, t) = tls_server(cert, key, b"x");
        let url = Url::parse(&format!("https://localhost:{port}/")).unwrap();
        let e = get(
            &url,
            &tls_config(ca_pem.as_bytes()).unwrap(),
            &Limits::DESCRIPTOR,
        )
        .unwrap_err();
        assert!(
            e.starts_with("certificate not trusted (certificate not valid for name"),
            "{e}"
        );
        t.join().unwrap();
    }
}
