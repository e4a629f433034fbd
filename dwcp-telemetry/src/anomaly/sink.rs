//! Wiring: named detectors that report to observers (callbacks, `tracing`).

use std::fmt;
use std::sync::Arc;

use super::zscore::{Anomaly, Detector};

/// Receives what a [`WatchedSignal`] sees. Implement it to plug detections
/// into counters (`dwcp_anomaly_detections_total{metric, severity}`), a
/// z-score gauge, a pager, ...
///
/// Implementations must be cheap and must not block: they run on the
/// thread that feeds the detector.
pub trait AnomalyObserver: Send + Sync {
    /// Called once per alert.
    fn on_anomaly(&self, metric: &str, anomaly: &Anomaly);

    /// Called with the z-score of every sample scored (not while warming,
    /// not for invalid samples). The default does nothing.
    fn on_z(&self, metric: &str, z: f64) {
        let _ = (metric, z);
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl AnomalyObserver for NoopObserver {
    fn on_anomaly(&self, _metric: &str, _anomaly: &Anomaly) {}
}

/// An observer that emits one `tracing::warn!` event per alert, with target
/// `dwcp_telemetry::anomaly` and fields `metric`, `severity`, `z`, `value`,
/// `direction`, `baseline_mean`, `baseline_scale`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

impl AnomalyObserver for TracingObserver {
    fn on_anomaly(&self, metric: &str, a: &Anomaly) {
        tracing::warn!(
            target: "dwcp_telemetry::anomaly",
            metric,
            severity = a.severity.as_str(),
            z = a.z,
            value = a.value,
            direction = a.direction.as_str(),
            baseline_mean = a.baseline_mean,
            baseline_scale = a.baseline_scale,
            "anomaly detected"
        );
    }
}

/// An observer calling a user closure for each alert.
pub struct FnObserver<F>(pub F);

impl<F> fmt::Debug for FnObserver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnObserver(..)")
    }
}

impl<F> AnomalyObserver for FnObserver<F>
where
    F: Fn(&str, &Anomaly) + Send + Sync,
{
    fn on_anomaly(&self, metric: &str, anomaly: &Anomaly) {
        (self.0)(metric, anomaly);
    }
}

/// A [`Detector`] watching one named signal.
///
/// On each alert it emits a `tracing` warning (unless disabled with
/// [`without_tracing`](Self::without_tracing)) and calls every registered
/// observer; every scored sample's z-score is passed to
/// [`AnomalyObserver::on_z`]. Each `WatchedSignal` owns its detector: feed it
/// from one place (e.g. the task that takes interval snapshots), no lock is
/// involved.
pub struct WatchedSignal {
    metric: Arc<str>,
    detector: Detector,
    observers: Vec<Arc<dyn AnomalyObserver>>,
    tracing: bool,
}

impl fmt::Debug for WatchedSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedSignal")
            .field("metric", &self.metric)
            .field("detector", &self.detector)
            .field("observers", &self.observers.len())
            .field("tracing", &self.tracing)
            .finish()
    }
}

impl WatchedSignal {
    /// Watches `metric` with `detector`; tracing events on, no observers.
    #[must_use]
    pub fn new(metric: impl Into<Arc<str>>, detector: Detector) -> Self {
        Self {
            metric: metric.into(),
            detector,
            observers: Vec::new(),
            tracing: true,
        }
    }

    /// Adds an observer.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn AnomalyObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Adds a closure called with `(metric, anomaly)` on each alert.
    #[must_use]
    pub fn with_callback<F>(self, callback: F) -> Self
    where
        F: Fn(&str, &Anomaly) + Send + Sync + 'static,
    {
        self.with_observer(Arc::new(FnObserver(callback)))
    }

    /// Turns off the built-in `tracing::warn!` event.
    #[must_use]
    pub fn without_tracing(mut self) -> Self {
        self.tracing = false;
        self
    }

    /// The watched metric's name.
    #[must_use]
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The wrapped detector.
    #[must_use]
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Feeds one sample; on an alert, notifies the observers and returns it.
    pub fn observe(&mut self, value: f64) -> Option<Anomaly> {
        let alert = self.detector.observe(value);
        if self.detector.last_was_scored() && !self.observers.is_empty() {
            let z = self.detector.last_z();
            for o in &self.observers {
                o.on_z(&self.metric, z);
            }
        }
        if let Some(a) = &alert {
            if self.tracing {
                TracingObserver.on_anomaly(&self.metric, a);
            }
            for o in &self.observers {
                o.on_anomaly(&self.metric, a);
            }
        }
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::{DetectorConfig, Severity};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        alerts: Mutex<Vec<(String, Severity)>>,
        zs: AtomicU64,
    }

    impl AnomalyObserver for Recorder {
        fn on_anomaly(&self, metric: &str, a: &Anomaly) {
            self.alerts
                .lock()
                .unwrap()
                .push((metric.to_owned(), a.severity));
        }
        fn on_z(&self, _metric: &str, _z: f64) {
            self.zs.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn anomaly_watched_signal_notifies_observers_and_callback() {
        let rec = Arc::new(Recorder::default());
        let calls = Arc::new(AtomicU64::new(0));
        let calls2 = Arc::clone(&calls);
        let det = DetectorConfig::new()
            .with_window(16)
            .with_min_samples(4)
            .build()
            .unwrap();
        let mut w = WatchedSignal::new("p99", det)
            .with_observer(rec.clone())
            .with_callback(move |m, a| {
                assert_eq!(m, "p99");
                assert!(a.z > 5.0);
                calls2.fetch_add(1, Ordering::Relaxed);
            });
        assert_eq!(w.metric(), "p99");
        for x in [1.0, 2.0, 1.0, 2.0, 1.0, 2.0] {
            assert!(w.observe(x).is_none());
        }
        w.observe(f64::NAN);
        let a = w.observe(50.0).expect("alert");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(
            *rec.alerts.lock().unwrap(),
            vec![("p99".to_owned(), Severity::Critical)]
        );
        // 4 warm-up samples are not scored, 2 normal + 1 anomalous are; NaN is not.
        assert_eq!(rec.zs.load(Ordering::Relaxed), 3);
        assert_eq!(w.detector().snapshot().invalid, 1);
        let dbg = format!("{w:?}");
        assert!(dbg.contains("p99"));
    }
}
