//! The initramfs: `/init`, `/bin/*`, `/etc/os-release`, `/dev/console` and the cats, as a
//! deterministic newc archive, optionally compressed with a pinned, single-threaded codec.

use crate::cpio::{Archive, Node};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// What users boot.
    Production,
    /// Production plus test-only programs (crash loops, orphan makers) for the QEMU tests.
    Test,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Production => "production",
            Variant::Test => "test",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Fastest to boot under TCG (decompression is emulated): the tests use this.
    #[default]
    None,
    /// flate2 + miniz_oxide, level 9 (byte-identical across miniz_oxide versions).
    Gzip,
    /// libzstd (version pinned by Cargo.lock), level 19, single-threaded.
    Zstd,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "cpio",
            Compression::Gzip => "cpio.gz",
            Compression::Zstd => "cpio.zst",
        }
    }

    pub fn compress(self, data: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Compression::None => Ok(data),
            Compression::Gzip => {
                // GzBuilder without filename or mtime: the header is fixed bytes.
                let mut enc = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::new(9));
                enc.write_all(&data)?;
                Ok(enc.finish()?)
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::Encoder::new(Vec::new(), 19)?;
                // Checksums are fine for the kernel; the content size makes the frame
                // self-describing.
                enc.include_checksum(true)?;
                enc.set_pledged_src_size(Some(data.len() as u64))?;
                enc.write_all(&data)?;
                Ok(enc.finish()?)
            }
        }
    }
}

pub const PHOTO_DIR: &str = "usr/share/nekos/cats";

/// One photo accepted for the image.
#[derive(Debug, Clone, Serialize)]
pub struct Photo {
    pub name: String,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
}

/// Reads the photo directory (`--cats DIR`, default `cats/`). Every entry is either packed
/// or reported by name:
/// - files the viewer never shows (hidden files, subdirectories, and the metadata it skips by
///   name: `*.license`, `*.md`, `*.txt`, `*.sha256`, `*.sums`, `SHA256SUMS*`; the rule is the
///   viewer's own [`nekos_viewer::config::list_photos`]) are not packed, listed on one line;
/// - every other file must be a photo the viewer can show, checked by a full decode with the
///   viewer's own decoder (a truncated JPEG fails here, not at run time on screen). If any is
///   not, the build fails listing each such file with the reason, so the image never holds
///   fewer cats than the directory has without the user knowing. An empty result is an error.
pub fn collect_photos(dir: &Path) -> Result<Vec<(Photo, Vec<u8>)>> {
    let read = fs::read_dir(dir)
        .with_context(|| format!("cannot read the cats directory {}", dir.display()))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry =
            entry.with_context(|| format!("cannot read the cats directory {}", dir.display()))?;
        entries.push(entry.path());
    }
    entries.sort();
    // What the viewer will try to show, by its own rule.
    let shown: std::collections::BTreeSet<PathBuf> = nekos_viewer::config::list_photos(dir)
        .with_context(|| format!("cannot read the cats directory {}", dir.display()))?
        .into_iter()
        .collect();
    let mut out = Vec::new();
    let mut not_photos = Vec::new();
    let mut unusable = Vec::new();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !shown.contains(&path) {
            if path.file_name().and_then(|n| n.to_str()).is_none() {
                // The viewer lists only UTF-8 names: this photo would never be shown.
                unusable.push(format!(
                    "{name}: the name is not UTF-8, the viewer cannot list it; rename it"
                ));
            } else if path.is_dir() {
                not_photos.push(format!("{name}/"));
            } else {
                not_photos.push(name);
            }
            continue;
        }
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        match check_photo(&bytes) {
            Ok((width, height)) => out.push((
                Photo {
                    name,
                    sha256: crate::util::sha256_hex(&bytes),
                    width,
                    height,
                },
                bytes,
            )),
            Err(reason) => unusable.push(format!("{name}: {reason}")),
        }
    }
    if !not_photos.is_empty() {
        eprintln!(
            "nekos: cats: not packed (not photos by the viewer's rule: hidden, directories, licenses, notes, checksums): {}",
            not_photos.join(", ")
        );
    }
    if !unusable.is_empty() {
        bail!(
            "cats directory {}: {} of {} files the viewer would try cannot be shown (expected JPEG or PNG photos that decode):\n  {}\n\
             convert or remove them (notes may stay as *.txt or *.md, which are not packed), then build again",
            dir.display(),
            unusable.len(),
            unusable.len() + out.len(),
            unusable.join("\n  ")
        );
    }
    if out.is_empty() {
        bail!(
            "cats directory {}: no photo in it (expected at least one JPEG or PNG file)",
            dir.display()
        );
    }
    Ok(out)
}

/// Decodes a photo fully with the viewer's decoder: `Ok` with the stored width and height,
/// or why the viewer cannot show it.
pub fn check_photo(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    if bytes.is_empty() {
        return Err("empty file, expected a JPEG or PNG photo".into());
    }
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg | image::ImageFormat::Png) => {}
        Ok(other) => {
            return Err(format!(
                "a {other:?} image; the viewer shows JPEG and PNG only (convert it, e.g. to PNG)"
            ));
        }
        // ISO base media files (HEIC/HEIF from phones) have no entry in the image crate's table.
        Err(_) if bytes.get(4..8) == Some(b"ftyp") => {
            let brand = String::from_utf8_lossy(bytes.get(8..12).unwrap_or_default()).into_owned();
            return Err(format!(
                "an ISO media file (brand {brand:?}, e.g. HEIC); the viewer shows JPEG and PNG only (convert it)"
            ));
        }
        Err(_) => return Err("not a JPEG or PNG file (unknown content)".into()),
    }
    // A complete JPEG has its end-of-image marker after the last scan. Checked before
    // decoding: the message then says what is wrong (cut short) rather than the decoder's
    // words, and a lenient decoder (one that paints the missing part grey) cannot let it by.
    if image::guess_format(bytes).ok() == Some(image::ImageFormat::Jpeg) {
        jpeg_has_end(bytes)?;
    }
    nekos_viewer::render::decode(bytes)
        .map_err(|e| format!("does not decode ({e}); expected a complete JPEG or PNG"))?;
    // The stored size (before EXIF rotation; huge JPEGs decode at 1/8 scale, so not from `decode`).
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot read its size ({e})"))
}

/// Walks the JPEG's segments and entropy-coded scans to its end-of-image marker (EOI);
/// `Err` if the data ends first, i.e. the file is truncated. Bytes after EOI (phones
/// append previews or videos there) are fine. Bounds-checked; never panics.
pub fn jpeg_has_end(b: &[u8]) -> std::result::Result<(), String> {
    let truncated = || {
        format!(
            "truncated: the data ends at byte {} before the JPEG end-of-image marker; expected a complete JPEG (copy or export it again)",
            b.len()
        )
    };
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let mut i = 2;
    loop {
        // The next marker: 0xFF, any fill bytes 0xFF, then the marker code. Stray bytes
        // between segments (which decoders tolerate) are skipped.
        while b.get(i).is_some_and(|&x| x != 0xFF) {
            i += 1;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return Err(truncated());
        };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // Standalone markers (restart, TEM) and a stuffed zero: no length field.
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = match b.get(i..i + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err(truncated()),
        };
        i += len;
        if i > b.len() {
            return Err(truncated());
        }
        if marker == 0xDA {
            // Entropy-coded data up to the next marker that is not a stuffed 0xFF00, a
            // restart marker or fill.
            loop {
                match (b.get(i), b.get(i + 1)) {
                    (Some(0xFF), Some(&next))
                        if next != 0x00 && next != 0xFF && !(0xD0..=0xD7).contains(&next) =>
                    {
                        break;
                    }
                    (Some(_), Some(_)) => i += 1,
                    _ => return Err(truncated()),
                }
            }
        }
    }
}

pub struct Inputs<'a> {
    pub programs: &'a [(String, PathBuf)],
    pub photos: &'a [(Photo, Vec<u8>)],
    pub os_release: &'a [u8],
    pub variant: Variant,
}

/// Lays out the archive. Pure: the same inputs always give the same archive.
pub fn archive(inputs: &Inputs) -> Result<Archive> {
    let mut a = Archive::new();
    for dir in [
        "bin", "dev", "etc", "proc", "sys", "run", "tmp", "root", PHOTO_DIR,
    ] {
        a.mkdir_p(dir)?;
    }
    // Without /dev/console in the archive the kernel starts /init with no stdio.
    a.add(
        "dev/console",
        Node::CharDevice { major: 5, minor: 1 },
        0o600,
    )?;
    a.add(
        "etc/os-release",
        Node::File(inputs.os_release.to_vec()),
        0o644,
    )?;
    for (bin, path) in inputs.programs {
        let Some((_, _, dest, test_only)) = crate::userland::PROGRAMS.iter().find(|p| p.1 == bin)
        else {
            bail!("unknown program {bin}");
        };
        if *test_only && inputs.variant != Variant::Test {
            continue;
        }
        let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        a.add(dest, Node::File(bytes), 0o755)?;
    }
    // The serial prompt is /init itself, started under another name (multi-call binary).
    a.add("bin/nsh", Node::Symlink("/init".into()), 0o777)?;
    for (photo, bytes) in inputs.photos {
        a.add(
            &format!("{PHOTO_DIR}/{}", photo.name),
            Node::File(bytes.clone()),
            0o644,
        )?;
    }
    if inputs.variant == Variant::Test {
        for (name, bytes) in test_photos()? {
            a.add(&format!("{PHOTO_DIR}/{name}"), Node::File(bytes), 0o644)?;
        }
    }
    Ok(a)
}

/// Photos that exist only in the test variant, named to sort first so `nekos.order=name`
/// shows them first: an EXIF orientation 6 photo (stored rotated; shown upright it has red,
/// green, blue and white quadrants clockwise from top-left) and a file that does not decode.
/// Generated, not stored: a few lines of code document them better than binary files.
pub fn test_photos() -> Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![
        ("00-exif-orientation-6.jpg".into(), orientation_6_jpeg()?),
        // A JPEG start-of-image marker and then garbage: sniffed as JPEG, fails to decode.
        (
            "01-corrupt.jpg".into(),
            [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x5A; 512][..]].concat(),
        ),
    ])
}

/// The quadrant colours of the upright test picture, clockwise from top-left.
pub const ORIENTATION_QUADRANTS: [[u8; 3]; 4] =
    [[255, 0, 0], [0, 255, 0], [255, 255, 255], [0, 0, 255]];

fn orientation_6_jpeg() -> Result<Vec<u8>> {
    let (w, h) = (320u32, 240u32);
    let upright = image::RgbImage::from_fn(w, h, |x, y| {
        let q = match (x < w / 2, y < h / 2) {
            (true, true) => 0,
            (false, true) => 1,
            (false, false) => 2,
            (true, false) => 3,
        };
        image::Rgb(ORIENTATION_QUADRANTS[q])
    });
    // Orientation 6 means "rotate 90° clockwise to display": store it rotated counter-clockwise.
    let stored = image::imageops::rotate270(&upright);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95).encode_image(&stored)?;
    // APP1 "Exif": big-endian TIFF header, IFD0 with one entry, Orientation (0x0112) SHORT 6.
    let tiff: [u8; 26] = [
        b'M', b'M', 0, 42, 0, 0, 0, 8, // header, IFD0 at offset 8
        0, 1, // one entry
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation, SHORT, count 1, value 6
        0, 0, 0, 0, // no next IFD
    ];
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&u16::try_from(2 + 6 + tiff.len())?.to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nekos-cats-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A small photo-like JPEG (a gradient, so the entropy-coded data spans the whole file).
    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 99, 200]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    /// The 1×1 lossless WebP that browsers' feature probes use (RIFF/WEBP/VP8L, 34 bytes).
    const WEBP: &[u8] =
        b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07\0";

    fn err_of(dir: &Path) -> String {
        format!("{:#}", collect_photos(dir).unwrap_err())
    }

    #[test]
    fn a_good_photo_set_is_packed_with_licenses_and_notes_left_out() {
        let dir = scratch("good");
        fs::write(dir.join("b-kitten.jpg"), jpeg(64, 48)).unwrap();
        fs::write(dir.join("a-tabby.png"), png(40, 30)).unwrap();
        // A photo without an extension: the viewer sniffs the content, so it is shown.
        fs::write(dir.join("c-noext"), jpeg(16, 16)).unwrap();
        fs::write(dir.join("a-tabby.png.license"), b"CC-BY-4.0").unwrap();
        fs::write(dir.join("notes.txt"), b"photos from the shelter").unwrap();
        fs::write(dir.join("SHA256SUMS"), b"").unwrap();
        fs::write(dir.join(".DS_Store"), b"\0\0\0\x01Bud1").unwrap();
        fs::create_dir(dir.join("LICENSES")).unwrap();
        let photos = collect_photos(&dir).unwrap();
        let got: Vec<_> = photos
            .iter()
            .map(|(p, _)| (p.name.as_str(), p.width, p.height))
            .collect();
        assert_eq!(
            got,
            [
                ("a-tabby.png", 40, 30),
                ("b-kitten.jpg", 64, 48),
                ("c-noext", 16, 16)
            ]
        );
        for (p, bytes) in &photos {
            assert_eq!(p.sha256, crate::util::sha256_hex(bytes));
            // What is packed is what the viewer decodes.
            nekos_viewer::render::decode(bytes).unwrap();
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_webp_photo_is_reported_by_name_not_skipped() {
        let dir = scratch("webp");
        fs::write(dir.join("good.jpg"), jpeg(32, 32)).unwrap();
        fs::write(dir.join("cat.webp"), WEBP).unwrap();
        assert!(
            nekos_viewer::render::decode(WEBP).is_err(),
            "the viewer cannot show WebP"
        );
        let err = err_of(&dir);
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(
            err.contains("cat.webp: a WebP image; the viewer shows JPEG and PNG only"),
            "{err}"
        );
        assert!(err.contains("1 of 2 files"), "{err}");
        assert!(!err.contains("good.jpg"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_truncated_jpeg_fails_the_build_instead_of_the_slideshow() {
        let dir = scratch("truncated");
        let whole = jpeg(320, 240);
        fs::write(dir.join("whole.jpg"), &whole).unwrap();
        // Cut in the middle of the entropy-coded data: the header (and size) still read fine,
        // which is all the build used to check.
        let cut = &whole[..whole.len() / 2];
        assert!(whole.len() > 4096, "{}", whole.len());
        assert!(
            image::ImageReader::new(std::io::Cursor::new(cut))
                .with_guessed_format()
                .unwrap()
                .into_dimensions()
                .is_ok()
        );
        fs::write(dir.join("half.jpg"), cut).unwrap();
        // The viewer's decoder refuses it too (it would skip the photo at run time); the
        // build still has to name the file before the image is made.
        assert!(nekos_viewer::render::decode(cut).is_err());
        let png = png(200, 150);
        fs::write(dir.join("short.png"), &png[..png.len() / 2]).unwrap();
        let err = err_of(&dir);
        assert!(err.contains("2 of 3 files"), "{err}");
        assert!(
            err.contains(&format!(
                "half.jpg: truncated: the data ends at byte {}",
                cut.len()
            )),
            "{err}"
        );
        assert!(err.contains("short.png: does not decode ("), "{err}");
        assert!(!err.contains("whole.jpg"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_end_of_image_check_accepts_every_complete_jpeg_and_no_cut_one() {
        // Progressive and restart-interval JPEGs have several scans or markers inside the
        // entropy-coded data; the project's photos and the EXIF test photo cover more.
        let mut samples = vec![
            jpeg(320, 240),
            jpeg(7, 5),
            test_photos().unwrap()[0].1.clone(),
        ];
        for name in [
            "ginger-kitten.jpg",
            "grey-longhair.jpg",
            "tabby-kitten.jpg",
            "white-kitten.jpg",
        ] {
            samples.push(
                fs::read(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../cats")
                        .join(name),
                )
                .unwrap(),
            );
        }
        for whole in &samples {
            jpeg_has_end(whole).unwrap();
            // Data after EOI (a phone's appended video) is fine.
            jpeg_has_end(&[&whole[..], b"ftypmp42 trailing"].concat()).unwrap();
            for cut in [3, 20, whole.len() / 3, whole.len() - 2, whole.len() - 1] {
                assert!(
                    jpeg_has_end(&whole[..cut])
                        .unwrap_err()
                        .starts_with("truncated"),
                    "cut at {cut}"
                );
            }
        }
        // Markers inside the entropy-coded data: a stuffed 0xFF00, fill, a restart marker.
        let structure = [
            &[0xFF, 0xD8][..],         // SOI
            &[0xFF, 0xDD, 0, 4, 0, 1], // DRI
            &[0xFF, 0xDA, 0, 3, 0],    // SOS (length covers only itself here)
            &[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF],
            &[0xFF, 0xD9], // EOI
        ]
        .concat();
        jpeg_has_end(&structure).unwrap();
        assert!(jpeg_has_end(&structure[..structure.len() - 2]).is_err());
        assert!(
            jpeg_has_end(b"\x89PNG")
                .unwrap_err()
                .contains("no JPEG start-of-image")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_end_of_image_check_never_panics(mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if bytes.len() > 2 { bytes[..2].copy_from_slice(&[0xFF, 0xD8]); }
            let _ = jpeg_has_end(&bytes);
        }
    }

    #[test]
    fn text_files_are_notes_or_errors_by_the_viewers_rule() {
        // notes.txt is skipped by the viewer (not packed, listed); a text file under a photo's
        // name or no extension would be tried by the viewer, so it fails the build by name.
        let dir = scratch("text");
        fs::write(dir.join("cat.jpg"), jpeg(24, 24)).unwrap();
        fs::write(dir.join("notes.txt"), b"not a photo").unwrap();
        assert_eq!(collect_photos(&dir).unwrap().len(), 1);
        fs::write(dir.join("README"), b"my cats\n").unwrap();
        fs::write(dir.join("fake.png"), b"just text pretending").unwrap();
        fs::write(dir.join("empty.jpg"), b"").unwrap();
        let err = err_of(&dir);
        assert!(err.contains("3 of 4 files"), "{err}");
        assert!(err.contains("README: not a JPEG or PNG file"), "{err}");
        assert!(err.contains("fake.png: not a JPEG or PNG file"), "{err}");
        assert!(err.contains("empty.jpg: empty file"), "{err}");
        assert!(!err.contains("notes.txt"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_or_missing_directory_is_an_error_naming_it() {
        let dir = scratch("empty");
        let err = err_of(&dir);
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("no photo in it"),
            "{err}"
        );
        // Only notes: still no photo.
        fs::write(dir.join("SOURCES.md"), b"# sources").unwrap();
        assert!(err_of(&dir).contains("no photo in it"));
        let missing = err_of(&dir.join("missing"));
        assert!(
            missing.contains("cannot read the cats directory") && missing.contains("missing"),
            "{missing}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_projects_own_cats_all_pass() {
        let photos =
            collect_photos(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cats")).unwrap();
        assert!(photos.len() >= 5, "{}", photos.len());
        assert!(
            photos
                .iter()
                .any(|(p, _)| p.name == "chelsea.png" && (p.width, p.height) == (451, 300))
        );
    }

    #[test]
    fn the_orientation_test_photo_carries_exif_orientation_6() {
        let photos = test_photos().unwrap();
        let (_, jpeg) = &photos[0];
        let mut decoder =
            image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(jpeg)).unwrap();
        use image::ImageDecoder;
        assert_eq!(
            decoder.orientation().unwrap(),
            image::metadata::Orientation::Rotate90
        );
    }
}
