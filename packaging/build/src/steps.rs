//! The build as a named list of steps, and the one freshness rule every step follows.
//!
//! **The rule**: a step's outputs are up to date when the hash of its inputs (what it reads,
//! by sha256 or value, plus the identity of the `nekos` binary that makes them, so a code
//! change rebuilds) equals the hash recorded when they were made, and every output still
//! has the sha256 recorded then. Otherwise the step runs and records again. The kernel and
//! the firmware keep their outputs in the content-addressed cache (`cache::Entry`, the
//! directory name is the input hash: the same rule, with outputs kept across checkouts); the
//! other steps record in `target/nekos/steps/<step>.json`.

use crate::arch::Arch;
use crate::artifacts::out_dir;
use crate::cache::InputHash;
use crate::initramfs::Variant;
use crate::util::{self, sha256_file};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The parts of a build, each on or off. A deployment asks for exactly what it boots
/// (`nekos_lab::deployments::Deployment::parts`): `kernel,initramfs` never touches the
/// firmware, whose first build takes minutes. `cargo nekos build` and the tests ask for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    pub kernel: bool,
    /// The userland and the initramfs of every requested variant.
    pub initramfs: bool,
    /// The project's OVMF (cached by input hash; ~10 min on 2 cores when built).
    pub firmware: bool,
    /// The UKIs (unsigned and signed) of every requested variant and their ESP disk images.
    pub uki: bool,
    /// The network boot: stage-1 initramfs and UKI, the OS package (implies `stage1_init`).
    pub stboot: bool,
    /// Stage 1 of the network boot (`nekos-stboot`, with rustls and ring: minutes
    /// of compiling on a first run), built with the userland. Separate from `stboot` because
    /// it needs no kernel: `build --no-kernel` and `repro initramfs` still build and compare it.
    pub stage1_init: bool,
    /// The UEFI variable stores (blank, custom, microsoft).
    pub varstores: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        kernel: true,
        initramfs: true,
        firmware: true,
        uki: true,
        stboot: true,
        stage1_init: true,
        varstores: true,
    };
    pub const NONE: Parts = Parts {
        kernel: false,
        initramfs: false,
        firmware: false,
        uki: false,
        stboot: false,
        stage1_init: false,
        varstores: false,
    };

    /// What `arch`'s build makes, and the parts it leaves out. x86_64: everything.
    /// aarch64: the same steps with the arch (kernel, userland, initramfs, ArmVirtQemu,
    /// aa64 UKIs and ESP images, raw variable stores), but no stage 1 of the network boot
    /// (stboot, with ring): issue 16 asks no arm64 network boot.
    pub fn for_arch(self, arch: Arch) -> (Parts, Vec<&'static str>) {
        match arch {
            Arch::X86_64 => (self, Vec::new()),
            Arch::Aarch64 => {
                // The network boot (stage 1 with rustls/ring, the OS package, the nginx
                // deployments) is x86_64 only; everything else is the same steps with the arch.
                let skipped = if self.stboot || self.stage1_init {
                    vec!["stboot"]
                } else {
                    Vec::new()
                };
                (
                    Parts {
                        stboot: false,
                        stage1_init: false,
                        ..self
                    },
                    skipped,
                )
            }
        }
    }

    /// What two deployments need together (a bench run of several).
    pub fn union(self, other: Parts) -> Parts {
        Parts {
            kernel: self.kernel || other.kernel,
            initramfs: self.initramfs || other.initramfs,
            firmware: self.firmware || other.firmware,
            uki: self.uki || other.uki,
            stboot: self.stboot || other.stboot,
            stage1_init: self.stage1_init || other.stage1_init,
            varstores: self.varstores || other.varstores,
        }
    }
}

/// One step of `cargo nekos build`, in the order [`steps`] lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `linux-source-6.12` + `kernel-config/` → bzImage (cache entry).
    Kernel,
    /// edk2 + patches + `firmware/build-edk2.sh` → OVMF pv-vars and AmdSev (cache entry).
    Firmware,
    /// cargo → the static musl binaries (cargo decides freshness of the compile itself).
    Userland,
    /// binaries + photos + os-release → `initramfs.cpio[.gz|.zst]` of one variant.
    Initramfs(Variant),
    /// kernel + initramfs + stub + db key → `nekos.efi`, `nekos.signed.efi` of one variant.
    Uki(Variant),
    /// signed UKI → the GPT/FAT32 ESP disk image of one variant.
    Esp(Variant),
    /// kernel + production initramfs + init + nekos-stboot + stboot keys → stage-1 initramfs and
    /// UKI, the OS package.
    Stboot,
    /// certificates → the blank, custom and microsoft variable stores.
    Varstores,
}

impl Step {
    pub fn name(&self) -> String {
        match self {
            Step::Kernel => "kernel".into(),
            Step::Firmware => "firmware".into(),
            Step::Userland => "userland".into(),
            Step::Initramfs(v) => format!("initramfs-{}", v.name()),
            Step::Uki(v) => format!("uki-{}", v.name()),
            Step::Esp(v) => format!("esp-{}", v.name()),
            Step::Stboot => "stboot".into(),
            Step::Varstores => "varstores".into(),
        }
    }
}

/// The steps of one build, in order: what `parts` asks for, for every variant.
pub fn steps(parts: Parts, variants: &[Variant]) -> Vec<Step> {
    let mut s = Vec::new();
    if parts.kernel {
        s.push(Step::Kernel);
    }
    if parts.firmware {
        s.push(Step::Firmware);
    }
    if parts.initramfs {
        s.push(Step::Userland);
        s.extend(variants.iter().map(|v| Step::Initramfs(*v)));
    }
    if parts.uki {
        for v in variants {
            s.push(Step::Uki(*v));
            s.push(Step::Esp(*v));
        }
    }
    if parts.stboot {
        s.push(Step::Stboot);
    }
    if parts.varstores {
        s.push(Step::Varstores);
    }
    s
}

/// The sha256 of the running `nekos` binary: part of every step's inputs, so outputs made by
/// other code are never taken for up to date.
pub fn tool_identity() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| sha256_file(&p).ok())
            .unwrap_or_else(|| "unknown".into())
    })
}

#[derive(Serialize, Deserialize)]
struct Record {
    input_hash: String,
    /// Output path → sha256, as written.
    outputs: BTreeMap<PathBuf, String>,
}

/// One step's freshness: its input hash and where it is recorded.
pub struct Freshness {
    record: PathBuf,
    pub input_hash: String,
}

impl Freshness {
    /// `inputs`: name → sha256 or value of everything the step reads.
    pub fn new(root: &Path, step: &str, inputs: &BTreeMap<String, String>) -> Freshness {
        Freshness::in_dir(&out_dir(root), step, inputs)
    }

    /// The same, recorded under another output directory: each architecture's build keeps
    /// its records in its own (`Arch::out_dir`), so building one never makes the other's
    /// steps look stale.
    pub fn in_dir(out: &Path, step: &str, inputs: &BTreeMap<String, String>) -> Freshness {
        Freshness {
            record: out.join("steps").join(format!("{step}.json")),
            input_hash: Freshness::input_hash_of(step, inputs),
        }
    }

    /// The input hash of `step` with `inputs` (and this `nekos` binary).
    pub fn input_hash_of(step: &str, inputs: &BTreeMap<String, String>) -> String {
        let mut h = InputHash::default();
        h.add("step", step).add("nekos", tool_identity());
        for (k, v) in inputs {
            h.add(k, v);
        }
        h.hex()
    }

    /// The rule: same input hash as recorded, and every recorded output intact.
    pub fn up_to_date(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.record) else {
            return false;
        };
        let Ok(rec) = serde_json::from_str::<Record>(&text) else {
            return false;
        };
        rec.input_hash == self.input_hash
            && !rec.outputs.is_empty()
            && rec
                .outputs
                .iter()
                .all(|(p, sha)| sha256_file(p).is_ok_and(|s| &s == sha))
    }

    /// Records the outputs just made (after they are all written).
    pub fn record<'a>(&self, outputs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        let mut rec = Record {
            input_hash: self.input_hash.clone(),
            outputs: BTreeMap::new(),
        };
        for p in outputs {
            rec.outputs.insert(p.to_path_buf(), sha256_file(p)?);
        }
        let mut text = serde_json::to_vec_pretty(&rec)?;
        text.push(b'\n');
        util::write_atomic(&self.record, &text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_full_build_lists_its_steps_in_order() {
        let names: Vec<String> = steps(Parts::ALL, &[Variant::Production, Variant::Test])
            .iter()
            .map(Step::name)
            .collect();
        assert_eq!(
            names,
            [
                "kernel",
                "firmware",
                "userland",
                "initramfs-production",
                "initramfs-test",
                "uki-production",
                "esp-production",
                "uki-test",
                "esp-test",
                "stboot",
                "varstores"
            ]
        );
        let direct = Parts {
            kernel: true,
            initramfs: true,
            ..Parts::NONE
        };
        let names: Vec<String> = steps(direct, &[Variant::Production])
            .iter()
            .map(Step::name)
            .collect();
        assert_eq!(names, ["kernel", "userland", "initramfs-production"]);
    }

    #[test]
    fn arm64_builds_everything_but_the_network_boot_and_names_what_it_leaves_out() {
        let (parts, skipped) = Parts::ALL.for_arch(Arch::Aarch64);
        assert_eq!(
            parts,
            Parts {
                stboot: false,
                stage1_init: false,
                ..Parts::ALL
            }
        );
        assert_eq!(skipped, ["stboot"]);
        let names: Vec<String> = steps(parts, &[Variant::Production])
            .iter()
            .map(Step::name)
            .collect();
        assert_eq!(
            names,
            [
                "kernel",
                "firmware",
                "userland",
                "initramfs-production",
                "uki-production",
                "esp-production",
                "varstores"
            ]
        );
        assert_eq!(Parts::ALL.for_arch(Arch::X86_64), (Parts::ALL, Vec::new()));
    }

    #[test]
    fn the_freshness_rule_wants_the_same_inputs_and_intact_outputs() {
        let root = std::env::temp_dir().join(format!("nekos-steps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let step = format!("test-step-{}", std::process::id());
        let out = root.join("out.bin");
        let inputs: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let fresh = Freshness::new(&root, &step, &inputs);
        assert!(!fresh.up_to_date(), "nothing recorded yet");
        std::fs::write(&out, b"made").unwrap();
        fresh.record([out.as_path()]).unwrap();
        assert!(Freshness::new(&root, &step, &inputs).up_to_date());
        // Another input: made again.
        let other: BTreeMap<String, String> = [("a".to_string(), "2".to_string())].into();
        assert!(!Freshness::new(&root, &step, &other).up_to_date());
        // An output changed after it was made: made again.
        std::fs::write(&out, b"edited").unwrap();
        assert!(!Freshness::new(&root, &step, &inputs).up_to_date());
        // An output gone: made again.
        std::fs::remove_file(&out).unwrap();
        assert!(!Freshness::new(&root, &step, &inputs).up_to_date());
        let _ = std::fs::remove_file(&fresh.record);
        let _ = std::fs::remove_dir_all(&root);
    }
}
