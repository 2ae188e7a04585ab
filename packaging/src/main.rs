//! `cargo nekos …` — build, run, test and benchmark NekOS.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nekos_packaging::artifacts::{Manifest, manifest_path, out_dir};
use nekos_packaging::build::{BuildOptions, Parts, build};
use nekos_packaging::initramfs::{Compression, Variant};
use nekos_packaging::qemu::{Accel, BootOptions};
use nekos_packaging::{bench, deployments, host, kernel, qemu, util};
use std::path::PathBuf;
use std::process::Command;

#[derive(Parser)]
#[command(
    name = "cargo nekos",
    about = "Build, boot, test and benchmark NekOS",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    },
    /// Secure Boot keys: create the PK/KEK/db hierarchy (`keys --help`).
    #[command(disable_help_flag = true)]
    Keys {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Kernel + initramfs + cmdline -> nekos.efi, nekos.signed.efi, nekos.uki.json.
    #[command(disable_help_flag = true)]
    MakeUki {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Assemble an unsigned UKI (same bytes as `ukify build` 257).
    #[command(disable_help_flag = true)]
    Uki {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Authenticode-sign a PE image with the db key (deterministic).
    #[command(disable_help_flag = true)]
    Sign {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Verify a signed PE image against a certificate.
    #[command(disable_help_flag = true)]
    Verify {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// List a PE image's sections (sizes, sha256) and its Authenticode hash.
    #[command(disable_help_flag = true)]
    Inspect {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fetch the pinned systemd-stub 257 and print its path.
    Stub,
    /// SEV-SNP launch digest of an AmdSev OVMF (+ kernel, initrd, cmdline), like sev-snp-measure.
    #[command(disable_help_flag = true)]
    SnpMeasure {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write measurements.json: artifact hashes, predicted PCR 4/7/11 per store, SNP digests.
    #[command(disable_help_flag = true)]
    Measure {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// System Transparency OS packages: create | sign | verify | inspect (stmgr-compatible).
    #[command(disable_help_flag = true)]
    Ospkg {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Keys for OS package signing: `keygen ospkg-cert` (Ed25519 root or leaf certificate).
    #[command(disable_help_flag = true)]
    Keygen {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// UEFI variable stores (blank, microsoft, custom) as uefi-vars JSON and raw OVMF_VARS.
    #[command(disable_help_flag = true)]
    Varstore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Clone)]
struct BuildArgs {
    /// Refuse a kernel source that differs from kernel-config/linux-source.lock.
    #[arg(long)]
    locked: bool,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Photo directory to pack instead of cats/.
    #[arg(long)]
    cats: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum ReproTarget {
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
        }
    }
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("nekos: error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let root = util::workspace_root()?;
    match cli.command {
        Cmd::Build {
            build: args,
            no_kernel,
            no_firmware,
            variants,
        } => {
            // Without the kernel nothing made from it (UKIs, stboot) can be built either.
            let parts = Parts {
                kernel: !no_kernel,
                uki: !no_kernel,
                stboot: !no_kernel,
                firmware: !no_firmware,
                ..Parts::ALL
            };
            build(&root, &args.options(variants, parts))?;
            eprintln!("nekos: manifest {}", manifest_path(&root).display());
        }
        Cmd::Run {
            deployment,
            build: args,
            variant,
            append,
            kvm,
            memory,
            qmp,
        } => {
            let dep = deployments::find(&deployment)?;
            let manifest = build(&root, &args.options(vec![variant], dep.parts()))?;
            let mut opts = BootOptions {
                variant: variant.name().into(),
                cmdline: append
                    .iter()
                    .flat_map(|a| a.split_whitespace().map(String::from))
                    .collect(),
                memory_mib: memory,
                ..BootOptions::default()
            };
            if kvm {
                opts.accel = probe_kvm(&manifest);
            }
            let status = qemu::run_interactive(dep, &manifest, &opts, qmp.as_deref())?;
            if !status.success() {
                bail!("QEMU exited with {status}");
            }
        }
        Cmd::Test { args } => {
            // Both variants: the QEMU tests boot the test initramfs for test-only programs.
            build(
                &root,
                &BuildOptions {
                    variants: vec![Variant::Production, Variant::Test],
                    ..BuildOptions::default()
                },
            )?;
            // The measure step: what a verifier should expect from this build.
            nekos_packaging::measurements::cli_main(Vec::new())?;
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&root)
                .args(["test", "--workspace", "--locked"])
                .env("NEKOS_MANIFEST", manifest_path(&root))
                .env("NEKOS_WORKSPACE", &root);
            if !args.is_empty() {
                cmd.args(&args);
            }
            let status = cmd.status().context("cannot run cargo test")?;
            if !status.success() {
                bail!("tests failed");
            }
        }
        Cmd::Bench { runs, deployments } => {
            let mut parts = Parts::NONE;
            for d in deployments::DEPLOYMENTS
                .iter()
                .filter(|d| deployments.is_empty() || deployments.iter().any(|n| n == d.name))
            {
                parts = parts.union(d.parts());
            }
            let manifest = build(
                &root,
                &BuildOptions {
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
        Cmd::Lock { check } => {
            let drift = nekos_packaging::lock::lock(&root, check)?;
            if check && drift {
                std::process::exit(1);
            }
        }
        Cmd::Deployments => {
            for d in deployments::DEPLOYMENTS {
                println!("{:55} {}", d.name, d.about);
            }
        }
        Cmd::HostSetup => {
            let status = Command::new("bash")
                .arg(root.join("packaging/host-setup.sh"))
                .status()?;
            if !status.success() {
                bail!("host setup failed");
            }
            host::ensure_musl_target(&root)?;
        }
        Cmd::Firmware { edk2_patches, jobs } => {
            let fw = nekos_packaging::firmware::ensure(
                &root,
                &nekos_packaging::firmware::FirmwareOptions {
                    patches: edk2_patches,
                    jobs,
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&fw)?);
        }
        Cmd::Repro {
            against: Some(file),
            what,
        } => {
            if matches!(what, Some(ReproTarget::Kernel | ReproTarget::Initramfs)) {
                bail!("--against compares firmware builds only (a firmware.json)");
            }
            let (same, lines) = nekos_packaging::firmware::repro_against(&root, &file)?;
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
        } => {
            let (pv, sev) = nekos_packaging::firmware::repro(&root, &Default::default())?;
            println!(
                "reproducible: {} {pv}, {} {sev}",
                nekos_packaging::firmware::PV_VARS_FD,
                nekos_packaging::firmware::AMDSEV_FD
            );
        }
        Cmd::Repro {
            what: Some(what),
            against: None,
        } => repro(&root, what)?,
        Cmd::Repro {
            what: None,
            against: None,
        } => {
            bail!("repro: name what to build (kernel, initramfs, firmware) or pass --against FILE")
        }
        Cmd::Keys { args } => uki_cli("keys", args)?,
        Cmd::MakeUki { args } => uki_cli("make-uki", args)?,
        Cmd::Uki { args } => uki_cli("uki", args)?,
        Cmd::Sign { args } => uki_cli("sign", args)?,
        Cmd::Verify { args } => uki_cli("verify", args)?,
        Cmd::Inspect { args } => uki_cli("inspect", args)?,
        Cmd::Stub => uki_cli("stub", Vec::new())?,
        Cmd::Ospkg { args } => nekos_packaging::ospkg_cli::ospkg_main(&args)?,
        Cmd::Keygen { args } => nekos_packaging::ospkg_cli::keygen_main(&args)?,
        Cmd::Varstore { args } => nekos_packaging::varstore::cli_main(args)?,
        Cmd::SnpMeasure { args } => nekos_packaging::snpmeasure::cli_main(args)?,
        Cmd::Measure { args } => nekos_packaging::measurements::cli_main(args)?,
    }
    Ok(())
}

/// The UKI / Secure Boot verbs parse their own arguments (packaging/src/uki_cli.rs).
fn uki_cli(verb: &str, args: Vec<String>) -> Result<()> {
    let mut v = vec![verb.to_string()];
    v.extend(args);
    nekos_packaging::uki::cli_main(v)
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

fn repro(root: &std::path::Path, what: ReproTarget) -> Result<()> {
    let base = nekos_packaging::cache::cache_root()
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
                let (bz, _, secs) = kernel::build_in(root, dir, None)?;
                let sha = util::sha256_hex(&bz);
                eprintln!(
                    "nekos: kernel built in {} ({secs:.0}s): sha256 {sha}",
                    dir.display()
                );
                hashes.push(sha);
            }
            ReproTarget::Firmware => bail!("the firmware comparison runs in firmware::repro"),
            ReproTarget::Initramfs => {
                nekos_packaging::build::copy_workspace(root, dir)?;
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
                // The stage-1 init (feature stboot) too: the stage-1 initramfs and UKI are a
                // pure function of it, the keys and the kernel (packaging/tests/it/stboot.rs).
                let stage1 = util::sha256_file(&dir.join("target/nekos/stboot/nekos-init"))?;
                eprintln!(
                    "nekos: initramfs built in {}: sha256 {}, stage-1 init sha256 {stage1}",
                    dir.display(),
                    art.sha256
                );
                hashes.push(format!("{} (stage-1 init {stage1})", art.sha256));
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
