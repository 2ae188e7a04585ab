//! nekos-compositor: the production binary. It opens the DRM device, feeds keys from
//! evdev, starts the viewer itself over a socketpair and exits with the viewer's exit
//! status. Everything else is the library (`lib.rs`).

mod args;

use std::time::Duration;

use nekos_compositor::{Backend, Compositor, DrmOutput, process};

use crate::args::Args;

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nekos-compositor: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32, String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if args.help {
        println!("{}", args::USAGE);
        return Ok(0);
    }
    // smithay writes keymaps for wl_keyboard < v7 to a temporary file in
    // $XDG_RUNTIME_DIR or /tmp; the guest may have neither, so point it at a
    // writable tmpfs (only for us; the viewer gets the original environment).
    let original_runtime_dir = process::ensure_runtime_dir();

    let (output, notifier) = DrmOutput::open(&args.drm_device)?;
    let mut comp = Compositor::new(Backend::Drm(Box::new(output)))?;
    // Before any thread exists, so none gets SIGTERM/SIGINT unblocked.
    comp.watch_signals()?;
    comp.watch_drm(notifier)?;
    comp.watch_keyboards()?;
    if let Some(ms) = args.timeout_ms {
        comp.set_timeout(Duration::from_millis(ms))?;
    }
    comp.spawn_viewer(&args.viewer, &args.viewer_args, original_runtime_dir)?;
    comp.run()
}
