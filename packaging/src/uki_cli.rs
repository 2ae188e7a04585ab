//! The command-line verbs of the UKI/Secure Boot tools. `cli_main(args)` takes the verb and
//! its arguments (without the program name), e.g. `["make-uki", "--kernel", "bzImage", …]`.

use crate::keys::{self, KeySigner};
use anyhow::{Context, Result, anyhow, bail};
use nekos_build::authenticode;
use nekos_build::uki::*;
use std::path::PathBuf;

pub const USAGE: &str = "\
usage:
  cargo nekos keys [--dir DIR] [--force] [--seed HEX]
      create the PK/KEK/db hierarchy (default DIR: $NEKOS_KEYS_DIR or ~/.config/nekos/keys);
      --seed makes INSECURE deterministic keys for tests
  cargo nekos make-uki --kernel BZIMAGE --initramfs FILE [--cmdline STR | --cmdline-file F]
      [--keys DIR | --no-sign] [--out-dir DIR] [--uname STR] [--os-release F] [--stub F] [--sbat TEXT|@F]
      -> DIR/nekos.efi, DIR/nekos.signed.efi, DIR/nekos.uki.json
  cargo nekos uki --linux BZIMAGE --initrd FILE [--initrd FILE…] [--cmdline STR]
      [--os-release F] [--uname STR] [--stub F] [--sbat TEXT|@F] --output OUT.efi
  cargo nekos sign [--keys DIR | --key KEY --cert CERT] IN.efi OUT.efi
  cargo nekos verify --cert CERT FILE.efi
  cargo nekos inspect [--json] FILE.efi
  cargo nekos stub            (fetch the pinned systemd-stub, print its path)";

/// Dispatches `keys | make-uki | uki | sign | verify | inspect | stub`.
pub fn cli_main(args: Vec<String>) -> Result<()> {
    let Some((verb, rest)) = args.split_first() else {
        println!("{USAGE}");
        bail!("missing verb");
    };
    match verb.as_str() {
        "keys" => keys::cli_keys(rest),
        "make-uki" => cli_make_uki(rest),
        "uki" => cli_uki(rest),
        "sign" => cli_sign(rest),
        "verify" => cli_verify(rest),
        "inspect" => cli_inspect(rest),
        "stub" => {
            println!("{}", stub::pinned_stub_path()?.display());
            Ok(())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown verb {other:?}\n{USAGE}"),
    }
}

/// A tiny `--flag value` parser: flags (value-less), options (with a value), positionals.
struct Args {
    opts: Vec<(String, String)>,
    flags: Vec<String>,
    positional: Vec<String>,
}

fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args> {
    let mut out = Args {
        opts: Vec::new(),
        flags: Vec::new(),
        positional: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some((k, v)) = a.split_once('=')
            && with_value.contains(&k)
        {
            out.opts.push((k.to_string(), v.to_string()));
        } else if with_value.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
            out.opts.push((a.clone(), v.clone()));
        } else if flags.contains(&a.as_str()) {
            out.flags.push(a.clone());
        } else if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        } else if a.starts_with("--") {
            bail!("unknown option {a}\n{USAGE}");
        } else {
            out.positional.push(a.clone());
        }
    }
    Ok(out)
}

impl Args {
    fn get(&self, k: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.opts
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn need(&self, k: &str) -> Result<&str> {
        self.get(k).ok_or_else(|| anyhow!("missing {k}\n{USAGE}"))
    }
    fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }
}

fn sbat_arg(v: Option<&str>) -> Result<Option<String>> {
    match v {
        Some(s) if s.starts_with('@') => Ok(Some(
            std::fs::read_to_string(&s[1..])
                .with_context(|| format!("reading --sbat {}", &s[1..]))?,
        )),
        Some(s) => Ok(Some(s.to_string())),
        None => Ok(None),
    }
}

fn cli_make_uki(args: &[String]) -> Result<()> {
    let a = parse(
        args,
        &[
            "--kernel",
            "--initramfs",
            "--cmdline",
            "--cmdline-file",
            "--keys",
            "--out-dir",
            "--uname",
            "--os-release",
            "--stub",
            "--sbat",
        ],
        &["--no-sign"],
    )?;
    let cmdline = match (a.get("--cmdline"), a.get("--cmdline-file")) {
        (Some(c), None) => c.to_string(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading --cmdline-file {f}"))?
        }
        (None, None) => String::new(),
        (Some(_), Some(_)) => bail!("give --cmdline or --cmdline-file, not both"),
    };
    let keys_dir = if a.flag("--no-sign") {
        None
    } else {
        Some(
            a.get("--keys")
                .map(PathBuf::from)
                .unwrap_or_else(keys::default_keys_dir),
        )
    };
    let out = make_uki(&MakeUkiOptions {
        kernel: a.need("--kernel")?.into(),
        initramfs: a.need("--initramfs")?.into(),
        cmdline,
        os_release: a.get("--os-release").map(PathBuf::from),
        uname: a.get("--uname").map(str::to_string),
        stub: a.get("--stub").map(PathBuf::from),
        sbat: sbat_arg(a.get("--sbat"))?,
        keys_dir,
        out_dir: a
            .get("--out-dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into()),
    })?;
    println!("{}", out.unsigned.display());
    if let Some(s) = &out.signed {
        println!("{}", s.display());
    }
    println!("{}", out.manifest.display());
    Ok(())
}

fn cli_uki(args: &[String]) -> Result<()> {
    let a = parse(
        args,
        &[
            "--linux",
            "--initrd",
            "--cmdline",
            "--os-release",
            "--uname",
            "--stub",
            "--sbat",
            "--output",
        ],
        &[],
    )?;
    let linux_path = a.need("--linux")?;
    let linux =
        std::fs::read(linux_path).with_context(|| format!("reading kernel {linux_path}"))?;
    let mut initrds = Vec::new();
    for p in a.all("--initrd") {
        let d = std::fs::read(p).with_context(|| format!("reading initrd {p}"))?;
        if d.is_empty() {
            bail!("initramfs {p} is empty");
        }
        initrds.push(d);
    }
    if initrds.is_empty() {
        bail!("missing --initrd");
    }
    let initrd = join_initrds(&initrds.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let osrel = match a.get("--os-release") {
        Some(p) => std::fs::read_to_string(p.trim_start_matches('@'))
            .with_context(|| format!("reading os-release {p}"))?,
        None => NEKOS_OS_RELEASE.to_string(),
    };
    let stub_bytes = match a.get("--stub") {
        Some(p) => std::fs::read(p).with_context(|| format!("reading stub {p}"))?,
        None => stub::load_pinned_stub()?,
    };
    let uname = match a.get("--uname") {
        Some(u) => Some(u.to_string()),
        None => kernel_release(&linux).ok(),
    };
    let sbat = sbat_arg(a.get("--sbat"))?;
    let uki = build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux: &linux,
        initrd: &initrd,
        cmdline: a.get("--cmdline").unwrap_or(""),
        osrel: &osrel,
        uname: uname.as_deref(),
        sbat: sbat.as_deref(),
    })
    .with_context(|| format!("kernel {linux_path}"))?;
    let out = PathBuf::from(a.need("--output")?);
    crate::keys::write_atomic(&out, &uki, 0o644)?;
    println!("{}", out.display());
    Ok(())
}

fn signer_from(a: &Args) -> Result<KeySigner> {
    match (a.get("--key"), a.get("--cert"), a.get("--keys")) {
        (Some(k), Some(c), None) => crate::keys::load_signer(k.as_ref(), c.as_ref()),
        (None, None, Some(d)) => crate::keys::load_db_signer(d.as_ref()),
        (None, None, None) => crate::keys::load_db_signer(&keys::default_keys_dir()),
        _ => bail!("give either --keys DIR or both --key KEY and --cert CERT"),
    }
}

fn cli_sign(args: &[String]) -> Result<()> {
    let a = parse(args, &["--keys", "--key", "--cert", "--output"], &[])?;
    let signer = signer_from(&a)?;
    let (input, output) = match (a.positional.as_slice(), a.get("--output")) {
        ([i, o], None) => (i.clone(), o.clone()),
        ([i], Some(o)) => (i.clone(), o.to_string()),
        _ => bail!("sign: need IN.efi OUT.efi\n{USAGE}"),
    };
    sign_file(input.as_ref(), output.as_ref(), &signer)?;
    println!("{output}");
    Ok(())
}

fn cli_verify(args: &[String]) -> Result<()> {
    let a = parse(args, &["--cert"], &[])?;
    let cert = keys::load_certificate(a.need("--cert")?.as_ref())?;
    let [file] = a.positional.as_slice() else {
        bail!("verify: need one FILE.efi");
    };
    let data = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let r = authenticode::verify(&data, Some(&cert)).with_context(|| file.clone())?;
    println!(
        "{file}: signature OK, authenticode sha256 {}",
        hex::encode(r.image_sha256)
    );
    Ok(())
}

fn cli_inspect(args: &[String]) -> Result<()> {
    let a = parse(args, &[], &["--json"])?;
    let [file] = a.positional.as_slice() else {
        bail!("inspect: need one FILE.efi");
    };
    let data = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    let info = inspect(&data).with_context(|| file.clone())?;
    if a.flag("--json") {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("{file}: {} bytes, sha256 {}", info.size, info.sha256);
    println!("authenticode sha256: {}", info.authenticode_sha256);
    if let Some(p) = &info.pcr11_sha256 {
        println!("pcr11 sha256 (systemd-stub): {p}");
    }
    match info.signature_verifies {
        None => println!("signature: none"),
        Some(true) => println!("signature: present, verifies with its embedded certificate"),
        Some(false) => println!("signature: present, DOES NOT VERIFY"),
    }
    println!(
        "{:<9} {:>10} {:>10} {:>10}  sha256",
        "section", "vsize", "rawsize", "vaddr"
    );
    for s in &info.sections {
        println!(
            "{:<9} {:>10} {:>10} {:>#10x}  {}",
            s.name, s.virtual_size, s.size_of_raw_data, s.virtual_address, s.sha256
        );
    }
    Ok(())
}
