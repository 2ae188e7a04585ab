//! NekOS host tools. `main.rs` is only the command line; everything it does lives in the
//! layer crates, re-exported here under one roof so the tests drive the same code paths as
//! users: `nekos_formats` (bytes in, bytes out) → `nekos_build` (manifest, steps, build) →
//! `nekos_lab` (deployments, QEMU, bench) → this crate (the CLI verbs).

pub use nekos_build::{
    artifacts, authenticode, build, cache, cpio, download, esp, firmware, host, initramfs, kernel,
    keys, lock, measurements, pe, pins, progress, snpmeasure, stboot, ukis, userland, util,
};
pub use nekos_lab::{attacks, bench, deployments, https_server, qemu, qmp, stboot_server};

pub mod ospkg_cli;
pub mod uki_cli;
pub mod varstore_cli;

/// UKIs from files ([`nekos_build::uki`]) and their command-line verbs.
pub mod uki {
    pub use crate::uki_cli::cli_main;
    pub use nekos_build::uki::*;
}

/// Variable stores ([`nekos_build::varstore`]) and `cargo nekos varstore`.
pub mod varstore {
    pub use crate::varstore_cli::cli_main;
    pub use nekos_build::varstore::*;
}
