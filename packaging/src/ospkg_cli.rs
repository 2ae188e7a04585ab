//! `cargo nekos ospkg …` and `cargo nekos genkey ospkg-cert …`: System Transparency OS
//! packages (stmgr v0.6.6 wire format) made, signed, verified and inspected with
//! `nekos-ospkg`.
//!
//! Every output goes through a temporary file in the target directory and a rename; a
//! private key is created with mode 0600 and never overwritten without `--force`. The
//! same inputs and keys give the same package and descriptor bytes.

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use nekos_ospkg::{
    Descriptor, FetchMethod, Limits, Manifest, OsPackageArchive, SigningKey, TrustPolicy,
};
use std::path::{Path, PathBuf};

/// Default certificate lifetime when `--valid-until` is not given: 10 years. (stmgr's
/// default of 72 hours made the original NekOS packages unbootable three days after key
/// generation.)
pub const DEFAULT_VALIDITY_SECS: i64 = 10 * 365 * 24 * 3600;

#[derive(Subcommand, Debug)]
pub enum OspkgCmd {
    /// Make NAME.zip (Stored, fixed timestamps) and an unsigned descriptor NAME.json.
    Create {
        /// Kernel image; its file name becomes `boot/<name>` in the archive.
        #[arg(long)]
        kernel: PathBuf,
        /// Initramfs; its file name becomes `boot/<name>` in the archive.
        #[arg(long)]
        initramfs: PathBuf,
        /// Kernel command line for the next kernel.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        cmdline: String,
        /// Label shown by stboot.
        #[arg(long, default_value = "")]
        label: String,
        /// `os_pkg_url` of the descriptor (absolute http(s) URL; may be empty).
        #[arg(long, default_value = "")]
        url: String,
        /// Output path without extension: writes DIR/NAME.zip and DIR/NAME.json.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign NAME.zip with an Ed25519 key and append certificate + signature to NAME.json.
    Sign {
        /// Signing key (PKCS#8 PEM "PRIVATE KEY", Ed25519), or an Ed25519 key on a PKCS#11
        /// token (`pkcs11:token=…;object=…?module-path=…`; PIN from $NEKOS_PKCS11_PIN or a
        /// prompt).
        #[arg(long)]
        key: PathBuf,
        /// The key's certificate (PEM "CERTIFICATE").
        #[arg(long)]
        cert: PathBuf,
        /// The descriptor NAME.json (NAME.zip is read next to it).
        #[arg(long)]
        pkg: PathBuf,
    },
    /// Verify as stboot does: signatures against the root(s), threshold, archive, manifest.
    Verify {
        /// The descriptor NAME.json (NAME.zip is read next to it).
        #[arg(long)]
        pkg: PathBuf,
        /// Signing root certificate(s), PEM (stboot's ospkg_signing_root.pem).
        #[arg(long)]
        root: PathBuf,
        /// Valid signatures needed (≥ 1).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Verification time, RFC 3339 (default: now).
        #[arg(long)]
        now: Option<String>,
    },
    /// Print what a package holds (no verification) with SHA-256 sums.
    Inspect {
        /// The descriptor NAME.json (NAME.zip is read next to it).
        #[arg(long)]
        pkg: PathBuf,
    },
}

/// An Ed25519 key + certificate for OS package signing, as `stmgr keygen certificate`
/// makes them: a self-signed root with --is-ca, else a leaf issued by --root-key/--root-cert.
#[derive(clap::Args, Debug)]
pub struct OspkgCertArgs {
    /// Make a self-signed root (CA) certificate.
    #[arg(long)]
    is_ca: bool,
    /// Root key that issues the leaf (PKCS#8 PEM).
    #[arg(long, required_unless_present = "is_ca", conflicts_with = "is_ca")]
    root_key: Option<PathBuf>,
    /// Root certificate that issues the leaf (PEM).
    #[arg(long, required_unless_present = "is_ca", conflicts_with = "is_ca")]
    root_cert: Option<PathBuf>,
    /// Where to write the new private key (mode 0600).
    #[arg(long, required_unless_present = "pkcs11", conflicts_with = "pkcs11")]
    out_key: Option<PathBuf>,
    /// Generate the key on this PKCS#11 token instead (`pkcs11:token=…;object=…?module-path=…`;
    /// with --is-ca): the private key stays there, only the certificate is written.
    #[arg(long, value_name = "URI", requires = "is_ca")]
    pkcs11: Option<String>,
    /// Where to write the new certificate.
    #[arg(long)]
    out_cert: PathBuf,
    /// Start of validity, RFC 3339 (default: now).
    #[arg(long)]
    valid_from: Option<String>,
    /// End of validity, RFC 3339 (default: 10 years after the start).
    #[arg(long)]
    valid_until: Option<String>,
    /// Overwrite an existing key file.
    #[arg(long)]
    force: bool,
}

/// `cargo nekos ospkg <create|sign|verify|inspect> …`.
pub fn ospkg(cmd: OspkgCmd) -> Result<()> {
    match cmd {
        OspkgCmd::Create {
            kernel,
            initramfs,
            cmdline,
            label,
            url,
            out,
        } => {
            let (zip, json) = create(&kernel, &initramfs, &cmdline, &label, &url, &out)?;
            println!("wrote {} and {}", zip.display(), json.display());
        }
        OspkgCmd::Sign { key, cert, pkg } => {
            let (json, n) = sign(&key, &cert, &pkg)?;
            println!("signed: {} now has {n} signature(s)", json.display());
        }
        OspkgCmd::Verify {
            pkg,
            root,
            threshold,
            now,
        } => {
            let now = match now {
                Some(s) => nekos_ospkg::parse_rfc3339(&s).map_err(|e| anyhow!("--now: {e}"))?,
                None => crate::util::now_unix()?,
            };
            print!("{}", verify(&pkg, &root, threshold, now)?);
        }
        OspkgCmd::Inspect { pkg } => print!("{}", inspect(&pkg)?),
    }
    Ok(())
}

/// `cargo nekos genkey ospkg-cert …`.
pub fn ospkg_cert(a: OspkgCertArgs) -> Result<()> {
    {
        let OspkgCertArgs {
            is_ca,
            root_key,
            root_cert,
            out_key,
            pkcs11,
            out_cert,
            valid_from,
            valid_until,
            force,
        } = a;
        {
            let (from, until) = validity(valid_from.as_deref(), valid_until.as_deref())?;
            if let Some(uri) = pkcs11 {
                return ospkg_cert_on_token(&uri, &out_cert, from, until, force);
            }
            let Some(out_key) = out_key else {
                bail!("--out-key is needed unless the key is made on a token (--pkcs11)");
            };
            let issuer = match (is_ca, root_key, root_cert) {
                (true, _, _) => None,
                (false, Some(k), Some(c)) => Some((k, c)),
                _ => bail!("a leaf certificate needs --root-key and --root-cert (or pass --is-ca)"),
            };
            keygen(
                issuer.as_ref().map(|(k, c)| (k.as_path(), c.as_path())),
                &out_key,
                &out_cert,
                from,
                until,
                force,
                &mut crate::util::os_random,
            )?;
            println!(
                "wrote {} and {} (valid {} .. {})",
                out_key.display(),
                out_cert.display(),
                nekos_ospkg::format_unix(from),
                nekos_ospkg::format_unix(until)
            );
        }
    }
    Ok(())
}

/// `genkey ospkg-cert --is-ca --pkcs11 URI`: the key pair on the token, the self-signed root
/// certificate to `out_cert`.
fn ospkg_cert_on_token(
    uri: &str,
    out_cert: &Path,
    from: i64,
    until: i64,
    force: bool,
) -> Result<()> {
    if out_cert.exists() && !force {
        bail!(
            "{} exists: refusing to overwrite it (pass --force)",
            out_cert.display()
        );
    }
    let mut serial = [0u8; 16];
    crate::util::os_random(&mut serial).map_err(|e| anyhow!("randomness: {e}"))?;
    let g = nekos_build::pkcs11::generate(
        uri,
        nekos_build::pkcs11::GenKind::Ed25519 {
            valid_from: from,
            valid_until: until,
            serial,
        },
        "",
    )?;
    write_atomic(out_cert, &g.certificate, 0o644)?;
    println!(
        "generated an Ed25519 key on the token (extractable: {}, sensitive: {}); wrote {} (valid {} .. {})",
        g.protection.extractable,
        g.protection.sensitive,
        out_cert.display(),
        nekos_ospkg::format_unix(from),
        nekos_ospkg::format_unix(until)
    );
    Ok(())
}

/// `--valid-from`/`--valid-until` with defaults (now, and 10 years after the start).
pub fn validity(from: Option<&str>, until: Option<&str>) -> Result<(i64, i64)> {
    let from = match from {
        Some(s) => nekos_ospkg::parse_rfc3339(s).map_err(|e| anyhow!("--valid-from: {e}"))?,
        None => crate::util::now_unix()?,
    };
    let until = match until {
        Some(s) => nekos_ospkg::parse_rfc3339(s).map_err(|e| anyhow!("--valid-until: {e}"))?,
        None => from.saturating_add(DEFAULT_VALIDITY_SECS),
    };
    if until <= from {
        bail!(
            "--valid-until ({}) must be after --valid-from ({})",
            nekos_ospkg::format_unix(until),
            nekos_ospkg::format_unix(from)
        );
    }
    Ok((from, until))
}

/// NAME.zip and NAME.json for a package path given as NAME, NAME.json or NAME.zip.
pub fn package_paths(pkg: &Path) -> (PathBuf, PathBuf) {
    let base = match pkg.extension().and_then(|e| e.to_str()) {
        Some("json" | "zip") => pkg.with_extension(""),
        _ => pkg.to_path_buf(),
    };
    let mut zip = base.clone().into_os_string();
    zip.push(".zip");
    let mut json = base.into_os_string();
    json.push(".json");
    (PathBuf::from(zip), PathBuf::from(json))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {} ({what})", path.display()))
}

/// Writes through `<path>.tmp-<pid>` + rename, with `mode` set before any byte is written.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    crate::util::write_atomic_mode(path, bytes, mode)
}

fn file_name_of(path: &Path, flag: &str) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow!(
                "{flag} {}: expected a path to a file with a UTF-8 name",
                path.display()
            )
        })
}

/// `ospkg create`: returns the paths written.
pub fn create(
    kernel: &Path,
    initramfs: &Path,
    cmdline: &str,
    label: &str,
    url: &str,
    out: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let kernel_name = file_name_of(kernel, "--kernel")?;
    let initramfs_name = file_name_of(initramfs, "--initramfs")?;
    let kernel_bytes = read(kernel, "--kernel: the kernel image")?;
    let initramfs_bytes = read(initramfs, "--initramfs: the initramfs")?;
    if kernel_bytes.is_empty() {
        bail!(
            "--kernel {}: the file is empty, expected a kernel image",
            kernel.display()
        );
    }
    let descriptor = Descriptor::new(url);
    descriptor
        .validate()
        .map_err(|e| anyhow!("--url {url:?}: {e}"))?;
    let manifest = Manifest::new(label, "", "", cmdline);
    let zip = OsPackageArchive::build(
        &kernel_name,
        &kernel_bytes,
        &initramfs_name,
        &initramfs_bytes,
        &manifest,
    )
    .map_err(|e| anyhow!("building the archive: {e}"))?;
    let (zip_path, json_path) = package_paths(out);
    write_atomic(&zip_path, &zip, 0o644)?;
    write_atomic(&json_path, &descriptor.to_json_bytes(), 0o644)?;
    Ok((zip_path, json_path))
}

fn read_descriptor(path: &Path) -> Result<Descriptor> {
    let bytes = read(path, "the package descriptor")?;
    Descriptor::from_json(&bytes).map_err(|e| {
        anyhow!(
            "{}: expected a System Transparency descriptor: {e}",
            path.display()
        )
    })
}

fn read_key(path: &Path) -> Result<SigningKey> {
    let bytes = read(path, "an Ed25519 private key")?;
    nekos_ospkg::signing_key_from_pem(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `ospkg sign`: returns the descriptor path and its signature count.
pub fn sign(key: &Path, cert: &Path, pkg: &Path) -> Result<(PathBuf, usize)> {
    let (zip_path, json_path) = package_paths(pkg);
    let key: Box<dyn nekos_ospkg::Ed25519Signer> = match key
        .to_str()
        .filter(|k| nekos_build::pkcs11::is_pkcs11_uri(k))
    {
        Some(uri) => Box::new(nekos_build::pkcs11::Pkcs11Ed25519Signer::open(uri)?),
        None => Box::new(read_key(key)?),
    };
    let cert_pem = read(cert, "the signing certificate")?;
    let mut descriptor = read_descriptor(&json_path)?;
    let zip = read(&zip_path, "the package archive")?;
    nekos_ospkg::sign_descriptor(&mut descriptor, &zip, key.as_ref(), &cert_pem).map_err(|e| {
        anyhow!(
            "signing {} with {}: {e}",
            zip_path.display(),
            cert.display()
        )
    })?;
    write_atomic(&json_path, &descriptor.to_json_bytes(), 0o644)?;
    Ok((json_path, descriptor.signatures.len()))
}

/// `ospkg verify`: the report printed on success.
pub fn verify(pkg: &Path, root: &Path, threshold: usize, now: i64) -> Result<String> {
    let (zip_path, json_path) = package_paths(pkg);
    let descriptor = read(&json_path, "the package descriptor")?;
    let zip = read(&zip_path, "the package archive")?;
    let roots = read(root, "the signing root certificate(s)")?;
    let policy = TrustPolicy {
        ospkg_signature_threshold: threshold,
        ospkg_fetch_method: FetchMethod::Network,
    };
    let parsed =
        Descriptor::from_json(&descriptor).map_err(|e| anyhow!("{}: {e}", json_path.display()))?;
    let counted = nekos_ospkg::verify(&parsed, &zip, &roots, threshold, now)
        .map_err(|e| anyhow!("{}: verification failed: {e}", json_path.display()))?;
    let p = nekos_ospkg::verify_package(&descriptor, &zip, &policy, &roots, now, Limits::default())
        .map_err(|e| anyhow!("{}: {e}", json_path.display()))?;
    Ok(format!(
        "OK: {} valid signature(s), threshold {threshold}, at {}\n\
         label:      {}\n\
         kernel:     {} ({} bytes, sha256 {})\n\
         initramfs:  {} ({} bytes, sha256 {})\n\
         cmdline:    {}\n\
         zip sha256: {}\n\
         descriptor sha256: {}\n",
        counted.valid_signatures,
        nekos_ospkg::format_unix(now),
        p.manifest.label,
        p.manifest.kernel,
        p.kernel.len(),
        nekos_ospkg::hex(&nekos_ospkg::sha256(&p.kernel)),
        p.manifest.initramfs,
        p.initramfs.len(),
        nekos_ospkg::hex(&nekos_ospkg::sha256(&p.initramfs)),
        p.cmdline,
        nekos_ospkg::hex(&p.zip_sha256),
        nekos_ospkg::hex(&p.descriptor_sha256),
    ))
}

/// `ospkg inspect`: a human summary (nothing is verified).
pub fn inspect(pkg: &Path) -> Result<String> {
    use std::fmt::Write as _;
    let (zip_path, json_path) = package_paths(pkg);
    let json = read(&json_path, "the package descriptor")?;
    let d = Descriptor::from_json(&json).map_err(|e| anyhow!("{}: {e}", json_path.display()))?;
    let zip = read(&zip_path, "the package archive")?;
    let mut s = String::new();
    let _ = writeln!(s, "descriptor {} (NOT verified)", json_path.display());
    let _ = writeln!(
        s,
        "  sha256:     {}",
        nekos_ospkg::hex(&nekos_ospkg::sha256(&json))
    );
    let _ = writeln!(s, "  version:    {}", d.version);
    let _ = writeln!(s, "  os_pkg_url: {}", d.os_pkg_url);
    if let Err(e) = d.validate() {
        let _ = writeln!(s, "  INVALID: {e}");
    }
    let _ = writeln!(s, "  signatures: {}", d.signatures.len());
    for (i, cert) in d.certificates.iter().enumerate() {
        let _ = writeln!(
            s,
            "  [{}] certificate: {}",
            i + 1,
            nekos_ospkg::describe_certificate(cert)
        );
        if let Some(sig) = d.signatures.get(i) {
            let _ = writeln!(s, "      signature:   {}", nekos_ospkg::hex(sig));
        }
    }
    let _ = writeln!(s, "archive {}", zip_path.display());
    let _ = writeln!(
        s,
        "  sha256:     {}",
        nekos_ospkg::hex(&nekos_ospkg::sha256(&zip))
    );
    let _ = writeln!(s, "  size:       {} bytes", zip.len());
    match OsPackageArchive::entry_names(&zip, Limits::default()) {
        Ok(names) => {
            let _ = writeln!(s, "  entries:    {}", names.join(", "));
        }
        Err(e) => {
            let _ = writeln!(s, "  INVALID: {e}");
            return Ok(s);
        }
    }
    match OsPackageArchive::parse(&zip, Limits::default()) {
        Ok(p) => {
            let m = &p.manifest;
            let _ = writeln!(s, "  label:      {}", m.label);
            let _ = writeln!(
                s,
                "  kernel:     {} ({} bytes, sha256 {})",
                m.kernel,
                p.kernel.len(),
                nekos_ospkg::hex(&nekos_ospkg::sha256(&p.kernel))
            );
            let _ = writeln!(
                s,
                "  initramfs:  {} ({} bytes, sha256 {})",
                m.initramfs,
                p.initramfs.len(),
                nekos_ospkg::hex(&nekos_ospkg::sha256(&p.initramfs))
            );
            let _ = writeln!(s, "  cmdline:    {}", m.cmdline);
        }
        Err(e) => {
            let _ = writeln!(s, "  INVALID: {e}");
        }
    }
    Ok(s)
}

/// `genkey ospkg-cert`: a root (no issuer) or a leaf issued by `(root key, root cert)`.
pub fn keygen(
    issuer: Option<(&Path, &Path)>,
    out_key: &Path,
    out_cert: &Path,
    valid_from: i64,
    valid_until: i64,
    force: bool,
    rng: &mut dyn FnMut(&mut [u8]) -> std::result::Result<(), String>,
) -> Result<()> {
    if out_key.exists() && !force {
        bail!(
            "{} exists: refusing to overwrite a private key (pass --force)",
            out_key.display()
        );
    }
    let (key, cert) = match issuer {
        None => nekos_ospkg::generate_root(valid_from, valid_until, rng)
            .map_err(|e| anyhow!("making the root certificate: {e}"))?,
        Some((root_key_path, root_cert_path)) => {
            let root_key = read_key(root_key_path)?;
            let root_cert = read(root_cert_path, "the root certificate")?;
            if let Some((_, root_until)) = nekos_ospkg::certificate_validity(&root_cert)
                && valid_until > root_until
            {
                eprintln!(
                    "warning: the new certificate is valid until {}, but its root {} expires at {}; \
                     signatures stop verifying then",
                    nekos_ospkg::format_unix(valid_until),
                    root_cert_path.display(),
                    nekos_ospkg::format_unix(root_until)
                );
            }
            nekos_ospkg::generate_leaf(&root_key, &root_cert, valid_from, valid_until, rng)
                .map_err(|e| {
                    anyhow!(
                        "issuing with {} and {}: {e}",
                        root_key_path.display(),
                        root_cert_path.display()
                    )
                })?
        }
    };
    write_atomic(out_key, &nekos_ospkg::signing_key_to_pem(&key), 0o600)?;
    write_atomic(out_cert, &cert, 0o644)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nekos-ospkg-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn det_rng(seed: u8) -> impl FnMut(&mut [u8]) -> std::result::Result<(), String> {
        let mut n = seed;
        move |b: &mut [u8]| {
            for x in b.iter_mut() {
                n = n.wrapping_mul(29).wrapping_add(71);
                *x = n;
            }
            Ok(())
        }
    }

    const FROM: i64 = 1_577_836_800; // 2020-01-01
    const UNTIL: i64 = 2_208_988_800; // 2040-01-01
    const NOW: i64 = 1_893_456_000; // 2030-01-01

    /// root + leaf + a package; returns (dir, pkg json path).
    fn setup(tag: &str) -> (PathBuf, PathBuf) {
        let d = tmpdir(tag);
        keygen(
            None,
            &d.join("root.key"),
            &d.join("root.pem"),
            FROM,
            UNTIL,
            false,
            &mut det_rng(1),
        )
        .unwrap();
        keygen(
            Some((&d.join("root.key"), &d.join("root.pem"))),
            &d.join("leaf.key"),
            &d.join("leaf.pem"),
            FROM,
            UNTIL,
            false,
            &mut det_rng(2),
        )
        .unwrap();
        std::fs::write(d.join("vmlinuz"), b"kernel image bytes").unwrap();
        std::fs::write(d.join("initramfs.cpio"), b"initramfs bytes").unwrap();
        let (zip, json) = create(
            &d.join("vmlinuz"),
            &d.join("initramfs.cpio"),
            "console=ttyS0",
            "NekOS",
            "http://10.0.2.2:8000/nekos.zip",
            &d.join("out/nekos"),
        )
        .unwrap();
        assert_eq!(zip, d.join("out/nekos.zip"));
        (d, json)
    }

    #[test]
    fn create_sign_verify_inspect() {
        let (d, json) = setup("flow");
        let unsigned = std::fs::read_to_string(&json).unwrap();
        assert!(unsigned.contains("\"signatures\": null"));
        let e = verify(&json, &d.join("root.pem"), 1, NOW).unwrap_err();
        assert!(
            format!("{e:#}").contains("0 valid signature(s) of 0"),
            "{e:#}"
        );
        let (_, n) = sign(&d.join("leaf.key"), &d.join("leaf.pem"), &json).unwrap();
        assert_eq!(n, 1);
        let report = verify(&json, &d.join("root.pem"), 1, NOW).unwrap();
        assert!(
            report.starts_with("OK: 1 valid signature(s), threshold 1"),
            "{report}"
        );
        assert!(report.contains("boot/vmlinuz (18 bytes"), "{report}");
        assert!(verify(&json, &d.join("root.pem"), 2, NOW).is_err());
        // The root signs too → threshold 2 passes; signing twice is refused.
        sign(
            &d.join("root.key"),
            &d.join("root.pem"),
            &d.join("out/nekos.zip"),
        )
        .unwrap();
        assert!(verify(&d.join("out/nekos"), &d.join("root.pem"), 2, NOW).is_ok());
        let e = sign(&d.join("leaf.key"), &d.join("leaf.pem"), &json).unwrap_err();
        assert!(
            format!("{e:#}").contains("already has a signature"),
            "{e:#}"
        );
        // Expired at verification time.
        let e = verify(&json, &d.join("root.pem"), 1, UNTIL + 1).unwrap_err();
        assert!(
            format!("{e:#}").contains("expired at 2040-01-01T00:00:00Z"),
            "{e:#}"
        );
        let text = inspect(&json).unwrap();
        assert!(text.contains("signatures: 2"), "{text}");
        assert!(
            text.contains("entries:    boot/, boot/vmlinuz, boot/initramfs.cpio, manifest.json"),
            "{text}"
        );
        // No temp files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(d.join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn same_inputs_same_bytes() {
        let (d1, j1) = setup("det1");
        let (d2, j2) = setup("det2");
        sign(&d1.join("leaf.key"), &d1.join("leaf.pem"), &j1).unwrap();
        // Same keys (copied), same inputs → identical zip and descriptor.
        for f in ["leaf.key", "leaf.pem"] {
            std::fs::copy(d1.join(f), d2.join(f)).unwrap();
        }
        sign(&d2.join("leaf.key"), &d2.join("leaf.pem"), &j2).unwrap();
        assert_eq!(std::fs::read(&j1).unwrap(), std::fs::read(&j2).unwrap());
        assert_eq!(
            std::fs::read(d1.join("out/nekos.zip")).unwrap(),
            std::fs::read(d2.join("out/nekos.zip")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&d1);
        let _ = std::fs::remove_dir_all(&d2);
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let (d, json) = setup("bad");
        // A certificate given as key.
        let e = sign(&d.join("leaf.pem"), &d.join("leaf.pem"), &json).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("leaf.pem") && msg.contains("PRIVATE KEY"),
            "{msg}"
        );
        // Key and certificate that do not belong together.
        let e = sign(&d.join("root.key"), &d.join("leaf.pem"), &json).unwrap_err();
        assert!(format!("{e:#}").contains("does not match"), "{e:#}");
        // A missing archive.
        std::fs::remove_file(d.join("out/nekos.zip")).unwrap();
        let e = sign(&d.join("leaf.key"), &d.join("leaf.pem"), &json).unwrap_err();
        assert!(
            format!("{e:#}").contains("nekos.zip (the package archive)"),
            "{e:#}"
        );
        // A descriptor that is not JSON.
        std::fs::write(&json, b"garbage").unwrap();
        let e = inspect(&json).unwrap_err();
        assert!(format!("{e:#}").contains("nekos.json"), "{e:#}");
        // A non-Ed25519 key (P-256 PKCS#8 header).
        let ec = nekos_ospkg::pem_encode(
            "PRIVATE KEY",
            &[
                0x30, 0x13, 0x02, 0x01, 0x00, 0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
                0x02, 0x01, 0x04, 0x03, 0x04, 0x01, 0x00,
            ],
        );
        std::fs::write(d.join("ec.key"), ec).unwrap();
        let e = keygen(
            Some((&d.join("ec.key"), &d.join("root.pem"))),
            &d.join("x.key"),
            &d.join("x.pem"),
            FROM,
            UNTIL,
            false,
            &mut det_rng(3),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("not Ed25519"), "{e:#}");
        // Refuses to overwrite a key.
        let e = keygen(
            None,
            &d.join("root.key"),
            &d.join("r2.pem"),
            FROM,
            UNTIL,
            false,
            &mut det_rng(4),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("refusing to overwrite"), "{e:#}");
        // Bad URL.
        let e = create(
            &d.join("vmlinuz"),
            &d.join("initramfs.cpio"),
            "",
            "",
            "no scheme",
            &d.join("o"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("--url"), "{e:#}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn key_mode_and_validity_defaults() {
        use std::os::unix::fs::PermissionsExt;
        let (d, _) = setup("mode");
        let mode = std::fs::metadata(d.join("leaf.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (from, until) = validity(None, None).unwrap();
        assert_eq!(until - from, DEFAULT_VALIDITY_SECS);
        let (from, until) =
            validity(Some("2026-01-01T00:00:00Z"), Some("2030-01-01T00:00:00Z")).unwrap();
        assert_eq!((from, until), (1_767_225_600, 1_893_456_000));
        assert!(validity(Some("2030-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")).is_err());
        assert!(validity(Some("tomorrow"), None).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn argument_parsing() {
        let run = |args: &[&str]| crate::cli::run_args(args.iter().copied());
        let (d, json) = setup("args");
        let root = d.join("root.pem").display().to_string();
        let j = json.display().to_string();
        run(&[
            "ospkg",
            "sign",
            "--key",
            &d.join("leaf.key").display().to_string(),
            "--cert",
            &d.join("leaf.pem").display().to_string(),
            "--pkg",
            &j,
        ])
        .unwrap();
        run(&[
            "ospkg",
            "verify",
            "--pkg",
            &j,
            "--root",
            &root,
            "--threshold",
            "1",
            "--now",
            "2030-01-01T00:00:00Z",
        ])
        .unwrap();
        assert!(
            run(&[
                "ospkg",
                "verify",
                "--pkg",
                &j,
                "--root",
                &root,
                "--now",
                "2041-01-01T00:00:00Z"
            ])
            .is_err()
        );
        assert!(
            run(&[
                "ospkg",
                "verify",
                "--pkg",
                &j,
                "--root",
                &root,
                "--now",
                "yesterday"
            ])
            .is_err()
        );
        assert!(run(&["ospkg", "frobnicate"]).is_err());
        run(&["ospkg", "inspect", "--pkg", &j]).unwrap();
        let help = run(&["ospkg", "--help"]).unwrap_err().to_string();
        assert!(help.contains("create") && help.contains("verify"), "{help}");
        // keygen: a leaf needs the root files.
        let k = d.join("k2.key").display().to_string();
        let c = d.join("k2.pem").display().to_string();
        assert!(run(&["genkey", "ospkg-cert", "--out-key", &k, "--out-cert", &c]).is_err());
        run(&[
            "genkey",
            "ospkg-cert",
            "--is-ca",
            "--out-key",
            &k,
            "--out-cert",
            &c,
            "--valid-until",
            "2030-01-01T00:00:00Z",
            "--valid-from",
            "2026-01-01T00:00:00Z",
        ])
        .unwrap();
        let cert = std::fs::read(d.join("k2.pem")).unwrap();
        assert!(
            nekos_ospkg::describe_certificate(&cert)
                .contains("valid 2026-01-01T00:00:00Z .. 2030-01-01T00:00:00Z")
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
