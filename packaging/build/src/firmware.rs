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
//! This file obtains and verifies inputs, computes the cache key and stages exactly the
//! verified files; `firmware/build-edk2.sh` does the edk2 mechanics (patch, BaseTools, `build`).
//!
//! The nine QEMU_PV_VARS patches come from, in this order: a patch directory given with
//! `--edk2-patches DIR` or `NEKOS_EDK2_PATCHES` (offline, mirrors, CI); else the
//! content-addressed source cache (`<cache>/sources/<sha256>/<file>`); else a download of each
//! commit by its id from the URL template in `edk2.lock` (`NEKOS_EDK2_PATCH_URL` overrides it),
//! checked against the lock before it is used or enters the cache.

pub use crate::artifacts::FirmwareArtifact;
use crate::cache::{Entry, InputHash, cache_root};
use crate::download;
use crate::progress::Progress;
use crate::util::{self, sha256_file, sha256_hex};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Bump when the recipe (script, flags, staging) changes in a way the inputs do not show.
/// 2: built in a scratch directory under the cache with GenFw's debug entry made
/// path-independent (build-edk2.sh), patches staged without their signature trailer.
const RECIPE_VERSION: &str = "2";

pub const PV_VARS_FD: &str = "OVMF.pv-vars.fd";
pub const AMDSEV_FD: &str = "OVMF.amdsev.fd";

/// A directory holding the nine patch files (offline builds, mirrors, CI).
pub const PATCH_DIR_ENV: &str = "NEKOS_EDK2_PATCHES";
/// Replaces the lock's download URL template (`{commit}` is the full commit id).
pub const PATCH_URL_ENV: &str = "NEKOS_EDK2_PATCH_URL";

/// A patch is a few kB to ~100 kB; anything near this is not one of ours.
const PATCH_MAX_BYTES: u64 = 4 << 20;
const PATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The tool versions the images are a function of (they are also in the cache key); a second
/// machine must match them to reproduce the recorded hashes (`repro --against`).
pub const TOOL_INPUTS: &[&str] = &["gcc", "binutils", "nasm", "iasl", "python3"];

#[derive(Deserialize, Debug, Clone)]
pub struct Lock {
    pub orig: PinnedFile,
    pub debian: DebianTarball,
    pub patch_source: PatchSource,
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
pub struct PatchSource {
    /// Download URL of one commit in `git format-patch` form; `{commit}` is replaced.
    pub url: String,
}

#[derive(Deserialize, Debug, Clone)]
pub struct PinnedPatch {
    pub file: String,
    /// The full 40-hex commit id.
    pub commit: String,
    /// The file as `git format-patch -1 <commit>` writes it, signature trailer included.
    pub sha256: String,
    /// The same file without the signature trailer (`-- \n<git version>\n`): what is applied.
    pub sha256_body: String,
}

#[derive(Default, Clone, Debug)]
pub struct FirmwareOptions {
    /// Directory holding the nine QEMU_PV_VARS patches (else NEKOS_EDK2_PATCHES, else the
    /// cache, else a download).
    pub patches: Option<PathBuf>,
    /// edk2 build threads (default: all cores).
    pub jobs: Option<usize>,
}

pub fn lock_path(root: &Path) -> PathBuf {
    root.join("firmware/edk2.lock")
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn read_lock(root: &Path) -> Result<Lock> {
    let path = lock_path(root);
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_lock(&text).with_context(|| format!("{}: not a valid firmware lock", path.display()))
}

/// Parses and checks a lock: every field present and well-formed, so a damaged lock is
/// refused here, naming the field, rather than at download or build time.
pub fn parse_lock(text: &str) -> Result<Lock> {
    let lock: Lock = toml::from_str(text)?;
    if lock.patches.is_empty() {
        bail!("no [[patch]] entries");
    }
    if !lock.patch_source.url.contains("{commit}") {
        bail!(
            "[patch_source] url = {:?}: expected a template containing {{commit}}",
            lock.patch_source.url
        );
    }
    for (what, sha) in [
        ("[orig] sha256", &lock.orig.sha256),
        ("[debian] sha256", &lock.debian.sha256),
    ] {
        if !is_hex(sha, 64) {
            bail!("{what} = {sha:?}: expected 64 lowercase hex digits");
        }
    }
    for (i, p) in lock.patches.iter().enumerate() {
        let n = i + 1;
        if p.file.is_empty()
            || p.file.contains('/')
            || p.file.starts_with('.')
            || !p.file.ends_with(".patch")
        {
            bail!(
                "[[patch]] #{n}: file = {:?}: expected a plain *.patch file name",
                p.file
            );
        }
        if !is_hex(&p.commit, 40) {
            bail!(
                "[[patch]] #{n} ({}): commit = {:?}: expected the full 40-hex commit id",
                p.file,
                p.commit
            );
        }
        for (field, sha) in [("sha256", &p.sha256), ("sha256_body", &p.sha256_body)] {
            if !is_hex(sha, 64) {
                bail!(
                    "[[patch]] #{n} ({}): {field} = {sha:?}: expected 64 lowercase hex digits",
                    p.file
                );
            }
        }
    }
    Ok(lock)
}

/// Checks `path` against a pinned sha256; the error names the file, both hashes and what
/// to do.
pub fn verify_pinned(path: &Path, expected: &str, what: &str) -> Result<()> {
    let got =
        sha256_file(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if got != expected {
        bail!(
            "{}: sha256 {got}, but firmware/edk2.lock pins {expected} for {what}; \
             refusing to build from an input that differs from the pinned one",
            path.display()
        );
    }
    Ok(())
}

/// `git format-patch` ends every patch with a signature: a line `-- ` and the git version
/// (`-- \n2.47.3\n\n`). It is not part of the change (GNU patch ignores it) but differs between
/// git versions, so GitHub's `.patch` of a commit may differ from a local `format-patch` only
/// there. Returns the patch without it (unchanged if it has none).
pub fn strip_signature(bytes: &[u8]) -> &[u8] {
    const MARK: &[u8] = b"\n-- \n";
    let Some(at) = bytes.windows(MARK.len()).rposition(|w| w == MARK) else {
        return bytes;
    };
    let tail = &bytes[at + MARK.len()..];
    let mut version = tail;
    while let [rest @ .., b'\n'] = version {
        version = rest;
    }
    // Exactly one non-empty line after the mark: a signature. Anything else stays.
    if version.is_empty() || version.contains(&b'\n') {
        return bytes;
    }
    &bytes[..at + 1]
}

/// Checks one patch's bytes against its pins: either the whole file (`sha256`, the
/// `git format-patch` form) or the file without its signature trailer (`sha256_body`) must
/// match. Both pin exactly the same change; accepting the second lets any git version's
/// signature pass, and nothing else. Returns the body (what is applied and cached).
pub fn check_patch<'a>(p: &PinnedPatch, bytes: &'a [u8]) -> std::result::Result<&'a [u8], String> {
    let body = strip_signature(bytes);
    let (full, body_sha) = (sha256_hex(bytes), sha256_hex(body));
    if full == p.sha256 || body_sha == p.sha256_body {
        return Ok(body);
    }
    Err(format!(
        "sha256 {full} (without the signature trailer: {body_sha}), but firmware/edk2.lock pins \
         {} (without the trailer: {}) for {} (edk2 commit {})",
        p.sha256, p.sha256_body, p.file, p.commit
    ))
}

fn offline_hint(commit: &str) -> String {
    format!(
        "To build offline or from a mirror, put the nine files of firmware/edk2.lock in a directory \
         (`git format-patch -1 {commit}` etc. in an edk2 clone) and run `cargo nekos firmware \
         --edk2-patches DIR` (or set {PATCH_DIR_ENV}=DIR); {PATCH_URL_ENV} sets another download \
         URL ({{commit}} is replaced)"
    )
}

/// The patch directory given by the user: the option, else NEKOS_EDK2_PATCHES. No other
/// place is searched: without one, the patches come from the cache or a download.
pub fn patch_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(PATCH_DIR_ENV).map(PathBuf::from))
}

/// Every pinned patch in `dir`, present and matching its pins, in lock order.
pub fn verified_patches(lock: &Lock, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in &lock.patches {
        let path = dir.join(&p.file);
        if !path.is_file() {
            bail!(
                "{}: missing (edk2 commit {}; regenerate with `git format-patch -1 {}` in an edk2 clone, \
                 or build without a patch directory to download it)",
                path.display(),
                p.commit,
                p.commit
            );
        }
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if let Err(e) = check_patch(p, &bytes) {
            bail!(
                "{}: {e}; refusing to build from a patch that differs from the pinned one",
                path.display()
            );
        }
        out.push(path);
    }
    Ok(out)
}

/// Where patches are cached and downloaded from.
pub struct PatchFetch {
    /// The content-addressed source cache: `<sources>/<sha256_body>/<file>`.
    pub sources: PathBuf,
    /// Download URL template, `{commit}` replaced by the full commit id.
    pub url_template: String,
    /// Extra trusted CA (PEM) for the download.
    pub extra_ca_pem: Option<Vec<u8>>,
}

impl PatchFetch {
    /// The user's cache, the lock's URL (or NEKOS_EDK2_PATCH_URL), NEKOS_DOWNLOAD_CA.
    pub fn from_env(lock: &Lock) -> Result<PatchFetch> {
        let url_template = match std::env::var(PATCH_URL_ENV) {
            Ok(url) if !url.is_empty() => {
                if !url.contains("{commit}") {
                    bail!("{PATCH_URL_ENV}={url:?}: expected a URL template containing {{commit}}");
                }
                url
            }
            _ => lock.patch_source.url.clone(),
        };
        Ok(PatchFetch {
            sources: cache_root().join("sources"),
            url_template,
            extra_ca_pem: download::extra_ca_from_env()?,
        })
    }

    pub fn cached_path(&self, p: &PinnedPatch) -> PathBuf {
        self.sources.join(&p.sha256_body).join(&p.file)
    }

    /// Every pinned patch, from the cache or downloaded, in lock order.
    pub fn patches(&self, lock: &Lock) -> Result<Vec<PathBuf>> {
        let mut client = None;
        lock.patches
            .iter()
            .map(|p| self.patch(p, &mut client))
            .collect()
    }

    /// One patch: the cached copy if it still has its pinned hash, else downloaded, checked,
    /// and only then written to the cache (temporary file, re-checked, renamed).
    pub fn patch(&self, p: &PinnedPatch, client: &mut Option<download::Client>) -> Result<PathBuf> {
        let dest = self.cached_path(p);
        if dest.is_file() {
            if sha256_file(&dest)? == p.sha256_body {
                return Ok(dest);
            }
            eprintln!(
                "nekos: cached {} differs from its pin; downloading it again",
                dest.display()
            );
            fs::remove_file(&dest).with_context(|| format!("cannot remove {}", dest.display()))?;
        }
        let url = self.url_template.replace("{commit}", &p.commit);
        eprintln!(
            "nekos: downloading {} (edk2 commit {}) from {url}",
            p.file, p.commit
        );
        let client = match client {
            Some(c) => c,
            None => client.insert(download::Client::new(
                self.extra_ca_pem.as_deref(),
                PATCH_TIMEOUT,
                PATCH_MAX_BYTES,
            )?),
        };
        let bytes = client.get(&url).map_err(|e| {
            anyhow!(
                "cannot download {} (edk2 commit {}) from {url}: {e:#}; nothing was written to {}. {}",
                p.file,
                p.commit,
                self.sources.display(),
                offline_hint(&p.commit)
            )
        })?;
        let body = check_patch(p, &bytes).map_err(|e| {
            anyhow!(
                "{} downloaded from {url}: {e}; refused, nothing was written to {}. Check the URL \
                 ({PATCH_URL_ENV}) or the mirror. {}",
                p.file,
                self.sources.display(),
                offline_hint(&p.commit)
            )
        })?;
        write_verified(&dest, body, &p.sha256_body)?;
        Ok(dest)
    }
}

/// Writes `bytes` to `dest` through a temporary file that is hashed again before the rename:
/// the cache holds either the verified file or nothing (no directory left behind either).
fn write_verified(dest: &Path, bytes: &[u8], sha256: &str) -> Result<()> {
    let dir = dest
        .parent()
        .ok_or_else(|| anyhow!("{}: no parent directory", dest.display()))?;
    let existed = dir.is_dir();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = util::tmp_path_for(dest);
    let result = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        let got = sha256_file(&tmp)?;
        if got != sha256 {
            bail!(
                "{}: sha256 {got} after writing, expected {sha256}",
                tmp.display()
            );
        }
        fs::rename(&tmp, dest)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        if !existed {
            let _ = fs::remove_dir(dir);
        }
        return Err(e.context(format!("cannot write {}", dest.display())));
    }
    Ok(())
}

/// The nine patches, verified, in lock order: from the patch directory if one is given, else
/// from the cache or a download.
pub fn obtain_patches(lock: &Lock, explicit: Option<&Path>) -> Result<Vec<PathBuf>> {
    match patch_dir(explicit) {
        Some(dir) => verified_patches(lock, &dir),
        None => PatchFetch::from_env(lock)?.patches(lock),
    }
}

/// The two Debian source tarballs, verified, from the content-addressed source cache
/// (`~/.cache/nekos/sources/<sha256>/<file>`); downloaded with apt-get when missing.
pub fn source_tarballs(lock: &Lock) -> Result<(PathBuf, PathBuf)> {
    let wanted = [
        (&lock.orig.file, &lock.orig.sha256),
        (&lock.debian.file, &lock.debian.sha256),
    ];
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
    let work = cache_root()
        .join("tmp")
        .join(format!("edk2-sources.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let spec = format!("edk2={}", lock.debian.version);
    eprintln!(
        "nekos: downloading the edk2 {} source tarballs (apt-get source, trixie)",
        lock.debian.version
    );
    // apt-get exits non-zero here because this mirror has no .dsc (404) even though both
    // tarballs download; what counts is that the files are there with the pinned hashes.
    let out = Command::new("apt-get")
        .args(["source", "--download-only", "-q", "-t", "trixie", &spec])
        .current_dir(&work)
        .stdin(Stdio::null())
        .output()
        .context(
            "cannot run apt-get (Debian with the trixie deb-src line from packaging/host-setup.sh)",
        )?;
    for (file, sha, what) in [
        (&lock.orig.file, &lock.orig.sha256, "edk2 orig tarball"),
        (
            &lock.debian.file,
            &lock.debian.sha256,
            "Debian edk2 patch series",
        ),
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

pub fn tool_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The first output line that names a version (iasl prints a banner line first).
pub fn version_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| l.to_ascii_lowercase().contains("version"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_default()
}

/// Everything the firmware bytes are a function of. The build directory is not: the images
/// are the same in any directory (build-edk2.sh).
pub fn inputs(root: &Path, lock: &Lock) -> Result<InputHash> {
    let script = root.join("firmware/build-edk2.sh");
    let mut hash = InputHash::default();
    hash.add("recipe", RECIPE_VERSION)
        .add("build-edk2.sh", &sha256_file(&script)?)
        .add("orig", &lock.orig.sha256)
        .add("debian", &lock.debian.sha256)
        .add(
            "source_date_epoch",
            &lock.debian.source_date_epoch.to_string(),
        )
        .add("gcc", &tool_line("gcc", &["--version"]))
        .add("binutils", &tool_line("ld", &["--version"]))
        .add("nasm", &tool_line("nasm", &["-v"]))
        .add("iasl", &version_line("iasl", &["-v"]))
        .add("python3", &tool_line("python3", &["--version"]));
    for p in &lock.patches {
        // The applied bytes are the body (signature trailer stripped), whatever the source.
        hash.add(&format!("patch:{}", p.file), &p.sha256_body);
    }
    Ok(hash)
}

/// The cache entry of the current inputs, if it is complete and intact.
pub fn cached(root: &Path) -> Result<Option<FirmwareArtifact>> {
    let lock = read_lock(root)?;
    let hash = inputs(root, &lock)?;
    let entry = Entry::new("firmware", &hash.hex());
    if !entry.is_complete() {
        return Ok(None);
    }
    let path = entry.dir.join("firmware.json");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    let Ok(mut art) = serde_json::from_str::<FirmwareArtifact>(&text) else {
        return Ok(None);
    };
    if sha256_file(&art.pv_vars).ok().as_deref() == Some(art.pv_vars_sha256.as_str())
        && sha256_file(&art.amdsev).ok().as_deref() == Some(art.amdsev_sha256.as_str())
    {
        art.cached = true;
        return Ok(Some(art));
    }
    eprintln!(
        "nekos: cached firmware in {} is damaged",
        entry.dir.display()
    );
    Ok(None)
}

/// The firmware, from the cache when its inputs are unchanged, else built.
pub fn ensure(root: &Path, opts: &FirmwareOptions) -> Result<FirmwareArtifact> {
    if let Some(art) = cached(root)? {
        return Ok(art);
    }
    let lock = read_lock(root)?;
    let hash = inputs(root, &lock)?;
    let key = hash.hex();
    let entry = Entry::new("firmware", &key);
    let patches = obtain_patches(&lock, opts.patches.as_deref())?;
    let (orig, debian) = source_tarballs(&lock)?;
    let scratch = entry.scratch()?;
    let built = match build_into(root, &lock, &orig, &debian, &patches, &scratch, opts.jobs) {
        Ok(built) => built,
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
        modules: built.modules,
        clean_build_seconds: built.seconds,
        cached: false,
    };
    fs::write(
        scratch.join("firmware.json"),
        serde_json::to_vec_pretty(&art)?,
    )?;
    entry.commit(&scratch)?;
    Ok(art)
}

/// What one clean build gives besides the images in its output directory.
pub struct Built {
    pub seconds: f64,
    /// `modules.sha256` of the build: module and firmware-volume path → sha256.
    pub modules: BTreeMap<String, String>,
}

/// Reads the `sha256  path` lines build-edk2.sh writes.
pub fn parse_module_hashes(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (sha, path) = line
            .split_once("  ")
            .ok_or_else(|| anyhow!("line {}: expected `sha256  path`: {line:?}", i + 1))?;
        if !is_hex(sha, 64) || path.is_empty() {
            bail!("line {}: expected `sha256  path`: {line:?}", i + 1);
        }
        out.insert(path.to_string(), sha.to_string());
    }
    Ok(out)
}

/// One clean build of both images into `out` (OVMF.pv-vars.fd, OVMF.amdsev.fd, modules.sha256,
/// logs). The edk2 tree is `out/edk2` (any path will do) and is deleted afterwards.
pub fn build_into(
    root: &Path,
    lock: &Lock,
    orig: &Path,
    debian: &Path,
    patches: &[PathBuf],
    out: &Path,
    jobs: Option<usize>,
) -> Result<Built> {
    fs::create_dir_all(out)?;
    // Stage exactly the verified patches, so nothing else in the user's directory is applied,
    // and each without its signature trailer, so the applied bytes do not depend on where the
    // patch came from (a local format-patch or a download).
    let staged = out.join("patches");
    fs::create_dir_all(&staged)?;
    for (p, path) in lock.patches.iter().zip(patches) {
        let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let body = check_patch(p, &bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        fs::write(staged.join(&p.file), body)?;
    }
    // bash reads a script while it runs it: run a private copy, so an edit of the checkout's
    // script during a 10-minute build cannot change what the build executes half-way.
    let script = out.join("build-edk2.sh");
    fs::copy(root.join("firmware/build-edk2.sh"), &script)
        .with_context(|| format!("cannot copy firmware/build-edk2.sh to {}", script.display()))?;
    let tree = out.join("edk2");
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let log_path = out.join("build.log");
    let log = fs::File::create(&log_path)?;
    let progress = Progress::start(
        "building OVMF (pv-vars) and AmdSevX64 from edk2 2025.02",
        Some(&log_path),
    );
    let status = Command::new("bash")
        .arg(&script)
        .env("NEKOS_EDK2_ORIG", orig)
        .env("NEKOS_EDK2_DEBIAN", debian)
        .env("NEKOS_EDK2_PATCHES", &staged)
        .env("NEKOS_EDK2_TREE", &tree)
        .env("NEKOS_EDK2_OUT", out)
        .env("NEKOS_EDK2_JOBS", jobs.to_string())
        .env("NEKOS_EDK2_PLATFORMS", "ovmf-pv-vars amdsev")
        .env(
            "SOURCE_DATE_EPOCH",
            lock.debian.source_date_epoch.to_string(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("cannot run bash firmware/build-edk2.sh")?;
    let elapsed = progress.finish(if status.success() { "done" } else { "FAILED" });
    // The tree is ~2 GB of intermediates: keep only the build logs, next to the outputs.
    for name in ["build-ovmf.log", "build-amdsev.log", "basetools.log"] {
        let _ = fs::copy(tree.join(name), out.join(name));
    }
    let _ = fs::remove_dir_all(&tree);
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let kept = cache_root().join("logs").join("firmware-build.log");
        let _ = fs::create_dir_all(cache_root().join("logs"));
        let _ = fs::copy(&log_path, &kept);
        bail!(
            "firmware build failed (log: {}):\n{}",
            kept.display(),
            util::tail_lines(&text, 30)
        );
    }
    for fd in [PV_VARS_FD, AMDSEV_FD] {
        if !out.join(fd).is_file() {
            bail!("firmware build finished without {}", out.join(fd).display());
        }
    }
    let sums = out.join("modules.sha256");
    let text =
        fs::read_to_string(&sums).with_context(|| format!("cannot read {}", sums.display()))?;
    let modules = parse_module_hashes(&text).with_context(|| format!("{}", sums.display()))?;
    if modules.is_empty() {
        bail!("{}: no module hashes", sums.display());
    }
    let _ = fs::remove_dir_all(&staged);
    let _ = fs::remove_file(&script);
    Ok(Built {
        seconds: elapsed.as_secs_f64(),
        modules,
    })
}

/// The differences between two module maps: `path: a != b`, `path: only in …`.
pub fn module_differences(
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
    a_name: &str,
    b_name: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, sha) in a {
        match b.get(path) {
            Some(other) if other == sha => {}
            Some(other) => out.push(format!("{path}: {a_name} {sha}, {b_name} {other}")),
            None => out.push(format!("{path}: only in {a_name}")),
        }
    }
    for path in b.keys().filter(|p| !a.contains_key(*p)) {
        out.push(format!("{path}: only in {b_name}"));
    }
    out
}

/// `cargo nekos repro firmware`: two clean builds in two directories of different path
/// lengths (the edk2 tree is inside each), from inputs copied to two different directories;
/// images and every module must agree. Returns the two image hashes.
pub fn repro(root: &Path, opts: &FirmwareOptions) -> Result<(String, String)> {
    let lock = read_lock(root)?;
    let patches = obtain_patches(&lock, opts.patches.as_deref())?;
    let (orig, debian) = source_tarballs(&lock)?;
    let base = cache_root()
        .join("tmp")
        .join(format!("repro-firmware-{}", std::process::id()));
    let mut results = Vec::new();
    for (i, sub) in ["first/out", "second-build/elsewhere/firmware-out"]
        .iter()
        .enumerate()
    {
        let out = base.join(sub);
        // Inputs copied to a per-build directory: the build must not depend on where they are.
        let inputs_dir = base.join(format!("inputs-{i}{}", "x".repeat(i * 7)));
        fs::create_dir_all(&inputs_dir)?;
        let o = inputs_dir.join(&lock.orig.file);
        let d = inputs_dir.join(&lock.debian.file);
        fs::copy(&orig, &o)?;
        fs::copy(&debian, &d)?;
        let built = build_into(root, &lock, &o, &d, &patches, &out, opts.jobs)?;
        let pv = sha256_file(&out.join(PV_VARS_FD))?;
        let sev = sha256_file(&out.join(AMDSEV_FD))?;
        eprintln!(
            "nekos: firmware built in {} (edk2 tree {}) in {:.0}s: {PV_VARS_FD} {pv}, {AMDSEV_FD} {sev}, {} modules",
            out.display(),
            out.join("edk2").display(),
            built.seconds,
            built.modules.len()
        );
        results.push((pv, sev, built.modules));
    }
    let diffs = module_differences(&results[0].2, &results[1].2, "first", "second");
    let (a, b) = (&results[0], &results[1]);
    if a.0 != b.0 || a.1 != b.1 || !diffs.is_empty() {
        bail!(
            "firmware not reproducible (builds kept in {}): {PV_VARS_FD} {} vs {}, {AMDSEV_FD} {} vs {}; \
             {} module(s) differ:\n{}",
            base.display(),
            a.0,
            b.0,
            a.1,
            b.1,
            diffs.len(),
            diffs.join("\n")
        );
    }
    let _ = fs::remove_dir_all(&base);
    Ok((a.0.clone(), a.1.clone()))
}

/// `cargo nekos repro --against FILE`: the current cached build against a firmware.json
/// recorded elsewhere. Returns whether images and modules agree, and the report lines (images,
/// modules that differ, inputs that differ — tool versions marked).
pub fn compare(ours: &FirmwareArtifact, theirs: &FirmwareArtifact) -> (bool, Vec<String>) {
    let mut lines = Vec::new();
    let mut same = true;
    for (name, a, b) in [
        (PV_VARS_FD, &ours.pv_vars_sha256, &theirs.pv_vars_sha256),
        (AMDSEV_FD, &ours.amdsev_sha256, &theirs.amdsev_sha256),
    ] {
        if a == b {
            lines.push(format!("{name}: same ({a})"));
        } else {
            same = false;
            lines.push(format!("{name}: DIFFERS: here {a}, recorded {b}"));
        }
    }
    if theirs.modules.is_empty() {
        same = false;
        lines.push("modules: the recorded firmware.json has no per-module hashes (built before they were recorded)".into());
    } else {
        let diffs = module_differences(&ours.modules, &theirs.modules, "here", "recorded");
        if diffs.is_empty() {
            lines.push(format!("modules: all {} the same", ours.modules.len()));
        } else {
            same = false;
            lines.push(format!(
                "modules: {} of {} differ:",
                diffs.len(),
                ours.modules.len().max(theirs.modules.len())
            ));
            lines.extend(diffs.into_iter().map(|d| format!("  {d}")));
        }
    }
    let keys: std::collections::BTreeSet<&String> =
        ours.inputs.keys().chain(theirs.inputs.keys()).collect();
    let mut input_diffs = Vec::new();
    for k in keys {
        let (a, b) = (ours.inputs.get(k), theirs.inputs.get(k));
        if a != b {
            let tool = if TOOL_INPUTS.contains(&k.as_str()) {
                " (tool version)"
            } else {
                ""
            };
            input_diffs.push(format!(
                "  {k}{tool}: here {:?}, recorded {:?}",
                a.map(String::as_str).unwrap_or("-"),
                b.map(String::as_str).unwrap_or("-")
            ));
        }
    }
    if input_diffs.is_empty() {
        lines.push("inputs: all the same".into());
    } else {
        lines.push(format!("inputs: {} differ:", input_diffs.len()));
        lines.extend(input_diffs);
    }
    (same, lines)
}

/// Loads a firmware.json recorded elsewhere and compares the current cached build with it.
pub fn repro_against(root: &Path, file: &Path) -> Result<(bool, Vec<String>)> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let theirs: FirmwareArtifact = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a firmware.json (cargo nekos firmware writes one)",
            file.display()
        )
    })?;
    let Some(ours) = cached(root)? else {
        bail!(
            "no cached firmware build for the current inputs on this machine; run `cargo nekos firmware` first"
        );
    };
    Ok(compare(&ours, &theirs))
}
