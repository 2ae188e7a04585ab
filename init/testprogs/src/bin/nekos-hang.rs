//! Test-only foreground program that runs until a signal ends it: the QEMU test types it at
//! the prompt and checks that Ctrl-C (SIGINT to the foreground process group) kills it
//! while the prompt survives. It keeps the default SIGINT disposition on purpose.

use std::io::Write;
use std::time::Duration;

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "hang: running until interrupted");
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
