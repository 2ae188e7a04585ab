//! Is a cat on screen? Decided from QEMU screendumps (PPM: a fixed header and raw RGB, the
//! cheapest format QEMU writes and the cheapest to read) for the `bench --compare` harness.
//!
//! The three systems draw the photo differently: the NekOS viewer fits and letterboxes on
//! black, the bare probe sets one mode and fits its one photo, swayimg (under cage) shows a
//! photo smaller than the output at 100 % and centres it on its own background. Comparing
//! with an expected rendering would need each renderer's exact scaler and layout, so the
//! test here is on content, and holds for all three:
//!
//! The screen is cut into a grid of cells. A cell is *photo-like* when it holds more than
//! [`PHOTO_CELL_COLOURS`] distinct exact RGB values. Everything else a guest shows before
//! its photo is palette-drawn: QEMU's VGA text screen and the kernel's framebuffer console
//! use the 16 VGA colours, a blank or blue screen one colour, the viewer's message screen
//! two. A photo — decoded JPEG noise, bilinear scaling — gives hundreds per cell even in its
//! smooth parts. A cat is on screen when at least [`CAT_MIN_COVERAGE`] of the cells are
//! photo-like: the smallest photo swayimg shows unscaled (451×300 on 1280×800) covers 13 %,
//! a boot logo (80×80) well under 1 %.
//!
//! "A different photo" (key → next) compares the cells' mean colours: two different cats
//! differ on average by tens of levels, a re-rendered identical frame by none.

use anyhow::{Result, bail};

/// Distinct colours above which a cell counts as photo-like (the VGA palette has 16).
pub const PHOTO_CELL_COLOURS: usize = 24;
/// Fraction of photo-like cells for "a cat is on screen".
pub const CAT_MIN_COVERAGE: f64 = 0.08;
/// Mean absolute difference of cell means (0–255 levels) for "a different picture".
pub const DIFFERENT_MEAN_DELTA: f64 = 8.0;
/// Grid cells across and down.
pub const GRID_COLS: u32 = 32;
pub const GRID_ROWS: u32 = 20;

/// An RGB image, rows packed (3 bytes per pixel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Image {
        Image {
            width,
            height,
            rgb: rgb.repeat(width as usize * height as usize),
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        match self.rgb.get(i..i + 3) {
            Some(p) => [p[0], p[1], p[2]],
            None => [0, 0, 0],
        }
    }
}

/// Reads a binary PPM (`P6`, maxval 255) as QEMU's screendump writes it. The file comes
/// from QEMU, but a short or odd file (QEMU killed mid-write) must be an error, not a panic.
pub fn parse_ppm(bytes: &[u8]) -> Result<Image> {
    let mut pos = 0usize;
    let mut fields = Vec::new();
    while fields.len() < 4 {
        // Whitespace and `#` comments separate the header fields.
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'#') {
            if bytes[pos] == b'#' {
                while pos < bytes.len() && bytes[pos] != b'\n' {
                    pos += 1;
                }
            } else {
                pos += 1;
            }
        }
        let start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if start == pos {
            bail!(
                "screendump: not a PPM (header ends after {} fields, expected P6 width height 255)",
                fields.len()
            );
        }
        fields.push(String::from_utf8_lossy(&bytes[start..pos]).into_owned());
    }
    // Exactly one whitespace byte separates the header from the raster.
    pos += 1;
    if fields[0] != "P6" {
        bail!(
            "screendump: expected a binary PPM (P6), found {:?}",
            fields[0]
        );
    }
    let num = |i: usize, what: &str| -> Result<u32> {
        fields[i]
            .parse::<u32>()
            .map_err(|_| anyhow::anyhow!("screendump: PPM {what} {:?} is not a number", fields[i]))
    };
    let (width, height, maxval) = (num(1, "width")?, num(2, "height")?, num(3, "maxval")?);
    if maxval != 255 {
        bail!("screendump: PPM maxval {maxval}, expected 255");
    }
    let len = width as usize * height as usize * 3;
    let Some(raster) = bytes.get(pos..pos + len) else {
        bail!(
            "screendump: PPM {width}x{height} needs {len} bytes of pixels, the file has {}",
            bytes.len().saturating_sub(pos)
        );
    };
    Ok(Image {
        width,
        height,
        rgb: raster.to_vec(),
    })
}

/// One grid cell: its mean colour and whether it looks like part of a photo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    pub mean: [f64; 3],
    pub photo_like: bool,
}

/// The screen, cut into [`GRID_COLS`]×[`GRID_ROWS`] cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub cells: Vec<Cell>,
}

impl Grid {
    pub fn of(img: &Image) -> Grid {
        let (cols, rows) = (
            GRID_COLS.min(img.width.max(1)),
            GRID_ROWS.min(img.height.max(1)),
        );
        let mut cells = Vec::with_capacity((cols * rows) as usize);
        let mut seen: Vec<u32> = Vec::new();
        for cy in 0..rows {
            let (y0, y1) = (cy * img.height / rows, (cy + 1) * img.height / rows);
            for cx in 0..cols {
                let (x0, x1) = (cx * img.width / cols, (cx + 1) * img.width / cols);
                let mut sum = [0u64; 3];
                seen.clear();
                for y in y0..y1 {
                    for x in x0..x1 {
                        let p = img.pixel(x, y);
                        for c in 0..3 {
                            sum[c] += u64::from(p[c]);
                        }
                        // Counting stops once the cell is photo-like: the answer is known.
                        if seen.len() <= PHOTO_CELL_COLOURS {
                            let key =
                                u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]);
                            if !seen.contains(&key) {
                                seen.push(key);
                            }
                        }
                    }
                }
                let n = (u64::from(x1 - x0) * u64::from(y1 - y0)).max(1) as f64;
                cells.push(Cell {
                    mean: [sum[0] as f64 / n, sum[1] as f64 / n, sum[2] as f64 / n],
                    photo_like: seen.len() > PHOTO_CELL_COLOURS,
                });
            }
        }
        Grid { cells }
    }

    /// Fraction of photo-like cells (0–1).
    pub fn photo_coverage(&self) -> f64 {
        if self.cells.is_empty() {
            return 0.0;
        }
        self.cells.iter().filter(|c| c.photo_like).count() as f64 / self.cells.len() as f64
    }

    pub fn shows_a_cat(&self) -> bool {
        self.photo_coverage() >= CAT_MIN_COVERAGE
    }

    /// Mean absolute difference of the cell means (levels, 0–255); grids of different
    /// sizes (a mode change) are maximally different.
    pub fn mean_delta(&self, other: &Grid) -> f64 {
        if self.cells.len() != other.cells.len() || self.cells.is_empty() {
            return 255.0;
        }
        // Only over the cells either picture covers: a small photo shown unscaled on a
        // large background (swayimg) would otherwise be diluted by the unchanged border.
        let (mut total, mut n) = (0.0, 0usize);
        for (a, b) in self.cells.iter().zip(&other.cells) {
            if a.photo_like || b.photo_like {
                total += (0..3).map(|c| (a.mean[c] - b.mean[c]).abs()).sum::<f64>() / 3.0;
                n += 1;
            }
        }
        if n == 0 { 0.0 } else { total / n as f64 }
    }

    /// Another cat than `before` is on screen (key → next).
    pub fn shows_another_cat_than(&self, before: &Grid) -> bool {
        self.shows_a_cat() && self.mean_delta(before) >= DIFFERENT_MEAN_DELTA
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nekos_viewer::ScaleMode;
    use std::path::Path;

    fn cats() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../cats")
    }

    fn from_rgba(w: u32, h: u32, rgba: &[u8]) -> Image {
        Image {
            width: w,
            height: h,
            rgb: rgba
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        }
    }

    /// The viewer's own rendering of a photo (fit, letterboxed on black).
    fn viewer_frame(name: &str, w: u32, h: u32) -> Image {
        let bytes = std::fs::read(cats().join(name)).unwrap();
        from_rgba(
            w,
            h,
            &nekos_viewer::render_frame(&bytes, w, h, ScaleMode::Fit).unwrap(),
        )
    }

    /// swayimg's default for a photo smaller than the output: 100 %, centred, on `bg`.
    fn unscaled_on(name: &str, w: u32, h: u32, bg: [u8; 3]) -> Image {
        let bytes = std::fs::read(cats().join(name)).unwrap();
        let d = nekos_viewer::render::decode(&bytes).unwrap();
        let mut img = Image::filled(w, h, bg);
        let (x0, y0) = ((w - d.image.width) / 2, (h - d.image.height) / 2);
        for y in 0..d.image.height {
            for x in 0..d.image.width {
                let s = ((y * d.image.width + x) * 3) as usize;
                let t = (((y0 + y) * w + x0 + x) * 3) as usize;
                img.rgb[t..t + 3].copy_from_slice(&d.image.data[s..s + 3]);
            }
        }
        img
    }

    /// A text console: light grey glyph-like strokes on black in the VGA palette, every
    /// line full of text (the worst case for the classifier).
    fn text_console(w: u32, h: u32) -> Image {
        let palette: [[u8; 3]; 16] = [
            [0, 0, 0],
            [0, 0, 170],
            [0, 170, 0],
            [0, 170, 170],
            [170, 0, 0],
            [170, 0, 170],
            [170, 85, 0],
            [170, 170, 170],
            [85, 85, 85],
            [85, 85, 255],
            [85, 255, 85],
            [85, 255, 255],
            [255, 85, 85],
            [255, 85, 255],
            [255, 255, 85],
            [255, 255, 255],
        ];
        let mut img = Image::filled(w, h, [0, 0, 0]);
        let mut seed = 12345u32;
        for y in 0..h {
            for x in 0..w {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Glyph pixels on about a third of the positions, colour changing per char.
                if (seed >> 16).is_multiple_of(3) {
                    let colour = palette[((x / 8 + y / 16) % 16) as usize];
                    let i = ((y * w + x) * 3) as usize;
                    img.rgb[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
        img
    }

    fn ppm(img: &Image) -> Vec<u8> {
        let mut v = format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
        v.extend_from_slice(&img.rgb);
        v
    }

    #[test]
    fn a_ppm_screendump_round_trips() {
        let img = viewer_frame("ginger-kitten.jpg", 64, 40);
        assert_eq!(parse_ppm(&ppm(&img)).unwrap(), img);
        // Comments in the header are allowed by the format.
        let mut with_comment = b"P6 # qemu\n64 40\n255\n".to_vec();
        with_comment.extend_from_slice(&img.rgb);
        assert_eq!(parse_ppm(&with_comment).unwrap(), img);
    }

    #[test]
    fn a_short_or_foreign_screendump_is_an_error_not_a_panic() {
        let img = Image::filled(8, 8, [1, 2, 3]);
        let full = ppm(&img);
        for cut in [0, 2, 9, full.len() - 1] {
            assert!(parse_ppm(&full[..cut]).is_err(), "cut at {cut}");
        }
        let err = parse_ppm(b"\x89PNG\r\n\x1a\n....").unwrap_err().to_string();
        assert!(err.contains("P6"), "{err}");
        assert!(parse_ppm(b"P6\n8 8\n65535\n").is_err());
        assert!(parse_ppm(b"P6\n-8 8\n255\n").is_err());
    }

    #[test]
    fn black_blue_and_text_screens_are_not_cats() {
        assert!(!Grid::of(&Image::filled(1280, 800, [0, 0, 0])).shows_a_cat());
        assert!(!Grid::of(&Image::filled(1280, 800, [0, 0, 170])).shows_a_cat());
        let text = Grid::of(&text_console(1280, 800));
        assert_eq!(text.photo_coverage(), 0.0);
        // QEMU's VGA text screen before the kernel sets a mode.
        assert!(!Grid::of(&text_console(720, 400)).shows_a_cat());
        // The viewer's message screen (two colours).
        let msg = nekos_viewer::render::message_frame(&["no photos found"], 1280, 800);
        assert!(!Grid::of(&from_rgba(1280, 800, &msg.to_rgba())).shows_a_cat());
    }

    #[test]
    fn every_cat_as_any_of_the_renderers_shows_it_is_a_cat() {
        for name in [
            "chelsea.png",
            "ginger-kitten.jpg",
            "grey-longhair.jpg",
            "tabby-kitten.jpg",
            "white-kitten.jpg",
        ] {
            for (w, h) in [(1280, 800), (1024, 768)] {
                let fit = Grid::of(&viewer_frame(name, w, h));
                assert!(
                    fit.shows_a_cat(),
                    "{name} fit {w}x{h}: {}",
                    fit.photo_coverage()
                );
                let bytes = std::fs::read(cats().join(name)).unwrap();
                let d = nekos_viewer::render::decode(&bytes).unwrap();
                if d.image.width <= w && d.image.height <= h {
                    for bg in [[0, 0, 0], [32, 32, 32]] {
                        let un = Grid::of(&unscaled_on(name, w, h, bg));
                        assert!(
                            un.shows_a_cat(),
                            "{name} 100% on {bg:?}: {}",
                            un.photo_coverage()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_cat_next_to_a_boot_logo_and_text_is_a_cat_and_the_logo_alone_is_not() {
        // A logo-sized photo patch (80×80) in a text console stays below the coverage.
        let mut img = text_console(1280, 800);
        let cat = viewer_frame("tabby-kitten.jpg", 80, 80);
        for y in 0..80 {
            let s = (y * 80 * 3) as usize;
            let t = (y * 1280 * 3) as usize;
            img.rgb[t..t + 240].copy_from_slice(&cat.rgb[s..s + 240]);
        }
        assert!(!Grid::of(&img).shows_a_cat());
    }

    #[test]
    fn the_next_photo_is_another_cat_and_the_same_frame_is_not() {
        let a = Grid::of(&viewer_frame("ginger-kitten.jpg", 1280, 800));
        let a_again = Grid::of(&viewer_frame("ginger-kitten.jpg", 1280, 800));
        assert!(!a_again.shows_another_cat_than(&a));
        let names = [
            "chelsea.png",
            "grey-longhair.jpg",
            "tabby-kitten.jpg",
            "white-kitten.jpg",
        ];
        for name in names {
            let b = Grid::of(&viewer_frame(name, 1280, 800));
            assert!(
                b.shows_another_cat_than(&a),
                "{name}: delta {}",
                b.mean_delta(&a)
            );
        }
        // Two small photos shown unscaled in the middle of a large screen differ too.
        let small_a = Grid::of(&unscaled_on("ginger-kitten.jpg", 1280, 800, [0, 0, 0]));
        let small_b = Grid::of(&unscaled_on("tabby-kitten.jpg", 1280, 800, [0, 0, 0]));
        assert!(
            small_b.shows_another_cat_than(&small_a),
            "delta {}",
            small_b.mean_delta(&small_a)
        );
        // A black screen after a cat (a mode change in between) is not "the next cat".
        let black = Grid::of(&Image::filled(1280, 800, [0, 0, 0]));
        assert!(!black.shows_another_cat_than(&a));
    }
}
