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

/// Reads the photo directory: every .jpg/.jpeg/.png that decodes is kept; the others are
/// reported and left out. Fails only when none is usable.
pub fn collect_photos(dir: &Path) -> Result<Vec<(Photo, Vec<u8>)>> {
    let read = fs::read_dir(dir).with_context(|| format!("cats directory {}", dir.display()))?;
    let mut names: Vec<PathBuf> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .map(|e| matches!(e.to_ascii_lowercase().to_str(), Some("jpg" | "jpeg" | "png")))
                    .unwrap_or(false)
        })
        .collect();
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let bytes = fs::read(&path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let decoded = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .map_err(anyhow::Error::from)
            .and_then(|r| r.into_dimensions().map_err(anyhow::Error::from));
        match decoded {
            Ok((width, height)) => out.push((
                Photo { name, sha256: crate::util::sha256_hex(&bytes), width, height },
                bytes,
            )),
            Err(e) => eprintln!("nekos: warning: cats: {} does not decode ({e}); left out", path.display()),
        }
    }
    if out.is_empty() {
        bail!("cats directory {}: no usable photo (.jpg, .jpeg or .png that decodes)", dir.display());
    }
    Ok(out)
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
    for dir in ["bin", "dev", "etc", "proc", "sys", "run", "tmp", "root", PHOTO_DIR] {
        a.mkdir_p(dir)?;
    }
    // Without /dev/console in the archive the kernel starts /init with no stdio.
    a.add("dev/console", Node::CharDevice { major: 5, minor: 1 }, 0o600)?;
    a.add("etc/os-release", Node::File(inputs.os_release.to_vec()), 0o644)?;
    for (bin, path) in inputs.programs {
        let Some((_, _, dest, test_only)) = crate::userland::PROGRAMS.iter().find(|p| p.1 == bin) else {
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
        a.add(&format!("{PHOTO_DIR}/{}", photo.name), Node::File(bytes.clone()), 0o644)?;
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
        ("01-corrupt.jpg".into(), [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x5A; 512][..]].concat()),
    ])
}

/// The quadrant colours of the upright test picture, clockwise from top-left.
pub const ORIENTATION_QUADRANTS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [255, 255, 255], [0, 0, 255]];

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

    #[test]
    fn photos_that_do_not_decode_are_left_out() {
        let dir = scratch("mixed");
        let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cats/chelsea.png");
        fs::copy(&good, dir.join("good.png")).unwrap();
        fs::write(dir.join("bad.jpg"), b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
        fs::write(dir.join("notes.txt"), b"not a photo").unwrap();
        let photos = collect_photos(&dir).unwrap();
        let names: Vec<_> = photos.iter().map(|(p, _)| p.name.as_str()).collect();
        assert_eq!(names, ["good.png"]);
        assert_eq!((photos[0].0.width, photos[0].0.height), (451, 300));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_without_usable_photos_is_an_error_naming_it() {
        let dir = scratch("none");
        fs::write(dir.join("bad.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
        let err = collect_photos(&dir).unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()) && err.contains("no usable photo"), "{err}");
        let missing = collect_photos(&dir.join("missing")).unwrap_err();
        assert!(format!("{missing:#}").contains("missing"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_orientation_test_photo_carries_exif_orientation_6() {
        let photos = test_photos().unwrap();
        let (_, jpeg) = &photos[0];
        let mut decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(jpeg)).unwrap();
        use image::ImageDecoder;
        assert_eq!(decoder.orientation().unwrap(), image::metadata::Orientation::Rotate90);
    }
}
