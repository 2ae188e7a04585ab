//! `cargo nekos snp-measure` and the judge (`sev-snp-measure`). The SEV-SNP launch digest
//! itself is `nekos_formats::snp`, re-exported here.

pub mod judge;

pub use nekos_formats::snp::*;

use anyhow::{Context, Result, anyhow, bail};

const USAGE: &str = "usage: cargo nekos snp-measure --ovmf OVMF.fd [--kernel K [--initrd I] [--append CMDLINE]]
    --vcpus N --vcpu-type TYPE [--guest-features 0x1] [--mode snp] [--vmm-type QEMU]
  Prints the SEV-SNP launch digest (hex). TYPE: EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3],
  EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin. The cmdline is measured verbatim (not trimmed).";

/// `cargo nekos snp-measure …` (arguments after the verb; a leading `snp-measure` is skipped).
pub fn cli_main(args: Vec<String>) -> anyhow::Result<()> {
    let mut it = args.into_iter().peekable();
    if it.peek().map(String::as_str) == Some("snp-measure") {
        it.next();
    }
    let (mut ovmf, mut kernel, mut initrd, mut append) = (None, None, None, None);
    let (mut vcpus, mut vcpu_type, mut features) = (None, None, DEFAULT_GUEST_FEATURES);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                // Any next argument is a value, even one starting with '-' or ' '.
                None => it
                    .next()
                    .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}")),
            }
        };
        match flag.as_str() {
            "--ovmf" => ovmf = Some(value()?),
            "--kernel" => kernel = Some(value()?),
            "--initrd" => initrd = Some(value()?),
            "--append" => append = Some(value()?),
            "--vcpus" => {
                let v = value()?;
                vcpus = Some(v.parse::<u32>().with_context(|| format!("--vcpus {v:?}"))?);
            }
            "--vcpu-type" => {
                let v = value()?;
                vcpu_type = Some(
                    VcpuType::from_name(&v)
                        .ok_or_else(|| anyhow!("unknown --vcpu-type {v:?}\n{USAGE}"))?,
                );
            }
            "--guest-features" => features = parse_u64(&value()?)?,
            "--mode" => {
                let v = value()?;
                if !matches!(v.as_str(), "snp" | "sev-snp" | "SNP" | "SEV-SNP") {
                    bail!("only --mode snp is supported, not {v:?}");
                }
            }
            "--vmm-type" => {
                let v = value()?;
                if v != "QEMU" {
                    bail!("only --vmm-type QEMU is supported, not {v:?}");
                }
            }
            _ => bail!("unknown argument {a:?}\n{USAGE}"),
        }
    }
    let ovmf = ovmf.ok_or_else(|| anyhow!("missing --ovmf\n{USAGE}"))?;
    let vcpus = vcpus.ok_or_else(|| anyhow!("missing --vcpus\n{USAGE}"))?;
    let vcpu_type = vcpu_type.ok_or_else(|| anyhow!("missing --vcpu-type\n{USAGE}"))?;
    let read = |p: &str| std::fs::read(p).with_context(|| format!("reading {p}"));
    let ovmf_b = read(&ovmf)?;
    let kernel_b = kernel.as_deref().map(read).transpose()?;
    let initrd_b = initrd.as_deref().map(read).transpose()?;
    let d = launch_digest(&Inputs {
        ovmf: &ovmf_b,
        kernel: kernel_b.as_deref(),
        initrd: initrd_b.as_deref(),
        append: append.as_deref(),
        vcpus,
        vcpu_type,
        guest_features: features,
    })?;
    println!("{}", hex::encode(d));
    Ok(())
}

fn parse_u64(s: &str) -> Result<u64> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    r.with_context(|| format!("not a number: {s:?}"))
}
