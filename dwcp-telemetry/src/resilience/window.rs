//! The breaker's sliding windows, lock-free: the last N calls (ordered by the breaker's call
//! counters, with rings of failure and slow-call positions), or N one-second buckets (calls,
//! failures and slow calls packed three to a word, 21 bits each).

use super::{AtomicU64, Ordering};

const FIELD: u32 = 21;
const MASK: u64 = (1 << FIELD) - 1;

/// Codes of what one call contributed (time window).
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

/// Positions (in the window's call sequence) of recent failures or slow calls: entry `i`
/// holds the `i`-th one's position, tagged with `i`, so a reader can tell an entry not yet
/// written from one written.
#[derive(Debug)]
struct Ring {
    entries: Box<[AtomicU64]>,
    /// Entries below this index are known to be out of the window.
    tail: AtomicU64,
}

const POS_BITS: u32 = 40;
const POS_MASK: u64 = (1 << POS_BITS) - 1;
const TAG_MOD: u64 = (1 << (64 - POS_BITS)) - 1;

fn tag(i: u64) -> u64 {
    i % TAG_MOD + 1
}

impl Ring {
    fn new(size: u32) -> Self {
        Ring {
            entries: (0..size).map(|_| AtomicU64::new(0)).collect(),
            tail: AtomicU64::new(0),
        }
    }

    fn put(&self, slot: usize, i: u64, position: u64) {
        self.entries[slot].store(
            (tag(i) << POS_BITS) | (position & POS_MASK),
            Ordering::Release,
        );
    }

    /// Of the `head` entries so far, how many have a position above `low` (in the window).
    /// Moves the tail past those that left the window: amortised O(1) per entry.
    fn count_above(&self, w: &CountWindow, head: u64, low: u64) -> u32 {
        let mut t = self
            .tail
            .load(Ordering::Acquire)
            .max(head.saturating_sub(w.size as u64));
        while t < head {
            let e = self.entries[w.slot_of(t)].load(Ordering::Acquire);
            // Not yet written (its writer is between its counter and this store): it is
            // among the newest, so in the window, as is everything after it.
            if e >> POS_BITS != tag(t) || e & POS_MASK > low {
                break;
            }
            t += 1;
        }
        self.tail.fetch_max(t, Ordering::AcqRel);
        head.saturating_sub(t).min(u32::MAX as u64) as u32
    }

    fn reset(&self) {
        for e in self.entries.iter() {
            e.store(0, Ordering::Relaxed);
        }
        self.tail.store(0, Ordering::Relaxed);
    }
}

/// The last `size` calls, ordered by the breaker's own `successful` and `failed` call
/// counters: a call's position is its success number plus its failure number since the
/// window's base. A success only increments its counter (which the breaker does anyway, for
/// `dwcp_circuit_breaker_calls_total`); a failure also stores its position in a ring, and a
/// slow call in another. The rates count ring entries whose position is among the last
/// `size` — exact on one thread; under concurrency a call's position may be off by the
/// calls in flight beside it.
#[derive(Debug)]
pub(crate) struct CountWindow {
    size: u32,
    /// Lemire's fast-modulo multiplier for `size`.
    magic: u64,
    base_ok: AtomicU64,
    base_failed: AtomicU64,
    failures: Ring,
    slow: Ring,
    slow_head: AtomicU64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            size,
            magic: (u64::MAX / size as u64).wrapping_add(1),
            base_ok: AtomicU64::new(0),
            base_failed: AtomicU64::new(0),
            failures: Ring::new(size),
            slow: Ring::new(size),
            slow_head: AtomicU64::new(0),
        }
    }

    #[inline]
    fn slot_of(&self, i: u64) -> usize {
        let low = self.magic.wrapping_mul(i as u32 as u64);
        ((low as u128 * self.size as u128) >> 64) as usize
    }

    fn push_slow(&self, position: u64) {
        let i = self.slow_head.fetch_add(1, Ordering::AcqRel);
        self.slow.put(self.slot_of(i), i, position);
    }

    /// A success whose counter was `before` (the failures counter reads `failed_now`).
    /// Returns whether the rates should be evaluated: after a slow call, while the window
    /// may not be full, and every 64th success (to refresh the gauges).
    #[inline]
    pub(crate) fn record_success(
        &self,
        before: u64,
        slow: bool,
        failed_now: impl FnOnce() -> u64,
    ) -> bool {
        let Some(rel) = before.checked_sub(self.base_ok.load(Ordering::Relaxed)) else {
            return false; // counted before the window's reset
        };
        let n = rel + 1;
        if slow {
            let f = failed_now().saturating_sub(self.base_failed.load(Ordering::Relaxed));
            self.push_slow(n + f);
        }
        slow || n <= self.size as u64 || n % 64 == 0
    }

    /// A failure whose counter was `before` (the successes counter reads `ok_now`).
    pub(crate) fn record_failure(&self, before: u64, slow: bool, ok_now: u64) -> bool {
        let Some(i) = before.checked_sub(self.base_failed.load(Ordering::Relaxed)) else {
            return false;
        };
        let position = ok_now.saturating_sub(self.base_ok.load(Ordering::Relaxed)) + i + 1;
        self.failures.put(self.slot_of(i), i, position);
        if slow {
            self.push_slow(position);
        }
        true
    }

    /// The window's counts, given the breaker's counters now.
    pub(crate) fn counts(&self, ok_now: u64, failed_now: u64) -> Counts {
        let ok = ok_now.saturating_sub(self.base_ok.load(Ordering::Acquire));
        let failed = failed_now.saturating_sub(self.base_failed.load(Ordering::Acquire));
        let seq = ok + failed;
        let low = seq.saturating_sub(self.size as u64);
        let calls = seq.min(self.size as u64) as u32;
        let f = self.failures.count_above(self, failed, low);
        let s = self
            .slow
            .count_above(self, self.slow_head.load(Ordering::Acquire), low);
        Counts {
            calls,
            failed: f.min(calls),
            slow: s.min(calls),
        }
    }

    /// Start an empty window at the breaker's counters now (only while no call records
    /// into it: the breaker resets it before publishing the closed state).
    pub(crate) fn reset(&self, ok_now: u64, failed_now: u64) {
        self.failures.reset();
        self.slow.reset();
        self.slow_head.store(0, Ordering::Relaxed);
        self.base_ok.store(ok_now, Ordering::Release);
        self.base_failed.store(failed_now, Ordering::Release);
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
        let (mut ok, mut failed) = (0u64, 0u64);
        let mut call = |fail: bool, slow: bool| {
            if fail {
                w.record_failure(failed, slow, ok);
                failed += 1;
            } else {
                w.record_success(ok, slow, || failed);
                ok += 1;
            }
            w.counts(ok, failed)
        };
        call(true, false);
        call(true, false);
        call(false, false);
        call(false, true);
        call(false, false);
        // Last four: ok, slow ok, ok, ok.
        assert_eq!(
            call(false, false),
            Counts {
                calls: 4,
                failed: 0,
                slow: 1
            }
        );
        assert_eq!(
            call(true, true),
            Counts {
                calls: 4,
                failed: 1,
                slow: 2
            }
        );
        w.reset(ok, failed);
        assert_eq!(w.counts(ok, failed), Counts::default());
        assert_eq!(w.counts(ok + 2, failed + 1).calls, 3);
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
