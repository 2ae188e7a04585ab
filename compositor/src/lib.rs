//! nekos-compositor as a library: a static, C-free kiosk Wayland compositor for NekOS.
//!
//! It shows exactly one xdg toplevel fullscreen, on a DRM/KMS output (dumb buffers,
//! software composition) or headless in memory, and feeds it keys. The modules form a
//! tree, never a circle: `scene` (what is shown) ← `backend` (draws a scene) and
//! `state` (protocol states + scene, `handlers/` one file per protocol) ← `run` (the
//! loop driver holding both) ← `startup` (the start-up steps, in order). `main.rs` wires
//! the production DRM setup; the tests drive the headless backend in-process.

pub mod backend;
mod clock;
pub mod compose;
pub mod damage;
mod handlers;
pub mod input;
pub mod process;
pub mod run;
pub mod scene;
pub mod startup;
pub mod state;
mod sys;
pub mod timeline;

pub use backend::{Backend, DrmOutput, Headless};
pub use run::{Compositor, State};
