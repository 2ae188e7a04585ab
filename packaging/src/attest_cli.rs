//! `cargo nekos attest REPORT`: an SEV-SNP report checked against this build.
//!
//! It verifies the report exactly as `snpcheck verify` does (the same library, the same
//! checks and output), with `--expected-from` set to this build's measurements.json. Before
//! that, the host does what the guest cannot: it checks that measurements.json describes the
//! artifacts of the build (kernel, production initramfs, AmdSev firmware hashed now), and
//! when no listed launch digest matches, it measures the same artifacts with other vCPU
//! counts (1..=[`MAX_VCPUS`]) so the answer can name the launch instead of only missing it.

use crate::artifacts::Manifest;
use crate::measurements;
use crate::snpmeasure::{self, VcpuType};
use crate::util::sha256_hex;
use snpcheck::cli::{EXIT_BAD_INPUT, EXIT_IO};
use snpcheck::expected::{self, Build, Launch};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Other vCPU counts tried when measurements.json lists no match.
pub const MAX_VCPUS: u32 = 16;

pub const EXIT_CODES: &str = "\
Exit codes (snpcheck's): 0 verified and a launch of this build; 1 not verified, or a check \
failed (e.g. the report's POLICY allows debugging, which the build's policy does not); \
2 bad input (malformed report or certificate, a truncated or non-JSON measurements.json, \
or one from another build: its hashes do not match the artifacts); 4 I/O error (a file \
cannot be read); 5 verified, but the MEASUREMENT is no launch digest of this build \
(the closest candidates are listed).";

/// `attest`: the report, its certificates, and the build to compare with.
#[derive(clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct AttestArgs {
    /// The attestation report: raw (1184 bytes) or hex text, e.g. from `snpcheck report --out`.
    report: PathBuf,
    /// Certificates: a directory (ark/ask/vcek .pem/.der), a certificate table
    /// (`snpcheck report --certs-out`), or a PEM file.
    #[arg(long, value_name = "DIR|TABLE|PEM")]
    certs: Option<PathBuf>,
    /// The VCEK certificate (PEM or DER).
    #[arg(long)]
    vcek: Option<PathBuf>,
    /// The VLEK certificate (PEM or DER).
    #[arg(long)]
    vlek: Option<PathBuf>,
    /// The AMD product, where neither the report nor a certificate names it.
    #[arg(long, value_parser = ["milan", "genoa", "turin"])]
    product: Option<String>,
    /// Expected REPORT_DATA (hex, the nonce the guest was given).
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
    /// The build's measurements (default: target/nekos/measurements.json).
    #[arg(long, value_name = "FILE")]
    measurements: Option<PathBuf>,
    /// The build manifest whose artifacts measurements.json must describe (default:
    /// NEKOS_MANIFEST, else target/nekos/manifest.json; without one, with --measurements,
    /// the artifacts are not compared and no other vCPU counts are tried).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// TESTS/LABS ONLY: anchor the chain at this root certificate instead of AMD's ARKs.
    #[arg(long, value_name = "FILE")]
    trust_ark: Option<PathBuf>,
    /// One JSON document on stdout (snpcheck's `verify --json`).
    #[arg(long)]
    json: bool,
}

/// A failure before verification: message and exit code.
struct Stop(i32, String);

fn read(what: &str, p: &Path) -> Result<Vec<u8>, Stop> {
    std::fs::read(p).map_err(|e| Stop(EXIT_IO, format!("{what} {}: {e}", p.display())))
}

/// The artifacts measurements.json must describe, read now.
struct Artifacts {
    ovmf: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
}

/// Reads the manifest's kernel, production initramfs and AmdSev firmware and compares their
/// sha256 (and the UKI command line) with what `build` records.
fn artifacts_of(manifest: &Manifest, build: &Build, meas: &Path) -> Result<Artifacts, Stop> {
    let other = |what: &str, recorded: &str, path: &Path, now: &str| {
        Stop(
            EXIT_BAD_INPUT,
            format!(
                "{} is from another build: it records {what} {recorded}, but {} has {now} \
                 (run `cargo nekos measure`, or pass the matching --manifest)",
                meas.display(),
                path.display()
            ),
        )
    };
    let kernel_path = &manifest
        .kernel
        .as_ref()
        .ok_or_else(|| Stop(EXIT_BAD_INPUT, "the manifest has no kernel".into()))?
        .bzimage;
    let initrd_path = manifest
        .initramfs_path(measurements::VARIANT)
        .map_err(|e| Stop(EXIT_BAD_INPUT, format!("{e:#}")))?
        .to_path_buf();
    let ovmf_path = match &manifest.firmware {
        Some(fw) => fw.amdsev.clone(),
        None => snpmeasure::judge::pinned_ovmf_amdsev()
            .map_err(|e| Stop(EXIT_IO, format!("the pinned Debian OVMF.amdsev.fd: {e:#}")))?,
    };
    let read_checked = |what: &str, path: &Path, recorded: &str| -> Result<Vec<u8>, Stop> {
        let bytes = read(what, path)?;
        let now = sha256_hex(&bytes);
        if now != recorded {
            return Err(other(&format!("{what} sha256"), recorded, path, &now));
        }
        Ok(bytes)
    };
    let kernel = read_checked("kernel", kernel_path, &build.kernel_sha256)?;
    let initrd = read_checked("initramfs", &initrd_path, &build.initramfs_sha256)?;
    let ovmf = read_checked("firmware", &ovmf_path, &build.ovmf_sha256)?;
    if let Some(uki) = manifest.uki.get(measurements::VARIANT)
        && uki.cmdline != build.cmdline
    {
        return Err(Stop(
            EXIT_BAD_INPUT,
            format!(
                "{} is from another build: it records the command line \"{}\", the manifest's \
                 {} UKI has \"{}\" (run `cargo nekos measure`)",
                meas.display(),
                build.cmdline,
                measurements::VARIANT,
                uki.cmdline
            ),
        ));
    }
    Ok(Artifacts {
        ovmf,
        kernel,
        initrd,
    })
}

/// Launch digests of the same artifacts with the vCPU counts 1..=MAX_VCPUS that
/// measurements.json does not list, for its CPU types.
fn other_vcpu_counts(build: &Build, a: &Artifacts) -> anyhow::Result<Vec<Launch>> {
    let fw = snpmeasure::firmware_digest(&a.ovmf)?;
    let mut types: Vec<&str> = build.launches.iter().map(|l| l.cpu_type.as_str()).collect();
    types.dedup();
    let features = u64::from_str_radix(build.guest_features.trim_start_matches("0x"), 16)
        .unwrap_or(snpmeasure::DEFAULT_GUEST_FEATURES);
    let mut out = Vec::new();
    for cpu in types {
        let Some(vcpu_type) = VcpuType::from_name(cpu) else {
            continue;
        };
        for vcpus in 1..=MAX_VCPUS {
            if build
                .launches
                .iter()
                .any(|l| l.cpu_type == cpu && l.vcpus == vcpus)
            {
                continue;
            }
            let d = snpmeasure::launch_digest_prehashed(
                &snpmeasure::Inputs {
                    ovmf: &a.ovmf,
                    kernel: Some(&a.kernel),
                    initrd: Some(&a.initrd),
                    append: Some(&build.cmdline),
                    vcpus,
                    vcpu_type,
                    guest_features: features,
                },
                &fw,
            )?;
            out.push(Launch {
                cpu_type: cpu.to_string(),
                vcpus,
                digest: d.to_vec(),
                listed: false,
            });
        }
    }
    Ok(out)
}

fn prepare(a: &AttestArgs) -> Result<(PathBuf, Vec<Launch>), Stop> {
    let root = || {
        crate::util::workspace_root().map_err(|e| {
            Stop(
                EXIT_BAD_INPUT,
                format!("no NekOS workspace ({e:#}); pass --measurements FILE"),
            )
        })
    };
    let meas = match &a.measurements {
        Some(m) => m.clone(),
        None => measurements::default_out(&root()?),
    };
    let build = expected::parse(&read("measurements", &meas)?)
        .map_err(|e| Stop(EXIT_BAD_INPUT, format!("{}: {e}", meas.display())))?;
    let manifest_path = match (&a.manifest, &a.measurements) {
        (Some(m), _) => Some(m.clone()),
        (None, None) => Some(crate::artifacts::manifest_path(&root()?)),
        (None, Some(_)) => std::env::var_os("NEKOS_MANIFEST")
            .map(PathBuf::from)
            .or_else(|| {
                crate::util::workspace_root()
                    .ok()
                    .map(|r| crate::artifacts::manifest_path(&r))
            })
            .filter(|p| p.is_file()),
    };
    let Some(mp) = manifest_path else {
        eprintln!(
            "nekos: no build manifest: {} is not compared with artifacts",
            meas.display()
        );
        return Ok((meas, Vec::new()));
    };
    let manifest = Manifest::load(&mp).map_err(|e| Stop(EXIT_IO, format!("{e:#}")))?;
    let arts = artifacts_of(&manifest, &build, &meas)?;
    // Only worth the hashing for a report whose MEASUREMENT no listed digest matches (a
    // malformed one is snpcheck's to refuse).
    let needed = snpcheck::report::from_file_bytes(&read("report", &a.report)?)
        .is_ok_and(|r| !build.launches.iter().any(|l| l.digest == r.measurement()));
    let extra = if !needed {
        Vec::new()
    } else {
        other_vcpu_counts(&build, &arts).map_err(|e| {
            Stop(
                EXIT_IO,
                format!("measuring the artifacts with other vCPU counts: {e:#}"),
            )
        })?
    };
    Ok((meas, extra))
}

/// Runs `attest`; the exit code is snpcheck's.
pub fn attest(a: AttestArgs) -> ExitCode {
    let (meas, extra) = match prepare(&a) {
        Ok(x) => x,
        Err(Stop(code, msg)) => {
            if a.json {
                let j = snpcheck::json::Json::obj()
                    .with("command", "attest")
                    .with("exit_code", code)
                    .with("error", msg.as_str());
                println!("{}", j.render());
            }
            eprintln!("nekos: error: {msg}");
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    };
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut args: Vec<String> = vec![
        "verify".into(),
        "--report".into(),
        s(&a.report),
        "--expected-from".into(),
        s(&meas),
    ];
    for (opt, v) in [
        ("--certs", a.certs.as_deref()),
        ("--vcek", a.vcek.as_deref()),
        ("--vlek", a.vlek.as_deref()),
        ("--trust-ark", a.trust_ark.as_deref()),
    ] {
        if let Some(p) = v {
            args.push(opt.into());
            args.push(s(p));
        }
    }
    for (opt, v) in [("--product", &a.product), ("--report-data", &a.report_data)] {
        if let Some(v) = v {
            args.push(format!("{opt}={v}"));
        }
    }
    if a.json {
        args.push("--json".into());
    }
    let code = snpcheck::cli::run_with(args, &extra);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
