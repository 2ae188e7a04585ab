//! NekOS host tools. `main.rs` is only the command line; everything it does lives here so
//! the tests drive the same code paths as users.

// The byte formats, under the names the rest of this crate and its tests use.
pub use nekos_formats::{authenticode, cpio, pe};

pub mod artifacts;
pub mod attacks;
pub mod bench;
pub mod build;
pub mod cache;
pub mod deployments;
pub mod download;
pub mod esp;
pub mod firmware;
pub mod host;
pub mod https_server;
pub mod initramfs;
pub mod kernel;
pub mod keys;
pub mod lock;
pub mod measurements;
pub mod ospkg_cli;
pub mod pins;
pub mod progress;
pub mod qemu;
pub mod qmp;
pub mod snpmeasure;
pub mod stboot;
pub mod stboot_server;
pub mod uki;
pub mod ukis;
pub mod userland;
pub mod util;
pub mod varstore;
