//! Registry glue: feed detectors from histograms (via interval snapshots), gauges or plain
//! values, and report detections as metrics.
//!
//! Every alert increments `dwcp_anomaly_detections_total{metric, severity, version}`, every
//! scored sample sets the gauge `dwcp_anomaly_zscore{metric, version}`, a `tracing` warning is
//! emitted, and any user callback runs. Each watch owns its detector and its interval baseline;
//! there is no global lock.
//!
//! ```
//! use dwcp_telemetry::anomaly::{AnomalyMonitor, DetectorConfig, Direction, Statistic};
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let latency = registry.histogram("dwcp_request_duration_seconds", "").register()?.handle();
//! let mut monitor = AnomalyMonitor::new(&registry)?;
//! let detector = DetectorConfig::new().with_window(64).with_min_samples(8).with_direction(Direction::Up).build()?;
//! monitor.watch_histogram("dwcp_request_duration_seconds:p99", &latency, Statistic::Quantile(0.99), detector)?;
//!
//! for interval in 0..40 {
//!     let spike = interval == 39;
//!     for i in 0..100u64 {
//!         latency.record(if spike { 80_000_000 } else { 2_000_000 + (i % 7) * 10_000 });
//!     }
//!     monitor.tick(); // once per interval, e.g. every 10 s
//! }
//! assert_eq!(monitor.detections("dwcp_request_duration_seconds:p99"), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::sink::{AnomalyObserver, WatchedSignal};
use super::zscore::{Anomaly, Detector, Severity};
use crate::histogram::Snapshot;
use crate::metric::Interval;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::{CounterFamily, GaugeFamily, Registry};
use crate::RegistrationError;

/// Name of the detections counter.
pub const DETECTIONS_METRIC: &str = "dwcp_anomaly_detections_total";
/// Name of the z-score gauge.
pub const ZSCORE_METRIC: &str = "dwcp_anomaly_zscore";
/// Name of the self-metric counting non-finite samples a watch ignored.
pub const INVALID_METRIC: &str = "dwcp_telemetry_anomaly_invalid_samples_total";

/// Which number a histogram watch takes from each interval snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// A quantile, e.g. `Quantile(0.99)` for the interval's p99.
    Quantile(f64),
    /// The interval's mean.
    Mean,
    /// The interval's sample count (a throughput signal).
    Count,
    /// The interval's maximum.
    Max,
}

impl Statistic {
    /// The statistic of one snapshot, in stored units (ns for durations).
    pub fn of(self, s: &Snapshot) -> f64 {
        match self {
            Statistic::Quantile(q) => s.quantile(q) as f64,
            Statistic::Mean => s.mean(),
            Statistic::Count => s.count() as f64,
            Statistic::Max => s.max() as f64,
        }
    }
}

/// Reports one signal's detections and z-scores into the registry through bound handles.
#[derive(Debug, Clone)]
pub struct RegistryObserver {
    warning: Counter,
    critical: Counter,
    zscore: Gauge,
    invalid: Counter,
}

impl RegistryObserver {
    fn new(families: &Families, metric: &str) -> Self {
        RegistryObserver {
            warning: families
                .detections
                .with_labels_or_overflow(&[metric, Severity::Warning.as_str()]),
            critical: families
                .detections
                .with_labels_or_overflow(&[metric, Severity::Critical.as_str()]),
            zscore: families.zscore.with_labels_or_overflow(&[metric]),
            invalid: families.invalid.with_labels_or_overflow(&[metric]),
        }
    }
}

impl AnomalyObserver for RegistryObserver {
    fn on_anomaly(&self, _metric: &str, anomaly: &Anomaly) {
        match anomaly.severity {
            Severity::Warning => self.warning.inc(),
            Severity::Critical => self.critical.inc(),
        }
    }

    fn on_z(&self, _metric: &str, z: f64) {
        self.zscore.set(z);
    }
}

#[derive(Debug, Clone)]
struct Families {
    detections: CounterFamily,
    zscore: GaugeFamily,
    invalid: CounterFamily,
}

enum Source {
    Histogram {
        interval: Interval,
        statistic: Statistic,
    },
    Gauge(Gauge),
    Manual,
}

/// Why a watch could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Another watch already reports under this name.
    #[error(
        "a watch named {0:?} already exists in this monitor; give each watched signal its own name"
    )]
    Duplicate(String),
}

struct Watch {
    source: Source,
    signal: WatchedSignal,
    observer: RegistryObserver,
}

/// A set of watched signals that report into one registry. Call [`AnomalyMonitor::tick`] once
/// per interval (or [`AnomalyMonitor::spawn`] a thread that does).
pub struct AnomalyMonitor {
    families: Families,
    watches: Vec<Watch>,
    callbacks: Vec<Arc<dyn AnomalyObserver>>,
}

impl fmt::Debug for AnomalyMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnomalyMonitor")
            .field(
                "watches",
                &self
                    .watches
                    .iter()
                    .map(|w| w.signal.metric())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl AnomalyMonitor {
    /// A monitor registering `dwcp_anomaly_detections_total{metric, severity}`,
    /// `dwcp_anomaly_zscore{metric}` and the self-metric
    /// `dwcp_telemetry_anomaly_invalid_samples_total{metric}` (NaN or infinite samples a watch
    /// ignored: a gauge set to NaN, say) in `registry`; all carry `version` too.
    pub fn new(registry: &Registry) -> Result<Self, RegistrationError> {
        let detections = registry
            .counter(
                DETECTIONS_METRIC,
                "Anomalies detected by the z-score detectors, by watched signal and severity.",
            )
            .dynamic_labels(["metric", "severity"])
            .register()?;
        let zscore = registry
            .gauge(
                ZSCORE_METRIC,
                "Latest z-score of each watched signal against its rolling baseline.",
            )
            .dynamic_labels(["metric"])
            .register()?;
        let invalid = registry
            .counter(
                INVALID_METRIC,
                "Non-finite samples (NaN, +Inf, -Inf) fed to an anomaly detector and ignored.",
            )
            .dynamic_labels(["metric"])
            .library_owned()
            .register()?;
        Ok(AnomalyMonitor {
            families: Families {
                detections,
                zscore,
                invalid,
            },
            watches: Vec::new(),
            callbacks: Vec::new(),
        })
    }

    /// Call `callback(metric, anomaly)` on every alert of every watch (added before or after).
    pub fn on_anomaly<F>(&mut self, callback: F)
    where
        F: Fn(&str, &Anomaly) + Send + Sync + 'static,
    {
        self.callbacks
            .push(Arc::new(super::sink::FnObserver(callback)));
    }

    fn push(&mut self, metric: &str, source: Source, detector: Detector) -> Result<(), WatchError> {
        if self.watches.iter().any(|w| w.signal.metric() == metric) {
            return Err(WatchError::Duplicate(metric.to_owned()));
        }
        let observer = RegistryObserver::new(&self.families, metric);
        let signal = WatchedSignal::new(metric, detector);
        self.watches.push(Watch {
            source,
            signal,
            observer,
        });
        Ok(())
    }

    /// Watch a statistic of a histogram's per-interval snapshots. Intervals with no samples
    /// are skipped (an idle service is not an anomaly). The name becomes the `metric` label.
    pub fn watch_histogram(
        &mut self,
        metric: &str,
        histogram: &Histogram,
        statistic: Statistic,
        detector: Detector,
    ) -> Result<(), WatchError> {
        self.push(
            metric,
            Source::Histogram {
                interval: histogram.interval(),
                statistic,
            },
            detector,
        )
    }

    /// Watch a gauge's value, sampled at each tick.
    pub fn watch_gauge(
        &mut self,
        metric: &str,
        gauge: &Gauge,
        detector: Detector,
    ) -> Result<(), WatchError> {
        self.push(metric, Source::Gauge(gauge.clone()), detector)
    }

    /// Sample every watch once; returns the alerts raised, as `(metric, anomaly)`.
    pub fn tick(&mut self) -> Vec<(String, Anomaly)> {
        let mut alerts = Vec::new();
        for w in &mut self.watches {
            let value = match &mut w.source {
                Source::Histogram {
                    interval,
                    statistic,
                } => {
                    let delta = interval.next_delta();
                    if delta.is_empty() {
                        continue;
                    }
                    statistic.of(&delta)
                }
                Source::Gauge(g) => g.get(),
                Source::Manual => continue,
            };
            if let Some(a) = Self::feed(w, &self.callbacks, value) {
                alerts.push((w.signal.metric().to_owned(), a));
            }
        }
        alerts
    }

    /// Feed a plain value to a watch added with [`AnomalyMonitor::watch_values`].
    pub fn observe(&mut self, metric: &str, value: f64) -> Option<Anomaly> {
        let callbacks = &self.callbacks;
        let w = self
            .watches
            .iter_mut()
            .find(|w| w.signal.metric() == metric)?;
        Self::feed(w, callbacks, value)
    }

    /// Add a watch fed by hand with [`AnomalyMonitor::observe`] (it is skipped by `tick`).
    pub fn watch_values(&mut self, metric: &str, detector: Detector) -> Result<(), WatchError> {
        self.push(metric, Source::Manual, detector)
    }

    fn feed(w: &mut Watch, callbacks: &[Arc<dyn AnomalyObserver>], value: f64) -> Option<Anomaly> {
        if !value.is_finite() {
            // The detector counts and ignores it too; this makes it visible on `/metrics`.
            w.observer.invalid.inc();
        }
        let alert = w.signal.observe(value);
        if w.signal.detector().last_was_scored() {
            w.observer
                .on_z(w.signal.metric(), w.signal.detector().last_z());
        }
        if let Some(a) = &alert {
            w.observer.on_anomaly(w.signal.metric(), a);
            for c in callbacks {
                c.on_anomaly(w.signal.metric(), a);
            }
        }
        alert
    }

    /// Detections counted so far for `metric` (both severities).
    pub fn detections(&self, metric: &str) -> u64 {
        self.watches
            .iter()
            .find(|w| w.signal.metric() == metric)
            .map_or(0, |w| w.observer.warning.get() + w.observer.critical.get())
    }

    /// The detector state of a watch, for inspection.
    pub fn detector(&self, metric: &str) -> Option<&Detector> {
        self.watches
            .iter()
            .find(|w| w.signal.metric() == metric)
            .map(|w| w.signal.detector())
    }

    /// Move the monitor to a background thread that ticks every `period` until the returned
    /// handle is stopped or dropped.
    pub fn spawn(mut self, period: Duration) -> std::io::Result<MonitorHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let ticks = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), ticks.clone());
        let thread = std::thread::Builder::new()
            .name("dwcp-anomaly".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::park_timeout(period);
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    self.tick();
                    count.fetch_add(1, Ordering::Release);
                }
            })?;
        Ok(MonitorHandle {
            stop,
            ticks,
            thread: Some(thread),
        })
    }
}

/// Stops a spawned [`AnomalyMonitor`] when dropped.
#[derive(Debug)]
pub struct MonitorHandle {
    stop: Arc<AtomicBool>,
    ticks: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl MonitorHandle {
    /// How many ticks the background thread has completed.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Acquire)
    }

    /// Stop the thread and wait for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
