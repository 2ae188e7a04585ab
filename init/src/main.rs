//! nekos-init: PID 1 of NekOS, and — when started as `nsh` — its serial
//! prompt. One static binary keeps the initramfs small and the two in step.

mod backoff;
mod cmdline;
mod console;
mod init;
mod mounts;
mod nsh;
mod probe;
mod shutdown;
mod status;
// Unit tests cover stage 1 without the feature (its crates are dev-dependencies too); only
// the feature wires it into PID 1, so without it the module is unused outside its tests.
#[cfg(any(feature = "stboot", test))]
#[cfg_attr(not(feature = "stboot"), allow(dead_code, unused_imports))]
mod stboot;
mod sys;
mod words;

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let base = std::path::Path::new(&arg0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base == "nsh" {
        return nsh::main();
    }
    if std::process::id() != 1 {
        // Running the PID 1 logic anywhere else would mount over and reboot
        // the host; refuse.
        eprintln!("nekos-init: must run as PID 1 (or be invoked as nsh)");
        return ExitCode::from(2);
    }
    init::main()
}
