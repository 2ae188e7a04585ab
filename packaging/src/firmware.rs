//! The NekOS firmware: OVMF built by the project from pinned edk2 source (Debian trixie's
//! edk2 2025.02 tarballs + the nine upstream commits that add QEMU's paravirtual UEFI
//! variables), cached by input hash like the kernel. See firmware/README.md.
//!
//! Two images come out of one build:
//! - `OVMF.pv-vars.fd` — OvmfPkgX64 with QEMU_PV_VARS, Secure Boot and TPM2, no SMM: the
//!   firmware of every `fw,…` deployment. It keeps no variables itself; QEMU's
//!   `-device uefi-vars-x64,jsonfile=…` does, and without that device it hangs silently,
//!   so the launcher (qemu.rs) adds the device whenever it uses this image.
//! - `OVMF.amdsev.fd` — OvmfPkg/AmdSev/AmdSevX64: the SEV-SNP measured direct-boot build the
//!   launch digests are computed for.
//!
//! This file verifies inputs, computes the cache key and stages exactly the verified files;
//! `firmware/build-edk2.sh` does the edk2 mechanics (patch, BaseTools, `build`).

use crate::cache::{Entry, InputHash, cache_root};
use crate::progress::Progress;
use crate::util::{self, sha256_file};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bump when the recipe (script, flags, staging) changes in a way the inputs do not show.
const RECIPE_VERSION: &str = "1";

/// edk2 writes its build directory into every module (GenFw's debug directory entry holds the
/// absolute path of the intermediate .dll, and its size follows the path length), so the
/// tree is always built at this one path — as Nix builds in `/build`. Builds take a lock on
/// it; two builds on one machine run one after the other.
pub const BUILD_TREE: &str = "/var/tmp/nekos-edk2-build";

pub const PV_VARS_FD: &str = "OVMF.pv-vars.fd";
pub const AMDSEV_FD: &str = "OVMF.amdsev.fd";

/// The QEMU_PV_VARS patches are looked up here (first hit) when neither `--edk2-patches` nor
/// `NEKOS_EDK2_PATCHES` names a directory; relative entries are relative to the workspace.
const PATCH_DIR_CANDIDATES: &[&str] = &["../shared/vendor/edk2-qemu-pv-vars", "/work/shared/vendor/edk2-qemu-pv-vars"];

#[derive(Deserialize, Debug, Clone)]
pub struct Lock {
    pub orig: PinnedFile,
    pub debian: DebianTarball,
    #[serde(rename = "patch")]
    pub patches: Vec<PinnedPatch>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct PinnedFile {
    pub file: String,
    pub sha256: String,
}

#[derive(Deserialize, Debug, Clone)]
pub struct DebianTarball {
    pub file: String,
    pub sha256: String,
    pub version: String,
    pub source_date_epoch: u64,
}

#[derive(Deserialize, Debug, Clone)]
pub struct PinnedPatch {
    pub file: String,
    pub commit: String,
    pub sha256: String,
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
    /// Wall time of the build that produced this cache entry.
    pub clean_build_seconds: f64,
    #[serde(default)]
    pub cached: bool,
}

#[derive(Default, Clone, Debug)]
pub struct FirmwareOptions {
    /// Directory holding the nine QEMU_PV_VARS patches.
    pub patches: Option<PathBuf>,
    /// edk2 build threads (default: all cores).
    pub jobs: Option<usize>,
}

pub fn lock_path(root: &Path) -> PathBuf {
    root.join("firmware/edk2.lock")
}

pub fn read_lock(root: &Path) -> Result<Lock> {
    let path = lock_path(root);
    let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let lock: Lock = toml::from_str(&text).with_context(|| format!("{}: not a valid firmware lock", path.display()))?;
    if lock.patches.is_empty() {
        bail!("{}: no [[patch]] entries", path.display());
    }
    Ok(lock)
}

/// Checks `path` against a pinned sha256; the error names the file, both hashes and what
/// to do.
pub fn verify_pinned(path: &Path, expected: &str, what: &str) -> Result<()> {
    let got = sha256_file(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if got != expected {
        bail!(
            "{}: sha256 {got}, but firmware/edk2.lock pins {expected} for {what}; \
             refusing to build from an input that differs from the pinned one",
            path.display()
        );
    }
    Ok(())
}

/// The patch directory: explicit option, then NEKOS_EDK2_PATCHES, then the candidates.
pub fn patch_dir(root: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("NEKOS_EDK2_PATCHES") {
        return Ok(PathBuf::from(dir));
    }
    for candidate in PATCH_DIR_CANDIDATES {
        let dir = root.join(candidate);
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    bail!(
        "no QEMU_PV_VARS patch directory: pass --edk2-patches DIR or set NEKOS_EDK2_PATCHES \
         (looked in {}); the patches are `git format-patch -1` of the edk2 commits listed in \
         firmware/edk2.lock",
        PATCH_DIR_CANDIDATES.join(", ")
    )
}

/// Every pinned patch, present and with its pinned sha256, in lock order.
pub fn verified_patches(lock: &Lock, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in &lock.patches {
        let path = dir.join(&p.file);
        if !path.is_file() {
            bail!(
                "{}: missing (edk2 commit {}; regenerate with `git format-patch -1 {}` in an edk2 clone)",
                path.display(),
                p.commit,
                p.commit
            );
        }
        verify_pinned(&path, &p.sha256, &format!("patch {} (edk2 commit {})", p.file, p.commit))?;
        out.push(path);
    }
    Ok(out)
}

/// The two Debian source tarballs, verified, from the content-addressed source cache
/// (`~/.cache/nekos/sources/<sha256>/<file>`); downloaded with apt-get when missing.
pub fn source_tarballs(lock: &Lock) -> Result<(PathBuf, PathBuf)> {
    let wanted = [(&lock.orig.file, &lock.orig.sha256), (&lock.debian.file, &lock.debian.sha256)];
    let cached = |file: &str, sha: &str| cache_root().join("sources").join(sha).join(file);
    if wanted.iter().any(|(f, s)| !cached(f, s).is_file()) {
        download_sources(lock)?;
    }
    let orig = cached(&lock.orig.file, &lock.orig.sha256);
    let debian = cached(&lock.debian.file, &lock.debian.sha256);
    verify_pinned(&orig, &lock.orig.sha256, "the edk2 orig tarball")?;
    verify_pinned(&debian, &lock.debian.sha256, "the Debian edk2 patch series")?;
    Ok((orig, debian))
}

fn download_sources(lock: &Lock) -> Result<()> {
    let work = cache_root().join("tmp").join(format!("edk2-sources.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let spec = format!("edk2={}", lock.debian.version);
    eprintln!("nekos: downloading the edk2 {} source tarballs (apt-get source, trixie)", lock.debian.version);
    // apt-get exits non-zero here because this mirror has no .dsc (404) even though both
    // tarballs download; what counts is that the files are there with the pinned hashes.
    let out = Command::new("apt-get")
        .args(["source", "--download-only", "-q", "-t", "trixie", &spec])
        .current_dir(&work)
        .stdin(Stdio::null())
        .output()
        .context("cannot run apt-get (Debian with the trixie deb-src line from packaging/host-setup.sh)")?;
    for (file, sha, what) in [
        (&lock.orig.file, &lock.orig.sha256, "edk2 orig tarball"),
        (&lock.debian.file, &lock.debian.sha256, "Debian edk2 patch series"),
    ] {
        let got = work.join(file);
        if !got.is_file() {
            let _ = fs::remove_dir_all(&work);
            bail!(
                "apt-get source {spec} did not produce {file} (the {what}); is the trixie deb-src line \
                 from packaging/host-setup.sh installed? apt said:\n{}",
                util::tail_lines(&String::from_utf8_lossy(&out.stderr), 10)
            );
        }
        verify_pinned(&got, sha, what)?;
        let dest = cache_root().join("sources").join(sha);
        fs::create_dir_all(&dest)?;
        util::copy_atomic(&got, &dest.join(file))?;
    }
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

fn tool_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// The first output line that names a version (iasl prints a banner line first).
fn version_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
            text.lines().find(|l| l.to_ascii_lowercase().contains("version")).map(|l| l.trim().to_string())
        })
        .unwrap_or_default()
}

/// Everything the firmware bytes are a function of.
pub fn inputs(root: &Path, lock: &Lock) -> Result<InputHash> {
    let script = root.join("firmware/build-edk2.sh");
    let mut hash = InputHash::default();
    hash.add("recipe", RECIPE_VERSION)
        .add("build-edk2.sh", &sha256_file(&script)?)
        .add("orig", &lock.orig.sha256)
        .add("debian", &lock.debian.sha256)
        .add("source_date_epoch", &lock.debian.source_date_epoch.to_string())
        .add("build_tree", BUILD_TREE)
        .add("gcc", &tool_line("gcc", &["--version"]))
        .add("binutils", &tool_line("ld", &["--version"]))
        .add("nasm", &tool_line("nasm", &["-v"]))
        .add("iasl", &version_line("iasl", &["-v"]))
        .add("python3", &tool_line("python3", &["--version"]));
    for p in &lock.patches {
        hash.add(&format!("patch:{}", p.file), &p.sha256);
    }
    Ok(hash)
}

/// The firmware, from the cache when its inputs are unchanged, else built.
pub fn ensure(root: &Path, opts: &FirmwareOptions) -> Result<FirmwareArtifact> {
    let lock = read_lock(root)?;
    let hash = inputs(root, &lock)?;
    let key = hash.hex();
    let entry = Entry::new("firmware", &key);
    if entry.is_complete()
        && let Ok(text) = fs::read_to_string(entry.dir.join("firmware.json"))
        && let Ok(mut art) = serde_json::from_str::<FirmwareArtifact>(&text)
    {
        if sha256_file(&art.pv_vars).ok().as_deref() == Some(art.pv_vars_sha256.as_str())
            && sha256_file(&art.amdsev).ok().as_deref() == Some(art.amdsev_sha256.as_str())
        {
            art.cached = true;
            return Ok(art);
        }
        eprintln!("nekos: cached firmware in {} is damaged, rebuilding", entry.dir.display());
    }
    let patches = verified_patches(&lock, &patch_dir(root, opts.patches.as_deref())?)?;
    let (orig, debian) = source_tarballs(&lock)?;
    let scratch = entry.scratch()?;
    let secs = match build_into(root, &lock, &orig, &debian, &patches, &scratch, opts.jobs) {
        Ok(secs) => secs,
        Err(e) => {
            let _ = fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    let art = FirmwareArtifact {
        pv_vars: entry.dir.join(PV_VARS_FD),
        pv_vars_sha256: sha256_file(&scratch.join(PV_VARS_FD))?,
        amdsev: entry.dir.join(AMDSEV_FD),
        amdsev_sha256: sha256_file(&scratch.join(AMDSEV_FD))?,
        input_hash: key,
        inputs: hash.inputs.iter().cloned().collect(),
        clean_build_seconds: secs,
        cached: false,
    };
    fs::write(scratch.join("firmware.json"), serde_json::to_vec_pretty(&art)?)?;
    entry.commit(&scratch)?;
    Ok(art)
}

/// One clean build of both images into `out` (OVMF.pv-vars.fd, OVMF.amdsev.fd, build.log);
/// returns the wall time in seconds.
pub fn build_into(
    root: &Path,
    lock: &Lock,
    orig: &Path,
    debian: &Path,
    patches: &[PathBuf],
    out: &Path,
    jobs: Option<usize>,
) -> Result<f64> {
    fs::create_dir_all(out)?;
    // Stage exactly the verified patches, so nothing else in the user's directory is applied.
    let staged = out.join("patches");
    fs::create_dir_all(&staged)?;
    for p in patches {
        let name = p.file_name().ok_or_else(|| anyhow!("{}: not a file", p.display()))?;
        fs::copy(p, staged.join(name))?;
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let tree_lock_path = PathBuf::from(format!("{BUILD_TREE}.lock"));
    let tree_lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&tree_lock_path)
        .with_context(|| format!("cannot open {}", tree_lock_path.display()))?;
    if tree_lock.try_lock().is_err() {
        eprintln!("nekos: another firmware build holds {}; waiting for it", tree_lock_path.display());
        tree_lock.lock().with_context(|| format!("cannot lock {}", tree_lock_path.display()))?;
    }
    let log_path = out.join("build.log");
    let log = fs::File::create(&log_path)?;
    let progress = Progress::start("building OVMF (pv-vars) and AmdSevX64 from edk2 2025.02", Some(&log_path));
    let status = Command::new("bash")
        .arg(root.join("firmware/build-edk2.sh"))
        .env("NEKOS_EDK2_ORIG", orig)
        .env("NEKOS_EDK2_DEBIAN", debian)
        .env("NEKOS_EDK2_PATCHES", &staged)
        .env("NEKOS_EDK2_TREE", BUILD_TREE)
        .env("NEKOS_EDK2_OUT", out)
        .env("NEKOS_EDK2_JOBS", jobs.to_string())
        .env("NEKOS_EDK2_PLATFORMS", "ovmf-pv-vars amdsev")
        .env("SOURCE_DATE_EPOCH", lock.debian.source_date_epoch.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot run bash firmware/build-edk2.sh")?;
    let elapsed = progress.finish(if status.success() { "done" } else { "FAILED" });
    // The tree is ~2 GB of intermediates: keep only the build logs, next to the outputs.
    for name in ["build-ovmf.log", "build-amdsev.log", "basetools.log"] {
        let _ = fs::copy(Path::new(BUILD_TREE).join(name), out.join(name));
    }
    let _ = fs::remove_dir_all(BUILD_TREE);
    drop(tree_lock);
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let kept = cache_root().join("logs").join("firmware-build.log");
        let _ = fs::create_dir_all(cache_root().join("logs"));
        let _ = fs::copy(&log_path, &kept);
        bail!("firmware build failed (log: {}):\n{}", kept.display(), util::tail_lines(&text, 30));
    }
    for fd in [PV_VARS_FD, AMDSEV_FD] {
        if !out.join(fd).is_file() {
            bail!("firmware build finished without {}", out.join(fd).display());
        }
    }
    let _ = fs::remove_dir_all(&staged);
    Ok(elapsed.as_secs_f64())
}

/// `cargo nekos repro firmware`: two clean builds whose outputs go to two different
/// directories, from inputs staged from two different directories; the images must agree.
pub fn repro(root: &Path, opts: &FirmwareOptions) -> Result<(String, String)> {
    let lock = read_lock(root)?;
    let patches = verified_patches(&lock, &patch_dir(root, opts.patches.as_deref())?)?;
    let (orig, debian) = source_tarballs(&lock)?;
    let base = cache_root().join("tmp").join(format!("repro-firmware-{}", std::process::id()));
    let mut results = Vec::new();
    for (i, sub) in ["first/out", "second-build/elsewhere/firmware-out"].iter().enumerate() {
        let out = base.join(sub);
        // Inputs copied to a per-build directory: the build must not depend on where they are.
        let inputs_dir = base.join(format!("inputs-{i}{}", "x".repeat(i * 7)));
        fs::create_dir_all(&inputs_dir)?;
        let o = inputs_dir.join(&lock.orig.file);
        let d = inputs_dir.join(&lock.debian.file);
        fs::copy(&orig, &o)?;
        fs::copy(&debian, &d)?;
        let secs = build_into(root, &lock, &o, &d, &patches, &out, opts.jobs)?;
        let pv = sha256_file(&out.join(PV_VARS_FD))?;
        let sev = sha256_file(&out.join(AMDSEV_FD))?;
        eprintln!("nekos: firmware built into {} in {secs:.0}s: {PV_VARS_FD} {pv}, {AMDSEV_FD} {sev}", out.display());
        results.push((pv, sev));
    }
    let _ = fs::remove_dir_all(&base);
    if results[0] != results[1] {
        bail!("firmware not reproducible: {:?} != {:?}", results[0], results[1]);
    }
    Ok(results[0].clone())
}
