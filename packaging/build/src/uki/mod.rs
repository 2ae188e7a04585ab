//! Unified Kernel Images from files: the assembly itself (bytes in, bytes out, identical to
//! `ukify build` 257) is `nekos_formats::uki`, re-exported here.
//!
//! Entry points: [`build_uki`] (bytes in, bytes out), [`crate::authenticode::sign`],
//! [`make_uki`] (the whole `packaging/make-uki` pipeline: files in, `nekos.efi`,
//! `nekos.signed.efi` and `nekos.uki.json` out), [`cli_main`] (the CLI verbs), and
//! [`stub::load_pinned_stub`] (the pinned, cached systemd-stub).

pub mod stub;

pub use nekos_formats::uki::*;

use crate::arch::Arch;
use crate::authenticode::{self, Signer};
use crate::keys::write_atomic;
use crate::pe::PeFile;
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// Refuses a PE image (stub, kernel, UKI) that is not for `arch`; `what` names the file. The
/// error says which architecture the file is for and which was expected.
pub fn check_pe_arch(data: &[u8], what: &str, arch: Arch) -> Result<()> {
    // One message (not a context chain), so `{}` and `{:#}` both name the file.
    crate::pe::expect_machine(data, arch.pe_machine(), what)
        .map_err(|e| anyhow!("{e:#} (the {arch} build needs {arch} EFI images)"))
}

/// [`check_pe_arch`] on a file, for the launcher: an x86_64 UKI handed to an aarch64
/// deployment (or the reverse) is refused before QEMU starts, naming the file.
pub fn check_efi_file_arch(path: &Path, arch: Arch) -> Result<()> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_pe_arch(&data, &path.display().to_string(), arch)
}

/// The architecture a PE image is for (its COFF machine), or an error naming `what` when it
/// is not a PE image or for no architecture NekOS builds.
pub fn arch_of(data: &[u8], what: &str) -> Result<Arch> {
    let m = crate::pe::machine_of(data).with_context(|| format!("{what}: not a PE/EFI image"))?;
    Arch::from_pe_machine(m).ok_or_else(|| {
        anyhow!(
            "{what} is a PE image for {}, expected x86_64 (0x8664) or arm64 (0xaa64)",
            crate::pe::machine_name(m)
        )
    })
}

/// The NekOS UKI from a kernel and an initramfs, for the build and the QEMU deployments: the
/// pinned systemd-stub, [`NEKOS_OS_RELEASE`], the kernel release read from the bzImage (left
/// out if it cannot be read), default SBAT. Sign it with [`crate::authenticode::sign`].
pub fn build_nekos_uki(linux: &[u8], initrd: &[u8], cmdline: &str) -> Result<Vec<u8>> {
    build_nekos_uki_for(Arch::X86_64, linux, initrd, cmdline)
}

/// [`build_nekos_uki`] for `arch`: its pinned stub; the kernel must be an `arch` PE image.
pub fn build_nekos_uki_for(
    arch: Arch,
    linux: &[u8],
    initrd: &[u8],
    cmdline: &str,
) -> Result<Vec<u8>> {
    check_pe_arch(linux, "kernel", arch)?;
    let stub = stub::load_pinned_stub_for(arch)?;
    let uname = kernel_release(linux).ok();
    build_uki(&UkiInputs {
        stub: &stub,
        linux,
        initrd,
        cmdline,
        osrel: NEKOS_OS_RELEASE,
        uname: uname.as_deref(),
        sbat: None,
    })
}

/// File names written by [`make_uki`].
pub const UNSIGNED_NAME: &str = "nekos.efi";
pub const SIGNED_NAME: &str = "nekos.signed.efi";
pub const MANIFEST_NAME: &str = "nekos.uki.json";

/// Inputs of the `make-uki` pipeline, as files.
#[derive(Clone, Debug, Default)]
pub struct MakeUkiOptions {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub cmdline: String,
    /// None: [`NEKOS_OS_RELEASE`].
    pub os_release: Option<PathBuf>,
    /// None: read from the kernel's header.
    pub uname: Option<String>,
    /// None: the pinned stub of the architecture ([`stub::load_pinned_stub_for`]).
    pub stub: Option<PathBuf>,
    /// The architecture the UKI is for: kernel and stub must both be PE images for it.
    /// None: the kernel's PE machine decides.
    pub arch: Option<Arch>,
    pub sbat: Option<String>,
    /// None: do not sign (only `nekos.efi`).
    pub keys_dir: Option<PathBuf>,
    pub out_dir: PathBuf,
}

/// What [`make_uki`] wrote.
#[derive(Clone, Debug)]
pub struct MakeUkiOutput {
    pub unsigned: PathBuf,
    pub signed: Option<PathBuf>,
    pub manifest: PathBuf,
    pub manifest_json: serde_json::Value,
}

/// The `packaging/make-uki` pipeline: builds `nekos.efi`, signs it with the db key of
/// `keys_dir` into `nekos.signed.efi`, and writes `nekos.uki.json` with both hashes. All
/// outputs are written to a temporary file and renamed into place. No key material is
/// written anywhere (the manifest names the signer's certificate by its SHA-256).
pub fn make_uki(o: &MakeUkiOptions) -> Result<MakeUkiOutput> {
    let signer = match &o.keys_dir {
        Some(dir) => Some(crate::keys::load_db_signer(dir).with_context(|| {
            format!(
                "loading the db key from {} (create one with `cargo nekos genkey secure-boot`)",
                dir.display()
            )
        })?),
        None => None,
    };
    make_uki_with(o, signer.as_ref().map(|s| s as &dyn Signer))
}

/// [`make_uki`] with the signer given (e.g. a key on a PKCS#11 token); `o.keys_dir` is not
/// looked at. `None`: only the unsigned image.
pub fn make_uki_with(o: &MakeUkiOptions, signer: Option<&dyn Signer>) -> Result<MakeUkiOutput> {
    let linux = std::fs::read(&o.kernel)
        .with_context(|| format!("reading kernel {}", o.kernel.display()))?;
    let initrd = std::fs::read(&o.initramfs)
        .with_context(|| format!("reading initramfs {}", o.initramfs.display()))?;
    if initrd.is_empty() {
        bail!("initramfs {} is empty", o.initramfs.display());
    }
    let osrel = match &o.os_release {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading os-release {}", p.display()))?,
        None => NEKOS_OS_RELEASE.to_string(),
    };
    PeFile::parse(&linux).map_err(|e| {
        anyhow!(
            "kernel {} is not a PE image (need a bzImage or arm64 Image with the EFI stub): {e}",
            o.kernel.display()
        )
    })?;
    let kernel_what = format!("kernel {}", o.kernel.display());
    let arch = match o.arch {
        Some(a) => {
            check_pe_arch(&linux, &kernel_what, a)?;
            a
        }
        None => arch_of(&linux, &kernel_what)?,
    };
    let (stub_bytes, stub_origin) = match &o.stub {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("reading stub {}", p.display()))?;
            check_pe_arch(
                &bytes,
                &format!("stub {} (for kernel {})", p.display(), o.kernel.display()),
                arch,
            )?;
            (
                bytes,
                serde_json::json!({ "file": p.file_name().map(|f| f.to_string_lossy().into_owned()) }),
            )
        }
        None => {
            let pin = stub::stub_pin_for(arch)?;
            (
                stub::load_pinned_stub_for(arch)?,
                serde_json::json!({
                    "package": pin.package,
                    "version": pin.version,
                    "deb_sha256": pin.deb_sha256,
                    "arch": pin.arch.as_deref().unwrap_or(arch.debian_arch()),
                }),
            )
        }
    };
    let uname = match &o.uname {
        Some(u) => u.clone(),
        None => kernel_release(&linux).with_context(|| format!("kernel {}", o.kernel.display()))?,
    };
    let uki = build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux: &linux,
        initrd: &initrd,
        cmdline: &o.cmdline,
        osrel: &osrel,
        uname: Some(&uname),
        sbat: o.sbat.as_deref(),
    })
    .with_context(|| {
        format!(
            "building the UKI from kernel {} and initramfs {}",
            o.kernel.display(),
            o.initramfs.display()
        )
    })?;
    let signed = match signer {
        Some(s) => Some(authenticode::sign(&uki, s)?),
        None => None,
    };

    std::fs::create_dir_all(&o.out_dir)
        .with_context(|| format!("creating {}", o.out_dir.display()))?;
    let info = inspect(&uki)?;
    let mut manifest = serde_json::json!({
        "format": "nekos-uki/1",
        "arch": arch.name(),
        "stub": { "sha256": sha256_hex(&stub_bytes), "origin": stub_origin },
        "inputs": {
            "kernel_sha256": sha256_hex(&linux),
            "initramfs_sha256": sha256_hex(&initrd),
            "cmdline": collapse_cmdline(&o.cmdline),
            "uname": uname,
            "os_release_sha256": sha256_hex(osrel.as_bytes()),
        },
        "unsigned": {
            "file": UNSIGNED_NAME,
            "size": uki.len(),
            "sha256": info.sha256,
            "authenticode_sha256": info.authenticode_sha256,
            "pcr11_sha256": info.pcr11_sha256,
        },
        "sections": info.sections,
    });
    let unsigned_path = o.out_dir.join(UNSIGNED_NAME);
    write_atomic(&unsigned_path, &uki, 0o644)?;
    let mut signed_path = None;
    if let (Some(signed), Some(signer)) = (&signed, signer) {
        let p = o.out_dir.join(SIGNED_NAME);
        write_atomic(&p, signed, 0o644)?;
        manifest["signed"] = serde_json::json!({
            "file": SIGNED_NAME,
            "size": signed.len(),
            "sha256": sha256_hex(signed),
            "authenticode_sha256": hex::encode(authenticode::authenticode_sha256(signed)?),
            "signer_certificate_sha256": sha256_hex(signer.certificate_der()),
        });
        signed_path = Some(p);
    } else {
        // A stale signed image from an earlier run would not match the new manifest.
        let stale = o.out_dir.join(SIGNED_NAME);
        if stale.exists() {
            std::fs::remove_file(&stale)?;
        }
    }
    let manifest_path = o.out_dir.join(MANIFEST_NAME);
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    write_atomic(&manifest_path, text.as_bytes(), 0o644)?;
    Ok(MakeUkiOutput {
        unsigned: unsigned_path,
        signed: signed_path,
        manifest: manifest_path,
        manifest_json: manifest,
    })
}

/// Signs a PE file into another (atomic write).
pub fn sign_file(input: &Path, output: &Path, signer: &dyn Signer) -> Result<()> {
    let data = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let signed = authenticode::sign(&data, signer)
        .with_context(|| format!("signing {}", input.display()))?;
    write_atomic(output, &signed, 0o644)
}
