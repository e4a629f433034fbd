//! The hot paths never allocate: a counting global allocator (per thread, so that tests
//! running in parallel do not disturb each other) around the steady-state calls.
//!
//! - histogram record once the value's region exists, counter and gauge updates;
//! - `metrics::counter!` / `gauge!` / `histogram!` through `DwcpRecorder` for a series the
//!   thread has used before (0 and 2 labels), and a bound facade handle;
//! - a typed `family.get(&labels)` for an existing series, and `start_timer()` + drop;
//! - `Detector::observe` after `build()`, through warm-up, alerts, incidents, cooldowns,
//!   the seasonal channel and NaN/∞ input.

use dwcp_support::alloc::allocations_in;
use dwcp_telemetry::anomaly::{DetectorConfig, Direction};
use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::{LabelSet, Registry, Value};

#[global_allocator]
static GLOBAL: dwcp_support::alloc::Counting = dwcp_support::alloc::Counting;

#[test]
fn the_counter_counts() {
    // The harness itself: a Vec allocates, so the test below could fail.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))),
        1
    );
}

#[test]
fn recording_does_not_allocate() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let family = registry
        .histogram("dwcp_request_duration_seconds", "Request duration")
        .dynamic_labels(["operation"])
        .register()
        .unwrap();
    let h = family.with_labels_or_overflow(&["migrate"]);
    let c = registry
        .counter("dwcp_requests_total", "Requests")
        .register()
        .unwrap()
        .with_labels_or_overflow(&[]);
    let g = registry
        .gauge("dwcp_circuit_breaker_state", "Breaker")
        .register()
        .unwrap()
        .with_labels_or_overflow(&[]);
    let values: Vec<u64> = dwcp_support::latency_table(4096);
    // The first pass installs the regions these values fall in (allocations expected),
    // including those of 0 and of the clamped maximum.
    for &v in &values {
        h.record(v);
    }
    h.record(0);
    h.record(u64::MAX);
    let n = allocations_in(|| {
        for _ in 0..25 {
            for &v in &values {
                h.record(v);
                c.inc();
                g.set(v as f64);
            }
        }
        // Bad input is counted, not allocated for.
        h.record(0);
        h.record(u64::MAX);
        let _ = h.record_secs(f64::NAN);
        let _ = h.record_secs(-1.0);
        let _ = h.record_secs(f64::INFINITY);
        g.add(1.0);
    });
    assert_eq!(n, 0, "allocations while recording");
    assert_eq!(h.snapshot().count(), 26 * 4096 + 5);
    assert_eq!(c.get(), 25 * 4096);
}

/// Every facade call the bench measures, for a series that exists.
fn facade_calls(v: f64) {
    metrics::histogram!(
        "dwcp_request_duration_seconds",
        "operation" => "migrate",
        "component" => "amst"
    )
    .record(v);
    metrics::histogram!("dwcp_rpc_duration_seconds").record(v);
    metrics::counter!("dwcp_requests_total", "operation" => "migrate", "status" => "success")
        .increment(1);
    metrics::counter!("dwcp_restarts_total").increment(1);
    metrics::gauge!("dwcp_queue_delay_seconds", "operation" => "migrate", "component" => "amst")
        .set(v);
    metrics::gauge!("dwcp_streams_active").increment(1.0);
}

#[test]
fn facade_calls_for_an_existing_series_do_not_allocate() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    let values: Vec<f64> = dwcp_support::latency_table(4096)
        .into_iter()
        .map(|ns| ns as f64 * 1e-9)
        .collect();
    // Warm-up: the first call for each key creates the family and the series and fills this
    // thread's cache (allocations expected); a pass over the values installs the histogram
    // regions they fall in.
    let bound = metrics::with_local_recorder(&recorder, || {
        for &v in &values {
            facade_calls(v);
        }
        metrics::histogram!("dwcp_bound_duration_seconds", "operation" => "migrate")
    });
    for &v in &values {
        bound.record(v);
    }
    let n = allocations_in(|| {
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..10 {
                for &v in &values {
                    facade_calls(v);
                }
            }
        });
        for &v in &values {
            bound.record(v);
        }
    });
    assert_eq!(n, 0, "allocations in facade calls for existing series");

    // The calls landed where they should: 11 passes over 4,096 values.
    let calls = 11 * 4096;
    let families = registry.collect();
    let value = |name: &str| {
        let f = families
            .iter()
            .find(|f| f.descriptor.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(f.series.len(), 1, "{name}: one series");
        f.series[0].value.clone()
    };
    for name in ["dwcp_request_duration_seconds", "dwcp_rpc_duration_seconds"] {
        assert!(
            matches!(value(name), Value::Histogram(h) if h.count() == calls),
            "{name}"
        );
    }
    assert!(
        matches!(value("dwcp_bound_duration_seconds"), Value::Histogram(h) if h.count() == 2 * 4096)
    );
    assert_eq!(value("dwcp_requests_total"), Value::Counter(calls));
    assert_eq!(value("dwcp_restarts_total"), Value::Counter(calls));
    assert_eq!(value("dwcp_streams_active"), Value::Gauge(calls as f64));
    assert_eq!(
        value("dwcp_queue_delay_seconds"),
        Value::Gauge(*values.last().unwrap())
    );
}

#[derive(LabelSet)]
struct L {
    operation: &'static str,
    shard: u32,
}

#[test]
fn typed_get_and_timer_do_not_allocate() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let latency = registry
        .histogram("dwcp_request_duration_seconds", "Request duration")
        .labels::<L>()
        .register()
        .unwrap();
    let requests = registry
        .counter("dwcp_requests_total", "Requests")
        .labels::<L>()
        .register()
        .unwrap();
    let shards = [0u32, 7, 123_456, u32::MAX];
    // Warm-up: create the series, calibrate the clock, install the regions of the values
    // recorded below.
    for &shard in &shards {
        let labels = L {
            operation: "migrate",
            shard,
        };
        requests.get(&labels).inc();
        latency.get(&labels).record(1_000);
        drop(latency.get(&labels).start_timer());
    }
    let timer_handle = latency.get(&L {
        operation: "migrate",
        shard: 7,
    });
    // A timer records whatever time passed, and a thread descheduled between start and drop
    // sees a long one: install every region of the timer's series (1 ns to past the one-hour
    // maximum, which clamps), so no delta can need a new one.
    for shift in 0..64 {
        timer_handle.record(1u64 << shift);
    }
    let n = allocations_in(|| {
        for _ in 0..1_000 {
            for &shard in &shards {
                let labels = L {
                    operation: "migrate",
                    shard,
                };
                requests.get(&labels).inc();
                let h = latency.get(&labels);
                h.record(1_000);
            }
            let t = timer_handle.start_timer();
            drop(t);
        }
    });
    assert_eq!(n, 0, "allocations in typed get / start_timer");
    assert_eq!(requests.series_count(), 4);
    assert_eq!(latency.series_count(), 4);
    assert_eq!(
        requests
            .get(&L {
                operation: "migrate",
                shard: u32::MAX
            })
            .get(),
        1_001
    );
    // Warm-up (a record, a timer, 64 region fills), then 1,000 records and 1,000 timers.
    assert_eq!(timer_handle.snapshot().count(), 2 + 64 + 2_000);
}

#[test]
fn detector_observe_does_not_allocate() {
    for (config, name) in [
        (DetectorConfig::default(), "defaults"),
        (
            DetectorConfig::default()
                .with_direction(Direction::Up)
                .with_baseline_clip(Some(4.0))
                .with_season(Some(48)),
            "one-sided, clipped, 48-sample season",
        ),
        (
            DetectorConfig::default()
                .with_surprise(0.0, 1, 1)
                .with_smoothing(1.0)
                .with_season(None)
                .with_recompute_every(Some(7)),
            "plain z-score",
        ),
    ] {
        let mut d = config.build().unwrap();
        let mut rng = dwcp_support::Rng::new(7);
        let mut alerts = 0;
        let n = allocations_in(|| {
            for i in 0..20_000usize {
                let daily = 10.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin();
                let x = match i {
                    // Spikes and a level shift: alerts, incidents and cooldowns happen.
                    5_000 | 9_000 => 500.0,
                    12_000..=12_400 => 200.0 + rng.unit(),
                    // Bad input, ignored and counted.
                    7_000 => f64::NAN,
                    7_001 => f64::INFINITY,
                    7_002 => f64::NEG_INFINITY,
                    _ => 100.0 + daily + rng.unit(),
                };
                alerts += usize::from(d.observe(x).is_some());
            }
            let _ = d.snapshot();
        });
        assert_eq!(n, 0, "{name}: allocations in observe");
        assert!(
            alerts >= 2,
            "{name}: the run must exercise alerts, got {alerts}"
        );
        assert_eq!(d.snapshot().invalid, 3, "{name}");
        // Reset keeps the allocation too.
        assert_eq!(allocations_in(|| d.reset()), 0, "{name}: reset");
    }
}

/// Many keys with owned label values, cycled: once every key has been resolved by this
/// thread, calls allocate nothing, even though the 64 direct-mapped slots keep changing hands
/// (the second level hands them an `Rc`, never a key clone).
#[test]
fn many_owned_keys_cycle_without_allocating() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    let keys: Vec<metrics::Key> = (0..200)
        .map(|i| {
            metrics::Key::from_parts(
                "cycled_total",
                vec![metrics::Label::new("id", format!("v{i}"))],
            )
        })
        .collect();
    let meta = metrics::Metadata::new("no_alloc", metrics::Level::INFO, None);
    use metrics::Recorder as _;
    for k in &keys {
        recorder.register_counter(k, &meta).increment(1);
    }
    let n = allocations_in(|| {
        for _ in 0..3 {
            for k in &keys {
                recorder.register_counter(k, &meta).increment(1);
            }
        }
    });
    assert_eq!(n, 0);
    let family = registry.existing_counter("cycled_total").unwrap();
    assert_eq!(family.series_count(), 200);
    assert_eq!(
        family.try_with_labels(&["v199"]).unwrap().get(),
        4,
        "every call recorded"
    );
}
