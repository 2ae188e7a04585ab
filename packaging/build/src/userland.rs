//! The guest's userland: static musl binaries built by cargo for the architecture's target
//! (`Arch::rust_target`), and the check that they are really static (no ELF interpreter, no
//! NEEDED entries) and for the expected machine (an x86 binary in an arm64 image would only
//! fail inside the guest, as "exec format error" of PID 1).

use crate::arch::Arch;
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
    ("nekos-testprogs", "nekos-vtmode", "bin/vtmode", true),
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
    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS",
    // The arm64 linker is chosen in .cargo/config.toml; another one gives other bytes.
    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
];

/// `cargo build --release --locked --target <arch's musl target>` in the workspace, with
/// no flags from the environment: the flags are the ones in `.cargo/config.toml` and the
/// profiles, the same a user's own plain build gets, or its bytes would differ from the image.
fn cargo_build(root: &Path, arch: Arch) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args([
        "build",
        "--release",
        "--locked",
        "--target",
        arch.rust_target(),
    ]);
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

/// Builds the userland for `arch` and returns binary name → path. Three cargo runs, in this order:
/// stage 1 (`-p nekos-stboot`, [`stage1_program_path`]; only with `with_stage1`: it pulls
/// in rustls and ring, minutes of compiling that a deployment without stboot never needs);
/// the test programs if asked for, on their own so that their
/// dependencies' features never mix into the production binaries; and last the plain build
/// of the default members (init, compositor, viewer, snpcheck), so that
/// `target/x86_64-unknown-linux-musl/release/` ends up holding exactly what the plain
/// command gives. Cargo keeps each feature set's build, so a rerun only relinks. Stage 1 is
/// x86_64 only (the plan never asks for it on arm64; asked anyway, it is an error).
pub fn build(
    root: &Path,
    arch: Arch,
    with_stage1: bool,
    with_test_programs: bool,
) -> Result<Vec<(String, PathBuf)>> {
    crate::host::ensure_rust_target(root, arch.rust_target())?;
    let dir = crate::artifacts::target_dir(root)
        .join(arch.rust_target())
        .join("release");

    if with_stage1 {
        if arch != Arch::X86_64 {
            bail!(
                "stage 1 of the network boot (nekos-stboot) is built for x86_64 only, not {arch}"
            );
        }
        let mut stage1_cmd = cargo_build(root, arch);
        stage1_cmd.args(["-p", "nekos-stboot"]);
        run(stage1_cmd, "stage 1 of the network boot (nekos-stboot)")?;
        check_static_for(&stage1_program_path(root), arch)?;
    }

    if with_test_programs {
        let mut packages: Vec<&str> = PROGRAMS.iter().filter(|p| p.3).map(|p| p.0).collect();
        packages.dedup();
        let mut test_cmd = cargo_build(root, arch);
        for p in &packages {
            test_cmd.args(["-p", p]);
        }
        run(
            test_cmd,
            &format!("the test programs ({})", packages.join(", ")),
        )?;
    }

    run(
        cargo_build(root, arch),
        &format!("the production userland for {arch} (init, compositor, viewer, snpcheck)"),
    )?;

    let mut out = Vec::new();
    for (_, bin, _, test_only) in PROGRAMS {
        if *test_only && !with_test_programs {
            continue;
        }
        let path = dir.join(bin);
        check_static_for(&path, arch)?;
        out.push((bin.to_string(), path));
    }
    Ok(out)
}

/// ELF `e_machine` of `arch` (System V ABI: EM_X86_64 = 62, EM_AARCH64 = 183).
pub fn elf_machine(arch: Arch) -> u16 {
    match arch {
        Arch::X86_64 => 62,
        Arch::Aarch64 => 183,
    }
}

fn machine_name(machine: u16) -> String {
    match Arch::ALL.into_iter().find(|a| elf_machine(*a) == machine) {
        Some(a) => format!("{a} (EM {machine})"),
        None => format!("machine {machine}"),
    }
}

/// Fails unless `path` is an x86_64 ELF64 executable with no PT_INTERP and no DT_NEEDED.
pub fn check_static(path: &Path) -> Result<()> {
    check_static_for(path, Arch::X86_64)
}

/// Fails unless `path` is an ELF64 executable for `arch` with no PT_INTERP and no DT_NEEDED.
pub fn check_static_for(path: &Path, arch: Arch) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    check_static_bytes(&bytes, &path.display().to_string(), arch)
}

/// [`check_static`] on bytes already read; `name` is how errors name the file.
pub fn check_static_bytes(bytes: &[u8], name: &str, arch: Arch) -> Result<()> {
    let machine = read_u16(bytes, 0x12).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if bytes.get(..4) == Some(b"\x7fELF") && machine != elf_machine(arch) {
        bail!(
            "{name} is an ELF file for {}, expected {} for arch {arch}",
            machine_name(machine),
            machine_name(elf_machine(arch))
        );
    }
    let path = name;
    match elf_dynamic_deps(bytes) {
        Ok(deps) if deps.interp.is_none() && deps.needed == 0 => Ok(()),
        Ok(deps) => bail!(
            "{path} is not fully static: interpreter {:?}, {} NEEDED entries",
            deps.interp,
            deps.needed
        ),
        Err(e) => bail!("{path}: {e}"),
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
    fn the_elf_machine_must_be_the_arch_s() {
        // /bin/sh of the (x86_64) build host, given where an arm64 binary is expected.
        let sh = std::fs::read("/bin/sh").unwrap();
        let e = check_static_bytes(&sh, "bin/sh-here", Arch::Aarch64)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "bin/sh-here is an ELF file for x86_64 (EM 62), expected aarch64 (EM 183) for arch aarch64"
        );
        // For x86_64 the machine fits and the next check speaks: it is dynamic.
        let e = check_static_bytes(&sh, "bin/sh-here", Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not fully static"), "{e}");
        let mut arm = sh.clone();
        arm[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
        let e = check_static_bytes(&arm, "x", Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("aarch64 (EM 183), expected x86_64 (EM 62)"),
            "{e}"
        );
        assert!(check_static_bytes(b"\x7fE", "short", Arch::X86_64).is_err());
    }

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
