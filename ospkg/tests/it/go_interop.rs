//! Cross-check with Go's standard library, the implementation stmgr and stboot use:
//! `encoding/json` re-marshals our descriptor and manifest to identical bytes,
//! `crypto/x509` chains our certificates (`Verify` with the root pool, as stboot),
//! `crypto/ed25519` accepts our signatures, `encoding/pem` re-encodes our certificate
//! elements identically (as stmgr stores them), `archive/zip` reads our archive, and
//! `x509.MarshalPKCS8PrivateKey` reproduces our key files. Skipped where `go` is missing.

use crate::common::*;
use nekos_ospkg::*;

#[test]
fn go_stdlib_accepts_our_package() {
    if !have_go() {
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let pki = root(11, now - 86_400, now + 10 * 365 * 86_400);
    let (k1, c1) = leaf(&pki, 12, now - 86_400, now + 365 * 86_400);
    let (k2, c2) = leaf(&pki, 13, now - 86_400, now + 365 * 86_400);
    let m = Manifest::new("NekOS <3 & \u{2028}", "", "", "console=ttyS0 a<b&c");
    let zip =
        OsPackageArchive::build("vmlinuz", &kernel(), "initramfs.cpio", &initramfs(), &m).unwrap();
    let mut d = Descriptor::new("http://10.0.2.2:8000/nekos.zip?a=1&b=<2>");
    sign_descriptor(&mut d, &zip, &k1, &c1).unwrap();
    sign_descriptor(&mut d, &zip, &k2, &c2).unwrap();

    let dir = std::env::temp_dir().join(format!("ospkg-go-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("nekos.zip"), &zip).unwrap();
    std::fs::write(dir.join("nekos.json"), d.to_json_bytes()).unwrap();
    std::fs::write(dir.join("root.pem"), &pki.root_pem).unwrap();
    std::fs::write(dir.join("root.key"), signing_key_to_pem(&pki.root_key)).unwrap();
    std::fs::write(dir.join("leaf.key"), signing_key_to_pem(&k1)).unwrap();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("main.go"),
        include_str!("../fixtures/go-verify.go.txt"),
    )
    .unwrap();
    let text = go_run(&src.join("main.go"), &[&dir]);
    let _ = std::fs::remove_dir_all(&dir);
    for want in [
        "descriptor re-marshal identical: true",
        "0 pem re-encode identical: true",
        "1 pem re-encode identical: true",
        "valid: 2",
        "entry boot/ 0 1980-01-01 00:00:00 +0000 UTC 0",
        "entry boot/vmlinuz 0 1980-01-01 00:00:00 +0000 UTC 5000",
        "entry boot/initramfs.cpio 0 1980-01-01 00:00:00 +0000 UTC 3000",
        "manifest re-marshal identical: true console=ttyS0 a<b&c",
        "root.key PRIVATE KEY go re-marshal identical: true",
        "leaf.key PRIVATE KEY go re-marshal identical: true",
        "root IsCA true KeyUsage 33",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
