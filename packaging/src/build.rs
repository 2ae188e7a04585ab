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

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub locked: bool,
    pub variants: Vec<Variant>,
    pub compression: Compression,
    /// Photo directory; `cats/` of the workspace by default.
    pub cats: Option<PathBuf>,
    pub kernel: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            locked: false,
            variants: vec![Variant::Production],
            compression: Compression::None,
            cats: None,
            kernel: true,
        }
    }
}

pub fn build(root: &Path, opts: &BuildOptions) -> Result<Manifest> {
    crate::host::ensure_tools(root)?;
    let mut manifest = Manifest::load(&manifest_path(root)).unwrap_or_default();
    manifest.schema = 1;
    manifest.source_date_epoch = util::source_date_epoch(root);
    if opts.kernel {
        let k = kernel::ensure(root, &KernelOptions { locked: opts.locked, jobs: None })?;
        eprintln!(
            "nekos: kernel {} ({}, sha256 {})",
            if k.cached { "up to date" } else { "built" },
            k.bzimage.display(),
            &k.sha256[..16]
        );
        manifest.kernel = Some(k);
    }
    let with_tests = opts.variants.contains(&Variant::Test);
    let programs = crate::userland::build(root, with_tests)?;
    manifest.userland.clear();
    for (name, path) in &programs {
        let bytes = fs::read(path)?;
        manifest.userland.insert(
            name.clone(),
            FileArtifact { path: path.clone(), sha256: sha256_hex(&bytes), size: bytes.len() as u64, inputs: BTreeMap::new() },
        );
    }
    let cats_dir = opts.cats.clone().unwrap_or_else(|| root.join("cats"));
    let photos = initramfs::collect_photos(&cats_dir)?;
    manifest.cats = photos.iter().map(|(p, _)| (p.name.clone(), p.sha256.clone())).collect();
    let os_release = fs::read(root.join("packaging/data/os-release"))?;
    for variant in &opts.variants {
        let art = write_initramfs(root, &programs, &photos, &os_release, *variant, opts.compression, manifest.source_date_epoch)?;
        manifest.initramfs.insert(variant.name().to_string(), art);
    }
    manifest.save(&manifest_path(root))?;
    Ok(manifest)
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
    let archive = initramfs::archive(&initramfs::Inputs { programs, photos, os_release, variant })?;
    let mut inputs = BTreeMap::new();
    for (path, entry) in archive.paths() {
        if let crate::cpio::Node::File(bytes) = &entry.node {
            inputs.insert(format!("/{path}"), sha256_hex(bytes));
        }
    }
    inputs.insert("compression".into(), format!("{compression:?}").to_lowercase());
    inputs.insert("source_date_epoch".into(), epoch.to_string());
    let bytes = compression.compress(archive.to_newc(epoch)?)?;
    let path = out_dir(root).join(variant.name()).join(format!("initramfs.{}", compression.extension()));
    let sha = sha256_hex(&bytes);
    // Rewrite only when the bytes change, so file times stay meaningful for other tools.
    let unchanged = util::sha256_file(&path).map(|s| s == sha).unwrap_or(false);
    if !unchanged {
        util::write_atomic(&path, &bytes).with_context(|| format!("writing the {} initramfs", variant.name()))?;
    }
    eprintln!(
        "nekos: initramfs {} {} ({} KiB, {} entries, sha256 {})",
        variant.name(),
        if unchanged { "up to date" } else { "written" },
        bytes.len() / 1024,
        archive.len(),
        &sha[..16]
    );
    Ok(FileArtifact { path, sha256: sha, size: bytes.len() as u64, inputs })
}

/// Copies the tracked files of the workspace (as `git ls-files` lists them, with their
/// working-tree content) to `dest`: a clean tree for reproducibility checks.
pub fn copy_workspace(root: &Path, dest: &Path) -> Result<()> {
    let list = util::run_capture(std::process::Command::new("git").current_dir(root).args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"]))?;
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
