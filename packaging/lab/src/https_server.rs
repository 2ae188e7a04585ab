//! The project's own HTTPS server for the stboot deployments: rustls (ring), a fixed set of
//! files, GET only, one thread per connection, `Connection: close`. It binds a loopback
//! address only (the guest reaches it as 10.0.2.2 through QEMU user networking) and stops
//! when dropped. Every request is recorded, so tests can tell what the guest asked for.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct HttpsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: Arc<Mutex<Vec<String>>>,
}

/// What the server answers for one URL path (unknown paths get 404).
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 200 announcing `content_length` bytes, then only `body` and the connection drops (no TLS
    /// close_notify): a download cut off half-way, for the clients' tests.
    Truncated {
        body: Vec<u8>,
        content_length: usize,
    },
}

/// The rustls server configuration for a certificate chain and key (both PEM).
pub fn server_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let chain: Vec<CertificateDer<'static>> = nekos_ospkg::pem_decode_all(cert_chain_pem)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.der))
        .collect();
    if chain.is_empty() {
        bail!("the server certificate file has no CERTIFICATE PEM block");
    }
    let key = nekos_ospkg::pem_decode_all(key_pem)
        .into_iter()
        .find(|b| b.label == "PRIVATE KEY")
        .context("the server key file has no PKCS#8 PRIVATE KEY PEM block")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow!("TLS: {e}"))?
    .with_no_client_auth()
    .with_single_cert(
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.der)),
    )
    .map_err(|e| anyhow!("TLS server certificate/key: {e}"))?;
    Ok(Arc::new(config))
}

impl HttpsServer {
    /// Listens on `addr` (must be a loopback address) and serves `files` (URL path → body).
    pub fn start(
        addr: SocketAddr,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<HttpsServer> {
        Self::start_replies(
            addr,
            cert_chain_pem,
            key_pem,
            files
                .into_iter()
                .map(|(path, body)| (path, Reply::Body(body)))
                .collect(),
        )
    }

    /// As [`HttpsServer::start`], with a [`Reply`] per path (e.g. a truncated body).
    pub fn start_replies(
        addr: SocketAddr,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
        files: BTreeMap<String, Reply>,
    ) -> Result<HttpsServer> {
        if !addr.ip().is_loopback() {
            bail!("the test HTTPS server binds loopback addresses only, not {addr}");
        }
        let config = server_config(cert_chain_pem, key_pem)?;
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} (another stboot server running?)"))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let files = Arc::new(files);
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(sock) = conn else { continue };
                    let (config, files, requests) =
                        (config.clone(), files.clone(), requests.clone());
                    std::thread::spawn(move || {
                        if let Err(e) = serve(sock, config, &files, &requests)
                            && let Ok(mut r) = requests.lock()
                        {
                            r.push(format!("error: {e:#}"));
                        }
                    });
                }
            })
        };
        Ok(HttpsServer {
            addr,
            stop,
            thread: Some(thread),
            requests,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GET /path -> status` per request so far, and `error: …` for failed connections
    /// (e.g. a client that refused the certificate).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(
    sock: TcpStream,
    config: Arc<rustls::ServerConfig>,
    files: &BTreeMap<String, Reply>,
    requests: &Mutex<Vec<String>>,
) -> Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    sock.set_write_timeout(Some(Duration::from_secs(60)))?;
    let conn = rustls::ServerConnection::new(config).map_err(|e| anyhow!("TLS: {e}"))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while find(&buf, b"\r\n\r\n").is_none() {
        if buf.len() > 16 * 1024 {
            bail!("request header too long");
        }
        let n = tls.read(&mut chunk).context("reading the request")?;
        if n == 0 {
            bail!("connection closed before a request");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or_default().to_string();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    // `cut`: the Content-Length a truncated reply announces instead of the body's own length.
    let (status, body, cut): (&str, &[u8], Option<usize>) = match (method, files.get(path)) {
        ("GET", Some(Reply::Body(body))) => ("200 OK", body, None),
        (
            "GET",
            Some(Reply::Truncated {
                body,
                content_length,
            }),
        ) => ("200 OK", body, Some(*content_length)),
        ("GET", None) => ("404 Not Found", b"not found\n", None),
        _ => ("405 Method Not Allowed", b"GET only\n", None),
    };
    let length = cut.unwrap_or(body.len());
    if let Ok(mut r) = requests.lock() {
        r.push(format!("{method} {path} -> {status}"));
    }
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {length}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(header.as_bytes())?;
    if cut.is_some() {
        // Send what there is and drop the connection without close_notify.
        tls.write_all(body)?;
        tls.flush()?;
        return Ok(());
    }
    if method == "GET" || !body.is_empty() {
        tls.write_all(body)?;
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}
