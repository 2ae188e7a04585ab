//! The SEV-SNP launch digest (`nekos_formats::snp`, re-exported here) and its judge, PyPI
//! `sev-snp-measure` ([`judge`]). `cargo nekos snp-measure` is in the CLI.

pub mod judge;

pub use nekos_formats::snp::*;
