//! HTTPS downloads of pinned inputs (today: the edk2 commits in `firmware/edk2.lock`). The
//! caller checks every byte against its pin; this module only bounds what a download may cost:
//! one global timeout per request and a size limit, so a stalled or endless server is an error
//! rather than a hang or a full disk. TLS is rustls with ring (as the rest of the tree), trusting
//! Mozilla's roots plus, when given, an extra CA (tests use the project's own HTTPS test server;
//! a mirror may have its own CA): `NEKOS_DOWNLOAD_CA` names a PEM file of such certificates.

use anyhow::{Context, Result, anyhow, bail};
use std::path::PathBuf;
use std::time::Duration;

/// Environment variable naming a PEM file with extra trusted CA certificates.
pub const CA_ENV: &str = "NEKOS_DOWNLOAD_CA";

pub struct Client {
    agent: ureq::Agent,
    max_bytes: u64,
}

/// The PEM file named by `NEKOS_DOWNLOAD_CA`, if set.
pub fn extra_ca_from_env() -> Result<Option<Vec<u8>>> {
    let Some(path) = std::env::var_os(CA_ENV).map(PathBuf::from) else {
        return Ok(None);
    };
    let pem = std::fs::read(&path)
        .with_context(|| format!("{CA_ENV}={}: cannot read the CA file", path.display()))?;
    Ok(Some(pem))
}

impl Client {
    /// `extra_ca_pem`: certificates trusted in addition to Mozilla's roots. `timeout` bounds
    /// each request as a whole (connect, TLS, headers and body); `max_bytes` bounds the body.
    pub fn new(extra_ca_pem: Option<&[u8]>, timeout: Duration, max_bytes: u64) -> Result<Client> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
        let roots = match extra_ca_pem {
            None => RootCerts::WebPki,
            Some(pem) => {
                let mut certs: Vec<Certificate<'static>> = Vec::new();
                for item in ureq::tls::parse_pem(pem) {
                    if let PemItem::Certificate(c) =
                        item.map_err(|e| anyhow!("extra CA ({CA_ENV}): not PEM: {e}"))?
                    {
                        certs.push(c);
                    }
                }
                if certs.is_empty() {
                    bail!("extra CA ({CA_ENV}): no CERTIFICATE block in the PEM");
                }
                // RootCerts is one list: Mozilla's roots are added as certificates so the extra
                // CA extends them instead of replacing them.
                certs.extend(
                    webpki_root_certs::TLS_SERVER_ROOT_CERTS
                        .iter()
                        .map(|c| Certificate::from_der(c.as_ref())),
                );
                RootCerts::new_with_certs(&certs)
            }
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Non-2xx answers are reported by `get` with the status, not as a transport error.
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Client {
            agent: config.into(),
            max_bytes,
        })
    }

    /// The body of `url`, complete: a non-2xx status, a body larger than the limit, or a body
    /// shorter than its Content-Length is an error.
    pub fn get(&self, url: &str) -> Result<Vec<u8>> {
        let mut resp = self.agent.get(url).call().map_err(|e| anyhow!("{e}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            );
        }
        let declared = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = declared
            && n > self.max_bytes
        {
            bail!(
                "Content-Length {n} exceeds the limit of {} bytes",
                self.max_bytes
            );
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| anyhow!("reading the body: {e}"))?;
        // A connection closed early must never pass as a short file.
        if let Some(n) = declared
            && body.len() as u64 != n
        {
            bail!("truncated: {} of {n} bytes (Content-Length)", body.len());
        }
        Ok(body)
    }
}
