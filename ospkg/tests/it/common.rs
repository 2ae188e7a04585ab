//! Shared fixtures: deterministic keys, certificates and packages.
#![allow(dead_code)]

use nekos_ospkg::*;

/// 2020-01-01T00:00:00Z
pub const Y2020: i64 = 1_577_836_800;
/// 2021-01-01T00:00:00Z
pub const Y2021: i64 = 1_609_459_200;
/// 2030-01-01T00:00:00Z
pub const Y2030: i64 = 1_893_456_000;
/// 2040-01-01T00:00:00Z
pub const Y2040: i64 = 2_208_988_800;
/// 2060-01-01T00:00:00Z (GeneralizedTime territory)
pub const Y2060: i64 = 2_840_140_800;

/// A deterministic "random" source (splitmix64) for reproducible fixtures.
pub fn det_rng(seed: u64) -> impl FnMut(&mut [u8]) -> Result<(), String> {
    let mut state = seed;
    move |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *b = (z ^ (z >> 31)) as u8;
        }
        Ok(())
    }
}

pub struct Pki {
    pub root_key: SigningKey,
    pub root_pem: Vec<u8>,
}

pub fn root(seed: u64, from: i64, until: i64) -> Pki {
    let mut rng = det_rng(seed);
    let (root_key, root_pem) = generate_root(from, until, &mut rng).unwrap();
    Pki { root_key, root_pem }
}

pub fn leaf(pki: &Pki, seed: u64, from: i64, until: i64) -> (SigningKey, Vec<u8>) {
    let mut rng = det_rng(seed);
    generate_leaf(&pki.root_key, &pki.root_pem, from, until, &mut rng).unwrap()
}

pub fn kernel() -> Vec<u8> {
    (0..5000u32).map(|i| (i * 7 % 251) as u8).collect()
}

pub fn initramfs() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 13 % 241) as u8).collect()
}

pub fn manifest() -> Manifest {
    Manifest::new("NekOS <cats> & more", "", "", "console=ttyS0 quiet")
}

pub fn package_zip() -> Vec<u8> {
    OsPackageArchive::build(
        "kernel",
        &kernel(),
        "initramfs.cpio",
        &initramfs(),
        &manifest(),
    )
    .unwrap()
}

/// Whether `go` runs here: the cross-checks with Go's standard library (what stmgr and
/// stboot use) are skipped, with a line saying so, where it does not.
pub fn have_go() -> bool {
    let ok = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("go not found: skipped");
    }
    ok
}

/// `go run MAIN ARGS…` in GOPATH mode; fails the test with Go's output unless it succeeds,
/// and returns its stdout.
pub fn go_run<A: AsRef<std::ffi::OsStr>>(main: &std::path::Path, args: &[A]) -> String {
    let out = std::process::Command::new("go")
        .arg("run")
        .arg(main)
        .args(args)
        .env("GO111MODULE", "off")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
