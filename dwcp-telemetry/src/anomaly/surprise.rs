//! Second-level gate: is the recent run of |z| unusual for this series?
//!
//! Keeps a short ring (at most [`MAX_SHORT`] samples) of recent |z| values
//! and an exponentially weighted mean and variance of |z| over a long
//! horizon. The surprise of a sample is the z-score of the short mean of |z|
//! against that long-run distribution: a series whose routine spikes reach
//! 4σ every hour has a high long-run mean of |z| and needs much more to be
//! surprising; a quiet series is surprised by much less.

/// Largest short ring of the surprise gate.
pub(crate) const MAX_SHORT: usize = 32;

/// |z| values above this are capped before entering the gate, so one
/// incident cannot dominate the long-run statistics.
const CAP: f64 = 10.0;

/// Floor on the long-run variance of |z| (standard deviation 0.1).
const VAR_FLOOR: f64 = 0.01;

/// Laps of the short ring between exact re-sums of its running sum.
const RESUM_LAPS: u32 = 64;

#[derive(Debug, Clone)]
pub(crate) struct SurpriseGate {
    // Hot state, touched on every sample: first, so that it shares cache
    // lines with nothing cold.
    /// Short ring full and weight down to `alpha`: `update` takes its
    /// steady-state path.
    steady: bool,
    /// Next slot of the short ring (always `< k <= MAX_SHORT`).
    idx: usize,
    k: usize,
    filled: usize,
    sum: f64,
    n: u64,
    /// Samples after which the weight `1/n` falls below `alpha`.
    switch: u64,
    mean: f64,
    var: f64,
    /// `1 - alpha` and `(1 - alpha) * alpha`: the steady-state weights,
    /// computed once (the same products the update would compute).
    keep_alpha: f64,
    keep_w_alpha: f64,
    alpha: f64,
    inv_k: f64,
    laps: u32,
    short: [f64; MAX_SHORT],
}

impl SurpriseGate {
    pub(crate) fn new(short: usize, half_life: usize) -> Self {
        let alpha = 1.0 - (-std::f64::consts::LN_2 / half_life.max(1) as f64).exp();
        let k = short.clamp(1, MAX_SHORT);
        let keep_alpha = 1.0 - alpha;
        Self {
            steady: false,
            idx: 0,
            k,
            filled: 0,
            sum: 0.0,
            n: 0,
            switch: (1.0 / alpha).ceil() as u64,
            mean: 0.0,
            var: 0.0,
            keep_alpha,
            keep_w_alpha: keep_alpha * alpha,
            alpha,
            inv_k: 1.0 / k as f64,
            laps: 0,
            short: [0.0; MAX_SHORT],
        }
    }

    /// Feeds |z| (or the one-sided deviation); returns whether the short
    /// mean is at least `threshold` (`threshold_sq` is its square) long-run
    /// standard deviations above the long-run mean (statistics from before
    /// this sample). The verdict is computed without a branch: the caller
    /// combines it with its own test, also without one, so that a series
    /// that hovers around the warning level does not mispredict.
    #[inline]
    pub(crate) fn update(&mut self, deviation: f64, threshold_sq: f64) -> bool {
        if !self.steady {
            return self.update_early(deviation, threshold_sq);
        }
        // The general path below with its tests resolved: the short ring is
        // full and the weight is `alpha` (`n` no longer matters).
        let a = deviation.clamp(0.0, CAP);
        let i = self.idx & (MAX_SHORT - 1);
        self.sum -= self.short[i];
        self.short[i] = a;
        self.sum += a;
        self.advance();
        let short_mean = self.sum * self.inv_k;
        let surprising = self.exceeds(short_mean, threshold_sq);
        let d = a - self.mean;
        self.mean = self.keep_alpha * self.mean + self.alpha * a;
        self.var = self.keep_alpha * self.var + self.keep_w_alpha * d * d;
        surprising
    }

    /// Move the short ring's cursor; every `RESUM_LAPS` laps, recompute its sum exactly.
    #[inline(always)]
    fn advance(&mut self) {
        self.idx += 1;
        if self.idx == self.k {
            self.idx = 0;
            self.laps += 1;
            if self.laps == RESUM_LAPS {
                self.resum();
            }
        }
    }

    /// `update` until the short ring is full and the weight has fallen to
    /// `alpha`.
    #[cold]
    #[inline(never)]
    fn update_early(&mut self, deviation: f64, threshold_sq: f64) -> bool {
        let a = deviation.clamp(0.0, CAP);
        // `idx < k <= MAX_SHORT`: the mask only spares a bounds check.
        let i = self.idx & (MAX_SHORT - 1);
        if self.filled == self.k {
            self.sum -= self.short[i];
        } else {
            self.filled += 1;
        }
        self.short[i] = a;
        self.sum += a;
        self.advance();
        let surprising = self.surprising(threshold_sq);

        // Plain running mean until 1/n drops below alpha, then EW:
        // mean' = (1 - w) mean + w a, var' = (1 - w) (var + w d^2), written
        // so that each loop-carried chain is one multiply and one add.
        self.n += 1;
        let d = a - self.mean;
        if self.n < self.switch {
            let w = 1.0 / self.n as f64;
            let keep = 1.0 - w;
            self.mean = keep * self.mean + w * a;
            self.var = keep * self.var + keep * w * d * d;
        } else {
            self.mean = self.keep_alpha * self.mean + self.alpha * a;
            self.var = self.keep_alpha * self.var + self.keep_w_alpha * d * d;
        }
        // From the next sample on, would the weight be `alpha` with a full
        // short ring?
        self.steady = self.filled == self.k && self.n + 1 >= self.switch;
        surprising
    }

    /// Re-sums the short ring exactly now and then: no drift.
    #[cold]
    #[inline(never)]
    fn resum(&mut self) {
        self.laps = 0;
        self.sum = self.short[..self.filled].iter().sum();
    }

    /// Is the current short mean surprising against the long-run statistics
    /// (not yet updated with this sample)?
    #[inline]
    fn surprising(&self, threshold_sq: f64) -> bool {
        let short_mean = if self.filled == self.k {
            self.sum * self.inv_k
        } else {
            self.sum / self.filled as f64
        };
        self.exceeds(short_mean, threshold_sq)
    }

    /// `short_mean - mean >= threshold * max(sd, floor)`, without a sqrt
    /// and without a branch.
    #[inline]
    fn exceeds(&self, short_mean: f64, threshold_sq: f64) -> bool {
        let excess = short_mean - self.mean;
        (excess >= 0.0) & (excess * excess >= threshold_sq * self.var.max(VAR_FLOOR))
    }

    pub(crate) fn reset(&mut self) {
        self.steady = false;
        self.short = [0.0; MAX_SHORT];
        self.idx = 0;
        self.laps = 0;
        self.filled = 0;
        self.sum = 0.0;
        self.n = 0;
        self.mean = 0.0;
        self.var = 0.0;
    }
}
