//! `cargo nekos build`: kernel (cached by input hash), userland (cargo, incremental),
//! initramfs per variant (rewritten only when its bytes change) and the manifest.

use crate::artifacts::{FileArtifact, Manifest, manifest_path, out_dir};
use crate::initramfs::{self, Compression, Variant};
use crate::kernel::{self, KernelOptions};
use crate::util::{self, sha256_hex};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The parts of a build, each on or off. A deployment asks for exactly what it boots
/// ([`crate::deployments::Deployment::parts`]): `kernel,initramfs` never touches the
/// firmware, whose first build takes minutes. `cargo nekos build` and the tests ask for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub kernel: bool,
    /// The userland and the initramfs of every requested variant.
    pub initramfs: bool,
    /// The project's OVMF (cached by input hash; ~10 min on 2 cores when built).
    pub firmware: bool,
    /// The UKIs (unsigned and signed) of every requested variant and their ESP disk images.
    pub uki: bool,
    /// The network boot: stage-1 initramfs and UKI, the OS package (implies `stage1_init`).
    pub stboot: bool,
    /// The stage-1 init binary (`nekos-init --features stboot`, with rustls and ring: minutes
    /// of compiling on a first run), built with the userland. Separate from `stboot` because
    /// it needs no kernel: `build --no-kernel` and `repro initramfs` still build and compare it.
    pub stage1_init: bool,
    /// The UEFI variable stores (blank, custom, microsoft).
    pub varstores: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        kernel: true,
        initramfs: true,
        firmware: true,
        uki: true,
        stboot: true,
        stage1_init: true,
        varstores: true,
    };
    pub const NONE: Parts = Parts {
        kernel: false,
        initramfs: false,
        firmware: false,
        uki: false,
        stboot: false,
        stage1_init: false,
        varstores: false,
    };

    /// What two deployments need together (a bench run of several).
    pub fn union(self, other: Parts) -> Parts {
        Parts {
            kernel: self.kernel || other.kernel,
            initramfs: self.initramfs || other.initramfs,
            firmware: self.firmware || other.firmware,
            uki: self.uki || other.uki,
            stboot: self.stboot || other.stboot,
            stage1_init: self.stage1_init || other.stage1_init,
            varstores: self.varstores || other.varstores,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub locked: bool,
    pub variants: Vec<Variant>,
    pub compression: Compression,
    /// Photo directory; `cats/` of the workspace by default.
    pub cats: Option<PathBuf>,
    pub parts: Parts,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            locked: false,
            variants: vec![Variant::Production],
            compression: Compression::None,
            cats: None,
            parts: Parts::ALL,
        }
    }
}

pub fn build(root: &Path, opts: &BuildOptions) -> Result<Manifest> {
    let parts = opts.parts;
    crate::host::ensure_tools(root)?;
    let mut manifest = Manifest::load(&manifest_path(root)).unwrap_or_default();
    manifest.schema = 1;
    manifest.source_date_epoch = util::source_date_epoch(root);
    if parts.kernel {
        let k = kernel::ensure(
            root,
            &KernelOptions {
                locked: opts.locked,
                jobs: None,
            },
        )?;
        eprintln!(
            "nekos: kernel {} ({}, sha256 {})",
            if k.cached { "up to date" } else { "built" },
            k.bzimage.display(),
            &k.sha256[..16]
        );
        manifest.kernel = Some(k);
    }
    if parts.firmware {
        let fw = crate::firmware::ensure(root, &crate::firmware::FirmwareOptions::default())?;
        eprintln!(
            "nekos: firmware {} ({}, sha256 {})",
            if fw.cached { "up to date" } else { "built" },
            fw.pv_vars.display(),
            &fw.pv_vars_sha256[..16]
        );
        manifest.firmware = Some(fw);
    }
    if parts.initramfs {
        build_initramfs(root, opts, &mut manifest)?;
    }
    // What is made from the kernel and an initramfs is rebuilt with them, or dropped from
    // the manifest: an entry left from an earlier build would describe other bytes.
    let remade = parts.kernel || parts.initramfs;
    if parts.uki {
        let kernel = manifest
            .kernel
            .clone()
            .context("a UKI needs the kernel in the same build")?;
        for variant in &opts.variants {
            let initramfs = manifest.initramfs_path(variant.name())?.to_path_buf();
            let previous = manifest.uki.get(variant.name());
            let out = out_dir(root).join(variant.name()).join("uki");
            let uki = crate::ukis::make_uki(
                root,
                &kernel.bzimage,
                &initramfs,
                &out,
                crate::ukis::UKI_CMDLINE,
                variant.name(),
                previous,
            )?;
            manifest.uki.insert(variant.name().to_string(), uki);
            let signed = manifest.uki_path(variant.name(), true)?.to_path_buf();
            let esp_name = format!("{}-signed", variant.name());
            let art = write_esp(root, &signed, &esp_name, manifest.source_date_epoch)?;
            manifest.esp.insert(esp_name, art);
        }
    } else if remade {
        for variant in &opts.variants {
            manifest.uki.remove(variant.name());
            manifest.esp.remove(&format!("{}-signed", variant.name()));
        }
    }
    // The network boot: stage-1 UKI and the OS package made of the production kernel and
    // initramfs.
    if parts.stboot {
        let previous = manifest.stboot.clone();
        let art = crate::stboot::build(root, &manifest, previous.as_ref())?;
        manifest.stboot = Some(art);
    } else if remade {
        manifest.stboot = None;
    }
    if parts.varstores {
        write_varstores(root, &mut manifest)?;
    }
    manifest.save(&manifest_path(root))?;
    Ok(manifest)
}

/// The userland (cargo) and the initramfs of every requested variant.
fn build_initramfs(root: &Path, opts: &BuildOptions, manifest: &mut Manifest) -> Result<()> {
    let with_tests = opts.variants.contains(&Variant::Test);
    let programs = crate::userland::build(
        root,
        opts.parts.stage1_init || opts.parts.stboot,
        with_tests,
    )?;
    manifest.userland.clear();
    // What every binary is a function of: the toolchain, the locked dependency graph, the
    // flags. (The sources themselves are cargo's business; the binary hash covers them.)
    let mut userland_inputs = BTreeMap::new();
    userland_inputs.insert(
        "rustc".to_string(),
        util::tool_version("rustc").unwrap_or_default(),
    );
    userland_inputs.insert(
        "Cargo.lock.sha256".to_string(),
        util::sha256_file(&root.join("Cargo.lock"))?,
    );
    userland_inputs.insert("target".to_string(), crate::host::MUSL_TARGET.to_string());
    userland_inputs.insert("profile".to_string(), "release".to_string());
    userland_inputs.insert(
        "rustflags".to_string(),
        crate::userland::reproducible_rustflags(root),
    );
    for (name, path) in &programs {
        let bytes = fs::read(path)?;
        manifest.userland.insert(
            name.clone(),
            FileArtifact {
                path: path.clone(),
                sha256: sha256_hex(&bytes),
                size: bytes.len() as u64,
                inputs: userland_inputs.clone(),
            },
        );
    }
    let cats_dir = opts.cats.clone().unwrap_or_else(|| root.join("cats"));
    let photos = initramfs::collect_photos(&cats_dir)?;
    manifest.cats = photos
        .iter()
        .map(|(p, _)| (p.name.clone(), p.sha256.clone()))
        .collect();
    let os_release = fs::read(root.join("packaging/data/os-release"))?;
    for variant in &opts.variants {
        let art = write_initramfs(
            root,
            &programs,
            &photos,
            &os_release,
            *variant,
            opts.compression,
            manifest.source_date_epoch,
        )?;
        manifest.initramfs.insert(variant.name().to_string(), art);
    }
    Ok(())
}

/// The three variable stores as QEMU uefi-vars JSON and raw OVMF_VARS, the custom one from
/// the keys that sign the UKIs (target/nekos/varstores/).
fn write_varstores(root: &Path, manifest: &mut Manifest) -> Result<()> {
    let dir = out_dir(root).join("varstores");
    fs::create_dir_all(&dir)?;
    let keys = crate::ukis::signing_keys_dir()?;
    for name in ["blank", "custom", "microsoft"] {
        let store = crate::measurements::preset_store(name, &keys)?;
        let json = dir.join(format!("{name}.json"));
        let raw = dir.join(format!("{name}.fd"));
        crate::varstore::write_outputs(&store, Some(&json), Some(&raw), None)?;
        for path in [json, raw] {
            let bytes = fs::read(&path)?;
            let mut inputs = BTreeMap::new();
            inputs.insert("preset".to_string(), name.to_string());
            if name == "custom" {
                inputs.insert(
                    "PK.crt".to_string(),
                    util::sha256_file(&keys.join("PK.crt"))?,
                );
                inputs.insert(
                    "KEK.crt".to_string(),
                    util::sha256_file(&keys.join("KEK.crt"))?,
                );
                inputs.insert(
                    "db.crt".to_string(),
                    util::sha256_file(&keys.join("db.crt"))?,
                );
            }
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            manifest.varstores.insert(
                file,
                FileArtifact {
                    path: path.clone(),
                    sha256: sha256_hex(&bytes),
                    size: bytes.len() as u64,
                    inputs,
                },
            );
        }
    }
    Ok(())
}

/// The seed of every ESP image's GUIDs and volume id: images differ only by content.
pub const ESP_SEED: &str = "nekos";

/// A GPT disk with the UKI as the ESP's EFI/BOOT/BOOTX64.EFI (target/nekos/esp/<name>.img).
pub fn write_esp(
    root: &Path,
    uki: &Path,
    name: &str,
    source_date_epoch: u64,
) -> Result<FileArtifact> {
    let bytes = esp_image_bytes(
        &fs::read(uki).with_context(|| format!("cannot read {}", uki.display()))?,
        source_date_epoch,
    )?;
    let path = out_dir(root).join("esp").join(format!("{name}.img"));
    if fs::read(&path).map(|old| old != bytes).unwrap_or(true) {
        util::write_atomic(&path, &bytes)?;
    }
    let mut inputs = BTreeMap::new();
    inputs.insert("EFI/BOOT/BOOTX64.EFI".to_string(), util::sha256_file(uki)?);
    inputs.insert("seed".to_string(), ESP_SEED.to_string());
    inputs.insert("timestamp".to_string(), source_date_epoch.to_string());
    Ok(FileArtifact {
        path,
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
        inputs,
    })
}

/// The ESP disk image bytes for one UKI: a function of the UKI bytes and the timestamp only.
pub fn esp_image_bytes(uki: &[u8], source_date_epoch: u64) -> Result<Vec<u8>> {
    let files = [crate::esp::EspFile {
        path: "EFI/BOOT/BOOTX64.EFI".into(),
        bytes: uki.to_vec(),
    }];
    crate::esp::build_esp_image(
        &files,
        &crate::esp::EspOptions::from_seed(ESP_SEED, source_date_epoch),
    )
}

fn write_initramfs(
    root: &Path,
    programs: &[(String, PathBuf)],
    photos: &[(initramfs::Photo, Vec<u8>)],
    os_release: &[u8],
    variant: Variant,
    compression: Compression,
    epoch: u64,
) -> Result<FileArtifact> {
    let archive = initramfs::archive(&initramfs::Inputs {
        programs,
        photos,
        os_release,
        variant,
    })?;
    let mut inputs = BTreeMap::new();
    for (path, entry) in archive.paths() {
        if let crate::cpio::Node::File(bytes) = &entry.node {
            inputs.insert(format!("/{path}"), sha256_hex(bytes));
        }
    }
    inputs.insert(
        "compression".into(),
        format!("{compression:?}").to_lowercase(),
    );
    inputs.insert("source_date_epoch".into(), epoch.to_string());
    let bytes = compression.compress(archive.to_newc(epoch)?)?;
    let path = out_dir(root)
        .join(variant.name())
        .join(format!("initramfs.{}", compression.extension()));
    let sha = sha256_hex(&bytes);
    // Rewrite only when the bytes change, so file times stay meaningful for other tools.
    let unchanged = util::sha256_file(&path).map(|s| s == sha).unwrap_or(false);
    if !unchanged {
        util::write_atomic(&path, &bytes)
            .with_context(|| format!("writing the {} initramfs", variant.name()))?;
    }
    eprintln!(
        "nekos: initramfs {} {} ({} KiB, {} entries, sha256 {})",
        variant.name(),
        if unchanged { "up to date" } else { "written" },
        bytes.len() / 1024,
        archive.len(),
        &sha[..16]
    );
    Ok(FileArtifact {
        path,
        sha256: sha,
        size: bytes.len() as u64,
        inputs,
    })
}

/// Copies the tracked files of the workspace (as `git ls-files` lists them, with their
/// working-tree content) to `dest`: a clean tree for reproducibility checks.
pub fn copy_workspace(root: &Path, dest: &Path) -> Result<()> {
    let list = util::run_capture(std::process::Command::new("git").current_dir(root).args([
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ]))?;
    for rel in list.split('\0').filter(|s| !s.is_empty()) {
        let from = root.join(rel);
        if !from.is_file() {
            continue;
        }
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&from, &to).with_context(|| format!("copying {rel}"))?;
    }
    Ok(())
}
