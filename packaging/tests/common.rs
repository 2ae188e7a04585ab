//! Shared test fixture: the build manifest made by `cargo nekos test`, and booting helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nekos_packaging::artifacts::Manifest;
use nekos_packaging::deployments;
use nekos_packaging::qemu::{BootOptions, Vm};
use std::path::PathBuf;
use std::time::Duration;

/// Generous: TCG boots take ~2–3 s, but CI may run two guests next to a compiler.
pub const BOOT: Duration = Duration::from_secs(90);
pub const STEP: Duration = Duration::from_secs(30);

pub fn manifest() -> Manifest {
    let path = std::env::var("NEKOS_MANIFEST").unwrap_or_else(|_| {
        panic!("NEKOS_MANIFEST is not set: run the QEMU tests through `cargo nekos test`, which builds the artifacts first")
    });
    Manifest::load(std::path::Path::new(&path)).unwrap()
}

pub fn log_path(test: &str) -> PathBuf {
    let root = std::env::var("NEKOS_WORKSPACE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    nekos_packaging::artifacts::out_dir(&root).join("test-logs").join(format!("{test}.serial.log"))
}

/// Boots a deployment; `test` names the serial log.
pub fn boot(test: &str, deployment: &str, variant: &str, cmdline: &[&str]) -> Vm {
    let dep = deployments::find(deployment).unwrap();
    let opts = BootOptions {
        variant: variant.into(),
        cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
        log: Some(log_path(test)),
        ..BootOptions::default()
    };
    Vm::start(dep, &manifest(), &opts).unwrap()
}

/// Boots and waits for init's `boot ok` and the first prompt.
pub fn boot_to_prompt(test: &str, deployment: &str, variant: &str, cmdline: &[&str]) -> Vm {
    let vm = boot(test, deployment, variant, cmdline);
    vm.wait_for("nekos: boot ok", BOOT).unwrap();
    vm.wait_for("nekos# ", BOOT).unwrap();
    vm
}

/// Unwraps with the error's full text (it carries the serial tail).
pub trait OrFail<T> {
    fn or_fail(self) -> T;
}
impl<T> OrFail<T> for anyhow::Result<T> {
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e:#}"),
        }
    }
}
