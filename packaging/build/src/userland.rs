//! The guest's userland: static musl binaries built by cargo, and the check that they are
//! really static (no ELF interpreter, no NEEDED entries).

use crate::host::MUSL_TARGET;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (cargo package, binary name, path in the initramfs, test variant only)
pub const PROGRAMS: &[(&str, &str, &str, bool)] = &[
    ("nekos-init", "nekos-init", "init", false),
    (
        "nekos-compositor",
        "nekos-compositor",
        "bin/compositor",
        false,
    ),
    ("nekos-viewer", "nekos-viewer", "bin/viewer", false),
    ("snpcheck", "snpcheck", "bin/snpcheck", false),
    ("nekos-testprogs", "nekos-crashloop", "bin/crashloop", true),
    ("nekos-testprogs", "nekos-orphans", "bin/orphans", true),
    ("nekos-testprogs", "nekos-hang", "bin/hang", true),
];

/// Stage 1 of the network boot, its own static program (init/stboot/, `nekos-stboot`): the
/// stage-1 image runs the production init, which starts it.
pub fn stage1_program_path(root: &Path) -> PathBuf {
    crate::artifacts::target_dir(root)
        .join(MUSL_TARGET)
        .join("release")
        .join("nekos-stboot")
}

/// The flags that keep host paths out of the guest binaries (panic messages carry source
/// paths), exactly as `.cargo/nekos-rustc-wrapper` adds them to every rustc run for the guest
/// target: the checkout and the registry sources of CARGO_HOME. They live in that wrapper,
/// configured in `.cargo/config.toml`, so the plain `cargo build --release --target
/// x86_64-unknown-linux-musl` uses them too; this string is what the manifest records.
pub fn reproducible_rustflags(root: &Path) -> String {
    // The wrapper sees the checkout as cargo found it (the physical current directory).
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    // Where cargo keeps the registry: CARGO_HOME (set by rustup for cargo's children), else
    // ~/.cargo, cargo's own default.
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| {
        format!(
            "{}/.cargo",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    format!(
        "--remap-path-prefix={}=/nekos --remap-path-prefix={cargo_home}/registry/src=/cargo/registry/src",
        root.display()
    )
}

/// Environment variables that would change the userland's bytes behind the repository's back:
/// flags, and a wrapper (sccache, …) that would replace the one that remaps paths. The image
/// build removes them; so does the test that compares a plain build with the image.
pub const FOREIGN_BUILD_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
];

/// `cargo build --release --locked --target x86_64-unknown-linux-musl` in the workspace, with
/// no flags from the environment: the flags are the ones in `.cargo/config.toml` and the
/// profiles, the same a user's own plain build gets, or its bytes would differ from the image.
fn cargo_build(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "--target", MUSL_TARGET]);
    for var in FOREIGN_BUILD_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run cargo to build {what}"))?;
    if !status.success() {
        bail!("cargo build of {what} failed ({status})");
    }
    Ok(())
}

/// Builds the userland and returns binary name → path. Three cargo runs, in this order:
/// stage 1 (`-p nekos-stboot`, [`stage1_program_path`]; only with `with_stage1`: it pulls
/// in rustls and ring, minutes of compiling that a deployment without stboot never needs);
/// the test programs if asked for, on their own so that their
/// dependencies' features never mix into the production binaries; and last the plain build
/// of the default members (init, compositor, viewer, snpcheck), so that
/// `target/x86_64-unknown-linux-musl/release/` ends up holding exactly what the plain
/// command gives. Cargo keeps each feature set's build, so a rerun only relinks.
pub fn build(
    root: &Path,
    with_stage1: bool,
    with_test_programs: bool,
) -> Result<Vec<(String, PathBuf)>> {
    crate::host::ensure_musl_target(root)?;
    let dir = crate::artifacts::target_dir(root)
        .join(MUSL_TARGET)
        .join("release");

    if with_stage1 {
        let mut stage1_cmd = cargo_build(root);
        stage1_cmd.args(["-p", "nekos-stboot"]);
        run(stage1_cmd, "stage 1 of the network boot (nekos-stboot)")?;
        check_static(&stage1_program_path(root))?;
    }

    if with_test_programs {
        let mut packages: Vec<&str> = PROGRAMS.iter().filter(|p| p.3).map(|p| p.0).collect();
        packages.dedup();
        let mut test_cmd = cargo_build(root);
        for p in &packages {
            test_cmd.args(["-p", p]);
        }
        run(
            test_cmd,
            &format!("the test programs ({})", packages.join(", ")),
        )?;
    }

    run(
        cargo_build(root),
        "the production userland (init, compositor, viewer, snpcheck)",
    )?;

    let mut out = Vec::new();
    for (_, bin, _, test_only) in PROGRAMS {
        if *test_only && !with_test_programs {
            continue;
        }
        let path = dir.join(bin);
        check_static(&path)?;
        out.push((bin.to_string(), path));
    }
    Ok(out)
}

/// Fails unless `path` is an ELF64 executable with no PT_INTERP and no DT_NEEDED.
pub fn check_static(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match elf_dynamic_deps(&bytes) {
        Ok(deps) if deps.interp.is_none() && deps.needed == 0 => Ok(()),
        Ok(deps) => bail!(
            "{} is not fully static: interpreter {:?}, {} NEEDED entries",
            path.display(),
            deps.interp,
            deps.needed
        ),
        Err(e) => bail!("{}: {e}", path.display()),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct DynamicDeps {
    pub interp: Option<String>,
    pub needed: usize,
}

fn read_u16(b: &[u8], off: usize) -> Result<u16> {
    let s = b.get(off..off + 2).context("ELF truncated")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}
fn read_u32(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).context("ELF truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn read_u64(b: &[u8], off: usize) -> Result<u64> {
    let s = b.get(off..off + 8).context("ELF truncated")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Reads the program headers of a little-endian ELF64 file: the interpreter (PT_INTERP)
/// and the number of DT_NEEDED entries in PT_DYNAMIC. Bounds-checked; never panics.
pub fn elf_dynamic_deps(b: &[u8]) -> Result<DynamicDeps> {
    if b.get(..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        bail!("not a little-endian ELF64 file");
    }
    let phoff = usize::try_from(read_u64(b, 0x20)?)?;
    let phentsize = usize::from(read_u16(b, 0x36)?);
    let phnum = usize::from(read_u16(b, 0x38)?);
    let mut deps = DynamicDeps {
        interp: None,
        needed: 0,
    };
    for i in 0..phnum {
        let ph = phoff
            .checked_add(i.checked_mul(phentsize).context("ELF overflow")?)
            .context("ELF overflow")?;
        let kind = read_u32(b, ph)?;
        let offset = usize::try_from(read_u64(b, ph + 8)?)?;
        let size = usize::try_from(read_u64(b, ph + 32)?)?;
        let data = b
            .get(offset..offset.checked_add(size).context("ELF overflow")?)
            .context("ELF segment outside the file")?;
        match kind {
            3 => {
                deps.interp = Some(
                    String::from_utf8_lossy(data)
                        .trim_end_matches('\0')
                        .to_string(),
                )
            }
            2 => {
                for entry in data.chunks_exact(16) {
                    match read_u64(entry, 0)? {
                        0 => break,
                        1 => deps.needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(deps)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_dynamic_binary_is_detected() {
        // /bin/sh on the build host is a dynamically linked glibc program.
        let deps = elf_dynamic_deps(&std::fs::read("/bin/sh").unwrap()).unwrap();
        assert!(deps.interp.unwrap().contains("ld-linux"));
        assert!(deps.needed >= 1);
    }

    proptest! {
        #[test]
        fn elf_reader_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if bytes.len() > 6 { bytes[..6].copy_from_slice(b"\x7fELF\x02\x01"); }
            let _ = elf_dynamic_deps(&bytes);
        }
    }
}
