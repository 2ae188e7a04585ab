//! The pins: every input NekOS takes from a registry is recorded in a data file, never in
//! code. This module reads those files (strictly: a missing or malformed field is an error
//! naming the file, the table and the key) and edits values in place; the build steps
//! read their pins here. Moving the pins to what the registries serve now is
//! `cargo nekos lock` ([`crate::lock`]).

use anyhow::{Context, Result, anyhow, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const KERNEL_LOCK: &str = "kernel-config/linux-source.lock";
pub const EDK2_LOCK: &str = "firmware/edk2.lock";
pub const DEBIAN_LOCK: &str = "packaging/debian-packages.lock";
pub const CERTS_DIR: &str = "packaging/varstore-certs";
pub const CERTS_LOCK: &str = "packaging/varstore-certs/certs.lock";
pub const HOST_SETUP: &str = "packaging/host-setup.sh";
/// The suite whose edk2 source the firmware follows (the lock's comment says why trixie).
pub const EDK2_SUITE: &str = "trixie";
/// The line of host-setup.sh that pins the judge virt-fw-vars; the version follows it.
pub const VENV_PIN_PREFIX: &str = "ensure_venv /opt/nekos/venv virt-firmware ";

const FIX: &str =
    "fix the value, or run `cargo nekos lock` to rewrite the pins from what the registries serve";

/// A parsed lock file; errors name the file, the table and the field.
pub struct LockFile {
    pub path: PathBuf,
    pub text: String,
    doc: toml::Table,
}

fn place(path: &Path, table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) => format!("{}: [{t}] {key}", path.display()),
        None => format!("{}: {key}", path.display()),
    }
}

/// 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LockFile {
    pub fn load(path: &Path) -> Result<LockFile> {
        let text = fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {} (it is part of the repository: restore it with git)",
                path.display()
            )
        })?;
        LockFile::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<LockFile> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| anyhow!("{}: not valid TOML: {e}", path.display()))?;
        Ok(LockFile {
            path: path.to_path_buf(),
            text: text.to_string(),
            doc,
        })
    }

    fn table(&self, table: Option<&str>) -> Result<&toml::Table> {
        match table {
            None => Ok(&self.doc),
            Some(t) => match self.doc.get(t) {
                Some(toml::Value::Table(tab)) => Ok(tab),
                Some(other) => bail!(
                    "{}: [{t}] must be a table, found {}",
                    self.path.display(),
                    other.type_str()
                ),
                None => bail!("{}: table [{t}] is missing; {FIX}", self.path.display()),
            },
        }
    }

    fn value(&self, table: Option<&str>, key: &str) -> Result<Option<&toml::Value>> {
        Ok(self.table(table)?.get(key))
    }

    /// A required string field.
    pub fn string(&self, table: Option<&str>, key: &str) -> Result<String> {
        self.opt_string(table, key)?.ok_or_else(|| {
            anyhow!(
                "{} is missing (expected a string); {FIX}",
                place(&self.path, table, key)
            )
        })
    }

    pub fn opt_string(&self, table: Option<&str>, key: &str) -> Result<Option<String>> {
        match self.value(table, key)? {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(other) => bail!(
                "{} is {}, expected a non-empty string; {FIX}",
                place(&self.path, table, key),
                other
            ),
        }
    }

    /// A required sha256 field: 64 lowercase hex digits.
    pub fn sha256(&self, table: Option<&str>, key: &str) -> Result<String> {
        let s = self.string(table, key)?;
        check_sha256_field(&self.path, table, key, &s)?;
        Ok(s)
    }

    pub fn opt_sha256(&self, table: Option<&str>, key: &str) -> Result<Option<String>> {
        let s = self.opt_string(table, key)?;
        if let Some(s) = &s {
            check_sha256_field(&self.path, table, key, s)?;
        }
        Ok(s)
    }

    pub fn integer(&self, table: Option<&str>, key: &str) -> Result<i64> {
        match self.value(table, key)? {
            Some(toml::Value::Integer(n)) => Ok(*n),
            Some(other) => bail!(
                "{} is {other}, expected an integer; {FIX}",
                place(&self.path, table, key)
            ),
            None => bail!(
                "{} is missing (expected an integer); {FIX}",
                place(&self.path, table, key)
            ),
        }
    }

    pub fn string_list(&self, table: Option<&str>, key: &str) -> Result<Vec<String>> {
        match self.value(table, key)? {
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "{} holds {other}, expected strings; {FIX}",
                        place(&self.path, table, key)
                    ),
                })
                .collect(),
            Some(other) => bail!(
                "{} is {other}, expected a list of strings; {FIX}",
                place(&self.path, table, key)
            ),
            None => bail!(
                "{} is missing (expected a list of strings); {FIX}",
                place(&self.path, table, key)
            ),
        }
    }

    /// The names of the top-level tables, in file order (toml keeps keys sorted, so the
    /// order comes from the text).
    pub fn table_names(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| {
                let t = l.trim();
                (t.starts_with('[') && !t.starts_with("[["))
                    .then(|| t.trim_matches(|c| c == '[' || c == ']').to_string())
            })
            .filter(|name| matches!(self.doc.get(name), Some(toml::Value::Table(_))))
            .collect()
    }
}

fn check_sha256_field(path: &Path, table: Option<&str>, key: &str, s: &str) -> Result<()> {
    if !is_sha256(s) {
        bail!(
            "{} is {s:?}, expected a sha256 (64 lowercase hex digits); {FIX}",
            place(path, table, key)
        );
    }
    Ok(())
}

/// The text of a TOML key as written in our lock files: bare if it can be, else quoted.
fn key_text(key: &str) -> String {
    if key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// Replaces the value of `key` in `[table]` (or before the first table for `None`) with the
/// TOML literal `literal`, leaving every other byte — comments, order, other tables, `[[…]]`
/// entries — as it was. The key must already be there: a lock file's shape is fixed.
pub fn set_value(text: &str, table: Option<&str>, key: &str, literal: &str) -> Result<String> {
    let wanted_key = key_text(key);
    let mut current: Option<String> = None;
    let mut out = String::with_capacity(text.len() + literal.len());
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("[[") {
            // An array-of-tables entry never matches a plain table name.
            current = Some(format!("[[{}", t.trim_matches(|c| c == '[' || c == ']')));
        } else if t.starts_with('[') {
            current = Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        }
        let in_table = current.as_deref() == table;
        let is_key = t
            .strip_prefix(wanted_key.as_str())
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if in_table && is_key && !done {
            let indent = &line[..line.len() - line.trim_start().len()];
            let eol = if line.ends_with('\n') { "\n" } else { "" };
            out.push_str(&format!("{indent}{wanted_key} = {literal}{eol}"));
            done = true;
        } else {
            out.push_str(line);
        }
    }
    if !done {
        bail!(
            "cannot update {}: no `{wanted_key} = …` line{}",
            key,
            table.map(|t| format!(" in [{t}]")).unwrap_or_default()
        );
    }
    Ok(out)
}

pub fn set_string(text: &str, table: Option<&str>, key: &str, value: &str) -> Result<String> {
    set_value(
        text,
        table,
        key,
        &toml::Value::String(value.to_string()).to_string(),
    )
}

/// A pinned .deb from `packaging/debian-packages.lock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebPin {
    /// The Debian package: the table's `package` field, else the table's name.
    pub package: String,
    /// The lock file's table (differs from `package` for another architecture's pin of the
    /// same package, e.g. `[systemd-boot-efi-arm64]`).
    pub table: String,
    pub suite: String,
    pub version: String,
    pub deb_sha256: String,
    /// The file in the package the project uses, relative to the unpacked tree.
    pub file: Option<String>,
    pub file_sha256: Option<String>,
    /// `Some(debian arch)` for a package of another architecture than the host's: apt on an
    /// amd64 host knows no arm64 packages unless dpkg's foreign architectures change, so such
    /// a .deb is downloaded from the archive's pool ([`DebPin::pool_url`]) and checked by its
    /// pinned sha256 instead of `apt-get download`.
    pub arch: Option<String>,
    /// The source package (names the pool directory); needed with `arch`.
    pub source: Option<String>,
}

/// The Debian archive the pool downloads come from (the one packaging/host-setup.sh gives
/// apt); `NEKOS_DEBIAN_MIRROR` names another with the same `pool/` layout. Plain HTTP as apt
/// uses it: a pinned .deb is authenticated by its sha256, not by the transport. Only `cargo
/// nekos lock`, which learns a new hash from the download, insists on HTTPS (Mozilla's roots,
/// plus `NEKOS_DOWNLOAD_CA`).
pub const DEBIAN_MIRROR_ENV: &str = "NEKOS_DEBIAN_MIRROR";
pub const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// Bounds of one .deb download (systemd-boot-efi is ~130 KB).
const DEB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
const DEB_MAX_BYTES: u64 = 64 << 20;

/// The pool path of a binary package: `pool/main/<s or libs>/<source>/<package>_<version
/// without epoch>_<arch>.deb` (Debian policy's archive layout).
pub fn pool_path(source: &str, package: &str, version: &str, arch: &str) -> String {
    let prefix = if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..source.len().min(1)]
    };
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    format!("pool/main/{prefix}/{source}/{package}_{version}_{arch}.deb")
}

impl DebPin {
    pub fn from_lock(lock: &LockFile, table: &str) -> Result<DebPin> {
        let t = Some(table);
        let arch = lock.opt_string(t, "arch")?;
        let source = lock.opt_string(t, "source")?;
        if arch.is_some() && source.is_none() {
            bail!(
                "{} is missing (a pin with `arch` is downloaded from the pool, whose directory is named by the source package); {FIX}",
                place(&lock.path, t, "source")
            );
        }
        Ok(DebPin {
            package: lock
                .opt_string(t, "package")?
                .unwrap_or_else(|| table.to_string()),
            table: table.to_string(),
            suite: lock.string(t, "suite")?,
            version: lock.string(t, "version")?,
            deb_sha256: lock.sha256(t, "deb_sha256")?,
            file: lock.opt_string(t, "file")?,
            file_sha256: lock.opt_sha256(t, "file_sha256")?,
            arch,
            source,
        })
    }

    /// The pool URL of this pin's .deb (for a pin with `arch`), on `mirror`.
    pub fn pool_url(&self, mirror: &str, version: &str) -> Option<String> {
        let (arch, source) = (self.arch.as_deref()?, self.source.as_deref()?);
        Some(format!(
            "{}/{}",
            mirror.trim_end_matches('/'),
            pool_path(source, &self.package, version, arch)
        ))
    }

    /// The unpacked package (cached by the .deb's sha256).
    pub fn fetch(&self) -> Result<PathBuf> {
        match &self.arch {
            None => fetch_deb(&self.package, &self.version, &self.deb_sha256),
            Some(_) => fetch_pool_deb(self, &self.version, Some(&self.deb_sha256)).map(|(d, _)| d),
        }
    }

    /// The file in the package, fetched (cached) and checked against `file_sha256` if pinned.
    pub fn fetch_file(&self) -> Result<PathBuf> {
        let dir = self.fetch()?;
        let file = self.file.as_deref().ok_or_else(|| {
            anyhow!(
                "{DEBIAN_LOCK}: [{}] file is missing (the path of the file we use in the package)",
                self.table
            )
        })?;
        let p = dir.join(file);
        if let Some(want) = &self.file_sha256 {
            let got = crate::util::sha256_file(&p)?;
            if &got != want {
                bail!(
                    "{} has sha256 {got}, {DEBIAN_LOCK} [{}] file_sha256 pins {want}; run `cargo nekos lock` if Debian's package changed",
                    p.display(),
                    self.table
                );
            }
        }
        Ok(p)
    }
}

/// Downloads `pin.package` `version` for `pin.arch` from the archive's pool, checks it and
/// unpacks it into the cache (`deb-<sha256>/`, as [`fetch_deb`]). With `want_sha256` the
/// bytes must have that hash (nothing is written otherwise); without it (`cargo nekos lock`
/// moving the pin) the download is trusted as HTTPS from the archive and its control fields
/// must name the package, version and architecture. Returns the directory and the sha256.
pub fn fetch_pool_deb(
    pin: &DebPin,
    version: &str,
    want_sha256: Option<&str>,
) -> Result<(PathBuf, String)> {
    let root = crate::cache::cache_root();
    if let Some(sha) = want_sha256 {
        let dir = root.join(format!("deb-{sha}"));
        if dir.join(".complete").exists() {
            return Ok((dir, sha.to_string()));
        }
    }
    let arch = pin.arch.as_deref().unwrap_or("amd64");
    let mirror = std::env::var(DEBIAN_MIRROR_ENV)
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| DEBIAN_MIRROR.to_string());
    let mut url = pin.pool_url(&mirror, version).ok_or_else(|| {
        anyhow!(
            "{DEBIAN_LOCK}: [{}] needs `arch` and `source` to be downloaded from the pool",
            pin.table
        )
    })?;
    if want_sha256.is_none()
        && let Some(rest) = url.strip_prefix("http://")
    {
        // No pin to check the bytes against: the transport must authenticate the archive.
        url = format!("https://{rest}");
    }
    eprintln!(
        "nekos: downloading {} {version} ({arch}) from {url}",
        pin.package
    );
    let client = crate::download::Client::new(
        crate::download::extra_ca_from_env()?.as_deref(),
        DEB_TIMEOUT,
        DEB_MAX_BYTES,
    )?;
    let bytes = client.get(&url).map_err(|e| {
        anyhow!(
            "cannot download {url}: {e:#}\n  {DEBIAN_LOCK} [{}] pins {} {version} ({arch}), which is not in the cache ({}); \
             if Debian has dropped {version} from the pool, move the pin with `cargo nekos lock` \
             (or set {DEBIAN_MIRROR_ENV} to a mirror, e.g. https://snapshot.debian.org/archive/debian/<date>; \
             behind a TLS-intercepting proxy, {} names its CA)",
            pin.table,
            pin.package,
            root.display(),
            crate::download::CA_ENV
        )
    })?;
    let sha = crate::util::sha256_hex(&bytes);
    if let Some(want) = want_sha256
        && sha != want
    {
        bail!(
            "{url} has sha256 {sha}, {DEBIAN_LOCK} [{}] deb_sha256 pins {want}; nothing was written. \
             If Debian re-uploaded {} {version}, check why, then `cargo nekos lock`",
            pin.table,
            pin.package
        );
    }
    let dir = root.join(format!("deb-{sha}"));
    if dir.join(".complete").exists() {
        return Ok((dir, sha));
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let work = root.join(format!(".deb-{sha}.tmp-{}", crate::util::unique_suffix()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let deb = work.join(format!("{}_{arch}.deb", pin.package));
        std::fs::write(&deb, &bytes)?;
        let control =
            crate::util::run_capture(Command::new("dpkg-deb").arg("-f").arg(&deb).args([
                "Package",
                "Version",
                "Architecture",
            ]))
            .with_context(|| format!("reading the control fields of {url} (dpkg-deb -f)"))?;
        check_control(&control, &pin.package, version, arch)
            .with_context(|| format!("{url}: not the pinned package"))?;
        let tree = work.join("tree");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .status()
            .context("running dpkg-deb -x (package dpkg)")?;
        if !st.success() {
            bail!("dpkg-deb -x {url} failed");
        }
        std::fs::write(
            tree.join(".complete"),
            format!("{} {version} {arch} {sha}\n", pin.package),
        )?;
        match std::fs::rename(&tree, &dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.join(".complete").exists() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("moving into {}", dir.display())),
        }
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    Ok((dir, sha))
}

/// Checks `dpkg-deb -f DEB Package Version Architecture` output against what was asked for.
pub fn check_control(control: &str, package: &str, version: &str, arch: &str) -> Result<()> {
    let field = |name: &str| {
        control.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        })
    };
    for (name, want) in [
        ("Package", package),
        ("Version", version),
        ("Architecture", arch),
    ] {
        let got = field(name);
        if got.as_deref() != Some(want) {
            bail!(
                "its control field {name} is {}, expected {want}",
                got.as_deref().unwrap_or("missing")
            );
        }
    }
    Ok(())
}

/// The pin of table `[package]` in `packaging/debian-packages.lock`.
pub fn debian_pin(package: &str) -> Result<DebPin> {
    let root = crate::util::workspace_root()?;
    DebPin::from_lock(&LockFile::load(&root.join(DEBIAN_LOCK))?, package)
}

/// From `apt-cache policy PKG`: `Installed:` and `Candidate:` (None for "(none)").
pub fn parse_policy_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .filter(|v| v != "(none)")
}

/// Downloads `package=version` (a Debian .deb) with apt-get, checks its SHA-256, unpacks it,
/// and returns the directory it was unpacked into (cached; an entry appears only complete).
pub fn fetch_deb(package: &str, version: &str, deb_sha256: &str) -> Result<PathBuf> {
    let root = crate::cache::cache_root();
    let dir = root.join(format!("deb-{deb_sha256}"));
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let work = root.join(format!(
        ".deb-{deb_sha256}.tmp-{}",
        crate::util::unique_suffix()
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let spec = format!("{package}={version}");
        let out = Command::new("apt-get")
            .args(["download", "-q", &spec])
            .current_dir(&work)
            .output()
            .with_context(|| format!("running apt-get download {spec} (is this Debian?)"))?;
        if !out.status.success() {
            // Not in the cache and not served (any more): name the pin, what apt serves and
            // what to run.
            let served = Command::new("apt-cache")
                .args(["policy", package])
                .output()
                .ok()
                .and_then(|o| parse_policy_field(&String::from_utf8_lossy(&o.stdout), "Candidate"))
                .unwrap_or_else(|| "nothing".into());
            bail!(
                "apt-get download {spec} failed: {}\n  {} pins {package} {version} (.deb sha256 {deb_sha256}), \
                 which is not in the cache ({}); apt's candidate is {served}.\n  \
                 Run packaging/host-setup.sh (apt sources) and apt-get update; if Debian has dropped {version}, \
                 move the pin with `cargo nekos lock`",
                String::from_utf8_lossy(&out.stderr).trim(),
                DEBIAN_LOCK,
                dir.display()
            );
        }
        let deb = std::fs::read_dir(&work)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| anyhow!("apt-get download {spec} produced no .deb"))?;
        let got = crate::util::sha256_file(&deb)?;
        if got != deb_sha256 {
            bail!(
                "{} has SHA-256 {got}, expected {deb_sha256} (pinned in {}); if Debian re-uploaded \
                 {package} {version}, check why, then `cargo nekos lock`",
                deb.display(),
                DEBIAN_LOCK
            );
        }
        let tree = work.join("tree");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .status()
            .context("running dpkg-deb -x (package dpkg)")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed", deb.display());
        }
        std::fs::write(
            tree.join(".complete"),
            format!("{package} {version} {deb_sha256}\n"),
        )?;
        match std::fs::rename(&tree, &dir) {
            Ok(()) => Ok(()),
            // Someone else finished first.
            Err(_) if dir.join(".complete").exists() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("moving into {}", dir.display())),
        }
    })();
    let _ = std::fs::remove_dir_all(&work);
    result?;
    Ok(dir)
}
