//! The content-addressed cache for heavy artifacts (kernel, later firmware), outside the
//! repository: `~/.cache/nekos/<name>-<input hash>/`. An entry appears only complete (it is
//! built in a temporary directory and renamed into place), so a crash never leaves a
//! half-written entry that a later run would trust.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// `NEKOS_CACHE_DIR`, else `$XDG_CACHE_HOME/nekos`, else `~/.cache/nekos`.
pub fn cache_root() -> PathBuf {
    crate::util::user_dir("NEKOS_CACHE_DIR", "XDG_CACHE_HOME", ".cache", "")
}

/// Hash of a list of named inputs; the names are part of the hash so that two inputs cannot
/// trade places unnoticed.
#[derive(Default)]
pub struct InputHash {
    hasher: Sha256,
    pub inputs: Vec<(String, String)>,
}

impl InputHash {
    pub fn add(&mut self, name: &str, value: &str) -> &mut Self {
        self.hasher.update((name.len() as u64).to_le_bytes());
        self.hasher.update(name.as_bytes());
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value.as_bytes());
        self.inputs.push((name.to_string(), value.to_string()));
        self
    }

    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

pub struct Entry {
    pub dir: PathBuf,
}

impl Entry {
    pub fn new(name: &str, hash: &str) -> Entry {
        // 16 bytes of the hash keep paths short and are plenty to tell inputs apart.
        Entry {
            dir: cache_root().join(format!("{name}-{}", &hash[..32.min(hash.len())])),
        }
    }

    pub fn is_complete(&self) -> bool {
        self.dir.join("COMPLETE").is_file()
    }

    /// A fresh scratch directory for building this entry; `commit` moves it into place.
    pub fn scratch(&self) -> Result<PathBuf> {
        let dir = cache_root().join("tmp").join(format!(
            "{}.{}",
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    pub fn commit(&self, scratch: &Path) -> Result<()> {
        fs::write(scratch.join("COMPLETE"), b"")?;
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)?;
        }
        if let Some(parent) = self.dir.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(scratch, &self.dir)
            .with_context(|| format!("cannot move {} into the cache", scratch.display()))
    }
}
