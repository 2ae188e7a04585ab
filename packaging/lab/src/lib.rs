//! The NekOS lab: deployments (what boots how, as data), the attacks on boot media, QEMU
//! command lines and QMP, the HTTPS test server, the stboot server and nginx, and the benchmarks.
//! Everything here uses the build's artifacts (`nekos_build`); nothing below imports it.

pub mod attacks;
pub mod bench;
pub mod bench_compare;
pub mod bench_frame;
pub mod bench_report;
pub mod deployments;
pub mod https_server;
pub mod nginx;
pub mod qemu;
pub mod qmp;
pub mod stboot_server;
