//! Clocks: CLOCK_BOOTTIME for "ms since kernel start", CLOCK_MONOTONIC for frame times.

fn clock_ms(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME, includes suspend).
pub fn boottime_ms() -> u64 {
    clock_ms(libc::CLOCK_BOOTTIME)
}

pub fn monotonic_ms() -> u64 {
    clock_ms(libc::CLOCK_MONOTONIC)
}
