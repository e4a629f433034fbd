//! Scrape cost: rendering 1,000 histogram series (16 `le` buckets each, 1,000 samples per
//! series) to Prometheus text, for dwcp-telemetry and its peers on the same data, in the same
//! run (see `docs/PERFORMANCE.md`, "Rendering /metrics").
//!
//! `cargo bench --bench render`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dwcp_support::latency_table;
use dwcp_telemetry::export::prometheus::{Format, TextEncoder};
use dwcp_telemetry::Registry;

const SERIES: usize = 1_000;
const SAMPLES: usize = 1_000;
const NAME: &str = "bench_latency_seconds";

/// 16 bounds from 10 µs to 10 ms, five per decade (the samples span 10 µs – 10 ms).
fn bounds() -> Vec<f64> {
    (0..16).map(|i| 1e-5 * 10f64.powf(i as f64 / 5.0)).collect()
}

/// The samples of series `s` (ns): the shared table, rotated per series.
fn samples(table: &[u64], s: usize) -> impl Iterator<Item = u64> + '_ {
    table.iter().cycle().skip(s * 7).take(SAMPLES).copied()
}

fn dwcp(c: &mut Criterion, table: &[u64]) {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let fam = reg
        .histogram(NAME, "Latency")
        .dynamic_labels(["series"])
        .buckets(bounds())
        .cardinality_limit(SERIES + 1)
        .register()
        .unwrap();
    for s in 0..SERIES {
        let h = fam.with_labels_or_overflow(&[&s.to_string()]);
        for v in samples(table, s) {
            h.record(v);
        }
    }
    let mut g = c.benchmark_group("render_1000_histograms");
    for (id, format) in [
        ("dwcp_text", Format::Text),
        ("dwcp_openmetrics", Format::OpenMetrics),
    ] {
        let mut enc = TextEncoder::new(format);
        let mut out = String::new();
        g.bench_function(id, |b| {
            b.iter(|| {
                out.clear();
                enc.encode_registry(&reg, &mut out);
                out.len()
            })
        });
    }
    // The copying path, for comparison: `collect()` (copies every non-empty slot into
    // snapshots), then `encode` from those snapshots.
    g.bench_function("dwcp_snapshots_collect", |b| b.iter(|| reg.collect().len()));
    let families = reg.collect();
    let labels = reg.const_labels();
    let mut enc = TextEncoder::new(Format::Text);
    let mut out = String::new();
    g.bench_function("dwcp_snapshots_encode", |b| {
        b.iter(|| {
            out.clear();
            enc.encode(&families, &labels, &mut out);
            out.len()
        })
    });
    g.finish();
}

fn prometheus_client(c: &mut Criterion, table: &[u64]) {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;
    fn make() -> Histogram {
        Histogram::new(bounds())
    }
    let mut reg = prometheus_client::registry::Registry::default();
    let fam =
        Family::<Vec<(String, String)>, Histogram, fn() -> Histogram>::new_with_constructor(make);
    reg.register(NAME, "Latency", fam.clone());
    for s in 0..SERIES {
        let h = fam.get_or_create(&vec![
            ("version".to_owned(), "3.0.0".to_owned()),
            ("series".to_owned(), s.to_string()),
        ]);
        for v in samples(table, s) {
            h.observe(v as f64 / 1e9);
        }
    }
    let mut out = String::new();
    c.benchmark_group("render_1000_histograms")
        .bench_function("prometheus_client", |b| {
            b.iter(|| {
                out.clear();
                encode(&mut out, &reg).unwrap();
                out.len()
            })
        });
}

fn prometheus_tikv(c: &mut Criterion, table: &[u64]) {
    use prometheus::{Encoder, HistogramOpts, HistogramVec, TextEncoder};
    let reg = prometheus::Registry::new();
    let vec = HistogramVec::new(
        HistogramOpts::new(NAME, "Latency")
            .buckets(bounds())
            .const_label("version", "3.0.0"),
        &["series"],
    )
    .unwrap();
    reg.register(Box::new(vec.clone())).unwrap();
    for s in 0..SERIES {
        let h = vec.with_label_values(&[&s.to_string()]);
        for v in samples(table, s) {
            h.observe(v as f64 / 1e9);
        }
    }
    let enc = TextEncoder::new();
    let mut out = Vec::new();
    c.benchmark_group("render_1000_histograms")
        .bench_function("prometheus", |b| {
            b.iter(|| {
                out.clear();
                enc.encode(&reg.gather(), &mut out).unwrap();
                out.len()
            })
        });
}

fn metrics_exporter(c: &mut Criterion, table: &[u64]) {
    use metrics_exporter_prometheus::PrometheusBuilder;
    let recorder = PrometheusBuilder::new()
        .set_buckets(&bounds())
        .unwrap()
        .add_global_label("version", "3.0.0")
        .build_recorder();
    let handle = recorder.handle();
    let hists: Vec<metrics::Histogram> = metrics::with_local_recorder(&recorder, || {
        (0..SERIES)
            .map(|s| metrics::histogram!(NAME, "series" => s.to_string()))
            .collect()
    });
    // It buffers every sample until a render drains them, so each render gets fresh samples
    // (recorded in the untimed setup).
    c.benchmark_group("render_1000_histograms").bench_function(
        "metrics_exporter_prometheus",
        |b| {
            b.iter_batched(
                || {
                    for (s, h) in hists.iter().enumerate() {
                        for v in samples(table, s) {
                            h.record(v as f64 / 1e9);
                        }
                    }
                },
                |()| handle.render().len(),
                BatchSize::PerIteration,
            )
        },
    );
}

fn render(c: &mut Criterion) {
    let table = latency_table(SAMPLES + SERIES * 7);
    dwcp(c, &table);
    prometheus_client(c, &table);
    prometheus_tikv(c, &table);
    metrics_exporter(c, &table);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = render
}
criterion_main!(benches);
