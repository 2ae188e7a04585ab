//! The start-up as a named list of steps run in order (Talos' phase lists are the model):
//! the order is data, so it can be read, printed and tested, and the reason for it sits
//! next to each step.
//!
//! The viewer starts first. It needs no compositor to read and decode its first photo,
//! and what it sends on its socketpair waits in the kernel until the display serves it;
//! meanwhile we open the DRM device and set the mode. So the viewer's decode and our
//! modeset overlap instead of following each other.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use smithay::backend::drm::DrmDeviceNotifier;

use crate::backend::Backend;
use crate::process;
use crate::run::Compositor;
use crate::timeline::{Phase, Timeline};

/// One step of the start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A writable `XDG_RUNTIME_DIR` for smithay's keymap file, set while we are still
    /// single-threaded (the viewer gets the original value back).
    RuntimeDir,
    /// Start the viewer on a socketpair (`WAYLAND_SOCKET`): mark `viewer-spawned`.
    SpawnViewer,
    /// Open the output: DRM device, connector and mode, two mapped scanout buffers, the
    /// modeset on the first, undrawn (zeroed by the kernel: black).
    OpenOutput,
    /// The event loop and the Wayland globals for the output's size; SIGTERM/SIGINT
    /// (before any thread exists), vblanks, the timeout.
    EventLoop,
    /// Keyboards from /dev/input (grabbed); then mark `drm-ready`.
    Keyboards,
    /// Serve the viewer's connection and watch its exit.
    ServeViewer,
}

/// The start-up, in order.
pub const STEPS: [Step; 6] = [
    Step::RuntimeDir,
    Step::SpawnViewer,
    Step::OpenOutput,
    Step::EventLoop,
    Step::Keyboards,
    Step::ServeViewer,
];

/// What the start-up does.
pub struct Options {
    pub viewer: PathBuf,
    pub viewer_args: Vec<String>,
    pub timeout: Option<Duration>,
    /// Take SIGTERM/SIGINT through the loop (blocks them in the calling thread).
    pub signals: bool,
    /// Grab the keyboards in /dev/input. Tests leave this off: it would grab the host's.
    pub keyboards: bool,
    pub timeline: Timeline,
}

/// An opened output: the backend, and for DRM its vblank notifier.
pub type Output = (Backend, Option<DrmDeviceNotifier>);

/// Runs [`STEPS`] in order; `open_output` is the [`Step::OpenOutput`] step. Returns the
/// compositor, ready to run.
pub fn start(
    opts: &Options,
    open_output: impl FnOnce() -> Result<Output, String>,
) -> Result<Compositor, String> {
    let mut open_output = Some(open_output);
    let mut runtime_dir: Option<Option<OsString>> = None;
    let mut viewer = None;
    let mut output = None;
    let mut comp: Option<Compositor> = None;
    for step in STEPS {
        match step {
            Step::RuntimeDir => runtime_dir = process::ensure_runtime_dir(),
            Step::SpawnViewer => {
                let started =
                    process::spawn_viewer(&opts.viewer, &opts.viewer_args, runtime_dir.clone())?;
                opts.timeline.mark(Phase::ViewerSpawned);
                viewer = Some(started);
            }
            Step::OpenOutput => {
                let open = open_output.take().ok_or("output opened twice")?;
                match open() {
                    Ok(o) => output = Some(o),
                    Err(e) => {
                        // The viewer must not outlive a compositor that never served it.
                        if let Some((child, _)) = viewer.take() {
                            process::stop(child);
                        }
                        return Err(e);
                    }
                }
            }
            Step::EventLoop => {
                let (backend, notifier) = output.take().ok_or("no output")?;
                let mut c = Compositor::new(backend)?;
                c.state.timeline = opts.timeline;
                if opts.signals {
                    c.watch_signals()?;
                }
                if let Some(n) = notifier {
                    c.watch_drm(n)?;
                }
                if let Some(t) = opts.timeout {
                    c.set_timeout(t)?;
                }
                opts.timeline.mark(Phase::WaylandReady);
                comp = Some(c);
            }
            Step::Keyboards => {
                let c = comp.as_mut().ok_or("no event loop")?;
                if opts.keyboards {
                    c.watch_keyboards()?;
                }
                opts.timeline.mark(Phase::DrmReady);
            }
            Step::ServeViewer => {
                let c = comp.as_mut().ok_or("no event loop")?;
                let (child, stream) = viewer.take().ok_or("no viewer")?;
                c.adopt_viewer(child, stream)?;
            }
        }
    }
    comp.ok_or_else(|| "start-up made no compositor".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn index(step: Step) -> usize {
        STEPS.iter().position(|s| *s == step).unwrap()
    }

    #[test]
    fn viewer_starts_before_the_output_and_is_served_after_it() {
        let (runtime, spawn, open, event_loop, keys, serve) = (
            index(Step::RuntimeDir),
            index(Step::SpawnViewer),
            index(Step::OpenOutput),
            index(Step::EventLoop),
            index(Step::Keyboards),
            index(Step::ServeViewer),
        );
        // Every step exactly once.
        for step in STEPS {
            assert_eq!(STEPS.iter().filter(|s| **s == step).count(), 1, "{step:?}");
        }
        // The runtime dir is fixed before the viewer copies our environment.
        assert!(runtime < spawn);
        // The point of the order: the viewer decodes while we set the mode.
        assert!(spawn < open);
        // The display needs the output's size; the client needs the display.
        assert!(open < event_loop);
        assert!(event_loop < keys);
        assert!(event_loop < serve);
    }
}
