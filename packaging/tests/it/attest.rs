//! `cargo nekos attest REPORT`: reports for each case made by snpcheck's synthetic signer (a
//! fresh P-384 ARK → ASK → VCEK chain, keys in memory only; never AMD's roots, trusted with
//! `--trust-ark`), checked against the build in NEKOS_MANIFEST. The measurements file is the
//! `sev_snp` section `measurements::sev_snp_entry` computes from those artifacts now, so a
//! rebuild since the last `cargo nekos measure` does not matter.

use crate::common::manifest;
use nekos_packaging::artifacts::Manifest;
use nekos_packaging::measurements;
use nekos_packaging::snpmeasure::{self, VcpuType};
use nekos_packaging::util::sha256_hex;
use snpcheck::report::policy;
use snpcheck::synthetic::{Chain, Platform, ReportSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Fixture {
    dir: PathBuf,
    manifest: PathBuf,
    chain: Chain,
    /// measurements.json for the manifest's artifacts.
    meas: serde_json::Value,
    ovmf: Vec<u8>,
    kernel: Vec<u8>,
    initrd: Vec<u8>,
    cmdline: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(tag: &str) -> Fixture {
    let m: Manifest = manifest();
    let dir = std::env::temp_dir().join(format!("nekos-attest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let fw = m
        .firmware
        .as_ref()
        .expect("the manifest has the project's firmware");
    let ovmf = std::fs::read(&fw.amdsev).unwrap();
    let kernel = std::fs::read(&m.kernel.as_ref().unwrap().bzimage).unwrap();
    let initrd = std::fs::read(m.initramfs_path(measurements::VARIANT).unwrap()).unwrap();
    let cmdline = m.uki[measurements::VARIANT].cmdline.clone();
    let mut snp = measurements::sev_snp_entry(&ovmf, &kernel, &initrd, &cmdline).unwrap();
    snp["ovmf"] =
        serde_json::json!({"build": "nekos firmware/ AmdSevX64", "sha256": sha256_hex(&ovmf)});
    let meas = serde_json::json!({"format": measurements::FORMAT, "sev_snp": snp});
    let chain = Chain::new(Platform::default()).unwrap();
    for (n, c) in [
        ("ark", &chain.ark),
        ("ask", &chain.ask),
        ("vcek", &chain.vcek),
    ] {
        std::fs::write(
            dir.join(format!("certs/{n}.pem")),
            Chain::pem(c).unwrap().as_bytes(),
        )
        .unwrap();
    }
    Fixture {
        manifest: PathBuf::from(std::env::var("NEKOS_MANIFEST").unwrap()),
        dir,
        chain,
        meas,
        ovmf,
        kernel,
        initrd,
        cmdline,
    }
}

impl Fixture {
    fn digest(&self, cpu: &str, vcpus: u32) -> [u8; 48] {
        snpmeasure::launch_digest(&snpmeasure::Inputs {
            ovmf: &self.ovmf,
            kernel: Some(&self.kernel),
            initrd: Some(&self.initrd),
            append: Some(&self.cmdline),
            vcpus,
            vcpu_type: VcpuType::from_name(cpu).unwrap(),
            guest_features: snpmeasure::DEFAULT_GUEST_FEATURES,
        })
        .unwrap()
    }
    fn listed(&self, cpu: &str, vcpus: u32) -> [u8; 48] {
        let h = self.meas["sev_snp"]["launch_digests"][cpu][vcpus.to_string()]
            .as_str()
            .unwrap();
        hex::decode(h).unwrap().try_into().unwrap()
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn report(&self, measurement: [u8; 48], pol: u64) -> PathBuf {
        let r = self
            .chain
            .report(&ReportSpec {
                measurement,
                policy: pol,
                ..ReportSpec::default()
            })
            .unwrap();
        self.write("report.bin", &r)
    }
    fn measurements(&self) -> PathBuf {
        self.write(
            "measurements.json",
            &measurements::to_bytes(&self.meas).unwrap(),
        )
    }
    fn attest(&self, report: &Path, meas: &Path, extra: &[&str]) -> (i32, String) {
        let o = Command::new(env!("CARGO_BIN_EXE_nekos"))
            .arg("attest")
            .arg(report)
            .arg("--certs")
            .arg(self.dir.join("certs"))
            .arg("--trust-ark")
            .arg(self.dir.join("certs/ark.pem"))
            .arg("--measurements")
            .arg(meas)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(extra)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code().unwrap(), text)
    }
}

#[test]
fn attest_match_names_the_build() {
    let f = fixture("match");
    let rep = f.report(f.listed("EPYC-Milan", 2), 0x30000);
    let (code, out) = f.attest(&rep, &f.measurements(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "[pass] build: MEASUREMENT is this build's launch digest for EPYC-Milan with 2 vCPUs"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("kernel sha256 {}", sha256_hex(&f.kernel))),
        "{out}"
    );
    assert!(
        out.contains(&format!("initramfs sha256 {}", sha256_hex(&f.initrd))),
        "{out}"
    );
    assert!(
        out.contains(&format!("command line \"{}\"", f.cmdline)),
        "{out}"
    );
    assert!(out.contains("[pass] report signature"), "{out}");
    assert!(out.contains("[pass] build policy: debug"), "{out}");
    // The policy comes from measurements.json (`sev_snp.policy`), not the fallback.
    assert!(
        out.contains("as the build's policy (measurements.json)"),
        "{out}"
    );
}

#[test]
fn attest_wrong_vcpu_count_is_named() {
    let f = fixture("vcpus");
    // 3 vCPUs: measurements.json lists 1, 2 and 4; the host measures the others itself.
    let rep = f.report(f.digest("EPYC-Genoa", 3), 0x30000);
    let (code, out) = f.attest(&rep, &f.measurements(), &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("it is the launch digest of the same artifacts on EPYC-Genoa with 3 vCPUs"),
        "{out}"
    );
    assert!(out.contains("EPYC-Genoa: 1/2/4 vCPUs"), "{out}");
}

#[test]
fn attest_other_kernel_matches_nothing() {
    let f = fixture("kernel");
    let mut other = f.kernel.clone();
    other[0x300] ^= 1;
    let d = snpmeasure::launch_digest(&snpmeasure::Inputs {
        ovmf: &f.ovmf,
        kernel: Some(&other),
        initrd: Some(&f.initrd),
        append: Some(&f.cmdline),
        vcpus: 2,
        vcpu_type: VcpuType::from_name("EPYC-Milan").unwrap(),
        guest_features: snpmeasure::DEFAULT_GUEST_FEATURES,
    })
    .unwrap();
    let rep = f.report(d, 0x30000);
    let (code, out) = f.attest(&rep, &f.measurements(), &[]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("matches no launch digest of this build"),
        "{out}"
    );
    assert!(
        out.contains(&hex::encode(f.listed("EPYC-Milan", 2))),
        "{out}"
    );
}

#[test]
fn attest_debug_on_fails() {
    let f = fixture("debug");
    let rep = f.report(f.listed("EPYC-v4", 1), 0x30000 | policy::DEBUG);
    let (code, out) = f.attest(&rep, &f.measurements(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[FAIL] build policy: debug"), "{out}");
    assert!(out.contains("EPYC-v4 with 1 vCPU"), "{out}");
}

#[test]
fn attest_bad_measurements() {
    let f = fixture("bad");
    let rep = f.report(f.listed("EPYC-Milan", 1), 0x30000);
    // From another build: the kernel hash is not the manifest's kernel's.
    let mut other = f.meas.clone();
    other["sev_snp"]["kernel_sha256"] = serde_json::json!("00".repeat(32));
    let p = f.write("other.json", &measurements::to_bytes(&other).unwrap());
    let (code, out) = f.attest(&rep, &p, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is from another build: it records kernel sha256 0000"),
        "{out}"
    );

    let good = measurements::to_bytes(&f.meas).unwrap();
    let p = f.write("truncated.json", &good[..good.len() / 3]);
    let (code, out) = f.attest(&rep, &p, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("truncated JSON at line"), "{out}");
    assert!(out.contains("truncated.json"), "{out}");

    let p = f.write("text.json", b"not json\n");
    let (code, out) = f.attest(&rep, &p, &["--json"]);
    assert_eq!(code, 2, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("not a measurements.json"),
        "{out}"
    );
}

#[test]
fn attest_help_documents_exit_codes() {
    let o = Command::new(env!("CARGO_BIN_EXE_nekos"))
        .args(["attest", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(
        text.contains("5 verified, but the MEASUREMENT is no launch digest"),
        "{text}"
    );
    assert!(text.contains("--trust-ark"), "{text}");
}
