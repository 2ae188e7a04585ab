//! Debian's nginx as the stboot server: what users actually serve OS packages from (any
//! static HTTPS server or CDN), in the cases such servers produce that the project's own
//! server never does — a redirect, gzip, chunked bodies, no keep-alive. The lab writes a
//! config into a private temporary directory (no root needed: pid, logs and temp paths all
//! live there), copies the test TLS certificate and key into it (the key 0600, and only
//! there), and runs `nginx` in the foreground as one process, so dropping the server kills
//! exactly that process. nginx serves the built package from `target/nekos/ospkg/`.
//!
//! It listens on 127.0.0.1:[`PORT`] (the guest's 10.0.2.2:18443): the descriptor URL is
//! inside the signed stage-1 image, so the port is not free to choose (QEMU's user network
//! reaches every host loopback port at 10.0.2.2, and a `guestfwd` cannot claim the host
//! address itself). The untrusted redirect target listens on [`UNTRUSTED_PORT`], also fixed,
//! so stage 1's refusal line is known in advance; stboot guests run one at a time anyway.
//!
//! Every request is logged as one JSON object per line with what nginx *sent*
//! (`Content-Encoding`, `Transfer-Encoding`, `Connection`, `Content-Length`), so a test can
//! tell that the guest really got a gzip or chunked response, not just that nginx was
//! configured for one.

use anyhow::{Context, Result, anyhow, bail};
use nekos_build::artifacts::Manifest;
use nekos_build::stboot::{GUEST_HOST, Keys, PORT, TLS_SERVER_CERT, TLS_SERVER_KEY, VALIDITY_SECS};
use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Debian's nginx (package `nginx`, bookworm: 1.22.1). An absolute path: /usr/sbin is not
/// on a normal user's PATH.
pub const NGINX: &str = "/usr/sbin/nginx";

/// The untrusted redirect target's port ([`NginxCase::RedirectUntrusted`]).
pub const UNTRUSTED_PORT: u16 = PORT + 1;

/// The apt-get line for a host without nginx.
pub const NGINX_APT: &str = "apt-get install --no-install-recommends nginx";

/// A string that occurs in neither the zip nor the descriptor: the substitution that makes
/// nginx drop `Content-Length` (see [`NginxCase::Chunked`]) must never change a byte.
const NEVER_PRESENT: &str = "nekos-sub-filter-never-matches-3f9c2a71";

/// What nginx does besides serving the package as static files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NginxCase {
    /// Static files, nginx's defaults (keep-alive on, no gzip).
    Plain,
    /// The descriptor URL answers `302` with an absolute `Location` to `/other/nekos.json`,
    /// the zip URL `301` with a relative one to `/other/nekos.zip` (both kinds are common).
    Redirect,
    /// `gzip on` for `application/json`: the descriptor comes `Content-Encoding: gzip`
    /// (and therefore chunked: nginx compresses on the fly), the zip as it is.
    Gzip,
    /// Both files `Transfer-Encoding: chunked` without gzip: a body filter that could change
    /// the length (a `sub_filter` that matches nothing) makes nginx drop `Content-Length`,
    /// as dynamic or proxied responses do.
    Chunked,
    /// `keepalive_timeout 0`: `Connection: close` after every response.
    KeepaliveOff,
    /// The descriptor URL redirects to HTTPS on another port whose certificate is from a CA
    /// that is not in the trust policy's `tls_roots.pem`: stage 1 must refuse to follow.
    RedirectUntrusted,
}

/// One request as nginx logged it (the `nekos` log format below).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub uri: String,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: String,
    pub status: u16,
    /// The ALPN protocol the TLS handshake agreed on (empty: the client offered none).
    pub alpn: String,
    pub tls: String,
    /// The port the request came in on.
    pub port: u16,
    /// nginx's serial number of the connection.
    pub connection: u64,
    /// The response headers as sent (empty when absent).
    pub content_encoding: String,
    pub transfer_encoding: String,
    /// nginx's keep-alive state when it logged the request, not necessarily the header it
    /// sent: `close` also when the client hung up first (stage 1, which pools nothing).
    pub connection_header: String,
    pub content_length: String,
    pub location: String,
    pub user_agent: String,
    /// The client's own `Connection` header (empty when it sent none).
    pub request_connection: String,
}

impl LoggedRequest {
    /// `GET /nekos.json -> 302`, the short form for messages.
    pub fn short(&self) -> String {
        format!("{} {} -> {}", self.method, self.uri, self.status)
    }
}

/// The access-log format: one JSON object per request. `$sent_http_transfer_encoding` and
/// `$sent_http_connection` are nginx's record of what it actually sent.
const LOG_FORMAT: &str = r#"'{"method":"$request_method","uri":"$request_uri","protocol":"$server_protocol","status":"$status","alpn":"$ssl_alpn_protocol","tls":"$ssl_protocol","port":"$server_port","connection":"$connection","content_encoding":"$sent_http_content_encoding","transfer_encoding":"$sent_http_transfer_encoding","connection_header":"$sent_http_connection","content_length":"$sent_http_content_length","location":"$sent_http_location","user_agent":"$http_user_agent","request_connection":"$http_connection"}'"#;

/// Where a config puts things; everything nginx writes is under `dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The server's private directory (config, key, logs, pid, temp paths).
    pub dir: PathBuf,
    /// The directory served at `/` (holds `nekos.json` and `nekos.zip`).
    pub root: PathBuf,
    /// The main listener's port on 127.0.0.1.
    pub port: u16,
    /// The untrusted listener's port ([`NginxCase::RedirectUntrusted`] only).
    pub other_port: Option<u16>,
}

/// File names inside [`Layout::dir`].
const CERT: &str = "tls-server.pem";
const KEY: &str = "tls-server.key";
const OTHER_CERT: &str = "other-server.pem";
const OTHER_KEY: &str = "other-server.key";
const ACCESS_LOG: &str = "access.log";

/// The nginx.conf for `case` (pure). Paths are quoted; they come from the temp dir and the
/// build directory, never from the network.
pub fn config_text(case: NginxCase, layout: &Layout) -> Result<String> {
    let p = |name: &str| -> Result<String> { quoted(&layout.dir.join(name)) };
    let root = quoted(&layout.root)?;
    let port = layout.port;
    let mut server = String::new();
    match case {
        NginxCase::Plain => {}
        NginxCase::Redirect => server.push_str(
            "        location = /nekos.json { return 302 /other/nekos.json; }\n\
             \x20       location = /nekos.zip { absolute_redirect off; return 301 /other/nekos.zip; }\n",
        ),
        NginxCase::Gzip => server.push_str(
            "        gzip on;\n        gzip_types application/json;\n        gzip_min_length 0;\n",
        ),
        NginxCase::Chunked => server.push_str(&format!(
            "        sub_filter_types application/json application/zip;\n        sub_filter '{NEVER_PRESENT}' '';\n"
        )),
        NginxCase::KeepaliveOff => server.push_str("        keepalive_timeout 0;\n"),
        NginxCase::RedirectUntrusted => {
            let other = layout
                .other_port
                .context("the untrusted redirect needs a second port")?;
            server.push_str(&format!(
                "        location = /nekos.json {{ return 302 https://{GUEST_HOST}:{other}/nekos.json; }}\n"
            ));
        }
    }
    // In the `/other/` location, the redirect target: the same files under another path.
    if case == NginxCase::Redirect {
        server.push_str(&format!(
            "        location /other/ {{ alias {}; }}\n",
            quoted(&layout.root.join(""))?
        ));
    }
    let mut other_server = String::new();
    if case == NginxCase::RedirectUntrusted
        && let Some(other) = layout.other_port
    {
        other_server = format!(
            "    server {{\n        listen 127.0.0.1:{other} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        root {root};\n    }}\n",
            p(OTHER_CERT)?,
            p(OTHER_KEY)?,
        );
    }
    Ok(format!(
        "# Written by the NekOS lab for one stboot boot ({case:?}); deleted with its directory.\n\
daemon off;\n\
master_process off;\n\
pid {pid};\n\
error_log stderr notice;\n\
events {{ worker_connections 64; }}\n\
http {{\n\
    client_body_temp_path {body};\n\
    proxy_temp_path {proxy};\n\
    fastcgi_temp_path {fastcgi};\n\
    uwsgi_temp_path {uwsgi};\n\
    scgi_temp_path {scgi};\n\
    types {{ application/json json; application/zip zip; }}\n\
    default_type application/octet-stream;\n\
    log_format nekos escape=json {LOG_FORMAT};\n\
    access_log {log} nekos;\n\
    # 1.22 still defaults to TLS 1.0-1.2; what a current server offers:\n\
    ssl_protocols TLSv1.2 TLSv1.3;\n\
    server {{\n\
        # ssl + http2 on the listener: ALPN offers h2 and http/1.1.\n\
        listen 127.0.0.1:{port} ssl http2;\n\
        ssl_certificate {cert};\n\
        ssl_certificate_key {key};\n\
        root {root};\n\
{server}\
    }}\n\
{other_server}\
}}\n",
        pid = p("nginx.pid")?,
        body = p("tmp/body")?,
        proxy = p("tmp/proxy")?,
        fastcgi = p("tmp/fastcgi")?,
        uwsgi = p("tmp/uwsgi")?,
        scgi = p("tmp/scgi")?,
        log = p(ACCESS_LOG)?,
        cert = p(CERT)?,
        key = p(KEY)?,
    ))
}

/// A path as an nginx string: double-quoted; quotes, backslashes and control characters
/// are refused rather than escaped (none occur in the paths the lab uses).
fn quoted(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    if s.chars()
        .any(|c| c == '"' || c == '\\' || c == '$' || c.is_control())
    {
        bail!("{s}: path unusable in nginx.conf (quote, backslash, $ or control character)");
    }
    Ok(format!("\"{s}\""))
}

/// What nginx printed on stderr, and whether it has exited.
#[derive(Default)]
struct Stderr {
    text: String,
    closed: bool,
}

/// A running nginx; dropping it kills the process and deletes its directory (with the key).
pub struct NginxServer {
    pub case: NginxCase,
    child: Child,
    layout: Layout,
    stderr: Arc<(Mutex<Stderr>, Condvar)>,
}

/// nginx's last start-up notice: `ngx_os_status` logs the descriptor limit after
/// `ngx_init_cycle` has bound and is listening on every socket.
const READY: &str = "getrlimit(RLIMIT_NOFILE)";
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl NginxServer {
    /// Starts nginx for `case` serving the manifest's OS package with the test TLS
    /// certificate; returns once it listens.
    pub fn start(case: NginxCase, manifest: &Manifest) -> Result<NginxServer> {
        let stboot = manifest.stboot()?;
        let zip = &stboot.ospkg_zip.path;
        let root = zip
            .parent()
            .with_context(|| format!("{} has no directory", zip.display()))?
            .to_path_buf();
        // The URLs are fixed in the signed stage-1 image and the descriptor.
        for (path, name) in [
            (zip, "nekos.zip"),
            (&stboot.ospkg_descriptor.path, "nekos.json"),
        ] {
            if path != &root.join(name) {
                bail!(
                    "nginx serves {} as the guest's /{name}, but the build wrote {}",
                    root.join(name).display(),
                    path.display()
                );
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "nekos-nginx-{}",
            nekos_build::util::unique_suffix()
        ));
        {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let other_port = (case == NginxCase::RedirectUntrusted).then_some(UNTRUSTED_PORT);
        let layout = Layout {
            dir: dir.clone(),
            root,
            port: PORT,
            other_port,
        };
        let started = (|| -> Result<NginxServer> {
            write_files(case, &layout, manifest)?;
            spawn(case, layout.clone())
        })();
        if started.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        started
    }

    /// The main listener.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.layout.port))
    }

    /// The untrusted redirect target's port, for [`NginxCase::RedirectUntrusted`].
    pub fn other_port(&self) -> Option<u16> {
        self.layout.other_port
    }

    /// Every request logged so far, in order.
    pub fn requests(&self) -> Result<Vec<LoggedRequest>> {
        let path = self.layout.dir.join(ACCESS_LOG);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                parse_log_line(line)
                    .with_context(|| format!("{} line {}: {line}", path.display(), i + 1))
            })
            .collect()
    }

    /// What nginx printed on stderr so far (its notices and errors).
    pub fn stderr(&self) -> String {
        self.stderr
            .0
            .lock()
            .map(|s| s.text.clone())
            .unwrap_or_default()
    }
}

impl Drop for NginxServer {
    fn drop(&mut self) {
        // One process (`master_process off`): SIGKILL leaves no workers behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.layout.dir);
    }
}

/// The config, the certificate and the key (0600), temp paths; each file through a
/// temporary name and a rename.
fn write_files(case: NginxCase, layout: &Layout, manifest: &Manifest) -> Result<()> {
    use nekos_build::util::{write_atomic, write_atomic_mode};
    let keys = Keys::of(manifest.stboot()?)?;
    let dir = &layout.dir;
    write_atomic(&dir.join(CERT), &keys.read(TLS_SERVER_CERT)?)?;
    write_atomic_mode(&dir.join(KEY), &keys.read(TLS_SERVER_KEY)?, 0o600)?;
    if case == NginxCase::RedirectUntrusted {
        let now = nekos_build::util::now_unix()?;
        let other = nekos_build::stboot::tls_pki(
            "Some CA not in tls_roots.pem",
            now - 3600,
            now + VALIDITY_SECS,
        )?;
        write_atomic(&dir.join(OTHER_CERT), other.server_cert_pem.as_bytes())?;
        write_atomic_mode(&dir.join(OTHER_KEY), other.server_key_pem.as_bytes(), 0o600)?;
    }
    for t in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let d = dir.join("tmp").join(t);
        fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    write_atomic(
        &dir.join("nginx.conf"),
        config_text(case, layout)?.as_bytes(),
    )
}

fn spawn(case: NginxCase, layout: Layout) -> Result<NginxServer> {
    let conf = layout.dir.join("nginx.conf");
    let mut child = Command::new(NGINX)
        // -p: relative paths resolve in the private directory; -e: errors before the
        // config is read go to stderr, not /var/log/nginx.
        .arg("-p")
        .arg(&layout.dir)
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {NGINX} (Debian package nginx: {NGINX_APT})"))?;
    let stderr = Arc::new((Mutex::new(Stderr::default()), Condvar::new()));
    if let Some(mut stream) = child.stderr.take() {
        let stderr = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                let (lock, cvar) = &*stderr;
                let Ok(mut s) = lock.lock() else { return };
                if n == 0 {
                    s.closed = true;
                    cvar.notify_all();
                    return;
                }
                s.text.push_str(&String::from_utf8_lossy(&buf[..n]));
                cvar.notify_all();
            }
        });
    }
    let mut server = NginxServer {
        case,
        child,
        layout,
        stderr,
    };
    if let Err(e) = server.wait_ready() {
        let _ = server.child.kill();
        return Err(e);
    }
    Ok(server)
}

impl NginxServer {
    /// Waits for nginx's ready notice, or fails with its own words when it exits (a bad
    /// config, a port in use).
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let (lock, cvar) = &*self.stderr;
        let mut s = lock
            .lock()
            .map_err(|_| anyhow!("nginx stderr reader poisoned"))?;
        loop {
            if s.text.contains(READY) {
                break;
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                let why = if s.closed {
                    "exited".to_string()
                } else {
                    format!("did not start in {} s", START_TIMEOUT.as_secs())
                };
                bail!(
                    "nginx ({:?}, config {}) {why}:\n{}",
                    self.case,
                    self.layout.dir.join("nginx.conf").display(),
                    s.text.trim_end()
                );
            }
            s = cvar
                .wait_timeout(s, deadline - now)
                .map_err(|_| anyhow!("nginx stderr reader poisoned"))?
                .0;
        }
        drop(s);
        // Bound and listening by now; one connect proves it.
        TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5))
            .with_context(|| format!("nginx reported ready but {} refuses", self.addr()))?;
        Ok(())
    }
}

/// One access-log line (the `nekos` JSON format).
pub fn parse_log_line(line: &str) -> Result<LoggedRequest> {
    let v: serde_json::Value = serde_json::from_str(line).context("not a JSON object")?;
    let s = |k: &str| -> Result<String> {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .with_context(|| format!("no string field {k:?}"))
    };
    let n = |k: &str| -> Result<u64> {
        s(k)?
            .parse::<u64>()
            .with_context(|| format!("field {k:?} is not a number"))
    };
    Ok(LoggedRequest {
        method: s("method")?,
        uri: s("uri")?,
        protocol: s("protocol")?,
        status: u16::try_from(n("status")?).context("status out of range")?,
        alpn: s("alpn")?,
        tls: s("tls")?,
        port: u16::try_from(n("port")?).context("port out of range")?,
        connection: n("connection")?,
        content_encoding: s("content_encoding")?,
        transfer_encoding: s("transfer_encoding")?,
        connection_header: s("connection_header")?,
        content_length: s("content_length")?,
        location: s("location")?,
        user_agent: s("user_agent")?,
        request_connection: s("request_connection")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn layout(other: Option<u16>) -> Layout {
        Layout {
            dir: "/tmp/nekos-nginx-1-0".into(),
            root: "/srv/nekos/ospkg".into(),
            port: 18443,
            other_port: other,
        }
    }

    #[test]
    fn every_case_listens_on_loopback_with_tls_and_h2_and_keeps_files_private() {
        for case in [
            NginxCase::Plain,
            NginxCase::Redirect,
            NginxCase::Gzip,
            NginxCase::Chunked,
            NginxCase::KeepaliveOff,
            NginxCase::RedirectUntrusted,
        ] {
            let c = config_text(case, &layout(Some(40000))).unwrap();
            assert!(c.contains("listen 127.0.0.1:18443 ssl http2;"), "{c}");
            assert!(c.contains("daemon off;") && c.contains("master_process off;"));
            assert!(c.contains("pid \"/tmp/nekos-nginx-1-0/nginx.pid\";"), "{c}");
            assert!(
                c.contains("ssl_certificate_key \"/tmp/nekos-nginx-1-0/tls-server.key\";"),
                "{c}"
            );
            assert!(c.contains("root \"/srv/nekos/ospkg\";"), "{c}");
            // Everything nginx writes is in its own directory.
            for line in c.lines().filter(|l| {
                l.contains("_temp_path") || l.contains("access_log") || l.contains("pid ")
            }) {
                assert!(line.contains("\"/tmp/nekos-nginx-1-0/"), "{line}");
            }
            // Only loopback listeners.
            for line in c.lines().filter(|l| l.trim_start().starts_with("listen ")) {
                assert!(line.contains("listen 127.0.0.1:"), "{line}");
            }
            assert_eq!(c.matches('{').count(), c.matches('}').count(), "{c}");
        }
    }

    #[test]
    fn cases_differ_where_they_should() {
        let cfg = |case| config_text(case, &layout(Some(40000))).unwrap();
        assert!(cfg(NginxCase::Redirect).contains("return 302 /other/nekos.json;"));
        assert!(cfg(NginxCase::Redirect).contains("return 301 /other/nekos.zip;"));
        assert!(
            cfg(NginxCase::Redirect).contains("location /other/ { alias \"/srv/nekos/ospkg/\"; }")
        );
        assert!(cfg(NginxCase::Gzip).contains("gzip_types application/json;"));
        assert!(!cfg(NginxCase::Plain).contains("gzip"));
        assert!(cfg(NginxCase::Chunked).contains(NEVER_PRESENT));
        assert!(cfg(NginxCase::KeepaliveOff).contains("keepalive_timeout 0;"));
        let u = cfg(NginxCase::RedirectUntrusted);
        assert!(
            u.contains("return 302 https://10.0.2.2:40000/nekos.json;"),
            "{u}"
        );
        assert!(u.contains("listen 127.0.0.1:40000 ssl;"), "{u}");
        assert!(u.contains("other-server.key"), "{u}");
        assert!(config_text(NginxCase::RedirectUntrusted, &layout(None)).is_err());
    }

    #[test]
    fn unusable_paths_are_refused_naming_them() {
        let mut l = layout(None);
        l.root = "/tmp/a\"b".into();
        let e = config_text(NginxCase::Plain, &l).unwrap_err().to_string();
        assert!(e.contains("/tmp/a\"b") && e.contains("nginx.conf"), "{e}");
    }

    #[test]
    fn log_lines_parse_and_bad_ones_are_errors() {
        let line = r#"{"method":"GET","uri":"/nekos.json","protocol":"HTTP/1.1","status":"200","alpn":"","tls":"TLSv1.3","port":"18443","connection":"3","content_encoding":"gzip","transfer_encoding":"chunked","connection_header":"keep-alive","content_length":"","location":"","user_agent":"nekos-stboot/0.1.0","request_connection":""}"#;
        let r = parse_log_line(line).unwrap();
        assert_eq!(r.short(), "GET /nekos.json -> 200");
        assert_eq!(
            (r.content_encoding.as_str(), r.transfer_encoding.as_str()),
            ("gzip", "chunked")
        );
        assert_eq!((r.port, r.connection), (18443, 3));
        assert!(parse_log_line("GET / 200").is_err());
        let e = parse_log_line(&line.replace("\"200\"", "\"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("status"), "{e}");
    }
}
