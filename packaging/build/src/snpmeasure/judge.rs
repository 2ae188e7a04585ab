//! The reference implementation and the test firmware, both pinned: PyPI `sev-snp-measure`
//! in /opt/nekos/snp-venv and Debian sid's prebuilt `ovmf-amdsev` (OVMF.amdsev.fd), both set
//! up by packaging/host-setup.sh. Also the benchmark our computation vs the judge's.

use super::{Inputs, VcpuType, launch_digest};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Debian sid's `ovmf-amdsev`: version, .deb SHA-256 and the firmware's path in it are the
/// `[ovmf-amdsev]` table of `packaging/debian-packages.lock` (moved by `cargo nekos lock`).
pub const OVMF_AMDSEV_PACKAGE: &str = "ovmf-amdsev";

/// The pin of the SNP test firmware.
pub fn ovmf_amdsev_pin() -> Result<crate::pins::DebPin> {
    crate::pins::debian_pin(OVMF_AMDSEV_PACKAGE)
}

/// The pinned judge version (also pinned in packaging/host-setup.sh).
pub const SEV_SNP_MEASURE_VERSION: &str = "0.0.13";
/// Where host-setup.sh installs it; `NEKOS_SEV_SNP_MEASURE` overrides.
pub const SEV_SNP_MEASURE_DEFAULT: &str = "/opt/nekos/snp-venv/bin/sev-snp-measure";

const FIX: &str = "run packaging/host-setup.sh as root (adds Debian sid at apt pin priority 1 and \
                   creates /opt/nekos/snp-venv with sev-snp-measure==0.0.13)";

/// Downloads (once, cached under ~/.cache/nekos/deb-<sha256>) and returns OVMF.amdsev.fd.
pub fn pinned_ovmf_amdsev() -> Result<PathBuf> {
    let pin = ovmf_amdsev_pin()?;
    let (pkg, ver) = (&pin.package, &pin.version);
    let fd = pin.fetch_file().with_context(|| {
        format!(
            "fetching the SNP test firmware {pkg}={ver} from Debian sid: {FIX}; if sid has moved \
             past {ver}, move the pin in {} with `cargo nekos lock`",
            crate::pins::DEBIAN_LOCK
        )
    })?;
    if !fd.is_file() {
        bail!("{} is missing from the unpacked {pkg}={ver}", fd.display());
    }
    Ok(fd)
}

/// The judge's executable, checked to be the pinned version.
pub fn judge_path() -> Result<PathBuf> {
    let p = std::env::var_os("NEKOS_SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SEV_SNP_MEASURE_DEFAULT));
    let out = Command::new(&p)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "running {} --version: the judge sev-snp-measure is missing; {FIX}",
                p.display()
            )
        })?;
    let v = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || v.split_whitespace().last() != Some(SEV_SNP_MEASURE_VERSION) {
        bail!(
            "{} --version printed {:?}, expected sev-snp-measure {SEV_SNP_MEASURE_VERSION}; {FIX}",
            p.display(),
            v.trim()
        );
    }
    Ok(p)
}

/// File-based inputs, as both tools take them.
#[derive(Clone, Debug)]
pub struct FileInputs<'a> {
    pub ovmf: &'a Path,
    pub kernel: Option<&'a Path>,
    pub initrd: Option<&'a Path>,
    pub append: Option<&'a str>,
    pub vcpus: u32,
    pub vcpu_type: VcpuType,
    pub guest_features: u64,
}

/// Our digest, reading the files.
pub fn ours(f: &FileInputs) -> Result<[u8; 48]> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let ovmf = read(f.ovmf)?;
    let kernel = f.kernel.map(read).transpose()?;
    let initrd = f.initrd.map(read).transpose()?;
    launch_digest(&Inputs {
        ovmf: &ovmf,
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        append: f.append,
        vcpus: f.vcpus,
        vcpu_type: f.vcpu_type,
        guest_features: f.guest_features,
    })
}

/// The judge's digest for the same inputs.
pub fn judge(judge: &Path, f: &FileInputs) -> Result<[u8; 48]> {
    let mut c = Command::new(judge);
    c.args([
        "--mode",
        "snp",
        "--vmm-type",
        "QEMU",
        "--output-format",
        "hex",
    ])
    .arg(format!("--vcpus={}", f.vcpus))
    .arg(format!("--vcpu-type={}", f.vcpu_type.name()))
    .arg(format!("--guest-features={:#x}", f.guest_features))
    .arg("--ovmf")
    .arg(f.ovmf);
    if let Some(k) = f.kernel {
        c.arg("--kernel").arg(k);
    }
    if let Some(i) = f.initrd {
        c.arg("--initrd").arg(i);
    }
    if let Some(a) = f.append {
        // The `=` form keeps argparse from reading a leading '-' as an option.
        c.arg(format!("--append={a}"));
    }
    let out = c
        .output()
        .with_context(|| format!("running {}", judge.display()))?;
    if !out.status.success() {
        bail!(
            "sev-snp-measure failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().last().unwrap_or_default().trim();
    let v =
        hex::decode(line).with_context(|| format!("sev-snp-measure printed {line:?}, not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| anyhow!("sev-snp-measure printed {} bytes, not 48", v.len()))
}

/// Times our digest and the judge's for the same inputs (the pinned firmware, synthetic
/// 8 MiB kernel and 16 MiB initrd, 4 EPYC-Milan vCPUs), `runs` times each. Our time includes
/// reading the files, the judge's its process start. Returns medians and the ratio.
pub fn bench(runs: usize) -> Result<Value> {
    let runs = runs.max(1);
    let fw = pinned_ovmf_amdsev()?;
    let jp = judge_path()?;
    let dir =
        std::env::temp_dir().join(format!("nekos-snpm-bench-{}", crate::util::unique_suffix()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<Value> {
        let kernel = dir.join("bzImage");
        let initrd = dir.join("initrd");
        std::fs::write(&kernel, synthetic(8 << 20, 1))?;
        std::fs::write(&initrd, synthetic(16 << 20, 2))?;
        let f = FileInputs {
            ovmf: &fw,
            kernel: Some(&kernel),
            initrd: Some(&initrd),
            append: Some(" console=ttyS0 quiet "),
            vcpus: 4,
            vcpu_type: VcpuType::EpycMilan,
            guest_features: super::DEFAULT_GUEST_FEATURES,
        };
        let (mut t_ours, mut t_judge) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let a = ours(&f)?;
            t_ours.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let b = judge(&jp, &f)?;
            t_judge.push(t.elapsed().as_secs_f64());
            if a != b {
                bail!(
                    "digest mismatch: ours {} judge {}",
                    hex::encode(a),
                    hex::encode(b)
                );
            }
        }
        let (o, j) = (crate::util::median(t_ours), crate::util::median(t_judge));
        Ok(json!({
            "runs": runs,
            "ours_seconds": o,
            "sev_snp_measure_seconds": j,
            "judge_over_ours": j / o,
        }))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub use nekos_formats::snp::synth::synthetic;
