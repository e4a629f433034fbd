//! Cost of `Detector::observe`, against a naive recomputing 3σ baseline.
//!
//! Run with `cargo bench --bench anomaly`. Besides the criterion timings it
//! prints the detector's stack and heap footprint.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dwcp_telemetry::anomaly::{Detector, DetectorConfig, DEFAULT_WINDOW};

/// Deterministic, mildly noisy series with rare spikes.
fn series(n: usize) -> Vec<f64> {
    let mut rng = dwcp_support::Rng::new(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let spike = if i % 997 == 0 { 50.0 } else { 0.0 };
            100.0 + 10.0 * (i as f64 / 300.0).sin() + 5.0 * rng.unit() + spike
        })
        .collect()
}

/// The naive baseline: keeps the window in a `VecDeque` and recomputes mean
/// and standard deviation from scratch for every sample, alerting at 3σ.
struct NaiveZ {
    window: VecDeque<f64>,
    cap: usize,
}

impl NaiveZ {
    fn new(cap: usize) -> Self {
        Self {
            window: VecDeque::with_capacity(cap),
            cap,
        }
    }

    fn observe(&mut self, x: f64) -> bool {
        let n = self.window.len();
        let alert = if n >= 32 {
            let mean = self.window.iter().sum::<f64>() / n as f64;
            let var = self
                .window
                .iter()
                .map(|v| (v - mean) * (v - mean))
                .sum::<f64>()
                / (n - 1) as f64;
            ((x - mean) / var.sqrt().max(1e-9)).abs() >= 3.0
        } else {
            false
        };
        if n == self.cap {
            self.window.pop_front();
        }
        self.window.push_back(x);
        alert
    }
}

const BATCH: usize = 4096;

fn bench(c: &mut Criterion) {
    let data = series(BATCH);
    let mut warm = Detector::default();
    for &x in &series(4 * DEFAULT_WINDOW) {
        let _ = warm.observe(x);
    }
    println!(
        "detector footprint at the default window ({DEFAULT_WINDOW}): size_of {} bytes + heap {} bytes = {} bytes",
        std::mem::size_of::<Detector>(),
        warm.heap_bytes(),
        std::mem::size_of::<Detector>() + warm.heap_bytes()
    );

    // Each detector is warmed up once and then fed the same batch over and
    // over: steady state, no allocation, no setup inside the timed loop.
    let mut g = c.benchmark_group("anomaly_observe");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut default = warm;
    g.bench_function("detector_default", |b| {
        b.iter(|| {
            let mut alerts = 0u32;
            for &x in &data {
                alerts += u32::from(default.observe(black_box(x)).is_some());
            }
            alerts
        });
    });
    let mut plain = DetectorConfig::default()
        .with_surprise(0.0, 1, 1)
        .with_smoothing(1.0)
        .with_season(None)
        .build()
        .expect("valid");
    for &x in &series(2 * DEFAULT_WINDOW) {
        let _ = plain.observe(x);
    }
    g.bench_function("detector_plain_zscore", |b| {
        b.iter(|| {
            let mut alerts = 0u32;
            for &x in &data {
                alerts += u32::from(plain.observe(black_box(x)).is_some());
            }
            alerts
        });
    });
    let mut naive = NaiveZ::new(DEFAULT_WINDOW);
    for &x in &series(DEFAULT_WINDOW) {
        naive.observe(x);
    }
    g.bench_function("naive_vecdeque_recompute", |b| {
        b.iter(|| {
            let mut alerts = 0u32;
            for &x in &data {
                alerts += u32::from(naive.observe(black_box(x)));
            }
            alerts
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
