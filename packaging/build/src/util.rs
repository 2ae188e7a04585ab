//! Small helpers shared by every step: hashing, atomic writes, locating the workspace.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lowercase hex SHA-256 (the formats' one definition).
pub use nekos_formats::digest::sha256_hex;

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Writes `bytes` to `path` (mode 0644) through a temporary file in the same directory and
/// a rename, so a failed or interrupted build never leaves a truncated file under the final
/// name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// As [`write_atomic`], with `mode` set on the temporary file before any byte is written
/// (private keys are never readable by others, not even briefly).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tmp_path_for(path);
    let _ = fs::remove_file(&tmp);
    let result = (|| -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err.context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

/// Copies a file atomically (temp file + rename), keeping the mode bits.
pub fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    write_atomic(to, &bytes)?;
    let perms = fs::metadata(from)?.permissions();
    fs::set_permissions(to, perms)?;
    Ok(())
}

/// A temporary name next to `path`, unique per process and call (threads may write
/// siblings at the same time).
pub fn tmp_path_for(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// The workspace root: the directory of the top Cargo.toml. Found from the running binary's
/// compile-time manifest dir first (so `cargo nekos` works from any subdirectory), then from
/// the current directory upwards.
pub fn workspace_root() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("NEKOS_WORKSPACE") {
        return Ok(PathBuf::from(dir));
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if compiled.join("kernel-config").is_dir() {
        return Ok(compiled.canonicalize()?);
    }
    let mut dir = std::env::current_dir()?;
    loop {
        if dir.join("kernel-config").is_dir() && dir.join("Cargo.toml").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            bail!(
                "not inside the NekOS workspace (no kernel-config/ and Cargo.toml found upwards)"
            );
        }
    }
}

/// The timestamp every build output carries. SOURCE_DATE_EPOCH wins; otherwise the HEAD
/// commit time, so two clean checkouts of one commit agree; 0 outside git.
pub fn source_date_epoch(root: &Path) -> u64 {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH")
        && let Ok(n) = value.trim().parse()
    {
        return n;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// Runs a command, returning stdout; the error names the program and shows its stderr.
pub fn run_capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// First line of `<tool> --version`, recorded in manifests because it is embedded in outputs.
pub fn tool_version(tool: &str) -> Result<String> {
    let out = run_capture(Command::new(tool).arg("--version"))?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// `<pid>-<counter>`: unique among the threads and processes writing at the same time.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The median (mean of the middle two for an even count; NaN for none).
pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Where the user's NekOS files of one kind live, outside the repository: `$<env_override>`
/// if set, else `$<xdg_var>/nekos/<sub>`, else `~/<home_default>/nekos/<sub>` (the XDG base
/// directory rules; `sub` may be empty).
pub fn user_dir(env_override: &str, xdg_var: &str, home_default: &str, sub: &str) -> PathBuf {
    if let Some(d) = std::env::var_os(env_override).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = match std::env::var_os(xdg_var) {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(home_default),
    };
    let dir = base.join("nekos");
    if sub.is_empty() { dir } else { dir.join(sub) }
}

/// Seconds since the Unix epoch (certificate validity; never written into an artifact).
pub fn now_unix() -> Result<i64> {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    i64::try_from(d.as_secs()).context("the system clock is out of range")
}

/// The OS random number generator, in the shape `nekos_ospkg`'s key generation takes.
pub fn os_random(buf: &mut [u8]) -> std::result::Result<(), String> {
    getrandom::fill(buf).map_err(|e| format!("OS random number generator: {e}"))
}
