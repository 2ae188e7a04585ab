//! A seeded-mutation fuzzer for the parsers of untrusted input (`cargo nekos fuzz`).
//!
//! Why not cargo-fuzz/libFuzzer or AFL: both need a nightly toolchain or a
//! compiler wrapper for their coverage instrumentation, and this workspace builds
//! with the pinned stable toolchain only. So this is a mutation fuzzer without
//! coverage feedback, with one cheap substitute: an input that produces an
//! outcome (an error message with its numbers masked, or an "ok" summary) not seen
//! before joins the corpus, so inputs that got further into a parser are mutated
//! further.
//!
//! - `rng`: a small deterministic generator (splitmix64); a run is repeated with
//!   the same `--seed` and the same parser.
//! - `mutate`: bit flips, byte sets, interesting integers, arithmetic, inserts,
//!   deletions, copies, splices of two corpus entries, dictionary tokens.
//! - `engine`: each input runs on a worker thread under `catch_unwind`; the main
//!   thread waits with a time limit. A panic is a crash, a time-out a hang: the
//!   input is saved as `<out>/<parser>/crash-<sha256>` or `hang-<sha256>`.
//! - `targets`: one target per parser, with seeds from the repository's fixtures
//!   and from `target/nekos/` when it has been built.
//!
//! Aborts (a stack overflow, running out of memory) end the process and cannot be
//! caught in-process; the run is deterministic, so `--seed S --parser NAME`
//! repeats it up to the abort.

pub mod engine;
pub mod mutate;
pub mod rng;
pub mod summary;
pub mod targets;

/// SHA-256 of `data` as lower-case hex (names of saved inputs).
pub fn sha256_hex(data: &[u8]) -> String {
    nekos_ospkg::hex(&nekos_ospkg::sha256(data))
}
