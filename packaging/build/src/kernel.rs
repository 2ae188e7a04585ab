//! The kernel: Debian's `linux-source-6.12` tarball + `kernel-config/common.config` and
//! `kernel-config/<arch>.config`, built reproducibly and cached by the hash of everything
//! that goes into it. The architecture is a parameter ([`Arch`]): x86_64 builds `bzImage`
//! with the host gcc, aarch64 cross-builds `Image` with Debian's `gcc-aarch64-linux-gnu`;
//! everything else (the source, the recipe, the option check, the cache) is the same code.

pub use crate::arch::Arch;
pub use crate::artifacts::{KernelArtifact, SourceLock};
use crate::cache::{Entry, InputHash};
use crate::progress::Progress;
use crate::util::{self, run_capture, sha256_file};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const SOURCE_PACKAGE: &str = "linux-source-6.12";
pub const TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// The directory the tarball unpacks into.
const TARBALL_DIR: &str = "linux-source-6.12";
/// Bump when the build recipe below changes in a way that changes the output.
const RECIPE_VERSION: &str = "1";
/// The options every architecture shares; `kernel-config/<arch>.config` adds the rest.
const COMMON_FRAGMENT: &str = "kernel-config/common.config";

/// The environment that makes two builds from different paths bit-identical
/// (see shared notes: reproducible kernel).
const REPRODUCIBLE_ENV: &[(&str, &str)] = &[
    ("KBUILD_BUILD_TIMESTAMP", "1970-01-01 00:00:00 UTC"),
    ("KBUILD_BUILD_USER", "nekos"),
    ("KBUILD_BUILD_HOST", "nekos"),
    ("KBUILD_BUILD_VERSION", "1"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
];

#[derive(Default, Clone)]
pub struct KernelOptions {
    /// Refuse a source that differs from `linux-source.lock`.
    pub locked: bool,
    pub jobs: Option<usize>,
    pub arch: Arch,
}

fn lock_path(root: &Path) -> PathBuf {
    root.join("kernel-config/linux-source.lock")
}

/// The fragment files of `arch`, in the order they are concatenated: the shared options,
/// then the architecture's own.
pub fn fragment_paths(root: &Path, arch: Arch) -> [PathBuf; 2] {
    [
        root.join(COMMON_FRAGMENT),
        root.join(format!("kernel-config/{}.config", arch.name())),
    ]
}

/// The one fragment `make allnoconfig` reads for `arch`: the files of [`fragment_paths`]
/// concatenated, and every option it asks for. Fails naming the file and line of a malformed
/// line, and an option set in both files (the later one would silently win in kconfig).
pub fn fragment(root: &Path, arch: Arch) -> Result<(String, Vec<Wanted>)> {
    let mut text = String::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in fragment_paths(root, arch) {
        let part = fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the kernel configuration fragment {} (for arch {arch})",
                path.display()
            )
        })?;
        let options = parse_fragment(&part).with_context(|| format!("{}", path.display()))?;
        for w in options {
            if let Some(first) = seen.get(&w.name) {
                bail!(
                    "{} sets {} again (already set in {}): each option belongs to one file",
                    path.display(),
                    w.name,
                    first.display()
                );
            }
            seen.insert(w.name.clone(), path.clone());
            wanted.push(w);
        }
        text.push_str(&part);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok((text, wanted))
}

/// Reads the lock; a missing or malformed field is an error naming the file and the field.
pub fn read_lock(root: &Path) -> Result<SourceLock> {
    let lock = crate::pins::LockFile::load(&lock_path(root))?;
    let source = SourceLock {
        package: lock.string(None, "package")?,
        version: lock.string(None, "version")?,
        sha256: lock.sha256(None, "sha256")?,
    };
    if source.package != SOURCE_PACKAGE {
        bail!(
            "{}: package is {:?}, expected {SOURCE_PACKAGE:?} (the build unpacks {TARBALL})",
            lock_path(root).display(),
            source.package
        );
    }
    Ok(source)
}

/// The installed source package, if its tarball is there.
pub fn current_source() -> Result<SourceLock> {
    if !Path::new(TARBALL).is_file() {
        bail!("{TARBALL} is missing: install the Debian package {SOURCE_PACKAGE}");
    }
    let version =
        run_capture(Command::new("dpkg-query").args(["-W", "-f=${Version}", SOURCE_PACKAGE]))
            .unwrap_or_else(|_| "unknown".into());
    Ok(SourceLock {
        package: SOURCE_PACKAGE.into(),
        version,
        sha256: sha256_file(Path::new(TARBALL))?,
    })
}

/// The content-addressed copy of a source tarball: `<cache>/sources/<sha256>/<name>`. It
/// outlives Debian's pool, which drops a version as soon as the next security update lands.
pub fn cached_tarball(sha256: &str) -> PathBuf {
    crate::cache::cache_root()
        .join("sources")
        .join(sha256)
        .join(format!("{TARBALL_DIR}.tar.xz"))
}

/// Copies `tarball` (whose sha256 is `sha256`) into the cache unless it is there; the copy
/// appears only complete (temp file + rename).
pub fn keep_in_cache(tarball: &Path, sha256: &str) -> Result<PathBuf> {
    let dest = cached_tarball(sha256);
    if dest.is_file() {
        return Ok(dest);
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = util::tmp_path_for(&dest);
    let result = fs::copy(tarball, &tmp)
        .with_context(|| format!("cannot copy {} to {}", tarball.display(), tmp.display()))
        .and_then(|_| {
            let got = sha256_file(&tmp)?;
            if got != sha256 {
                bail!(
                    "{} changed while copying it into the cache (sha256 {got}, expected {sha256})",
                    tarball.display()
                );
            }
            fs::rename(&tmp, &dest)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))
        });
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(dest)
}

/// Downloads `linux-source-6.12=version` with apt (not installing it), puts its tarball into
/// the cache and returns the tarball's sha256. Used by `cargo nekos lock`.
pub fn fetch_source(version: &str) -> Result<String> {
    let work = crate::cache::cache_root()
        .join("tmp")
        .join(format!("linux-source-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = (|| -> Result<String> {
        let spec = format!("{SOURCE_PACKAGE}={version}");
        run_capture(
            Command::new("apt-get")
                .args(["download", "-q", &spec])
                .current_dir(&work),
        )
        .with_context(|| format!("apt-get download {spec}"))?;
        let deb = fs::read_dir(&work)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .with_context(|| format!("apt-get download {spec} produced no .deb"))?;
        let member = format!("./usr/src/{TARBALL_DIR}.tar.xz");
        let status = Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xf - -C \"$2\" \"$3\"")
            .arg("sh")
            .arg(&deb)
            .arg(&work)
            .arg(&member)
            .status()
            .context("cannot run dpkg-deb | tar")?;
        let tarball = work.join(&member);
        if !status.success() || !tarball.is_file() {
            bail!("{} holds no {member}", deb.display());
        }
        let sha = sha256_file(&tarball)?;
        keep_in_cache(&tarball, &sha)?;
        Ok(sha)
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// The pinned source and where to read it from. Policy (README, "Pins"):
/// - the pinned tarball is used whenever it can be had: installed (then a copy goes into the
///   cache), else the cache copy;
/// - if the installed package differs from the pin (Debian moved on), the default mode warns
///   and builds the pin from the cache; `--locked` refuses, so CI notices the drift;
/// - a pin that is neither installed nor cached is an error in both modes: there is nothing
///   to build it from, and building another version silently is what pins exist to prevent.
pub fn resolve_source(root: &Path, locked: bool) -> Result<(SourceLock, PathBuf, String)> {
    let lock = read_lock(root)?;
    let lock_file = lock_path(root);
    let installed = current_source().ok();
    if let Some(inst) = installed.as_ref().filter(|i| i.sha256 == lock.sha256) {
        // First use of this tarball: keep a copy, so the pin survives Debian replacing it.
        // Not fatal: the build itself needs only the installed file.
        if let Err(e) = keep_in_cache(Path::new(TARBALL), &inst.sha256) {
            eprintln!("nekos: warning: cannot keep the kernel source in the cache: {e:#}");
        }
        return Ok((lock, PathBuf::from(TARBALL), format!("installed {TARBALL}")));
    }
    let cached = cached_tarball(&lock.sha256);
    let cached_ok =
        cached.is_file() && sha256_file(&cached).ok().as_deref() == Some(lock.sha256.as_str());
    let found = match &installed {
        Some(i) => format!("{} {} (sha256 {})", i.package, i.version, i.sha256),
        None => format!("nothing ({TARBALL} is missing)"),
    };
    if cached_ok {
        if installed.is_some() {
            let msg = format!(
                "{} pins {} {} (sha256 {}), the installed one is {found}",
                lock_file.display(),
                lock.package,
                lock.version,
                lock.sha256
            );
            if locked {
                bail!(
                    "{msg}\n  --locked refuses a lock that differs from what Debian serves: run `cargo nekos lock` to move the pin, \
                     or build without --locked (the pinned tarball is in the cache: {})",
                    cached.display()
                );
            }
            eprintln!(
                "nekos: warning: {msg}\n  building the pinned source from the cache ({}); the manifest records it; \
                 `cargo nekos lock` moves the pin",
                cached.display()
            );
        }
        return Ok((lock, cached.clone(), format!("cache {}", cached.display())));
    }
    bail!(
        "{} pins {} {} (sha256 {}), which is neither installed nor in the cache ({}); installed: {found}.\n  \
         Move the pin to what Debian serves now: cargo nekos lock\n  \
         or install the pinned version: apt-get install {}={}",
        lock_file.display(),
        lock.package,
        lock.version,
        lock.sha256,
        cached.display(),
        lock.package,
        lock.version
    )
}

/// One fragment line: `CONFIG_X=value`, or `CONFIG_X=n` / `# CONFIG_X is not set` for off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub name: String,
    /// None means "must be off".
    pub value: Option<String>,
}

pub fn parse_fragment(text: &str) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                out.push(Wanted {
                    name: name.to_string(),
                    value: None,
                });
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!("line {}: expected CONFIG_NAME=value, got {line:?}", n + 1);
        };
        if !name.starts_with("CONFIG_") {
            bail!(
                "line {}: option names start with CONFIG_, got {name:?}",
                n + 1
            );
        }
        let value = (value != "n").then(|| value.to_string());
        out.push(Wanted {
            name: name.to_string(),
            value,
        });
    }
    Ok(out)
}

pub fn parse_dotconfig(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every option of the fragment that did not survive into `.config`.
pub fn dropped_options(
    wanted: &[Wanted],
    config: &BTreeMap<String, String>,
) -> Vec<(Wanted, Option<String>)> {
    wanted
        .iter()
        .filter(|w| config.get(&w.name) != w.value.as_ref())
        .map(|w| (w.clone(), config.get(&w.name).cloned()))
        .collect()
}

/// Why kconfig dropped `name`: the `depends on` lines of its Kconfig entry, with the current
/// value of each symbol they mention.
fn explain_dependency(src: &Path, name: &str, config: &BTreeMap<String, String>) -> String {
    let symbol = name.trim_start_matches("CONFIG_");
    let mut depends = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("Kconfig"))
            {
                let Ok(text) = fs::read_to_string(&path) else {
                    continue;
                };
                let mut inside = false;
                for line in text.lines() {
                    let t = line.trim();
                    if t == format!("config {symbol}") || t == format!("menuconfig {symbol}") {
                        inside = true;
                    } else if inside && !line.starts_with(char::is_whitespace) && !t.is_empty() {
                        inside = false;
                    } else if inside && let Some(expr) = t.strip_prefix("depends on ") {
                        depends.push(expr.to_string());
                    }
                }
            }
        }
    }
    if depends.is_empty() {
        return "no `depends on` found; the option may have no prompt (it must be selected by another option)".into();
    }
    let mut parts = Vec::new();
    for expr in depends {
        let symbols: Vec<String> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|s| !s.is_empty() && s.chars().any(|c| c.is_ascii_uppercase()))
            .map(|s| {
                let value = config
                    .get(&format!("CONFIG_{s}"))
                    .map(String::as_str)
                    .unwrap_or("not set");
                format!("{s}={value}")
            })
            .collect();
        parts.push(format!("depends on {expr} [{}]", symbols.join(", ")));
    }
    parts.join("; ")
}

/// The Debian package that provides the compiler for `arch` on an x86_64 host.
fn compiler_package(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "gcc",
        Arch::Aarch64 => "gcc-aarch64-linux-gnu",
    }
}

/// The compiler and linker `make` uses for `arch` (`<CROSS_COMPILE>gcc`, `<CROSS_COMPILE>ld`).
/// A missing one is an error naming the tool, the Debian package and the architecture.
pub fn toolchain(arch: Arch) -> Result<(String, String)> {
    toolchain_in(arch, &std::env::var_os("PATH").unwrap_or_default())
}

/// [`toolchain`] looked up in `path` (a `PATH`-style list; tests pass one without it).
pub fn toolchain_in(arch: Arch, path: &std::ffi::OsStr) -> Result<(String, String)> {
    let prefix = arch.cross_prefix().unwrap_or("");
    let (gcc, ld) = (format!("{prefix}gcc"), format!("{prefix}ld"));
    for tool in [&gcc, &ld] {
        if !std::env::split_paths(path).any(|dir| dir.join(tool).is_file()) {
            bail!(
                "{tool} is not on PATH: it is needed to build the kernel for arch {arch}; \
                 install the Debian package {} (apt-get install --no-install-recommends {})",
                compiler_package(arch),
                compiler_package(arch)
            );
        }
    }
    Ok((gcc, ld))
}

/// `ARCH=` and `CROSS_COMPILE=` for a cross build; nothing for the host's own architecture,
/// so the x86_64 command line (and so its output) is what it always was.
fn make_arch_args(arch: Arch) -> Vec<String> {
    match arch.cross_prefix() {
        Some(prefix) => vec![
            format!("ARCH={}", arch.kernel_arch()),
            format!("CROSS_COMPILE={prefix}"),
        ],
        None => Vec::new(),
    }
}

fn kernel_inputs(
    root: &Path,
    source: &SourceLock,
    arch: Arch,
) -> Result<(InputHash, String, String)> {
    let (fragment, _) = fragment(root, arch)?;
    let (gcc_tool, ld_tool) = toolchain(arch)?;
    let gcc = util::tool_version(&gcc_tool)?;
    let binutils = util::tool_version(&ld_tool)?;
    let mut hash = InputHash::default();
    hash.add("recipe", RECIPE_VERSION)
        .add("arch", arch.name())
        .add("source.package", &source.package)
        .add("source.sha256", &source.sha256)
        .add("fragment.sha256", &util::sha256_hex(fragment.as_bytes()))
        .add("gcc", &gcc)
        .add("binutils", &binutils);
    for (k, v) in REPRODUCIBLE_ENV {
        hash.add(k, v);
    }
    Ok((hash, gcc, binutils))
}

/// Returns the kernel, from the cache when its inputs are unchanged, else building it.
pub fn ensure(root: &Path, opts: &KernelOptions) -> Result<KernelArtifact> {
    let arch = opts.arch;
    let (source, tarball, origin) = resolve_source(root, opts.locked)?;
    let (hash, gcc, binutils) = kernel_inputs(root, &source, arch)?;
    let key = hash.hex();
    // x86_64 keeps the entry name it always had; other architectures are named, so a look
    // into the cache tells them apart (the key differs anyway: it contains the arch).
    let entry = match arch {
        Arch::X86_64 => Entry::new("kernel", &key),
        other => Entry::new(&format!("kernel-{}", other.name()), &key),
    };
    let info_path = entry.dir.join("kernel.json");
    if entry.is_complete()
        && let Ok(text) = fs::read_to_string(&info_path)
        && let Ok(mut art) = serde_json::from_str::<KernelArtifact>(&text)
    {
        if sha256_file(&art.bzimage).ok().as_deref() == Some(art.sha256.as_str()) {
            art.cached = true;
            art.source_origin = origin;
            return Ok(art);
        }
        eprintln!(
            "nekos: cached kernel {} is damaged, rebuilding",
            art.bzimage.display()
        );
    }
    let scratch = entry.scratch()?;
    let built = build_from(root, &tarball, &scratch, opts.jobs, arch);
    let (bz, config, secs) = match built {
        Ok(v) => v,
        Err(e) => {
            // Keep the log for diagnosis, drop the tree so nothing half-built is reused.
            let log = scratch.join("build.log");
            let kept = crate::cache::cache_root().join("logs").join(format!(
                "kernel-{}-{}.log",
                arch.name(),
                &key[..16]
            ));
            if log.is_file() {
                let _ = fs::create_dir_all(kept.parent().unwrap_or(Path::new("/tmp")));
                let _ = fs::copy(&log, &kept);
            }
            let _ = fs::remove_dir_all(&scratch);
            return Err(e.context(format!("kernel build failed (log: {})", kept.display())));
        }
    };
    let _ = fs::remove_dir_all(scratch.join(TARBALL_DIR));
    // The file keeps the kernel's own name: bzImage (x86_64), Image (arm64).
    let image_name = arch.kernel_image().0;
    let art = KernelArtifact {
        bzimage: entry.dir.join(image_name),
        config: entry.dir.join("config"),
        sha256: util::sha256_hex(&bz),
        source,
        source_origin: origin,
        gcc,
        binutils,
        input_hash: key,
        inputs: hash.inputs.iter().cloned().collect(),
        clean_build_seconds: secs,
        cached: false,
    };
    fs::write(scratch.join(image_name), &bz)?;
    fs::write(scratch.join("config"), &config)?;
    fs::write(
        scratch.join("kernel.json"),
        serde_json::to_vec_pretty(&art)?,
    )?;
    entry.commit(&scratch)?;
    Ok(art)
}

/// Unpacks the installed kernel source tarball under `work`; returns the source directory.
pub fn unpack(work: &Path, log: &fs::File) -> Result<PathBuf> {
    unpack_from(Path::new(TARBALL), work, log)
}

/// Unpacks `tarball` (installed or the cache copy) under `work`; returns the source directory.
pub fn unpack_from(tarball: &Path, work: &Path, log: &fs::File) -> Result<PathBuf> {
    let status = Command::new("tar")
        .arg("-xf")
        .arg(tarball)
        .arg("-C")
        .arg(work)
        .stderr(log.try_clone()?)
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        bail!("cannot unpack {}", tarball.display());
    }
    Ok(work.join(TARBALL_DIR))
}

fn make(src: &Path, log_path: &Path, arch: Arch, args: &[&str]) -> Result<()> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut cmd = Command::new("make");
    cmd.current_dir(src)
        .args(make_arch_args(arch))
        .args(args)
        .envs(REPRODUCIBLE_ENV.iter().copied());
    cmd.stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null());
    let status = cmd.status().context("cannot run make")?;
    if !status.success() {
        let text = fs::read_to_string(log_path).unwrap_or_default();
        bail!(
            "make {} failed:\n{}",
            args.join(" "),
            util::tail_lines(&text, 30)
        );
    }
    Ok(())
}

/// `make allnoconfig` with one fragment file (x86_64), then the option check of
/// [`configure_for`]. Returns `.config`.
pub fn configure(src: &Path, fragment: &Path, log_path: &Path) -> Result<String> {
    let text = fs::read_to_string(fragment)
        .with_context(|| format!("cannot read {}", fragment.display()))?;
    let wanted = parse_fragment(&text).with_context(|| format!("{}", fragment.display()))?;
    configure_for(
        src,
        fragment,
        &wanted,
        Arch::X86_64,
        &fragment.display().to_string(),
        log_path,
    )
}

/// `make allnoconfig KCONFIG_ALLCONFIG=<fragment>` for `arch`, then checks that every option
/// of `wanted` is in the final `.config`; kconfig silently drops options whose dependencies
/// are off, so the error names each dropped option and its unmet `depends on`, and the
/// files they came from (`described`). Returns `.config`.
pub fn configure_for(
    src: &Path,
    fragment: &Path,
    wanted: &[Wanted],
    arch: Arch,
    described: &str,
    log_path: &Path,
) -> Result<String> {
    make(
        src,
        log_path,
        arch,
        &[
            "allnoconfig",
            &format!("KCONFIG_ALLCONFIG={}", fragment.display()),
        ],
    )?;
    let config = fs::read_to_string(src.join(".config"))?;
    let values = parse_dotconfig(&config);
    let dropped = dropped_options(wanted, &values);
    if !dropped.is_empty() {
        let mut msg = format!("kconfig dropped options of {described} (arch {arch}):\n");
        for (w, got) in dropped {
            msg.push_str(&format!(
                "  {}={} (final .config: {}): {}\n",
                w.name,
                w.value.as_deref().unwrap_or("n"),
                got.as_deref().unwrap_or("not set"),
                explain_dependency(src, &w.name, &values)
            ));
        }
        bail!(msg);
    }
    Ok(config)
}

/// [`build_from`] on the pinned source (`repro kernel`; default mode: warns on drift).
pub fn build_in(
    root: &Path,
    work: &Path,
    jobs: Option<usize>,
    arch: Arch,
) -> Result<(Vec<u8>, String, f64)> {
    let (_, tarball, _) = resolve_source(root, false)?;
    build_from(root, &tarball, work, jobs, arch)
}

/// Unpacks `tarball` under `work`, configures, checks the configuration and builds the boot
/// image of `arch`. Returns (image bytes, .config text, seconds). Used by the cache and by
/// `repro kernel`.
pub fn build_from(
    root: &Path,
    tarball: &Path,
    work: &Path,
    jobs: Option<usize>,
    arch: Arch,
) -> Result<(Vec<u8>, String, f64)> {
    // Before minutes of unpacking: a missing cross compiler is named straight away.
    toolchain(arch)?;
    let log_path = work.join("build.log");
    let log = fs::File::create(&log_path)?;
    let what = match arch {
        Arch::X86_64 => "building the kernel (clean build takes ~5 min on 2 cores)".to_string(),
        other => format!("building the {other} kernel (clean cross build takes minutes)"),
    };
    let progress = Progress::start(&what, Some(&log_path));
    let src = unpack_from(tarball, work, &log)?;
    // The fragment files of the arch as the one file kconfig reads, next to the source tree.
    let (text, wanted) = fragment(root, arch)?;
    let merged = work.join(format!("nekos-{}.config", arch.name()));
    fs::write(&merged, &text).with_context(|| format!("cannot write {}", merged.display()))?;
    let [common, own] = fragment_paths(root, arch);
    let described = format!("{} + {}", common.display(), own.display());
    let config = configure_for(&src, &merged, &wanted, arch, &described, &log_path)?;
    let jobs = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let (target, image) = arch.kernel_image();
    make(&src, &log_path, arch, &[&format!("-j{jobs}"), target])?;
    let bz =
        fs::read(src.join(image)).with_context(|| format!("the kernel build left no {image}"))?;
    let secs = progress.finish("done").as_secs_f64();
    Ok((bz, config, secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fragment_parses_on_and_off() {
        let w =
            parse_fragment("# c\nCONFIG_A=y\nCONFIG_B=n\n# CONFIG_C is not set\nCONFIG_D=\"x\"\n")
                .unwrap();
        assert_eq!(w.len(), 4);
        assert_eq!(
            w[1],
            Wanted {
                name: "CONFIG_B".into(),
                value: None
            }
        );
        assert_eq!(w[3].value.as_deref(), Some("\"x\""));
        assert!(parse_fragment("FOO=y").is_err());
        assert!(parse_fragment("CONFIG_FOO").is_err());
    }

    #[test]
    fn dropped_options_are_found() {
        let wanted = parse_fragment("CONFIG_A=y\nCONFIG_B=n\nCONFIG_C=y\n").unwrap();
        let config = parse_dotconfig("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n");
        let names: Vec<_> = dropped_options(&wanted, &config)
            .into_iter()
            .map(|(w, _)| w.name)
            .collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_C"]);
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The x86_64 options exactly as the single `nekos.config` had them before the split
    /// into common + per-arch files (commit 71ecaab): the split must not change x86.
    const X86_64_BEFORE_SPLIT: &str = "64BIT=y SMP=y PRINTK=y PRINTK_TIME=y BUG=y MULTIUSER=y \
        BLK_DEV_INITRD=y RD_GZIP=y RD_ZSTD=y INITRAMFS_PRESERVE_MTIME=y BINFMT_ELF=y \
        BINFMT_SCRIPT=y FUTEX=y EPOLL=y SIGNALFD=y TIMERFD=y EVENTFD=y SHMEM=y MEMFD_CREATE=y \
        POSIX_TIMERS=y ADVISE_SYSCALLS=y PROC_FS=y PROC_SYSCTL=y SYSFS=y TMPFS=y DEVTMPFS=y \
        UNIX98_PTYS=y FILE_LOCKING=y PANIC_TIMEOUT=0 BLOCK=y LOCALVERSION_AUTO=n IKCONFIG=n \
        MODULES=n KERNEL_ZSTD=y ACPI=y ACPI_BUTTON=y X86_PM_TIMER=y EFI=y EFI_STUB=y \
        EFIVAR_FS=y PCI=y PCI_MSI=y HYPERVISOR_GUEST=y PARAVIRT=y KVM_GUEST=y CPU_SUP_AMD=y \
        CPU_SUP_INTEL=y RTC_CLASS=y RTC_DRV_CMOS=y TTY=y SERIAL_8250=y SERIAL_8250_CONSOLE=y \
        SERIAL_8250_PNP=y VT=y VT_CONSOLE=y INPUT=y INPUT_EVDEV=y INPUT_KEYBOARD=y \
        KEYBOARD_ATKBD=y SERIO=y SERIO_I8042=y DRM=y DRM_BOCHS=y DRM_VIRTIO_GPU=y \
        DRM_VIRTIO_GPU_KMS=y DRM_SIMPLEDRM=y SYSFB_SIMPLEFB=y DRM_FBDEV_EMULATION=y \
        FRAMEBUFFER_CONSOLE=y VIRTIO_MENU=y VIRTIO_PCI=y VIRTIO_MMIO=y HW_RANDOM=y \
        HW_RANDOM_VIRTIO=y TCG_TPM=y TCG_TIS=y TCG_CRB=y SECURITYFS=y CONFIGFS_FS=y \
        AMD_MEM_ENCRYPT=y VIRT_DRIVERS=y SEV_GUEST=y TSM_REPORTS=y NET=y INET=y UNIX=y \
        PACKET=y NETDEVICES=y NET_CORE=y VIRTIO_NET=y KEXEC_FILE=y";

    /// What the arm64 kernel must have (issue 16): EFI stub, virtio pci + mmio, virtio-gpu
    /// with KMS, virtio keyboard + evdev, PL011 console, TPM TIS (device tree), efivarfs,
    /// configfs, kexec_file, the ECAM host bridge, PL031, GIC, and what x86 has that applies.
    pub(crate) const AARCH64_WANTED: &[&str] = &[
        "EFI_STUB",
        "EFIVAR_FS",
        "VIRTIO_PCI",
        "VIRTIO_MMIO",
        "DRM_VIRTIO_GPU",
        "DRM_VIRTIO_GPU_KMS",
        "VIRTIO_INPUT",
        "INPUT_EVDEV",
        "SERIAL_AMBA_PL011",
        "SERIAL_AMBA_PL011_CONSOLE",
        "TCG_TIS",
        "CONFIGFS_FS",
        "KEXEC_FILE",
        "BLK_DEV_INITRD",
        "DEVTMPFS",
        "FILE_LOCKING",
        "UNIX",
        "SHMEM",
        "TMPFS",
        "DRM",
        "FRAMEBUFFER_CONSOLE",
        "PCI_HOST_GENERIC",
        "RTC_DRV_PL031",
        "ARM_GIC",
        "HW_RANDOM_VIRTIO",
    ];

    fn as_set(wanted: &[Wanted]) -> std::collections::BTreeSet<String> {
        wanted
            .iter()
            .map(|w| {
                format!(
                    "{}={}",
                    &w.name["CONFIG_".len()..],
                    w.value.as_deref().unwrap_or("n")
                )
            })
            .collect()
    }

    #[test]
    fn the_split_gives_x86_64_the_options_it_had() {
        let (_, wanted) = fragment(&root(), Arch::X86_64).unwrap();
        let before: std::collections::BTreeSet<String> = X86_64_BEFORE_SPLIT
            .split_whitespace()
            .map(String::from)
            .collect();
        assert_eq!(
            before.len(),
            91,
            "the list above is the old fragment's 91 options"
        );
        assert_eq!(as_set(&wanted), before);
    }

    #[test]
    fn the_aarch64_fragment_asks_for_what_arm64_needs() {
        let (_, wanted) = fragment(&root(), Arch::Aarch64).unwrap();
        let set = as_set(&wanted);
        for name in AARCH64_WANTED {
            assert!(set.contains(&format!("{name}=y")), "{name} missing");
        }
        // Nothing x86-only leaks into the arm64 kernel.
        for name in [
            "ACPI",
            "SERIAL_8250",
            "AMD_MEM_ENCRYPT",
            "DRM_BOCHS",
            "KERNEL_ZSTD",
        ] {
            assert!(
                !wanted.iter().any(|w| w.name == format!("CONFIG_{name}")),
                "{name} is x86 only"
            );
        }
    }

    #[test]
    fn every_fragment_is_well_formed_and_sets_each_option_once() {
        for arch in Arch::ALL {
            let (text, wanted) = fragment(&root(), arch).unwrap();
            assert!(wanted.iter().any(|w| w.name == "CONFIG_EFI_STUB"), "{arch}");
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn an_option_in_both_files_is_refused_naming_both() {
        let dir = std::env::temp_dir().join(format!("nekos-frag-{}", std::process::id()));
        fs::create_dir_all(dir.join("kernel-config")).unwrap();
        fs::write(dir.join(COMMON_FRAGMENT), "CONFIG_A=y\nCONFIG_B=y\n").unwrap();
        fs::write(
            dir.join("kernel-config/aarch64.config"),
            "# x\nCONFIG_B=n\n",
        )
        .unwrap();
        let e = format!("{:#}", fragment(&dir, Arch::Aarch64).unwrap_err());
        assert!(e.contains("aarch64.config sets CONFIG_B again"), "{e}");
        assert!(e.contains("common.config"), "{e}");
        fs::write(dir.join("kernel-config/aarch64.config"), "B=y\n").unwrap();
        let e = format!("{:#}", fragment(&dir, Arch::Aarch64).unwrap_err());
        assert!(e.contains("aarch64.config") && e.contains("line 1"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_cross_compiler_is_refused_naming_tool_package_and_arch() {
        let empty = std::env::temp_dir().join(format!("nekos-nopath-{}", std::process::id()));
        fs::create_dir_all(&empty).unwrap();
        let e = toolchain_in(Arch::Aarch64, empty.as_os_str())
            .unwrap_err()
            .to_string();
        assert!(e.contains("aarch64-linux-gnu-gcc"), "{e}");
        assert!(e.contains("gcc-aarch64-linux-gnu"), "{e}");
        assert!(e.contains("arch aarch64"), "{e}");
        // With a PATH that has both tools, the names make's CROSS_COMPILE= will use.
        for tool in ["aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld"] {
            fs::write(empty.join(tool), "").unwrap();
        }
        assert_eq!(
            toolchain_in(Arch::Aarch64, empty.as_os_str()).unwrap(),
            (
                "aarch64-linux-gnu-gcc".into(),
                "aarch64-linux-gnu-ld".into()
            )
        );
        let _ = fs::remove_dir_all(&empty);
        assert_eq!(make_arch_args(Arch::X86_64), Vec::<String>::new());
        assert_eq!(
            make_arch_args(Arch::Aarch64),
            ["ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"]
        );
    }
}
