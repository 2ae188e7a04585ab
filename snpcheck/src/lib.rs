//! snpcheck: the NekOS in-guest AMD SEV-SNP checker.
//!
//! Parsers of untrusted input (reports, certificate tables, certificates) never panic.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![deny(unsafe_code)]

pub mod anchor;
pub mod certs;
pub mod certtable;
pub mod cli;
pub mod detect;
pub mod expected;
pub mod fetch;
pub mod hex;
pub mod json;
pub mod report;
pub mod synthetic;
// The /dev/sev-guest ioctls exist only for x86_64 (AMD SEV-SNP); elsewhere fetch.rs says so.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub mod sys;
pub mod verify;
