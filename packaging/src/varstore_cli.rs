//! `cargo nekos varstore`: a preset store written as QEMU `uefi-vars` JSON and/or a raw
//! OVMF_VARS image.

use anyhow::{Result, bail};
use nekos_build::varstore::{Preset, build, write_outputs};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct VarstoreArgs {
    /// blank: no variables, Secure Boot off. microsoft: Red Hat PK (virt-fw-vars
    /// --enroll-redhat), Microsoft KEK 2011+2023, db with Windows PCA 2011, Windows UEFI CA
    /// 2023, UEFI CA 2011 and 2023, Option ROM UEFI CA 2023; Secure Boot on. custom: PK/KEK/db
    /// from --keys; Secure Boot on.
    #[arg(long, value_parser = ["blank", "microsoft", "custom"])]
    pub preset: String,
    /// The hierarchy for `custom` (default: the NekOS keys directory).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Write the store as QEMU `uefi-vars` JSON (`-device uefi-vars-x64,jsonfile=`).
    #[arg(long, value_name = "FILE", required_unless_present = "ovmf_vars")]
    pub uefi_vars: Option<PathBuf>,
    /// Write the store as a raw OVMF_VARS image (pflash).
    #[arg(long, value_name = "FILE")]
    pub ovmf_vars: Option<PathBuf>,
    /// A blank OVMF_VARS to start the raw image from (default: the built-in 4 MiB template).
    #[arg(long, requires = "ovmf_vars")]
    pub template: Option<PathBuf>,
}

pub fn varstore(a: VarstoreArgs) -> Result<()> {
    if a.keys.is_some() && a.preset != "custom" {
        bail!("varstore: --keys only applies to --preset custom");
    }
    let preset = Preset::from_name(&a.preset, a.keys)?;
    let store = build(&preset)?;
    write_outputs(
        &store,
        a.uefi_vars.as_deref(),
        a.ovmf_vars.as_deref(),
        a.template.as_deref(),
    )?;
    for p in [&a.uefi_vars, &a.ovmf_vars].into_iter().flatten() {
        println!("varstore: wrote {}", p.display());
    }
    Ok(())
}
