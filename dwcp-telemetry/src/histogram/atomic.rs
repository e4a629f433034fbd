//! The lock-free recorder: relaxed atomic adds into lazily allocated HDR regions.
//!
//! Recording is one relaxed `fetch_add` on the slot's counter (plus one on the sum, if exact
//! sums are on). The regions of the slot array are allocated on first touch: a null region
//! pointer is replaced by a fresh zeroed region with a compare-and-swap, and the loser of a
//! race frees its copy and uses the winner's. After that, the region lives until the
//! histogram drops. A snapshot only loads: it never blocks or slows a writer beyond sharing
//! cache lines.

use super::layout::{Layout, MAX_REGIONS};
use super::snapshot::Snapshot;
use crate::sync::{AtomicPtr, AtomicU64, Ordering};

/// Counters for values that were not recorded as given. They are exported as self-metrics.
#[derive(Debug, Default)]
pub(crate) struct BadInput {
    /// Values above the trackable maximum (including +∞), recorded as the maximum.
    pub(crate) clamped: AtomicU64,
    /// Zero durations, recorded as 0.
    pub(crate) zero: AtomicU64,
    /// NaN values, not recorded.
    pub(crate) nan: AtomicU64,
    /// Negative values (including −∞), not recorded.
    pub(crate) negative: AtomicU64,
    /// Exact-sum additions that would have passed `u64::MAX` (pinned there).
    pub(crate) sum_saturated: AtomicU64,
    /// Durations (timers, `record_duration`, `record_secs`) recorded, as nanoseconds, into a
    /// histogram whose unit is not seconds.
    pub(crate) not_a_duration: AtomicU64,
    /// `f64` values with a fraction recorded into integer storage (rounded to nearest).
    pub(crate) rounded: AtomicU64,
}

/// Counts of values that were clamped, zero, or rejected, as seen in a [`Snapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BadInputCounts {
    /// Values above the trackable maximum (including +∞), recorded as the maximum.
    pub clamped: u64,
    /// Zero durations, recorded as 0 (a legitimate sample, counted so it can be spotted).
    pub zero: u64,
    /// NaN values, rejected (not recorded).
    pub nan: u64,
    /// Negative values (including −∞), rejected (not recorded).
    pub negative: u64,
    /// Exact-sum additions that reached `u64::MAX` and were pinned there (the values
    /// themselves were recorded).
    pub sum_saturated: u64,
    /// Durations recorded, as nanoseconds, into a histogram whose unit is not seconds (a
    /// timer on `rpc_latency` rather than `rpc_latency_seconds`, say): recorded, but the
    /// family exports them as plain numbers.
    pub not_a_duration: u64,
    /// `f64` values with a fraction given to a histogram that stores whole numbers (a
    /// registry histogram without a unit, through `observe`): recorded rounded to nearest.
    pub rounded: u64,
}

/// A thread-safe HDR histogram of `u64` values with a fixed footprint per touched region.
///
/// ```
/// use dwcp_telemetry::histogram::{AtomicHistogram, Layout};
/// let h = AtomicHistogram::new(Layout::default());
/// h.record(1_500);
/// h.record(1_500);
/// let s = h.snapshot();
/// assert_eq!(s.count(), 2);
/// assert_eq!(s.min(), 1_496); // lowest value of the 1 500 slot at 2 significant digits
/// ```
///
/// Memory layout, for the recording hot path: the fields a record reads (the layout, the
/// exact-sum flag, then the region table, inline so no pointer is chased to reach it) come
/// first and are only written when a region is installed; the counters every record *writes*
/// besides its slot (the exact sum) and the rarely written bad-input counters live in their
/// own 128-byte block, so two threads adding to the sum do not invalidate the line every
/// record reads.
#[derive(Debug)]
#[repr(C)]
pub struct AtomicHistogram {
    layout: Layout,
    exact_sum: bool,
    /// One entry per region; entries at `layout.regions()` and above stay null. Fixed at
    /// [`MAX_REGIONS`] so the region index is masked, never bounds-checked.
    regions: [AtomicPtr<AtomicU64>; MAX_REGIONS],
    written: Written,
}

/// The shared counters other than the slots, on cache lines of their own (128 bytes covers
/// the adjacent-line prefetcher pairing on x86).
#[derive(Debug, Default)]
#[repr(C, align(128))]
struct Written {
    sum: AtomicU64,
    bad: BadInput,
}

impl AtomicHistogram {
    /// An empty histogram; no slot memory is allocated until values arrive. The sum exported
    /// with it is estimated from slot midpoints (relative error ≤ half the precision).
    #[must_use]
    pub fn new(layout: Layout) -> Self {
        Self::with_options(layout, false)
    }

    /// An empty histogram that also keeps an exact running sum (one more relaxed add a record).
    #[must_use]
    pub fn with_options(layout: Layout, exact_sum: bool) -> Self {
        debug_assert!(layout.regions() <= MAX_REGIONS);
        AtomicHistogram {
            layout,
            exact_sum,
            regions: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            written: Written::default(),
        }
    }

    /// The layout this histogram records into.
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the sum is exact (kept by an atomic) or estimated from buckets.
    #[inline]
    pub fn has_exact_sum(&self) -> bool {
        self.exact_sum
    }

    /// Record one value. Values above the layout's maximum are clamped to it and counted;
    /// zero is recorded and counted.
    #[inline]
    pub fn record(&self, value: u64) {
        self.add(value, 1);
    }

    /// Record `count` copies of one value (for pre-aggregated data).
    pub fn record_n(&self, value: u64, count: u64) {
        if count != 0 {
            self.add(value, count);
        }
    }

    /// The one recording path; `record` inlines it with `count = 1` folded in.
    #[inline(always)]
    fn add(&self, value: u64, count: u64) {
        // One branch catches both rare cases: 0 wraps to u64::MAX, > max stays above max - 1.
        let value = if value.wrapping_sub(1) >= self.layout.max_value() {
            self.unusual(value, count)
        } else {
            value
        };
        let (region, slot) = self.layout.region_and_slot(value);
        // `region < layout.regions() <= MAX_REGIONS` for every value ≤ max (tested in
        // `layout`); the mask makes the compiler see it, so there is no bounds check, and a
        // layout bug could only miscount, never panic or touch memory out of bounds.
        let cell = &self.regions[region & (MAX_REGIONS - 1)];
        let mut base = cell.load(Ordering::Acquire);
        if base.is_null() {
            base = self.install_region(cell);
        }
        // SAFETY: `base` is non-null and was produced by `install_region` from a live boxed
        // slice of `layout.region_len()` counters; such a region is freed only in `Drop`, which
        // has exclusive access. `slot < region_len` because it is masked by `region_len - 1`.
        let counter = unsafe { &*base.add(slot) };
        // Read the flag before the locked add: a load after it waits for the add to finish.
        let exact_sum = self.exact_sum;
        counter.fetch_add(count, Ordering::Relaxed);
        if exact_sum {
            let add = value.saturating_mul(count);
            let before = self.written.sum.fetch_add(add, Ordering::Relaxed);
            if before.checked_add(add).is_none() {
                self.saturate_sum();
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn count_rounded(&self) {
        self.written.bad.rounded.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a duration recorded into a histogram that is not a duration histogram.
    #[cold]
    #[inline(never)]
    pub(crate) fn count_not_a_duration(&self) {
        self.written
            .bad
            .not_a_duration
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The exact sum wrapped: pin it at `u64::MAX` and count it.
    #[cold]
    #[inline(never)]
    fn saturate_sum(&self) {
        self.written.sum.store(u64::MAX, Ordering::Relaxed);
        self.written
            .bad
            .sum_saturated
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Record a duration given in seconds as `f64` (the `metrics` facade's unit). NaN and
    /// negative values are rejected and counted; +∞ and values past the maximum are clamped
    /// and counted. Returns whether the value was recorded.
    #[inline]
    pub fn record_secs(&self, seconds: f64) -> bool {
        self.record_f64(seconds, 1e9)
    }

    /// Record `value · scale`, rounded to an integer, with the same rules as
    /// [`AtomicHistogram::record_secs`] (which is `record_f64(seconds, 1e9)`).
    #[inline]
    pub fn record_f64(&self, value: f64, scale: f64) -> bool {
        match scaled_to_u64(value, scale) {
            Ok(ns) => {
                if scale == 1.0 && value.fract() != 0.0 && value.is_finite() {
                    self.count_rounded();
                }
                self.record(ns);
                true
            }
            Err(Rejected::Nan) => {
                self.written.bad.nan.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(Rejected::Negative) => {
                self.written.bad.negative.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn unusual(&self, value: u64, count: u64) -> u64 {
        if value == 0 {
            self.written.bad.zero.fetch_add(count, Ordering::Relaxed);
            0
        } else {
            self.written.bad.clamped.fetch_add(count, Ordering::Relaxed);
            self.layout.max_value()
        }
    }

    #[cold]
    #[inline(never)]
    fn install_region(&self, cell: &AtomicPtr<AtomicU64>) -> *mut AtomicU64 {
        let fresh: Box<[AtomicU64]> = (0..self.layout.region_len())
            .map(|_| AtomicU64::new(0))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<AtomicU64>();
        match cell.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` of a slice of `region_len` counters
                // just above, and lost the race, so no other thread ever saw it.
                drop(unsafe { self.region_box(fresh) });
                winner
            }
        }
    }

    /// Rebuild the owning box of a region pointer.
    ///
    /// # Safety
    /// `ptr` must come from `Box::into_raw` of a `Box<[AtomicU64]>` of `layout.region_len()`
    /// elements in `install_region`, and must not be used again afterwards.
    unsafe fn region_box(&self, ptr: *mut AtomicU64) -> Box<[AtomicU64]> {
        // SAFETY: guaranteed by the caller (see the function's contract).
        unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                ptr,
                self.layout.region_len(),
            ))
        }
    }

    /// Visit every allocated region as `(region index, counters)`.
    pub(crate) fn for_each_region(&self, mut f: impl FnMut(usize, &[AtomicU64])) {
        let len = self.layout.region_len();
        for (r, cell) in self.regions.iter().enumerate().take(self.layout.regions()) {
            let base = cell.load(Ordering::Acquire);
            if !base.is_null() {
                // SAFETY: a non-null region pointer refers to a live slice of `region_len`
                // counters that outlives `&self` (freed only in `Drop`).
                let region = unsafe { std::slice::from_raw_parts(base, len) };
                f(r, region);
            }
        }
    }

    /// A point-in-time copy of the non-zero slots. Only loads; never blocks writers. Cost is
    /// proportional to the allocated regions, not to the samples.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        let mut bins = Vec::new();
        let shift = self.layout.region_shift();
        self.for_each_region(|r, region| {
            for (i, c) in region.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n != 0 {
                    bins.push((((r << shift) + i) as u32, n));
                }
            }
        });
        let exact_sum = self
            .exact_sum
            .then(|| self.written.sum.load(Ordering::Relaxed));
        Snapshot::from_parts(self.layout, bins, exact_sum, self.bad_input())
    }

    /// Visit the non-zero slots as `(slot index, count)` in ascending order, in place: no copy,
    /// no allocation, only loads (never blocks writers). For streaming exporters; the slot's
    /// values are [`Layout::lowest_of`]`(index)..=`[`Layout::highest_of`]`(index)`.
    pub fn for_each_nonzero(&self, mut f: impl FnMut(usize, u64)) {
        let shift = self.layout.region_shift();
        self.for_each_region(|r, region| {
            let base = r << shift;
            for (i, c) in region.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n != 0 {
                    f(base + i, n);
                }
            }
        });
    }

    /// Visit every allocated region as `(index of its first slot, its counters)`, in
    /// ascending order. Within a region all slots have the same width
    /// ([`Layout::width_of`]), so slot `first + j` starts at `lowest_of(first) + j · width`.
    /// For exporters that fold whole regions without branching on each slot; only loads.
    pub(crate) fn for_each_region_slots(&self, mut f: impl FnMut(usize, &[AtomicU64])) {
        let shift = self.layout.region_shift();
        self.for_each_region(|r, region| f(r << shift, region));
    }

    /// The exact running sum, if this histogram keeps one ([`Self::has_exact_sum`]).
    #[must_use]
    pub fn exact_sum(&self) -> Option<u64> {
        self.exact_sum
            .then(|| self.written.sum.load(Ordering::Relaxed))
    }

    /// The counts of clamped, zero and rejected values so far.
    #[must_use]
    pub fn bad_input(&self) -> BadInputCounts {
        BadInputCounts {
            clamped: self.written.bad.clamped.load(Ordering::Relaxed),
            zero: self.written.bad.zero.load(Ordering::Relaxed),
            nan: self.written.bad.nan.load(Ordering::Relaxed),
            negative: self.written.bad.negative.load(Ordering::Relaxed),
            sum_saturated: self.written.bad.sum_saturated.load(Ordering::Relaxed),
            not_a_duration: self.written.bad.not_a_duration.load(Ordering::Relaxed),
            rounded: self.written.bad.rounded.load(Ordering::Relaxed),
        }
    }

    /// Bytes held by this histogram: the struct (with its inline region table) and the
    /// allocated regions.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        let mut regions = 0;
        self.for_each_region(|_, _| regions += 1);
        std::mem::size_of::<Self>()
            + regions * self.layout.region_len() * std::mem::size_of::<AtomicU64>()
    }
}

impl Drop for AtomicHistogram {
    fn drop(&mut self) {
        for cell in self.regions.iter() {
            let base = cell.swap(std::ptr::null_mut(), Ordering::Acquire);
            if !base.is_null() {
                // SAFETY: every non-null region pointer was installed by `install_region` from
                // `Box::into_raw`; `&mut self` means no other reference exists, and the swap to
                // null makes this the only release of it.
                drop(unsafe { self.region_box(base) });
            }
        }
    }
}

/// Why an `f64` seconds value was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    Nan,
    Negative,
}

/// Convert `value · scale` to an integer, rounding to nearest. +∞ and huge values saturate
/// to `u64::MAX` (the histogram then clamps and counts them); −0.0 is 0.
#[inline]
pub(crate) fn scaled_to_u64(value: f64, scale: f64) -> Result<u64, Rejected> {
    let scaled = value * scale;
    if scaled.is_nan() {
        Err(Rejected::Nan)
    } else if scaled < 0.0 {
        Err(Rejected::Negative)
    } else {
        // Round half up by adding 0.5 and truncating: `f64::round` is a library call without
        // SSE4.1 (the default x86-64 target), this is two instructions. `scaled` is ≥ 0 here,
        // and `as` saturates for out-of-range floats (Rust ≥ 1.45), so +∞ becomes u64::MAX.
        Ok((scaled + 0.5) as u64)
    }
}
