//! Boot timeline marks: `nekos: t=<ms> <phase>`, the milliseconds of CLOCK_BOOTTIME at
//! which a phase was reached. init and the compositor print the same line format, so
//! the bench can put every process's phases on one time axis (CLOCK_BOOTTIME is the
//! kernel's clock since boot, shared by all processes, and it is what init's `started N
//! ms after kernel start` is measured in). The marks are printed only at debug log
//! level: they are for the bench, not for someone at the prompt.

/// A phase of the viewer's start and of a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `main` entered (before the configuration is read).
    ViewerStart,
    /// The Wayland globals are bound.
    ViewerConnected,
    /// The first photo is decoded (before scaling to the output).
    FirstPhotoDecoded,
    /// The first photo's buffer is attached and committed.
    FirstBufferCommitted,
    /// The photo after the one on screen is in a wl_buffer, ready for one attach + commit.
    NextPhotoReady,
}

impl Phase {
    /// The phase's word in the mark line.
    pub fn word(self) -> &'static str {
        match self {
            Phase::ViewerStart => "viewer-start",
            Phase::ViewerConnected => "viewer-connected",
            Phase::FirstPhotoDecoded => "first-photo-decoded",
            Phase::FirstBufferCommitted => "first-buffer-committed",
            Phase::NextPhotoReady => "next-photo-ready",
        }
    }
}

/// The one mark line format: `nekos: t=<ms> <phase>`.
pub fn mark_line(ms: u64, phase: Phase) -> String {
    format!("nekos: t={ms} {}", phase.word())
}

/// Milliseconds of CLOCK_BOOTTIME now (the time since boot, suspend included).
pub fn now_ms() -> u64 {
    let ts = rustix::time::clock_gettime(crate::config::BOOT_CLOCK);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let ms = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_the_shared_one() {
        assert_eq!(mark_line(0, Phase::ViewerStart), "nekos: t=0 viewer-start");
        assert_eq!(
            mark_line(1234, Phase::ViewerConnected),
            "nekos: t=1234 viewer-connected"
        );
        assert_eq!(
            mark_line(u64::MAX, Phase::NextPhotoReady),
            format!("nekos: t={} next-photo-ready", u64::MAX)
        );
        let words: Vec<&str> = [
            Phase::ViewerStart,
            Phase::ViewerConnected,
            Phase::FirstPhotoDecoded,
            Phase::FirstBufferCommitted,
            Phase::NextPhotoReady,
        ]
        .iter()
        .map(|p| p.word())
        .collect();
        assert_eq!(
            words,
            [
                "viewer-start",
                "viewer-connected",
                "first-photo-decoded",
                "first-buffer-committed",
                "next-photo-ready"
            ]
        );
    }

    #[test]
    fn boottime_moves_forward() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
    }
}
