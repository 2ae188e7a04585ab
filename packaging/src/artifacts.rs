//! The build manifest (`target/nekos/manifest.json`): every artifact with its sha256, size
//! and inputs. The QEMU runner and the tests find their inputs through it.

use crate::kernel::KernelArtifact;
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
    pub firmware: Option<crate::firmware::FirmwareArtifact>,
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
    pub stboot: Option<crate::stboot::StbootArtifact>,
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

pub fn out_dir(root: &Path) -> PathBuf {
    crate::userland::target_dir(root).join("nekos")
}

pub fn manifest_path(root: &Path) -> PathBuf {
    std::env::var_os("NEKOS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| out_dir(root).join("manifest.json"))
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

    pub fn firmware(&self) -> Result<&crate::firmware::FirmwareArtifact> {
        self.firmware
            .as_ref()
            .context("the manifest has no firmware (run `cargo nekos build`)")
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
}
