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
mod sys;
mod timeline;
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
