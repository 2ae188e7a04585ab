//! Test-only program that leaves an orphan for PID 1 to reap.
//!
//! top (this process) -> child -> grandchild. The child starts the grandchild,
//! reports its pid through a pipe and exits at once, so the grandchild is
//! reparented to PID 1; it sleeps ~300 ms and exits 0. The top process waits
//! only for its direct child. The QEMU test then runs `ps` and expects no
//! zombie, which proves init reaped the adopted orphan.
//!
//! The three roles are one binary re-executed with a role argument (fork
//! without exec would need `unsafe`; the process tree is the same).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

const CHILD: &str = "--nekos-orphans-child";
const GRANDCHILD: &str = "--nekos-orphans-grandchild";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some(CHILD) => child(),
        Some(GRANDCHILD) => {
            std::thread::sleep(Duration::from_millis(300));
            ExitCode::SUCCESS
        }
        _ => top(),
    }
}

fn child() -> ExitCode {
    // stdout of the grandchild is not the pipe: the top process must see EOF
    // (and our exit) without waiting for the grandchild. (Our stderr, not
    // /dev/null: this must work even where /dev is not populated.)
    match Command::new("/proc/self/exe")
        .arg(GRANDCHILD)
        .stdout(Stdio::from(std::io::stderr()))
        .spawn()
    {
        Ok(grandchild) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", grandchild.id());
            let _ = out.flush();
            // Dropping the handle does not wait: the grandchild is orphaned.
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orphans: cannot start grandchild: {e}");
            ExitCode::from(1)
        }
    }
}

fn top() -> ExitCode {
    let mut child = match Command::new("/proc/self/exe")
        .arg(CHILD)
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("orphans: cannot start child: {e}");
            return ExitCode::from(1);
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let status = child.wait();
    let pid = line.trim();
    match status {
        Ok(s) if s.success() && !pid.is_empty() => {
            println!("orphans: grandchild {pid} orphaned");
            ExitCode::SUCCESS
        }
        Ok(s) => {
            eprintln!("orphans: child failed ({s})");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("orphans: wait: {e}");
            ExitCode::from(1)
        }
    }
}
