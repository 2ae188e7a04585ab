//! PCR 11 prediction (`uki::predict_pcr11`) judged by systemd-measure 257: trixie's
//! `systemd` binary run through trixie's loader from unpacked .debs (nothing installed).

use nekos_packaging::authenticode;
use nekos_packaging::keys::{self, KeySigner, Role};
use nekos_packaging::pe::{self, PeFile};
use nekos_packaging::uki::{self, UkiInputs, stub};
use std::path::PathBuf;
use std::process::Command;

/// (package, version, sha256 of the .deb) — Debian trixie, fetched with apt-get download.
const MEASURE_DEBS: [(&str, &str, &str); 4] = [
    (
        "systemd",
        "257.13-1~deb13u1",
        "ee81302a1d5b7434762b6e784a572854d4b6cf6235e33e2d104ad4e1cae71ab4",
    ),
    (
        "libsystemd-shared",
        "257.13-1~deb13u1",
        "2d349824e57f88507e2a33360610d8afc143a4ad5e80ee4bf8f37b826d6f37f9",
    ),
    (
        "libc6",
        "2.41-12+deb13u5",
        "b59b0625cd1a791375d40dab23a4d5d3d0641e3d0a773501becdc3725b7f99cf",
    ),
    (
        "libssl3t64",
        "3.5.9-1~deb13u1",
        "ffefb9af363e0e4592251b2533eb06453c8e470f7772e40263c4b2129251a6d5",
    ),
];

fn systemd_measure() -> Command {
    let dirs: Vec<PathBuf> = MEASURE_DEBS
        .iter()
        .map(|(p, v, h)| {
            nekos_packaging::pins::fetch_deb(p, v, h).unwrap_or_else(|e| {
                panic!(
                    "fetching trixie {p} {v} (apt-get download; run packaging/host-setup.sh): {e:#}"
                )
            })
        })
        .collect();
    let [systemd, shared, libc, ssl] = [&dirs[0], &dirs[1], &dirs[2], &dirs[3]];
    let mut c = Command::new(libc.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
    c.arg("--library-path")
        .arg(format!(
            "{}:{}:{}:/usr/lib/x86_64-linux-gnu",
            ssl.join("usr/lib/x86_64-linux-gnu").display(),
            shared.join("usr/lib/x86_64-linux-gnu/systemd").display(),
            libc.join("usr/lib/x86_64-linux-gnu").display()
        ))
        .arg(systemd.join("usr/lib/systemd/systemd-measure"));
    c
}

#[test]
fn pcr11_prediction_matches_systemd_measure() {
    let dir = std::env::temp_dir().join(format!("nekos-uki-pcr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stub_bytes = stub::load_pinned_stub().unwrap();
    let linux = pe::synthetic_efi_image(20_000, true, None);
    let initrd: Vec<u8> = (0..12_345u32).map(|i| (i % 253) as u8).collect();
    let unsigned = uki::build_uki(&UkiInputs {
        stub: &stub_bytes,
        linux: &linux,
        initrd: &initrd,
        cmdline: "console=ttyS0 quiet",
        osrel: uki::NEKOS_OS_RELEASE,
        uname: Some("6.12.0-nekos"),
        sbat: None,
    })
    .unwrap();
    let predicted = uki::predict_pcr11(&unsigned).unwrap();

    // Signing does not change it.
    let h = keys::generate_hierarchy(Some(b"pcr")).unwrap();
    let signer = KeySigner::from_keypair(h.get(Role::Db).unwrap()).unwrap();
    let signed = authenticode::sign(&unsigned, &signer).unwrap();
    assert_eq!(uki::predict_pcr11(&signed).unwrap(), predicted);

    let pe = PeFile::parse(&unsigned).unwrap();
    let mut cmd = systemd_measure();
    cmd.arg("calculate");
    for name in ["linux", "osrel", "cmdline", "initrd", "uname", "sbat"] {
        let s = pe.section(&format!(".{name}")).unwrap();
        let f = dir.join(name);
        std::fs::write(&f, s.content(&unsigned)).unwrap();
        cmd.arg(format!("--{name}={}", f.display()));
    }
    let out = cmd.args(["--bank=sha256", "--phase="]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "systemd-measure: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!("11:sha256={}", hex::encode(predicted));
    assert!(
        text.lines().any(|l| l.trim() == expected),
        "predicted {expected}, systemd-measure said:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
