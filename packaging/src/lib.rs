//! NekOS host tools. `cli.rs` is the command line (`main.rs` runs it); everything it does lives in the
//! layer crates, re-exported here under one roof so the tests drive the same code paths as
//! users: `nekos_formats` (bytes in, bytes out) → `nekos_build` (manifest, steps, build) →
//! `nekos_lab` (deployments, QEMU, bench) → this crate (the CLI verbs).

pub use nekos_build::{
    artifacts, authenticode, build, cache, cpio, download, esp, firmware, host, initramfs, kernel,
    keys, lock, measurements, pe, pins, progress, snpmeasure, stboot, uki, ukis, userland, util,
    varstore,
};
pub use nekos_lab::{attacks, bench, deployments, https_server, qemu, qmp, stboot_server};

pub mod attest_cli;
pub mod cli;
pub mod ospkg_cli;
pub mod uki_cli;
pub mod varstore_cli;
