//! The stboot network-boot flow (issue #9), host side: the keys, the stage-1 initramfs and
//! UKI, the OS package, and what the project's HTTPS server hands the guest in each
//! `…,stboot` deployment (the good package or one attack on it).
//!
//! Keys live outside the repository, like the Secure Boot keys: `~/.config/nekos/stboot/`
//! (or `NEKOS_STBOOT_KEYS_DIR`), created once on first use, private keys 0600. Everything
//! built from them is a pure function of them and the other inputs: same keys → same
//! stage-1 image, same package, same descriptor (Ed25519 and PKCS#1 v1.5 are
//! deterministic). Private keys never go into an image or a log.

pub use crate::artifacts::StbootArtifact;
use crate::artifacts::{FileArtifact, Manifest};
use crate::cpio::{Archive, Node};
use crate::util::{self, sha256_hex};
use anyhow::{Context, Result, anyhow, bail};
use nekos_ospkg as ospkg;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The port the project's HTTPS server listens on (127.0.0.1 only); the guest reaches it
/// as 10.0.2.2 through QEMU user networking.
pub const PORT: u16 = 18443;
/// The host as the guest sees it under QEMU user networking.
pub const GUEST_HOST: &str = "10.0.2.2";
/// The descriptor URL baked into the stage-1 host configuration.
pub const DESCRIPTOR_URL: &str = "https://10.0.2.2:18443/nekos.json";
/// The package URL in the descriptor (absolute: stboot refuses a relative one).
pub const PACKAGE_URL: &str = "https://10.0.2.2:18443/nekos.zip";
/// Signatures the stage-1 trust policy requires; the good package carries two, so one
/// stage-1 image serves both the positive deployments and `ospkg-below-threshold`.
pub const THRESHOLD: usize = 2;
/// The OS package's label (`manifest.json`).
pub const LABEL: &str = "NekOS production";
/// The OS package's command line: the UKI's plus the marker the second init reports.
pub fn package_cmdline() -> String {
    format!("{} nekos.bootflow=stboot", crate::ukis::UKI_CMDLINE)
}

/// Names inside the keys directory.
pub const OSPKG_ROOT_KEY: &str = "ospkg-root.key";
pub const OSPKG_ROOT_CERT: &str = "ospkg-root.pem";
pub const SIGNERS: [(&str, &str); 2] = [
    ("ospkg-signer-1.key", "ospkg-signer-1.pem"),
    ("ospkg-signer-2.key", "ospkg-signer-2.pem"),
];
pub const TLS_CA_KEY: &str = "tls-ca.key";
pub const TLS_CA_CERT: &str = "tls-ca.pem";
pub const TLS_SERVER_KEY: &str = "tls-server.key";
pub const TLS_SERVER_CERT: &str = "tls-server.pem";

/// Validity of the generated certificates: ten years from creation.
pub const VALIDITY_SECS: i64 = 10 * 365 * 24 * 3600;

/// `NEKOS_STBOOT_KEYS_DIR`, else `$XDG_CONFIG_HOME/nekos/stboot`, else `~/.config/nekos/stboot`.
pub fn default_keys_dir() -> PathBuf {
    crate::util::user_dir(
        "NEKOS_STBOOT_KEYS_DIR",
        "XDG_CONFIG_HOME",
        ".config",
        "stboot",
    )
}

fn all_key_files() -> Vec<&'static str> {
    let mut v = vec![OSPKG_ROOT_KEY, OSPKG_ROOT_CERT];
    for (k, c) in SIGNERS {
        v.push(k);
        v.push(c);
    }
    v.extend([TLS_CA_KEY, TLS_CA_CERT, TLS_SERVER_KEY, TLS_SERVER_CERT]);
    v
}

/// Creates the keys once: OS package signing root + two signers (Ed25519, stmgr's
/// profile), a TLS CA and a server certificate for 10.0.2.2 and 127.0.0.1 (ECDSA P-256).
/// Leaves a complete directory alone; refuses a partial one (naming what is missing).
pub fn ensure_keys(dir: &Path) -> Result<()> {
    let files = all_key_files();
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if missing.len() != files.len() {
        bail!(
            "the stboot keys directory {} is incomplete (missing {}); restore it or remove it to create new keys",
            dir.display(),
            missing.join(", ")
        );
    }
    eprintln!(
        "nekos: no stboot keys in {}; creating OS package signing and test TLS keys there",
        dir.display()
    );
    let from = crate::util::now_unix()?;
    let until = from + VALIDITY_SECS;
    let mut rng = crate::util::os_random;
    let (root_key, root_pem) =
        ospkg::generate_root(from, until, &mut rng).map_err(|e| anyhow!("OS package root: {e}"))?;
    let mut out: Vec<(&str, Vec<u8>, u32)> = vec![
        (OSPKG_ROOT_KEY, ospkg::signing_key_to_pem(&root_key), 0o600),
        (OSPKG_ROOT_CERT, root_pem.clone(), 0o644),
    ];
    for (k, c) in SIGNERS {
        let (key, pem) = ospkg::generate_leaf(&root_key, &root_pem, from, until, &mut rng)
            .map_err(|e| anyhow!("OS package signer: {e}"))?;
        out.push((k, ospkg::signing_key_to_pem(&key), 0o600));
        out.push((c, pem, 0o644));
    }
    let tls = tls_pki("NekOS stboot test TLS CA", from, until)?;
    out.push((TLS_CA_KEY, tls.ca_key_pem.into_bytes(), 0o600));
    out.push((TLS_CA_CERT, tls.ca_cert_pem.into_bytes(), 0o644));
    out.push((TLS_SERVER_KEY, tls.server_key_pem.into_bytes(), 0o600));
    out.push((TLS_SERVER_CERT, tls.server_cert_pem.into_bytes(), 0o644));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot chmod {}", dir.display()))?;
    }
    for (name, bytes, mode) in out {
        util::write_atomic_mode(&dir.join(name), &bytes, mode)?;
    }
    Ok(())
}

/// A TLS CA and a server certificate it issued, all PEM.
pub struct TlsPki {
    pub ca_key_pem: String,
    pub ca_cert_pem: String,
    pub server_key_pem: String,
    pub server_cert_pem: String,
}

/// A CA named `ca_name` and a server certificate for 10.0.2.2 and 127.0.0.1 (IP SANs),
/// valid over `[from, until]` (seconds since the epoch).
pub fn tls_pki(ca_name: &str, from: i64, until: i64) -> Result<TlsPki> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let time = |secs: i64| -> Result<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| anyhow!("time {secs}: {e}"))
    };
    let ca_key = KeyPair::generate().map_err(|e| anyhow!("TLS CA key: {e}"))?;
    let mut ca =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| anyhow!("TLS CA: {e}"))?;
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    ca.not_before = time(from)?;
    ca.not_after = time(until)?;
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| anyhow!("TLS CA: {e}"))?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);
    let srv_key = KeyPair::generate().map_err(|e| anyhow!("TLS server key: {e}"))?;
    let mut srv = CertificateParams::new(vec![GUEST_HOST.to_string(), "127.0.0.1".to_string()])
        .map_err(|e| anyhow!("TLS server: {e}"))?;
    srv.distinguished_name
        .push(DnType::CommonName, "NekOS stboot test server");
    srv.not_before = time(from)?;
    srv.not_after = time(until)?;
    let srv_cert = srv
        .signed_by(&srv_key, &issuer)
        .map_err(|e| anyhow!("TLS server: {e}"))?;
    Ok(TlsPki {
        ca_key_pem,
        ca_cert_pem: ca_cert.pem(),
        server_key_pem: srv_key.serialize_pem(),
        server_cert_pem: srv_cert.pem(),
    })
}

/// The keys directory's contents (paths only; read when needed).
#[derive(Clone, Debug)]
pub struct Keys {
    pub dir: PathBuf,
}

impl Keys {
    /// The keys a build recorded in its manifest.
    pub fn of(artifact: &StbootArtifact) -> Result<Keys> {
        Keys::open(&artifact.keys_dir)
    }

    /// The default directory, created on first use.
    pub fn ensure_default() -> Result<Keys> {
        let dir = default_keys_dir();
        ensure_keys(&dir)?;
        Ok(Keys { dir })
    }

    pub fn open(dir: &Path) -> Result<Keys> {
        let missing: Vec<&str> = all_key_files()
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the stboot keys directory {} lacks {} (run `cargo nekos build`)",
                dir.display(),
                missing.join(", ")
            );
        }
        Ok(Keys {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let p = self.path(name);
        fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
    }

    /// The Ed25519 signers (key, certificate PEM) in order.
    pub fn signers(&self) -> Result<Vec<(ospkg::SigningKey, Vec<u8>)>> {
        SIGNERS
            .iter()
            .map(|(k, c)| {
                let key = ospkg::signing_key_from_pem(&self.read(k)?)
                    .map_err(|e| anyhow!("{}: {e}", self.path(k).display()))?;
                Ok((key, self.read(c)?))
            })
            .collect()
    }

    pub fn root(&self) -> Result<(ospkg::SigningKey, Vec<u8>)> {
        let key = ospkg::signing_key_from_pem(&self.read(OSPKG_ROOT_KEY)?)
            .map_err(|e| anyhow!("{}: {e}", self.path(OSPKG_ROOT_KEY).display()))?;
        Ok((key, self.read(OSPKG_ROOT_CERT)?))
    }
}

/// `/etc/trust_policy/trust_policy.json`.
pub fn trust_policy_json() -> Vec<u8> {
    ospkg::TrustPolicy {
        ospkg_signature_threshold: THRESHOLD,
        ospkg_fetch_method: ospkg::FetchMethod::Network,
    }
    .to_json_bytes()
}

/// `/etc/host_configuration.json`: DHCP on the first Ethernet interface, the fixed
/// descriptor URL.
pub fn host_configuration_json() -> Vec<u8> {
    ospkg::HostConfig {
        version: 1,
        network_mode: ospkg::NetworkMode::Dhcp,
        host_ip: None,
        gateway: None,
        dns: Vec::new(),
        network_interfaces: None,
        ospkg_pointer: DESCRIPTOR_URL.to_string(),
    }
    .to_json_bytes()
}

/// The stage-1 initramfs: the production init, which starts `/bin/nekos-stboot` (stage 1)
/// because the trust policy is present,
/// the trust policy, the signing root, the TLS roots and the host configuration. Pure.
pub fn stage1_archive(
    init: &[u8],
    stage1: &[u8],
    os_release: &[u8],
    signing_root_pem: &[u8],
    tls_roots_pem: &[u8],
) -> Result<Archive> {
    let mut a = Archive::new();
    for dir in [
        "bin",
        "dev",
        "etc",
        "etc/trust_policy",
        "proc",
        "sys",
        "run",
        "tmp",
        "root",
    ] {
        a.mkdir_p(dir)?;
    }
    a.add(
        "dev/console",
        Node::CharDevice { major: 5, minor: 1 },
        0o600,
    )?;
    a.add("etc/os-release", Node::File(os_release.to_vec()), 0o644)?;
    a.add("init", Node::File(init.to_vec()), 0o755)?;
    a.add("bin/nekos-stboot", Node::File(stage1.to_vec()), 0o755)?;
    a.add(
        "etc/trust_policy/trust_policy.json",
        Node::File(trust_policy_json()),
        0o644,
    )?;
    a.add(
        "etc/trust_policy/ospkg_signing_root.pem",
        Node::File(signing_root_pem.to_vec()),
        0o644,
    )?;
    a.add(
        "etc/trust_policy/tls_roots.pem",
        Node::File(tls_roots_pem.to_vec()),
        0o644,
    )?;
    a.add(
        "etc/host_configuration.json",
        Node::File(host_configuration_json()),
        0o644,
    )?;
    Ok(a)
}

/// The OS package zip (kernel as `boot/bzImage`, initramfs as `boot/initramfs.cpio`) and
/// its descriptor signed by every signer in order. Pure and deterministic.
pub fn os_package(
    kernel: &[u8],
    initramfs: &[u8],
    signers: &[(ospkg::SigningKey, Vec<u8>)],
    url: &str,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let manifest = ospkg::Manifest::new(LABEL, "", "", &package_cmdline());
    let zip =
        ospkg::OsPackageArchive::build("bzImage", kernel, "initramfs.cpio", initramfs, &manifest)
            .map_err(|e| anyhow!("OS package archive: {e}"))?;
    let mut descriptor = ospkg::Descriptor::new(url);
    for (key, cert) in signers {
        ospkg::sign_descriptor(&mut descriptor, &zip, key, cert)
            .map_err(|e| anyhow!("signing the OS package: {e}"))?;
    }
    Ok((zip, descriptor.to_json_bytes()))
}

fn file_artifact(path: &Path, bytes: &[u8], inputs: BTreeMap<String, String>) -> FileArtifact {
    FileArtifact {
        path: path.to_path_buf(),
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        inputs,
    }
}

/// Builds the stage-1 initramfs and UKI (`target/nekos/stboot/`) and the OS package
/// (`target/nekos/ospkg/nekos.{zip,json}`) from the production kernel and initramfs.
pub fn build(
    root: &Path,
    manifest: &Manifest,
    previous: Option<&StbootArtifact>,
) -> Result<(StbootArtifact, bool)> {
    let keys = Keys::ensure_default()?;
    // The step's inputs (the one freshness rule, crate::steps): everything build_into reads.
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "kernel".to_string(),
        util::sha256_file(manifest.kernel_path()?)?,
    );
    inputs.insert(
        "initramfs-production".to_string(),
        util::sha256_file(manifest.initramfs_path("production")?)?,
    );
    inputs.insert(
        "nekos-init".to_string(),
        util::sha256_file(
            &manifest
                .userland
                .get("nekos-init")
                .context("the manifest has no nekos-init")?
                .path,
        )?,
    );
    inputs.insert(
        "nekos-stboot".to_string(),
        util::sha256_file(&crate::userland::stage1_program_path(root))?,
    );
    for f in all_key_files() {
        inputs.insert(f.to_string(), util::sha256_file(&keys.dir.join(f))?);
    }
    inputs.insert(
        "source_date_epoch".to_string(),
        manifest.source_date_epoch.to_string(),
    );
    let fresh = crate::steps::Freshness::new(root, "stboot", &inputs);
    if let Some(prev) = previous
        && fresh.up_to_date()
    {
        return Ok((prev.clone(), true));
    }
    let art = build_into(root, manifest, &keys, &crate::artifacts::out_dir(root))?;
    fresh.record([
        art.initramfs.path.as_path(),
        art.uki.unsigned.path.as_path(),
        art.uki.signed.path.as_path(),
        art.ospkg_zip.path.as_path(),
        art.ospkg_descriptor.path.as_path(),
    ])?;
    Ok((art, false))
}

/// [`build`] with the given keys into `out_dir` (`stboot/`, `ospkg/`): the reproducibility
/// test builds twice into fresh directories.
pub fn build_into(
    root: &Path,
    manifest: &Manifest,
    keys: &Keys,
    out_dir: &Path,
) -> Result<StbootArtifact> {
    let kernel = manifest.kernel_path()?.to_path_buf();
    // The production init, which starts stage 1 when it finds the trust policy.
    let init = manifest
        .userland
        .get("nekos-init")
        .context("the manifest has no nekos-init (run `cargo nekos build`)")?;
    let init_path = init.path.clone();
    let init_bytes =
        fs::read(&init_path).with_context(|| format!("cannot read {}", init_path.display()))?;
    let stage1_path = crate::userland::stage1_program_path(root);
    let stage1_bytes = fs::read(&stage1_path).with_context(|| {
        format!(
            "cannot read {} (run `cargo nekos build`)",
            stage1_path.display()
        )
    })?;
    let os_release = fs::read(root.join("packaging/data/os-release"))
        .context("cannot read packaging/data/os-release")?;
    let signing_root = keys.read(OSPKG_ROOT_CERT)?;
    let tls_roots = keys.read(TLS_CA_CERT)?;
    let archive = stage1_archive(
        &init_bytes,
        &stage1_bytes,
        &os_release,
        &signing_root,
        &tls_roots,
    )?;
    let bytes = archive.to_newc(manifest.source_date_epoch)?;
    let out = out_dir.join("stboot");
    let initramfs_path = out.join("initramfs.cpio");
    util::write_atomic(&initramfs_path, &bytes)?;
    let mut inputs = BTreeMap::new();
    for (path, entry) in archive.paths() {
        if let Node::File(b) = &entry.node {
            inputs.insert(format!("/{path}"), sha256_hex(b));
        }
    }
    inputs.insert(
        "source_date_epoch".into(),
        manifest.source_date_epoch.to_string(),
    );
    let initramfs = file_artifact(&initramfs_path, &bytes, inputs);
    eprintln!(
        "nekos: stage-1 initramfs ({} KiB, sha256 {})",
        bytes.len() / 1024,
        &initramfs.sha256[..16]
    );
    let uki = crate::ukis::part_of_step("uki-stage-1", &kernel, &initramfs_path, &out.join("uki"))?;

    let prod = manifest.initramfs_path("production")?;
    let kernel_bytes =
        fs::read(&kernel).with_context(|| format!("cannot read {}", kernel.display()))?;
    let prod_bytes = fs::read(prod).with_context(|| format!("cannot read {}", prod.display()))?;
    let (zip, descriptor) = os_package(&kernel_bytes, &prod_bytes, &keys.signers()?, PACKAGE_URL)?;
    let pkg_dir = out_dir.join("ospkg");
    let zip_path = pkg_dir.join("nekos.zip");
    let json_path = pkg_dir.join("nekos.json");
    util::write_atomic(&zip_path, &zip)?;
    util::write_atomic(&json_path, &descriptor)?;
    let mut zip_inputs = BTreeMap::new();
    zip_inputs.insert("boot/bzImage".into(), sha256_hex(&kernel_bytes));
    zip_inputs.insert("boot/initramfs.cpio".into(), sha256_hex(&prod_bytes));
    zip_inputs.insert("label".into(), LABEL.into());
    zip_inputs.insert("cmdline".into(), package_cmdline());
    let mut json_inputs = BTreeMap::new();
    json_inputs.insert("nekos.zip".into(), sha256_hex(&zip));
    json_inputs.insert("os_pkg_url".into(), PACKAGE_URL.into());
    for (_, c) in SIGNERS {
        json_inputs.insert(c.into(), sha256_hex(&keys.read(c)?));
    }
    let art = StbootArtifact {
        keys_dir: keys.dir.clone(),
        threshold: THRESHOLD,
        descriptor_url: DESCRIPTOR_URL.into(),
        init: file_artifact(&init_path, &init_bytes, BTreeMap::new()),
        stage1: file_artifact(&stage1_path, &stage1_bytes, BTreeMap::new()),
        initramfs,
        uki,
        ospkg_zip: file_artifact(&zip_path, &zip, zip_inputs),
        ospkg_descriptor: file_artifact(&json_path, &descriptor, json_inputs),
    };
    eprintln!(
        "nekos: OS package {} ({} KiB, sha256 {}), descriptor sha256 {} ({} signatures)",
        zip_path.display(),
        zip.len() / 1024,
        &art.ospkg_zip.sha256[..16],
        &art.ospkg_descriptor.sha256[..16],
        SIGNERS.len()
    );
    Ok(art)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stage1_configuration_parses_as_init_reads_it() {
        let p = ospkg::TrustPolicy::from_json(&trust_policy_json()).unwrap();
        assert_eq!(p.ospkg_signature_threshold, THRESHOLD);
        let h = ospkg::HostConfig::from_json(&host_configuration_json()).unwrap();
        assert_eq!(h.ospkg_urls(), [DESCRIPTOR_URL]);
        assert!(package_cmdline().contains("nekos.bootflow=stboot"));
    }

    #[test]
    fn package_is_deterministic_and_verifies_with_both_signatures() {
        let now = crate::util::now_unix().unwrap();
        let mut rng = crate::util::os_random;
        let (rk, rp) = ospkg::generate_root(now - 10, now + 1000, &mut rng).unwrap();
        let signers: Vec<_> = (0..2)
            .map(|_| ospkg::generate_leaf(&rk, &rp, now - 10, now + 1000, &mut rng).unwrap())
            .collect();
        let a = os_package(b"kernel", b"initramfs", &signers, PACKAGE_URL).unwrap();
        let b = os_package(b"kernel", b"initramfs", &signers, PACKAGE_URL).unwrap();
        assert_eq!(a, b);
        let policy = ospkg::TrustPolicy::from_json(&trust_policy_json()).unwrap();
        let v =
            ospkg::verify_package(&a.1, &a.0, &policy, &rp, now, ospkg::Limits::default()).unwrap();
        assert_eq!(v.kernel, b"kernel");
        assert_eq!(v.cmdline, package_cmdline());
        // One signature is below the threshold.
        let one = os_package(b"kernel", b"initramfs", &signers[..1], PACKAGE_URL).unwrap();
        let e = ospkg::verify_package(&one.1, &one.0, &policy, &rp, now, ospkg::Limits::default())
            .unwrap_err();
        assert!(e.to_string().contains("threshold is 2"), "{e}");
    }

    #[test]
    fn stage1_archive_is_deterministic_and_carries_the_trust_policy() {
        let a = stage1_archive(b"init", b"stage1", b"os", b"root", b"tls")
            .unwrap()
            .to_newc(1)
            .unwrap();
        let b = stage1_archive(b"init", b"stage1", b"os", b"root", b"tls")
            .unwrap()
            .to_newc(1)
            .unwrap();
        assert_eq!(a, b);
        let names: Vec<String> = stage1_archive(b"init", b"stage1", b"os", b"root", b"tls")
            .unwrap()
            .paths()
            .map(|(p, _)| p.to_string())
            .collect();
        for want in [
            "init",
            "bin/nekos-stboot",
            "etc/trust_policy/trust_policy.json",
            "etc/trust_policy/ospkg_signing_root.pem",
            "etc/trust_policy/tls_roots.pem",
            "etc/host_configuration.json",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
    }

    #[test]
    fn keys_are_created_once_private_ones_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("nekos-stboot-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        ensure_keys(&dir).unwrap();
        let before = fs::read(dir.join(OSPKG_ROOT_KEY)).unwrap();
        ensure_keys(&dir).unwrap();
        assert_eq!(before, fs::read(dir.join(OSPKG_ROOT_KEY)).unwrap());
        for f in all_key_files() {
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if f.ends_with(".key") { 0o600 } else { 0o644 }, "{f}");
        }
        fs::remove_file(dir.join(TLS_CA_KEY)).unwrap();
        let e = ensure_keys(&dir).unwrap_err().to_string();
        assert!(e.contains(TLS_CA_KEY) && e.contains("incomplete"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
