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
    short: [f64; MAX_SHORT],
    k: usize,
    inv_k: f64,
    idx: usize,
    laps: u32,
    filled: usize,
    sum: f64,
    alpha: f64,
    /// Samples after which the weight `1/n` falls below `alpha`.
    switch: u64,
    n: u64,
    mean: f64,
    var: f64,
}

impl SurpriseGate {
    pub(crate) fn new(short: usize, half_life: usize) -> Self {
        let alpha = 1.0 - (-std::f64::consts::LN_2 / half_life.max(1) as f64).exp();
        let k = short.clamp(1, MAX_SHORT);
        Self {
            short: [0.0; MAX_SHORT],
            k,
            inv_k: 1.0 / k as f64,
            idx: 0,
            laps: 0,
            filled: 0,
            sum: 0.0,
            alpha,
            switch: (1.0 / alpha).ceil() as u64,
            n: 0,
            mean: 0.0,
            var: 0.0,
        }
    }

    /// Feeds |z| (or the one-sided deviation); returns whether the short
    /// mean is at least `threshold` long-run standard deviations above the
    /// long-run mean (statistics from before this sample).
    #[inline]
    pub(crate) fn update(&mut self, deviation: f64, threshold: f64) -> bool {
        let a = deviation.clamp(0.0, CAP);
        if self.filled == self.k {
            self.sum -= self.short[self.idx];
        } else {
            self.filled += 1;
        }
        self.short[self.idx] = a;
        self.sum += a;
        self.idx += 1;
        if self.idx == self.k {
            self.idx = 0;
            self.laps += 1;
            if self.laps == RESUM_LAPS {
                // Re-sum exactly now and then: no drift.
                self.laps = 0;
                self.sum = self.short[..self.filled].iter().sum();
            }
        }
        let short_mean = if self.filled == self.k {
            self.sum * self.inv_k
        } else {
            self.sum / self.filled as f64
        };
        // short_mean - mean >= threshold * max(sd, floor), without a sqrt.
        let excess = short_mean - self.mean;
        let surprising =
            excess >= 0.0 && excess * excess >= threshold * threshold * self.var.max(VAR_FLOOR);

        self.n += 1;
        // Plain running mean until 1/n drops below alpha, then EW.
        let w = if self.n < self.switch {
            1.0 / self.n as f64
        } else {
            self.alpha
        };
        // mean' = (1 - w) mean + w a, var' = (1 - w) (var + w d^2): written
        // so that each loop-carried chain is one multiply and one add.
        let d = a - self.mean;
        let keep = 1.0 - w;
        self.mean = keep * self.mean + w * a;
        self.var = keep * self.var + keep * w * d * d;
        surprising
    }

    pub(crate) fn reset(&mut self) {
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
