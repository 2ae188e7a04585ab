//! `cargo nekos build`: the steps of [`crate::steps`] in order, and the manifest. The
//! architecture is a parameter of the same steps (`BuildOptions::arch`): x86_64 writes to
//! `target/nekos/`, aarch64 to `target/nekos/aarch64/` with its own manifest.

use crate::arch::Arch;
use crate::artifacts::{FileArtifact, Manifest, arch_out_dir, manifest_path_for, out_dir};
use crate::initramfs::{self, Compression, Variant};
use crate::kernel::{self, KernelOptions};
use crate::steps::Freshness;
use crate::util::{self, sha256_hex};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use crate::steps::{Parts, Step, steps};

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub locked: bool,
    pub variants: Vec<Variant>,
    pub compression: Compression,
    /// Photo directory; `cats/` of the workspace by default.
    pub cats: Option<PathBuf>,
    pub parts: Parts,
    /// The guest architecture (`--arch`); x86_64 by default.
    pub arch: Arch,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            locked: false,
            variants: vec![Variant::Production],
            compression: Compression::None,
            cats: None,
            parts: Parts::ALL,
            arch: Arch::X86_64,
        }
    }
}

/// Runs the [`steps`] of `opts.parts` in order, each up to date or made (see
/// [`crate::steps`] for the one freshness rule), and saves the manifest. What a verifier
/// should expect from the result (`measurements.json`) is the `measure` verb, which
/// `cargo nekos test` runs after this.
pub fn build(root: &Path, opts: &BuildOptions) -> Result<Manifest> {
    let arch = opts.arch;
    let (parts, not_yet) = opts.parts.for_arch(arch);
    if !not_yet.is_empty() {
        eprintln!(
            "nekos: {arch}: not built for this architecture: {}",
            not_yet.join(", ")
        );
    }
    crate::host::ensure_tools(root)?;
    let out = arch_out_dir(root, arch);
    let manifest_file = manifest_path_for(root, arch);
    let mut manifest = Manifest::load(&manifest_file)
        .ok()
        .filter(|m| m.arch == arch)
        .unwrap_or_default();
    manifest.schema = 1;
    manifest.arch = arch;
    manifest.source_date_epoch = util::source_date_epoch(root);
    let plan = steps(parts, &opts.variants);
    let mut userland: Option<Userland> = None;
    for (n, step) in plan.iter().enumerate() {
        let status = match *step {
            Step::Kernel => {
                let k = kernel::ensure(
                    root,
                    &KernelOptions {
                        locked: opts.locked,
                        jobs: None,
                        arch,
                    },
                )?;
                let s = format!("{} (sha256 {})", k.bzimage.display(), &k.sha256[..16]);
                let cached = k.cached;
                manifest.kernel = Some(k);
                status(cached, s)
            }
            Step::Firmware => match arch {
                Arch::X86_64 => {
                    let fw = crate::firmware::ensure(
                        root,
                        &crate::firmware::FirmwareOptions::default(),
                    )?;
                    let s = format!(
                        "{} (sha256 {})",
                        fw.pv_vars.display(),
                        &fw.pv_vars_sha256[..16]
                    );
                    let cached = fw.cached;
                    manifest.firmware = Some(fw);
                    status(cached, s)
                }
                Arch::Aarch64 => {
                    let fw = crate::firmware_aarch64::ensure(
                        root,
                        &crate::firmware_aarch64::ArmFirmwareOptions::default(),
                    )?;
                    let s = format!("{} (sha256 {})", fw.code.display(), &fw.code_sha256[..16]);
                    let cached = fw.cached;
                    manifest.firmware_aarch64 = Some(fw);
                    status(cached, s)
                }
            },
            Step::Userland => {
                let u = build_userland(root, opts, &mut manifest)?;
                let s = format!("{} programs, {} photos", u.programs.len(), u.photos.len());
                userland = Some(u);
                s
            }
            Step::Initramfs(variant) => {
                let u = userland
                    .as_ref()
                    .context("the initramfs step runs after the userland step")?;
                let (art, fresh) = write_initramfs(
                    &out,
                    u,
                    variant,
                    opts.compression,
                    manifest.source_date_epoch,
                    manifest.initramfs.get(variant.name()),
                )?;
                let s = format!("{} KiB, sha256 {}", art.size / 1024, &art.sha256[..16]);
                manifest.initramfs.insert(variant.name().to_string(), art);
                status(fresh, s)
            }
            Step::Uki(variant) => {
                let kernel = manifest
                    .kernel
                    .clone()
                    .context("a UKI needs the kernel in the same build")?;
                let initramfs = manifest.initramfs_path(variant.name())?.to_path_buf();
                let uki_out = out.join(variant.name()).join("uki");
                // Step records are per workspace: the arm64 ones get their own names.
                let record = format!(
                    "{}{}",
                    arch.deployment_prefix().replace(',', "-"),
                    step.name()
                );
                let (uki, fresh) = crate::ukis::uki_step_for(
                    arch,
                    root,
                    &record,
                    &kernel.bzimage,
                    &initramfs,
                    &uki_out,
                    manifest.uki.get(variant.name()),
                )?;
                let s = format!("signed sha256 {}", &uki.signed.sha256[..16]);
                manifest.uki.insert(variant.name().to_string(), uki);
                status(fresh, s)
            }
            Step::Esp(variant) => {
                let signed = manifest.uki_path(variant.name(), true)?.to_path_buf();
                let esp_name = format!("{}-signed", variant.name());
                let (art, fresh) =
                    write_esp(root, arch, &signed, &esp_name, manifest.source_date_epoch)?;
                let s = format!("{} (sha256 {})", art.path.display(), &art.sha256[..16]);
                manifest.esp.insert(esp_name, art);
                status(fresh, s)
            }
            Step::Stboot => {
                let previous = manifest.stboot.clone();
                let (art, fresh) = crate::stboot::build(root, &manifest, previous.as_ref())?;
                let s = format!("OS package sha256 {}", &art.ospkg_zip.sha256[..16]);
                manifest.stboot = Some(art);
                status(fresh, s)
            }
            Step::Varstores => {
                let fresh = match arch {
                    Arch::X86_64 => write_varstores(root, &mut manifest)?,
                    Arch::Aarch64 => write_arm_varstores(root, &mut manifest)?,
                };
                status(fresh, "blank, custom, microsoft".into())
            }
        };
        eprintln!(
            "nekos: step {}/{} {}: {status}",
            n + 1,
            plan.len(),
            step.name()
        );
    }
    // What is made from the kernel and an initramfs is rebuilt with them, or dropped from
    // the manifest: an entry left from an earlier build would describe other bytes.
    if parts.kernel || parts.initramfs {
        if !parts.uki {
            for variant in &opts.variants {
                manifest.uki.remove(variant.name());
                manifest.esp.remove(&format!("{}-signed", variant.name()));
            }
        }
        if !parts.stboot {
            manifest.stboot = None;
        }
    }
    manifest.save(&manifest_file)?;
    Ok(manifest)
}

fn status(up_to_date: bool, what: String) -> String {
    if up_to_date {
        format!("up to date, {what}")
    } else {
        format!("made, {what}")
    }
}

/// What the userland step hands the initramfs steps.
pub struct Userland {
    pub programs: Vec<(String, PathBuf)>,
    pub photos: Vec<(initramfs::Photo, Vec<u8>)>,
    pub os_release: Vec<u8>,
}

/// The userland (cargo) and the photos, checked.
fn build_userland(root: &Path, opts: &BuildOptions, manifest: &mut Manifest) -> Result<Userland> {
    let with_tests = opts.variants.contains(&Variant::Test);
    // Stage 1 only where the plan has it: `Parts::for_arch` leaves it out on arm64.
    let (parts, _) = opts.parts.for_arch(opts.arch);
    let programs = crate::userland::build(
        root,
        opts.arch,
        parts.stage1_init || parts.stboot,
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
    userland_inputs.insert("target".to_string(), opts.arch.rust_target().to_string());
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
    Ok(Userland {
        programs,
        photos,
        os_release,
    })
}

/// The three variable stores as QEMU uefi-vars JSON and raw OVMF_VARS, the custom one from
/// the keys that sign the UKIs (target/nekos/varstores/). Returns whether they were up to date.
fn write_varstores(root: &Path, manifest: &mut Manifest) -> Result<bool> {
    let dir = out_dir(root).join("varstores");
    let keys = crate::ukis::signing_keys_dir()?;
    let mut cert_inputs = BTreeMap::new();
    for cert in ["PK.crt", "KEK.crt", "db.crt"] {
        cert_inputs.insert(cert.to_string(), util::sha256_file(&keys.join(cert))?);
    }
    let mut step_inputs = cert_inputs.clone();
    step_inputs.insert(
        "certs.lock".to_string(),
        util::sha256_file(&root.join(crate::pins::CERTS_LOCK))?,
    );
    let fresh = Freshness::new(root, "varstores", &step_inputs);
    let up_to_date = fresh.up_to_date();
    let mut written = Vec::new();
    for name in ["blank", "custom", "microsoft"] {
        let json = dir.join(format!("{name}.json"));
        let raw = dir.join(format!("{name}.fd"));
        if !up_to_date {
            let store = crate::measurements::preset_store(name, &keys)?;
            crate::varstore::write_outputs(&store, Some(&json), Some(&raw), None)?;
        }
        for path in [json, raw] {
            let bytes = fs::read(&path)?;
            let mut inputs = BTreeMap::new();
            inputs.insert("preset".to_string(), name.to_string());
            if name == "custom" {
                inputs.extend(cert_inputs.clone());
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
            written.push(path);
        }
    }
    if !up_to_date {
        fresh.record(written.iter().map(PathBuf::as_path))?;
    }
    Ok(up_to_date)
}

/// The seed of every ESP image's GUIDs and volume id: images differ only by content.
pub const ESP_SEED: &str = "nekos";

/// A GPT disk with the UKI as the ESP's EFI/BOOT/BOOTX64.EFI (target/nekos/esp/<name>.img),
/// and whether it was up to date.
pub fn write_esp(
    root: &Path,
    arch: Arch,
    uki: &Path,
    name: &str,
    source_date_epoch: u64,
) -> Result<(FileArtifact, bool)> {
    let path = arch_out_dir(root, arch)
        .join("esp")
        .join(format!("{name}.img"));
    let mut inputs = BTreeMap::new();
    inputs.insert(
        format!("EFI/BOOT/{}", arch.efi_boot_file()),
        util::sha256_file(uki)?,
    );
    inputs.insert("seed".to_string(), ESP_SEED.to_string());
    inputs.insert("timestamp".to_string(), source_date_epoch.to_string());
    let record = format!("{}esp-{name}", arch.deployment_prefix().replace(',', "-"));
    let fresh = Freshness::new(root, &record, &inputs);
    let up_to_date = fresh.up_to_date();
    if !up_to_date {
        let bytes = esp_image_bytes_for(
            &fs::read(uki).with_context(|| format!("cannot read {}", uki.display()))?,
            arch,
            source_date_epoch,
        )?;
        util::write_atomic(&path, &bytes)?;
        fresh.record([path.as_path()])?;
    }
    let size = fs::metadata(&path)?.len();
    Ok((
        FileArtifact {
            sha256: util::sha256_file(&path)?,
            path,
            size,
            inputs,
        },
        up_to_date,
    ))
}

/// The ESP disk image bytes for one UKI: a function of the UKI bytes and the timestamp only.
pub fn esp_image_bytes(uki: &[u8], source_date_epoch: u64) -> Result<Vec<u8>> {
    esp_image_bytes_for(uki, Arch::X86_64, source_date_epoch)
}

/// The ESP disk image holding `uki` at `arch`'s removable-media path
/// (`EFI/BOOT/BOOTX64.EFI`, `EFI/BOOT/BOOTAA64.EFI`): what the firmware's boot manager looks for.
pub fn esp_image_bytes_for(uki: &[u8], arch: Arch, source_date_epoch: u64) -> Result<Vec<u8>> {
    let files = [crate::esp::EspFile {
        path: format!("EFI/BOOT/{}", arch.efi_boot_file()),
        bytes: uki.to_vec(),
    }];
    crate::esp::build_esp_image(
        &files,
        &crate::esp::EspOptions::from_seed(ESP_SEED, source_date_epoch),
    )
}

/// The arm64 raw variable stores (ArmVirtQemu's second flash bank, 64 MiB each), under the
/// same freshness rule as the x86 ones: remade only when the certificates change.
fn write_arm_varstores(root: &Path, manifest: &mut Manifest) -> Result<bool> {
    let keys = crate::ukis::signing_keys_dir()?;
    let mut inputs = BTreeMap::new();
    for cert in ["PK.crt", "KEK.crt", "db.crt"] {
        inputs.insert(cert.to_string(), util::sha256_file(&keys.join(cert))?);
    }
    inputs.insert(
        "certs.lock".to_string(),
        util::sha256_file(&root.join(crate::pins::CERTS_LOCK))?,
    );
    inputs.insert(
        "layout".to_string(),
        crate::firmware_aarch64::LAYOUT.name.to_string(),
    );
    let fresh = Freshness::new(root, "aarch64-varstores", &inputs);
    let dir = crate::firmware_aarch64::varstores_dir(root);
    let up_to_date = fresh.up_to_date();
    let stores = if up_to_date {
        let mut out = BTreeMap::new();
        for name in ["blank", "custom", "microsoft"] {
            let path = dir.join(format!("{name}.fd"));
            let mut inputs = BTreeMap::new();
            inputs.insert("preset".to_string(), name.to_string());
            out.insert(
                format!("{name}.fd"),
                FileArtifact {
                    sha256: util::sha256_file(&path)?,
                    size: fs::metadata(&path)?.len(),
                    path,
                    inputs,
                },
            );
        }
        out
    } else {
        let out = crate::firmware_aarch64::write_varstores(&dir, &keys)?;
        fresh.record(out.values().map(|a| a.path.as_path()))?;
        out
    };
    manifest.varstores = stores;
    Ok(up_to_date)
}

/// One variant's initramfs, and whether it was up to date. The archive is laid out (cheap,
/// in memory) to know its inputs; compressing and writing happen only when they changed.
fn write_initramfs(
    out: &Path,
    u: &Userland,
    variant: Variant,
    compression: Compression,
    epoch: u64,
    previous: Option<&FileArtifact>,
) -> Result<(FileArtifact, bool)> {
    let archive = initramfs::archive(&initramfs::Inputs {
        programs: &u.programs,
        photos: &u.photos,
        os_release: &u.os_release,
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
    let path = out
        .join(variant.name())
        .join(format!("initramfs.{}", compression.extension()));
    let fresh = Freshness::in_dir(out, &format!("initramfs-{}", variant.name()), &inputs);
    if fresh.up_to_date()
        && let Some(prev) = previous.filter(|p| p.path == path && p.inputs == inputs)
    {
        return Ok((prev.clone(), true));
    }
    let bytes = compression.compress(archive.to_newc(epoch)?)?;
    util::write_atomic(&path, &bytes)
        .with_context(|| format!("writing the {} initramfs", variant.name()))?;
    fresh.record([path.as_path()])?;
    eprintln!(
        "nekos: initramfs {} written ({} KiB, {} entries)",
        variant.name(),
        bytes.len() / 1024,
        archive.len(),
    );
    Ok((
        FileArtifact {
            path,
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            inputs,
        },
        false,
    ))
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
