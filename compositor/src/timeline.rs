//! Boot timeline marks: `nekos: t=<ms> <phase>`, the CLOCK_BOOTTIME milliseconds at which
//! a phase was reached. init and the viewer print the same line format (each crate has
//! its own few lines for it: the guest programs share no library), so the bench can put
//! every process's phases on one time axis. Printed only at debug log level
//! (`nekos.loglevel=debug`, which init passes on as `NEKOS_LOGLEVEL`): they are for the
//! bench, not for someone at the prompt.

use crate::clock;

/// A phase of the compositor's start and of a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `main` entered.
    CompositorStart,
    /// The viewer process exists (started before the DRM setup, so its first decode and
    /// our modeset overlap).
    ViewerSpawned,
    /// The DRM device is open and smithay's `DrmDevice` made (master, atomic or legacy).
    DrmDeviceOpen,
    /// Connector, mode and CRTC chosen, the surface created.
    DrmModeChosen,
    /// Both scanout buffers allocated, added as framebuffers and mapped.
    DrmBuffersMapped,
    /// The modeset committed on the first buffer, undrawn (the kernel zeroed it: black).
    DrmModesetCommitted,
    /// The Wayland display and globals and the loop's sources exist.
    WaylandReady,
    /// Mode set, both scanout buffers allocated and mapped, keyboards opened.
    DrmReady,
    /// The first client buffer is copied into a scanout buffer and the flip is queued.
    FirstFrameComposited,
    /// That flip completed: the first client frame is on screen.
    PageFlipDone,
    /// The seat's keyboard exists (its keymap compiled after the first frame).
    KeyboardReady,
    /// A key press reached the compositor and went to the client.
    KeyReceived,
    /// The first client frame committed after that key press is on screen.
    NextFrameFlipped,
}

impl Phase {
    /// The phase's word in the mark line.
    pub fn word(self) -> &'static str {
        match self {
            Phase::CompositorStart => "compositor-start",
            Phase::ViewerSpawned => "viewer-spawned",
            Phase::DrmDeviceOpen => "drm-device-open",
            Phase::DrmModeChosen => "drm-mode-chosen",
            Phase::DrmBuffersMapped => "drm-buffers-mapped",
            Phase::DrmModesetCommitted => "drm-modeset-committed",
            Phase::WaylandReady => "wayland-ready",
            Phase::DrmReady => "drm-ready",
            Phase::FirstFrameComposited => "first-frame-composited",
            Phase::PageFlipDone => "page-flip-done",
            Phase::KeyboardReady => "keyboard-ready",
            Phase::KeyReceived => "key-received",
            Phase::NextFrameFlipped => "next-frame-flipped",
        }
    }
}

/// `NEKOS_DEBUG` set, or init's `nekos.loglevel=debug` (passed on as `NEKOS_LOGLEVEL`).
pub fn debug_logging() -> bool {
    std::env::var_os("NEKOS_DEBUG").is_some()
        || std::env::var("NEKOS_LOGLEVEL").is_ok_and(|l| l == "debug")
}

/// The one mark line format: `nekos: t=<ms> <phase>`.
pub fn mark_line(ms: u64, phase: Phase) -> String {
    format!("nekos: t={ms} {}", phase.word())
}

/// Prints marks when enabled (debug log level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    enabled: bool,
}

impl Timeline {
    pub fn new(enabled: bool) -> Timeline {
        Timeline { enabled }
    }

    /// Enabled under `NEKOS_LOGLEVEL=debug` (or `NEKOS_DEBUG`).
    pub fn from_env() -> Timeline {
        Timeline::new(debug_logging())
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Prints `phase` with the time now, on stdout (the console, where init's markers go).
    pub fn mark(&self, phase: Phase) {
        if self.enabled {
            // One line, one write(2): stdout is line-buffered.
            println!("{}", mark_line(clock::boottime_ms(), phase));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_the_shared_one() {
        assert_eq!(
            mark_line(0, Phase::CompositorStart),
            "nekos: t=0 compositor-start"
        );
        assert_eq!(mark_line(1234, Phase::DrmReady), "nekos: t=1234 drm-ready");
        assert_eq!(
            mark_line(u64::MAX, Phase::NextFrameFlipped),
            format!("nekos: t={} next-frame-flipped", u64::MAX)
        );
        let words: Vec<&str> = [
            Phase::CompositorStart,
            Phase::ViewerSpawned,
            Phase::DrmDeviceOpen,
            Phase::DrmModeChosen,
            Phase::DrmBuffersMapped,
            Phase::DrmModesetCommitted,
            Phase::WaylandReady,
            Phase::DrmReady,
            Phase::FirstFrameComposited,
            Phase::PageFlipDone,
            Phase::KeyboardReady,
            Phase::KeyReceived,
            Phase::NextFrameFlipped,
        ]
        .iter()
        .map(|p| p.word())
        .collect();
        assert_eq!(
            words,
            [
                "compositor-start",
                "viewer-spawned",
                "drm-device-open",
                "drm-mode-chosen",
                "drm-buffers-mapped",
                "drm-modeset-committed",
                "wayland-ready",
                "drm-ready",
                "first-frame-composited",
                "page-flip-done",
                "keyboard-ready",
                "key-received",
                "next-frame-flipped"
            ]
        );
    }

    #[test]
    fn disabled_by_default_level() {
        assert!(!Timeline::new(false).enabled());
        assert!(Timeline::new(true).enabled());
    }
}
