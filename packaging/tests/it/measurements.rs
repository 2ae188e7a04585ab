//! `measurements::compute` without QEMU: a synthetic build (synthetic kernel PE, the pinned
//! stub, a seeded key hierarchy) in a temporary directory, then determinism, PCR 11 against
//! `uki::predict_pcr11`, the extend arithmetic on a known vector, PCR 7 of the blank store
//! hand-computed, and the refusal under the Microsoft store.

use nekos_packaging::artifacts::{FileArtifact, Manifest, UkiArtifact};
use nekos_packaging::authenticode;
use nekos_packaging::kernel::KernelArtifact;
use nekos_packaging::keys::{self, KeySigner, Role};
use nekos_packaging::measurements::{self, pcr};
use nekos_packaging::pe;
use nekos_packaging::uki::{self, UkiInputs, stub};
use nekos_packaging::util::sha256_hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Fixture {
    dir: PathBuf,
    manifest: Manifest,
    keys: PathBuf,
    signed: Vec<u8>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> FileArtifact {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    FileArtifact {
        path,
        sha256: sha256_hex(bytes),
        size: bytes.len() as u64,
        inputs: BTreeMap::new(),
    }
}

fn fixture(tag: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("nekos-meas-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let keys_dir = dir.join("keys");
    let h = keys::generate_hierarchy(Some(b"measurements")).unwrap();
    keys::write_hierarchy(&keys_dir, &h, false).unwrap();

    let linux = pe::synthetic_efi_image(30_000, true, None);
    let initrd: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let cmdline = "panic=-1 console=tty0 console=ttyS0";
    let stub_bytes = stub::load_pinned_stub().unwrap();
    let unsigned = uki::build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux: &linux,
        initrd: &initrd,
        cmdline,
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some("6.12.0-nekos"),
        sbat: None,
    })
    .unwrap();
    let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();

    let bz = file(&dir, "bzImage", &linux);
    let config = file(&dir, "config", b"CONFIG_NEKOS=y\n");
    let mut manifest = Manifest {
        schema: 1,
        source_date_epoch: 1,
        ..Manifest::default()
    };
    // Built through serde so fields the manifest gains later (with defaults) do not break
    // this fixture.
    let kernel: KernelArtifact = serde_json::from_value(serde_json::json!({
        "bzimage": bz.path, "config": config.path, "sha256": bz.sha256,
        "source": {"package": "p", "version": "v", "sha256": "s"},
        "gcc": "gcc", "binutils": "ld", "input_hash": "x", "inputs": {},
        "clean_build_seconds": 1.0, "cached": true,
    }))
    .unwrap();
    manifest.kernel = Some(kernel);
    manifest
        .userland
        .insert("nekos-init".into(), file(&dir, "init", b"\x7fELF init"));
    manifest
        .initramfs
        .insert("production".into(), file(&dir, "initramfs.cpio", &initrd));
    manifest
        .cats
        .insert("chelsea.png".into(), sha256_hex(b"cat"));
    let uki_artifact: UkiArtifact = serde_json::from_value(serde_json::json!({
        "cmdline": cmdline,
        "unsigned": file(&dir, "nekos.efi", &unsigned),
        "signed": file(&dir, "nekos.signed.efi", &signed),
        "authenticode_sha256": hex::encode(authenticode::authenticode_sha256(&signed).unwrap()),
        "make_uki": null,
    }))
    .unwrap();
    manifest.uki.insert("production".into(), uki_artifact);
    Fixture {
        dir,
        manifest,
        keys: keys_dir,
        signed,
    }
}

#[test]
fn extend_known_vector() {
    // python3: sha256(bytes(32) + sha256(b"abc").digest())
    let mut p = [0u8; 32];
    pcr::extend(&mut p, &Sha256::digest(b"abc").into());
    assert_eq!(
        hex::encode(p),
        "589f9ffed4c477966bfb8d41f37895b08c69047df8f911d6f3b57fbe08faee8d"
    );
    assert_eq!(pcr::replay([&Sha256::digest(b"abc").into()]), p);
    assert_eq!(
        hex::encode(pcr::separator()),
        "df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119"
    );
}

#[test]
fn uefi_variable_data_layout() {
    let g = nekos_packaging::varstore::Guid::parse("8be4df61-93ca-11d2-aa0d-00e098032b8c").unwrap();
    let v = pcr::uefi_variable_data(&g, "PK", &[0xaa, 0xbb]);
    let mut want = hex::decode("61dfe48bca93d211aa0d00e098032b8c").unwrap();
    want.extend_from_slice(&2u64.to_le_bytes());
    want.extend_from_slice(&2u64.to_le_bytes());
    want.extend_from_slice(b"P\0K\0");
    want.extend_from_slice(&[0xaa, 0xbb]);
    assert_eq!(v, want);
}

#[test]
fn blank_store_pcr7_hand_computed() {
    // Independently: python3 with uuid.bytes_le, SecureBoot = 00 (1 byte), PK/KEK/db/dbx
    // absent (data length 0), then the separator.
    let store = nekos_packaging::varstore::Store::new();
    let f = fixture("blank");
    let p = pcr::predict(&store, &f.signed).unwrap();
    assert!(!p.secure_boot);
    assert!(p.refused.is_none());
    let pcr7 = pcr::replay(p.pcr7.iter().map(|e| &e.digest));
    assert_eq!(
        hex::encode(pcr7),
        "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068"
    );
    // PCR 4 with Secure Boot off: action, separator, UKI, .linux.
    let action: [u8; 32] = Sha256::digest(b"Calling EFI Application from Boot Option").into();
    let uki_hash = authenticode::authenticode_sha256(&f.signed).unwrap();
    let linux = pe::synthetic_efi_image(30_000, true, None);
    let linux_hash = authenticode::authenticode_sha256(&linux).unwrap();
    let want = pcr::replay([&action, &pcr::separator(), &uki_hash, &linux_hash]);
    assert_eq!(pcr::replay(p.pcr4.iter().map(|e| &e.digest)), want);
    // QEMU -kernel: the image is measured before the action and the separator.
    let q = p.pcr4_qemu_kernel.as_ref().unwrap();
    let want_q = pcr::replay([&uki_hash, &action, &pcr::separator(), &linux_hash]);
    assert_eq!(pcr::replay(q.iter().map(|e| &e.digest)), want_q);
}

#[test]
fn compute_is_deterministic_and_consistent() {
    let f = fixture("det");
    let a = measurements::compute(&f.manifest, &f.keys).unwrap();
    let b = measurements::compute(&f.manifest, &f.keys).unwrap();
    let (ba, bb) = (
        measurements::to_bytes(&a).unwrap(),
        measurements::to_bytes(&b).unwrap(),
    );
    assert_eq!(ba, bb);

    // Written atomically, read back identical; keys sorted at every level.
    let out = f.dir.join("out").join("measurements.json");
    measurements::write(&out, &a).unwrap();
    let text = std::fs::read(&out).unwrap();
    assert_eq!(text, ba);
    fn check_sorted(v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                let keys: Vec<&String> = m.keys().collect();
                let mut s = keys.clone();
                s.sort();
                assert_eq!(keys, s);
                m.values().for_each(check_sorted);
            }
            serde_json::Value::Array(a) => a.iter().for_each(check_sorted),
            _ => {}
        }
    }
    let reread: serde_json::Value = serde_json::from_slice(&text).unwrap();
    check_sorted(&reread);

    // PCR 11 is uki::predict_pcr11 for every store that boots.
    let pcr11 = hex::encode(uki::predict_pcr11(&f.signed).unwrap());
    assert_eq!(a["uki"]["pcr11_sha256"], pcr11.as_str());
    for preset in ["blank", "custom"] {
        assert_eq!(a["pcrs"][preset]["boots"], true, "{preset}");
        assert_eq!(a["pcrs"][preset]["pcr11"], pcr11.as_str(), "{preset}");
    }
    assert_eq!(a["pcrs"]["blank"]["secure_boot"], false);
    assert_eq!(a["pcrs"]["custom"]["secure_boot"], true);
    // Custom: authority is the db certificate; no .linux event in PCR 4 (3 events).
    let db_der = keys::load_certificate(&f.keys.join("db.crt")).unwrap();
    assert_eq!(
        a["pcrs"]["custom"]["authority"]["certificate_sha256"],
        sha256_hex(&db_der).as_str()
    );
    assert_eq!(
        a["pcrs"]["custom"]["events"]["pcr4"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        a["pcrs"]["custom"]["events"]["pcr7"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        a["pcrs"]["blank"]["events"]["pcr4"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        a["pcrs"]["blank"]["events"]["pcr7"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    // Microsoft: the NekOS-signed UKI is refused.
    let ms = &a["pcrs"]["microsoft"];
    assert_eq!(ms["secure_boot"], true);
    assert_eq!(ms["boots"], false);
    assert!(ms["pcr4"].is_null() && ms["pcr11"].is_null() && ms["pcr4_qemu_kernel"].is_null());
    assert!(a["pcrs"]["custom"]["pcr4_qemu_kernel"].is_null());
    assert!(a["pcrs"]["blank"]["pcr4_qemu_kernel"].is_string());
    assert!(ms["refused"].as_str().unwrap().contains("refuses"));

    // Authenticode and artifacts.
    let auth = hex::encode(authenticode::authenticode_sha256(&f.signed).unwrap());
    assert_eq!(a["uki"]["authenticode_sha256"], auth.as_str());
    for (k, fa) in [
        ("kernel", &f.manifest.kernel.as_ref().unwrap().sha256),
        (
            "initramfs.production",
            &f.manifest.initramfs["production"].sha256,
        ),
        (
            "userland.nekos-init",
            &f.manifest.userland["nekos-init"].sha256,
        ),
        (
            "uki.production.signed",
            &f.manifest.uki["production"].signed.sha256,
        ),
        (
            "uki.production.unsigned",
            &f.manifest.uki["production"].unsigned.sha256,
        ),
    ] {
        assert_eq!(a["artifacts"][k]["sha256"], fa.as_str(), "{k}");
    }

    // SEV-SNP: 3 CPU types × 3 vCPU counts, all distinct, cmdline verbatim.
    let d = a["sev_snp"]["launch_digests"].as_object().unwrap();
    assert_eq!(d.len(), 3);
    let mut all: Vec<&str> = d
        .values()
        .flat_map(|m| m.as_object().unwrap().values().map(|v| v.as_str().unwrap()))
        .collect();
    assert_eq!(all.len(), 9);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 9);
    assert_eq!(
        a["sev_snp"]["cmdline"],
        "panic=-1 console=tty0 console=ttyS0"
    );
}

#[test]
fn snp_cmdline_is_not_trimmed() {
    let ovmf =
        std::fs::read(nekos_packaging::snpmeasure::judge::pinned_ovmf_amdsev().unwrap()).unwrap();
    let a = measurements::sev_snp_entry(&ovmf, b"kernel", b"initrd", "console=ttyS0").unwrap();
    let b = measurements::sev_snp_entry(&ovmf, b"kernel", b"initrd", "console=ttyS0 ").unwrap();
    assert_ne!(a["launch_digests"], b["launch_digests"]);
    assert_eq!(b["cmdline"], "console=ttyS0 ");
}

#[test]
fn stale_manifest_is_an_error() {
    let f = fixture("stale");
    let mut m = f.manifest.clone();
    m.initramfs.get_mut("production").unwrap().sha256 = "00".repeat(32);
    let err = measurements::compute(&m, &f.keys).unwrap_err();
    assert!(format!("{err:#}").contains("stale"), "{err:#}");
}
