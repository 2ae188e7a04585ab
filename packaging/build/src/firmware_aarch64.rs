//! The NekOS arm64 firmware: edk2's `ArmVirtPkg/ArmVirtQemu.dsc` (AARCH64) with Secure Boot
//! and TPM2, cross-compiled with Debian's `gcc-aarch64-linux-gnu` from the same pinned source
//! as the x86 OVMF (firmware/edk2.lock: trixie's edk2 2025.02 tarballs, Debian's patch
//! series), cached by input hash like firmware.rs. See firmware/README.md, "arm64".
//!
//! Two 64 MiB images come out (QEMU's `virt` machine maps two flash banks of exactly that
//! size and refuses files of another):
//! - `QEMU_EFI.fd`, the code: pflash0, read-only.
//! - `QEMU_VARS.fd`, the build's blank variable store: pflash1. The project's own stores
//!   (blank / custom / microsoft, [`write_varstores`]) are generated in the same layout by
//!   `nekos_formats::varstore::Layout::ARMVIRT_QEMU` and are what a boot uses.
//!
//! No paravirtual variables here: the pinned source plus the nine x86 QEMU_PV_VARS commits
//! lack ArmVirtQemu's QEMU_PV_VARS option (two more upstream commits, not in the patch set
//! the build reads; firmware/README.md lists them). So the variables live in flash, which
//! ArmVirtQemu (no SMM, no secure world under TCG) does not protect from the OS — as with
//! Debian's AAVMF_CODE.secboot.fd.
//!
//! This file verifies inputs, computes the cache key and records; `firmware/build-armvirt.sh`
//! does the edk2 mechanics.

use crate::arch::Arch;
pub use crate::artifacts::ArmFirmwareArtifact;
use crate::artifacts::FileArtifact;
use crate::cache::{Entry, InputHash, cache_root};
use crate::firmware::{self, Lock};
use crate::progress::Progress;
use crate::util::{self, sha256_file, sha256_hex};
use anyhow::{Context, Result, bail};
use nekos_formats::varstore::Layout;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bump when the recipe (script, flags, staging) changes in a way the inputs do not show.
const RECIPE_VERSION: &str = "1";

/// The code image (pflash0) in the cache entry.
pub const CODE_FD: &str = "QEMU_EFI.fd";
/// The build's blank variable store (pflash1) in the cache entry.
pub const VARS_FD: &str = "QEMU_VARS.fd";
/// The script, relative to the workspace root.
pub const SCRIPT: &str = "firmware/build-armvirt.sh";
/// The cache entry's name: `<cache>/firmware-aarch64-<input hash>/`.
const ENTRY: &str = "firmware-aarch64";
/// The variable stores' layout: ArmVirtQemu's second flash bank.
pub const LAYOUT: Layout = Layout::ARMVIRT_QEMU;
/// The Debian package of the cross compiler.
pub const CROSS_PACKAGE: &str = "gcc-aarch64-linux-gnu";

#[derive(Default, Clone, Debug)]
pub struct ArmFirmwareOptions {
    /// edk2 build threads (default: all cores).
    pub jobs: Option<usize>,
}

/// The cross compiler's prefix (from the Arch table).
fn cross_prefix() -> Result<&'static str> {
    Arch::Aarch64.cross_prefix().with_context(
        || "the Arch table names no cross prefix for aarch64 (packaging/build/src/arch.rs)",
    )
}

/// The cross compiler and linker must be there before anything is hashed or built: the error
/// names the tool, the Debian package and the architecture.
pub fn ensure_cross_compiler() -> Result<()> {
    check_cross_compiler(std::env::var_os("PATH").as_deref())
}

/// [`ensure_cross_compiler`] against a given `PATH` value (tests pass their own).
pub fn check_cross_compiler(path_var: Option<&std::ffi::OsStr>) -> Result<()> {
    let prefix = cross_prefix()?;
    let on_path = |tool: &str| {
        path_var.is_some_and(|paths| std::env::split_paths(paths).any(|d| d.join(tool).is_file()))
    };
    for tool in ["gcc", "ld", "objcopy"] {
        let name = format!("{prefix}{tool}");
        if !on_path(&name) {
            bail!(
                "{name} not found on PATH: the aarch64 (arm64) firmware is cross-compiled with \
                 Debian's {CROSS_PACKAGE}; install it as root with \
                 `apt-get install --no-install-recommends {CROSS_PACKAGE}` \
                 (packaging/host-setup.sh does)"
            );
        }
    }
    Ok(())
}

/// Everything the arm64 firmware bytes are a function of. Not the nine x86 QEMU_PV_VARS
/// patches (the script does not apply them) and not the build directory.
pub fn inputs(root: &Path, lock: &Lock) -> Result<InputHash> {
    let prefix = cross_prefix()?;
    let script = root.join(SCRIPT);
    let script_sha = sha256_file(&script)
        .with_context(|| format!("cannot read the firmware script {}", script.display()))?;
    let mut hash = InputHash::default();
    hash.add("recipe", RECIPE_VERSION)
        .add("build-armvirt.sh", &script_sha)
        .add("orig", &lock.orig.sha256)
        .add("debian", &lock.debian.sha256)
        .add(
            "source_date_epoch",
            &lock.debian.source_date_epoch.to_string(),
        )
        .add(
            "cross-gcc",
            &firmware::tool_line(&format!("{prefix}gcc"), &["--version"]),
        )
        .add(
            "cross-binutils",
            &firmware::tool_line(&format!("{prefix}ld"), &["--version"]),
        )
        // BaseTools (GenFw, GenFv, LzmaCompress…) are built with the host compiler.
        .add("gcc", &firmware::tool_line("gcc", &["--version"]))
        .add("iasl", &firmware::version_line("iasl", &["-v"]))
        .add("python3", &firmware::tool_line("python3", &["--version"]));
    Ok(hash)
}

fn entry_for(hash: &InputHash) -> Entry {
    Entry::new(ENTRY, &hash.hex())
}

/// The cache entry of the current inputs, if it is complete and intact.
pub fn cached(root: &Path) -> Result<Option<ArmFirmwareArtifact>> {
    ensure_cross_compiler()?;
    let lock = firmware::read_lock(root)?;
    let entry = entry_for(&inputs(root, &lock)?);
    if !entry.is_complete() {
        return Ok(None);
    }
    let Ok(text) = fs::read_to_string(entry.dir.join("firmware.json")) else {
        return Ok(None);
    };
    let Ok(mut art) = serde_json::from_str::<ArmFirmwareArtifact>(&text) else {
        return Ok(None);
    };
    if sha256_file(&art.code).ok().as_deref() == Some(art.code_sha256.as_str())
        && sha256_file(&art.vars).ok().as_deref() == Some(art.vars_sha256.as_str())
    {
        art.cached = true;
        return Ok(Some(art));
    }
    eprintln!(
        "nekos: cached arm64 firmware in {} is damaged; rebuilding",
        entry.dir.display()
    );
    Ok(None)
}

/// The arm64 firmware, from the cache when its inputs are unchanged, else built (about as
/// long as the x86 OVMF). The step the build calls.
pub fn ensure(root: &Path, opts: &ArmFirmwareOptions) -> Result<ArmFirmwareArtifact> {
    if let Some(art) = cached(root)? {
        return Ok(art);
    }
    let lock = firmware::read_lock(root)?;
    let hash = inputs(root, &lock)?;
    let key = hash.hex();
    let entry = entry_for(&hash);
    let (orig, debian) = firmware::source_tarballs(&lock)?;
    let scratch = entry.scratch()?;
    let built = match build_into(root, &lock, &orig, &debian, &scratch, opts.jobs) {
        Ok(built) => built,
        Err(e) => {
            let _ = fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    let art = ArmFirmwareArtifact {
        code: entry.dir.join(CODE_FD),
        code_sha256: sha256_file(&scratch.join(CODE_FD))?,
        vars: entry.dir.join(VARS_FD),
        vars_sha256: sha256_file(&scratch.join(VARS_FD))?,
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

/// One clean build into `out` (QEMU_EFI.fd, QEMU_VARS.fd, modules.sha256, logs). The edk2
/// tree is `out/edk2` (any path will do) and is deleted afterwards. Checks both images: 64 MiB
/// each, the variable template in [`LAYOUT`].
pub fn build_into(
    root: &Path,
    lock: &Lock,
    orig: &Path,
    debian: &Path,
    out: &Path,
    jobs: Option<usize>,
) -> Result<firmware::Built> {
    ensure_cross_compiler()?;
    fs::create_dir_all(out)?;
    // A private copy of the script: bash reads a script while it runs it.
    let script = out.join("build-armvirt.sh");
    fs::copy(root.join(SCRIPT), &script)
        .with_context(|| format!("cannot copy {SCRIPT} to {}", script.display()))?;
    let tree = out.join("edk2");
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let log_path = out.join("build.log");
    let log = fs::File::create(&log_path)?;
    let progress = Progress::start(
        "building ArmVirtQemu (arm64 firmware) from edk2 2025.02",
        Some(&log_path),
    );
    let status = Command::new("bash")
        .arg(&script)
        .env("NEKOS_EDK2_ORIG", orig)
        .env("NEKOS_EDK2_DEBIAN", debian)
        .env("NEKOS_EDK2_TREE", &tree)
        .env("NEKOS_EDK2_OUT", out)
        .env("NEKOS_EDK2_JOBS", jobs.to_string())
        .env("NEKOS_CROSS_PREFIX", cross_prefix()?)
        .env(
            "SOURCE_DATE_EPOCH",
            lock.debian.source_date_epoch.to_string(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("cannot run bash {SCRIPT}"))?;
    let elapsed = progress.finish(if status.success() { "done" } else { "FAILED" });
    for name in ["build-armvirt.log", "basetools.log"] {
        let _ = fs::copy(tree.join(name), out.join(name));
    }
    let _ = fs::remove_dir_all(&tree);
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let kept = cache_root().join("logs").join("firmware-aarch64-build.log");
        let _ = fs::create_dir_all(cache_root().join("logs"));
        let _ = fs::copy(&log_path, &kept);
        bail!(
            "arm64 firmware build failed (log: {}):\n{}",
            kept.display(),
            util::tail_lines(&text, 30)
        );
    }
    for fd in [CODE_FD, VARS_FD] {
        let path = out.join(fd);
        let len = fs::metadata(&path)
            .with_context(|| {
                format!(
                    "the arm64 firmware build finished without {}",
                    path.display()
                )
            })?
            .len();
        if len != LAYOUT.file_size as u64 {
            bail!(
                "{}: {len} bytes, expected {} (one 64 MiB flash bank)",
                path.display(),
                LAYOUT.file_size
            );
        }
    }
    check_vars_file(&out.join(VARS_FD))?;
    let sums = out.join("modules.sha256");
    let text =
        fs::read_to_string(&sums).with_context(|| format!("cannot read {}", sums.display()))?;
    let modules =
        firmware::parse_module_hashes(&text).with_context(|| format!("{}", sums.display()))?;
    if modules.is_empty() {
        bail!("{}: no module hashes", sums.display());
    }
    let _ = fs::remove_file(&script);
    Ok(firmware::Built {
        seconds: elapsed.as_secs_f64(),
        modules,
    })
}

/// `cargo nekos repro firmware --arch aarch64`: two clean builds in two directories of
/// different path lengths (the edk2 tree inside each), from inputs copied to two different
/// directories, as `firmware::repro` does for x86; both images and every module must agree.
/// Returns the two image hashes (QEMU_EFI.fd, QEMU_VARS.fd). On a difference the builds'
/// outputs and logs stay in the cache's `tmp/` for comparison.
pub fn repro(root: &Path, opts: &ArmFirmwareOptions) -> Result<(String, String)> {
    ensure_cross_compiler()?;
    let lock = firmware::read_lock(root)?;
    let (orig, debian) = firmware::source_tarballs(&lock)?;
    let base = cache_root()
        .join("tmp")
        .join(format!("repro-firmware-aarch64-{}", std::process::id()));
    let mut results = Vec::new();
    for (i, sub) in ["first/out", "second-build/elsewhere/firmware-out"]
        .iter()
        .enumerate()
    {
        let out = base.join(sub);
        // Inputs copied to a per-build directory: the build must not depend on where they are.
        let inputs_dir = base.join(format!("inputs-{i}{}", "x".repeat(i * 7)));
        fs::create_dir_all(&inputs_dir)
            .with_context(|| format!("cannot create {}", inputs_dir.display()))?;
        let o = inputs_dir.join(&lock.orig.file);
        let d = inputs_dir.join(&lock.debian.file);
        fs::copy(&orig, &o).with_context(|| format!("cannot copy {}", orig.display()))?;
        fs::copy(&debian, &d).with_context(|| format!("cannot copy {}", debian.display()))?;
        let built = build_into(root, &lock, &o, &d, &out, opts.jobs)?;
        let code = sha256_file(&out.join(CODE_FD))?;
        let vars = sha256_file(&out.join(VARS_FD))?;
        eprintln!(
            "nekos: arm64 firmware built in {} in {:.0}s: {CODE_FD} {code}, {VARS_FD} {vars}, {} modules",
            out.display(),
            built.seconds,
            built.modules.len()
        );
        results.push((code, vars, built.modules));
    }
    let (a, b) = (&results[0], &results[1]);
    let diffs = firmware::module_differences(&a.2, &b.2, "first", "second");
    if a.0 != b.0 || a.1 != b.1 || !diffs.is_empty() {
        bail!(
            "arm64 firmware not reproducible (builds kept in {}): {CODE_FD} {} vs {}, \
             {VARS_FD} {} vs {}; {} module(s) differ:\n{}",
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

/// Checks that `path` is a variable store an arm64 boot can put in its second flash bank
/// (ArmVirtQemu's layout, 64 MiB). A wrong file — an x86 OVMF_VARS, a cut-off copy, another
/// size — is refused with its name and the expected size, before QEMU sees it.
pub fn check_vars_file(path: &Path) -> Result<()> {
    let data = fs::read(path)
        .with_context(|| format!("cannot read the arm64 variable store {}", path.display()))?;
    LAYOUT.check(&data).with_context(|| {
        format!(
            "{} is not an arm64 (ArmVirtQemu) variable store: expected {} bytes in the \
             ArmVirtQemu layout for the second flash bank",
            path.display(),
            LAYOUT.file_size
        )
    })?;
    Ok(())
}

/// The three variable stores (blank, custom from `keys_dir`, microsoft) as raw ArmVirtQemu
/// images in `dir` (`<preset>.fd`, 64 MiB each, written atomically), with their manifest
/// entries keyed by file name. The JSON stores of x86 (QEMU uefi-vars) have no arm64 use:
/// this firmware has no paravirtual variables.
pub fn write_varstores(dir: &Path, keys_dir: &Path) -> Result<BTreeMap<String, FileArtifact>> {
    let mut cert_inputs = BTreeMap::new();
    for cert in ["PK.crt", "KEK.crt", "db.crt"] {
        cert_inputs.insert(cert.to_string(), sha256_file(&keys_dir.join(cert))?);
    }
    let mut out = BTreeMap::new();
    for name in ["blank", "custom", "microsoft"] {
        let store = crate::measurements::preset_store(name, keys_dir)?;
        let path = dir.join(format!("{name}.fd"));
        let bytes = store
            .to_raw_layout(&LAYOUT)
            .with_context(|| format!("arm64 variable store {}", path.display()))?;
        util::write_atomic(&path, &bytes)?;
        let mut inputs = BTreeMap::new();
        inputs.insert("preset".to_string(), name.to_string());
        inputs.insert("layout".to_string(), LAYOUT.name.to_string());
        if name == "custom" {
            inputs.extend(cert_inputs.clone());
        }
        out.insert(
            format!("{name}.fd"),
            FileArtifact {
                path,
                sha256: sha256_hex(&bytes),
                size: bytes.len() as u64,
                inputs,
            },
        );
    }
    Ok(out)
}

/// Where [`write_varstores`] puts the arm64 stores: `target/nekos/aarch64/varstores/`.
pub fn varstores_dir(root: &Path) -> PathBuf {
    Arch::Aarch64
        .out_dir(&crate::artifacts::out_dir(root))
        .join("varstores")
}
