//! Variable stores (packaging/src/varstore) against the judge, virt-fw-vars (PyPI
//! `virt-firmware` in /opt/nekos/venv, set up by packaging/host-setup.sh, at the version
//! `packaging/varstore-certs/certs.lock` names — the release whose certificates the microsoft
//! preset enrolls): the JSON and the raw image of every preset must be byte-identical to what
//! virt-fw-vars writes for the same certificates and options, starting from Debian's blank
//! OVMF_VARS_4M.fd.

use nekos_packaging::keys;
use nekos_packaging::varstore::{self, Preset, Store};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SEED: &str = "6e656b6f732d76617273746f72652d74657374"; // "nekos-varstore-test"
const DEBIAN_TEMPLATE: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-varstore-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The virt-firmware version the certificates come from, and so the judge's.
fn pinned_version() -> String {
    let dir = varstore::pinned_certs_dir().unwrap();
    varstore::MicrosoftCerts::load(&dir).unwrap().version
}

/// The judge, checked to be the pinned release. Fails with the fix if it is missing.
fn virt_fw_vars() -> PathBuf {
    let want = pinned_version();
    let p = std::env::var_os("NEKOS_VIRT_FW_VARS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/nekos/venv/bin/virt-fw-vars"));
    assert!(
        p.is_file(),
        "{} is missing: run `sudo packaging/host-setup.sh` (creates /opt/nekos/venv with \
         virt-firmware=={want}), or point NEKOS_VIRT_FW_VARS at a virt-fw-vars {want}",
        p.display()
    );
    // The venv's own metadata says which release this virt-fw-vars is (it has no --version).
    let python = p.with_file_name("python");
    if python.is_file() {
        let out = Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('virt-firmware'))",
            ])
            .output()
            .unwrap();
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            got,
            want,
            "{} is virt-firmware {got}, but packaging/varstore-certs/certs.lock pins {want}: \
             run `sudo packaging/host-setup.sh`",
            p.display()
        );
    }
    p
}

fn debian_template() -> Vec<u8> {
    std::fs::read(DEBIAN_TEMPLATE).unwrap_or_else(|e| {
        panic!("{DEBIAN_TEMPLATE}: {e} — install Debian's ovmf (packaging/host-setup.sh does)")
    })
}

/// Deterministic, insecure test hierarchy in a directory (generated once per test binary).
fn keys_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("keys");
        let h = keys::generate_hierarchy(Some(&hex::decode(SEED).unwrap())).unwrap();
        keys::write_hierarchy(&d, &h, true).unwrap();
        d
    })
}

/// Runs virt-fw-vars on Debian's blank template; returns (json, raw).
fn judge(name: &str, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let d = tmp(&format!("judge-{name}"));
    let (json, raw) = (d.join("out.json"), d.join("out.fd"));
    let out = Command::new(virt_fw_vars())
        .arg("-i")
        .arg(DEBIAN_TEMPLATE)
        .args(args)
        .arg("-o")
        .arg(&raw)
        .arg("--output-json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "virt-fw-vars {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = (std::fs::read(&json).unwrap(), std::fs::read(&raw).unwrap());
    let _ = std::fs::remove_dir_all(&d);
    r
}

/// `virt-fw-vars -i FILE -pv` accepts the image; returns its listing.
fn judge_accepts(raw: &[u8], name: &str) -> String {
    let d = tmp(&format!("accept-{name}"));
    let f = d.join("vars.fd");
    std::fs::write(&f, raw).unwrap();
    let out = Command::new(virt_fw_vars())
        .arg("-i")
        .arg(&f)
        .arg("-pv")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&d);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("ERROR"),
        "virt-fw-vars -pv rejects the {name} store: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn assert_same(what: &str, ours: &[u8], theirs: &[u8]) {
    if ours != theirs {
        let first = ours
            .iter()
            .zip(theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        panic!(
            "{what}: differs from virt-fw-vars (lengths {} vs {}, first difference at {first:#x})\nours:   {}\ntheirs: {}",
            ours.len(),
            theirs.len(),
            String::from_utf8_lossy(&ours[first.saturating_sub(40)..(first + 80).min(ours.len())]),
            String::from_utf8_lossy(
                &theirs[first.saturating_sub(40)..(first + 80).min(theirs.len())]
            ),
        );
    }
}

#[test]
fn builtin_template_is_debians_blank_ovmf_vars_4m() {
    let ours = varstore::blank_template();
    assert_eq!(ours.len(), 540672);
    assert_same("blank template", &ours, &debian_template());
    let t = varstore::parse_template(&ours).unwrap();
    assert_eq!((t.vars_start, t.vars_end), (0x64, 0x40000));
    assert!(varstore::parse_raw(&ours).unwrap().is_empty());
}

#[test]
fn blank_preset_matches_virt_fw_vars() {
    let store = varstore::build(&Preset::Blank).unwrap();
    let (json, raw) = judge("blank", &[]);
    assert_same("blank json", &store.to_json(), &json);
    assert_same(
        "blank raw",
        &store.to_raw(&debian_template()).unwrap(),
        &raw,
    );
    assert_same(
        "blank raw (built-in template)",
        &store.to_raw_4m().unwrap(),
        &raw,
    );
}

#[test]
fn microsoft_preset_matches_virt_fw_vars_enroll_redhat() {
    let store = varstore::build(&Preset::Microsoft).unwrap();
    let (json, raw) = judge("ms", &["--enroll-redhat", "--secure-boot"]);
    assert_same("microsoft json", &store.to_json(), &json);
    let ours = store.to_raw_4m().unwrap();
    assert_same("microsoft raw", &ours, &raw);
    let listing = judge_accepts(&ours, "microsoft");
    for needle in [
        "name=PK",
        "name=KEK",
        "name=db",
        "name=dbx",
        "Microsoft Corporation KEK CA 2011",
        "Microsoft Corporation KEK 2K CA 2023",
        "Microsoft Windows Production PCA 2011",
        "Windows UEFI CA 2023",
        "Microsoft Corporation UEFI CA 2011",
        "Microsoft UEFI CA 2023",
        "Microsoft Option ROM UEFI CA 2023",
        "Red Hat Secure Boot (PK/KEK key 1)",
        "SecureBootEnable",
    ] {
        assert!(
            listing.contains(needle),
            "{needle} missing from:\n{listing}"
        );
    }
    // Read back by our own parser: same variables, sorted by name.
    let back = varstore::parse_raw(&ours).unwrap();
    let mut expect = store.variables.clone();
    expect.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(back, expect);
}

#[test]
fn custom_preset_matches_virt_fw_vars() {
    let dir = keys_dir();
    let store = varstore::build(&Preset::Custom(dir.to_path_buf())).unwrap();
    let g = keys::NEKOS_OWNER_GUID;
    let crt = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (pk, kek, db) = (crt("PK.crt"), crt("KEK.crt"), crt("db.crt"));
    let (json, raw) = judge(
        "custom",
        &[
            "--set-pk",
            g,
            &pk,
            "--add-kek",
            g,
            &kek,
            "--add-db",
            g,
            &db,
            "--secure-boot",
        ],
    );
    assert_same("custom json", &store.to_json(), &json);
    let ours = store.to_raw_4m().unwrap();
    assert_same("custom raw", &ours, &raw);
    let listing = judge_accepts(&ours, "custom");
    assert!(listing.contains("NekOS Signature Database Key (db) INSECURE TEST KEY"));
    // Timestamps: notBefore of the NekOS certificates (2025-01-01).
    let pkv = store.get("PK").unwrap();
    assert_eq!(pkv.time.unwrap().year, 2025);
    assert_eq!(pkv.attr, 0x27);
}

#[test]
fn two_builds_are_byte_identical() {
    for preset in [
        Preset::Blank,
        Preset::Microsoft,
        Preset::Custom(keys_dir().to_path_buf()),
    ] {
        let a = varstore::build(&preset).unwrap();
        let b = varstore::build(&preset).unwrap();
        assert_eq!(a.to_json(), b.to_json(), "{preset:?}");
        assert_eq!(a.to_raw_4m().unwrap(), b.to_raw_4m().unwrap(), "{preset:?}");
    }
}

#[test]
fn cli_writes_both_outputs() {
    let d = tmp("cli");
    let (json, raw) = (d.join("v.json"), d.join("v.fd"));
    nekos_packaging::cli::run_args(
        [
            "varstore",
            "--preset",
            "custom",
            "--keys",
            keys_dir().to_str().unwrap(),
            "--uefi-vars",
            json.to_str().unwrap(),
            "--ovmf-vars",
            raw.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    )
    .unwrap();
    let store = varstore::build(&Preset::Custom(keys_dir().to_path_buf())).unwrap();
    assert_eq!(std::fs::read(&json).unwrap(), store.to_json());
    assert_eq!(std::fs::read(&raw).unwrap(), store.to_raw_4m().unwrap());
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// QEMU's `uefi-vars-x64` device loads each preset's JSON (and rewrites it, in its own
/// format, on exit): all our variables survive it unchanged (QEMU adds only VendorKeysNv
/// and, for the blank store, CustomMode).
#[test]
fn qemu_uefi_vars_device_loads_the_json() {
    use std::io::Write;
    let d = tmp("qemu-json");
    for (name, preset) in [
        ("blank", Preset::Blank),
        ("microsoft", Preset::Microsoft),
        ("custom", Preset::Custom(keys_dir().to_path_buf())),
    ] {
        let store = varstore::build(&preset).unwrap();
        let f = d.join(format!("{name}.json"));
        std::fs::write(&f, store.to_json()).unwrap();
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-machine", "q35", "-nodefaults", "-display", "none", "-S"])
            .arg("-device")
            .arg(format!("uefi-vars-x64,jsonfile={}", f.display()))
            .args(["-monitor", "stdio"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 10 (bookworm-backports; packaging/host-setup.sh)");
        child.stdin.take().unwrap().write_all(b"quit\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{name}: {err}"
        );
        let vars = |bytes: &[u8]| {
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            assert_eq!(v["version"], 2);
            let mut l: Vec<String> = v["variables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    format!(
                        "{} {} {} {} {}",
                        x["name"], x["guid"], x["attr"], x["data"], x["time"]
                    )
                })
                .collect();
            l.sort();
            l
        };
        let after = std::fs::read(&f).unwrap();
        let (after, ours) = (vars(&after), vars(&store.to_json()));
        // Every variable survives unchanged; QEMU adds only what it computes itself.
        for v in &ours {
            assert!(
                after.contains(v),
                "{name}: QEMU lost or changed {v}\n{after:?}"
            );
        }
        for v in after.iter().filter(|v| !ours.contains(v)) {
            assert!(
                v.starts_with("\"VendorKeysNv\"") || v.starts_with("\"CustomMode\""),
                "{name}: QEMU added {v}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}

fn err_text(e: anyhow::Error) -> String {
    format!("{e:#}")
}

fn custom_dir_with(name: &str, file: &str, contents: &[u8]) -> PathBuf {
    let d = tmp(name);
    for f in ["PK.crt", "KEK.crt", "db.crt", "GUID"] {
        std::fs::copy(keys_dir().join(f), d.join(f)).unwrap();
    }
    std::fs::write(d.join(file), contents).unwrap();
    d
}

#[test]
fn not_x509_is_an_error_naming_the_file() {
    let d = custom_dir_with("notx509", "KEK.crt", b"hello, not a certificate\n");
    let e = err_text(varstore::build(&Preset::Custom(d.clone())).unwrap_err());
    assert!(e.contains("KEK.crt") && e.contains("X.509"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn non_rsa_certificate_is_an_error_naming_the_file() {
    let ec = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/varstore/ec-p256.crt"),
    )
    .unwrap();
    let d = custom_dir_with("ec", "db.crt", &ec);
    let e = err_text(varstore::build(&Preset::Custom(d.clone())).unwrap_err());
    assert!(e.contains("db.crt") && e.contains("RSA"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_owner_guid_is_an_error_naming_the_file() {
    for bad in [
        &b"not-a-guid\n"[..],
        b"fd10187e-ca3b-4612-8b5a-4d31695b635",
        b"fd10187eXca3b-4612-8b5a-4d31695b635f",
    ] {
        let d = custom_dir_with("guid", "GUID", bad);
        let e = err_text(varstore::build(&Preset::Custom(d.clone())).unwrap_err());
        assert!(e.contains("GUID") && e.contains(d.to_str().unwrap()), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn missing_certificate_is_an_error_naming_the_file() {
    let d = custom_dir_with("missing", "GUID", keys::NEKOS_OWNER_GUID.as_bytes());
    std::fs::remove_file(d.join("PK.crt")).unwrap();
    let e = err_text(varstore::build(&Preset::Custom(d.clone())).unwrap_err());
    assert!(e.contains("PK.crt"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn corrupted_or_truncated_templates_are_errors_naming_the_file() {
    let store = varstore::build(&Preset::Custom(keys_dir().to_path_buf())).unwrap();
    let good = varstore::blank_template();
    let d = tmp("templates");
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("truncated.fd", good[..0x20000].to_vec()));
    cases.push(("tiny.fd", good[..100].to_vec()));
    cases.push(("empty.fd", Vec::new()));
    let mut c = good.clone();
    c[0x30] ^= 1; // header length → checksum
    cases.push(("checksum.fd", c));
    let mut c = good.clone();
    c[0x28] = b'X'; // _FVH
    cases.push(("signature.fd", c));
    let mut c = good.clone();
    c[0x48] ^= 0xff; // variable store GUID
    cases.push(("storeguid.fd", c));
    let mut c = good.clone();
    c[0x5c] = 0x00; // format
    cases.push(("format.fd", c));
    for (name, bytes) in &cases {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = d.join(format!("{name}.out"));
        let e = err_text(varstore::write_outputs(&store, None, Some(&out), Some(&p)).unwrap_err());
        assert!(e.contains(name), "{name}: {e}");
        assert!(!out.exists(), "{name}: output written despite the error");
        assert!(varstore::parse_template(bytes).is_err(), "{name}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_store_too_big_for_the_variable_area_is_an_error() {
    let store = varstore::build(&Preset::Microsoft).unwrap();
    // Same template, variable store header shrunk to 4 KiB.
    let mut small = varstore::blank_template();
    small[0x48 + 16..0x48 + 20].copy_from_slice(&0x1000u32.to_le_bytes());
    let d = tmp("small");
    let p = d.join("small-vars.fd");
    std::fs::write(&p, &small).unwrap();
    let out = d.join("out.fd");
    let e = err_text(varstore::write_outputs(&store, None, Some(&out), Some(&p)).unwrap_err());
    assert!(
        e.contains("small-vars.fd") && e.contains("variable area"),
        "{e}"
    );
    assert!(!out.exists());
    // The blank store still fits.
    assert!(Store::new().to_raw(&small).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_template_with_variables_is_refused() {
    let store = varstore::build(&Preset::Custom(keys_dir().to_path_buf())).unwrap();
    let full = store.to_raw_4m().unwrap();
    let e = err_text(store.to_raw(&full).unwrap_err());
    assert!(e.contains("blank"), "{e}");
}

#[test]
fn guid_text_round_trip() {
    let g = varstore::Guid::parse("8BE4DF61-93CA-11d2-aa0d-00e098032b8c").unwrap();
    assert_eq!(
        g.0,
        [
            0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03,
            0x2b, 0x8c
        ]
    );
    assert_eq!(g.to_text(), "8be4df61-93ca-11d2-aa0d-00e098032b8c");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn template() -> &'static [u8] {
        static T: OnceLock<Vec<u8>> = OnceLock::new();
        T.get_or_init(|| {
            let store = varstore::build(&Preset::Custom(keys_dir().to_path_buf())).unwrap();
            store.to_raw_4m().unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = varstore::parse_template(&bytes);
            let _ = varstore::parse_raw(&bytes);
            let _ = Store::new().to_raw(&bytes);
        }

        #[test]
        fn parsers_never_panic_on_mutated_stores(
            edits in proptest::collection::vec((0usize..0x2000, any::<u8>()), 1..16),
            cut in 0usize..0x84001,
        ) {
            let mut b = template().to_vec();
            for (at, v) in edits {
                b[at] = v;
            }
            // Fix the FV header checksum half of the time so mutations reach the variables.
            if cut % 2 == 0 {
                b[0x32] = 0; b[0x33] = 0;
                let sum = b[..0x48].chunks(2).fold(0u16, |a, w| a.wrapping_add(u16::from_le_bytes([w[0], w[1]])));
                let c = 0u16.wrapping_sub(sum).to_le_bytes();
                b[0x32] = c[0]; b[0x33] = c[1];
            }
            let _ = varstore::parse_raw(&b);
            let _ = varstore::parse_raw(&b[..cut.min(b.len())]);
            let _ = Store::new().to_raw(&b[..cut.min(b.len())]);
        }
    }
}

/// The Microsoft preset's certificates are data checked against certs.lock: a changed file
/// or a malformed lock is an error naming the file, the expected and the found value.
#[test]
fn tampered_certificate_or_malformed_certs_lock_is_an_error_naming_it() {
    let src = varstore::pinned_certs_dir().unwrap();
    let d = tmp("certs");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, d.join(p.file_name().unwrap())).unwrap();
    }
    varstore::microsoft_store(&d).unwrap();
    let rom = d.join("ms-uefi-rom-2023.pem");
    let mut bytes = std::fs::read(&rom).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&rom, &bytes).unwrap();
    let e = err_text(varstore::microsoft_store(&d).unwrap_err());
    assert!(e.contains("ms-uefi-rom-2023.pem has SHA-256"), "{e}");
    assert!(
        e.contains("expected 7e7f7aa448b9221de4f59d09505193888e172149247ed4d289bf53fd7e8d0e06"),
        "{e}"
    );
    let lock = d.join("certs.lock");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(
        &lock,
        text.replace(
            "\"ms-kek-2023.pem\" = \"ec61",
            "\"ms-kek-2023.pem\" = \"xx61",
        ),
    )
    .unwrap();
    let e = err_text(varstore::microsoft_store(&d).unwrap_err());
    assert!(
        e.contains("certs.lock: [sha256] ms-kek-2023.pem is \"xx61"),
        "{e}"
    );
    std::fs::write(&lock, text.replace("pk = \"rh-pk-kek-2014.pem\"\n", "")).unwrap();
    let e = err_text(varstore::microsoft_store(&d).unwrap_err());
    assert!(e.contains("certs.lock: pk is missing"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}
