//! Pins and `cargo nekos lock`.
//!
//! Every input NekOS takes from a registry is pinned in a data file, never in code, so that
//! one command can move the pins when the registries move on:
//!
//! - `kernel-config/linux-source.lock`: Debian's `linux-source-6.12` (version, tarball sha256);
//! - `firmware/edk2.lock`, tables `[orig]` and `[debian]`: Debian trixie's edk2 source
//!   tarballs (the `[[patch]]` entries are upstream commits and are not touched here);
//! - `packaging/debian-packages.lock`: the .debs we unpack (systemd-stub for x64 and aa64,
//!   ukify, ovmf-amdsev; another architecture's .deb comes from the archive's pool);
//! - `packaging/varstore-certs/certs.lock`: the certificates of the Microsoft store, from the
//!   PyPI wheel of virt-firmware, and the judge's venv pin in `packaging/host-setup.sh`.
//!
//! `cargo nekos lock` asks apt and pip what they serve now, prints old → new for every pin
//! and rewrites the lock files in place (temp file + rename; only the values change, comments
//! and order stay). `--check` prints the same and writes nothing; drift exits non-zero.

use crate::pins::*;
use anyhow::{Context, Result, anyhow, bail};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One pin that moves (or would move).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The file, relative to the workspace root.
    pub file: String,
    /// `[table] field`.
    pub field: String,
    pub old: String,
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  {} {}: {} → {}",
            self.file, self.field, self.old, self.new
        )
    }
}

/// What `cargo nekos lock` prints: every change, then what happened or what to run.
pub fn drift_report(changes: &[Change], notes: &[String], check: bool) -> String {
    let mut s = String::new();
    if changes.is_empty() {
        s.push_str("nekos: every pin equals what the registries serve now\n");
    } else if check {
        s.push_str(&format!(
            "nekos: {} pin(s) differ from what the registries serve now (nothing written):\n",
            changes.len()
        ));
    } else {
        s.push_str(&format!("nekos: moved {} pin(s):\n", changes.len()));
    }
    for c in changes {
        s.push_str(&format!("{c}\n"));
    }
    for n in notes {
        s.push_str(&format!("  note: {n}\n"));
    }
    if !changes.is_empty() {
        if check {
            s.push_str("run `cargo nekos lock` to move them, then rebuild and run the tests that judge them\n");
        } else {
            s.push_str("rebuild (`cargo nekos build`) and run the tests that judge them; review with `git diff`\n");
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// What the registries serve (parsers are pure and tested; the commands need apt/pip).

/// From `apt-cache policy PKG`: the newest version that `suite` serves (apt lists versions
/// newest first; each is followed by the sources that have it, e.g.
/// `100 http://deb.debian.org/debian trixie/main amd64 Packages`).
pub fn parse_policy_suite(text: &str, suite: &str) -> Option<String> {
    let mut version: Option<String> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `     VERSION PRIO`, or ` *** VERSION PRIO` for the installed one; sources are
        // indented deeper.
        let is_version_line = line.starts_with(" *** ")
            || (line.starts_with("     ") && !line.starts_with("        "));
        if is_version_line {
            let w: Vec<&str> = words.iter().copied().filter(|w| *w != "***").collect();
            version = w.first().map(|v| v.to_string());
        } else if words.len() >= 3 && words[1].contains("://") {
            let dist = words[2].split('/').next().unwrap_or_default();
            if dist == suite && version.is_some() {
                return version;
            }
        }
    }
    None
}

/// From `apt-cache show PKG=VERSION`: the `SHA256:` of the first stanza.
pub fn parse_show_sha256(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("SHA256:").map(|v| v.trim().to_string()))
}

/// One file of `apt-get source --print-uris`: `'URI' NAME SIZE SHA256:HEX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceUri {
    pub uri: String,
    pub name: String,
    pub sha256: String,
}

pub fn parse_print_uris(text: &str) -> Vec<SourceUri> {
    text.lines()
        .filter(|l| l.starts_with('\''))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let uri = w.next()?.trim_matches('\'').to_string();
            let name = w.next()?.to_string();
            let _size = w.next()?;
            let sha256 = w.next()?.strip_prefix("SHA256:")?.to_string();
            Some(SourceUri { uri, name, sha256 })
        })
        .collect()
}

/// `pip index versions NAME` prints `NAME (LATEST)` first.
pub fn parse_pip_latest(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(name)
            .and_then(|r| r.trim().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .map(str::to_string)
    })
}

/// Seconds since the epoch of a Debian changelog date (RFC 2822:
/// `Sat, 08 Nov 2025 11:06:17 -0700`), the firmware's SOURCE_DATE_EPOCH.
pub fn parse_rfc2822(date: &str) -> Result<i64> {
    let bad =
        || anyhow!("{date:?} is not an RFC 2822 date (like \"Sat, 08 Nov 2025 11:06:17 -0700\")");
    let rest = date.split_once(',').map_or(date, |(_, r)| r).trim();
    let w: Vec<&str> = rest.split_whitespace().collect();
    if w.len() != 5 {
        return Err(bad());
    }
    let day: i64 = w[0].parse().map_err(|_| bad())?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == w[1]).ok_or_else(bad)? as i64 + 1;
    let year: i64 = w[2].parse().map_err(|_| bad())?;
    let hms: Vec<i64> = w[3]
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    if hms.len() != 3 {
        return Err(bad());
    }
    let tz = w[4];
    if tz.len() != 5 {
        return Err(bad());
    }
    let sign = match &tz[..1] {
        "+" => 1,
        "-" => -1,
        _ => return Err(bad()),
    };
    let tzh: i64 = tz[1..3].parse().map_err(|_| bad())?;
    let tzm: i64 = tz[3..5].parse().map_err(|_| bad())?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Ok(days * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2] - sign * (tzh * 3600 + tzm * 60))
}

/// The date of the top entry of a debian/changelog (its first ` -- Name <mail>  DATE` line).
pub fn changelog_top_date(changelog: &str) -> Result<String> {
    changelog
        .lines()
        .find_map(|l| {
            l.strip_prefix(" -- ")
                .and_then(|r| r.split_once(">  "))
                .map(|(_, d)| d.trim().to_string())
        })
        .ok_or_else(|| anyhow!("no ` -- maintainer  date` trailer line in debian/changelog"))
}

fn run(cmd: &mut Command) -> Result<String> {
    crate::util::run_capture(cmd)
}

fn apt_policy(package: &str) -> Result<String> {
    run(Command::new("apt-cache").args(["policy", package])).with_context(|| {
        format!("asking apt about {package} (run packaging/host-setup.sh, then apt-get update)")
    })
}

fn apt_deb_sha256(package: &str, version: &str) -> Result<String> {
    let text = run(Command::new("apt-cache").args(["show", &format!("{package}={version}")]))?;
    parse_show_sha256(&text)
        .ok_or_else(|| anyhow!("apt-cache show {package}={version} printed no SHA256"))
}

// ---------------------------------------------------------------------------------------
// The refreshers. Each compares one lock file with the registry, records the changes and,
// unless checking, returns the new text.

struct Refresh {
    check: bool,
    changes: Vec<Change>,
    notes: Vec<String>,
}

impl Refresh {
    fn change(&mut self, file: &str, field: String, old: &str, new: &str) {
        if old != new {
            self.changes.push(Change {
                file: file.into(),
                field,
                old: old.into(),
                new: new.into(),
            });
        }
    }
}

fn refresh_kernel(root: &Path, r: &mut Refresh) -> Result<Option<String>> {
    let lock = crate::kernel::read_lock(root)?;
    let policy = apt_policy(&lock.package)?;
    let Some(candidate) = parse_policy_field(&policy, "Candidate") else {
        bail!(
            "apt serves no {} (run packaging/host-setup.sh, then apt-get update)",
            lock.package
        );
    };
    if candidate == lock.version {
        return Ok(None);
    }
    let installed = parse_policy_field(&policy, "Installed");
    let sha = if installed.as_deref() == Some(candidate.as_str()) {
        // The installed tarball is the one Debian serves: hash it and keep a copy in the
        // cache, so the pin stays buildable after the next security update replaces it.
        let sha = crate::util::sha256_file(Path::new(crate::kernel::TARBALL))?;
        if !r.check {
            crate::kernel::keep_in_cache(Path::new(crate::kernel::TARBALL), &sha)?;
        }
        sha
    } else if r.check {
        r.notes.push(format!(
            "{} {candidate} is not installed: its tarball sha256 is known only after `cargo nekos lock` fetches it",
            lock.package
        ));
        "(not fetched)".into()
    } else {
        crate::kernel::fetch_source(&candidate)?
    };
    r.change(KERNEL_LOCK, "version".into(), &lock.version, &candidate);
    r.change(KERNEL_LOCK, "sha256".into(), &lock.sha256, &sha);
    let mut text = fs::read_to_string(root.join(KERNEL_LOCK))?;
    text = set_string(&text, None, "version", &candidate)?;
    text = set_string(&text, None, "sha256", &sha)?;
    Ok(Some(text))
}

fn refresh_edk2(root: &Path, r: &mut Refresh) -> Result<Option<String>> {
    let path = root.join(EDK2_LOCK);
    let lock = LockFile::load(&path)?;
    let old_orig = (
        lock.string(Some("orig"), "file")?,
        lock.sha256(Some("orig"), "sha256")?,
    );
    let old_deb = (
        lock.string(Some("debian"), "file")?,
        lock.sha256(Some("debian"), "sha256")?,
    );
    let old_version = lock.string(Some("debian"), "version")?;
    let old_epoch = lock.integer(Some("debian"), "source_date_epoch")?;
    let out = run(Command::new("apt-get").args([
        "source",
        "--print-uris",
        &format!("edk2/{EDK2_SUITE}"),
    ]))
    .with_context(|| {
        format!(
            "asking apt for the edk2 source in {EDK2_SUITE} (host-setup.sh adds its deb-src line)"
        )
    })?;
    let uris = parse_print_uris(&out);
    let find = |pat: &str| uris.iter().find(|u| u.name.contains(pat)).cloned();
    let (Some(orig), Some(deb), Some(dsc)) =
        (find(".orig.tar."), find(".debian.tar."), find(".dsc"))
    else {
        bail!(
            "apt-get source --print-uris edk2/{EDK2_SUITE} listed no orig/debian tarball or .dsc:\n{out}"
        );
    };
    let version = dsc
        .name
        .strip_prefix("edk2_")
        .and_then(|n| n.strip_suffix(".dsc"))
        .ok_or_else(|| anyhow!("unexpected .dsc name {}", dsc.name))?
        .to_string();
    if (orig.name.as_str(), orig.sha256.as_str()) == (old_orig.0.as_str(), old_orig.1.as_str())
        && (deb.name.as_str(), deb.sha256.as_str()) == (old_deb.0.as_str(), old_deb.1.as_str())
        && version == old_version
    {
        return Ok(None);
    }
    // SOURCE_DATE_EPOCH comes from the new upload's changelog: fetch the (small) debian
    // tarball, check it against the sha256 apt published, read debian/changelog.
    let epoch = if r.check {
        None
    } else {
        let tmp = crate::cache::cache_root()
            .join("tmp")
            .join(format!("lock-edk2-{}", std::process::id()));
        fs::create_dir_all(&tmp)?;
        let file = tmp.join(&deb.name);
        let result = (|| -> Result<i64> {
            run(Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(&file)
                .arg(&deb.uri))
            .with_context(|| format!("downloading {}", deb.uri))?;
            let got = crate::util::sha256_file(&file)?;
            if got != deb.sha256 {
                bail!(
                    "{} has sha256 {got}, apt's Sources index says {}",
                    deb.uri,
                    deb.sha256
                );
            }
            let changelog = run(Command::new("tar")
                .arg("-xJOf")
                .arg(&file)
                .arg("debian/changelog"))?;
            parse_rfc2822(&changelog_top_date(&changelog)?)
        })();
        let _ = fs::remove_dir_all(&tmp);
        Some(result?)
    };
    r.change(EDK2_LOCK, "[orig] file".into(), &old_orig.0, &orig.name);
    r.change(EDK2_LOCK, "[orig] sha256".into(), &old_orig.1, &orig.sha256);
    r.change(EDK2_LOCK, "[debian] file".into(), &old_deb.0, &deb.name);
    r.change(EDK2_LOCK, "[debian] sha256".into(), &old_deb.1, &deb.sha256);
    r.change(EDK2_LOCK, "[debian] version".into(), &old_version, &version);
    let Some(epoch) = epoch else {
        r.notes.push(format!(
            "{EDK2_LOCK}: source_date_epoch is read from the new changelog by `cargo nekos lock`"
        ));
        return Ok(None);
    };
    r.change(
        EDK2_LOCK,
        "[debian] source_date_epoch".into(),
        &old_epoch.to_string(),
        &epoch.to_string(),
    );
    r.notes.push(format!(
        "{EDK2_LOCK}: the [[patch]] entries were not touched; check they still apply to edk2 {version}"
    ));
    let mut text = lock.text.clone();
    text = set_string(&text, Some("orig"), "file", &orig.name)?;
    text = set_string(&text, Some("orig"), "sha256", &orig.sha256)?;
    text = set_string(&text, Some("debian"), "file", &deb.name)?;
    text = set_string(&text, Some("debian"), "sha256", &deb.sha256)?;
    text = set_string(&text, Some("debian"), "version", &version)?;
    text = set_value(
        &text,
        Some("debian"),
        "source_date_epoch",
        &epoch.to_string(),
    )?;
    Ok(Some(text))
}

fn refresh_debian(root: &Path, r: &mut Refresh) -> Result<Option<String>> {
    let lock = LockFile::load(&root.join(DEBIAN_LOCK))?;
    let mut text = lock.text.clone();
    let mut moved = false;
    for name in lock.table_names() {
        let pin = DebPin::from_lock(&lock, &name)?;
        let policy = apt_policy(&pin.package)?;
        let Some(version) = parse_policy_suite(&policy, &pin.suite) else {
            bail!(
                "apt knows no {} in {} ({DEBIAN_LOCK} [{name}] suite); run packaging/host-setup.sh (apt sources) and apt-get update",
                pin.package,
                pin.suite
            );
        };
        if pin.arch.is_some() {
            // Another architecture: apt knows only the host's, so the version follows the
            // host architecture's package in the same suite (one source upload builds both).
            if refresh_foreign_deb(&pin, &version, r, &mut text)? {
                moved = true;
            }
            continue;
        }
        let deb_sha = apt_deb_sha256(&name, &version)?;
        if version == pin.version && deb_sha == pin.deb_sha256 {
            continue;
        }
        r.change(
            DEBIAN_LOCK,
            format!("[{name}] version"),
            &pin.version,
            &version,
        );
        r.change(
            DEBIAN_LOCK,
            format!("[{name}] deb_sha256"),
            &pin.deb_sha256,
            &deb_sha,
        );
        text = set_string(&text, Some(&name), "version", &version)?;
        text = set_string(&text, Some(&name), "deb_sha256", &deb_sha)?;
        if let (Some(old), Some(file)) = (&pin.file_sha256, &pin.file) {
            if r.check {
                r.change(
                    DEBIAN_LOCK,
                    format!("[{name}] file_sha256"),
                    old,
                    "(after `cargo nekos lock` fetches it)",
                );
            } else {
                let dir = crate::pins::fetch_deb(&name, &version, &deb_sha)?;
                let new = crate::util::sha256_file(&dir.join(file))?;
                r.change(DEBIAN_LOCK, format!("[{name}] file_sha256"), old, &new);
                text = set_string(&text, Some(&name), "file_sha256", &new)?;
            }
        }
        moved = true;
    }
    Ok(moved.then_some(text))
}

/// A pin of another architecture ([`DebPin::arch`]) moved to `version`: its .deb comes from
/// the archive's pool (HTTPS), its sha256 is what was downloaded (control fields checked),
/// and its file's sha256 is read from the unpacked tree. `--check` cannot know the new
/// hashes without downloading and says so. Returns whether the pin moves.
fn refresh_foreign_deb(
    pin: &DebPin,
    version: &str,
    r: &mut Refresh,
    text: &mut String,
) -> Result<bool> {
    let name = &pin.table;
    if version == pin.version {
        return Ok(false);
    }
    r.change(
        DEBIAN_LOCK,
        format!("[{name}] version"),
        &pin.version,
        version,
    );
    *text = set_string(text, Some(name), "version", version)?;
    if r.check {
        r.change(
            DEBIAN_LOCK,
            format!("[{name}] deb_sha256"),
            &pin.deb_sha256,
            "(after `cargo nekos lock` downloads it)",
        );
        return Ok(true);
    }
    let (dir, sha) = crate::pins::fetch_pool_deb(pin, version, None)?;
    r.change(
        DEBIAN_LOCK,
        format!("[{name}] deb_sha256"),
        &pin.deb_sha256,
        &sha,
    );
    *text = set_string(text, Some(name), "deb_sha256", &sha)?;
    if let (Some(old), Some(file)) = (&pin.file_sha256, &pin.file) {
        let new = crate::util::sha256_file(&dir.join(file))?;
        r.change(DEBIAN_LOCK, format!("[{name}] file_sha256"), old, &new);
        *text = set_string(text, Some(name), "file_sha256", &new)?;
    }
    Ok(true)
}

/// pip: the judge's venv if it is there (it has a pip that knows `index`), else the host's.
fn pip() -> Command {
    let venv = Path::new("/opt/nekos/venv/bin/pip");
    if venv.is_file() {
        Command::new(venv)
    } else {
        let mut c = Command::new("python3");
        c.args(["-m", "pip"]);
        c
    }
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            list_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Returns (new certs.lock text, new host-setup.sh text, certificate files to write).
type CertsUpdate = (String, String, Vec<(PathBuf, Vec<u8>)>);

fn refresh_certs(root: &Path, r: &mut Refresh) -> Result<Option<CertsUpdate>> {
    let lock = LockFile::load(&root.join(CERTS_LOCK))?;
    let package = lock.string(None, "package")?;
    let old = lock.string(None, "version")?;
    let host_setup = fs::read_to_string(root.join(HOST_SETUP))
        .with_context(|| format!("cannot read {}", root.join(HOST_SETUP).display()))?;
    let venv_pin = venv_pin(&host_setup).ok_or_else(|| {
        anyhow!("{HOST_SETUP}: no `{VENV_PIN_PREFIX}VERSION` line (the judge's venv pin)")
    })?;
    let out = run(pip().args(["index", "versions", &package]))
        .with_context(|| format!("asking PyPI for {package} (pip index versions)"))?;
    let latest = parse_pip_latest(&out, &package).ok_or_else(|| {
        anyhow!("pip index versions {package} printed no `{package} (VERSION)` line:\n{out}")
    })?;
    if latest == old && venv_pin == old {
        return Ok(None);
    }
    r.change(CERTS_LOCK, "version".into(), &old, &latest);
    r.change(
        HOST_SETUP,
        "virt-firmware venv pin".into(),
        &venv_pin,
        &latest,
    );
    if r.check {
        return Ok(None);
    }
    let tmp = crate::cache::cache_root()
        .join("tmp")
        .join(format!("lock-certs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let result = (|| -> Result<CertsUpdate> {
        run(pip()
            .args([
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                &format!("{package}=={latest}"),
                "-d",
            ])
            .arg(&tmp))?;
        let mut wheels = Vec::new();
        list_files(&tmp, &mut wheels);
        let wheel = wheels
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or_else(|| anyhow!("pip download {package}=={latest} gave no wheel"))?;
        let wheel_name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wheel_sha = crate::util::sha256_file(&wheel)?;
        let unpacked = tmp.join("unpacked");
        run(Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked))?;
        let certs_root = unpacked.join(lock.string(None, "certs_in_wheel")?);
        let mut text = lock.text.clone();
        text = set_string(&text, None, "version", &latest)?;
        text = set_string(&text, None, "wheel", &wheel_name)?;
        r.change(
            CERTS_LOCK,
            "wheel_sha256".into(),
            &lock.sha256(None, "wheel_sha256")?,
            &wheel_sha,
        );
        text = set_string(&text, None, "wheel_sha256", &wheel_sha)?;
        let mut used = vec![lock.string(None, "pk")?];
        used.extend(lock.string_list(None, "kek")?);
        used.extend(lock.string_list(None, "db")?);
        let mut files = Vec::new();
        for name in &used {
            let found = find_file(&certs_root, name).ok_or_else(|| {
                anyhow!("{package} {latest} no longer ships {name} under {}: update {CERTS_LOCK} by hand", certs_root.display())
            })?;
            let bytes = fs::read(&found)?;
            let sha = crate::util::sha256_hex(&bytes);
            r.change(
                CERTS_LOCK,
                format!("[sha256] {name}"),
                &lock.sha256(Some("sha256"), name)?,
                &sha,
            );
            text = set_string(&text, Some("sha256"), name, &sha)?;
            files.push((root.join(CERTS_DIR).join(name), bytes));
        }
        // A certificate the new release adds for Microsoft is what moved the preset last
        // time (Option ROM UEFI CA 2023 in 26.10): name it, the preset's lists are a decision.
        let mut all = Vec::new();
        list_files(&certs_root.join("microsoft.com"), &mut all);
        for p in all {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if n.ends_with(".pem") && !used.contains(&n) && n != "ms-oem-pk-2023.pem" {
                r.notes.push(format!(
                    "{package} {latest} ships microsoft.com/{n}, which the preset does not enroll: compare \
                     virt/firmware/efi/efivar.py (add_microsoft_keys) and add it to `kek`/`db` in {CERTS_LOCK} if virt-fw-vars does"
                ));
            }
        }
        let host = host_setup.replacen(
            &format!("{VENV_PIN_PREFIX}{venv_pin} "),
            &format!("{VENV_PIN_PREFIX}{latest} "),
            1,
        );
        Ok((text, host, files))
    })();
    let _ = fs::remove_dir_all(&tmp);
    result.map(Some)
}

/// The virt-firmware version host-setup.sh installs into the judge's venv.
pub fn venv_pin(host_setup: &str) -> Option<String> {
    host_setup.lines().find_map(|l| {
        l.trim()
            .strip_prefix(VENV_PIN_PREFIX)
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// `cargo nekos lock [--check]`. Returns true when a pin differs (moved, or would move).
pub fn lock(root: &Path, check: bool) -> Result<bool> {
    let mut r = Refresh {
        check,
        changes: Vec::new(),
        notes: Vec::new(),
    };
    // Ask every registry first and write afterwards: a failure half-way writes nothing.
    let kernel = refresh_kernel(root, &mut r).context(KERNEL_LOCK)?;
    let edk2 = refresh_edk2(root, &mut r).context(EDK2_LOCK)?;
    let debian = refresh_debian(root, &mut r).context(DEBIAN_LOCK)?;
    let certs = refresh_certs(root, &mut r).context(CERTS_LOCK)?;
    if !check {
        if let Some(t) = kernel {
            crate::util::write_atomic(&root.join(KERNEL_LOCK), t.as_bytes())?;
        }
        if let Some(t) = edk2 {
            crate::util::write_atomic(&root.join(EDK2_LOCK), t.as_bytes())?;
        }
        if let Some(t) = debian {
            crate::util::write_atomic(&root.join(DEBIAN_LOCK), t.as_bytes())?;
        }
        if let Some((lock_text, host, files)) = certs {
            for (path, bytes) in files {
                crate::util::write_atomic(&path, &bytes)?;
            }
            crate::util::write_atomic(&root.join(CERTS_LOCK), lock_text.as_bytes())?;
            // Keep host-setup.sh executable: write_atomic creates 0644.
            let hs = root.join(HOST_SETUP);
            let mode = fs::metadata(&hs)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                .unwrap_or(0o755);
            crate::util::write_atomic_mode(&hs, host.as_bytes(), mode)?;
        }
    }
    print!("{}", drift_report(&r.changes, &r.notes, check));
    Ok(!r.changes.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const DEB: &str = "# c\n[systemd-boot-efi]\n# why\nsuite = \"trixie\"\nversion = \"1\"\ndeb_sha256 = \"390ecdcef9bbb753f51bb6d8f696bdae2f1dbedde7239c49ccb2512f137a8933\"\n";

    fn err(text: &str) -> String {
        let lock = LockFile::parse(Path::new("x/debian-packages.lock"), text).unwrap();
        format!(
            "{:#}",
            DebPin::from_lock(&lock, "systemd-boot-efi").unwrap_err()
        )
    }

    #[test]
    fn missing_field_names_file_table_and_field() {
        let e = err(&DEB.replace("version = \"1\"\n", ""));
        assert!(
            e.contains("x/debian-packages.lock: [systemd-boot-efi] version is missing"),
            "{e}"
        );
        assert!(e.contains("cargo nekos lock"), "{e}");
    }

    #[test]
    fn malformed_sha256_names_the_value_and_what_is_expected() {
        let e = err(&DEB.replace("390ecdce", "390ECDCE"));
        assert!(
            e.contains("[systemd-boot-efi] deb_sha256 is \"390ECDCE"),
            "{e}"
        );
        assert!(e.contains("64 lowercase hex digits"), "{e}");
        let e = err(&DEB.replace("7a8933\"", "7a893\""));
        assert!(e.contains("deb_sha256"), "{e}");
        let e = err(&DEB.replace("version = \"1\"", "version = 1"));
        assert!(
            e.contains("[systemd-boot-efi] version is 1, expected a non-empty string"),
            "{e}"
        );
    }

    const ARM64: &str = "[systemd-boot-efi-arm64]\npackage = \"systemd-boot-efi\"\narch = \"arm64\"\nsource = \"systemd\"\nsuite = \"trixie\"\nversion = \"1:257.13-1~deb13u1\"\ndeb_sha256 = \"0e4529d9a72b35c31f34151ef8a0df20f322cfef679f4f5439394e60505b91a2\"\n";

    #[test]
    fn foreign_arch_pin_names_its_package_and_pool_url() {
        let lock = LockFile::parse(Path::new("x/debian-packages.lock"), ARM64).unwrap();
        let pin = DebPin::from_lock(&lock, "systemd-boot-efi-arm64").unwrap();
        assert_eq!(pin.package, "systemd-boot-efi");
        assert_eq!(pin.table, "systemd-boot-efi-arm64");
        // The epoch is not part of the file name.
        assert_eq!(
            pin.pool_url("https://deb.debian.org/debian/", &pin.version)
                .unwrap(),
            "https://deb.debian.org/debian/pool/main/s/systemd/systemd-boot-efi_257.13-1~deb13u1_arm64.deb"
        );
        assert_eq!(
            pool_path("libseccomp", "libseccomp2", "2.5.4-1", "arm64"),
            "pool/main/libs/libseccomp/libseccomp2_2.5.4-1_arm64.deb"
        );
        // A host-architecture pin has no pool URL (apt-get download fetches it).
        let lock = LockFile::parse(Path::new("x"), DEB).unwrap();
        let host = DebPin::from_lock(&lock, "systemd-boot-efi").unwrap();
        assert_eq!(
            (host.arch.as_deref(), host.pool_url("https://m", "1")),
            (None, None)
        );
        // `arch` without `source` cannot name the pool directory.
        let lock = LockFile::parse(
            Path::new("x/debian-packages.lock"),
            &ARM64.replace("source = \"systemd\"\n", ""),
        )
        .unwrap();
        let e = format!(
            "{:#}",
            DebPin::from_lock(&lock, "systemd-boot-efi-arm64").unwrap_err()
        );
        assert!(
            e.contains("x/debian-packages.lock: [systemd-boot-efi-arm64] source is missing"),
            "{e}"
        );
    }

    #[test]
    fn check_moves_a_foreign_arch_pin_with_the_amd64_version_and_names_the_unknown_hash() {
        let lock = LockFile::parse(Path::new("x"), ARM64).unwrap();
        let pin = DebPin::from_lock(&lock, "systemd-boot-efi-arm64").unwrap();
        let mut r = Refresh {
            check: true,
            changes: Vec::new(),
            notes: Vec::new(),
        };
        let mut text = ARM64.to_string();
        // The same version: nothing moves, nothing is downloaded.
        assert!(!refresh_foreign_deb(&pin, &pin.version, &mut r, &mut text).unwrap());
        assert!(r.changes.is_empty());
        // A new upload: the version moves, the hash is known only after downloading.
        assert!(refresh_foreign_deb(&pin, "257.14-1~deb13u1", &mut r, &mut text).unwrap());
        let fields: Vec<(&str, &str)> = r
            .changes
            .iter()
            .map(|c| (c.field.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("[systemd-boot-efi-arm64] version", "257.14-1~deb13u1"),
                (
                    "[systemd-boot-efi-arm64] deb_sha256",
                    "(after `cargo nekos lock` downloads it)"
                )
            ]
        );
        assert!(text.contains("version = \"257.14-1~deb13u1\"\n"), "{text}");
    }

    #[test]
    fn control_fields_must_name_package_version_and_arch() {
        let c = "Package: systemd-boot-efi\nVersion: 257.13-1~deb13u1\nArchitecture: arm64\n";
        check_control(c, "systemd-boot-efi", "257.13-1~deb13u1", "arm64").unwrap();
        let e = check_control(c, "systemd-boot-efi", "257.13-1~deb13u1", "amd64").unwrap_err();
        assert_eq!(
            e.to_string(),
            "its control field Architecture is arm64, expected amd64"
        );
        let e = check_control("Package: x\n", "x", "1", "arm64").unwrap_err();
        assert!(e.to_string().contains("Version is missing"), "{e}");
    }

    #[test]
    fn missing_table_and_bad_toml_are_named() {
        let e = err("# nothing\n");
        assert!(e.contains("table [systemd-boot-efi] is missing"), "{e}");
        let e = LockFile::parse(Path::new("a.lock"), "x = ")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("a.lock: not valid TOML"), "{e}");
    }

    #[test]
    fn kernel_lock_errors_name_the_field() {
        let dir = std::env::temp_dir().join(format!("nekos-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("kernel-config")).unwrap();
        let path = dir.join(KERNEL_LOCK);
        std::fs::write(&path, "package = \"linux-source-6.12\"\nversion = \"6.12.118-1~deb12u1\"\nsha256 = \"c93391\"\n").unwrap();
        let e = format!("{:#}", crate::kernel::read_lock(&dir).unwrap_err());
        assert!(
            e.contains("linux-source.lock: sha256 is \"c93391\", expected a sha256"),
            "{e}"
        );
        std::fs::write(
            &path,
            "package = \"linux-source-6.12\"\nsha256 = \"c93391\"\n",
        )
        .unwrap();
        let e = format!("{:#}", crate::kernel::read_lock(&dir).unwrap_err());
        assert!(e.contains("linux-source.lock: version is missing"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn set_value_changes_only_the_value() {
        let text = "# top\nversion = \"1\" \n[orig]\n# keep me\nfile = \"a\"\nsha256 = \"x\"\n[debian]\nfile = \"b\"\nsource_date_epoch = 5\n[[patch]]\nfile = \"p\"\n";
        let t = set_string(text, Some("debian"), "file", "c").unwrap();
        assert_eq!(t, text.replace("file = \"b\"", "file = \"c\""));
        let t = set_value(&t, Some("debian"), "source_date_epoch", "7").unwrap();
        assert!(t.contains("source_date_epoch = 7\n[[patch]]\nfile = \"p\"\n"));
        let t = set_string(&t, None, "version", "2").unwrap();
        assert!(t.starts_with("# top\nversion = \"2\"\n[orig]\n# keep me\nfile = \"a\""));
        assert!(
            set_string(text, Some("patch"), "file", "z").is_err(),
            "[[patch]] is not [patch]"
        );
        assert!(set_string(text, Some("orig"), "version", "z").is_err());
        let q = "[sha256]\n\"a.pem\" = \"1\"\n";
        assert_eq!(
            set_string(q, Some("sha256"), "a.pem", "2").unwrap(),
            "[sha256]\n\"a.pem\" = \"2\"\n"
        );
    }

    #[test]
    fn drift_report_shows_old_to_new_and_what_to_run() {
        let c = vec![Change {
            file: KERNEL_LOCK.into(),
            field: "version".into(),
            old: "6.12.117-1~deb12u1".into(),
            new: "6.12.118-1~deb12u1".into(),
        }];
        let check = drift_report(&c, &[], true);
        assert!(check.contains("1 pin(s) differ"), "{check}");
        assert!(check.contains("  kernel-config/linux-source.lock version: 6.12.117-1~deb12u1 → 6.12.118-1~deb12u1\n"), "{check}");
        assert!(check.contains("run `cargo nekos lock`"), "{check}");
        let moved = drift_report(&c, &["n".into()], false);
        assert!(moved.starts_with("nekos: moved 1 pin(s):"), "{moved}");
        assert!(moved.contains("note: n"), "{moved}");
        assert!(drift_report(&[], &[], true).contains("every pin equals"));
    }

    #[test]
    fn registry_outputs_parse() {
        let policy = "systemd-boot-efi:\n  Installed: (none)\n  Candidate: 252.39-1~deb12u2\n  Version table:\n     262.1-1 1\n          1 http://deb.debian.org/debian sid/main amd64 Packages\n     257.13-1~deb13u1 100\n        100 http://deb.debian.org/debian trixie/main amd64 Packages\n *** 252.39-1~deb12u2 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n        100 /var/lib/dpkg/status\n";
        assert_eq!(
            parse_policy_suite(policy, "trixie").as_deref(),
            Some("257.13-1~deb13u1")
        );
        assert_eq!(
            parse_policy_suite(policy, "sid").as_deref(),
            Some("262.1-1")
        );
        assert_eq!(
            parse_policy_suite(policy, "bookworm").as_deref(),
            Some("252.39-1~deb12u2")
        );
        assert_eq!(parse_policy_suite(policy, "experimental"), None);
        assert_eq!(parse_policy_field(policy, "Installed"), None);
        assert_eq!(
            parse_policy_field(policy, "Candidate").as_deref(),
            Some("252.39-1~deb12u2")
        );
        assert_eq!(
            parse_show_sha256("Package: a\nSHA256: abc\n\nSHA256: def\n").as_deref(),
            Some("abc")
        );
        let uris = parse_print_uris(
            "Need to get 29.7 MB\n'http://x/edk2_2025.02.orig.tar.xz' edk2_2025.02.orig.tar.xz 29646336 SHA256:b63b\n",
        );
        assert_eq!(
            uris,
            [SourceUri {
                uri: "http://x/edk2_2025.02.orig.tar.xz".into(),
                name: "edk2_2025.02.orig.tar.xz".into(),
                sha256: "b63b".into()
            }]
        );
        assert_eq!(
            parse_pip_latest(
                "virt-firmware (26.10)\nAvailable versions: 26.10, 26.9\n",
                "virt-firmware"
            )
            .as_deref(),
            Some("26.10")
        );
        assert_eq!(
            venv_pin("x\nensure_venv /opt/nekos/venv virt-firmware 26.10 \"a==1\"\n").as_deref(),
            Some("26.10")
        );
    }

    #[test]
    fn changelog_date_gives_the_recorded_epoch() {
        let cl = "edk2 (2025.02-8+deb13u1) trixie; urgency=medium\n\n  * x\n\n -- Someone <a@b.org>  Sat, 08 Nov 2025 11:06:17 -0700\n\nedk2 (old)\n -- X <y>  Mon, 01 Jan 2024 00:00:00 +0000\n";
        let date = changelog_top_date(cl).unwrap();
        assert_eq!(date, "Sat, 08 Nov 2025 11:06:17 -0700");
        assert_eq!(parse_rfc2822(&date).unwrap(), 1762625177);
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 +0000").unwrap(), 0);
        assert!(parse_rfc2822("yesterday").is_err());
    }

    #[test]
    fn project_lock_files_parse_and_agree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let deb = LockFile::load(&root.join(DEBIAN_LOCK)).unwrap();
        assert_eq!(
            deb.table_names(),
            [
                "systemd-boot-efi",
                "systemd-boot-efi-arm64",
                "systemd-ukify",
                "ovmf-amdsev"
            ]
        );
        for t in deb.table_names() {
            DebPin::from_lock(&deb, &t).unwrap();
        }
        // The two stubs are one upload of one package, for two architectures.
        let x64 = DebPin::from_lock(&deb, "systemd-boot-efi").unwrap();
        let aa64 = DebPin::from_lock(&deb, "systemd-boot-efi-arm64").unwrap();
        assert_eq!(
            (
                aa64.package.as_str(),
                aa64.version.as_str(),
                aa64.arch.as_deref()
            ),
            ("systemd-boot-efi", x64.version.as_str(), Some("arm64"))
        );
        assert_eq!(x64.arch, None);
        assert!(aa64.file.unwrap().ends_with("/linuxaa64.efi.stub"));
        assert_ne!(aa64.deb_sha256, x64.deb_sha256);
        crate::kernel::read_lock(&root).unwrap();
        // The judge of the Microsoft store is the release the certificates come from.
        let certs = LockFile::load(&root.join(CERTS_LOCK)).unwrap();
        let host = std::fs::read_to_string(root.join(HOST_SETUP)).unwrap();
        assert_eq!(
            venv_pin(&host),
            Some(certs.string(None, "version").unwrap())
        );
    }
}
