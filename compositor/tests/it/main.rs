//! The integration tests of this crate, as one test binary (one link instead of one per file).
// Tests may unwrap: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fixture;
mod headless;
mod held_keys;
mod static_elf;
mod viewer_prerender;
