//! A pure-Rust stand-in for the `xkbcommon` crate (the binding to the C libxkbcommon).
//!
//! smithay 0.7 depends on `xkbcommon` unconditionally. NekOS has no C in the guest, so
//! this workspace crate provides the part of `xkbcommon::xkb` that smithay uses, built on
//! the pure-Rust XKB implementation [`kbvm`], and the workspace wires it in with
//! `[patch.crates-io]`.
//!
//! Differences from libxkbcommon that matter here:
//! - There are no XKB data files in the guest: [`xkb::Keymap::new_from_names`] always
//!   returns the embedded, precompiled US keymap, whatever names it is given.
//! - Compose tables, X11 and the logging API are not provided.

pub mod xkb;
