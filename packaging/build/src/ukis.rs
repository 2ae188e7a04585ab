//! The UKI build step: `make-uki` on the built kernel and an initramfs, signed with the
//! user's db key, skipped when its input hash is that of the previous build.

use crate::arch::Arch;
use crate::artifacts::{FileArtifact, UkiArtifact};
use crate::util::{self, sha256_hex};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The command line embedded in every UKI's `.cmdline` (the firmware passes none).
pub const UKI_CMDLINE: &str = "panic=-1 console=tty0 console=ttyS0";

/// The embedded command line of `arch`'s UKI: the same words, with that architecture's
/// serial console last (the PL011 `ttyAMA0` on arm64), so it becomes /dev/console.
pub fn uki_cmdline(arch: Arch) -> String {
    match arch {
        Arch::X86_64 => UKI_CMDLINE.to_string(),
        _ => format!("panic=-1 console=tty0 console={}", arch.serial_console()),
    }
}

/// The Secure Boot keys used for signing: the user's hierarchy in the documented keys
/// directory, created on first use (private keys 0600, never inside the repository).
pub fn signing_keys_dir() -> Result<PathBuf> {
    let dir = crate::keys::default_keys_dir();
    if !dir.join("db.key").is_file() {
        eprintln!(
            "nekos: no Secure Boot keys in {}; creating a new PK/KEK/db hierarchy there",
            dir.display()
        );
        let hierarchy = crate::keys::generate_hierarchy(None)?;
        crate::keys::write_hierarchy(&dir, &hierarchy, false)?;
    }
    Ok(dir)
}

/// What a UKI is made from: name → sha256 or value (the step's declared inputs).
fn uki_inputs(
    arch: Arch,
    kernel: &Path,
    initramfs: &Path,
    cmdline: &str,
) -> Result<BTreeMap<String, String>> {
    let keys_dir = signing_keys_dir()?;
    let mut inputs = BTreeMap::new();
    inputs.insert("kernel".to_string(), util::sha256_file(kernel)?);
    inputs.insert("initramfs".to_string(), util::sha256_file(initramfs)?);
    inputs.insert("cmdline".to_string(), cmdline.to_string());
    inputs.insert(
        "os-release".to_string(),
        sha256_hex(crate::uki::NEKOS_OS_RELEASE.as_bytes()),
    );
    inputs.insert(
        "stub".to_string(),
        util::sha256_file(&crate::uki::stub::pinned_stub_path_for(arch)?)?,
    );
    inputs.insert(
        "db.crt".to_string(),
        util::sha256_file(&keys_dir.join("db.crt"))?,
    );
    inputs.insert(
        "db.key".to_string(),
        util::sha256_file(&keys_dir.join("db.key"))?,
    );
    Ok(inputs)
}

/// The UKI step named `step` (`uki-production`, `uki-test`): `make-uki` on the built kernel
/// and an initramfs, `nekos.efi` and `nekos.signed.efi` in `out_dir`; skipped when the
/// freshness rule says its outputs are those of the previous build. Returns the artifact and
/// whether it was up to date.
pub fn uki_step(
    root: &Path,
    step: &str,
    kernel: &Path,
    initramfs: &Path,
    out_dir: &Path,
    previous: Option<&UkiArtifact>,
) -> Result<(UkiArtifact, bool)> {
    uki_step_for(
        Arch::X86_64,
        root,
        step,
        kernel,
        initramfs,
        out_dir,
        previous,
    )
}

/// [`uki_step`] for `arch`: that architecture's pinned stub and [`uki_cmdline`]; the kernel
/// (an arm64 `Image` for aarch64) must be a PE image for `arch`, else the step fails naming
/// the file and the expected architecture. `step` names the record (e.g.
/// `aarch64-uki-production`), so the two architectures never share one.
pub fn uki_step_for(
    arch: Arch,
    root: &Path,
    step: &str,
    kernel: &Path,
    initramfs: &Path,
    out_dir: &Path,
    previous: Option<&UkiArtifact>,
) -> Result<(UkiArtifact, bool)> {
    let cmdline = uki_cmdline(arch);
    let inputs = uki_inputs(arch, kernel, initramfs, &cmdline)?;
    let fresh = crate::steps::Freshness::new(root, step, &inputs);
    if let Some(prev) = previous
        && prev.input_hash == fresh.input_hash
        && fresh.up_to_date()
    {
        return Ok((prev.clone(), true));
    }
    let art = write_uki(
        arch,
        kernel,
        initramfs,
        out_dir,
        step,
        fresh.input_hash.clone(),
    )?;
    fresh.record([art.unsigned.path.as_path(), art.signed.path.as_path()])?;
    Ok((art, false))
}

/// A UKI that is part of another step's outputs (the stage-1 UKI of the `stboot` step, whose
/// own record covers it): written every time, no record of its own, so that building it
/// elsewhere (the reproducibility test) never touches the build's records.
pub fn part_of_step(
    step: &str,
    kernel: &Path,
    initramfs: &Path,
    out_dir: &Path,
) -> Result<UkiArtifact> {
    let inputs = uki_inputs(Arch::X86_64, kernel, initramfs, UKI_CMDLINE)?;
    let input_hash = crate::steps::Freshness::input_hash_of(step, &inputs);
    write_uki(Arch::X86_64, kernel, initramfs, out_dir, step, input_hash)
}

/// `make-uki` with the user's db key; `label` names the UKI in the progress line.
fn write_uki(
    arch: Arch,
    kernel: &Path,
    initramfs: &Path,
    out_dir: &Path,
    label: &str,
    input_hash: String,
) -> Result<UkiArtifact> {
    let keys_dir = signing_keys_dir()?;
    let out_dir = out_dir.to_path_buf();
    let cmdline = uki_cmdline(arch);
    let out = crate::uki::make_uki(&crate::uki::MakeUkiOptions {
        kernel: kernel.to_path_buf(),
        initramfs: initramfs.to_path_buf(),
        cmdline: cmdline.clone(),
        // The same os-release as the initramfs's /etc/os-release (both from data/os-release).
        os_release: None,
        uname: None,
        stub: None,
        arch: Some(arch),
        sbat: None,
        keys_dir: Some(keys_dir),
        out_dir,
    })?;
    let file = |path: &Path| -> Result<FileArtifact> {
        let bytes = fs::read(path)?;
        Ok(FileArtifact {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
            inputs: BTreeMap::new(),
        })
    };
    let signed = out.signed.as_deref().context("make-uki did not sign")?;
    let authenticode = out.manifest_json["unsigned"]["authenticode_sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let art = UkiArtifact {
        cmdline,
        unsigned: file(&out.unsigned)?,
        signed: file(signed)?,
        authenticode_sha256: authenticode,
        make_uki: out.manifest_json,
        input_hash,
    };
    eprintln!(
        "nekos: UKI {label}: nekos.efi sha256 {}, nekos.signed.efi sha256 {}",
        &art.unsigned.sha256[..16],
        &art.signed.sha256[..16]
    );
    Ok(art)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_cmdline_is_x86s_with_the_pl011_console_last() {
        assert_eq!(uki_cmdline(Arch::X86_64), UKI_CMDLINE);
        assert_eq!(
            uki_cmdline(Arch::Aarch64),
            UKI_CMDLINE.replace("console=ttyS0", "console=ttyAMA0")
        );
    }
}
