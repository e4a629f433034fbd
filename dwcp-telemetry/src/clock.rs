//! A cheap monotonic clock: the TSC read through `quanta`, calibrated once per process.
//!
//! `quanta::Clock::raw()` costs about 10 ns against about 23 ns for `Instant::now()` on the
//! machines in `docs/PERFORMANCE.md`, which is what keeps a timed record under 25 ns.

use std::sync::LazyLock;

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// Force calibration now (it otherwise happens on first use, on some caller's hot path).
pub fn calibrate() {
    LazyLock::force(&CLOCK);
}

/// A raw clock reading; only meaningful to [`nanos_between`].
#[inline]
pub fn now_raw() -> u64 {
    CLOCK.raw()
}

/// Nanoseconds between two raw readings (0 if `end` is before `start`).
#[inline]
pub fn nanos_between(start: u64, end: u64) -> u64 {
    if end <= start {
        0
    } else {
        CLOCK.delta_as_nanos(start, end)
    }
}
