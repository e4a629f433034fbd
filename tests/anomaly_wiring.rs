//! Detectors wired to the registry: counters, z gauge, tracing event, callback.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dwcp_telemetry::anomaly::{
    AnomalyMonitor, DetectorConfig, Direction, Severity, Statistic, WatchError, DETECTIONS_METRIC,
    INVALID_METRIC, ZSCORE_METRIC,
};
use dwcp_telemetry::{Gauge, Registry, Value};

/// A minimal `tracing` subscriber that counts WARN events from the anomaly target.
struct CountWarnings(Arc<AtomicUsize>);

impl tracing::Subscriber for CountWarnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let m = event.metadata();
        if *m.level() == tracing::Level::WARN && m.target() == "dwcp_telemetry::anomaly" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn counter(reg: &Registry, name: &str, labels: &[&str]) -> Option<Value> {
    reg.collect()
        .into_iter()
        .find(|f| f.descriptor.name() == name)?
        .series
        .into_iter()
        .find(|s| {
            s.label_values
                .iter()
                .map(String::as_str)
                .eq(labels.iter().copied())
        })
        .map(|s| s.value)
}

#[test]
fn a_latency_spike_raises_one_alert_everywhere() {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "")
        .register()
        .unwrap()
        .handle();
    let mut monitor = AnomalyMonitor::new(&reg).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    monitor.on_anomaly(move |m, a| sink.lock().unwrap().push((m.to_owned(), a.severity)));
    let det = DetectorConfig::new()
        .with_window(64)
        .with_min_samples(8)
        .with_direction(Direction::Up);
    monitor
        .watch_histogram(
            "p99",
            &lat,
            Statistic::Quantile(0.99),
            det.clone().build().unwrap(),
        )
        .unwrap();
    assert_eq!(
        monitor.watch_histogram("p99", &lat, Statistic::Mean, det.build().unwrap()),
        Err(WatchError::Duplicate("p99".into()))
    );

    let warnings = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::with_default(CountWarnings(warnings.clone()), || {
        for interval in 0..50 {
            // An idle interval is skipped, not scored as zero.
            if interval == 20 {
                assert!(monitor.tick().is_empty());
                continue;
            }
            let spike = (45..48).contains(&interval); // one incident spanning 3 intervals
            for i in 0..200u64 {
                lat.record(if spike {
                    90_000_000
                } else {
                    2_000_000 + (i % 11) * 20_000
                });
            }
            monitor.tick();
        }
    });
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("p99".to_owned(), Severity::Critical)]
    );
    assert_eq!(warnings.load(Ordering::SeqCst), 1);
    assert_eq!(monitor.detections("p99"), 1);
    assert_eq!(
        counter(&reg, DETECTIONS_METRIC, &["p99", "critical"]),
        Some(Value::Counter(1))
    );
    assert_eq!(
        counter(&reg, DETECTIONS_METRIC, &["p99", "warning"]),
        Some(Value::Counter(0))
    );
    // The z gauge holds the last scored interval's z: back to normal after the spike.
    let Some(Value::Gauge(z)) = counter(&reg, ZSCORE_METRIC, &["p99"]) else {
        panic!("no z gauge")
    };
    assert_eq!(z, monitor.detector("p99").unwrap().last_z());
    assert!(monitor.detector("p99").unwrap().snapshot().alerts == 1);
}

/// A registry with a gauge, and a monitor watching it as "mempool" plus a plain-values watch
/// "throughput", both with small detectors (window 32, warm-up 8).
fn gauge_and_values_monitor() -> (Registry, Gauge, AnomalyMonitor) {
    let reg = Registry::builder().build().unwrap();
    let gauge = reg
        .gauge("bullshark_mempool_size", "")
        .register()
        .unwrap()
        .handle();
    let mut monitor = AnomalyMonitor::new(&reg).unwrap();
    let det = || {
        DetectorConfig::new()
            .with_window(32)
            .with_min_samples(8)
            .build()
            .unwrap()
    };
    monitor.watch_gauge("mempool", &gauge, det()).unwrap();
    monitor.watch_values("throughput", det()).unwrap();
    (reg, gauge, monitor)
}

#[test]
fn gauges_and_plain_values_can_be_watched() {
    let (_reg, mempool, mut monitor) = gauge_and_values_monitor();
    let mut alerts = 0;
    for i in 0..40 {
        mempool.set(if i == 39 {
            10_000.0
        } else {
            100.0 + f64::from(i % 3)
        });
        alerts += monitor.tick().len();
        let tp = if i == 39 {
            1.0
        } else {
            1_000.0 + f64::from(i % 5)
        };
        alerts += usize::from(monitor.observe("throughput", tp).is_some());
    }
    assert_eq!(alerts, 2);
    assert_eq!(monitor.detections("mempool"), 1);
    assert_eq!(monitor.detections("throughput"), 1);
    assert!(monitor.observe("unknown", 1.0).is_none());
}

#[test]
fn non_finite_samples_are_ignored_and_counted_on_metrics() {
    let (reg, depth, mut monitor) = gauge_and_values_monitor();
    for i in 0..20 {
        // (A gauge rejects NaN itself, keeping its value; ±∞ it stores.)
        depth.set(match i {
            5 => f64::INFINITY,
            6 => f64::NEG_INFINITY,
            _ => 100.0 + f64::from(i % 3),
        });
        assert!(monitor.tick().is_empty());
        let tp = if i == 7 { f64::NAN } else { 1_000.0 };
        assert!(monitor.observe("throughput", tp).is_none());
    }
    // Ignored by the detectors (their baselines hold only finite samples)...
    let mempool = monitor.detector("mempool").unwrap().snapshot();
    assert_eq!((mempool.invalid, mempool.observed), (2, 18));
    assert!((mempool.mean - 101.0).abs() < 0.2, "{}", mempool.mean);
    let throughput = monitor.detector("throughput").unwrap().snapshot();
    assert_eq!((throughput.invalid, throughput.observed), (1, 19));
    // ...and counted where the on-call sees them.
    assert_eq!(
        counter(&reg, INVALID_METRIC, &["mempool"]),
        Some(Value::Counter(2))
    );
    assert_eq!(
        counter(&reg, INVALID_METRIC, &["throughput"]),
        Some(Value::Counter(1))
    );
    assert_eq!(monitor.detections("mempool"), 0);
}

#[test]
fn a_spawned_monitor_ticks_in_the_background() {
    let reg = Registry::builder().build().unwrap();
    let g = reg.gauge("g", "").register().unwrap().handle();
    let mut monitor = AnomalyMonitor::new(&reg).unwrap();
    monitor
        .watch_gauge(
            "g",
            &g,
            DetectorConfig::new()
                .with_window(16)
                .with_min_samples(4)
                .build()
                .unwrap(),
        )
        .unwrap();
    g.set(1.0);
    let handle = monitor.spawn(Duration::from_millis(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // Wait until the detector is past its 4-sample warm-up, then spike.
    while handle.ticks() < 6 {
        assert!(Instant::now() < deadline, "monitor never ticked");
        std::thread::yield_now();
    }
    g.set(1e6);
    while counter(&reg, DETECTIONS_METRIC, &["g", "critical"]) != Some(Value::Counter(1)) {
        assert!(Instant::now() < deadline, "spike never detected");
        std::thread::yield_now();
    }
    handle.stop();
}
