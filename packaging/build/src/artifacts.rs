//! The build manifest (`target/nekos/manifest.json`): every artifact with its sha256, size
//! and inputs. The QEMU runner and the tests find their inputs through it.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FileArtifact {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Input name → sha256 (or a parameter value).
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Manifest {
    pub schema: u32,
    /// The guest architecture of everything in this manifest (manifests written before
    /// arm64 existed have no field: x86_64).
    #[serde(default)]
    pub arch: crate::arch::Arch,
    pub source_date_epoch: u64,
    pub kernel: Option<KernelArtifact>,
    /// Binary name → static musl binary.
    pub userland: BTreeMap<String, FileArtifact>,
    /// Variant ("production", "test") → archive.
    pub initramfs: BTreeMap<String, FileArtifact>,
    /// Photo name → sha256, as packed.
    pub cats: BTreeMap<String, String>,
    /// Variant → the UKI made from the kernel and that initramfs by `make-uki`.
    #[serde(default)]
    pub uki: BTreeMap<String, UkiArtifact>,
    /// The project's OVMF builds (cached by input hash, firmware/).
    #[serde(default)]
    pub firmware: Option<FirmwareArtifact>,
    /// Reproducible ESP disk images holding a UKI as EFI/BOOT/BOOTX64.EFI, by name
    /// ("<variant>-signed", "<variant>-unsigned", attack images…).
    #[serde(default)]
    pub esp: BTreeMap<String, FileArtifact>,
    /// Variable stores by file name: `<preset>.json` (QEMU uefi-vars, what the project's
    /// firmware boots with) and `<preset>.fd` (raw 4 MiB OVMF_VARS for SMM firmware).
    #[serde(default)]
    pub varstores: BTreeMap<String, FileArtifact>,
    /// The network boot (stboot.rs): stage-1 initramfs and UKI, the OS package.
    #[serde(default)]
    pub stboot: Option<StbootArtifact>,
    /// The arm64 firmware (ArmVirtQemu, firmware_aarch64.rs): in the arm64 manifest only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_aarch64: Option<ArmFirmwareArtifact>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct UkiArtifact {
    pub cmdline: String,
    pub unsigned: FileArtifact,
    pub signed: FileArtifact,
    /// The Authenticode SHA-256 (the same for both: the signature is outside the hash).
    pub authenticode_sha256: String,
    /// What make-uki recorded (sections, stub, signer certificate hash).
    pub make_uki: serde_json::Value,
    /// Hash of everything the UKIs are made from; unchanged inputs skip make-uki.
    #[serde(default)]
    pub input_hash: String,
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<root>/target`).
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

pub fn out_dir(root: &Path) -> PathBuf {
    target_dir(root).join("nekos")
}

pub fn manifest_path(root: &Path) -> PathBuf {
    std::env::var_os("NEKOS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir(root).join("manifest.json"))
}

/// Where `arch`'s outputs go: `target/nekos` for x86_64, `target/nekos/aarch64` for arm64.
pub fn arch_out_dir(root: &Path, arch: crate::arch::Arch) -> PathBuf {
    arch.out_dir(&out_dir(root))
}

/// The manifest of `arch`'s build: [`manifest_path`] for x86_64 (so `NEKOS_MANIFEST` keeps
/// meaning the x86 build), `<arch_out_dir>/manifest.json` otherwise (`NEKOS_MANIFEST_AARCH64`
/// overrides it, as `NEKOS_MANIFEST` does for x86_64).
pub fn manifest_path_for(root: &Path, arch: crate::arch::Arch) -> PathBuf {
    match arch {
        crate::arch::Arch::X86_64 => manifest_path(root),
        crate::arch::Arch::Aarch64 => std::env::var_os("NEKOS_MANIFEST_AARCH64")
            .map(PathBuf::from)
            .unwrap_or_else(|| arch_out_dir(root, arch).join("manifest.json")),
    }
}

/// `kernel-config/linux-source.lock`: the source this project was built and tested with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SourceLock {
    pub package: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KernelArtifact {
    /// The boot image: bzImage on x86_64, Image on arm64 (the field keeps its first name).
    pub bzimage: PathBuf,
    pub config: PathBuf,
    pub sha256: String,
    pub source: SourceLock,
    /// Where the tarball of `source` was read from: the installed package or the cache copy.
    #[serde(default)]
    pub source_origin: String,
    pub gcc: String,
    pub binutils: String,
    pub input_hash: String,
    pub inputs: BTreeMap<String, String>,
    /// Wall time of the build that produced the cache entry.
    pub clean_build_seconds: f64,
    pub cached: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FirmwareArtifact {
    /// OvmfPkgX64 + QEMU_PV_VARS + Secure Boot + TPM2.
    pub pv_vars: PathBuf,
    pub pv_vars_sha256: String,
    /// AmdSevX64.
    pub amdsev: PathBuf,
    pub amdsev_sha256: String,
    pub input_hash: String,
    pub inputs: BTreeMap<String, String>,
    /// sha256 of every module and firmware volume of both platforms, e.g.
    /// `OvmfX64/X64/IScsiDxe.efi`, `AmdSev/FV/OVMF.fd`: two builds compare module by module.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// Wall time of the build that produced this cache entry.
    pub clean_build_seconds: f64,
    #[serde(default)]
    pub cached: bool,
}

/// The arm64 firmware: ArmVirtQemu (AARCH64) with Secure Boot and TPM2, two 64 MiB flash
/// images for QEMU's `virt` machine (firmware_aarch64.rs, firmware/build-armvirt.sh).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ArmFirmwareArtifact {
    /// `QEMU_EFI.fd`: the code, pflash0 (`-drive if=pflash,unit=0,readonly=on`).
    pub code: PathBuf,
    pub code_sha256: String,
    /// `QEMU_VARS.fd`: the build's blank variable store, pflash1; the project's stores
    /// (`target/nekos/aarch64/varstores/<preset>.fd`) have the same layout.
    pub vars: PathBuf,
    pub vars_sha256: String,
    pub input_hash: String,
    pub inputs: BTreeMap<String, String>,
    /// sha256 of every module and firmware volume, e.g. `ArmVirtQemu-AARCH64/FV/QEMU_EFI.fd`.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// Wall time of the build that produced this cache entry.
    pub clean_build_seconds: f64,
    #[serde(default)]
    pub cached: bool,
}

/// What `cargo nekos build` records about stboot (stboot.rs).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StbootArtifact {
    /// Where the keys are (certificates are read from here by the tests; the private keys
    /// only by the package signing and the attack packages).
    pub keys_dir: PathBuf,
    pub threshold: usize,
    pub descriptor_url: String,
    /// The production init (the stage-1 image's `/init`, which starts stage 1).
    pub init: FileArtifact,
    /// Stage 1, `nekos-stboot` (the image's `/bin/nekos-stboot`).
    pub stage1: FileArtifact,
    pub initramfs: FileArtifact,
    pub uki: UkiArtifact,
    /// `nekos.zip` and `nekos.json`.
    pub ospkg_zip: FileArtifact,
    pub ospkg_descriptor: FileArtifact,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the build manifest {} (run `cargo nekos build`)",
                path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not a NekOS build manifest", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        crate::util::write_atomic(path, &bytes)
    }

    pub fn kernel_path(&self) -> Result<&Path> {
        self.kernel
            .as_ref()
            .map(|k| k.bzimage.as_path())
            .context("the manifest has no kernel (run `cargo nekos build`)")
    }

    pub fn uki_path(&self, variant: &str, signed: bool) -> Result<&Path> {
        let uki = self.uki.get(variant).with_context(|| {
            format!("the manifest has no {variant} UKI (run `cargo nekos build`)")
        })?;
        Ok(if signed {
            uki.signed.path.as_path()
        } else {
            uki.unsigned.path.as_path()
        })
    }

    pub fn firmware(&self) -> Result<&FirmwareArtifact> {
        self.firmware
            .as_ref()
            .context("the manifest has no firmware (run `cargo nekos build`)")
    }

    pub fn firmware_aarch64(&self) -> Result<&ArmFirmwareArtifact> {
        self.firmware_aarch64
            .as_ref()
            .context("the manifest has no arm64 firmware (run `cargo nekos build` for aarch64)")
    }

    pub fn varstore_path(&self, file: &str) -> Result<&Path> {
        self.varstores
            .get(file)
            .map(|a| a.path.as_path())
            .with_context(|| {
                format!("the manifest has no variable store {file} (run `cargo nekos build`)")
            })
    }

    pub fn initramfs_path(&self, variant: &str) -> Result<&Path> {
        self.initramfs
            .get(variant)
            .map(|a| a.path.as_path())
            .with_context(|| {
                format!("the manifest has no {variant} initramfs (run `cargo nekos build`)")
            })
    }

    pub fn stboot(&self) -> Result<&StbootArtifact> {
        self.stboot
            .as_ref()
            .context("the manifest has no stboot artifacts (run `cargo nekos build`)")
    }
}
