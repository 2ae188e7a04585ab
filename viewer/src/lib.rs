//! nekos-viewer as a library: the pure parts of the cat slideshow (order, geometry,
//! scaling, decoding, text) so host tests can compute what the viewer shows, and the
//! Wayland client loop (`slideshow`, `wl`) so a test can run the viewer in a thread on
//! one end of a socketpair.

pub mod config;
pub mod font;
pub mod geometry;
pub mod jpeg_dc;
pub mod order;
pub mod render;
pub mod resample;
pub mod slideshow;
mod sys;
pub mod wl;

pub use geometry::ScaleMode;
pub use render::{Frame, render_frame};
