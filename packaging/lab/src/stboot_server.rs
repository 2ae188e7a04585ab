//! What the project's HTTPS server hands the guest in each `…,stboot` deployment: the built
//! OS package, or one attack on it — or which nginx case serves the built package instead
//! (nginx.rs). The lab side of stboot; the build side (keys, stage-1
//! image, package) is [`nekos_build::stboot`].

use crate::https_server::HttpsServer;
// Re-exported: the deployments and the tests name the nginx cases through this module.
pub use crate::nginx::{LoggedRequest, NginxCase, NginxServer};
use anyhow::{Context, Result, anyhow, bail};
use nekos_build::artifacts::{FileArtifact, Manifest, StbootArtifact};
use nekos_build::stboot::{
    Keys, PACKAGE_URL, PORT, TLS_SERVER_CERT, TLS_SERVER_KEY, VALIDITY_SECS, tls_pki,
};
use nekos_ospkg as ospkg;
use std::collections::BTreeMap;
use std::fs;

/// The HTTPS server of a `…,stboot` deployment (a deployment without one: nothing listens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The project's server with our TLS certificate, serving the package as given.
    Ospkg(Served),
    /// The good package, but the server's certificate is from another CA.
    UntrustedTls,
    /// Debian's nginx serving the built package, in one of the ways real servers behave.
    Nginx(NginxCase),
}

/// A deployment's server while it runs: the project's own, or nginx.
pub enum Running {
    Own(HttpsServer),
    Nginx(NginxServer),
}

impl Running {
    pub fn addr(&self) -> std::net::SocketAddr {
        match self {
            Running::Own(s) => s.addr(),
            Running::Nginx(s) => s.addr(),
        }
    }

    /// `GET /path -> status` per request so far (the own server's status line has its
    /// reason phrase, nginx's log only the code), and `error: …` for connections the own
    /// server saw fail (nginx logs those in its stderr instead).
    pub fn requests(&self) -> Vec<String> {
        match self {
            Running::Own(s) => s.requests(),
            Running::Nginx(s) => match s.requests() {
                Ok(r) => r.iter().map(|r| r.short()).collect(),
                Err(e) => vec![format!("error: {e:#}")],
            },
        }
    }
}

/// Which package the server hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// The built package, signed by both signers.
    Good,
    /// One byte of the zip's kernel flipped after signing.
    TamperedZip,
    /// Signed by two signers under another root (valid Ed25519 signatures, untrusted chain).
    WrongSigner,
    /// Signed by two signers under our root whose certificates have expired.
    ExpiredCert,
    /// Signed by one of our signers only: fewer than the trust policy's threshold.
    BelowThreshold,
    /// A descriptor that is not valid JSON (cut in the middle).
    MalformedDescriptor,
}

/// Two signers issued by `root` (or by a fresh root of their own), valid over
/// `[from, until]`. Attack packages are made per boot with the OS RNG: they are served,
/// never recorded, and their refusal does not depend on which keys they carry.
fn attack_signers(
    root: Option<(&ospkg::SigningKey, &[u8])>,
    from: i64,
    until: i64,
) -> Result<Vec<(ospkg::SigningKey, Vec<u8>)>> {
    let mut rng = nekos_build::util::os_random;
    let (root_key, root_pem) = match root {
        Some((k, p)) => (k.clone(), p.to_vec()),
        None => ospkg::generate_root(
            from,
            until.max(nekos_build::util::now_unix()? + VALIDITY_SECS),
            &mut rng,
        )
        .map_err(|e| anyhow!("attacker root: {e}"))?,
    };
    (0..2)
        .map(|_| {
            ospkg::generate_leaf(&root_key, &root_pem, from, until, &mut rng)
                .map_err(|e| anyhow!("attack signer: {e}"))
        })
        .collect()
}

/// Path → body the server hands out for `served`, made from the built package.
pub fn served_files(stboot: &StbootArtifact, served: Served) -> Result<BTreeMap<String, Vec<u8>>> {
    let read = |a: &FileArtifact| {
        fs::read(&a.path).with_context(|| format!("cannot read {}", a.path.display()))
    };
    let zip = read(&stboot.ospkg_zip)?;
    let good_descriptor = read(&stboot.ospkg_descriptor)?;
    let keys = Keys::of(stboot)?;
    let sign_with = |zip: &[u8], signers: &[(ospkg::SigningKey, Vec<u8>)]| -> Result<Vec<u8>> {
        let mut d = ospkg::Descriptor::new(PACKAGE_URL);
        for (k, c) in signers {
            ospkg::sign_descriptor(&mut d, zip, k, c).map_err(|e| anyhow!("signing: {e}"))?;
        }
        Ok(d.to_json_bytes())
    };
    let now = nekos_build::util::now_unix()?;
    let (zip, descriptor) = match served {
        Served::Good => (zip, good_descriptor),
        Served::TamperedZip => {
            let mut z = zip;
            // The middle of the archive lies inside the kernel or initramfs entry.
            let mid = z.len() / 2;
            let b = z.get_mut(mid).context("the OS package zip is empty")?;
            *b ^= 0xff;
            (z, good_descriptor)
        }
        Served::WrongSigner => {
            let d = sign_with(
                &zip,
                &attack_signers(None, now - 3600, now + VALIDITY_SECS)?,
            )?;
            (zip, d)
        }
        Served::ExpiredCert => {
            let (rk, rp) = keys.root()?;
            // Valid for one day, ten days ago.
            let signers = attack_signers(Some((&rk, &rp)), now - 10 * 86400, now - 9 * 86400)?;
            let d = sign_with(&zip, &signers)?;
            (zip, d)
        }
        Served::BelowThreshold => {
            let signers = keys.signers()?;
            let d = sign_with(&zip, signers.get(..1).context("no signer")?)?;
            (zip, d)
        }
        Served::MalformedDescriptor => {
            let cut = good_descriptor
                .get(..good_descriptor.len() / 2)
                .context("empty descriptor")?
                .to_vec();
            (zip, cut)
        }
    };
    let mut files = BTreeMap::new();
    files.insert("/nekos.json".to_string(), descriptor);
    files.insert("/nekos.zip".to_string(), zip);
    Ok(files)
}

/// Starts the deployment's server. The caller keeps it alive for the boot; dropping it
/// stops it.
pub fn start_server(server: Server, manifest: &Manifest) -> Result<Running> {
    if let Server::Nginx(case) = server {
        return Ok(Running::Nginx(NginxServer::start(case, manifest)?));
    }
    start_own_server(server, manifest).map(Running::Own)
}

fn start_own_server(server: Server, manifest: &Manifest) -> Result<HttpsServer> {
    let stboot = manifest.stboot()?;
    let keys = Keys::of(stboot)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], PORT));
    match server {
        Server::Ospkg(served) => {
            let files = served_files(stboot, served)?;
            HttpsServer::start(
                addr,
                &keys.read(TLS_SERVER_CERT)?,
                &keys.read(TLS_SERVER_KEY)?,
                files,
            )
        }
        Server::UntrustedTls => {
            let now = nekos_build::util::now_unix()?;
            let other = tls_pki("Some other CA", now - 3600, now + VALIDITY_SECS)?;
            let files = served_files(stboot, Served::Good)?;
            HttpsServer::start(
                addr,
                other.server_cert_pem.as_bytes(),
                other.server_key_pem.as_bytes(),
                files,
            )
        }
        Server::Nginx(_) => bail!("nginx is not the project's server"),
    }
}
