//! Detector configuration: a builder with `with_*` setters and validation.

use super::zscore::Detector;
use super::Direction;

/// Why a [`DetectorConfig`] was rejected by [`DetectorConfig::build`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The baseline window must hold at least two samples.
    #[error("window must hold at least 2 samples, got {0}")]
    WindowTooSmall(usize),
    /// The baseline window is larger than [`MAX_WINDOW`].
    #[error("window of {0} samples exceeds the maximum of {max}", max = MAX_WINDOW)]
    WindowTooLarge(usize),
    /// A threshold (in standard deviations) must be finite and > 0.
    #[error("{name} threshold must be finite and > 0, got {value}")]
    InvalidThreshold {
        /// Which threshold.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// The critical threshold is below the warning threshold.
    #[error("critical threshold {critical} is below warning threshold {warning}")]
    CriticalBelowWarning {
        /// Warning threshold.
        warning: f64,
        /// Critical threshold.
        critical: f64,
    },
    /// The gate bypass is below the warning threshold.
    #[error("gate bypass {bypass} is below warning threshold {warning}")]
    BypassBelowWarning {
        /// Warning threshold.
        warning: f64,
        /// Rejected bypass level.
        bypass: f64,
    },
    /// The hysteresis clear level must lie in `[0, warning]`.
    #[error("clear threshold {clear} must be finite and within [0, warning = {warning}]")]
    InvalidClear {
        /// Warning threshold.
        warning: f64,
        /// Rejected clear threshold.
        clear: f64,
    },
    /// The warm-up must be at least 2 samples and at most the window.
    #[error("min_samples must be within [2, window = {window}], got {min_samples}")]
    InvalidMinSamples {
        /// Configured window.
        window: usize,
        /// Rejected warm-up.
        min_samples: usize,
    },
    /// Recompute period must be at least 1.
    #[error("recompute period must be at least 1 push")]
    InvalidRecompute,
    /// A scale floor must be finite and >= 0.
    #[error("{name} scale floor must be finite and >= 0, got {value}")]
    InvalidScaleFloor {
        /// Which floor.
        name: &'static str,
        /// Rejected value.
        value: f64,
    },
    /// Surprise gate: threshold finite and >= 0, short run 1..=32,
    /// half-life >= 1.
    #[error("surprise gate needs threshold >= 0, short run in 1..=32 and half-life >= 1 (got {threshold}, {short}, {half_life})")]
    InvalidSurprise {
        /// Threshold.
        threshold: f64,
        /// Short run.
        short: usize,
        /// Half-life.
        half_life: usize,
    },
    /// The seasonal period must be at least 1.
    #[error("season must be at least 1 sample")]
    InvalidSeason,
    /// The seasonal weight must be in `(0, 1]`.
    #[error("season weight must be within (0, 1], got {0}")]
    InvalidSeasonWeight(f64),
    /// The record factor must be finite and at least 1.
    #[error("record factor must be finite and >= 1, got {0}")]
    InvalidRecordFactor(f64),
    /// The sample interval given to [`DetectorConfig::for_sample_interval`]
    /// is zero.
    #[error("sample interval must be longer than zero")]
    ZeroSampleInterval,
    /// The smoothing factor must be in `(0, 1]`.
    #[error("smoothing factor must be within (0, 1], got {0}")]
    InvalidSmoothing(f64),
}

/// Largest accepted baseline window, in samples.
pub const MAX_WINDOW: usize = 1 << 20;

/// Default baseline window, in samples (8 KiB of ring per detector).
pub const DEFAULT_WINDOW: usize = 1024;

/// Configuration of a [`Detector`].
///
/// Every setting has a documented default; change it with the `with_*`
/// setters, read it back with the accessor of the same name (e.g.
/// [`warning`](Self::warning)), then call [`build`](Self::build), which
/// validates the whole configuration. The fields are private, so settings
/// can be added without breaking callers.
///
/// The everyday settings are [`window`](Self::window),
/// [`warning`](Self::warning), [`critical`](Self::critical),
/// [`clear`](Self::clear), [`direction`](Self::direction),
/// [`min_samples`](Self::min_samples), [`cooldown`](Self::cooldown),
/// [`max_incident`](Self::max_incident) and [`season`](Self::season) (the
/// last two also via [`for_sample_interval`](Self::for_sample_interval)).
/// The others are **tuning-only** knobs: their defaults were chosen on the
/// NAB corpus (see `docs/ANOMALY.md`) and they are meant for re-running that
/// benchmark, not for per-signal adjustment.
///
/// ```
/// use dwcp_telemetry::anomaly::{DetectorConfig, Direction};
///
/// let detector = DetectorConfig::new()
///     .with_window(512)
///     .with_warning(3.5)
///     .with_critical(6.0)
///     .with_direction(Direction::Up)
///     .build()
///     .expect("valid configuration");
/// assert_eq!(detector.config().window(), 512);
/// assert_eq!(detector.config().warning(), 3.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    window: usize,
    warning: f64,
    critical: f64,
    clear: f64,
    direction: Direction,
    min_samples: usize,
    cooldown: usize,
    max_incident: Option<usize>,
    min_scale: f64,
    relative_scale_floor: f64,
    baseline_clip: Option<f64>,
    smoothing: f64,
    surprise: f64,
    gate_bypass: Option<f64>,
    record_factor: Option<f64>,
    surprise_short: usize,
    surprise_half_life: usize,
    recompute_every: Option<usize>,
    season: Option<usize>,
    season_weight: f64,
}

/// Read accessors, one per setting; the `with_*` setters change them.
impl DetectorConfig {
    /// Baseline ring capacity in samples. Default [`DEFAULT_WINDOW`] (1024):
    /// 8 KiB of ring. Longer windows give steadier statistics but adapt
    /// more slowly to a new normal.
    #[must_use]
    #[inline]
    pub fn window(&self) -> usize {
        self.window
    }

    /// |z| at or above which a sample is anomalous (severity warning).
    /// Default 3.
    #[must_use]
    #[inline]
    pub fn warning(&self) -> f64 {
        self.warning
    }

    /// |z| at or above which an anomaly is critical. Default 5.
    #[must_use]
    #[inline]
    pub fn critical(&self) -> f64 {
        self.critical
    }

    /// Hysteresis: an incident ends once |z| falls below this level (or
    /// after [`max_incident`](Self::max_incident) samples). Must be <=
    /// `warning`. Default 1.
    #[must_use]
    #[inline]
    pub fn clear(&self) -> f64 {
        self.clear
    }

    /// Which deviations count. Default [`Direction::Both`].
    #[must_use]
    #[inline]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Samples in the baseline before any sample is scored (warm-up).
    /// Default 288 (a day of 5-minute samples: a baseline should span a
    /// daily cycle before it judges one).
    #[must_use]
    #[inline]
    pub fn min_samples(&self) -> usize {
        self.min_samples
    }

    /// After an alert, no new alert for this many samples, even if the
    /// incident clears and a new one starts. Default 144.
    #[must_use]
    #[inline]
    pub fn cooldown(&self) -> usize {
        self.cooldown
    }

    /// Longest incident, in samples since its alert: after that the incident
    /// is considered over even if |z| never fell below `clear` (a lasting
    /// level shift that the baseline has not absorbed yet), so a deviation
    /// that is still there, and still surprising, may alert again once the
    /// cooldown is over. `None`: incidents end only below `clear`.
    /// Default `Some(144)`.
    #[must_use]
    #[inline]
    pub fn max_incident(&self) -> Option<usize> {
        self.max_incident
    }

    /// Absolute floor on the scale (standard deviation). Default 1e-9.
    ///
    /// Tuning only: a numerical guard, not a per-signal setting.
    #[must_use]
    #[inline]
    pub fn min_scale(&self) -> f64 {
        self.min_scale
    }

    /// Relative floor on the scale, as a fraction of |baseline mean|.
    /// Default 0.01 (a 1% move of a flat series is not an anomaly by itself).
    ///
    /// Tuning only: chosen on the NAB corpus.
    #[must_use]
    #[inline]
    pub fn relative_scale_floor(&self) -> f64 {
        self.relative_scale_floor
    }

    /// Clamp applied to every sample before it enters the baseline:
    /// `mean ± baseline_clip * scale`, so an incident cannot widen the
    /// baseline it is measured against much, yet a lasting level shift is
    /// still learned. `None` inserts raw values. Default `None`.
    ///
    /// Tuning only: off by default, kept for benchmark experiments.
    #[must_use]
    #[inline]
    pub fn baseline_clip(&self) -> Option<f64> {
        self.baseline_clip
    }

    /// Exponential smoothing of the tested value (an EWMA control chart):
    /// `s = alpha * x + (1 - alpha) * s`, and `z = (s - mean) / (scale *
    /// sqrt(alpha / (2 - alpha)))`, the standard error of an EWMA of
    /// independent samples. The baseline still stores raw samples. A lone
    /// spike then counts for less, and a small lasting shift for more, than
    /// with raw samples. `1.0` tests raw samples. Default 0.5.
    ///
    /// Tuning only: chosen on the NAB corpus.
    #[must_use]
    #[inline]
    pub fn smoothing(&self) -> f64 {
        self.smoothing
    }

    /// Surprise gate: a sample alerts only if, in addition, the mean |z| of
    /// the last [`surprise_short`](Self::surprise_short) samples is at least
    /// `surprise` standard deviations above the long-run mean of |z|
    /// (half-life [`surprise_half_life`](Self::surprise_half_life)).
    /// Deviations that are routine for this series then stop paging. `0`
    /// disables the gate. Default 1.5.
    ///
    /// Tuning only: chosen on the NAB corpus (raise [`warning`](Self::warning)
    /// for fewer pages on one signal).
    #[must_use]
    #[inline]
    pub fn surprise(&self) -> f64 {
        self.surprise
    }

    /// |z| at or above which a sample alerts even if the surprise gate
    /// disagrees: a safety net so that an enormous excursion always pages.
    /// `None`: never bypass. Must be >= `warning`. Default `Some(20.0)`.
    ///
    /// Tuning only.
    #[must_use]
    #[inline]
    pub fn gate_bypass(&self) -> Option<f64> {
        self.gate_bypass
    }

    /// Record bypass of the surprise gate: a sample whose deviation exceeds
    /// `record_factor` times the largest deviation this detector has scored
    /// recently passes the gate even if the recent run of |z| is not
    /// unusual. No routine of the series explains a deviation half again as
    /// large as any it has produced, so a lone spike on a spiky series can
    /// still page. The record decays with the gate's half-life
    /// ([`surprise_half_life`](Self::surprise_half_life)), so one huge
    /// incident does not mute the rule for ever, and never falls below
    /// `warning`, so the bypass always needs at least `record_factor *
    /// warning`. `None`: no record bypass. Must be >= 1. Default `Some(1.5)`.
    ///
    /// Tuning only: chosen on the NAB corpus.
    #[must_use]
    #[inline]
    pub fn record_factor(&self) -> Option<f64> {
        self.record_factor
    }

    /// Samples averaged by the surprise gate, 1..=32. Default 16.
    ///
    /// Tuning only.
    #[must_use]
    #[inline]
    pub fn surprise_short(&self) -> usize {
        self.surprise_short
    }

    /// Half-life of the surprise gate's long-run statistics (and of the
    /// record), in samples. Default 2880.
    ///
    /// Tuning only.
    #[must_use]
    #[inline]
    pub fn surprise_half_life(&self) -> usize {
        self.surprise_half_life
    }

    /// Pushes between exact recomputes of mean and variance. `None`: the
    /// window (O(1) amortised). Default `None`.
    ///
    /// Tuning only: trades drift against cost, not detection.
    #[must_use]
    #[inline]
    pub fn recompute_every(&self) -> Option<usize> {
        self.recompute_every
    }

    /// Seasonal channel: period in samples (`None` = off). Each sample is
    /// also scored by the z-score of its seasonal residual `x[t] - x[t -
    /// season]` against an exponentially weighted mean and variance of past
    /// residuals (the older value is read from the baseline ring, so the
    /// channel is inactive when the period is not shorter than the window).
    /// A past sample that was itself anomalous is not used as a reference.
    /// The deviation is the larger of the plain and the weighted seasonal
    /// one. Default `Some(288)`: one day of 5-minute samples; see
    /// [`for_sample_interval`](Self::for_sample_interval) for other cadences.
    #[must_use]
    #[inline]
    pub fn season(&self) -> Option<usize> {
        self.season
    }

    /// Weight of the seasonal z-score against the plain one, in `(0, 1]`:
    /// the seasonal deviation counts as `season_weight * z_seasonal`, i.e.
    /// it needs `warning / season_weight` standard deviations to alert.
    /// Default 0.6 (a seasonal residual needs 5σ at `warning = 3`).
    ///
    /// Tuning only: chosen on the NAB corpus among 1, 0.8, 0.7, 0.65 and
    /// 0.6, see `docs/ANOMALY.md`.
    #[must_use]
    #[inline]
    pub fn season_weight(&self) -> f64 {
        self.season_weight
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            warning: 3.0,
            critical: 5.0,
            clear: 1.0,
            direction: Direction::Both,
            min_samples: 288,
            cooldown: 144,
            max_incident: Some(144),
            min_scale: 1e-9,
            relative_scale_floor: 0.01,
            baseline_clip: None,
            smoothing: 0.5,
            surprise: 1.5,
            gate_bypass: Some(20.0),
            record_factor: Some(1.5),
            surprise_short: 16,
            surprise_half_life: 2880,
            recompute_every: None,
            season: Some(288),
            season_weight: 0.6,
        }
    }
}

impl DetectorConfig {
    /// The default configuration.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The default configuration adapted to samples taken every `interval`
    /// (the defaults assume 5 minutes):
    ///
    /// - the seasonal period is one day of samples when at least 4 and fewer
    ///   than the default window (1024) fit in a day: 288 at 5 minutes, 48
    ///   at 30 minutes, 24 hourly; otherwise (every minute or faster, or
    ///   slower than every 6 hours) the seasonal channel is off;
    /// - the warm-up spans that period, or 288 samples without one.
    ///
    /// Counts in samples (cooldown, incident length, gate half-life) keep
    /// their defaults. Set the window first if you change it: call
    /// [`with_window`](Self::with_window) and [`with_season`](Self::with_season)
    /// yourself afterwards for a window other than the default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dwcp_telemetry::anomaly::DetectorConfig;
    ///
    /// let half_hourly = DetectorConfig::for_sample_interval(Duration::from_secs(1800)).unwrap();
    /// assert_eq!((half_hourly.season(), half_hourly.min_samples()), (Some(48), 48));
    /// let every_second = DetectorConfig::for_sample_interval(Duration::from_secs(1)).unwrap();
    /// assert_eq!((every_second.season(), every_second.min_samples()), (None, 288));
    /// assert!(DetectorConfig::for_sample_interval(Duration::ZERO).is_err());
    /// ```
    pub fn for_sample_interval(interval: std::time::Duration) -> Result<Self, ConfigError> {
        const DAY_NS: u128 = 86_400 * 1_000_000_000;
        const MIN_SEASON: usize = 4;
        let ns = interval.as_nanos();
        if ns == 0 {
            return Err(ConfigError::ZeroSampleInterval);
        }
        // Rounded to the nearest whole number of samples per day.
        let per_day = usize::try_from((DAY_NS + ns / 2) / ns).unwrap_or(usize::MAX);
        let config = Self::default();
        Ok(if (MIN_SEASON..config.window).contains(&per_day) {
            config.with_season(Some(per_day)).with_min_samples(per_day)
        } else {
            config.with_season(None).with_min_samples(288)
        })
    }

    /// Sets the baseline window (ring capacity, samples).
    #[must_use]
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window;
        self
    }

    /// Sets the warning threshold (standard deviations).
    #[must_use]
    pub fn with_warning(mut self, sigmas: f64) -> Self {
        self.warning = sigmas;
        self
    }

    /// Sets the critical threshold (standard deviations).
    #[must_use]
    pub fn with_critical(mut self, sigmas: f64) -> Self {
        self.critical = sigmas;
        self
    }

    /// Sets the hysteresis clear level (standard deviations).
    #[must_use]
    pub fn with_clear(mut self, sigmas: f64) -> Self {
        self.clear = sigmas;
        self
    }

    /// Sets which deviations count.
    #[must_use]
    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets the warm-up (samples before any alert).
    #[must_use]
    pub fn with_min_samples(mut self, samples: usize) -> Self {
        self.min_samples = samples;
        self
    }

    /// Sets the cooldown after an alert (samples).
    #[must_use]
    pub fn with_cooldown(mut self, samples: usize) -> Self {
        self.cooldown = samples;
        self
    }

    /// Sets the longest incident (`None` = until |z| < `clear`).
    #[must_use]
    pub fn with_max_incident(mut self, samples: Option<usize>) -> Self {
        self.max_incident = samples;
        self
    }

    /// Sets the absolute scale floor. Tuning only, see [`min_scale`](Self::min_scale).
    #[must_use]
    pub fn with_min_scale(mut self, floor: f64) -> Self {
        self.min_scale = floor;
        self
    }

    /// Sets the scale floor relative to |mean|. Tuning only, see
    /// [`relative_scale_floor`](Self::relative_scale_floor).
    #[must_use]
    pub fn with_relative_scale_floor(mut self, fraction: f64) -> Self {
        self.relative_scale_floor = fraction;
        self
    }

    /// Sets (or disables, with `None`) the clamp applied to samples before
    /// they enter the baseline. Tuning only, see
    /// [`baseline_clip`](Self::baseline_clip).
    #[must_use]
    pub fn with_baseline_clip(mut self, sigmas: Option<f64>) -> Self {
        self.baseline_clip = sigmas;
        self
    }

    /// Sets the exponential smoothing factor of the tested value (`1.0` =
    /// off). Tuning only, see [`smoothing`](Self::smoothing).
    #[must_use]
    pub fn with_smoothing(mut self, alpha: f64) -> Self {
        self.smoothing = alpha;
        self
    }

    /// Sets the surprise gate: threshold (`0` = off), short run length
    /// (1..=32) and long-run half-life in samples. Tuning only, see
    /// [`surprise`](Self::surprise).
    #[must_use]
    pub fn with_surprise(mut self, threshold: f64, short: usize, half_life: usize) -> Self {
        self.surprise = threshold;
        self.surprise_short = short;
        self.surprise_half_life = half_life;
        self
    }

    /// Sets the |z| above which the surprise gate is bypassed (`None` =
    /// never). Tuning only, see [`gate_bypass`](Self::gate_bypass).
    #[must_use]
    pub fn with_gate_bypass(mut self, sigmas: Option<f64>) -> Self {
        self.gate_bypass = sigmas;
        self
    }

    /// Sets the record bypass factor (`None` = no record bypass): a
    /// deviation above `factor` times the largest recent one passes the
    /// surprise gate. Tuning only, see [`record_factor`](Self::record_factor).
    #[must_use]
    pub fn with_record_factor(mut self, factor: Option<f64>) -> Self {
        self.record_factor = factor;
        self
    }

    /// Sets the period of the exact recompute (`None` = the window). Tuning
    /// only, see [`recompute_every`](Self::recompute_every).
    #[must_use]
    pub fn with_recompute_every(mut self, pushes: Option<usize>) -> Self {
        self.recompute_every = pushes;
        self
    }

    /// Sets the seasonal period in samples (`None` = no seasonal channel).
    #[must_use]
    pub fn with_season(mut self, period: Option<usize>) -> Self {
        self.season = period;
        self
    }

    /// Sets the seasonal channel's weight, in `(0, 1]`. Tuning only, see
    /// [`season_weight`](Self::season_weight).
    #[must_use]
    pub fn with_season_weight(mut self, weight: f64) -> Self {
        self.season_weight = weight;
        self
    }

    /// Checks the configuration without building a detector.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window < 2 {
            return Err(ConfigError::WindowTooSmall(self.window));
        }
        if self.window > MAX_WINDOW {
            return Err(ConfigError::WindowTooLarge(self.window));
        }
        let positive = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::InvalidThreshold { name, value })
            }
        };
        positive("warning", self.warning)?;
        positive("critical", self.critical)?;
        if let Some(clip) = self.baseline_clip {
            positive("baseline_clip", clip)?;
        }
        if let Some(bypass) = self.gate_bypass {
            positive("gate_bypass", bypass)?;
            if bypass < self.warning {
                return Err(ConfigError::BypassBelowWarning {
                    warning: self.warning,
                    bypass,
                });
            }
        }
        if self.critical < self.warning {
            return Err(ConfigError::CriticalBelowWarning {
                warning: self.warning,
                critical: self.critical,
            });
        }
        if !(self.clear.is_finite() && self.clear >= 0.0 && self.clear <= self.warning) {
            return Err(ConfigError::InvalidClear {
                warning: self.warning,
                clear: self.clear,
            });
        }
        if self.min_samples < 2 || self.min_samples > self.window {
            return Err(ConfigError::InvalidMinSamples {
                window: self.window,
                min_samples: self.min_samples,
            });
        }
        if let Some(f) = self.record_factor {
            if !(f.is_finite() && f >= 1.0) {
                return Err(ConfigError::InvalidRecordFactor(f));
            }
        }
        if self.recompute_every == Some(0) {
            return Err(ConfigError::InvalidRecompute);
        }
        for (name, value) in [
            ("absolute", self.min_scale),
            ("relative", self.relative_scale_floor),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::InvalidScaleFloor { name, value });
            }
        }
        let surprise_ok = self.surprise.is_finite()
            && self.surprise >= 0.0
            && (1..=super::surprise::MAX_SHORT).contains(&self.surprise_short)
            && self.surprise_half_life > 0;
        if !surprise_ok {
            return Err(ConfigError::InvalidSurprise {
                threshold: self.surprise,
                short: self.surprise_short,
                half_life: self.surprise_half_life,
            });
        }
        if !(self.smoothing.is_finite() && self.smoothing > 0.0 && self.smoothing <= 1.0) {
            return Err(ConfigError::InvalidSmoothing(self.smoothing));
        }
        if !(self.season_weight.is_finite()
            && self.season_weight > 0.0
            && self.season_weight <= 1.0)
        {
            return Err(ConfigError::InvalidSeasonWeight(self.season_weight));
        }
        if let Some(p) = self.season {
            if p == 0 {
                return Err(ConfigError::InvalidSeason);
            }
        }
        Ok(())
    }

    /// Validates the configuration and builds a detector. This is the only
    /// allocation the detector ever makes.
    pub fn build(self) -> Result<Detector, ConfigError> {
        self.validate()?;
        Ok(Detector::from_valid_config(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_config_default_is_valid() {
        let d = DetectorConfig::default().build().unwrap();
        assert_eq!(d.config().window, 1024);
        assert_eq!(d.config().warning, 3.0);
    }

    #[test]
    fn anomaly_config_for_sample_interval() {
        use std::time::Duration;
        let at = |secs: u64| {
            let c = DetectorConfig::for_sample_interval(Duration::from_secs(secs)).unwrap();
            c.validate().unwrap();
            (c.season, c.min_samples)
        };
        assert_eq!(at(300), (Some(288), 288)); // the defaults' cadence
        assert_eq!(
            DetectorConfig::for_sample_interval(Duration::from_secs(300)).unwrap(),
            DetectorConfig::default()
        );
        assert_eq!(at(1800), (Some(48), 48));
        assert_eq!(at(3600), (Some(24), 24));
        assert_eq!(at(6 * 3600), (Some(4), 4));
        assert_eq!(at(7 * 3600), (None, 288)); // 3.4 samples a day: too few for a season
        assert_eq!(at(90), (Some(960), 960));
        assert_eq!(at(60), (None, 288)); // 1440 a day: longer than the window
        assert_eq!(at(1), (None, 288));
        // 7 minutes: 205.7 a day, rounded.
        assert_eq!(at(420), (Some(206), 206));
        // Sub-second and huge intervals do not overflow.
        let fast = DetectorConfig::for_sample_interval(Duration::from_nanos(1)).unwrap();
        assert_eq!(fast.season, None);
        let slow = DetectorConfig::for_sample_interval(Duration::MAX).unwrap();
        assert_eq!(slow.season, None);
    }

    #[test]
    fn anomaly_config_errors() {
        let c = DetectorConfig::new;
        assert_eq!(
            c().with_window(0).build().unwrap_err(),
            ConfigError::WindowTooSmall(0)
        );
        assert_eq!(
            c().with_window(MAX_WINDOW + 1).build().unwrap_err(),
            ConfigError::WindowTooLarge(MAX_WINDOW + 1)
        );
        assert_eq!(
            c().with_warning(0.0).build().unwrap_err(),
            ConfigError::InvalidThreshold {
                name: "warning",
                value: 0.0
            }
        );
        assert!(matches!(
            c().with_warning(f64::NAN).build().unwrap_err(),
            ConfigError::InvalidThreshold {
                name: "warning",
                ..
            }
        ));
        assert_eq!(
            c().with_critical(-1.0).build().unwrap_err(),
            ConfigError::InvalidThreshold {
                name: "critical",
                value: -1.0
            }
        );
        assert_eq!(
            c().with_warning(4.0)
                .with_critical(3.0)
                .build()
                .unwrap_err(),
            ConfigError::CriticalBelowWarning {
                warning: 4.0,
                critical: 3.0
            }
        );
        assert_eq!(
            c().with_clear(3.5).build().unwrap_err(),
            ConfigError::InvalidClear {
                warning: 3.0,
                clear: 3.5
            }
        );
        assert_eq!(
            c().with_min_samples(1).build().unwrap_err(),
            ConfigError::InvalidMinSamples {
                window: 1024,
                min_samples: 1
            }
        );
        assert_eq!(
            c().with_window(16)
                .with_min_samples(17)
                .build()
                .unwrap_err(),
            ConfigError::InvalidMinSamples {
                window: 16,
                min_samples: 17
            }
        );
        assert_eq!(
            c().with_gate_bypass(Some(2.0)).build().unwrap_err(),
            ConfigError::BypassBelowWarning {
                warning: 3.0,
                bypass: 2.0
            }
        );
        assert!(c().with_gate_bypass(None).build().is_ok());
        assert_eq!(
            c().with_record_factor(Some(0.5)).build().unwrap_err(),
            ConfigError::InvalidRecordFactor(0.5)
        );
        assert!(matches!(
            c().with_record_factor(Some(f64::NAN)).build().unwrap_err(),
            ConfigError::InvalidRecordFactor(v) if v.is_nan()
        ));
        assert!(c().with_record_factor(None).build().is_ok());
        assert_eq!(
            DetectorConfig::for_sample_interval(std::time::Duration::ZERO).unwrap_err(),
            ConfigError::ZeroSampleInterval
        );
        assert!(c().with_record_factor(Some(1.0)).build().is_ok());
        assert_eq!(
            c().with_recompute_every(Some(0)).build().unwrap_err(),
            ConfigError::InvalidRecompute
        );
        assert_eq!(
            c().with_min_scale(-1.0).build().unwrap_err(),
            ConfigError::InvalidScaleFloor {
                name: "absolute",
                value: -1.0
            }
        );
        assert!(matches!(
            c().with_relative_scale_floor(f64::INFINITY)
                .build()
                .unwrap_err(),
            ConfigError::InvalidScaleFloor {
                name: "relative",
                ..
            }
        ));
        assert_eq!(
            c().with_smoothing(0.0).build().unwrap_err(),
            ConfigError::InvalidSmoothing(0.0)
        );
        assert_eq!(
            c().with_baseline_clip(Some(0.0)).build().unwrap_err(),
            ConfigError::InvalidThreshold {
                name: "baseline_clip",
                value: 0.0
            }
        );
        let msg = c().with_window(1).build().unwrap_err().to_string();
        assert_eq!(msg, "window must hold at least 2 samples, got 1");
    }
}
