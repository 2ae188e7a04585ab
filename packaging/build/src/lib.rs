//! The NekOS build: every artifact as a named step with declared inputs, cached by input
//! hash, recorded in the manifest (`artifacts`, at the bottom: it imports nothing above it).
//!
//! Layers inside, each importing only those below it:
//!
//! | layer | modules |
//! |---|---|
//! | helpers | `util` (hashing, atomic writes, XDG dirs), `cache` (input hash → entry), `progress`, `download` |
//! | pins and tools | `arch` (x86_64 or aarch64: targets, paths, tools), `pins` (lock files), `host` (tools, musl target) |
//! | the manifest | `artifacts` (every artifact type, `Manifest`) |
//! | steps | `kernel`, `firmware`, `userland`, `initramfs`, `ukis`, `stboot`, `measurements`, `esp` (+ the file-level `uki`, `keys`, `varstore`, `snpmeasure`) |
//! | the build | `steps` (the named steps and the one freshness rule), `build` (runs them in order), `lock` (moves the pins) |
//!
//! The byte formats are `nekos_formats`, re-exported here under their old names; running
//! QEMU, deployments and benchmarks are `nekos_lab`, above this crate.

pub use nekos_formats::{authenticode, cpio, pe};

pub mod arch;
pub mod artifacts;
pub mod build;
pub mod cache;
pub mod compare;
pub mod download;
pub mod esp;
pub mod firmware;
pub mod firmware_aarch64;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod keys;
pub mod lock;
pub mod measurements;
pub mod pins;
pub mod pkcs11;
pub mod progress;
pub mod snpmeasure;
pub mod stboot;
pub mod steps;
pub mod uki;
pub mod ukis;
pub mod userland;
pub mod util;
pub mod varstore;
