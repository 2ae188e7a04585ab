//! ESP disk images on disk. The image itself (GPT + FAT32, every byte a function of the
//! arguments) is `nekos_formats::esp`, re-exported here.

pub use nekos_formats::esp::*;

use anyhow::{Context, Result};
use std::path::Path;

/// [`build_esp_image`], then writes the image to `path` atomically.
pub fn write_esp_image(path: &Path, files: &[EspFile], opts: &EspOptions) -> Result<()> {
    let image = build_esp_image(files, opts)?;
    crate::util::write_atomic(path, &image)
        .with_context(|| format!("cannot write ESP image {}", path.display()))
}
