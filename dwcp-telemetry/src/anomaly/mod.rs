//! Circular-buffer z-score anomaly detection.
//!
//! A [`Detector`] keeps the last `window` samples of one signal in a
//! fixed-capacity ring ([`RollingWindow`]) with a rolling mean and variance,
//! and scores each new sample by its z-score against them. Thresholds,
//! direction, warm-up, hysteresis, cooldown and scale floors are set with a
//! [`DetectorConfig`]. A [`WatchedSignal`] wraps a detector with a metric name
//! and reports alerts and z-scores to an [`AnomalyObserver`] (a callback, a
//! `tracing` event, or the registry glue).
//!
//! See `docs/ANOMALY.md` for the design and the results measured on the
//! Numenta Anomaly Benchmark (the scoring harness is test support code in the
//! repository, not part of this crate).
//!
//! ```
//! use dwcp_telemetry::anomaly::{DetectorConfig, Direction, WatchedSignal};
//!
//! let detector = DetectorConfig::new()
//!     .with_direction(Direction::Up)
//!     .build()?;
//! let mut p99 = WatchedSignal::new("http_request_seconds_p99", detector)
//!     .with_callback(|metric, a| eprintln!("{metric}: {:?} z={:.1}", a.severity, a.z));
//! for _ in 0..100 {
//!     p99.observe(0.120);
//! }
//! p99.observe(0.121);
//! assert_eq!(p99.detector().snapshot().alerts, 0);
//! # Ok::<(), dwcp_telemetry::anomaly::ConfigError>(())
//! ```

mod config;
mod ring;
mod sink;
mod surprise;
mod wiring;
mod zscore;

pub use config::{ConfigError, DetectorConfig, DEFAULT_WINDOW, MAX_WINDOW};
pub use ring::RollingWindow;
pub use sink::{AnomalyObserver, FnObserver, NoopObserver, TracingObserver, WatchedSignal};
pub use wiring::{
    AnomalyMonitor, MonitorHandle, RegistryObserver, Statistic, WatchError, DETECTIONS_METRIC,
    INVALID_METRIC, ZSCORE_METRIC,
};
pub use zscore::{Anomaly, Detector, DetectorState, Direction, Severity, Snapshot};
