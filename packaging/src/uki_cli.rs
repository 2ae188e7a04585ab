//! The UKI and Secure Boot verbs: `make-uki`, `uki`, `sign`, `verify`, `inspect`. `uki` and
//! `make-uki` name the same inputs the same way (`--kernel`, `--initrd`, `--cmdline`,
//! `--os-release`, `--uname`, `--stub`, `--sbat`); ukify's `--linux` is an alias.

use anyhow::{Context, Result, bail};
use nekos_build::authenticode;
use nekos_build::authenticode::Signer;
use nekos_build::keys;
use nekos_build::uki::*;
use std::path::{Path, PathBuf};

/// What goes into a UKI, as both `uki` and `make-uki` take it.
#[derive(clap::Args, Debug)]
pub struct UkiInputArgs {
    /// The kernel (a bzImage with the EFI stub).
    #[arg(long, visible_alias = "linux")]
    pub kernel: PathBuf,
    /// The initramfs; `uki` takes several, concatenated 4-byte aligned as ukify does.
    #[arg(long = "initrd", visible_alias = "initramfs", required = true)]
    pub initrds: Vec<PathBuf>,
    /// The embedded kernel command line (whitespace collapsed as ukify does).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "cmdline_file")]
    pub cmdline: Option<String>,
    /// Read the command line from this file.
    #[arg(long)]
    pub cmdline_file: Option<PathBuf>,
    /// `.osrel` (default: NekOS's os-release; a leading `@` is ignored, as ukify does).
    #[arg(long)]
    pub os_release: Option<String>,
    /// `.uname` (default: read from the kernel's header).
    #[arg(long)]
    pub uname: Option<String>,
    /// The systemd-stub (default: the pinned systemd-stub 257, fetched and cached).
    #[arg(long)]
    pub stub: Option<PathBuf>,
    /// Extra `.sbat` lines, or `@FILE`.
    #[arg(long)]
    pub sbat: Option<String>,
    /// The architecture (x86_64 or aarch64): kernel and stub must be PE images for it, and
    /// the default stub is its pinned one (default: the kernel's PE machine decides).
    #[arg(long)]
    pub arch: Option<String>,
}

impl UkiInputArgs {
    fn cmdline(&self) -> Result<String> {
        match (&self.cmdline, &self.cmdline_file) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(f)) => std::fs::read_to_string(f)
                .with_context(|| format!("reading --cmdline-file {}", f.display())),
            (None, None) => Ok(String::new()),
        }
    }

    fn arch(&self) -> Result<Option<nekos_build::arch::Arch>> {
        self.arch
            .as_deref()
            .map(nekos_build::arch::Arch::parse)
            .transpose()
            .context("--arch")
    }

    fn os_release_path(&self) -> Option<PathBuf> {
        self.os_release
            .as_deref()
            .map(|p| PathBuf::from(p.trim_start_matches('@')))
    }
}

/// `make-uki`: files in, `nekos.efi`, `nekos.signed.efi`, `nekos.uki.json` out.
#[derive(clap::Args, Debug)]
pub struct MakeUkiArgs {
    #[command(flatten)]
    pub inputs: UkiInputArgs,
    /// The Secure Boot hierarchy whose db key signs (default: the NekOS keys directory).
    #[arg(long, conflicts_with_all = ["no_sign", "key"])]
    pub keys: Option<PathBuf>,
    /// Sign with this key instead: a key file (with --cert) or a PKCS#11 URI
    /// (`pkcs11:token=…;object=db?module-path=…`; PIN from $NEKOS_PKCS11_PIN or a prompt).
    #[arg(long, conflicts_with = "no_sign")]
    pub key: Option<PathBuf>,
    /// The certificate of --key (optional for a PKCS#11 key that has one on the token).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Write only the unsigned `nekos.efi`.
    #[arg(long)]
    pub no_sign: bool,
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
}

/// `uki`: an unsigned UKI, byte-identical to `ukify build` 257.
#[derive(clap::Args, Debug)]
pub struct UkiArgs {
    #[command(flatten)]
    pub inputs: UkiInputArgs,
    #[arg(long)]
    pub output: PathBuf,
}

/// Which key signs: a hierarchy directory's db key, a key and certificate file, or a key on
/// a PKCS#11 token.
#[derive(clap::Args, Debug)]
pub struct SignerArgs {
    /// A hierarchy directory (its db.key, db.crt); default: the NekOS keys directory.
    #[arg(long, conflicts_with_all = ["key", "cert"])]
    pub keys: Option<PathBuf>,
    /// A key file (with --cert) or a PKCS#11 URI (`pkcs11:token=…;object=db?module-path=…`;
    /// PIN from $NEKOS_PKCS11_PIN or a prompt).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The certificate of --key (optional for a PKCS#11 key that has one on the token).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub signer: SignerArgs,
    /// The PE image to sign.
    pub input: PathBuf,
    /// Where to write the signed image.
    #[arg(required_unless_present = "output", conflicts_with = "output")]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The certificate that must have signed it (PEM or DER).
    #[arg(long)]
    pub cert: PathBuf,
    pub file: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    pub file: PathBuf,
}

fn sbat_arg(v: Option<&str>) -> Result<Option<String>> {
    match v {
        Some(s) if s.starts_with('@') => Ok(Some(
            std::fs::read_to_string(&s[1..])
                .with_context(|| format!("reading --sbat {}", &s[1..]))?,
        )),
        Some(s) => Ok(Some(s.to_string())),
        None => Ok(None),
    }
}

pub fn make_uki(a: MakeUkiArgs) -> Result<()> {
    let [initramfs] = a.inputs.initrds.as_slice() else {
        bail!("make-uki takes one --initrd (`uki` joins several)");
    };
    let signer = match (&a.key, a.no_sign) {
        (Some(k), _) => Some(keys::load_signer_any(k, a.cert.as_deref())?),
        (None, true) => None,
        (None, false) => {
            let dir = a.keys.clone().unwrap_or_else(keys::default_keys_dir);
            Some(Box::new(keys::load_db_signer(&dir).with_context(|| {
                format!(
                    "loading the db key from {} (create one with `cargo nekos genkey secure-boot`)",
                    dir.display()
                )
            })?) as Box<dyn Signer>)
        }
    };
    let out = nekos_build::uki::make_uki_with(
        &MakeUkiOptions {
            kernel: a.inputs.kernel.clone(),
            initramfs: initramfs.clone(),
            cmdline: a.inputs.cmdline()?,
            os_release: a.inputs.os_release_path(),
            uname: a.inputs.uname.clone(),
            stub: a.inputs.stub.clone(),
            arch: a.inputs.arch()?,
            sbat: sbat_arg(a.inputs.sbat.as_deref())?,
            keys_dir: None,
            out_dir: a.out_dir,
        },
        signer.as_deref(),
    )?;
    println!("{}", out.unsigned.display());
    if let Some(s) = &out.signed {
        println!("{}", s.display());
    }
    println!("{}", out.manifest.display());
    Ok(())
}

pub fn uki(a: UkiArgs) -> Result<()> {
    let i = &a.inputs;
    let linux = std::fs::read(&i.kernel)
        .with_context(|| format!("reading kernel {}", i.kernel.display()))?;
    let mut initrds = Vec::new();
    for p in &i.initrds {
        let d = std::fs::read(p).with_context(|| format!("reading initrd {}", p.display()))?;
        if d.is_empty() {
            bail!("initramfs {} is empty", p.display());
        }
        initrds.push(d);
    }
    let initrd = join_initrds(&initrds.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let osrel = match i.os_release_path() {
        Some(p) => std::fs::read_to_string(&p)
            .with_context(|| format!("reading os-release {}", p.display()))?,
        None => NEKOS_OS_RELEASE.to_string(),
    };
    let arch = match i.arch()? {
        Some(a) => a,
        None => arch_of(&linux, &format!("kernel {}", i.kernel.display()))?,
    };
    check_pe_arch(&linux, &format!("kernel {}", i.kernel.display()), arch)?;
    let stub_bytes = match &i.stub {
        Some(p) => std::fs::read(p).with_context(|| format!("reading stub {}", p.display()))?,
        None => stub::load_pinned_stub_for(arch)?,
    };
    if let Some(p) = &i.stub {
        check_pe_arch(&stub_bytes, &format!("stub {}", p.display()), arch)?;
    }
    let uname = match &i.uname {
        Some(u) => Some(u.clone()),
        None => kernel_release(&linux).ok(),
    };
    let sbat = sbat_arg(i.sbat.as_deref())?;
    let cmdline = i.cmdline()?;
    let uki = build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux: &linux,
        initrd: &initrd,
        cmdline: &cmdline,
        osrel: &osrel,
        uname: uname.as_deref(),
        sbat: sbat.as_deref(),
    })
    .with_context(|| format!("kernel {}", i.kernel.display()))?;
    keys::write_atomic(&a.output, &uki, 0o644)?;
    println!("{}", a.output.display());
    Ok(())
}

fn signer_from(a: &SignerArgs) -> Result<Box<dyn Signer>> {
    match (&a.key, &a.keys) {
        (Some(k), _) => keys::load_signer_any(k, a.cert.as_deref()),
        (None, Some(d)) => Ok(Box::new(keys::load_db_signer(d)?)),
        (None, None) => Ok(Box::new(keys::load_db_signer(&keys::default_keys_dir())?)),
    }
}

pub fn sign(a: SignArgs) -> Result<()> {
    let signer = signer_from(&a.signer)?;
    let Some(output) = a.out.or(a.output) else {
        bail!("sign: where to? give OUT.efi or --output");
    };
    sign_file(&a.input, &output, signer.as_ref())?;
    println!("{}", output.display());
    Ok(())
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    let cert = keys::load_certificate(&a.cert)?;
    let data = read(&a.file)?;
    let r =
        authenticode::verify(&data, Some(&cert)).with_context(|| a.file.display().to_string())?;
    println!(
        "{}: signature OK, authenticode sha256 {}",
        a.file.display(),
        hex::encode(r.image_sha256)
    );
    Ok(())
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let file = a.file.display().to_string();
    let data = read(&a.file)?;
    let info = nekos_build::uki::inspect(&data).with_context(|| file.clone())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("{file}: {} bytes, sha256 {}", info.size, info.sha256);
    println!("authenticode sha256: {}", info.authenticode_sha256);
    if let Some(p) = &info.pcr11_sha256 {
        println!("pcr11 sha256 (systemd-stub): {p}");
    }
    match info.signature_verifies {
        None => println!("signature: none"),
        Some(true) => println!("signature: present, verifies with its embedded certificate"),
        Some(false) => println!("signature: present, DOES NOT VERIFY"),
    }
    println!(
        "{:<9} {:>10} {:>10} {:>10}  sha256",
        "section", "vsize", "rawsize", "vaddr"
    );
    for s in &info.sections {
        println!(
            "{:<9} {:>10} {:>10} {:>#10x}  {}",
            s.name, s.virtual_size, s.size_of_raw_data, s.virtual_address, s.sha256
        );
    }
    Ok(())
}

/// `genkey secure-boot --pkcs11 URI --role ROLE --cert FILE`: an RSA-2048 key pair made on
/// the token (non-extractable, sensitive), its self-signed certificate (as the key-file
/// hierarchy's) stored on the token and written to `cert` — no key file anywhere.
pub fn genkey_on_token(uri: &str, role: &str, cert: Option<&Path>, force: bool) -> Result<()> {
    let role = match role.to_ascii_lowercase().as_str() {
        "pk" => keys::Role::Pk,
        "kek" => keys::Role::Kek,
        "db" => keys::Role::Db,
        other => bail!("--role {other:?}: expected pk, kek or db"),
    };
    let Some(cert) = cert else {
        bail!("--pkcs11 needs --cert FILE: where to write the certificate");
    };
    if cert.exists() && !force {
        bail!(
            "{} exists: refusing to overwrite it (pass --force)",
            cert.display()
        );
    }
    let g = nekos_build::pkcs11::generate(
        uri,
        nekos_build::pkcs11::GenKind::Rsa(role),
        role.common_name(),
    )?;
    keys::write_atomic(cert, keys::cert_pem(&g.certificate)?.as_bytes(), 0o644)?;
    println!(
        "genkey: generated the {} key (RSA-2048) on the token (extractable: {}, sensitive: {}); wrote its certificate to {}",
        role.stem(),
        g.protection.extractable,
        g.protection.sensitive,
        cert.display()
    );
    Ok(())
}
