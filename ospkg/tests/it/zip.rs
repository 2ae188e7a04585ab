//! Archive layout, interoperability and strict-reader rejections.

use crate::common::*;
use nekos_ospkg::*;

fn u16at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A hand-rolled zip writer for malformed archives.
struct RawEntry<'a> {
    name: &'a str,
    data: &'a [u8],
    method: u16,
    /// Uncompressed size and CRC as recorded (defaults: real values of `data`).
    usize_: Option<u32>,
    crc: Option<u32>,
}

fn entry<'a>(name: &'a str, data: &'a [u8]) -> RawEntry<'a> {
    RawEntry {
        name,
        data,
        method: 0,
        usize_: None,
        crc: None,
    }
}

fn raw_zip(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for e in entries {
        let off = out.len() as u32;
        let crc = e.crc.unwrap_or_else(|| crc32(e.data));
        let us = e.usize_.unwrap_or(e.data.len() as u32);
        let cs = e.data.len() as u32;
        let mut hdr = Vec::new();
        hdr.extend_from_slice(&20u16.to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes());
        hdr.extend_from_slice(&e.method.to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes());
        hdr.extend_from_slice(&0x21u16.to_le_bytes());
        hdr.extend_from_slice(&crc.to_le_bytes());
        hdr.extend_from_slice(&cs.to_le_bytes());
        hdr.extend_from_slice(&us.to_le_bytes());
        hdr.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        hdr.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&hdr);
        out.extend_from_slice(e.name.as_bytes());
        out.extend_from_slice(e.data);
        cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        cd.extend_from_slice(&20u16.to_le_bytes());
        cd.extend_from_slice(&hdr);
        cd.extend_from_slice(&[0u8; 8]); // comment len, disk, internal, (external lo)
        cd.extend_from_slice(&[0u8; 2]); // external hi
        cd.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(e.name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

const MANIFEST: &[u8] =
    br#"{"version":1,"label":"t","kernel":"boot/k","initramfs":"boot/i","cmdline":"c"}"#;

fn parse(z: &[u8]) -> Result<ExtractedPackage, ZipError> {
    OsPackageArchive::parse(z, Limits::default())
}

#[test]
fn layout_is_fixed() {
    let z = package_zip();
    assert_eq!(z, package_zip(), "deterministic");
    // Local headers in order: boot/, boot/kernel, boot/initramfs.cpio, manifest.json.
    let mut p = 0;
    let mut names = Vec::new();
    while u32at(&z, p) == 0x0403_4b50 {
        assert_eq!(u16at(&z, p + 4), 20, "version needed");
        assert_eq!(u16at(&z, p + 6), 0, "flags");
        assert_eq!(u16at(&z, p + 8), 0, "Stored");
        assert_eq!(u16at(&z, p + 10), 0, "DOS time 00:00");
        assert_eq!(u16at(&z, p + 12), 0x21, "DOS date 1980-01-01");
        let size = u32at(&z, p + 18) as usize;
        assert_eq!(size, u32at(&z, p + 22) as usize);
        let nl = u16at(&z, p + 26) as usize;
        assert_eq!(u16at(&z, p + 28), 0, "no extra field");
        let name = String::from_utf8(z[p + 30..p + 30 + nl].to_vec()).unwrap();
        let data = &z[p + 30 + nl..p + 30 + nl + size];
        assert_eq!(u32at(&z, p + 14), crc32(data));
        names.push(name);
        p += 30 + nl + size;
    }
    assert_eq!(
        names,
        [
            "boot/",
            "boot/kernel",
            "boot/initramfs.cpio",
            "manifest.json"
        ]
    );
    assert_eq!(
        u32at(&z, p),
        0x0201_4b50,
        "central directory follows the data"
    );
    // EOCD at the very end, no comment.
    let e = z.len() - 22;
    assert_eq!(u32at(&z, e), 0x0605_4b50);
    assert_eq!(u16at(&z, e + 10), 4);
    assert_eq!(u32at(&z, e + 16) as usize, p);
    assert_eq!(u16at(&z, e + 20), 0);
    let pkg = parse(&z).unwrap();
    assert_eq!(pkg.kernel, kernel());
    assert_eq!(pkg.initramfs, initramfs());
    assert_eq!(pkg.manifest.label, "NekOS <cats> & more");
    assert_eq!(
        OsPackageArchive::entry_names(&z, Limits::default()).unwrap(),
        names
    );
}

#[test]
fn python_zipfile_reads_it() {
    let z = package_zip();
    let path = std::env::temp_dir().join(format!("ospkg-py-{}.zip", std::process::id()));
    std::fs::write(&path, &z).unwrap();
    let script = r#"
import sys, zipfile, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
for i in z.infolist():
    print(i.filename, i.compress_type, i.date_time, i.file_size, len(i.extra), i.is_dir())
m = json.loads(z.read("manifest.json"))
print(m["kernel"], m["initramfs"], m["label"])
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let Ok(out) = out else {
        eprintln!("python3 not found: skipped");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = "boot/ 0 (1980, 1, 1, 0, 0, 0) 0 0 True\n\
                boot/kernel 0 (1980, 1, 1, 0, 0, 0) 5000 0 False\n\
                boot/initramfs.cpio 0 (1980, 1, 1, 0, 0, 0) 3000 0 False\n";
    assert!(text.starts_with(want), "{text}");
    assert!(
        text.ends_with("boot/kernel boot/initramfs.cpio NekOS <cats> & more\n"),
        "{text}"
    );
}

#[test]
fn reads_python_deflate_zip() {
    let path = std::env::temp_dir().join(format!("ospkg-pyd-{}.zip", std::process::id()));
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("boot/", b"")
    z.writestr("boot/k", b"kernel" * 1000)
    z.writestr("boot/i", b"initramfs" * 1000)
    z.writestr("manifest.json", b'{"version":1,"label":"py","kernel":"boot/k","initramfs":"boot/i","cmdline":"c"}')
"#;
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .status();
    if !matches!(st, Ok(s) if s.success()) {
        eprintln!("python3 not usable: skipped");
        return;
    }
    let z = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let pkg = parse(&z).unwrap();
    assert_eq!(pkg.kernel, b"kernel".repeat(1000));
    assert_eq!(pkg.initramfs, b"initramfs".repeat(1000));
    assert_eq!(pkg.manifest.label, "py");
}

#[test]
fn reads_go_archive_zip() {
    // Made by Go's archive/zip Writer.Create, as stmgr does: Deflate with data
    // descriptors (see tests/fixtures/go-golden.go.txt).
    let z = include_bytes!("../fixtures/go-archive-zip.zip");
    let pkg = parse(z).unwrap();
    assert_eq!(pkg.kernel, b"kernel bytes ".repeat(50));
    assert_eq!(pkg.initramfs, b"initramfs ".repeat(40));
    assert_eq!(pkg.manifest.cmdline, "console=ttyS0");
    // Flipping a byte in the compressed kernel is caught (CRC or Deflate error).
    let mut bad = z.to_vec();
    bad[0x50] ^= 0x20;
    assert!(parse(&bad).is_err());
}

#[test]
fn rejects_bad_names() {
    for name in ["../evil", "/abs", "boot\\k", "boot/../k", "boot//k", "./k"] {
        let z = raw_zip(&[
            entry("manifest.json", MANIFEST),
            entry("boot/k", b"k"),
            entry("boot/i", b"i"),
            entry(name, b"x"),
        ]);
        assert!(matches!(parse(&z), Err(ZipError::BadName(_))), "{name}");
    }
}

#[test]
fn rejects_duplicates_and_missing() {
    let z = raw_zip(&[
        entry("manifest.json", MANIFEST),
        entry("boot/k", b"k"),
        entry("boot/k", b"k2"),
        entry("boot/i", b"i"),
    ]);
    assert!(matches!(parse(&z), Err(ZipError::DuplicateName(_))));
    let z = raw_zip(&[entry("manifest.json", MANIFEST), entry("boot/k", b"k")]);
    let e = parse(&z).unwrap_err();
    assert_eq!(e, ZipError::MissingEntry("boot/i".into()));
    assert!(e.to_string().contains("\"boot/i\""));
    let z = raw_zip(&[entry("boot/k", b"k"), entry("boot/i", b"i")]);
    assert_eq!(
        parse(&z).unwrap_err(),
        ZipError::MissingEntry("manifest.json".into())
    );
    // The manifest may not point at a directory entry.
    let m = br#"{"version":1,"kernel":"boot/","initramfs":"boot/i"}"#;
    let z = raw_zip(&[
        entry("manifest.json", m),
        entry("boot/", b""),
        entry("boot/i", b"i"),
    ]);
    assert!(matches!(parse(&z), Err(ZipError::MissingEntry(_))));
    // Invalid manifests.
    for m in [
        &b"{}"[..],
        b"not json",
        br#"{"version":2,"kernel":"boot/k","initramfs":"boot/i"}"#,
    ] {
        let z = raw_zip(&[
            entry("manifest.json", m),
            entry("boot/k", b"k"),
            entry("boot/i", b"i"),
        ]);
        assert!(
            matches!(parse(&z), Err(ZipError::Manifest(_))),
            "{}",
            String::from_utf8_lossy(m)
        );
    }
    // A good one for reference.
    let z = raw_zip(&[
        entry("manifest.json", MANIFEST),
        entry("boot/k", b"k"),
        entry("boot/i", b"i"),
    ]);
    assert_eq!(parse(&z).unwrap().kernel, b"k");
}

#[test]
fn rejects_size_crc_method() {
    let mut e = entry("boot/k", b"kkk");
    e.crc = Some(1234);
    let z = raw_zip(&[entry("manifest.json", MANIFEST), e, entry("boot/i", b"i")]);
    assert!(matches!(parse(&z), Err(ZipError::CrcMismatch { .. })));
    let mut e = entry("boot/k", b"kkk");
    e.usize_ = Some(4);
    let z = raw_zip(&[entry("manifest.json", MANIFEST), e, entry("boot/i", b"i")]);
    assert!(matches!(parse(&z), Err(ZipError::SizeMismatch { .. })));
    let mut e = entry("boot/k", b"kkk");
    e.method = 12; // bzip2
    let z = raw_zip(&[entry("manifest.json", MANIFEST), e, entry("boot/i", b"i")]);
    let err = parse(&z).unwrap_err();
    assert!(matches!(
        err,
        ZipError::UnsupportedMethod { method: 12, .. }
    ));
    assert!(err.to_string().contains("only Stored and Deflate"));
    // Deflate data that does not inflate.
    let mut e = entry("boot/k", b"\xff\xff\xff");
    e.method = 8;
    let z = raw_zip(&[entry("manifest.json", MANIFEST), e, entry("boot/i", b"i")]);
    assert!(matches!(
        parse(&z),
        Err(ZipError::Corrupt { .. }) | Err(ZipError::SizeMismatch { .. })
    ));
    // A stored kernel byte flipped in our own archive.
    let mut z = package_zip();
    let at = 30 + 5 + 30 + "boot/kernel".len() + 10;
    z[at] ^= 1;
    assert!(matches!(parse(&z), Err(ZipError::CrcMismatch { .. })));
}

#[test]
fn rejects_header_mismatch_and_truncation() {
    let z = package_zip();
    // Local header of boot/kernel (second entry, at 35) claims another CRC.
    let mut bad = z.clone();
    bad[35 + 14] ^= 1;
    assert!(matches!(
        parse(&bad),
        Err(ZipError::HeaderMismatch {
            field: "CRC-32",
            ..
        })
    ));
    // Local name differs from the central one.
    let mut bad = z.clone();
    bad[35 + 30 + 5] = b'K';
    assert!(matches!(
        parse(&bad),
        Err(ZipError::HeaderMismatch { field: "name", .. })
    ));
    // Truncations never parse.
    for cut in [1, 10, 22, 23, 100, z.len() / 2, z.len() - 1] {
        assert!(parse(&z[..z.len() - cut]).is_err(), "cut {cut}");
    }
    assert!(parse(&[]).is_err());
    // Trailing garbage after the end record is refused (comment length must match).
    let mut long = z.clone();
    long.push(0);
    assert!(parse(&long).is_err());
    // An archive without a manifest.
    let one = raw_zip(&[entry("boot/k", b"k")]);
    assert!(parse(&one).is_err());
}

#[test]
fn limits() {
    let z = package_zip();
    let small = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        OsPackageArchive::parse(&z, l)
    };
    let e = small(|l| l.max_archive_bytes = 100).unwrap_err();
    assert!(matches!(e, ZipError::TooLarge { .. }));
    assert!(e.to_string().contains("above the limit of 100"));
    assert!(matches!(
        small(|l| l.max_entry_bytes = 4000),
        Err(ZipError::TooLarge { .. })
    ));
    assert!(matches!(
        small(|l| l.max_total_bytes = 7000),
        Err(ZipError::TooLarge { .. })
    ));
    assert!(matches!(
        small(|l| l.max_entries = 3),
        Err(ZipError::TooLarge { .. })
    ));
    assert!(small(|l| l.max_entry_bytes = 5000).is_ok());
    // A Deflate bomb claiming a small size but inflating to more is caught.
    let path = std::env::temp_dir().join(format!("ospkg-bomb-{}.zip", std::process::id()));
    let ok = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z: z.writestr('boot/k', b'\\0'*1000000)")
        .arg(&path)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let mut b = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        // Rewrite the recorded uncompressed size (local at 22, central at cd+24) to 10.
        b[22..26].copy_from_slice(&10u32.to_le_bytes());
        let e = b.len() - 22;
        let cd = u32at(&b, e + 16) as usize;
        b[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
        assert!(
            matches!(parse(&b), Err(ZipError::SizeMismatch { .. })),
            "{:?}",
            parse(&b)
        );
    }
}

#[test]
fn build_refuses_bad_names() {
    let m = manifest();
    for (k, i) in [
        ("", "i"),
        ("a/b", "i"),
        ("..", "i"),
        ("k", "k"),
        ("k", "a\\b"),
    ] {
        assert!(
            OsPackageArchive::build(k, b"", i, b"", &m).is_err(),
            "{k} {i}"
        );
    }
}
