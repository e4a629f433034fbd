//! The breaker's sliding windows, lock-free: a ring of the last N outcomes with a packed
//! aggregate, or N one-second buckets.
//!
//! Counts are packed three to a word, 21 bits each: calls, failures, slow calls. The count
//! window's aggregate carries a bias of 2^20 per field, so the transient negative counts
//! two overlapping replacements of one slot can produce never borrow from the next field.

use super::{AtomicU64, AtomicU8, Ordering};

const FIELD: u32 = 21;
const MASK: u64 = (1 << FIELD) - 1;
const BIAS: u64 = 1 << 20;
const BIASED_ZERO: u64 = BIAS | (BIAS << FIELD) | (BIAS << (2 * FIELD));

/// Slot codes: what one call contributed.
pub(crate) const EMPTY: u8 = 0;
pub(crate) const OK: u8 = 1;
pub(crate) const FAILED: u8 = 2;
pub(crate) const SLOW_OK: u8 = 3;
pub(crate) const SLOW_FAILED: u8 = 4;

/// The code of an outcome.
#[inline]
pub(crate) fn code(failed: bool, slow: bool) -> u8 {
    match (failed, slow) {
        (false, false) => OK,
        (true, false) => FAILED,
        (false, true) => SLOW_OK,
        (true, true) => SLOW_FAILED,
    }
}

/// A code's contribution to the packed counts.
#[inline]
fn contribution(code: u8) -> u64 {
    const TABLE: [u64; 5] = [
        0,
        1,
        1 | (1 << FIELD),
        1 | (1 << (2 * FIELD)),
        1 | (1 << FIELD) | (1 << (2 * FIELD)),
    ];
    TABLE[(code as usize).min(4)]
}

/// Calls, failures and slow calls in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failed: u32,
    pub(crate) slow: u32,
}

impl Counts {
    fn unpack_biased(v: u64) -> Counts {
        let f = |shift: u32| ((v >> shift) & MASK).saturating_sub(BIAS) as u32;
        let calls = f(0);
        Counts {
            calls,
            failed: f(FIELD).min(calls),
            slow: f(2 * FIELD).min(calls),
        }
    }

    fn unpack(v: u64) -> Counts {
        Counts {
            calls: (v & MASK) as u32,
            failed: ((v >> FIELD) & MASK) as u32,
            slow: ((v >> (2 * FIELD)) & MASK) as u32,
        }
    }

    fn add(&mut self, o: Counts) {
        self.calls = self.calls.saturating_add(o.calls);
        self.failed = self.failed.saturating_add(o.failed);
        self.slow = self.slow.saturating_add(o.slow);
    }

    /// Percent of calls that failed.
    pub(crate) fn failure_rate(&self) -> f64 {
        percent(self.failed, self.calls)
    }

    /// Percent of calls that were slow.
    pub(crate) fn slow_rate(&self) -> f64 {
        percent(self.slow, self.calls)
    }
}

fn percent(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The last `size` calls: a ring of codes and an aggregate kept equal to their sum.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    size: u32,
    /// Lemire's fast-modulo multiplier for `size`.
    magic: u64,
    next: AtomicU64,
    aggregate: AtomicU64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            slots: (0..size).map(|_| AtomicU8::new(EMPTY)).collect(),
            size,
            magic: (u64::MAX / size as u64).wrapping_add(1),
            next: AtomicU64::new(0),
            aggregate: AtomicU64::new(BIASED_ZERO),
        }
    }

    #[inline]
    fn slot_of(&self, i: u64) -> usize {
        let low = self.magic.wrapping_mul(i as u32 as u64);
        ((low as u128 * self.size as u128) >> 64) as usize
    }

    /// Record one code; returns how many calls the window had seen before it (so
    /// `>= size` means it was full).
    #[inline]
    pub(crate) fn record(&self, code: u8) -> u64 {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = &self.slots[self.slot_of(i)];
        // Replacing an outcome with the same outcome changes nothing: the steady-state
        // success path writes nothing but the index.
        if slot.load(Ordering::Relaxed) != code {
            let old = slot.swap(code, Ordering::Relaxed);
            if old != code {
                let delta = contribution(code).wrapping_sub(contribution(old));
                self.aggregate.fetch_add(delta, Ordering::Relaxed);
            }
        }
        i
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts::unpack_biased(self.aggregate.load(Ordering::Relaxed))
    }

    /// Empty the window (only while no call records into it: the breaker resets it before
    /// publishing the closed state).
    pub(crate) fn reset(&self) {
        for s in self.slots.iter() {
            s.store(EMPTY, Ordering::Relaxed);
        }
        self.aggregate.store(BIASED_ZERO, Ordering::Relaxed);
        self.next.store(0, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Bucket {
    /// The second this bucket holds, plus one (0: never used).
    stamp: AtomicU64,
    counts: AtomicU64,
}

/// The calls of the last `size` whole seconds, one bucket per second. A bucket is reused
/// when its second is `size` seconds old; a call recorded while another thread resets that
/// bucket may be missed by the window (never by the exported counters).
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    size: u32,
}

impl TimeWindow {
    pub(crate) fn new(size: u32) -> Self {
        TimeWindow {
            buckets: (0..size)
                .map(|_| Bucket {
                    stamp: AtomicU64::new(0),
                    counts: AtomicU64::new(0),
                })
                .collect(),
            size,
        }
    }

    /// Record one code in second `second`; returns the calls in that second's bucket.
    pub(crate) fn record(&self, code: u8, second: u64) -> u32 {
        let stamp = second + 1;
        let b = &self.buckets[(second % self.size as u64) as usize];
        let seen = b.stamp.load(Ordering::Acquire);
        if seen != stamp {
            if seen > stamp {
                return 0; // a clock read from before another thread's newer second
            }
            if b.stamp
                .compare_exchange(seen, stamp, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                b.counts.store(0, Ordering::Release);
            }
        }
        let before = Counts::unpack(b.counts.load(Ordering::Relaxed));
        if before.calls >= (MASK as u32) - 1024 {
            return before.calls; // saturated for this second: stop counting
        }
        let after = b.counts.fetch_add(contribution(code), Ordering::AcqRel) + contribution(code);
        Counts::unpack(after).calls
    }

    pub(crate) fn counts(&self, second: u64) -> Counts {
        let newest = second + 1;
        let oldest = newest.saturating_sub(self.size as u64 - 1);
        let mut total = Counts::default();
        for b in self.buckets.iter() {
            let s = b.stamp.load(Ordering::Acquire);
            if s >= oldest.max(1) && s <= newest {
                total.add(Counts::unpack(b.counts.load(Ordering::Acquire)));
            }
        }
        total
    }

    pub(crate) fn reset(&self) {
        for b in self.buckets.iter() {
            b.stamp.store(0, Ordering::Relaxed);
            b.counts.store(0, Ordering::Relaxed);
        }
    }
}

/// Either window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fast_modulo_matches_remainder() {
        for size in [1u32, 2, 3, 7, 10, 100, 65_536] {
            let w = CountWindow::new(size);
            for i in [0u64, 1, 2, 99, 100, 101, 12_345, u32::MAX as u64 - 1] {
                assert_eq!(w.slot_of(i), (i as u32 % size) as usize, "{i} % {size}");
            }
        }
    }

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = CountWindow::new(4);
        for c in [FAILED, FAILED, OK, SLOW_OK, OK, OK] {
            w.record(c);
        }
        // Last four: OK, SLOW_OK, OK, OK.
        assert_eq!(
            w.counts(),
            Counts {
                calls: 4,
                failed: 0,
                slow: 1
            }
        );
        w.record(SLOW_FAILED);
        assert_eq!(
            w.counts(),
            Counts {
                calls: 4,
                failed: 1,
                slow: 2
            }
        );
        w.reset();
        assert_eq!(w.counts(), Counts::default());
    }

    #[test]
    fn time_window_drops_old_seconds() {
        let w = TimeWindow::new(3);
        w.record(FAILED, 10);
        w.record(OK, 11);
        w.record(OK, 12);
        assert_eq!(w.counts(12).calls, 3);
        assert_eq!(w.counts(13).calls, 2);
        w.record(OK, 13); // reuses second 10's bucket
        assert_eq!(
            w.counts(13),
            Counts {
                calls: 3,
                failed: 0,
                slow: 0
            }
        );
        assert_eq!(w.counts(20).calls, 0);
    }
}
