//! NekOS byte formats: bytes in, bytes out. No processes, no paths, no clocks, no environment
//! — the one source of randomness is fresh key generation ([`keys::generate_hierarchy`]
//! without a seed). Everything that reads files, runs tools or caches results lives above
//! this crate (`nekos-packaging`), which re-exports these modules under the same names.
//!
//! | module | what |
//! |---|---|
//! | [`pe`] | PE32+ parsing and section layout |
//! | [`signer`] | the [`signer::Signer`] trait: a key that signs a SHA-256 digest and names its certificate |
//! | [`authenticode`] | Authenticode hash, PKCS#7 signing through the [`authenticode::Signer`] trait, verification |
//! | [`keys`] | the PK/KEK/db hierarchy: generation, self-signed certificates, key and certificate parsing |
//! | [`uki`] | Unified Kernel Images, byte-identical to `ukify build` 257; PCR 11 prediction |
//! | [`esp`] | GPT + FAT32 EFI System Partition images |
//! | [`cpio`] | newc initramfs archives |
//! | [`varstore`] | UEFI variable stores: QEMU `uefi-vars` JSON and raw OVMF_VARS |
//! | [`snp`] | the SEV-SNP launch digest of an OVMF + kernel boot |
//! | [`pcr`] | PCR 4/7/11 predictions |

pub mod authenticode;
pub mod cpio;
pub mod digest;
pub mod esp;
pub mod keys;
pub mod pcr;
pub mod pe;
pub mod signer;
pub mod snp;
pub mod uki;
pub mod varstore;
