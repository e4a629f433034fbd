//! A cheap monotonic clock: the TSC read through `quanta`, calibrated once per process.
//!
//! `quanta::Clock::raw()` costs about 10 ns against about 23 ns for `Instant::now()` on the
//! machines in `docs/PERFORMANCE.md`, which is what keeps a timed record under 25 ns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(|| {
    let clock = quanta::Clock::new();
    // quanta's own scale, as a 32.32 fixed-point count of nanoseconds per raw tick; 0 (the
    // TSC is not read inline) unless quanta's raw readings are TSC readings.
    let scale = clock.delta_as_nanos(0, 1 << 32);
    SCALE.store(if reads_tsc(&clock) { scale } else { 0 }, Ordering::Relaxed);
    clock
});

/// Nanoseconds per TSC tick, 32.32 fixed point, read from `quanta`'s calibration; 0 until
/// calibration, and for good if `quanta` does not read the TSC. Not 0: [`now_raw`] reads
/// the TSC inline (no call into `quanta`, which is not `#[inline]`, and no `LazyLock`
/// check) and [`nanos_between`] multiplies by it and shifts by a constant (where quanta's
/// conversion shifts by a variable amount). One static for both, so that a timed call
/// loads it once at each end.
static SCALE: AtomicU64 = AtomicU64::new(0);

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
    if SCALE.load(Ordering::Relaxed) != 0 {
        return rdtsc();
    }
    CLOCK.raw()
}

/// Nanoseconds between two raw readings (0 if `end` is before `start`).
#[inline]
pub fn nanos_between(start: u64, end: u64) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let scale = SCALE.load(Ordering::Relaxed);
        if scale != 0 {
            return tsc_nanos(start, end, scale);
        }
    }
    if end <= start {
        return 0;
    }
    CLOCK.delta_as_nanos(start, end)
}

/// Nanoseconds from the raw reading `start` to now: [`nanos_between`]`(start, `[`now_raw`]`())`
/// with one load of the clock's mode instead of two. 0 if `start` is not before now (a
/// start of `u64::MAX` always gives 0).
#[inline(always)]
pub fn nanos_since(start: u64) -> u64 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let scale = SCALE.load(Ordering::Relaxed);
        if scale != 0 {
            return tsc_nanos(start, rdtsc(), scale);
        }
    }
    nanos_between(start, CLOCK.raw())
}

/// TSC ticks from `start` to `end` as nanoseconds at `scale` (0 if `end` is not after
/// `start`). A product past `u64::MAX` ns (585 years) saturates.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn tsc_nanos(start: u64, end: u64, scale: u64) -> u64 {
    if end <= start {
        return 0;
    }
    let ns = (u128::from(end - start) * u128::from(scale)) >> 32;
    u64::try_from(ns).unwrap_or(u64::MAX)
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
        // `nanos_since` reads the same clock: at least as long, and 0 from an unset start.
        assert!(nanos_since(a) >= ns);
        assert_eq!(nanos_since(u64::MAX), 0);
        // The fixed-point path agrees with quanta's own conversion: it truncates the scale to
        // 2^-32 ns a tick, under 1 ns a second at any TSC rate below 4 GHz.
        let q = CLOCK.delta_as_nanos(a, b);
        assert!(ns.abs_diff(q) <= 1 + ns / 1_000_000_000, "{ns} {q}");
        // At least the 20 ms slept, less the error of quanta's TSC-frequency calibration
        // (a few tenths of a percent; 2.5 % allowed, as tests/instrument.rs does). Anything
        // past 2 s would be a wrong scale, not a slow machine.
        assert!((19_500_000..2_000_000_000).contains(&ns), "{ns}");
    }
}
