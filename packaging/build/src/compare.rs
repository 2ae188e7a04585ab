//! The two other systems of issue #15's comparison, booted on the project's kernel next to
//! NekOS's production initramfs by `cargo nekos bench --compare` (nekos_lab):
//!
//! - **probe**: the physical floor, `probe/` as `/init` (decode one photo with the viewer's
//!   render core, set one mode on a dumb buffer, print the timeline and its memory);
//! - **reference**: what users would pick instead, Debian bookworm's `busybox-static` +
//!   `cage` + `swayimg` with the dependency closure apt computes, unpacked with `dpkg-deb`
//!   and started by a busybox `sh` script as `/init` (cage as a non-root user, libseat's
//!   builtin backend, pixman renderer, the same photos).
//!
//! Both are uncompressed newc archives written by the project's cpio code (sorted, one
//! mtime: the manifest's SOURCE_DATE_EPOCH) and made only when their inputs changed (the
//! steps' freshness rule, `steps::Freshness`, step names `compare-probe` and
//! `compare-reference`). The reference's .debs are fetched with `apt-get download` at the
//! exact versions apt resolves, checked against the SHA256 of apt's own index and kept
//! unpacked in the cache by that hash (`deb-<sha256>/`, the layout `pins::fetch_deb` uses).

use crate::artifacts::{Manifest, out_dir, target_dir};
use crate::cpio::{Archive, Node};
use crate::host::MUSL_TARGET;
use crate::steps::Freshness;
use crate::util::{self, sha256_file, sha256_hex};
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One system the comparison boots on the project's kernel.
#[derive(Clone, Debug, Serialize)]
pub struct CompareSystem {
    /// "nekos" | "probe" | "reference"
    pub label: &'static str,
    /// Uncompressed newc cpio.
    pub initramfs: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Extra kernel words (before `console=ttyS0`).
    pub cmdline: Vec<String>,
    /// A serial shell to read memory/RSS ("nekos# ", "ref# "); None for the probe.
    pub shell_prompt: Option<String>,
    /// QMP send-key name that shows the next photo; None for the probe.
    pub next_key: Option<&'static str>,
    /// Photo file name -> sha256, as packed.
    pub photos: BTreeMap<String, String>,
    /// Reference only: Debian package -> version.
    pub packages: BTreeMap<String, String>,
}

/// Where the comparison's archives go.
pub fn compare_dir(root: &Path) -> PathBuf {
    out_dir(root).join("compare")
}

/// The photos NekOS packs (the manifest's `cats`), read from `cats/` and checked by sha256:
/// all three systems show the same photos. A manifest built with `--cats DIR` names photos
/// that `cats/` does not hold, and that is an error naming the first one that differs.
pub fn manifest_photos(root: &Path, manifest: &Manifest) -> Result<Vec<(String, Vec<u8>)>> {
    if manifest.cats.is_empty() {
        bail!("the build manifest lists no photos (run `cargo nekos build`)");
    }
    let dir = root.join("cats");
    let mut out = Vec::new();
    for (name, want) in &manifest.cats {
        let path = dir.join(name);
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "the manifest's photo {name} is not in {} (was the image built with --cats DIR?)",
                dir.display()
            )
        })?;
        let got = sha256_hex(&bytes);
        if &got != want {
            bail!(
                "{} has sha256 {got}, the manifest's initramfs packed {want}: rebuild (`cargo nekos build`) so all systems show the same photos",
                path.display()
            );
        }
        out.push((name.clone(), bytes));
    }
    Ok(out)
}

fn photo_map(photos: &[(String, Vec<u8>)]) -> BTreeMap<String, String> {
    photos
        .iter()
        .map(|(n, b)| (n.clone(), sha256_hex(b)))
        .collect()
}

/// Writes `archive` to `path` atomically unless `fresh` says it is up to date; returns the
/// system's file facts.
fn write_archive(
    fresh: &Freshness,
    path: &Path,
    make: impl FnOnce() -> Result<Vec<u8>>,
) -> Result<(String, u64)> {
    if !fresh.up_to_date() {
        let bytes = make()?;
        util::write_atomic(path, &bytes)?;
        fresh.record([path])?;
    }
    let size = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    Ok((sha256_file(path)?, size))
}

// ---------------------------------------------------------------------------------------
// The probe

/// The probe's binary after [`build_probe`].
pub fn probe_program_path(root: &Path) -> PathBuf {
    target_dir(root)
        .join(MUSL_TARGET)
        .join("release")
        .join("nekos-probe")
}

/// `cargo build --release --locked --target x86_64-unknown-linux-musl -p nekos-probe`, with
/// the same clean environment as the userland (`userland::FOREIGN_BUILD_ENV`); checks that
/// the result is static.
pub fn build_probe(root: &Path) -> Result<PathBuf> {
    crate::host::ensure_musl_target(root)?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "--target",
        MUSL_TARGET,
        "-p",
        "nekos-probe",
    ]);
    for var in crate::userland::FOREIGN_BUILD_ENV {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .context("cannot run cargo to build the probe (nekos-probe)")?;
    if !status.success() {
        bail!("cargo build of the probe (nekos-probe) failed ({status})");
    }
    let path = probe_program_path(root);
    crate::userland::check_static(&path)?;
    Ok(path)
}

/// The probe's archive: `/init` (the probe), `/dev/console`, mount points, and the photos in
/// the viewer's directory. Pure.
pub fn probe_archive(probe: &[u8], photos: &[(String, Vec<u8>)]) -> Result<Archive> {
    let mut a = Archive::new();
    for dir in ["dev", "proc", "sys", crate::initramfs::PHOTO_DIR] {
        a.mkdir_p(dir)?;
    }
    a.add(
        "dev/console",
        Node::CharDevice { major: 5, minor: 1 },
        0o600,
    )?;
    a.add("init", Node::File(probe.to_vec()), 0o755)?;
    for (name, bytes) in photos {
        a.add(
            &format!("{}/{name}", crate::initramfs::PHOTO_DIR),
            Node::File(bytes.clone()),
            0o644,
        )?;
    }
    Ok(a)
}

/// The bare probe as a system: built (cargo decides the compile's freshness), packed when
/// its inputs changed.
pub fn probe_system(root: &Path, manifest: &Manifest) -> Result<CompareSystem> {
    let photos = manifest_photos(root, manifest)?;
    let program = build_probe(root)?;
    let probe = fs::read(&program).with_context(|| format!("cannot read {}", program.display()))?;
    let mut inputs = BTreeMap::new();
    inputs.insert("probe".to_string(), sha256_hex(&probe));
    inputs.insert(
        "source_date_epoch".to_string(),
        manifest.source_date_epoch.to_string(),
    );
    for (name, sha) in photo_map(&photos) {
        inputs.insert(format!("photo:{name}"), sha);
    }
    let path = compare_dir(root).join("probe.cpio");
    let fresh = Freshness::new(root, "compare-probe", &inputs);
    let (sha256, size) = write_archive(&fresh, &path, || {
        probe_archive(&probe, &photos)?.to_newc(manifest.source_date_epoch)
    })?;
    Ok(CompareSystem {
        label: "probe",
        initramfs: path,
        sha256,
        size,
        cmdline: Vec::new(),
        shell_prompt: None,
        next_key: None,
        photos: photo_map(&photos),
        packages: BTreeMap::new(),
    })
}

// ---------------------------------------------------------------------------------------
// The reference: Debian's packages

/// The Debian release the reference comes from (the host's apt sources; see host-setup.sh).
pub const REFERENCE_SUITE: &str = "bookworm";

/// What the reference is made of; apt adds their dependency closure.
pub const REFERENCE_ROOTS: &[&str] = &["busybox-static", "cage", "swayimg", "xkb-data"];

/// Packages of the closure that only dpkg's maintainer scripts use (configuration prompts,
/// user creation, init-system glue, the package manager itself): nothing in the guest runs
/// them, since nothing is installed there, only unpacked. Everything the programs load at
/// run time stays.
pub const MAINTAINER_ONLY: &[&str] = &[
    "adduser",
    "cdebconf",
    "debconf",
    "dpkg",
    "init-system-helpers",
    "lsb-base",
    "passwd",
    "perl-base",
    "sysvinit-utils",
    "tar",
    "usr-is-merged",
    "usrmerge",
];

/// Paths a guest never reads (documentation, manuals, translations, packaging metadata),
/// left out of the archive.
pub const SKIPPED_PREFIXES: &[&str] = &[
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
    "usr/share/bug/",
    "usr/share/doc-base/",
    "usr/share/bash-completion/",
    "usr/share/zsh/",
    "usr/share/fish/",
    "usr/share/gtk-doc/",
];

/// One package record from `apt-cache show` (the fields the closure needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DebRecord {
    pub package: String,
    pub version: String,
    /// SHA256 of the .deb, from apt's (signed) index.
    pub sha256: String,
    /// `Pre-Depends` and `Depends`: each inner list is one OR-group, in order.
    pub depends: Vec<Vec<String>>,
    pub provides: Vec<String>,
}

/// A package name from a relation: the version constraint and the architecture qualifier
/// (`perl:any`) dropped.
fn relation_name(rel: &str) -> String {
    let name = rel.split(['(', '[', '<']).next().unwrap_or("").trim();
    name.split(':').next().unwrap_or("").to_string()
}

fn parse_relations(value: &str) -> Vec<Vec<String>> {
    value
        .split(',')
        .map(|group| {
            group
                .split('|')
                .map(relation_name)
                .filter(|n| !n.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// Parses `apt-cache show` output (RFC 822 stanzas, continuation lines start with a space).
/// A stanza without Package, Version or a sha256 SHA256 field is an error naming it.
pub fn parse_records(text: &str) -> Result<Vec<DebRecord>> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        if stanza.trim().is_empty() {
            continue;
        }
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in stanza.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(k) = &last
                    && let Some(v) = fields.get_mut(k)
                {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim().to_string(), v.trim().to_string());
                last = Some(k.trim().to_string());
            }
        }
        let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let package = get("Package");
        let version = get("Version");
        let sha256 = get("SHA256");
        if package.is_empty() || version.is_empty() || !crate::pins::is_sha256(&sha256) {
            bail!(
                "apt-cache show: a record without Package, Version or SHA256 (expected all three): {}",
                stanza.lines().next().unwrap_or("")
            );
        }
        let mut depends = parse_relations(&get("Pre-Depends"));
        depends.extend(parse_relations(&get("Depends")));
        let provides = get("Provides")
            .split(',')
            .map(relation_name)
            .filter(|n| !n.is_empty())
            .collect();
        out.push(DebRecord {
            package,
            version,
            sha256,
            depends,
            provides,
        });
    }
    Ok(out)
}

/// The dependency closure of `roots` as dpkg would install it: for each OR-group the first
/// alternative apt has a record for, or else a package that provides it; the packages in
/// `skip` (and what only they need) are left out. Pure. An unsatisfiable relation is an
/// error naming the package that needs it.
pub fn resolve(
    roots: &[&str],
    records: &[DebRecord],
    skip: &[&str],
) -> Result<BTreeMap<String, DebRecord>> {
    let by_name: BTreeMap<&str, &DebRecord> =
        records.iter().map(|r| (r.package.as_str(), r)).collect();
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in records {
        for p in &r.provides {
            providers
                .entry(p.as_str())
                .or_default()
                .push(r.package.as_str());
        }
    }
    let mut chosen: BTreeMap<String, DebRecord> = BTreeMap::new();
    let mut queue: Vec<(String, String)> = roots
        .iter()
        .map(|r| (r.to_string(), "the reference".to_string()))
        .collect();
    while let Some((name, needed_by)) = queue.pop() {
        if chosen.contains_key(&name) || skip.contains(&name.as_str()) {
            continue;
        }
        let rec = by_name.get(name.as_str()).ok_or_else(|| {
            anyhow!("{needed_by} needs {name}, and apt has no record of it (apt-cache show {name})")
        })?;
        chosen.insert(name.clone(), (*rec).clone());
        for group in &rec.depends {
            // Already satisfied by something chosen or skipped?
            let satisfied = group.iter().any(|alt| {
                chosen.contains_key(alt)
                    || skip.contains(&alt.as_str())
                    || providers
                        .get(alt.as_str())
                        .is_some_and(|ps| ps.iter().any(|p| chosen.contains_key(*p)))
            });
            if satisfied {
                continue;
            }
            let pick = group
                .iter()
                .find(|alt| by_name.contains_key(alt.as_str()))
                .cloned()
                .or_else(|| {
                    group.iter().find_map(|alt| {
                        providers
                            .get(alt.as_str())
                            .and_then(|ps| ps.first())
                            .map(|p| p.to_string())
                    })
                })
                .ok_or_else(|| {
                    anyhow!(
                        "{name} {} depends on {}, which apt neither has nor provides",
                        rec.version,
                        group.join(" | ")
                    )
                })?;
            queue.push((pick, format!("{name} {}", rec.version)));
        }
    }
    Ok(chosen)
}

/// Runs an apt command; a failure is an error quoting the exact command line and its stderr.
fn apt(program: &str, args: &[&str], dir: Option<&Path>) -> Result<String> {
    let line = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args).env("LC_ALL", "C");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run `{line}` (is this Debian with apt?)"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // apt-cache show exits 0 on "E: No packages found"; any E: line is a failure.
    if !out.status.success() || stderr.lines().any(|l| l.starts_with("E:")) {
        bail!(
            "`{line}` failed ({}): {}\n  the reference needs Debian {REFERENCE_SUITE}'s packages: run packaging/host-setup.sh and `apt-get update`",
            out.status,
            stderr.trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every package name `apt-cache depends --recurse` reaches from `roots` (a superset: all
/// alternatives), then their candidate records from `apt-cache show`, then the closure
/// [`resolve`] picks.
pub fn reference_closure(roots: &[&str]) -> Result<BTreeMap<String, DebRecord>> {
    let mut args = vec![
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
    ];
    args.extend(roots);
    let names: BTreeSet<String> = apt("apt-cache", &args, None)?
        .lines()
        .filter(|l| !l.starts_with([' ', '<']) && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    let mut show = vec!["show", "--no-all-versions"];
    show.extend(names.iter().map(String::as_str));
    // Names that only t64-renamed suites know have no candidate here: apt-cache show prints
    // them on stderr as "N: Can't select candidate version…" and shows the rest.
    let records = parse_records(&apt("apt-cache", &show, None)?)?;
    resolve(roots, &records, MAINTAINER_ONLY)
}

/// `apt-get download PACKAGE=VERSION`, checked against `sha256`, unpacked with `dpkg-deb -x`
/// into the cache (`deb-<sha256>/`, shared with `pins::fetch_deb`); returns that directory.
/// A package apt cannot download is an error quoting the apt line and its stderr.
pub fn fetch_reference_deb(package: &str, version: &str, sha256: &str) -> Result<PathBuf> {
    let root = crate::cache::cache_root();
    let dir = root.join(format!("deb-{sha256}"));
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let work = root.join(format!(".deb-{sha256}.tmp-{}", util::unique_suffix()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = (|| -> Result<()> {
        let spec = format!("{package}={version}");
        apt("apt-get", &["download", "-q", &spec], Some(&work))?;
        let deb = fs::read_dir(&work)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or_else(|| anyhow!("`apt-get download -q {spec}` produced no .deb"))?;
        let got = sha256_file(&deb)?;
        if got != sha256 {
            bail!(
                "{} has SHA-256 {got}, apt's index says {sha256} for {spec}: a broken mirror or proxy?",
                deb.display()
            );
        }
        let tree = work.join("tree");
        let st = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&tree)
            .status()
            .context("cannot run dpkg-deb -x (package dpkg)")?;
        if !st.success() {
            bail!("dpkg-deb -x {} failed ({st})", deb.display());
        }
        fs::write(
            tree.join(".complete"),
            format!("{package} {version} {sha256}\n"),
        )?;
        match fs::rename(&tree, &dir) {
            Ok(()) => Ok(()),
            Err(_) if dir.join(".complete").exists() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot move into {}", dir.display())),
        }
    })();
    let _ = fs::remove_dir_all(&work);
    result?;
    Ok(dir)
}

/// bookworm packages still ship `/bin`, `/sbin`, `/lib*`; an installed bookworm system has
/// them merged into `/usr` (the symlinks [`reference_archive`] adds). Paths are mapped the
/// same way here so two packages' files meet where the programs look for them.
fn merged_usr(path: &str) -> String {
    for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        if path == top {
            return format!("usr/{top}");
        }
        if let Some(rest) = path.strip_prefix(&format!("{top}/")) {
            return format!("usr/{top}/{rest}");
        }
    }
    path.to_string()
}

/// Adds every file, directory and symlink under `tree` (an unpacked .deb) to `a`, merged-usr,
/// without [`SKIPPED_PREFIXES`]. The same path from two packages is fine only with the same
/// content.
fn add_tree(
    a: &mut Archive,
    seen: &mut BTreeMap<String, String>,
    tree: &Path,
    package: &str,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(tree)?
                .to_str()
                .ok_or_else(|| anyhow!("{package}: a path that is not UTF-8: {}", path.display()))?
                .to_string();
            if rel == ".complete" {
                continue;
            }
            let rel = merged_usr(&rel);
            if SKIPPED_PREFIXES
                .iter()
                .any(|p| rel.starts_with(p) || format!("{rel}/") == *p)
            {
                continue;
            }
            let meta = fs::symlink_metadata(&path)?;
            let perm = meta.permissions().mode() & 0o7777;
            let node = if meta.file_type().is_symlink() {
                Node::Symlink(
                    fs::read_link(&path)?
                        .to_str()
                        .ok_or_else(|| anyhow!("{package}: link target not UTF-8: {rel}"))?
                        .to_string(),
                )
            } else if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir
            } else if meta.is_file() {
                Node::File(fs::read(&path)?)
            } else {
                bail!("{package}: /{rel} is neither a file, a directory nor a symlink");
            };
            // What is at this path, to tell a harmless repeat from a conflict.
            let what = match &node {
                Node::Dir => "dir".to_string(),
                Node::File(b) => format!("file {}", sha256_hex(b)),
                Node::Symlink(t) => format!("link {t}"),
                Node::CharDevice { .. } => "device".to_string(),
            };
            match seen.get(&rel) {
                Some(prev) if *prev == what => continue,
                Some(prev) if prev != "dir" || node != Node::Dir => bail!(
                    "packages disagree about /{rel}: {package} has a {what}, another package a {prev}"
                ),
                _ => {}
            }
            seen.insert(rel.clone(), what);
            if node == Node::Dir {
                a.mkdir_p(&rel)?;
            } else {
                a.add(&rel, node, perm)
                    .with_context(|| format!("package {package}"))?;
            }
        }
    }
    Ok(())
}

/// Where wlroots looks for Xwayland (see [`reference_archive`]).
pub const XWAYLAND_STUB: &str = "usr/bin/Xwayland";

/// The non-root user cage runs as (the original NekOS ran its compositor so).
pub const REFERENCE_USER: (&str, u32) = ("cat", 1000);

/// The reference's `/init`: a busybox `sh` script. It prints the timeline from
/// /proc/uptime (CLOCK_BOOTTIME, 10 ms steps), mounts what cage and swayimg need, makes the
/// DRM and input devices usable by the user (no udevd: the device nodes are opened through
/// libseat's builtin seatd as that user), writes the udev database entries libinput checks
/// for its devices (`ID_INPUT*`; libinput ignores a device udev has not initialised),
/// starts cage + swayimg in the background and leaves a shell on the console.
pub fn reference_init_script() -> String {
    let (user, uid) = REFERENCE_USER;
    format!(
        r#"#!/bin/sh
# NekOS comparison reference (issue #15): busybox + cage + swayimg from Debian bookworm.
/bin/busybox mount -t proc proc /proc
t() {{ read up rest < /proc/uptime; echo "nekos: t=$(( ${{up%.*}} * 1000 + 1${{up#*.}} * 10 - 1000 )) $1"; }}
t init-start
/bin/busybox --install -s /bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/user/{uid} /run/udev/data
chown {uid}:{uid} /run/user/{uid}
chmod 0700 /run/user/{uid}
# The DRM device appears when bochs-drm has probed: wait for it, bounded (10 s).
i=0
while [ ! -e /dev/dri/card0 ] && [ $i -lt 1000 ]; do usleep 10000; i=$((i + 1)); done
chmod 0666 /dev/dri/card* /dev/input/event* /dev/tty0 /dev/tty1 2>/dev/null
for dev in /sys/class/input/event*; do
  [ -e "$dev/dev" ] || continue
  read mm < "$dev/dev"
  printf 'I:1\nE:ID_INPUT=1\nE:ID_INPUT_KEY=1\nE:ID_INPUT_KEYBOARD=1\nG:seat\nQ:seat\n' > "/run/udev/data/c$mm"
done
su -s /bin/sh {user} -c 'cd; export XDG_RUNTIME_DIR=/run/user/{uid} LIBSEAT_BACKEND=builtin SEATD_VTBOUND=0 WLR_RENDERER=pixman WLR_BACKENDS=drm,libinput WLR_DRM_DEVICES=/dev/dri/card0 WLR_LIBINPUT_NO_DEVICES=1; exec cage -- swayimg /cats/*' > /tmp/cage.log 2>&1 &
t cage-spawned
export PS1='ref# ' HOME=/root
exec setsid cttyhack sh
"#
    )
}

/// The reference archive from unpacked package trees (name → directory), the photos and the
/// init script. Pure apart from reading the trees.
pub fn reference_archive(
    trees: &BTreeMap<String, PathBuf>,
    photos: &[(String, Vec<u8>)],
) -> Result<Archive> {
    let mut a = Archive::new();
    for top in ["bin", "sbin", "lib", "lib64"] {
        a.mkdir_p(&format!("usr/{top}"))?;
        a.add(top, Node::Symlink(format!("usr/{top}")), 0o777)?;
    }
    for dir in ["dev", "proc", "sys", "run", "tmp", "root", "cats"] {
        a.mkdir_p(dir)?;
    }
    a.add(
        "dev/console",
        Node::CharDevice { major: 5, minor: 1 },
        0o600,
    )?;
    let mut seen = BTreeMap::new();
    for (package, tree) in trees {
        add_tree(&mut a, &mut seen, tree, package)?;
    }
    // The script's interpreter: busybox-static ships only /bin/busybox.
    if !seen.contains_key("usr/bin/sh") {
        a.add("usr/bin/sh", Node::Symlink("busybox".into()), 0o777)?;
    }
    // cage 0.1.4 is built with XWayland and exits when wlroots finds no Xwayland binary
    // ("Cannot create XWayland server", seen in the guest). wlroots starts it lazily, only
    // when an X11 client connects, which never happens here: a stub that fails keeps cage
    // running without pulling the X server and its closure into the reference.
    if !seen.contains_key(XWAYLAND_STUB) {
        a.add(
            XWAYLAND_STUB,
            Node::File(
                b"#!/bin/sh\necho 'Xwayland: not part of the reference' >&2\nexit 1\n".to_vec(),
            ),
            0o755,
        )?;
    }
    let (user, uid) = REFERENCE_USER;
    a.add(
        "etc/passwd",
        Node::File(
            format!(
                "root:x:0:0:root:/root:/bin/sh\n{user}:x:{uid}:{uid}:{user}:/home/{user}:/bin/sh\n"
            )
            .into_bytes(),
        ),
        0o644,
    )?;
    a.add(
        "etc/group",
        Node::File(
            format!("root:x:0:\nvideo:x:44:{user}\ninput:x:105:{user}\n{user}:x:{uid}:\n")
                .into_bytes(),
        ),
        0o644,
    )?;
    a.mkdir_p(&format!("home/{user}"))?;
    a.add(
        "init",
        Node::File(reference_init_script().into_bytes()),
        0o755,
    )?;
    for (name, bytes) in photos {
        a.add(&format!("cats/{name}"), Node::File(bytes.clone()), 0o644)?;
    }
    Ok(a)
}

/// The reference as a system: the closure resolved by apt now (so its versions are the
/// suite's current ones, recorded in `packages`), fetched into the cache, packed when the
/// resolved versions, photos or script changed.
pub fn reference_system(root: &Path, manifest: &Manifest) -> Result<CompareSystem> {
    let photos = manifest_photos(root, manifest)?;
    let closure = reference_closure(REFERENCE_ROOTS)?;
    let mut inputs = BTreeMap::new();
    for (name, rec) in &closure {
        inputs.insert(
            format!("deb:{name}"),
            format!("{} {}", rec.version, rec.sha256),
        );
    }
    for (name, sha) in photo_map(&photos) {
        inputs.insert(format!("photo:{name}"), sha);
    }
    inputs.insert(
        "init".to_string(),
        sha256_hex(reference_init_script().as_bytes()),
    );
    inputs.insert(
        "source_date_epoch".to_string(),
        manifest.source_date_epoch.to_string(),
    );
    let path = compare_dir(root).join("reference.cpio");
    let fresh = Freshness::new(root, "compare-reference", &inputs);
    let (sha256, size) = write_archive(&fresh, &path, || {
        let mut trees = BTreeMap::new();
        for (name, rec) in &closure {
            trees.insert(
                name.clone(),
                fetch_reference_deb(name, &rec.version, &rec.sha256)?,
            );
        }
        reference_archive(&trees, &photos)?.to_newc(manifest.source_date_epoch)
    })?;
    Ok(CompareSystem {
        label: "reference",
        initramfs: path,
        sha256,
        size,
        cmdline: Vec::new(),
        shell_prompt: Some("ref# ".into()),
        next_key: Some(REFERENCE_NEXT_KEY),
        photos: photo_map(&photos),
        packages: closure
            .iter()
            .map(|(n, r)| (n.clone(), r.version.clone()))
            .collect(),
    })
}

/// swayimg's default key for the next file.
pub const REFERENCE_NEXT_KEY: &str = "spc";

/// An untimed key the harness presses before the next key (QMP `send-key` name). cage
/// 0.1.4 hands the keyboard to its client on the first key event it gets, and that event
/// reaches the client only as part of the handover, not as a press: measured in a boot, the
/// first `spc` leaves the photo as it is and the second advances it; a `shift` first, then
/// `spc`, advances it. A lone modifier is bound to nothing in swayimg or NekOS's viewer, so
/// every system gets it alike and the timed key is the first that can act.
pub const PRIME_KEY: &str = "shift";

/// The shell line whose output [`keyboard_irqs`] reads.
pub const KEYBOARD_IRQS_COMMAND: &str = "cat /proc/interrupts";

/// The PS/2 keyboard's interrupt count (IRQ 1, `i8042`) from `/proc/interrupts`, summed over
/// the CPUs; None without such a line. The prime key counts as arrived once this grew by its
/// press and release: its release must reach cage in an earlier read than the timed key's
/// press (sent together, the handover took the timed key too, measured in a boot: with 0.3 s
/// between them the photo advanced, with none it did not).
pub fn keyboard_irqs(interrupts: &str) -> Option<u64> {
    interrupts.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("1:")?;
        if !line.contains("i8042") {
            return None;
        }
        let counts = rest.split_whitespace().map_while(|w| w.parse::<u64>().ok());
        Some(counts.sum())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SHA_A: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn rec(name: &str, deps: &str, provides: &str) -> String {
        format!(
            "Package: {name}\nVersion: 1.0-1\nDepends: {deps}\nProvides: {provides}\nSHA256: {SHA_A}\nDescription: x\n continued line\n\n"
        )
    }

    #[test]
    fn records_parse_with_alternatives_versions_and_arch_qualifiers() {
        let text = "Package: libseat1\nVersion: 0.7.0-6\nPre-Depends: libc6 (>= 2.30)\nDepends: seatd | logind, libsystemd0 (>= 238),\n perl:any\nSHA256: 646b162f58984f0d7d9021fb668361f6ca3cc9eaa670d1ae77352d563da686e8\n\n";
        let r = parse_records(text).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].package, "libseat1");
        assert_eq!(r[0].version, "0.7.0-6");
        assert_eq!(
            r[0].depends,
            vec![
                vec!["libc6".to_string()],
                vec!["seatd".to_string(), "logind".to_string()],
                vec!["libsystemd0".to_string()],
                vec!["perl".to_string()],
            ]
        );
        let err = parse_records("Package: x\nVersion: 1\n\n").unwrap_err();
        assert!(format!("{err}").contains("without Package, Version or SHA256"));
    }

    #[test]
    fn the_closure_takes_first_alternatives_providers_and_skips_maintainer_tools() {
        let text = [
            rec("cage", "libwlroots10, libc6", ""),
            rec("libwlroots10", "libseat1, libc6", ""),
            rec("libseat1", "seatd | logind, debconf | debconf-2.0", ""),
            rec("seatd", "adduser", ""),
            rec("systemd", "libc6", "logind"),
            rec("libc6", "libgcc-s1", ""),
            rec("libgcc-s1", "libc6", ""),
            rec("swayimg", "fontconfig-config", ""),
            rec("fontconfig-config", "fonts-dejavu-core | ttf-font", ""),
            rec("fonts-liberation", "", "ttf-font"),
            rec("adduser", "passwd", ""),
            rec("debconf", "", "debconf-2.0"),
        ]
        .concat();
        let records = parse_records(&text).unwrap();
        let got = resolve(&["cage", "swayimg"], &records, &["adduser", "debconf"]).unwrap();
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        // seatd (first alternative), not systemd; fonts-liberation provides ttf-font where
        // fonts-dejavu-core has no record; adduser/debconf skipped, and passwd with them.
        assert_eq!(
            names,
            [
                "cage",
                "fontconfig-config",
                "fonts-liberation",
                "libc6",
                "libgcc-s1",
                "libseat1",
                "libwlroots10",
                "seatd",
                "swayimg"
            ]
        );
        let err = resolve(&["cage", "nothing-here"], &records, &[]).unwrap_err();
        assert!(format!("{err}").contains("needs nothing-here"), "{err}");
        let broken = parse_records(&rec("a", "missing-x | missing-y", "")).unwrap();
        let err = resolve(&["a"], &broken, &[]).unwrap_err();
        assert!(
            format!("{err}").contains("a 1.0-1 depends on missing-x | missing-y"),
            "{err}"
        );
    }

    #[test]
    fn bookworm_paths_are_merged_into_usr() {
        assert_eq!(merged_usr("bin/busybox"), "usr/bin/busybox");
        assert_eq!(
            merged_usr("lib64/ld-linux-x86-64.so.2"),
            "usr/lib64/ld-linux-x86-64.so.2"
        );
        assert_eq!(merged_usr("lib"), "usr/lib");
        assert_eq!(merged_usr("usr/bin/cage"), "usr/bin/cage");
        assert_eq!(merged_usr("libexec/x"), "libexec/x");
        assert_eq!(merged_usr("etc/xdg"), "etc/xdg");
    }

    #[test]
    fn the_reference_archive_has_init_users_photos_and_no_docs() {
        let dir = std::env::temp_dir().join(format!("nekos-compare-tree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("usr/share/doc/busybox-static")).unwrap();
        fs::write(dir.join("bin/busybox"), b"\x7fELF").unwrap();
        fs::write(dir.join("usr/share/doc/busybox-static/copyright"), b"GPL").unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
        let trees: BTreeMap<String, PathBuf> = [("busybox-static".to_string(), dir.clone())].into();
        let photos = vec![("cat.jpg".to_string(), b"jpeg".to_vec())];
        let a = reference_archive(&trees, &photos).unwrap();
        let paths: BTreeMap<&str, &Node> = a.paths().map(|(p, e)| (p.as_str(), &e.node)).collect();
        assert!(paths.contains_key("usr/bin/busybox"));
        assert_eq!(paths["usr/bin/sh"], &Node::Symlink("busybox".into()));
        assert_eq!(paths["bin"], &Node::Symlink("usr/bin".into()));
        assert!(paths.contains_key("cats/cat.jpg"));
        assert!(paths.contains_key("init"));
        assert!(paths.contains_key(XWAYLAND_STUB));
        assert!(!paths.keys().any(|p| p.starts_with("usr/share/doc/")));
        let Node::File(passwd) = paths["etc/passwd"] else {
            panic!("passwd")
        };
        assert!(String::from_utf8_lossy(passwd).contains("cat:x:1000:1000:"));
        // Deterministic bytes.
        assert_eq!(
            a.to_newc(7).unwrap(),
            reference_archive(&trees, &photos)
                .unwrap()
                .to_newc(7)
                .unwrap()
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_init_script_prints_the_contract_marks_and_the_prompt() {
        let s = reference_init_script();
        assert!(s.starts_with("#!/bin/sh\n"));
        for needle in [
            "t init-start",
            "t cage-spawned",
            "PS1='ref# '",
            "LIBSEAT_BACKEND=builtin",
            "WLR_RENDERER=pixman",
            "cage -- swayimg /cats/*",
        ] {
            assert!(s.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_keyboard_interrupt_count_is_read_from_irq_1_only() {
        let text = "           CPU0       CPU1\n  0:         55          0   IO-APIC   2-edge      timer\n  1:          9          3   IO-APIC   1-edge      i8042\n 12:        100          0   IO-APIC  12-edge      i8042\n";
        assert_eq!(keyboard_irqs(text), Some(12));
        assert_eq!(keyboard_irqs("  0: 55 IO-APIC timer\n"), None);
        assert_eq!(keyboard_irqs(" 11:  4  IO-APIC  i8042\n"), None);
    }

    #[test]
    fn the_probe_archive_is_init_console_and_the_photos() {
        let photos = vec![("a.jpg".to_string(), b"1".to_vec())];
        let a = probe_archive(b"\x7fELF", &photos).unwrap();
        let paths: Vec<&str> = a.paths().map(|(p, _)| p.as_str()).collect();
        for want in ["init", "dev/console", "proc", "usr/share/nekos/cats/a.jpg"] {
            assert!(paths.contains(&want), "{want} in {paths:?}");
        }
    }
}
