//! nekos-viewer as a library: the pure parts of the cat slideshow (order, geometry,
//! scaling, decoding, text) so host tests can compute what the viewer shows, and the
//! Wayland client loop (`slideshow`, `wl`) so a test can run the viewer in a thread on
//! one end of a socketpair.
//!
//! The Wayland loop is Linux only (memfd, pipes, the guest's clock); the pure parts also
//! build on macOS, where `cargo nekos` links them to draw the tests' reference frames.

pub mod config;
pub mod font;
pub mod geometry;
pub mod jpeg_dc;
pub mod order;
pub mod render;
pub mod resample;
#[cfg(target_os = "linux")]
pub mod slideshow;
#[cfg(target_os = "linux")]
mod sys;
pub mod timeline;
#[cfg(target_os = "linux")]
pub mod wl;

pub use geometry::ScaleMode;
pub use render::{Frame, render_frame};
