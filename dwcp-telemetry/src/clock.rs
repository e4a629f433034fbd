//! A cheap monotonic clock: the TSC read through `quanta`, calibrated once per process.
//!
//! `quanta::Clock::raw()` costs about 10 ns against about 23 ns for `Instant::now()` on the
//! machines in `docs/PERFORMANCE.md`, which is what keeps a timed record under 25 ns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(|| {
    let clock = quanta::Clock::new();
    TSC.store(reads_tsc(&clock), Ordering::Relaxed);
    clock
});

/// Whether `quanta` reads the TSC (checked once, at calibration): then [`now_raw`] reads it
/// inline, without a call into `quanta` (which is not `#[inline]`) or a `LazyLock` check.
static TSC: AtomicBool = AtomicBool::new(false);

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU (and `sse2` is part of the x86_64
    // baseline); it reads a counter and has no memory effects. `quanta::Clock::raw` executes
    // the same instruction in its TSC mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `quanta`'s raw readings are TSC readings if, three times in a row, one falls between two
/// TSC reads taken around it (a nanosecond clock's readings never do: the TSC counts
/// faster than nanoseconds since boot).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn reads_tsc(clock: &quanta::Clock) -> bool {
    (0..3).all(|_| {
        let a = rdtsc();
        let r = clock.raw();
        let b = rdtsc();
        a <= r && r <= b && b - a < 1_000_000
    })
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn reads_tsc(_: &quanta::Clock) -> bool {
    false
}

/// Force calibration now (it otherwise happens on first use, on some caller's hot path).
pub fn calibrate() {
    LazyLock::force(&CLOCK);
}

/// A raw clock reading; only meaningful to [`nanos_between`].
#[inline]
pub fn now_raw() -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if TSC.load(Ordering::Relaxed) {
        return rdtsc();
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_reads_agree_with_quanta() {
        calibrate();
        let a = now_raw();
        let q = CLOCK.raw();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = now_raw();
        assert!(a <= q && q <= b, "{a} {q} {b}");
        let ns = nanos_between(a, b);
        // At least the 20 ms slept, less the error of quanta's TSC-frequency calibration
        // (a few tenths of a percent; 2.5 % allowed, as tests/instrument.rs does). Anything
        // past 2 s would be a wrong scale, not a slow machine.
        assert!((19_500_000..2_000_000_000).contains(&ns), "{ns}");
    }
}
