#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn compositor() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nekos-compositor"))
}

/// The viewer binary: $NEKOS_VIEWER_BIN, or next to the compositor (built on demand).
pub fn viewer() -> PathBuf {
    if let Some(p) = std::env::var_os("NEKOS_VIEWER_BIN") {
        return PathBuf::from(p);
    }
    let comp = compositor();
    let dir = comp.parent().unwrap();
    let v = dir.join("nekos-viewer");
    if !v.exists() {
        let profile_release = dir.ends_with("release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "nekos-viewer"]);
        if profile_release {
            cmd.arg("--release");
        }
        let st = cmd.status().unwrap();
        assert!(st.success(), "building nekos-viewer failed");
    }
    v
}

pub fn cats_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cats")
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nekos-comp-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}
