//! Boot timeline marks: `nekos: t=<ms> <phase>`, the CLOCK_BOOTTIME milliseconds at which
//! a phase was reached. The compositor and the viewer print the same line format (each
//! program has its own few lines for it: they share no library), so the bench can put
//! every process's phases on one time axis. Printed only under `nekos.loglevel=debug`.

/// A phase of init's part of the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `main` entered (its time is taken then and printed once the log level is known).
    InitStart,
    /// The compositor process exists: std's spawn returns once exec succeeded (its
    /// code not paged in yet).
    CompositorSpawned,
    /// The setup is done and `boot ok` printed (the banner probes ran after the
    /// compositor's spawn, alongside its start-up); the loop starts the prompt next.
    BootOk,
}

impl Phase {
    /// The phase's word in the mark line.
    pub fn word(self) -> &'static str {
        match self {
            Phase::InitStart => "init-start",
            Phase::CompositorSpawned => "compositor-spawned",
            Phase::BootOk => "init-boot-ok",
        }
    }
}

/// The one mark line format: `nekos: t=<ms> <phase>`.
pub fn mark_line(ms: u64, phase: Phase) -> String {
    format!("nekos: t={ms} {}", phase.word())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_the_shared_one() {
        assert_eq!(mark_line(0, Phase::InitStart), "nekos: t=0 init-start");
        assert_eq!(
            mark_line(1234, Phase::CompositorSpawned),
            "nekos: t=1234 compositor-spawned"
        );
        assert_eq!(mark_line(7, Phase::BootOk), "nekos: t=7 init-boot-ok");
        assert_eq!(
            mark_line(u64::MAX, Phase::InitStart),
            format!("nekos: t={} init-start", u64::MAX)
        );
    }
}
