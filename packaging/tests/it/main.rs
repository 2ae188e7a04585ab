//! The host side's integration tests, one test binary (one link instead of twenty). The
//! modules need the build manifest that `cargo nekos test` makes for the QEMU tests; the pure
//! ones run under plain `cargo test -p nekos-packaging` too.
// Tests may unwrap: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod arch_aarch64;
mod artifacts;
mod attest;
mod bench_compare;
mod boot;
mod boot_aarch64;
mod cats;
mod cli;
mod common;
mod compare;
mod esp;
mod firmware;
mod firmware_aarch64;
mod layers;
mod measurements;
mod measurements_qemu;
mod newcomer;
mod pid1;
mod pkcs11;
mod qemu_argv;
mod secure_boot;
mod snp;
mod snpmeasure;
mod snpmeasure_fuzz;
mod stboot;
mod uki;
mod uki_aarch64;
mod uki_fuzz;
mod uki_pcr;
mod varstore;
mod varstore_boot;
