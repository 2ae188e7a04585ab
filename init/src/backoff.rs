//! Restart policy as a pure state machine: given how long a service ran,
//! decide whether and when to start it again. No clocks are read here, so the
//! policy is testable without waiting.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Delay after the first failure; doubles with each further one.
    pub initial: Duration,
    /// The doubling stops here.
    pub cap: Duration,
    /// A run at least this long counts as "stable" and forgives past failures.
    pub stable_after: Duration,
    /// Consecutive failures that put the service into rescue (None = never:
    /// the prompt must always come back, it is how a human gets in).
    pub rescue_after: Option<u32>,
}

impl Policy {
    /// Ordinary services: 100 ms doubling to 5 s, reset after 10 s of stable
    /// running, rescue after 5 failures in a row.
    pub const SERVICE: Policy = Policy {
        initial: Duration::from_millis(100),
        cap: Duration::from_secs(5),
        stable_after: Duration::from_secs(10),
        rescue_after: Some(5),
    };

    /// The prompt: comes back faster (`exit` should feel like a new login,
    /// not a crash) and is never locked out.
    pub const PROMPT: Policy = Policy {
        initial: Duration::from_millis(50),
        cap: Duration::from_secs(2),
        stable_after: Duration::from_secs(10),
        rescue_after: None,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartAfter(Duration),
    /// Give up; `failures` is the count that triggered it.
    Rescue {
        failures: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    /// Consecutive failures so far (0 after a stable run).
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The service stopped after running for `ran`. Any stop counts as a
    /// failure: services are meant to run until shutdown.
    pub fn on_exit(&mut self, ran: Duration) -> Decision {
        if ran >= self.policy.stable_after {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if let Some(limit) = self.policy.rescue_after
            && self.failures >= limit
        {
            return Decision::Rescue {
                failures: self.failures,
            };
        }
        Decision::RestartAfter(self.delay())
    }

    /// Delay for the current failure count: initial * 2^(failures-1), capped.
    fn delay(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(31);
        let factor = 1u32 << shift;
        self.policy
            .initial
            .checked_mul(factor)
            .map_or(self.policy.cap, |d| d.min(self.policy.cap))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_millis(5);

    fn ms(n: u64) -> Decision {
        Decision::RestartAfter(Duration::from_millis(n))
    }

    #[test]
    fn doubles_then_rescues_after_five() {
        let mut b = Backoff::new(Policy::SERVICE);
        assert_eq!(b.on_exit(QUICK), ms(100));
        assert_eq!(b.on_exit(QUICK), ms(200));
        assert_eq!(b.on_exit(QUICK), ms(400));
        assert_eq!(b.on_exit(QUICK), ms(800));
        assert_eq!(b.on_exit(QUICK), Decision::Rescue { failures: 5 });
    }

    #[test]
    fn caps_at_five_seconds() {
        let mut b = Backoff::new(Policy {
            rescue_after: None,
            ..Policy::SERVICE
        });
        let delays: Vec<_> = (0..10).map(|_| b.on_exit(QUICK)).collect();
        assert_eq!(delays[5], ms(3200));
        assert_eq!(delays[6], ms(5000));
        assert_eq!(delays[9], ms(5000));
        // Very many failures: no overflow, still the cap.
        for _ in 0..100 {
            assert_eq!(b.on_exit(QUICK), ms(5000));
        }
    }

    #[test]
    fn stable_run_resets() {
        let mut b = Backoff::new(Policy::SERVICE);
        for _ in 0..4 {
            b.on_exit(QUICK);
        }
        assert_eq!(b.failures(), 4);
        // Ran 10 s: forgiven, this is failure #1 again.
        assert_eq!(b.on_exit(Duration::from_secs(10)), ms(100));
        assert_eq!(b.failures(), 1);
        // Just under the stable period does not reset.
        assert_eq!(b.on_exit(Duration::from_millis(9999)), ms(200));
    }

    #[test]
    fn prompt_never_rescues() {
        let mut b = Backoff::new(Policy::PROMPT);
        assert_eq!(b.on_exit(QUICK), ms(50));
        for _ in 0..50 {
            assert!(matches!(b.on_exit(QUICK), Decision::RestartAfter(_)));
        }
        assert_eq!(b.on_exit(QUICK), ms(2000));
    }
}
