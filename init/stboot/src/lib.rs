//! The parts of stage 1 that read what the network sends, as a library: the DHCP
//! reply decoder (`dhcp`), the HTTP(S) GET (`fetch`) and the URL reader (`url`).
//! The `nekos-stboot` binary uses them from here; the library exists so the fuzzer
//! (`fuzz/`, `cargo nekos fuzz`) can call the very same code. Everything else of
//! stage 1 (configuration, network setup, kexec, measurement) stays in the binary.

pub mod dhcp;
pub mod fetch;
pub mod url;
