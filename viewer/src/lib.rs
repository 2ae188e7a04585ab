//! nekos-viewer as a library: the pure parts of the cat slideshow (order, geometry,
//! scaling, decoding, text) so host tests can compute what the viewer shows.

pub mod config;
pub mod font;
pub mod geometry;
pub mod jpeg_dc;
pub mod order;
pub mod render;
pub mod resample;

pub use geometry::ScaleMode;
pub use render::{Frame, render_frame};
