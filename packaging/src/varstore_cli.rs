//! `cargo nekos varstore --preset blank|microsoft|custom [--keys DIR] [--json OUT] [--raw OUT]
//! [--template OVMF_VARS_4M.fd]`.

use anyhow::{Result, anyhow, bail};
use nekos_build::varstore::{Preset, build, write_outputs};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo nekos varstore --preset blank|microsoft|custom [--keys DIR]
           [--json OUT.json] [--raw OUT.fd] [--template OVMF_VARS_4M.fd]
  blank:     no variables, Secure Boot off
  microsoft: Red Hat PK (virt-fw-vars --enroll-redhat), Microsoft KEK 2011+2023, db with
             Windows PCA 2011, Windows UEFI CA 2023, UEFI CA 2011 and 2023; Secure Boot on
  custom:    PK/KEK/db from DIR (default $NEKOS_KEYS_DIR or ~/.config/nekos/keys); Secure Boot on
  --json: QEMU uefi-vars JSON; --raw: 4 MiB OVMF_VARS image (built-in blank template unless
  --template is given)";

/// Runs the `varstore` verb. `args` may start with the verb itself.
pub fn cli_main(args: Vec<String>) -> Result<()> {
    let mut it = args.iter().peekable();
    if it.peek().is_some_and(|a| a.as_str() == "varstore") {
        it.next();
    }
    let (mut preset, mut keys, mut json, mut raw, mut template) = (None, None, None, None, None);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}")),
            }
        };
        match flag {
            "--preset" => preset = Some(value()?),
            "--keys" => keys = Some(PathBuf::from(value()?)),
            "--json" => json = Some(PathBuf::from(value()?)),
            "--raw" => raw = Some(PathBuf::from(value()?)),
            "--template" => template = Some(PathBuf::from(value()?)),
            other => bail!("varstore: unknown argument {other:?}\n{USAGE}"),
        }
    }
    let preset = preset.ok_or_else(|| anyhow!("varstore: --preset is required\n{USAGE}"))?;
    if keys.is_some() && preset != "custom" {
        bail!("varstore: --keys only applies to --preset custom");
    }
    if json.is_none() && raw.is_none() {
        bail!("varstore: nothing to write (give --json and/or --raw)\n{USAGE}");
    }
    let preset = Preset::from_name(&preset, keys)?;
    let store = build(&preset)?;
    write_outputs(&store, json.as_deref(), raw.as_deref(), template.as_deref())?;
    for p in [&json, &raw].into_iter().flatten() {
        println!("varstore: wrote {}", p.display());
    }
    Ok(())
}
