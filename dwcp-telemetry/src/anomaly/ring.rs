//! Fixed-capacity ring buffer with rolling mean and variance.
//!
//! The buffer is allocated once, in [`RollingWindow::new`], and never grows.
//! Each push updates the mean and the sum of squared deviations (`M2`) in
//! O(1): by Welford's update while the buffer fills, and by a sliding
//! replace-one update once it is full. Because a sliding update subtracts as
//! well as adds, rounding errors could accumulate over billions of samples,
//! so every `recompute_every` pushes the statistics are recomputed exactly
//! (two passes over the buffer). With `recompute_every == capacity` that costs
//! O(1) amortised per push.

/// A fixed-capacity circular buffer of `f64` that keeps a rolling mean and
/// variance of its contents.
///
/// ```
/// use dwcp_telemetry::anomaly::RollingWindow;
///
/// let mut w = RollingWindow::new(3, 3);
/// for x in [1.0, 2.0, 3.0, 4.0] {
///     w.push(x);
/// }
/// // The window now holds 2, 3, 4.
/// assert_eq!(w.len(), 3);
/// assert_eq!(w.mean(), 3.0);
/// assert_eq!(w.sample_variance(), 1.0);
/// ```
#[derive(Debug, Clone)]
pub struct RollingWindow {
    buf: Box<[f64]>,
    /// Index of the next slot to write (the oldest value once full).
    head: usize,
    len: usize,
    mean: f64,
    m2: f64,
    /// Pushes left until the next exact recompute (counts down from
    /// `recompute_every`).
    recompute_left: usize,
    recompute_every: usize,
    inv_cap: f64,
    inv_cap_minus_one: f64,
}

impl RollingWindow {
    /// Creates an empty window holding at most `capacity` values (at least 1)
    /// that recomputes its statistics exactly every `recompute_every` pushes
    /// (at least 1).
    #[must_use]
    pub fn new(capacity: usize, recompute_every: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            buf: vec![0.0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
            mean: 0.0,
            m2: 0.0,
            recompute_left: recompute_every.max(1),
            recompute_every: recompute_every.max(1),
            inv_cap: 1.0 / capacity as f64,
            inv_cap_minus_one: 1.0 / (capacity.max(2) - 1) as f64,
        }
    }

    /// Maximum number of values held.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Number of values currently held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when no value has been pushed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `true` once `capacity` values have been pushed.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Mean of the values held (0 when empty).
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (divisor `n - 1`) of the values held; 0 for fewer
    /// than two values.
    #[must_use]
    pub fn sample_variance(&self) -> f64 {
        if self.len == self.buf.len() && self.len >= 2 {
            self.m2 * self.inv_cap_minus_one
        } else if self.len < 2 {
            0.0
        } else {
            self.m2 / (self.len - 1) as f64
        }
    }

    /// Sample standard deviation of the values held.
    #[must_use]
    pub fn sample_sd(&self) -> f64 {
        self.sample_variance().sqrt()
    }

    /// The value pushed `k` pushes ago (`k = 1`: the newest), if held.
    #[must_use]
    #[inline]
    pub fn ago(&self, k: usize) -> Option<f64> {
        self.slot_ago(k).map(|i| self.buf[i])
    }

    /// Slot index of the value pushed `k` pushes ago, if held.
    #[inline]
    pub(crate) fn slot_ago(&self, k: usize) -> Option<usize> {
        if k == 0 || k > self.len {
            return None;
        }
        Some(if self.head >= k {
            self.head - k
        } else {
            self.head + self.buf.len() - k
        })
    }

    /// Slot index of the value pushed `k` pushes ago, for `1 <= k <=
    /// len` (checked by the caller).
    #[inline]
    pub(crate) fn slot_back(&self, k: usize) -> usize {
        debug_assert!(k >= 1 && k <= self.len);
        if self.head >= k {
            self.head - k
        } else {
            self.head + self.buf.len() - k
        }
    }

    /// The value in slot `i` (from [`Self::slot_ago`]).
    #[inline]
    pub(crate) fn slot_value(&self, i: usize) -> f64 {
        self.buf[i]
    }

    /// Slot index the next push writes to.
    #[inline]
    pub(crate) fn next_slot(&self) -> usize {
        self.head
    }

    /// Heap bytes owned by this window.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[f64]>(&self.buf)
    }

    /// Iterates over the held values, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let cap = self.buf.len();
        let start = if self.len == cap { self.head } else { 0 };
        (0..self.len).map(move |k| self.buf[(start + k) % cap])
    }

    /// Removes every value (keeps the allocation).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
        self.mean = 0.0;
        self.m2 = 0.0;
        self.recompute_left = self.recompute_every;
    }

    /// Appends `x`, evicting the oldest value once full, and returns the
    /// evicted value. The caller must pass finite values only; non-finite
    /// values would poison the statistics.
    #[inline]
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let cap = self.buf.len();
        let evicted = if self.len == cap {
            // Full (the steady state): replace the oldest value.
            let old = std::mem::replace(&mut self.buf[self.head], x);
            let old_mean = self.mean;
            let new_mean = old_mean + (x - old) * self.inv_cap;
            let m2 = self.m2 + (x - old) * (x - new_mean + old - old_mean);
            self.m2 = if m2 < 0.0 { 0.0 } else { m2 };
            self.mean = new_mean;
            Some(old)
        } else {
            self.push_filling(x);
            None
        };
        self.head += 1;
        if self.head == cap {
            self.head = 0;
        }
        self.recompute_left -= 1;
        if self.recompute_left == 0 {
            self.recompute();
        }
        evicted
    }

    /// Welford's update while the buffer fills.
    #[cold]
    #[inline(never)]
    fn push_filling(&mut self, x: f64) {
        self.buf[self.head] = x;
        self.len += 1;
        let d = x - self.mean;
        self.mean += d / self.len as f64;
        let m2 = self.m2 + d * (x - self.mean);
        self.m2 = if m2 < 0.0 { 0.0 } else { m2 };
    }

    /// Recomputes mean and `M2` exactly from the held values (two passes).
    #[cold]
    #[inline(never)]
    pub fn recompute(&mut self) {
        self.recompute_left = self.recompute_every;
        if self.len == 0 {
            self.mean = 0.0;
            self.m2 = 0.0;
            return;
        }
        let held = &self.buf[..self.len];
        // Four independent accumulators: the same sums, without a single
        // serial chain of 1024 dependent additions.
        let sum4 = |f: &dyn Fn(f64) -> f64| {
            let mut acc = [0.0f64; 4];
            let mut chunks = held.chunks_exact(4);
            for c in &mut chunks {
                acc[0] += f(c[0]);
                acc[1] += f(c[1]);
                acc[2] += f(c[2]);
                acc[3] += f(c[3]);
            }
            let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
            (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
        };
        let mean = sum4(&|v| v) / self.len as f64;
        let m2 = sum4(&|v| (v - mean) * (v - mean));
        self.mean = mean;
        self.m2 = m2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn anomaly_ring_exact_mean_and_sd_while_filling() {
        let mut w = RollingWindow::new(8, 1_000);
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            w.push(x);
        }
        assert!(w.is_full());
        assert_eq!(w.mean(), 5.0);
        // Sum of squared deviations is 32, n - 1 = 7.
        assert!((w.sample_variance() - 32.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn anomaly_ring_sliding_update_matches_exact() {
        let mut w = RollingWindow::new(4, 1_000);
        let xs = [1.0, 2.0, 3.0, 4.0, 10.0, -3.0, 7.5];
        let mut evicted = Vec::new();
        for x in xs {
            if let Some(e) = w.push(x) {
                evicted.push(e);
            }
        }
        assert_eq!(evicted, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            (w.ago(1), w.ago(4), w.ago(5), w.ago(0)),
            (Some(7.5), Some(4.0), None, None)
        );
        let held: Vec<f64> = w.iter().collect();
        assert_eq!(held, vec![4.0, 10.0, -3.0, 7.5]);
        let (mean, var) = exact(&held);
        assert!((w.mean() - mean).abs() < 1e-12);
        assert_eq!(mean, 4.625);
        assert!((w.sample_variance() - var).abs() < 1e-12);
    }

    #[test]
    fn anomaly_ring_capacity_one_and_small_counts() {
        let mut w = RollingWindow::new(0, 0);
        assert_eq!(w.capacity(), 1);
        assert!(w.is_empty());
        assert_eq!(w.sample_variance(), 0.0);
        w.push(3.0);
        assert_eq!(w.mean(), 3.0);
        assert_eq!(w.sample_variance(), 0.0);
        assert_eq!(w.push(5.0), Some(3.0));
        assert_eq!(w.mean(), 5.0);
        w.clear();
        assert!(w.is_empty());
        assert_eq!(w.heap_bytes(), 8);
    }

    #[test]
    fn anomaly_ring_no_drift_after_1e7_pushes() {
        // Large offset and a wide spread provoke cancellation in the sliding
        // update; the periodic recompute must keep the statistics exact.
        let cap = 1_000;
        let mut w = RollingWindow::new(cap, cap);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..10_000_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let x = 1.0e6 + if u < 0.01 { 1.0e5 * u } else { u };
            w.push(x);
        }
        // Push a few more so we are not sitting exactly on a recompute.
        for x in [1.0e6 + 0.25, 1.0e6 + 0.5, 1.0e6 + 0.75] {
            w.push(x);
        }
        let held: Vec<f64> = w.iter().collect();
        assert_eq!(held.len(), cap);
        let (mean, var) = exact(&held);
        assert!(
            (w.mean() - mean).abs() <= 1e-9 * mean.abs(),
            "{} vs {mean}",
            w.mean()
        );
        assert!(
            (w.sample_variance() - var).abs() <= 1e-6 * var,
            "{} vs {var}",
            w.sample_variance()
        );
    }
}
