//! The integration tests of this crate, as one test binary (one link instead of one per file).
// Tests may unwrap: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod common;
mod der_values;
mod expected;
mod parsers;
mod strict_certs;
mod verify;
