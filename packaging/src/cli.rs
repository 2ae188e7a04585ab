//! `cargo nekos …`: the one command-line tree. Every verb is a clap derive type here (or
//! in the verb's module: `uki_cli`, `varstore_cli`, `ospkg_cli`), so `--help`, the shell
//! completions and the man pages all come from the same definitions.
//!
//! Exit codes: 0 success; 1 the command failed (the error is printed); 2 usage error
//! (clap's message, naming the option and what it expected). `lock --check` exits 1 when a
//! pin drifted.

use crate::artifacts::{Manifest, manifest_path, out_dir};
use crate::build::{BuildOptions, Parts, build};
use crate::initramfs::{Compression, Variant};
use crate::qemu::{Accel, BootOptions};
use crate::{bench, deployments, host, kernel, qemu, util};
use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const EXIT_CODES: &str = "Exit codes: 0 success, 1 the command failed, 2 usage error.";

#[derive(Parser)]
#[command(
    name = "cargo nekos",
    bin_name = "cargo nekos",
    about = "Build, boot, test and benchmark NekOS",
    version,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Build what is missing: kernel and firmware (cached by input hash), userland,
    /// initramfs, UKIs, ESP images, stboot, variable stores, manifest.
    Build {
        #[command(flatten)]
        build: BuildArgs,
        /// Do not build the kernel (userland and initramfs only; no UKI or stboot either).
        #[arg(long)]
        no_kernel: bool,
        /// Do not build the firmware (the fw,… deployments need it).
        #[arg(long)]
        no_firmware: bool,
        /// Initramfs variants to build (repeatable).
        #[arg(long = "variant", value_enum, default_values_t = [Variant::Production])]
        variants: Vec<Variant>,
    },
    /// Build what the deployment needs and boot it in QEMU (see `cargo nekos deployments`).
    Run {
        /// Default: the signed UKI from the ESP disk under Secure Boot on the project's firmware.
        #[arg(default_value = deployments::DEFAULT_DEPLOYMENT)]
        deployment: String,
        #[command(flatten)]
        build: BuildArgs,
        /// Which initramfs to boot.
        #[arg(long, value_enum, default_value_t = Variant::Production)]
        variant: Variant,
        /// Extra kernel command-line words, e.g. --append "nekos.seed=7".
        #[arg(long, allow_hyphen_values = true)]
        append: Vec<String>,
        /// Try KVM after a probe boot succeeds (falls back to TCG; KVM fails on nested hosts).
        #[arg(long)]
        kvm: bool,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 256)]
        memory: u32,
        /// Also serve QEMU's QMP monitor on this Unix socket (to script screendumps and keys).
        #[arg(long)]
        qmp: Option<PathBuf>,
        /// Accelerator: tcg, kvm or hvf. Default: hvf for aarch64,… on macOS, else tcg.
        #[arg(long, value_parser = parse_accel, conflicts_with = "kvm")]
        accel: Option<Accel>,
        /// Boot the files of a `cargo nekos bundle` directory instead of building (on a Mac).
        #[arg(long, value_name = "DIR")]
        prebuilt: Option<PathBuf>,
    },
    /// Copy what one architecture's deployments boot from (kernel, initramfs, UKIs, firmware,
    /// variable stores) into DIR with a relocatable manifest, for `run --prebuilt DIR` elsewhere.
    Bundle {
        #[arg(long, default_value = "aarch64", value_parser = parse_arch)]
        arch: nekos_build::arch::Arch,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// The whole test suite: builds (incl. the test initramfs), then `cargo test --workspace`.
    Test {
        /// Arguments passed to `cargo test` after `--` (test name filters, --nocapture…).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmarks: build times, sizes, median TCG boot times.
    Bench {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Only these deployments (repeatable); all by default.
        #[arg(long = "deployment")]
        deployments: Vec<String>,
        /// Issue #15's comparison: NekOS, the bare probe and busybox + cage + swayimg on the
        /// same kernel, interleaved; writes bench.json, bench.md and timeline.svg.
        #[arg(long, conflicts_with = "deployments")]
        compare: bool,
        /// With --compare: skip the minimum-RAM bisection (about 10 boots per system).
        #[arg(long, requires = "compare")]
        no_min_ram: bool,
        /// With --compare: another initramfs in the same run, e.g. NekOS from an older commit.
        #[arg(long = "extra", value_name = "LABEL=INITRAMFS", requires = "compare", value_parser = bench_extra)]
        extras: Vec<(String, PathBuf)>,
        /// With --compare: an earlier bench.json to show next to this run (same kernel, QEMU, photos).
        #[arg(long, value_name = "OLD_BENCH_JSON", requires = "compare")]
        against: Option<PathBuf>,
        /// With --compare: where to write (default target/nekos/bench/).
        #[arg(long, value_name = "DIR", requires = "compare")]
        out: Option<PathBuf>,
        /// Issue #16's comparison: every `aarch64,…` deployment next to its x86 twin, booted
        /// alternately, and both architectures' kernel and firmware build times (clean,
        /// cached); builds both; writes bench-twins.json and bench-twins.md.
        #[arg(long, conflicts_with_all = ["deployments", "compare"])]
        twins: bool,
    },
    /// Fuzz the parsers of untrusted input (`cargo run -p nekos-fuzz`, outside the test suite);
    /// crashing or hanging inputs are saved under target/nekos/fuzz/ and exit 1.
    Fuzz {
        /// Total fuzzing time in seconds, split evenly across the selected parsers.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only this parser (repeatable); all by default, `--list` names them.
        #[arg(long = "parser")]
        parsers: Vec<String>,
        /// Seed of the mutation streams (default from the clock; printed to repeat a run).
        #[arg(long)]
        seed: Option<u64>,
        /// The summary as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// List the parsers and what each calls.
        #[arg(long)]
        list: bool,
        /// Run one saved input through the one --parser given.
        #[arg(long)]
        replay: Option<PathBuf>,
    },
    /// Build the project's OVMF (pv-vars + AmdSev) from pinned edk2 source, or print the cached one.
    Firmware {
        /// Directory with the nine QEMU_PV_VARS patches (default: NEKOS_EDK2_PATCHES, else the
        /// source cache, else downloaded by commit id; see firmware/README.md).
        #[arg(long)]
        edk2_patches: Option<PathBuf>,
        /// edk2 build threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Move the pins (kernel source, edk2 tarballs, Debian .debs, virt-firmware certificates)
    /// to what apt and PyPI serve now, showing old → new.
    Lock {
        /// Only report the drift; write nothing; exit 1 if a pin differs.
        #[arg(long, alias = "dry-run")]
        check: bool,
    },
    /// List the deployments.
    Deployments,
    /// Install host packages and apt sources (root): runs packaging/host-setup.sh.
    HostSetup,
    /// Show reproducibility: build an artifact twice from clean in two directories, compare;
    /// or, with `--against FILE`, compare the cached firmware with a firmware.json from elsewhere.
    Repro {
        #[arg(value_enum, required_unless_present = "against")]
        what: Option<ReproTarget>,
        /// A firmware.json recorded elsewhere (another machine's `~/.cache/nekos/firmware-*/`):
        /// lists the images, modules and tool versions that differ from the cached build here.
        #[arg(long, value_name = "FILE")]
        against: Option<PathBuf>,
        /// Guest architecture of `repro kernel|firmware` (x86_64 or aarch64).
        #[arg(long, default_value = "x86_64", value_parser = parse_arch)]
        arch: nekos_build::arch::Arch,
    },
    /// Keys: the Secure Boot hierarchy, OS-package signing certificates, stboot's keys.
    #[command(subcommand)]
    Genkey(Genkey),
    /// Kernel + initramfs + cmdline -> nekos.efi, nekos.signed.efi, nekos.uki.json.
    MakeUki(crate::uki_cli::MakeUkiArgs),
    /// Assemble an unsigned UKI (same bytes as `ukify build` 257).
    Uki(crate::uki_cli::UkiArgs),
    /// Authenticode-sign a PE image with the db key (deterministic).
    Sign(crate::uki_cli::SignArgs),
    /// Verify a signed PE image against a certificate.
    Verify(crate::uki_cli::VerifyArgs),
    /// List a PE image's sections (sizes, sha256) and its Authenticode hash.
    Inspect(crate::uki_cli::InspectArgs),
    /// Fetch the pinned systemd-stub 257 and print its path.
    Stub {
        /// Whose stub: x86_64 (linuxx64.efi.stub) or aarch64 (linuxaa64.efi.stub).
        #[arg(long, default_value = "x86_64")]
        arch: String,
    },
    /// SEV-SNP launch digest of an AmdSev OVMF (+ kernel, initrd, cmdline), like sev-snp-measure.
    SnpMeasure(SnpMeasureArgs),
    /// Check an SEV-SNP report against this build: verify it as `snpcheck verify` does, then
    /// name the launch (CPU type, vCPUs, firmware, kernel, initramfs, cmdline) its MEASUREMENT is.
    Attest(crate::attest_cli::AttestArgs),
    /// Write measurements.json: artifact hashes, predicted PCR 4/7/11 per store, SNP digests.
    Measure(MeasureArgs),
    /// System Transparency OS packages: create | sign | verify | inspect (stmgr-compatible).
    #[command(subcommand)]
    Ospkg(crate::ospkg_cli::OspkgCmd),
    /// UEFI variable stores (blank, microsoft, custom) as uefi-vars JSON and raw OVMF_VARS.
    Varstore(crate::varstore_cli::VarstoreArgs),
    /// Shell completions for this command line, on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Man pages for every verb (roff), written to DIR.
    Man {
        #[arg(long, value_name = "DIR", default_value = "target/nekos/man")]
        out_dir: PathBuf,
    },
}

/// `genkey`: every kind of key the project makes, in one place (like `mkosi genkey`).
#[derive(Subcommand)]
pub enum Genkey {
    /// The Secure Boot hierarchy PK, KEK, db (RSA-2048, self-signed); the db key signs UKIs.
    SecureBoot {
        /// Default: $NEKOS_KEYS_DIR, else $XDG_CONFIG_HOME/nekos/keys, else ~/.config/nekos/keys.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replace an existing hierarchy.
        #[arg(long)]
        force: bool,
        /// TESTS ONLY: derive INSECURE, publicly reproducible keys from this hex seed.
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        seed: Option<HexBytes>,
        /// Generate one key (--role) on this PKCS#11 token instead; only its certificate is
        /// written (--cert). E.g. `pkcs11:token=nekos;object=db?module-path=…`.
        #[arg(long, value_name = "URI", requires = "cert", conflicts_with_all = ["seed", "dir"])]
        pkcs11: Option<String>,
        /// With --pkcs11: which key of the hierarchy (pk, kek, db).
        #[arg(long, default_value = "db", requires = "pkcs11")]
        role: String,
        /// With --pkcs11: where to write the certificate (PEM).
        #[arg(long, requires = "pkcs11")]
        cert: Option<PathBuf>,
    },
    /// An Ed25519 key + certificate for OS package signing (as `stmgr keygen certificate`).
    OspkgCert(crate::ospkg_cli::OspkgCertArgs),
    /// stboot's keys: the OS-package signing root and two signers, the TLS test CA and the
    /// server certificate (created once; a complete directory is left alone).
    Stboot {
        /// Default: $NEKOS_STBOOT_KEYS_DIR, else $XDG_CONFIG_HOME/nekos/stboot, else ~/.config/nekos/stboot.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Bytes given in hex on the command line.
#[derive(Clone, Debug)]
pub struct HexBytes(pub Vec<u8>);

fn parse_hex(s: &str) -> std::result::Result<HexBytes, String> {
    hex::decode(s)
        .map(HexBytes)
        .map_err(|e| format!("not hex: {e}"))
}

/// `snp-measure`: the flags of PyPI `sev-snp-measure` that NekOS models.
#[derive(clap::Args)]
pub struct SnpMeasureArgs {
    /// The SEV-capable OVMF image (e.g. OVMF.amdsev.fd).
    #[arg(long)]
    ovmf: PathBuf,
    #[arg(long)]
    kernel: Option<PathBuf>,
    #[arg(long, requires = "kernel")]
    initrd: Option<PathBuf>,
    /// The kernel command line, measured verbatim (not trimmed).
    #[arg(long, requires = "kernel", allow_hyphen_values = true)]
    append: Option<String>,
    #[arg(long)]
    vcpus: u32,
    /// EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3], EPYC-Milan[-v1,-v2], EPYC-Genoa[-v1], EPYC-Turin.
    #[arg(long, value_parser = parse_vcpu_type)]
    vcpu_type: crate::snpmeasure::VcpuType,
    /// The VMSA SEV_FEATURES (hex with 0x, or decimal).
    #[arg(long, default_value = "0x1", value_parser = parse_u64)]
    guest_features: u64,
    /// Only `snp` is modelled.
    #[arg(long, default_value = "snp", value_parser = ["snp", "sev-snp", "SNP", "SEV-SNP"])]
    mode: String,
    /// Only `QEMU` is modelled.
    #[arg(long, default_value = "QEMU", value_parser = ["QEMU"])]
    vmm_type: String,
}

fn parse_vcpu_type(s: &str) -> std::result::Result<crate::snpmeasure::VcpuType, String> {
    crate::snpmeasure::VcpuType::from_name(s).ok_or_else(|| format!("unknown vCPU type {s:?}"))
}

fn parse_u64(s: &str) -> std::result::Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    }
    .map_err(|e| format!("not a number: {e}"))
}

/// `measure`: what a verifier should expect from this build.
#[derive(clap::Args)]
pub struct MeasureArgs {
    /// Default: target/nekos/measurements.json.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// The Secure Boot keys whose certificates the custom store enrols (default: the NekOS keys directory).
    #[arg(long)]
    keys: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct BuildArgs {
    /// Refuse a kernel source that differs from kernel-config/linux-source.lock.
    #[arg(long)]
    locked: bool,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Photo directory to pack instead of cats/.
    #[arg(long)]
    cats: Option<PathBuf>,
    /// Guest architecture: x86_64 (target/nekos/) or aarch64 (target/nekos/aarch64/).
    #[arg(long, default_value = "x86_64", value_parser = parse_arch)]
    pub arch: nekos_build::arch::Arch,
}

/// The architecture of the deployments `bench` was asked for (x86_64 when none): one per run.
fn bench_arch(names: &[String]) -> Result<nekos_build::arch::Arch> {
    let mut arch = None;
    for name in names {
        let a = deployments::find(name)?.arch;
        match arch {
            Some(prev) if prev != a => bail!(
                "bench: --deployment {name} is {a}, an earlier one is {prev}: bench one \
                 architecture per run (each has its own build)"
            ),
            _ => arch = Some(a),
        }
    }
    Ok(arch.unwrap_or_default())
}

fn parse_accel(s: &str) -> std::result::Result<Accel, String> {
    Accel::parse(s).map_err(|e| e.to_string())
}

fn parse_arch(s: &str) -> std::result::Result<nekos_build::arch::Arch, String> {
    nekos_build::arch::Arch::parse(s).map_err(|e| e.to_string())
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum ReproTarget {
    Kernel,
    Initramfs,
    /// Both OVMF images, two clean builds (~20 min on 2 cores).
    Firmware,
}

impl BuildArgs {
    fn options(&self, variants: Vec<Variant>, parts: Parts) -> BuildOptions {
        BuildOptions {
            locked: self.locked,
            variants,
            compression: self.compression,
            cats: self.cats.clone(),
            parts,
            arch: self.arch,
        }
    }
}

/// The `nekos` binary: parse (a usage error exits 2 with clap's message), run, report.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("nekos: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Parses `args` (the words after `cargo nekos`) and runs them: what the tests call. A usage
/// error is an `Err` with clap's message.
pub fn run_args<I, S>(args: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(
        std::iter::once(std::ffi::OsString::from("cargo nekos"))
            .chain(args.into_iter().map(Into::into)),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let code = run(cli)?;
    if code != ExitCode::SUCCESS {
        bail!("exit code {code:?}");
    }
    Ok(())
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Verbs that work on files given on the command line need no workspace.
    let root = util::workspace_root;
    match cli.command {
        Cmd::Build {
            build: args,
            no_kernel,
            no_firmware,
            variants,
        } => {
            let root = root()?;
            // Without the kernel nothing made from it (UKIs, stboot) can be built either.
            let parts = Parts {
                kernel: !no_kernel,
                uki: !no_kernel,
                stboot: !no_kernel,
                firmware: !no_firmware,
                ..Parts::ALL
            };
            build(&root, &args.options(variants, parts))?;
            let manifest = crate::artifacts::manifest_path_for(&root, args.arch);
            eprintln!("nekos: manifest {}", manifest.display());
        }
        Cmd::Run {
            deployment,
            build: args,
            variant,
            append,
            kvm,
            memory,
            qmp,
            accel,
            prebuilt,
        } => {
            let dep = deployments::find(&deployment)?;
            let manifest = match &prebuilt {
                Some(dir) => qemu::load_bundle(dir)?,
                // The build needs Debian's tools; a Mac boots what Linux built.
                None if qemu::HostOs::current() == qemu::HostOs::Macos => bail!(
                    "on macOS `cargo nekos run` boots prebuilt files: on Linux run `cargo nekos \
                     build --arch aarch64` and `cargo nekos bundle --arch aarch64 --out DIR`, \
                     copy DIR here, then `cargo nekos run {} --prebuilt DIR`",
                    dep.name
                ),
                None => {
                    let root = root()?;
                    // The deployment's name decides the architecture (`aarch64,…`), not --arch.
                    let opts = BuildOptions {
                        arch: dep.arch,
                        ..args.options(vec![variant], dep.parts())
                    };
                    build(&root, &opts)?
                }
            };
            let mut opts = BootOptions {
                variant: variant.name().into(),
                cmdline: append
                    .iter()
                    .flat_map(|a| a.split_whitespace().map(String::from))
                    .collect(),
                memory_mib: memory,
                ..BootOptions::default()
            };
            opts.accel = match accel {
                Some(a) => a,
                None if kvm => probe_kvm(&manifest),
                None => Accel::default_for(dep.arch, opts.host),
            };
            let status = qemu::run_interactive(dep, &manifest, &opts, qmp.as_deref())?;
            if !status.success() {
                bail!("QEMU exited with {status}");
            }
        }
        Cmd::Bundle { arch, out } => {
            let root = root()?;
            let manifest = Manifest::load(&crate::artifacts::manifest_path_for(&root, arch))?;
            let files = qemu::write_bundle(&manifest, &out)?;
            eprintln!(
                "nekos: bundle of the {arch} build: {} files in {}; on the other machine: \
                 cargo nekos run <deployment> --prebuilt {}",
                files.len(),
                out.display(),
                out.display()
            );
        }
        Cmd::Test { args } => {
            let root = root()?;
            // Both variants: the QEMU tests boot the test initramfs for test-only programs.
            build(
                &root,
                &BuildOptions {
                    variants: vec![Variant::Production, Variant::Test],
                    ..BuildOptions::default()
                },
            )?;
            // The same steps for arm64 (what `Parts::for_arch` builds there), for its tests.
            let arm64 = nekos_build::arch::Arch::Aarch64;
            build(
                &root,
                &BuildOptions {
                    variants: vec![Variant::Production, Variant::Test],
                    arch: arm64,
                    ..BuildOptions::default()
                },
            )?;
            // The measure step: what a verifier should expect from this build (each arch).
            measure(&root, None, None)?;
            let arm_manifest = Manifest::load(&crate::artifacts::manifest_path_for(&root, arm64))?;
            crate::measurements::write(
                &crate::measurements::default_out_for(arm64, &root),
                &crate::measurements::compute(&arm_manifest, &crate::keys::default_keys_dir())?,
            )?;
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&root)
                .args(["test", "--workspace", "--locked"])
                .env("NEKOS_MANIFEST", manifest_path(&root))
                .env(
                    "NEKOS_MANIFEST_AARCH64",
                    crate::artifacts::manifest_path_for(&root, arm64),
                )
                .env("NEKOS_WORKSPACE", &root);
            if !args.is_empty() {
                cmd.args(&args);
            }
            let status = cmd.status().context("cannot run cargo test")?;
            if !status.success() {
                bail!("tests failed");
            }
        }
        Cmd::Bench {
            runs, twins: true, ..
        } => {
            let root = root()?;
            let mut manifests = Vec::new();
            for arch in [
                nekos_build::arch::Arch::X86_64,
                nekos_build::arch::Arch::Aarch64,
            ] {
                let mut parts = Parts::NONE;
                for d in deployments::DEPLOYMENTS.iter().filter(|d| d.arch == arch) {
                    parts = parts.union(d.parts());
                }
                let opts = BuildOptions {
                    arch,
                    parts,
                    ..BuildOptions::default()
                };
                manifests.push(build(&root, &opts)?);
            }
            let report = bench::twins(&root, &manifests[0], &manifests[1], runs)?;
            let md = bench::twins_markdown(&report);
            let json_path = out_dir(&root).join("bench-twins.json");
            util::write_atomic(
                &json_path,
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            util::write_atomic(&out_dir(&root).join("bench-twins.md"), md.as_bytes())?;
            println!("{md}");
            eprintln!("nekos: bench results in {}", json_path.display());
        }
        Cmd::Bench {
            runs,
            deployments: _,
            compare: true,
            no_min_ram,
            extras,
            against,
            out,
            twins: _,
        } => {
            let root = root()?;
            let manifest = build(
                &root,
                &BuildOptions {
                    parts: Parts {
                        kernel: true,
                        initramfs: true,
                        ..Parts::NONE
                    },
                    ..BuildOptions::default()
                },
            )?;
            let out = out.unwrap_or_else(|| out_dir(&root).join("bench"));
            let opts = nekos_lab::bench_compare::CompareOptions {
                runs,
                min_ram: !no_min_ram,
                extras,
                against,
                out: out.clone(),
            };
            let report = nekos_lab::bench_compare::run(&root, &manifest, &opts)?;
            nekos_lab::bench_compare::write(&report, &out)?;
            println!("{}", nekos_lab::bench_report::markdown(&report));
            eprintln!("nekos: bench results in {}", out.display());
        }
        Cmd::Bench {
            runs, deployments, ..
        } => {
            let root = root()?;
            // One architecture per run (one build, one manifest): the named deployments',
            // x86_64 when none are named (then all x86 ones; the arm64 ones by name).
            let arch = bench_arch(&deployments)?;
            let deployments: Vec<String> = if deployments.is_empty() {
                deployments::DEPLOYMENTS
                    .iter()
                    .filter(|d| d.arch == arch)
                    .map(|d| d.name.to_string())
                    .collect()
            } else {
                deployments
            };
            let mut parts = Parts::NONE;
            for d in deployments::DEPLOYMENTS
                .iter()
                .filter(|d| deployments.iter().any(|n| n == d.name))
            {
                parts = parts.union(d.parts());
            }
            let manifest = build(
                &root,
                &BuildOptions {
                    arch,
                    parts: parts.union(Parts {
                        kernel: true,
                        initramfs: true,
                        ..Parts::NONE
                    }),
                    ..BuildOptions::default()
                },
            )?;
            let report = bench::run(&root, &manifest, runs, &deployments)?;
            let path = out_dir(&root).join("bench.json");
            util::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!("nekos: bench results in {}", path.display());
        }
        Cmd::Fuzz {
            seconds,
            parsers,
            seed,
            json,
            list,
            replay,
        } => {
            let root = root()?;
            // The dev profile on purpose: overflow checks and debug assertions make wrapped
            // lengths findings, and the crypto crates are optimised there anyway (Cargo.toml).
            // A separate binary, so this CLI does not link every guest crate.
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&root)
                .args(["run", "--quiet", "--locked", "-p", "nekos-fuzz", "--"])
                .args(["--seconds", &seconds.to_string()])
                .env("NEKOS_WORKSPACE", &root);
            for p in &parsers {
                cmd.args(["--parser", p]);
            }
            if let Some(s) = seed {
                cmd.args(["--seed", &s.to_string()]);
            }
            if let Some(r) = &replay {
                cmd.arg("--replay").arg(r);
            }
            cmd.args(json.then_some("--json"))
                .args(list.then_some("--list"));
            let status = cmd.status().context("cannot run cargo run -p nekos-fuzz")?;
            return match status.code() {
                Some(0) => Ok(ExitCode::SUCCESS),
                Some(1) => Ok(ExitCode::from(1)),
                _ => bail!("nekos-fuzz failed ({status})"),
            };
        }
        Cmd::Lock { check } => {
            let root = root()?;
            let drift = crate::lock::lock(&root, check)?;
            if check && drift {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::Deployments => {
            for d in deployments::DEPLOYMENTS {
                println!("{:55} {}", d.name, d.about);
            }
        }
        Cmd::HostSetup => {
            let root = root()?;
            let status = Command::new("bash")
                .arg(root.join("packaging/host-setup.sh"))
                .status()?;
            if !status.success() {
                bail!("host setup failed");
            }
            host::ensure_musl_target(&root)?;
        }
        Cmd::Firmware { edk2_patches, jobs } => {
            let root = root()?;
            let fw = crate::firmware::ensure(
                &root,
                &crate::firmware::FirmwareOptions {
                    patches: edk2_patches,
                    jobs,
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&fw)?);
        }
        Cmd::Repro {
            against: Some(file),
            what,
            ..
        } => {
            let root = root()?;
            if matches!(what, Some(ReproTarget::Kernel | ReproTarget::Initramfs)) {
                bail!("--against compares firmware builds only (a firmware.json)");
            }
            let (same, lines) = crate::firmware::repro_against(&root, &file)?;
            for line in &lines {
                println!("{line}");
            }
            if !same {
                bail!("the cached firmware differs from {}", file.display());
            }
        }
        Cmd::Repro {
            what: Some(ReproTarget::Firmware),
            against: None,
            arch: nekos_build::arch::Arch::Aarch64,
        } => {
            let (code, vars) = nekos_build::firmware_aarch64::repro(&root()?, &Default::default())?;
            println!(
                "reproducible: {} {code}, {} {vars}",
                nekos_build::firmware_aarch64::CODE_FD,
                nekos_build::firmware_aarch64::VARS_FD
            );
        }
        Cmd::Repro {
            what: Some(ReproTarget::Firmware),
            against: None,
            ..
        } => {
            let root = root()?;
            let (pv, sev) = crate::firmware::repro(&root, &Default::default())?;
            println!(
                "reproducible: {} {pv}, {} {sev}",
                crate::firmware::PV_VARS_FD,
                crate::firmware::AMDSEV_FD
            );
        }
        Cmd::Repro {
            what: Some(what),
            against: None,
            arch,
        } => repro(&root()?, what, arch)?,
        Cmd::Repro {
            what: None,
            against: None,
            ..
        } => {
            bail!("repro: name what to build (kernel, initramfs, firmware) or pass --against FILE")
        }
        Cmd::Genkey(Genkey::SecureBoot {
            pkcs11: Some(uri),
            role,
            cert,
            force,
            ..
        }) => crate::uki_cli::genkey_on_token(&uri, &role, cert.as_deref(), force)?,
        Cmd::Genkey(Genkey::SecureBoot {
            dir, force, seed, ..
        }) => {
            let dir = dir.unwrap_or_else(crate::keys::default_keys_dir);
            if seed.is_some() {
                eprintln!(
                    "nekos: WARNING: --seed makes INSECURE, publicly derivable keys — for tests only"
                );
            }
            let h = crate::keys::generate_hierarchy(seed.as_ref().map(|s| s.0.as_slice()))?;
            crate::keys::write_hierarchy(&dir, &h, force)?;
            println!(
                "genkey: wrote PK, KEK, db (owner GUID {}) to {}",
                crate::keys::NEKOS_OWNER_GUID,
                dir.display()
            );
        }
        Cmd::Genkey(Genkey::OspkgCert(args)) => crate::ospkg_cli::ospkg_cert(args)?,
        Cmd::Genkey(Genkey::Stboot { dir }) => {
            let dir = dir.unwrap_or_else(crate::stboot::default_keys_dir);
            crate::stboot::ensure_keys(&dir)?;
            println!("genkey: stboot keys in {}", dir.display());
        }
        Cmd::MakeUki(args) => crate::uki_cli::make_uki(args)?,
        Cmd::Uki(args) => crate::uki_cli::uki(args)?,
        Cmd::Sign(args) => crate::uki_cli::sign(args)?,
        Cmd::Verify(args) => crate::uki_cli::verify(args)?,
        Cmd::Inspect(args) => crate::uki_cli::inspect(args)?,
        Cmd::Stub { arch } => println!(
            "{}",
            crate::uki::stub::pinned_stub_path_for(nekos_build::arch::Arch::parse(&arch)?)?
                .display()
        ),
        Cmd::Ospkg(cmd) => crate::ospkg_cli::ospkg(cmd)?,
        Cmd::Varstore(args) => crate::varstore_cli::varstore(args)?,
        Cmd::Attest(a) => return Ok(crate::attest_cli::attest(a)),
        Cmd::SnpMeasure(a) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).with_context(|| format!("reading {}", p.display()))
            };
            let ovmf = read(&a.ovmf)?;
            let kernel = a.kernel.as_deref().map(read).transpose()?;
            let initrd = a.initrd.as_deref().map(read).transpose()?;
            let d = crate::snpmeasure::launch_digest(&crate::snpmeasure::Inputs {
                ovmf: &ovmf,
                kernel: kernel.as_deref(),
                initrd: initrd.as_deref(),
                append: a.append.as_deref(),
                vcpus: a.vcpus,
                vcpu_type: a.vcpu_type,
                guest_features: a.guest_features,
            })?;
            println!("{}", hex::encode(d));
        }
        Cmd::Measure(a) => {
            let path = measure(&root()?, a.out, a.keys)?;
            println!("{}", path.display());
        }
        Cmd::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "cargo-nekos", &mut std::io::stdout());
        }
        Cmd::Man { out_dir } => {
            let n = write_man_pages(&out_dir)?;
            println!("man: {n} pages in {}", out_dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `measure`: measurements.json for the current build (the manifest, `NEKOS_MANIFEST` overrides).
fn measure(root: &std::path::Path, out: Option<PathBuf>, keys: Option<PathBuf>) -> Result<PathBuf> {
    let manifest = Manifest::load(&manifest_path(root))?;
    let keys = keys.unwrap_or_else(crate::keys::default_keys_dir);
    let value = crate::measurements::compute(&manifest, &keys)?;
    let out = out.unwrap_or_else(|| crate::measurements::default_out(root));
    crate::measurements::write(&out, &value)?;
    Ok(out)
}

/// One roff page per command and subcommand (`cargo-nekos.1`, `cargo-nekos-make-uki.1`, …),
/// each written through a temporary file. Returns how many.
pub fn write_man_pages(dir: &std::path::Path) -> Result<usize> {
    fn pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        let name = if prefix.is_empty() {
            "cargo-nekos".to_string()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        let mut bytes = Vec::new();
        clap_mangen::Man::new(cmd.clone().name(name.clone())).render(&mut bytes)?;
        out.push((format!("{name}.1"), bytes));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            pages(sub, &name, out)?;
        }
        Ok(())
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    pages(&cmd, "", &mut out)?;
    for (name, bytes) in &out {
        util::write_atomic(&dir.join(name), bytes)?;
    }
    Ok(out.len())
}

/// KVM only when a short probe boot works: on nested hosts KVM initialises fine and then
/// every guest dies with "KVM internal error".
fn probe_kvm(manifest: &Manifest) -> Accel {
    let Ok(dep) = deployments::find("kernel,serialonly") else {
        return Accel::Tcg;
    };
    let opts = BootOptions {
        accel: Accel::Kvm,
        ..BootOptions::default()
    };
    let ok = qemu::Vm::start(dep, manifest, &opts)
        .and_then(|vm| {
            vm.wait_for(
                "Unable to mount root fs",
                std::time::Duration::from_secs(20),
            )
        })
        .is_ok();
    eprintln!(
        "nekos: KVM probe {}",
        if ok {
            "succeeded: using KVM"
        } else {
            "failed: using TCG"
        }
    );
    if ok { Accel::Kvm } else { Accel::Tcg }
}

fn repro(root: &std::path::Path, what: ReproTarget, arch: nekos_build::arch::Arch) -> Result<()> {
    let base = crate::cache::cache_root()
        .join("tmp")
        .join(format!("repro-{}", std::process::id()));
    let dirs = [
        base.join("first/nekos"),
        base.join("second-build/elsewhere/nekos-src"),
    ];
    let mut hashes = Vec::new();
    for dir in &dirs {
        std::fs::create_dir_all(dir)?;
        match what {
            ReproTarget::Kernel => {
                let (bz, _, secs) = kernel::build_in(root, dir, None, arch)?;
                let sha = util::sha256_hex(&bz);
                eprintln!(
                    "nekos: kernel built in {} ({secs:.0}s): sha256 {sha}",
                    dir.display()
                );
                hashes.push(sha);
            }
            ReproTarget::Firmware => bail!("the firmware comparison runs in firmware::repro"),
            ReproTarget::Initramfs => {
                crate::build::copy_workspace(root, dir)?;
                let status = Command::new(std::env::current_exe()?)
                    .args([
                        "build",
                        "--no-kernel",
                        "--no-firmware",
                        "--variant",
                        "production",
                    ])
                    .env("NEKOS_WORKSPACE", dir)
                    .env("CARGO_TARGET_DIR", dir.join("target"))
                    .env_remove("NEKOS_MANIFEST")
                    .status()?;
                if !status.success() {
                    bail!("build in {} failed", dir.display());
                }
                let m = Manifest::load(&dir.join("target/nekos/manifest.json"))?;
                let art = m
                    .initramfs
                    .get("production")
                    .context("no production initramfs")?;
                // Stage 1 (nekos-stboot) too: the stage-1 initramfs and UKI are a
                // pure function of it, the keys and the kernel (packaging/tests/it/stboot.rs).
                let stage1 = util::sha256_file(
                    &dir.join("target/x86_64-unknown-linux-musl/release/nekos-stboot"),
                )?;
                eprintln!(
                    "nekos: initramfs built in {}: sha256 {}, stage 1 (nekos-stboot) sha256 {stage1}",
                    dir.display(),
                    art.sha256
                );
                hashes.push(format!("{} (nekos-stboot {stage1})", art.sha256));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    if hashes[0] != hashes[1] {
        bail!("not reproducible: {} != {}", hashes[0], hashes[1]);
    }
    println!("reproducible: sha256 {}", hashes[0]);
    Ok(())
}

/// `--extra LABEL=INITRAMFS` for clap (a usage error names the argument).
fn bench_extra(arg: &str) -> std::result::Result<(String, PathBuf), String> {
    nekos_lab::bench_compare::parse_extra(arg).map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_tree_is_consistent() {
        // clap's own checks: no clashing names, valid defaults, requirements that exist.
        Cli::command().debug_assert();
    }
}
