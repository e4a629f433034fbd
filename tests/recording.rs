//! The recording core under concurrency, against exact references, and with bad input.

use std::sync::Arc;
use std::thread;

use dwcp_support::{latency_table, Rng};
use dwcp_telemetry::histogram::{AtomicHistogram, Layout, ONE_HOUR_NS};
use dwcp_telemetry::registry::self_metrics;
use dwcp_telemetry::{Registry, Value};

#[test]
fn concurrent_histogram_records_are_exact() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 50_000;
    let table = latency_table(4_096);
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let h = reg
        .histogram("dwcp_request_duration_seconds", "")
        .exact_sum(true)
        .register()
        .unwrap()
        .handle();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (h, table) = (h.clone(), &table);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    h.record(table[(i * 7 + t) % table.len()]);
                }
            });
        }
    });
    // The same values recorded by one thread into hdrhistogram.
    let mut reference = hdrhistogram::Histogram::<u64>::new_with_bounds(1, ONE_HOUR_NS, 2).unwrap();
    let mut sum = 0u64;
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let v = table[(i * 7 + t) % table.len()];
            reference.record(v).unwrap();
            sum += v;
        }
    }
    let snap = h.snapshot();
    assert_eq!(snap.count(), (THREADS * PER_THREAD) as u64);
    assert_eq!(snap.sum(), u128::from(sum));
    assert_eq!(snap.to_hdrhistogram().unwrap(), reference);
}

#[test]
fn concurrent_counters_gauges_and_series_creation_are_exact() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100_000;
    let reg = Registry::builder().build().unwrap();
    let fam = reg
        .counter("dwcp_requests_total", "")
        .dynamic_labels(["component"])
        .register()
        .unwrap();
    let gauge = reg
        .gauge("dwcp_streams_active", "")
        .register()
        .unwrap()
        .handle();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (fam, gauge) = (fam.clone(), gauge.clone());
            s.spawn(move || {
                // Every thread races to create the same six series, then records.
                let handles: Vec<_> = ["amst", "hde", "pba", "acp", "ass", "itp"]
                    .iter()
                    .map(|c| fam.with_labels_or_overflow(&[c]))
                    .collect();
                for i in 0..PER_THREAD {
                    handles[(i % 6) as usize].inc();
                    gauge.add(if t % 2 == 0 { 1.0 } else { -1.0 });
                }
            });
        }
    });
    assert_eq!(fam.series_count(), 6);
    let total: u64 = ["amst", "hde", "pba", "acp", "ass", "itp"]
        .iter()
        .map(|c| fam.with_labels_or_overflow(&[c]).get())
        .sum();
    assert_eq!(total, THREADS * PER_THREAD);
    assert_eq!(
        fam.with_labels_or_overflow(&["amst"]).get(),
        THREADS * 16_667
    );
    assert_eq!(gauge.get(), 0.0);
}

/// Exact quantile from a sorted reference: the ceil(q·n)-th smallest value.
fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn check_quantiles(name: &str, values: &[u64], sigfig: u8) {
    let layout = Layout::new(sigfig, ONE_HOUR_NS).unwrap();
    let h = AtomicHistogram::new(layout);
    for &v in values {
        h.record(v);
    }
    let mut sorted: Vec<u64> = values.iter().map(|&v| v.min(ONE_HOUR_NS)).collect();
    sorted.sort_unstable();
    let snap = h.snapshot();
    let hdr = snap.to_hdrhistogram().unwrap();
    let precision = 10f64.powi(-i32::from(sigfig));
    for q in [
        0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0,
    ] {
        let exact = exact_quantile(&sorted, q);
        let ours = snap.quantile(q);
        // Same slot as the exact value, so the error is within the configured precision.
        assert_eq!(
            layout.index_of(ours),
            layout.index_of(exact),
            "{name} q={q} sigfig={sigfig}"
        );
        let err = (ours as f64 - exact as f64).abs();
        assert!(
            err <= precision * exact as f64,
            "{name} q={q}: {ours} vs {exact}"
        );
        // And hdrhistogram, fed our snapshot, agrees.
        assert_eq!(
            hdr.value_at_quantile(q),
            ours,
            "{name} q={q} via hdrhistogram"
        );
    }
    assert_eq!(snap.count(), values.len() as u64);
    assert_eq!(layout.index_of(snap.min()), layout.index_of(sorted[0]));
    assert_eq!(
        layout.index_of(snap.max()),
        layout.index_of(*sorted.last().unwrap())
    );
    let exact_mean = sorted.iter().map(|&v| v as f64).sum::<f64>() / sorted.len() as f64;
    assert!(
        (snap.mean() - exact_mean).abs() <= precision * exact_mean + 1.0,
        "{name} mean"
    );
}

#[test]
fn quantiles_are_within_precision_on_many_distributions() {
    let mut rng = Rng::new(42);
    let n = 100_000;
    let uniform: Vec<u64> = (0..n)
        .map(|_| 10_000 + (rng.unit() * 9_990_000.0) as u64)
        .collect();
    let lognormal: Vec<u64> = (0..n)
        .map(|_| (1e6 * (0.8 * rng.normal()).exp()) as u64)
        .collect();
    let bimodal: Vec<u64> = (0..n)
        .map(|i| {
            let centre = if i % 10 < 7 { 200_000.0 } else { 40_000_000.0 };
            (centre * (1.0 + 0.05 * rng.normal())).max(1.0) as u64
        })
        .collect();
    let single = vec![123_456_789u64; 1_000];
    let extreme: Vec<u64> = (0..n)
        .map(|i| match i % 5 {
            0 => 0,
            1 => 1,
            2 => ONE_HOUR_NS,
            3 => u64::MAX, // clamped to the maximum
            _ => rng.next_u64() % ONE_HOUR_NS,
        })
        .collect();
    for sigfig in 1..=3 {
        check_quantiles("uniform", &uniform, sigfig);
        check_quantiles("lognormal", &lognormal, sigfig);
        check_quantiles("bimodal", &bimodal, sigfig);
        check_quantiles("single", &single, sigfig);
        check_quantiles("extreme", &extreme, sigfig);
    }
}

#[test]
fn memory_is_flat_as_samples_grow() {
    let table = latency_table(10_000);
    let h = AtomicHistogram::new(Layout::default());
    for &v in &table {
        h.record(v);
    }
    let after_10k = h.heap_bytes();
    for _ in 0..100 {
        for &v in &table {
            h.record(v);
        }
    }
    assert_eq!(h.snapshot().count(), 1_010_000);
    assert_eq!(h.heap_bytes(), after_10k, "memory grew with samples");
    // 10 µs – 10 ms spans 11 regions of 128 counters at 2 significant digits.
    assert!(after_10k <= 16 * 1024, "{after_10k} bytes per series");
    let empty = AtomicHistogram::new(Layout::default()).heap_bytes();
    assert_eq!(after_10k - empty, 11 * 128 * 8);
}

#[test]
fn bad_values_never_panic_and_are_counted() {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let h = reg
        .histogram("dwcp_recovery_duration_seconds", "")
        .register()
        .unwrap()
        .handle();
    assert!(!h.record_secs(f64::NAN));
    assert!(!h.record_secs(-1.0));
    assert!(!h.record_secs(f64::NEG_INFINITY));
    assert!(h.record_secs(f64::INFINITY)); // clamped
    assert!(h.record_secs(-0.0)); // zero
    h.record(0);
    h.record(u64::MAX); // clamped
    h.record(ONE_HOUR_NS + 1); // clamped
    h.record_duration(std::time::Duration::MAX); // clamped
    assert!(h.record_secs(0.5));
    let snap = h.snapshot();
    assert_eq!(snap.count(), 7);
    assert_eq!(snap.count_le(0), 2);
    assert_eq!(
        snap.max(),
        Layout::default().highest_of(Layout::default().index_of(ONE_HOUR_NS))
    );
    let bad = snap.bad_input();
    assert_eq!((bad.nan, bad.negative, bad.clamped, bad.zero), (1, 2, 4, 2));

    let families = reg.collect();
    let adjusted = families
        .iter()
        .find(|f| f.descriptor.name() == self_metrics::VALUES_ADJUSTED)
        .unwrap();
    let rows: Vec<(String, String, u64)> = adjusted
        .series
        .iter()
        .map(|s| match s.value {
            Value::Counter(n) => (s.label_values[0].clone(), s.label_values[1].clone(), n),
            _ => panic!("not a counter"),
        })
        .collect();
    let m = "dwcp_recovery_duration_seconds".to_owned();
    assert_eq!(
        rows,
        vec![
            (m.clone(), "clamped".into(), 4),
            (m.clone(), "zero".into(), 2),
            (m.clone(), "nan".into(), 1),
            (m, "negative".into(), 2),
        ]
    );
}

#[test]
fn interval_snapshots_and_merges_across_series() {
    let reg = Registry::builder().build().unwrap();
    let fam = reg
        .histogram("dwcp_v3_component_latency_seconds", "")
        .dynamic_labels(["component"])
        .register()
        .unwrap();
    let (a, b) = (
        fam.with_labels_or_overflow(&["amst"]),
        fam.with_labels_or_overflow(&["hde"]),
    );
    let mut window = a.interval();
    for v in [1_000, 2_000, 3_000] {
        a.record(v);
    }
    let first = window.next_delta();
    assert_eq!(first.count(), 3);
    a.record(1_000_000);
    let second = window.next_delta();
    assert_eq!(
        (second.count(), second.min()),
        (
            1,
            Layout::default().lowest_of(Layout::default().index_of(1_000_000))
        )
    );
    b.record(5_000);
    b.record(5_000);
    let mut merged = a.snapshot();
    merged.merge(&b.snapshot()).unwrap();
    assert_eq!(merged.count(), 6);
    assert_eq!(merged.cumulative(&[3_000, 5_000, 2_000_000]), vec![3, 5, 6]);
}

#[test]
fn recording_threads_are_not_blocked_by_snapshots() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    // A reader hammering snapshots while writers record: totals stay exact.
    let h = Arc::new(AtomicHistogram::new(Layout::default()));
    let stop = Arc::new(AtomicBool::new(false));
    // Snapshots the reader has finished, so the writers can make sure some fall while they
    // record (on a busy machine the reader might otherwise not run until they are done).
    let snaps = Arc::new((std::sync::Mutex::new(0u64), std::sync::Condvar::new()));
    let reader = {
        let (h, stop, snaps) = (h.clone(), stop.clone(), snaps.clone());
        thread::spawn(move || {
            let mut last = 0;
            // At least one snapshot, then until told to stop.
            loop {
                let c = h.snapshot().count();
                assert!(c >= last, "counts went backwards");
                last = c;
                let (count, done) = &*snaps;
                *count.lock().unwrap() += 1;
                done.notify_all();
                if stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            let n = *snaps.0.lock().unwrap();
            n
        })
    };
    thread::scope(|s| {
        for t in 0..2u64 {
            let (h, snaps) = (h.clone(), snaps.clone());
            s.spawn(move || {
                for i in 0..200_000u64 {
                    if i == 100_000 {
                        // Halfway: wait for a snapshot finished after this point, so snapshots
                        // and records interleave however the threads are scheduled.
                        let (count, done) = &*snaps;
                        let seen = *count.lock().unwrap();
                        let (_guard, waited) = done
                            .wait_timeout_while(
                                count.lock().unwrap(),
                                Duration::from_secs(60),
                                |n| *n <= seen,
                            )
                            .unwrap();
                        assert!(!waited.timed_out(), "the reader took no snapshot in 60 s");
                    }
                    h.record(1 + (i * 31 + t) % 5_000_000);
                }
            });
        }
    });
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(h.snapshot().count(), 400_000);
}
