//! Test-only service that fails at once, to exercise init's backoff and
//! rescue state: prints one line and exits with status 3.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "crashloop: start");
    let _ = out.flush();
    ExitCode::from(3)
}
