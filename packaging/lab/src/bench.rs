//! `cargo nekos bench`: build times, sizes and TCG boot times (median of N). Timing goals
//! live here, never in tests. `--compare` (issue #15's comparison with the bare probe and
//! busybox + cage + swayimg) is bench_compare.rs.

use crate::deployments::{DEPLOYMENTS, Deployment, Outcome};
use crate::qemu::{BootOptions, Vm};
use anyhow::{Context, Result};
use nekos_build::arch::Arch;
use nekos_build::artifacts::Manifest;
use nekos_build::initramfs::Compression;
use nekos_build::util::median;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// The console line that ends a deployment's boot for the bench.
fn marker(dep: &Deployment) -> &'static str {
    match dep.outcome {
        Outcome::BootOk => "nekos: boot ok",
        Outcome::RootFsPanic => "Unable to mount root fs",
        // Time to the refusal: when the firmware has given up on every boot option.
        Outcome::Refused => crate::deployments::FIRMWARE_GAVE_UP,
        // Time to stage 1's reason line.
        Outcome::Stage1Refused(reason) => reason,
    }
}

/// Seconds from QEMU start to the deployment's success marker, `runs` times.
pub fn boot_times(manifest: &Manifest, name: &str, runs: usize) -> Result<Vec<f64>> {
    let dep = crate::deployments::find(name)?;
    let stboot = dep.payload.is_stboot();
    let marker = marker(dep);
    let mut out = Vec::new();
    for _ in 0..runs {
        let vm = Vm::start(dep, manifest, &BootOptions::default())?;
        let limit = Duration::from_secs(if stboot { 300 } else { 120 });
        // Stage 1's init also says `boot ok`: for the network boot, the second kernel's.
        let from = if stboot && dep.outcome == Outcome::BootOk {
            vm.wait_from(0, crate::deployments::STARTED_BY_STBOOT, limit)?
        } else {
            0
        };
        vm.wait_from(from, marker, limit)?;
        out.push(vm.started.elapsed().as_secs_f64());
    }
    Ok(out)
}

/// The manifest's build times: the clean build recorded with each cache entry, and how long
/// the same step takes now that it is cached (kernel and firmware of the manifest's arch).
fn build_times(root: &Path, manifest: &Manifest) -> Result<Value> {
    let arch = manifest.arch;
    let mut report = json!({});
    if let Some(k) = &manifest.kernel {
        let started = Instant::now();
        let opts = nekos_build::kernel::KernelOptions {
            arch,
            ..Default::default()
        };
        nekos_build::kernel::ensure(root, &opts)?;
        report["kernel"] = json!({
            "clean_build_seconds": k.clean_build_seconds,
            "cached_build_seconds": started.elapsed().as_secs_f64(),
            "image_bytes": std::fs::metadata(&k.bzimage)?.len(),
            "sha256": k.sha256,
        });
    }
    if let Some(fw) = &manifest.firmware {
        let started = Instant::now();
        nekos_build::firmware::ensure(root, &nekos_build::firmware::FirmwareOptions::default())?;
        report["firmware"] = json!({
            "clean_build_seconds": fw.clean_build_seconds,
            "cached_build_seconds": started.elapsed().as_secs_f64(),
            "pv_vars_sha256": fw.pv_vars_sha256,
            "amdsev_sha256": fw.amdsev_sha256,
        });
    }
    if let Some(fw) = &manifest.firmware_aarch64 {
        let started = Instant::now();
        nekos_build::firmware_aarch64::ensure(root, &Default::default())?;
        report["firmware"] = json!({
            "clean_build_seconds": fw.clean_build_seconds,
            "cached_build_seconds": started.elapsed().as_secs_f64(),
            "code_sha256": fw.code_sha256,
            "vars_sha256": fw.vars_sha256,
        });
    }
    Ok(report)
}

pub fn run(root: &Path, manifest: &Manifest, runs: usize, only: &[String]) -> Result<Value> {
    let mut report = build_times(root, manifest)?;
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
        let cats: u64 = manifest
            .cats
            .keys()
            .filter_map(|n| std::fs::metadata(root.join("cats").join(n)).ok())
            .map(|m| m.len())
            .sum();
        initramfs["cats"] = json!(cats);
        report["initramfs_bytes"] = initramfs;
    }
    let mut boots = json!({});
    for dep in DEPLOYMENTS {
        if !only.is_empty() && !only.iter().any(|o| o == dep.name) {
            continue;
        }
        let times = boot_times(manifest, dep.name, runs)?;
        eprintln!(
            "nekos: bench {}: median {:.2}s of {:?}",
            dep.name,
            median(times.clone()),
            times
        );
        boots[dep.name] = json!({ "median_seconds": median(times.clone()), "runs": times });
    }
    report["boot_to_marker"] = boots;
    if only.is_empty() || only.iter().any(|o| o == "kernel,initramfs") {
        report["first_frame"] = first_frame(manifest, runs)?;
    }
    report["decode_and_scale_ms"] = decode_times(root)?;
    // Needs the pinned AmdSev firmware and the sev-snp-measure judge (host-setup.sh); a
    // machine without them still gets the other numbers.
    report["snp_launch_digest"] = nekos_build::snpmeasure::judge::bench(runs)
        .unwrap_or_else(|e| json!({ "error": format!("{e:#}") }));
    Ok(report)
}

fn number_after(text: &str, prefix: &str) -> Option<f64> {
    let start = text.find(prefix)? + prefix.len();
    text[start..].split_whitespace().next()?.parse().ok()
}

/// `/init` → first frame on screen (both from the guest's CLOCK_BOOTTIME: init's
/// `started N ms after kernel start` and the compositor's `first frame after N ms`), QEMU
/// start → first frame (host clock), and the RSS of compositor and viewer afterwards.
/// Kept as the guest's own view and a quick number; `bench --compare` (bench_compare.rs)
/// times the first cat from outside, by screendumps, next to the probe and the reference.
fn first_frame(manifest: &Manifest, runs: usize) -> Result<Value> {
    let dep = crate::deployments::find("kernel,initramfs")?;
    let mut init_to_frame = Vec::new();
    let mut qemu_to_frame = Vec::new();
    let mut rss = json!({});
    for run in 0..runs {
        let opts = BootOptions {
            cmdline: vec!["nekos.seed=1".into(), "nekos.interval=3600".into()],
            ..BootOptions::default()
        };
        let mut vm = Vm::start(dep, manifest, &opts)?;
        let end = vm.wait_from(0, "nekos: first frame after ", Duration::from_secs(120))?;
        qemu_to_frame.push(vm.started.elapsed().as_secs_f64());
        vm.wait_from(end, " ms", Duration::from_secs(10))?;
        let text = vm.transcript();
        let init_ms = number_after(&text, "nekos: started ").unwrap_or(f64::NAN);
        let frame_ms = number_after(&text, "nekos: first frame after ").unwrap_or(f64::NAN);
        init_to_frame.push((frame_ms - init_ms) / 1000.0);
        if run == 0 {
            vm.wait_for("nekos# ", Duration::from_secs(30))?;
            let ps = vm.run_at_prompt("ps", Duration::from_secs(30))?;
            for line in ps.lines() {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.len() >= 4 && (cols[3].contains("compositor") || cols[3].contains("viewer"))
                {
                    let status = vm.run_at_prompt(
                        &format!("cat /proc/{}/status", cols[0]),
                        Duration::from_secs(30),
                    )?;
                    if let Some(kb) = number_after(&status, "VmRSS:") {
                        rss[cols[3]] = json!(kb * 1024.0);
                    }
                }
            }
        }
    }
    eprintln!(
        "nekos: bench first frame: /init→frame median {:.2}s, QEMU→frame median {:.2}s",
        median(init_to_frame.clone()),
        median(qemu_to_frame.clone())
    );
    Ok(json!({
        "init_to_first_frame_seconds": { "median": median(init_to_frame.clone()), "runs": init_to_frame },
        "qemu_start_to_first_frame_seconds": { "median": median(qemu_to_frame.clone()), "runs": qemu_to_frame },
        "rss_bytes_after_first_frame": rss,
    }))
}

/// Native (host) decode + fit-scale to 1280×800 per photo, median of 5.
fn decode_times(root: &Path) -> Result<Value> {
    let mut out = json!({});
    for path in nekos_viewer::config::list_photos(&root.join("cats"))? {
        let bytes = std::fs::read(&path)?;
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            nekos_viewer::render_frame(&bytes, 1280, 800, nekos_viewer::ScaleMode::Fit)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out[name] = json!(median(times));
    }
    Ok(out)
}

/// `bench --twins`: every arm64 deployment next to its x86 twin ([`Deployment::x86_twin`]),
/// booted alternately (arm64, x86, arm64, …) so both see the same host load; plus both
/// architectures' kernel and firmware build times.
pub fn twins(root: &Path, x86: &Manifest, arm64: &Manifest, runs: usize) -> Result<Value> {
    let mut pairs = Vec::new();
    for dep in DEPLOYMENTS.iter().filter(|d| d.arch == Arch::Aarch64) {
        let twin = dep
            .x86_twin()
            .with_context(|| format!("{} has no x86 twin", dep.name))?;
        let (mut arm_times, mut x86_times) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            arm_times.extend(boot_times(arm64, dep.name, 1)?);
            x86_times.extend(boot_times(x86, twin.name, 1)?);
        }
        let (a, x) = (median(arm_times.clone()), median(x86_times.clone()));
        eprintln!(
            "nekos: bench {}: median {a:.2}s, {}: median {x:.2}s",
            dep.name, twin.name
        );
        pairs.push(json!({
            "aarch64": dep.name,
            "x86_64": twin.name,
            "marker": marker(dep),
            "aarch64_seconds": { "median": a, "runs": arm_times },
            "x86_64_seconds": { "median": x, "runs": x86_times },
            "ratio": a / x,
        }));
    }
    Ok(json!({
        "runs": runs,
        "host_load_1min": load_average(),
        "boot_to_marker": pairs,
        "builds": {
            "x86_64": build_times(root, x86)?,
            "aarch64": build_times(root, arm64)?,
        },
    }))
}

/// The twins report as a Markdown table (what the closing note and README quote).
pub fn twins_markdown(report: &Value) -> String {
    let mut md = String::from(
        "| arm64 deployment | x86 twin | marker | arm64 median (s) | x86 median (s) | arm64 ÷ x86 |\n\
         |---|---|---|---|---|---|\n",
    );
    for p in report["boot_to_marker"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "| `{}` | `{}` | `{}` | {:.2} | {:.2} | {:.2}× |\n",
            p["aarch64"].as_str().unwrap_or_default(),
            p["x86_64"].as_str().unwrap_or_default(),
            p["marker"].as_str().unwrap_or_default(),
            p["aarch64_seconds"]["median"].as_f64().unwrap_or(f64::NAN),
            p["x86_64_seconds"]["median"].as_f64().unwrap_or(f64::NAN),
            p["ratio"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    md.push_str("\n| build | arch | clean (s) | cached (s) |\n|---|---|---|---|\n");
    for arch in ["x86_64", "aarch64"] {
        for step in ["kernel", "firmware"] {
            let b = &report["builds"][arch][step];
            if b.is_object() {
                md.push_str(&format!(
                    "| {step} | {arch} | {:.0} | {:.2} |\n",
                    b["clean_build_seconds"].as_f64().unwrap_or(f64::NAN),
                    b["cached_build_seconds"].as_f64().unwrap_or(f64::NAN),
                ));
            }
        }
    }
    md
}

/// The host's 1-minute load average when the bench ran (timings depend on it).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use nekos_build::util::median;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
