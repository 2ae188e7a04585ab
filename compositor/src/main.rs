//! nekos-compositor: the production binary. It starts the viewer, opens the DRM device,
//! feeds keys from evdev and exits with the viewer's exit status. Everything else is the
//! library (`lib.rs`; the start-up order is `startup::STEPS`).

mod args;

use std::time::Duration;

use nekos_compositor::startup::{self, Options};
use nekos_compositor::timeline::{Phase, Timeline};
use nekos_compositor::{Backend, DrmOutput};

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
    let timeline = Timeline::from_env();
    timeline.mark(Phase::CompositorStart);
    let args = Args::parse(std::env::args().skip(1))?;
    if args.help {
        println!("{}", args::USAGE);
        return Ok(0);
    }
    let opts = Options {
        viewer: args.viewer,
        viewer_args: args.viewer_args,
        timeout: args.timeout_ms.map(Duration::from_millis),
        signals: true,
        keyboards: true,
        timeline,
    };
    let drm_device = args.drm_device;
    let comp = startup::start(&opts, || {
        let (output, notifier) = DrmOutput::open(&drm_device, timeline)?;
        Ok((Backend::Drm(Box::new(output)), Some(notifier)))
    })?;
    comp.run()
}
