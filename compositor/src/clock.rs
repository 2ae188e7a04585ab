//! Clocks: CLOCK_BOOTTIME for "ms since kernel start", CLOCK_MONOTONIC for frame times.

fn clock_ms(id: rustix::time::ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(id);
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Milliseconds since the kernel started (CLOCK_BOOTTIME, includes suspend).
pub fn boottime_ms() -> u64 {
    clock_ms(rustix::time::ClockId::Boottime)
}

pub fn monotonic_ms() -> u64 {
    clock_ms(rustix::time::ClockId::Monotonic)
}
