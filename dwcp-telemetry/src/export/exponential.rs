//! Exact re-binning of HDR slots into base-2 exponential buckets: the shared data model of
//! OTLP `ExponentialHistogram` and Prometheus native histograms.
//!
//! # Buckets
//!
//! At scale `s` the base is `b = 2^(2^-s)`, and bucket `i` holds the values in
//! `(b^i, b^(i+1)]` (upper-inclusive, as OTLP and Prometheus define them). Scale 8 (the
//! highest Prometheus accepts) has 256 buckets per power of two, each 0.27 % wide; scale 7 has
//! 128 (0.54 %). Bucket `i` at scale `s` is exactly the union of buckets
//! `i·2^k … i·2^k + 2^k − 1` at scale `s + k`, so an index is downscaled exactly by an
//! arithmetic shift (`i >> k`), and counts are merged without any estimate.
//!
//! # Choosing the scale
//!
//! [`ExponentialConfig::default`]: the highest scale ≤ 8 at which the occupied index range
//! (lowest to highest non-empty bucket, the dense array OTLP sends) has at most 160 buckets
//! (the OpenTelemetry SDK's default `max_size`). The scale never goes below −4 (Prometheus'
//! lowest schema); at −4 one bucket spans a factor of 65,536, so 160 buckets cover any `f64`
//! range our storage can produce. A cumulative series only gains slots, so its scale can only go
//! down over its life, never flap.
//!
//! # The slot rule and its error
//!
//! HDR slots are *lower-inclusive*: slot `[lo, lo + w)` holds the integers from `lo` up to but
//! not including `lo + w` (in stored units, e.g. nanoseconds). Exponential buckets are
//! *upper-inclusive*. A slot does not in general fall inside one bucket, and counts are never
//! split, so each slot goes whole to **the bucket that holds its lowest value**, computed in
//! the exported unit (`lo / storage_scale`: seconds for durations).
//!
//! - In HDR's exact range (`w = 1`, values below `2·region_len`) a slot holds one value, so
//!   the bucket is exactly right, and a value on a bucket boundary (e.g. exactly 1 s) lands in
//!   the bucket whose upper bound it is, as the specification wants. This is the rule the
//!   Prometheus text exposition already uses for `le` bounds (a slot counts under every bound
//!   at or above its lowest value).
//! - Above it, a value `x` in the slot is `lo ≤ x < lo + w`, and its bucket `(L, U]` has
//!   `L < lo ≤ U`. The bucket is wrong only when `x > U`, and then by less than one slot width:
//!   `x < U·(1 + δ)` with `δ = w / lo ≤ 1 / region_len` (1/128 = 0.78 % at 2 significant
//!   digits). No value is ever put in a bucket above its own.
//!
//! For quantiles: the re-binning is monotone, so the rank that falls in HDR slot `[lo, hi]`
//! falls in the bucket `(L, U]` holding `lo`. Reading a quantile as its bucket's upper bound
//! `U` (HDR reads the slot's highest value `hi`), the two agree within
//! `hi·(1 − δ) ≤ U < hi·b`, a relative error of at most `max(δ, b − 1)`:
//! 0.78 % at scale 8 or 7 with 2 significant digits, `b − 1` (1.1 % at scale 6, 2.2 % at 5, …)
//! at coarser scales. [`ExponentialHistogram::quantile`] reads quantiles this way, and the
//! property tests check the bound ([`ExponentialHistogram::relative_error_bound`]).
//!
//! Count, sum, min and max are carried: `count == zero_count + Σ bucket counts` always (both
//! come from the same pass over the slots), the sum is the exact sum when the family keeps one,
//! else estimated from slot midpoints, and min/max are HDR's (lowest value of the lowest slot,
//! highest value of the highest). A stored zero is exactly zero: it goes to `zero_count`, with
//! a zero threshold of 0.

use std::sync::OnceLock;

use crate::error::ConfigError;
use crate::histogram::{Layout, Snapshot};
use crate::registry::{Descriptor, HistogramView, RegionCounts};

/// The highest scale Prometheus accepts (schema 8), and our default.
pub const MAX_SCALE: i32 = 8;
/// The lowest scale we ever use (Prometheus' lowest schema).
pub const MIN_SCALE: i32 = -4;
/// The default largest number of buckets (as in the OpenTelemetry SDK).
pub const DEFAULT_MAX_BUCKETS: u32 = 160;

/// How to choose the scale of an exported exponential histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialConfig {
    max_scale: i32,
    max_buckets: u32,
}

impl Default for ExponentialConfig {
    fn default() -> Self {
        ExponentialConfig {
            max_scale: MAX_SCALE,
            max_buckets: DEFAULT_MAX_BUCKETS,
        }
    }
}

impl ExponentialConfig {
    /// Scale at most `max_scale` (−4 to 8) with at most `max_buckets` (at least 2) buckets.
    ///
    /// ```
    /// use dwcp_telemetry::export::exponential::ExponentialConfig;
    /// assert!(ExponentialConfig::new(7, 160).is_ok());
    /// assert!(ExponentialConfig::new(9, 160).is_err());
    /// assert!(ExponentialConfig::new(8, 1).is_err());
    /// ```
    pub fn new(max_scale: i32, max_buckets: u32) -> Result<Self, ConfigError> {
        if !(MIN_SCALE..=MAX_SCALE).contains(&max_scale) || max_buckets < 2 {
            return Err(ConfigError::Exponential {
                max_scale,
                max_buckets,
            });
        }
        Ok(ExponentialConfig {
            max_scale,
            max_buckets,
        })
    }

    /// The highest scale used.
    pub fn max_scale(&self) -> i32 {
        self.max_scale
    }

    /// The largest number of buckets (the dense index range) at the chosen scale.
    pub fn max_buckets(&self) -> u32 {
        self.max_buckets
    }
}

/// One histogram series as base-2 exponential buckets (positive values only: our values are
/// never negative), in the exported unit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExponentialHistogram {
    /// The scale: the base is `2^(2^-scale)`.
    pub scale: i32,
    /// Values that were exactly zero.
    pub zero_count: u64,
    /// Index of the first bucket in [`ExponentialHistogram::counts`].
    pub offset: i32,
    /// Dense bucket counts: `counts[k]` holds `(base^(offset+k), base^(offset+k+1)]`. Empty
    /// when no positive value was recorded; never starts or ends with a zero.
    pub counts: Vec<u64>,
    /// Number of values (`zero_count` plus the bucket counts).
    pub count: u64,
    /// Sum of the values in the exported unit (exact if the family keeps an exact sum).
    pub sum: f64,
    /// Whether [`ExponentialHistogram::sum`] comes from an exact running sum.
    pub sum_is_exact: bool,
    /// The lowest value (HDR's lowest equivalent of the smallest), 0 when empty.
    pub min: f64,
    /// The highest value (HDR's highest equivalent of the largest), 0 when empty.
    pub max: f64,
    /// The slot precision `δ` (largest slot width ÷ its lowest value) of the HDR layout.
    pub slot_precision: f64,
}

impl ExponentialHistogram {
    /// The upper bound of bucket `index` at this histogram's scale (`base^(index+1)`).
    pub fn upper_bound(&self, index: i32) -> f64 {
        bound(i64::from(index) + 1, self.scale)
    }

    /// The lower (exclusive) bound of bucket `index` (`base^index`).
    pub fn lower_bound(&self, index: i32) -> f64 {
        bound(i64::from(index), self.scale)
    }

    /// The value at quantile `q` (clamped to `0..=1`, NaN as 0), read as the upper bound of
    /// the bucket holding the `ceil(q·count)`-th value (0 if that value is a zero), as
    /// [`Snapshot::quantile`] reads a slot's highest value. 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank <= self.zero_count {
            return 0.0;
        }
        let mut seen = self.zero_count;
        for (k, &c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(c);
            if seen >= rank {
                return self.upper_bound(self.offset.saturating_add(k as i32));
            }
        }
        self.max
    }

    /// The largest relative difference between [`ExponentialHistogram::quantile`] and the HDR
    /// snapshot's quantile: `max(δ, base − 1)` (see the [module docs](self)).
    pub fn relative_error_bound(&self) -> f64 {
        let growth = bound(1, self.scale) - 1.0;
        growth.max(self.slot_precision)
    }
}

/// Converts HDR slots into [`ExponentialHistogram`]s; keeps its scratch space between series,
/// so a warm rebinner allocates only the output's bucket vector.
#[derive(Debug, Default, Clone)]
pub struct Rebinner {
    config: ExponentialConfig,
    /// `(scale-8 index, count)` of the current series, ascending, adjacent equal indices merged.
    scratch: Vec<(i64, u64)>,
    /// Scale-8 index of each HDR slot's lowest value for `cache_key`, filled on first use
    /// ([`UNSET`] until then): series of one family share it, so each slot's index is computed
    /// once per layout and unit, not once per series.
    cache: Vec<i64>,
    cache_key: Option<(Layout, u64)>,
    /// The live-view fast path: for every slot of `dense_key`'s layout, its position in
    /// `dense` (0 for the zero slot, else scale-8 index − `dense_lo8` + 1), computed once.
    pos: Vec<u32>,
    dense_lo8: i64,
    dense_key: Option<(Layout, u64)>,
    /// Counts per scale-8 bucket of the current series; all zero between series.
    dense: Vec<u64>,
}

/// Not yet computed, in [`Rebinner::cache`] (no real index is this low).
const UNSET: i64 = i64::MIN;

/// Layouts with more slots than this are not cached (3 significant digits over the whole `u64`
/// range has 131,072; the default layout 4,608).
const CACHE_MAX_SLOTS: usize = 1 << 18;

impl Rebinner {
    /// A rebinner choosing scales by `config`.
    pub fn new(config: ExponentialConfig) -> Self {
        Rebinner {
            config,
            ..Rebinner::default()
        }
    }

    /// The configuration.
    pub fn config(&self) -> ExponentialConfig {
        self.config
    }

    /// Re-bin one live series (from [`Visitor::histogram`](crate::Visitor::histogram)) of the
    /// family `descriptor`, reading its slots in place.
    pub fn rebin_view(
        &mut self,
        descriptor: &Descriptor,
        view: HistogramView<'_>,
        out: &mut ExponentialHistogram,
    ) {
        self.rebin_view_with(descriptor, view, out, |_, _| {});
    }

    /// [`Rebinner::rebin_view`], also handing every non-zero `(slot index, count)` to `also`
    /// in the same pass (ascending), so classic buckets read the very counts the exponential
    /// ones hold.
    pub fn rebin_view_with(
        &mut self,
        descriptor: &Descriptor,
        view: HistogramView<'_>,
        out: &mut ExponentialHistogram,
        mut also: impl FnMut(usize, u64),
    ) {
        let layout = *view.layout();
        let per_unit = descriptor.storage_scale();
        let exact = view.exact_sum().is_some();
        if self.prepare_dense(layout, per_unit) {
            let estimate = self.fold_regions(layout, view, !exact, out, also);
            let (sum, is_exact) = match view.exact_sum() {
                Some(s) => (u128::from(s), true),
                None => (estimate, false),
            };
            out.sum = exported_sum(sum, per_unit);
            out.sum_is_exact = is_exact;
            return;
        }
        let cache: &mut [i64] = if self.prepare_cache(layout, per_unit) {
            &mut self.cache
        } else {
            &mut []
        };
        let mut acc = Accumulator::new(layout, per_unit, !exact, &mut self.scratch, cache);
        view.for_each_nonzero(|i, n| {
            also(i, n);
            acc.slot(i, n);
        });
        let estimate = acc.finish(out);
        // Like `snapshot()`, read the exact sum after the slots.
        let (sum, is_exact) = match view.exact_sum() {
            Some(s) => (u128::from(s), true),
            None => (estimate, false),
        };
        self.choose(out, sum, is_exact, per_unit);
    }

    /// Re-bin a snapshot whose values are stored at `storage_scale` integers per exported
    /// unit ([`Descriptor::storage_scale`]).
    ///
    /// ```
    /// use dwcp_telemetry::export::exponential::{ExponentialHistogram, Rebinner};
    /// use dwcp_telemetry::Registry;
    ///
    /// let registry = Registry::builder().build()?;
    /// let h = registry.histogram("op_seconds", "Op time").register()?.handle();
    /// for ns in [0, 1_000_000_000, 3_000_000] {
    ///     h.record(ns);
    /// }
    /// let mut e = ExponentialHistogram::default();
    /// Rebinner::default().rebin_snapshot(&h.snapshot(), 1e9, &mut e);
    /// // 3 ms to 1 s is 8.4 powers of two: scale 4 (16 buckets per power) fits 160 buckets.
    /// assert_eq!((e.scale, e.zero_count, e.count), (4, 1, 3));
    /// assert_eq!(e.counts.iter().sum::<u64>(), 2);
    /// // Exactly 1 s is the upper bound of its bucket.
    /// assert_eq!(e.upper_bound(e.offset + e.counts.len() as i32 - 1), 1.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rebin_snapshot(
        &mut self,
        snapshot: &Snapshot,
        storage_scale: f64,
        out: &mut ExponentialHistogram,
    ) {
        let layout = *snapshot.layout();
        let cache: &mut [i64] = if self.prepare_cache(layout, storage_scale) {
            &mut self.cache
        } else {
            &mut []
        };
        let mut acc = Accumulator::new(layout, storage_scale, false, &mut self.scratch, cache);
        for (lowest, _, n) in snapshot.iter() {
            acc.slot(layout.index_of(lowest), n);
        }
        acc.finish(out);
        self.choose(out, snapshot.sum(), snapshot.sum_is_exact(), storage_scale);
    }

    /// Make the slot-index cache hold `layout` at `per_unit` (reset when they change); false
    /// for layouts too large to cache.
    fn prepare_cache(&mut self, layout: Layout, per_unit: f64) -> bool {
        if layout.len() > CACHE_MAX_SLOTS {
            return false;
        }
        let key = (layout, per_unit.to_bits());
        if self.cache_key != Some(key) {
            self.cache.clear();
            self.cache.resize(layout.len(), UNSET);
            self.cache_key = Some(key);
        }
        true
    }

    /// Make `pos` and `dense` describe `layout` at `per_unit`; false for layouts too large.
    fn prepare_dense(&mut self, layout: Layout, per_unit: f64) -> bool {
        if layout.len() > CACHE_MAX_SLOTS {
            return false;
        }
        let key = (layout, per_unit.to_bits());
        if self.dense_key == Some(key) {
            return true;
        }
        let per = if per_unit.is_finite() && per_unit > 0.0 {
            per_unit
        } else {
            1.0
        };
        let idx = |slot: usize| index_scale8(layout.lowest_of(slot) as f64 / per);
        let lo8 = idx(1);
        let hi8 = idx(layout.len() - 1);
        let Ok(span) = usize::try_from(hi8 - lo8 + 2) else {
            return false;
        };
        if span > CACHE_MAX_SLOTS * 4 {
            return false;
        }
        self.pos.clear();
        self.pos.push(0);
        for slot in 1..layout.len() {
            self.pos.push((idx(slot) - lo8 + 1) as u32);
        }
        self.dense.clear();
        self.dense.resize(span, 0);
        self.dense_lo8 = lo8;
        self.dense_key = Some(key);
        true
    }

    /// The live-view fast path: every slot of every allocated region, branch-free (empty slots
    /// included: cheaper than mispredicting which are empty), added into `dense` at the slot's
    /// scale-8 position; then the scale is chosen and `dense` folded into `out` and cleared.
    /// Returns the sum estimated from slot midpoints (0 unless `estimate_sum`).
    fn fold_regions(
        &mut self,
        layout: Layout,
        view: HistogramView<'_>,
        estimate_sum: bool,
        out: &mut ExponentialHistogram,
        mut also: impl FnMut(usize, u64),
    ) -> u128 {
        const NONE: usize = usize::MAX;
        let (pos, dense) = (&self.pos, &mut self.dense);
        let (mut first_slot, mut last_slot) = (NONE, 0usize);
        let mut first_positive = NONE; // the first non-empty slot above slot 0
        let mut count = 0u64;
        let mut sum = 0u128;
        view.for_each_region(|first, counts| {
            let Some(ps) = pos.get(first..first + counts.len()) else {
                return;
            };
            let (total, weighted, last_j) = if estimate_sum {
                fold_region::<true>(counts, ps, dense, first, &mut also)
            } else {
                fold_region::<false>(counts, ps, dense, first, &mut also)
            };
            if total == 0 {
                return;
            }
            count = count.saturating_add(total);
            last_slot = first + last_j;
            if first_positive == NONE {
                // Once per series: find the first non-empty slots again (counts only grow,
                // so this finds them at or before where the pass saw them).
                for (j, n) in counts.iter().enumerate() {
                    let slot = first + j;
                    if n != 0 {
                        if first_slot == NONE {
                            first_slot = slot;
                        }
                        if slot != 0 {
                            first_positive = slot;
                            break;
                        }
                    }
                }
            }
            if estimate_sum {
                // Slot first + j has midpoint midpoint(first) + j · width.
                let width = u128::from(layout.width_of(first));
                let mid0 = u128::from(layout.midpoint_of(first));
                sum += mid0 * u128::from(total) + width * weighted;
            }
        });
        let (first_p, last_p) = if first_positive == NONE || last_slot == 0 {
            (NONE, 0)
        } else {
            (
                self.pos.get(first_positive).map_or(NONE, |&p| p as usize),
                self.pos.get(last_slot).map_or(0, |&p| p as usize),
            )
        };
        let dense = &mut self.dense;
        out.count = count;
        out.zero_count = dense.first().copied().unwrap_or(0);
        if let Some(d) = dense.first_mut() {
            *d = 0;
        }
        if first_slot == NONE {
            (out.min, out.max) = (0.0, 0.0);
        } else {
            let per = self.cache_per_unit();
            out.min = layout.lowest_of(first_slot) as f64 / per;
            out.max = layout.highest_of(last_slot) as f64 / per;
        }
        out.slot_precision = 1.0 / layout.region_len() as f64;
        out.counts.clear();
        if first_p == NONE {
            out.scale = self.config.max_scale;
            out.offset = 0;
            return sum;
        }
        let lo8 = self.dense_lo8;
        let at = |p: usize| lo8 + p as i64 - 1;
        let scale = self.pick_scale(at(first_p), at(last_p));
        let k = (MAX_SCALE - scale) as u32;
        let lo = at(first_p) >> k;
        out.scale = scale;
        out.offset = lo.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        out.counts.resize(((at(last_p) >> k) - lo + 1) as usize, 0);
        // Each output bucket is a run of 2^k scale-8 positions: sum the run (vectorised) and
        // clear it (a memset), instead of one bounds-checked add per position.
        let dense = &mut self.dense;
        let end = (last_p + 1).min(dense.len());
        let mut p = first_p;
        while p < end {
            let idx = at(p);
            let bucket = idx >> k;
            let run_end = (((bucket + 1) << k) - idx) as usize;
            let q = end.min(p + run_end);
            let run = &mut dense[p..q];
            let total = run.iter().fold(0u64, |a, &x| a.wrapping_add(x));
            run.fill(0);
            if let Some(b) = out.counts.get_mut((bucket - lo) as usize) {
                *b = b.saturating_add(total);
            }
            p = q;
        }
        sum
    }

    /// The stored units per exported unit of the dense tables.
    fn cache_per_unit(&self) -> f64 {
        let per = self.dense_key.map_or(1.0, |(_, bits)| f64::from_bits(bits));
        if per.is_finite() && per > 0.0 {
            per
        } else {
            1.0
        }
    }

    /// The highest scale ≤ the configured maximum whose buckets from `first8` to `last8`
    /// (scale-8 indices) number at most the configured maximum (never below [`MIN_SCALE`]).
    fn pick_scale(&self, first8: i64, last8: i64) -> i32 {
        let mut scale = self.config.max_scale;
        while scale > MIN_SCALE {
            let k = (MAX_SCALE - scale) as u32;
            if (last8 >> k) - (first8 >> k) < i64::from(self.config.max_buckets) {
                break;
            }
            scale -= 1;
        }
        scale
    }

    /// Pick the scale and fold the scale-8 indices into `out.counts`.
    fn choose(&mut self, out: &mut ExponentialHistogram, sum: u128, exact: bool, per_unit: f64) {
        out.sum = exported_sum(sum, per_unit);
        out.sum_is_exact = exact;
        out.counts.clear();
        let (Some(&(first, _)), Some(&(last, _))) = (self.scratch.first(), self.scratch.last())
        else {
            out.scale = self.config.max_scale;
            out.offset = 0;
            return;
        };
        let scale = self.pick_scale(first, last);
        let k = (MAX_SCALE - scale) as u32;
        let lo = first >> k;
        out.scale = scale;
        // Scale-8 indices of positive f64 values lie within ±2^19, so every index fits i32.
        out.offset = lo.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let len = ((last >> k) - lo + 1) as usize;
        out.counts.resize(len, 0);
        for &(i, n) in &self.scratch {
            let slot = &mut out.counts[((i >> k) - lo) as usize];
            *slot = slot.saturating_add(n);
        }
    }
}

/// One region of the live fast path: add every slot's count into `dense` at its position,
/// hand it to `also`, and return the region's total, `Σ j·n_j` (if `EST`) and the index of its
/// last non-empty slot.
#[inline(always)]
fn fold_region<const EST: bool>(
    counts: RegionCounts<'_>,
    ps: &[u32],
    dense: &mut [u64],
    first: usize,
    also: &mut impl FnMut(usize, u64),
) -> (u64, u128, usize) {
    let mut total = 0u64;
    let mut weighted = 0u128;
    let mut last_j = 0usize;
    for (j, (n, &p)) in counts.iter().zip(ps).enumerate() {
        also(first + j, n);
        if let Some(d) = dense.get_mut(p as usize) {
            *d = d.wrapping_add(n);
        }
        total = total.wrapping_add(n);
        if EST {
            weighted += j as u128 * u128::from(n);
        }
        last_j = if n != 0 { j } else { last_j };
    }
    (total, weighted, last_j)
}

/// One pass over a series' non-zero slots, ascending.
struct Accumulator<'a> {
    layout: Layout,
    per_unit: f64,
    estimate_sum: bool,
    scratch: &'a mut Vec<(i64, u64)>,
    cache: &'a mut [i64],
    zero: u64,
    count: u64,
    sum: u128,
    first: Option<usize>,
    last: usize,
}

impl<'a> Accumulator<'a> {
    fn new(
        layout: Layout,
        per_unit: f64,
        estimate_sum: bool,
        scratch: &'a mut Vec<(i64, u64)>,
        cache: &'a mut [i64],
    ) -> Self {
        scratch.clear();
        Accumulator {
            layout,
            per_unit: if per_unit.is_finite() && per_unit > 0.0 {
                per_unit
            } else {
                1.0
            },
            estimate_sum,
            scratch,
            cache,
            zero: 0,
            count: 0,
            sum: 0,
            first: None,
            last: 0,
        }
    }

    #[inline]
    fn slot(&mut self, index: usize, n: u64) {
        if n == 0 {
            return;
        }
        self.count = self.count.saturating_add(n);
        if self.first.is_none() {
            self.first = Some(index);
        }
        self.last = index;
        if self.estimate_sum {
            self.sum += u128::from(self.layout.midpoint_of(index)) * u128::from(n);
        }
        if index == 0 {
            // Slot 0 holds exactly the value 0.
            self.zero = self.zero.saturating_add(n);
            return;
        }
        let i = match self.cache.get_mut(index) {
            Some(c) if *c != UNSET => *c,
            Some(c) => {
                *c = index_scale8(self.layout.lowest_of(index) as f64 / self.per_unit);
                *c
            }
            None => index_scale8(self.layout.lowest_of(index) as f64 / self.per_unit),
        };
        match self.scratch.last_mut() {
            Some((j, c)) if *j == i => *c = c.saturating_add(n),
            _ => self.scratch.push((i, n)),
        }
    }

    /// Fill count, zero count, min, max and precision; return the midpoint sum estimate.
    fn finish(self, out: &mut ExponentialHistogram) -> u128 {
        out.zero_count = self.zero;
        out.count = self.count;
        match self.first {
            Some(first) => {
                out.min = self.layout.lowest_of(first) as f64 / self.per_unit;
                out.max = self.layout.highest_of(self.last) as f64 / self.per_unit;
            }
            None => {
                out.min = 0.0;
                out.max = 0.0;
            }
        }
        out.slot_precision = 1.0 / self.layout.region_len() as f64;
        self.sum
    }
}

/// `2^(j/256)` for `j` in `0..256`: the bucket boundaries of scale 8 within one power of two.
/// Every lower scale's boundaries are a subset (`j` a multiple of `2^(8−scale)`).
fn boundaries() -> &'static [f64; 256] {
    static TABLE: OnceLock<[f64; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [1.0f64; 256];
        for (j, b) in t.iter_mut().enumerate() {
            *b = (j as f64 / 256.0).exp2();
        }
        t
    })
}

/// `2^e` for any `e` an `f64` exponent can take (0 or ∞ beyond).
fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        0.0
    }
}

/// `base^index` at `scale` (the boundary between buckets `index − 1` and `index`).
fn bound(index: i64, scale: i32) -> f64 {
    let i8 = if scale <= MAX_SCALE {
        index << (MAX_SCALE - scale) as u32
    } else {
        index
    };
    pow2(i8 >> 8) * boundaries()[(i8 & 255) as usize]
}

/// The scale-8 bucket index of a positive, finite `v`: the `i` with `2^(i/256) < v ≤
/// 2^((i+1)/256)`, computed from the exponent bits and a binary search in the boundary table
/// (no logarithm, so powers of two and every table boundary are exact).
pub(crate) fn index_scale8(v: f64) -> i64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 0;
    }
    let (v, adjust) = if v < f64::MIN_POSITIVE {
        (v * pow2(64), -64i64)
    } else {
        (v, 0)
    };
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1023 + adjust;
    let mantissa = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if mantissa == 1.0 {
        // An exact power of two is the upper bound of the bucket below it.
        return exp * 256 - 1;
    }
    // The 1,024 intervals of the top ten mantissa bits are narrower (2^-10) than the boundary
    // spacing (2^(1/256) − 1 > 2^-9), so each holds at most one boundary: the count of
    // boundaries below the interval's start, plus one if the next is below the mantissa.
    let (t, below) = (boundaries(), below_interval());
    let k = ((bits >> 42) & 1023) as usize;
    let base = below[k] as usize;
    let next = t.get(base + 1).copied().unwrap_or(2.0);
    let j = base as i64 + i64::from(next < mantissa);
    exp * 256 + j
}

/// For each of the 1,024 intervals `[1 + k/1024, 1 + (k+1)/1024)`, how many scale-8
/// boundaries `t[1..]` lie strictly below its start.
fn below_interval() -> &'static [u8; 1024] {
    static TABLE: OnceLock<[u8; 1024]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let t = boundaries();
        let mut out = [0u8; 1024];
        for (k, o) in out.iter_mut().enumerate() {
            let start = 1.0 + k as f64 / 1024.0;
            // At most 255 boundaries, so the count fits a byte.
            *o = t[1..].iter().filter(|&&b| b < start).count() as u8;
        }
        out
    })
}

/// A stored sum in the exported unit: one correctly rounded division while the sum is exact in
/// `f64`, else whole units and the rest separately.
fn exported_sum(sum: u128, per_unit: f64) -> f64 {
    if !(per_unit.is_finite() && per_unit > 0.0) {
        return sum as f64;
    }
    if sum < 1 << 53 {
        return sum as f64 / per_unit;
    }
    let p = (per_unit as u128).max(1);
    (sum / p) as f64 + (sum % p) as f64 / per_unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::AtomicHistogram;
    use proptest::prelude::*;

    fn rebin(
        values: &[u64],
        per_unit: f64,
        config: ExponentialConfig,
    ) -> (Snapshot, ExponentialHistogram) {
        let h = AtomicHistogram::with_options(Layout::default(), true);
        for &v in values {
            h.record(v);
        }
        let s = h.snapshot();
        let mut e = ExponentialHistogram::default();
        Rebinner::new(config).rebin_snapshot(&s, per_unit, &mut e);
        (s, e)
    }

    #[test]
    fn index_of_powers_of_two_and_boundaries() {
        assert_eq!(index_scale8(1.0), -1);
        assert_eq!(index_scale8(2.0), 255);
        assert_eq!(index_scale8(0.5), -257);
        assert_eq!(index_scale8(1.0000001), 0);
        let t = boundaries();
        assert_eq!(index_scale8(t[1]), 0);
        assert_eq!(index_scale8(t[1] * 1.0000001), 1);
        for (j, &b) in t.iter().enumerate().skip(1) {
            // The boundary itself belongs to the bucket below.
            assert_eq!(index_scale8(b), j as i64 - 1, "j={j}");
            assert_eq!(index_scale8(b * 8.0), 3 * 256 + j as i64 - 1, "j={j}");
        }
        // Subnormal and extreme inputs do not panic.
        assert_eq!(index_scale8(f64::MIN_POSITIVE), -1022 * 256 - 1);
        assert_eq!(index_scale8(5e-324), -1074 * 256 - 1);
        assert_eq!(index_scale8(f64::NAN), 0);
    }

    #[test]
    fn table_lookup_matches_binary_search() {
        let t = boundaries();
        let reference = |v: f64| {
            let bits = v.to_bits();
            let exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
            let m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
            if m == 1.0 {
                return exp * 256 - 1;
            }
            exp * 256 + t.partition_point(|&b| b < m) as i64 - 1
        };
        let mut v = 1e-9f64;
        while v < 1e4 {
            assert_eq!(index_scale8(v), reference(v), "v={v:e}");
            v *= 1.000_37;
        }
        for &b in t.iter() {
            for x in [
                b,
                f64::from_bits(b.to_bits() + 1),
                f64::from_bits(b.to_bits() - 1),
            ] {
                assert_eq!(index_scale8(x * 4.0), reference(x * 4.0), "x={x:e}");
            }
        }
    }

    #[test]
    fn bounds_round_trip() {
        for scale in MIN_SCALE..=MAX_SCALE {
            let e = ExponentialHistogram {
                scale,
                ..Default::default()
            };
            for i in [-300, -5, -1, 0, 1, 7, 100] {
                let lb = e.lower_bound(i);
                let ub = e.upper_bound(i);
                if lb < f64::MIN_POSITIVE || !ub.is_finite() {
                    continue; // outside f64's normal range at this scale
                }
                assert!(lb < ub, "scale {scale} i {i}");
                let k = (MAX_SCALE - scale) as u32;
                assert_eq!(index_scale8(ub) >> k, i64::from(i), "scale {scale} i {i}");
                assert_eq!(
                    index_scale8(lb) >> k,
                    i64::from(i) - 1,
                    "scale {scale} i {i}"
                );
            }
        }
        assert_eq!(bound(0, 3), 1.0);
        assert_eq!(bound(8, 3), 2.0);
        assert_eq!(bound(-1, 0), 0.5);
        assert_eq!(bound(1, -4), 65536.0);
    }

    #[test]
    fn known_values_exact() {
        // 1 ms, 1 s (a boundary at every scale), a zero, 2 s.
        let (_, e) = rebin(
            &[0, 1_000_000, 1_000_000_000, 2_000_000_000],
            1e9,
            ExponentialConfig::default(),
        );
        assert_eq!(e.count, 4);
        assert_eq!(e.zero_count, 1);
        // 1 ms … 2 s spans ~11 powers of two: 2816 buckets at scale 8, 176 at 4, 88 at 3.
        assert_eq!(e.scale, 3);
        let total: u64 = e.counts.iter().sum();
        assert_eq!(total, 3);
        assert_eq!(e.upper_bound(index_scale8(1.0) as i32 >> 5), 1.0);
        let one = (index_scale8(1.0) >> 5) as i32;
        assert_eq!(e.counts[(one - e.offset) as usize], 1);
        assert_eq!(e.upper_bound(e.offset + e.counts.len() as i32 - 1), 2.0);
        assert_eq!(e.counts.first(), Some(&1));
        assert_eq!(e.counts.last(), Some(&1));
        assert_eq!(e.sum, 3.001);
        assert!(e.sum_is_exact);
        assert_eq!(e.min, 0.0);
        assert!((e.max - 2.0).abs() / 2.0 < 1.0 / 128.0);
        assert_eq!(e.quantile(0.25), 0.0);
        assert_eq!(e.quantile(0.75), 1.0);
    }

    #[test]
    fn narrow_ranges_keep_scale_8_and_empty_is_empty() {
        let (_, e) = rebin(
            &[3_000_000, 3_100_000, 2_900_000],
            1e9,
            ExponentialConfig::default(),
        );
        assert_eq!(e.scale, 8);
        assert_eq!(e.count, 3);
        assert_eq!(e.counts.iter().sum::<u64>(), 3);
        let (_, e) = rebin(&[], 1e9, ExponentialConfig::default());
        assert_eq!(
            (e.count, e.zero_count, e.counts.len(), e.sum),
            (0, 0, 0, 0.0)
        );
        assert_eq!(e.quantile(0.5), 0.0);
    }

    #[test]
    fn scale_is_capped_and_downscaling_is_exact() {
        let values: Vec<u64> = (1..2000u64).map(|i| i * i * 997).collect();
        let (_, fine) = rebin(&values, 1e9, ExponentialConfig::new(8, 100_000).unwrap());
        assert_eq!(fine.scale, 8);
        let (_, capped) = rebin(&values, 1e9, ExponentialConfig::new(5, 100_000).unwrap());
        assert_eq!(capped.scale, 5);
        // Folding the scale-8 buckets by 3 bits gives the scale-5 buckets exactly.
        let mut folded = std::collections::BTreeMap::new();
        for (k, &c) in fine.counts.iter().enumerate() {
            *folded.entry((fine.offset + k as i32) >> 3).or_insert(0u64) += c;
        }
        for (k, &c) in capped.counts.iter().enumerate() {
            assert_eq!(
                folded
                    .get(&(capped.offset + k as i32))
                    .copied()
                    .unwrap_or(0),
                c
            );
        }
        let (_, tiny) = rebin(&values, 1e9, ExponentialConfig::new(8, 2).unwrap());
        assert!(tiny.counts.len() <= 2 || tiny.scale == MIN_SCALE);
    }

    #[test]
    fn worst_case_slot_error_is_reached_and_within_bound() {
        // A slot starting on a power of two (2^30, width 2^23 at 2 significant digits): its
        // lowest value is the upper bound of its bucket, its highest is one slot width above.
        let (s, e) = rebin(&[1 << 30], 1.0, ExponentialConfig::default());
        assert_eq!(s.quantile(0.5), (1 << 30) + (1 << 23) - 1);
        assert_eq!(e.quantile(0.5), (1u64 << 30) as f64);
        let hdr = s.quantile(0.5) as f64;
        let rel = (hdr - e.quantile(0.5)) / hdr;
        assert!(rel > 0.0077 && rel <= e.relative_error_bound(), "{rel}");
        assert_eq!(e.relative_error_bound(), 1.0 / 128.0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The live-view fast path (dense, every slot) and the snapshot path (non-empty slots
        /// only) give identical results.
        #[test]
        fn live_view_equals_snapshot(
            values in prop::collection::vec(
                prop_oneof![Just(0u64), 1u64..1_000, 1u64..1_000_000_000, 1u64..3_600_000_000_000],
                0..300,
            ),
            exact in any::<bool>(),
            max_buckets in 2u32..300,
        ) {
            let reg = crate::Registry::builder().build().unwrap();
            let fam = reg.histogram("p_seconds", "p").exact_sum(exact).register().unwrap();
            let h = fam.handle();
            for &v in &values {
                h.record(v);
            }
            struct Grab(Rebinner, Vec<ExponentialHistogram>);
            impl crate::Visitor for Grab {
                fn counter(&mut self, _: &Descriptor, _: &std::sync::Arc<[String]>, _: u64) {}
                fn gauge(&mut self, _: &Descriptor, _: &std::sync::Arc<[String]>, _: f64) {}
                fn histogram(&mut self, d: &Descriptor, _: &std::sync::Arc<[String]>, v: HistogramView<'_>) {
                    let mut e = ExponentialHistogram::default();
                    self.0.rebin_view(d, v, &mut e);
                    self.1.push(e);
                }
            }
            let cfg = ExponentialConfig::new(8, max_buckets).unwrap();
            let mut g = Grab(Rebinner::new(cfg), Vec::new());
            reg.visit(&mut g);
            reg.visit(&mut g); // the dense scratch is clean after a series
            let mut from_snap = ExponentialHistogram::default();
            Rebinner::new(cfg).rebin_snapshot(&h.snapshot(), 1e9, &mut from_snap);
            prop_assert_eq!(&g.1[0], &from_snap);
            prop_assert_eq!(&g.1[1], &from_snap);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every reconstructed quantile is within the stated error of the HDR snapshot's, and
        /// the counts add up.
        #[test]
        fn quantiles_within_stated_error(
            values in prop::collection::vec(
                prop_oneof![Just(0u64), 1u64..1_000, 1u64..1_000_000_000, 1u64..3_600_000_000_000],
                1..400,
            ),
            max_scale in MIN_SCALE..=MAX_SCALE,
            max_buckets in 2u32..400,
            per_unit in prop_oneof![Just(1e9), Just(1e6), Just(1.0)],
        ) {
            let cfg = ExponentialConfig::new(max_scale, max_buckets).unwrap();
            let (s, e) = rebin(&values, per_unit, cfg);
            prop_assert_eq!(e.count, s.count());
            prop_assert_eq!(e.count, e.zero_count + e.counts.iter().sum::<u64>());
            prop_assert!(e.scale <= max_scale && e.scale >= MIN_SCALE);
            prop_assert!(e.counts.len() as u32 <= max_buckets || e.scale == MIN_SCALE);
            if !e.counts.is_empty() {
                prop_assert!(e.counts[0] > 0 && e.counts[e.counts.len() - 1] > 0);
            }
            let bound = e.relative_error_bound();
            for q in [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0] {
                let hdr = s.quantile(q) as f64 / per_unit;
                let ours = e.quantile(q);
                if q == 0.0 {
                    // HDR reads q = 0 as the lowest value of the lowest slot.
                    prop_assert!(ours >= hdr, "q=0: {} < {}", ours, hdr);
                    continue;
                }
                let tol = hdr * bound * (1.0 + 1e-12) + 1e-300;
                prop_assert!((ours - hdr).abs() <= tol,
                    "q={} ours={} hdr={} scale={} bound={}", q, ours, hdr, e.scale, bound);
            }
            prop_assert_eq!(e.min, s.min() as f64 / per_unit);
            prop_assert_eq!(e.max, s.max() as f64 / per_unit);
        }
    }
}
