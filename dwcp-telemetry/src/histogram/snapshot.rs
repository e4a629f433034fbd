//! Read-only views of a histogram: statistics, interval deltas, merges, and exact conversion
//! into [`hdrhistogram::Histogram<u64>`].

use super::atomic::BadInputCounts;
use super::layout::Layout;
use crate::error::ConfigError;

/// A point-in-time copy of a histogram's non-zero slots, in ascending slot order.
///
/// Counts are exact. Values are known to the slot's precision: [`Snapshot::min`],
/// [`Snapshot::max`] and [`Snapshot::quantile`] follow `hdrhistogram`'s conventions (lowest
/// equivalent value for the minimum, highest equivalent value for quantiles and the maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    layout: Layout,
    bins: Vec<(u32, u64)>,
    count: u64,
    exact_sum: Option<u64>,
    bad: BadInputCounts,
}

impl Snapshot {
    pub(crate) fn from_parts(
        layout: Layout,
        bins: Vec<(u32, u64)>,
        exact_sum: Option<u64>,
        bad: BadInputCounts,
    ) -> Self {
        let count = bins.iter().fold(0u64, |acc, &(_, c)| acc.saturating_add(c));
        Snapshot {
            layout,
            bins,
            count,
            exact_sum,
            bad,
        }
    }

    /// An empty snapshot with the given layout.
    #[must_use]
    pub fn empty(layout: Layout) -> Self {
        Snapshot::from_parts(layout, Vec::new(), None, BadInputCounts::default())
    }

    /// The layout the counts refer to.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Number of recorded values (exact).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Values that were clamped, zero, or rejected while recording.
    pub fn bad_input(&self) -> BadInputCounts {
        self.bad
    }

    /// The non-zero slots as `(lowest value, highest value, count)`, ascending.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, u64, u64)> + '_ {
        self.bins.iter().map(|&(i, c)| {
            let i = i as usize;
            (self.layout.lowest_of(i), self.layout.highest_of(i), c)
        })
    }

    /// The sum of the recorded values: exact if the histogram kept an exact sum, otherwise
    /// estimated from slot midpoints (relative error at most half the slot precision).
    pub fn sum(&self) -> u128 {
        match self.exact_sum {
            Some(s) => u128::from(s),
            None => self.bins.iter().fold(0u128, |acc, &(i, c)| {
                acc + u128::from(self.layout.midpoint_of(i as usize)) * u128::from(c)
            }),
        }
    }

    /// Whether [`Snapshot::sum`] is exact.
    pub fn sum_is_exact(&self) -> bool {
        self.exact_sum.is_some()
    }

    /// The arithmetic mean (from slot midpoints, like `hdrhistogram`), or 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let total = self.bins.iter().fold(0f64, |acc, &(i, c)| {
            acc + self.layout.midpoint_of(i as usize) as f64 * c as f64
        });
        total / self.count as f64
    }

    /// The lowest equivalent value of the smallest recorded value, or 0 when empty.
    pub fn min(&self) -> u64 {
        self.bins
            .first()
            .map_or(0, |&(i, _)| self.layout.lowest_of(i as usize))
    }

    /// The highest equivalent value of the largest recorded value, or 0 when empty.
    pub fn max(&self) -> u64 {
        self.bins
            .last()
            .map_or(0, |&(i, _)| self.layout.highest_of(i as usize))
    }

    /// The value at quantile `q` (clamped to `0..=1`; NaN counts as 0): the highest
    /// equivalent value of the slot holding the `ceil(q·n)`-th smallest value (for `q = 0`,
    /// the lowest equivalent, as `hdrhistogram` does). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for &(i, c) in &self.bins {
            seen += c;
            if seen >= rank {
                return if q == 0.0 {
                    self.layout.lowest_of(i as usize)
                } else {
                    self.layout.highest_of(i as usize)
                };
            }
        }
        self.max()
    }

    /// How many recorded values are at most `bound`, counting a slot as a whole when its
    /// lowest value is ≤ `bound` (so a value equal to a bound is always inside it).
    pub fn count_le(&self, bound: u64) -> u64 {
        self.bins
            .iter()
            .take_while(|&&(i, _)| self.layout.lowest_of(i as usize) <= bound)
            .map(|&(_, c)| c)
            .sum()
    }

    /// Cumulative counts for ascending `bounds` in one pass (Prometheus `le` buckets).
    /// Bounds that are not ascending are answered as if sorted; the result has one entry per
    /// bound, in the given order.
    pub fn cumulative(&self, bounds: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds.len());
        let mut seen = 0u64;
        let mut bins = self.bins.iter().peekable();
        let mut last = 0u64;
        for &b in bounds {
            if b < last {
                out.push(self.count_le(b));
                continue;
            }
            last = b;
            while let Some(&&(i, c)) = bins.peek() {
                if self.layout.lowest_of(i as usize) <= b {
                    seen += c;
                    bins.next();
                } else {
                    break;
                }
            }
            out.push(seen);
        }
        out
    }

    /// What was recorded since `earlier` (a snapshot of the same histogram taken before this
    /// one). Counts are monotonic, so the delta is exact; a slot that went down (a different
    /// histogram was passed) saturates at zero.
    #[must_use]
    pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
        let mut bins = Vec::with_capacity(self.bins.len());
        let mut old = earlier.bins.iter().peekable();
        for &(i, c) in &self.bins {
            while old.peek().is_some_and(|&&(j, _)| j < i) {
                old.next();
            }
            let before = match old.peek() {
                Some(&&(j, d)) if j == i => d,
                _ => 0,
            };
            let d = c.saturating_sub(before);
            if d != 0 {
                bins.push((i, d));
            }
        }
        let exact_sum = match (self.exact_sum, earlier.exact_sum) {
            (Some(a), Some(b)) => Some(a.wrapping_sub(b)),
            _ => None,
        };
        let bad = BadInputCounts {
            clamped: self.bad.clamped.saturating_sub(earlier.bad.clamped),
            zero: self.bad.zero.saturating_sub(earlier.bad.zero),
            nan: self.bad.nan.saturating_sub(earlier.bad.nan),
            negative: self.bad.negative.saturating_sub(earlier.bad.negative),
            sum_saturated: self
                .bad
                .sum_saturated
                .saturating_sub(earlier.bad.sum_saturated),
            not_a_duration: self
                .bad
                .not_a_duration
                .saturating_sub(earlier.bad.not_a_duration),
            rounded: self.bad.rounded.saturating_sub(earlier.bad.rounded),
        };
        Snapshot::from_parts(self.layout, bins, exact_sum, bad)
    }

    /// Add another snapshot's counts into this one (e.g. to aggregate series). Both must
    /// share a layout.
    pub fn merge(&mut self, other: &Snapshot) -> Result<(), ConfigError> {
        if self.layout != other.layout {
            return Err(ConfigError::LayoutMismatch {
                left: self.layout.sigfig(),
                right: other.layout.sigfig(),
            });
        }
        let mut merged = Vec::with_capacity(self.bins.len() + other.bins.len());
        let (mut a, mut b) = (self.bins.iter().peekable(), other.bins.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(i, c)), Some(&&(j, d))) => {
                    if i == j {
                        merged.push((i, c.saturating_add(d)));
                        a.next();
                        b.next();
                    } else if i < j {
                        merged.push((i, c));
                        a.next();
                    } else {
                        merged.push((j, d));
                        b.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    merged.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.exact_sum = match (self.exact_sum, other.exact_sum) {
            (Some(x), Some(y)) => Some(x.saturating_add(y)),
            _ => None,
        };
        self.bad = BadInputCounts {
            clamped: self.bad.clamped.saturating_add(other.bad.clamped),
            zero: self.bad.zero.saturating_add(other.bad.zero),
            nan: self.bad.nan.saturating_add(other.bad.nan),
            negative: self.bad.negative.saturating_add(other.bad.negative),
            sum_saturated: self
                .bad
                .sum_saturated
                .saturating_add(other.bad.sum_saturated),
            not_a_duration: self
                .bad
                .not_a_duration
                .saturating_add(other.bad.not_a_duration),
            rounded: self.bad.rounded.saturating_add(other.bad.rounded),
        };
        self.count = self.count.saturating_add(other.count);
        self.bins = merged;
        Ok(())
    }

    /// Convert into an [`hdrhistogram::Histogram<u64>`] with identical counts, for its full set
    /// of statistics (quantiles, mean, stddev, iteration).
    pub fn to_hdrhistogram(&self) -> Result<hdrhistogram::Histogram<u64>, ConfigError> {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(
            1,
            self.layout.max_value(),
            self.layout.sigfig(),
        )
        .map_err(|e| ConfigError::Hdr(format!("{e:?}")))?;
        for &(i, c) in &self.bins {
            h.record_n(self.layout.lowest_of(i as usize), c)
                .map_err(|e| ConfigError::Hdr(format!("{e:?}")))?;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::AtomicHistogram;

    fn hist(values: &[u64]) -> AtomicHistogram {
        let h = AtomicHistogram::new(Layout::default());
        for &v in values {
            h.record(v);
        }
        h
    }

    #[test]
    fn empty_snapshot_statistics_are_zero() {
        let s = AtomicHistogram::new(Layout::default()).snapshot();
        assert_eq!(
            (s.count(), s.min(), s.max(), s.quantile(0.99)),
            (0, 0, 0, 0)
        );
        assert_eq!(s.mean(), 0.0);
        assert_eq!(s.sum(), 0);
        assert!(s.is_empty());
    }

    #[test]
    fn quantiles_and_cumulative_are_exact_for_small_values() {
        let s = hist(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).snapshot();
        assert_eq!(s.count(), 10);
        assert_eq!(s.quantile(0.5), 5);
        assert_eq!(s.quantile(0.9), 9);
        assert_eq!(s.quantile(1.0), 10);
        assert_eq!(s.quantile(0.0), 1);
        assert_eq!(s.quantile(f64::NAN), 1);
        assert_eq!(s.cumulative(&[0, 3, 7, 100]), vec![0, 3, 7, 10]);
        assert_eq!(s.cumulative(&[7, 3]), vec![7, 3]);
        assert_eq!(s.sum(), 55);
    }

    #[test]
    fn delta_gives_only_new_values() {
        let h = hist(&[100, 200]);
        let first = h.snapshot();
        h.record(200);
        h.record(5_000);
        let d = h.snapshot().delta(&first);
        assert_eq!(d.count(), 2);
        assert_eq!(d.min(), 200);
        assert_eq!(d.iter().map(|(_, _, c)| c).collect::<Vec<_>>(), vec![1, 1]);
    }

    #[test]
    fn merge_adds_counts_and_rejects_other_layouts() {
        let mut a = hist(&[10, 20]).snapshot();
        let b = hist(&[20, 30, 1_000_000]).snapshot();
        a.merge(&b).unwrap();
        assert_eq!(a.count(), 5);
        assert_eq!(a.cumulative(&[20, 30, u64::MAX]), vec![3, 4, 5]);
        let other = AtomicHistogram::new(Layout::new(3, 1 << 40).unwrap()).snapshot();
        assert_eq!(
            a.merge(&other),
            Err(ConfigError::LayoutMismatch { left: 2, right: 3 })
        );
    }

    #[test]
    fn hdrhistogram_conversion_keeps_counts() {
        let vals: Vec<u64> = (0..5_000u64).map(|i| i * i * 37 % 9_000_000 + 1).collect();
        let h = hist(&vals);
        let ours = h.snapshot();
        let theirs = ours.to_hdrhistogram().unwrap();
        let mut reference =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, super::super::ONE_HOUR_NS, 2)
                .unwrap();
        for &v in &vals {
            reference.record(v).unwrap();
        }
        assert_eq!(theirs.len(), 5_000);
        assert_eq!(theirs, reference);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(ours.quantile(q), reference.value_at_quantile(q), "q={q}");
        }
        assert_eq!(ours.min(), reference.min());
        assert_eq!(ours.max(), reference.max());
    }
}
