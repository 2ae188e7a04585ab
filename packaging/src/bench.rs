//! `cargo nekos bench`: build times, sizes and TCG boot times (median of N). Timing goals
//! live here, never in tests.

use crate::artifacts::Manifest;
use crate::deployments::{DEPLOYMENTS, Outcome};
use crate::initramfs::Compression;
use crate::qemu::{BootOptions, Vm};
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

/// Seconds from QEMU start to the deployment's success marker, `runs` times.
pub fn boot_times(manifest: &Manifest, name: &str, runs: usize) -> Result<Vec<f64>> {
    let dep = crate::deployments::find(name)?;
    let marker = match dep.outcome {
        Outcome::BootOk => "nekos: boot ok",
        Outcome::RootFsPanic => "Unable to mount root fs",
    };
    let mut out = Vec::new();
    for _ in 0..runs {
        let vm = Vm::start(dep, manifest, &BootOptions::default())?;
        let t = vm.wait_for(marker, Duration::from_secs(120))?;
        out.push(t.as_secs_f64());
    }
    Ok(out)
}

pub fn run(root: &Path, manifest: &Manifest, runs: usize, only: &[String]) -> Result<Value> {
    let mut report = json!({});
    if let Some(k) = &manifest.kernel {
        let started = Instant::now();
        crate::kernel::ensure(root, &crate::kernel::KernelOptions::default())?;
        report["kernel"] = json!({
            "clean_build_seconds": k.clean_build_seconds,
            "cached_build_seconds": started.elapsed().as_secs_f64(),
            "bzimage_bytes": std::fs::metadata(&k.bzimage)?.len(),
            "sha256": k.sha256,
        });
    }
    let mut sizes = json!({});
    for (name, art) in &manifest.userland {
        sizes[name] = json!(art.size);
    }
    report["userland_bytes"] = sizes;
    if let Some(prod) = manifest.initramfs.get("production") {
        let raw = std::fs::read(&prod.path)?;
        let mut initramfs = json!({ "none": raw.len() });
        for c in [Compression::Gzip, Compression::Zstd] {
            initramfs[format!("{c:?}").to_lowercase()] = json!(c.compress(raw.clone())?.len());
        }
        let cats: u64 = manifest.cats.keys().map(|_| 0).sum::<u64>();
        let _ = cats;
        report["initramfs_bytes"] = initramfs;
    }
    let mut boots = json!({});
    for dep in DEPLOYMENTS {
        if !only.is_empty() && !only.iter().any(|o| o == dep.name) {
            continue;
        }
        let times = boot_times(manifest, dep.name, runs)?;
        eprintln!("nekos: bench {}: median {:.2}s of {:?}", dep.name, median(times.clone()), times);
        boots[dep.name] = json!({ "median_seconds": median(times.clone()), "runs": times });
    }
    report["boot_to_marker"] = boots;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
