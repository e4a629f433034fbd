//! Export cost: OTLP metrics pushes and the Prometheus protobuf exposition for 1,000 histogram
//! series (1,000 samples each, 10 µs – 10 ms), against peers on the same data in the same run,
//! and recording throughput while an export runs on another thread (see
//! `docs/PERFORMANCE.md`, "Exporting: OTLP and native histograms").
//!
//! - `otlp_push_1000_histograms`: build one `ExportMetricsServiceRequest` from the registry and
//!   encode it to protobuf bytes (what a push sends), cumulative temporality:
//!   `dwcp_exponential` (exponential histograms re-binned from HDR), `dwcp_explicit` (16
//!   explicit bounds), against `otel_sdk_exponential`: the opentelemetry_sdk 0.33 with the same
//!   samples recorded through its own `f64` histograms (base-2 exponential aggregation, 160
//!   buckets) — `force_flush` collects into its `ResourceMetrics`, and its exporter (ours, a
//!   no-network one) turns them into the same request with `opentelemetry-proto`'s transform
//!   and encodes it; the flush's handoff to the reader thread is included.
//! - `exposition_1000_histograms`: `dwcp_protobuf` (classic and native buckets) and `dwcp_text`
//!   against `prometheus_client_text` (prometheus-client's text encoding of the same series
//!   with the same 16 bounds).
//! - `record_while_exporting`: one thread records into one of the 1,000 series through its
//!   bound handle, alone (`alone`) or while another thread builds OTLP pushes
//!   (`during_otlp_push`) or renders the protobuf exposition (`during_protobuf_scrape`) in a
//!   loop; ns per record, wall-clock. `during_unrelated_memory_scan` is the control: another
//!   thread streaming 12 MiB of unrelated memory in a loop (what an export costs the machine,
//!   with nothing shared), to tell sharing a 2-vCPU machine apart from interference.
//!
//! The first two groups are timed in process CPU time (all threads: the SDK collects on its
//! reader thread), so other jobs on a shared machine do not inflate them; the last in
//! wall-clock time (a descheduled thread would hide contention).
//!
//! `cargo bench --bench export -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use dwcp_support::bench::{criterion_dir, median_ns};
use dwcp_support::latency_table;
use dwcp_telemetry::export::otlp::metrics::{HistogramForm, MetricsEncoder, MetricsOptions};
use dwcp_telemetry::export::prometheus::protobuf::ProtobufEncoder;
use dwcp_telemetry::export::prometheus::{Format, TextEncoder};
use dwcp_telemetry::{Histogram, Registry};
use prost::Message;

/// CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`): counts the OpenTelemetry
/// SDK's reader thread, which does its collection, as well as the calling thread, and not the
/// time the process spends descheduled on a shared machine.
mod process_cpu {
    use std::time::Duration;

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }

    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;

    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    pub fn now() -> Option<Duration> {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `clock_gettime` is the C library's (always linked by std on Linux); on
        // 64-bit Linux `struct timespec` is two 64-bit integers, matching `Timespec`, and the
        // pointer is to a live local for the duration of the call.
        let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        (rc == 0).then(|| Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), nanos))
    }

    #[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
    pub fn now() -> Option<Duration> {
        None
    }
}

/// Time `iters` runs of `f` in process CPU time (wall-clock where that clock is missing).
fn cpu_iters<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let (wall, cpu) = (Instant::now(), process_cpu::now());
    for _ in 0..iters {
        black_box(f());
    }
    match (cpu, process_cpu::now()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall.elapsed(),
    }
}

const SERIES: usize = 1_000;
const SAMPLES: usize = 1_000;
const NAME: &str = "bench_latency_seconds";

/// 16 bounds from 10 µs to 10 ms, five per decade (as in benches/render.rs).
fn bounds() -> Vec<f64> {
    (0..16).map(|i| 1e-5 * 10f64.powf(i as f64 / 5.0)).collect()
}

fn samples(table: &[u64], s: usize) -> impl Iterator<Item = u64> + '_ {
    table.iter().cycle().skip(s * 7).take(SAMPLES).copied()
}

fn dwcp_registry(table: &[u64]) -> (Registry, Histogram) {
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
    let first = fam.with_labels_or_overflow(&["0"]);
    (reg, first)
}

fn otlp(c: &mut Criterion, table: &[u64], reg: &Registry) {
    let mut g = c.benchmark_group("otlp_push_1000_histograms");
    for (id, form) in [
        ("dwcp_exponential", HistogramForm::default()),
        ("dwcp_explicit", HistogramForm::Explicit),
    ] {
        let mut enc = MetricsEncoder::new(MetricsOptions {
            histograms: form,
            ..MetricsOptions::default()
        });
        let mut buf = Vec::new();
        g.bench_function(id, |b| {
            b.iter_custom(|n| {
                cpu_iters(n, || {
                    let req = enc.build(reg, SystemTime::now());
                    buf.clear();
                    req.encode(&mut buf).unwrap();
                    buf.len()
                })
            })
        });
    }
    // The same data through the OpenTelemetry SDK.
    let (provider, bytes) = otel_sdk(table);
    g.bench_function("otel_sdk_exponential", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                provider.force_flush().unwrap();
                bytes.load(Ordering::Relaxed)
            })
        })
    });
    g.finish();
    let _ = provider.shutdown();
}

mod sdk {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::data::ResourceMetrics;
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
    use opentelemetry_sdk::metrics::Temporality;
    use prost::Message;

    /// Converts what the SDK collected into the OTLP request and encodes it (no network).
    pub struct EncodingExporter {
        pub bytes: Arc<AtomicUsize>,
    }

    impl PushMetricExporter for EncodingExporter {
        async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
            let req = ExportMetricsServiceRequest::from(metrics);
            self.bytes
                .store(req.encode_to_vec().len(), Ordering::Relaxed);
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> Temporality {
            Temporality::Cumulative
        }
    }
}

fn otel_sdk(
    table: &[u64],
) -> (
    opentelemetry_sdk::metrics::SdkMeterProvider,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::KeyValue;
    use opentelemetry_sdk::metrics::{Aggregation, PeriodicReader, SdkMeterProvider, Stream};
    let bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = PeriodicReader::builder(sdk::EncodingExporter {
        bytes: bytes.clone(),
    })
    .with_interval(Duration::from_secs(3600))
    .build();
    let provider = SdkMeterProvider::builder()
        .with_reader(reader)
        .with_view(|_: &opentelemetry_sdk::metrics::Instrument| {
            Stream::builder()
                .with_aggregation(Aggregation::Base2ExponentialHistogram {
                    max_size: 160,
                    max_scale: 20,
                    record_min_max: true,
                })
                .with_cardinality_limit(SERIES + 10)
                .build()
                .ok()
        })
        .build();
    let meter = provider.meter("bench");
    let h = meter.f64_histogram(NAME).with_unit("s").build();
    for s in 0..SERIES {
        let attrs = [
            KeyValue::new("version", "3.0.0"),
            KeyValue::new("series", s.to_string()),
        ];
        for v in samples(table, s) {
            h.record(v as f64 / 1e9, &attrs);
        }
    }
    (provider, bytes)
}

fn exposition(c: &mut Criterion, table: &[u64], reg: &Registry) {
    let mut g = c.benchmark_group("exposition_1000_histograms");
    let mut pb = ProtobufEncoder::default();
    let mut bytes = Vec::new();
    g.bench_function("dwcp_protobuf", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                bytes.clear();
                pb.encode_registry(reg, &mut bytes);
                bytes.len()
            })
        })
    });
    let mut text = TextEncoder::new(Format::Text);
    let mut out = String::new();
    g.bench_function("dwcp_text", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                out.clear();
                text.encode_registry(reg, &mut out);
                out.len()
            })
        })
    });

    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram as PcHistogram;
    fn make() -> PcHistogram {
        PcHistogram::new(bounds())
    }
    let mut pc = prometheus_client::registry::Registry::default();
    let fam =
        Family::<Vec<(String, String)>, PcHistogram, fn() -> PcHistogram>::new_with_constructor(
            make,
        );
    pc.register(NAME, "Latency", fam.clone());
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
    g.bench_function("prometheus_client_text", |b| {
        b.iter_custom(|n| {
            cpu_iters(n, || {
                out.clear();
                encode(&mut out, &pc).unwrap();
                out.len()
            })
        })
    });
    g.finish();
}

/// Record `iters` values into `h`, wall-clock (a two-thread case).
fn record_loop(h: &Histogram, table: &[u64], iters: u64) -> Duration {
    let table = black_box(table);
    let mask = table.len() - 1;
    let start = Instant::now();
    for i in 0..iters as usize {
        h.record(table[i & mask]);
    }
    start.elapsed()
}

fn while_exporting(c: &mut Criterion, table: &[u64], reg: &Registry, h: &Histogram) {
    let table: Vec<u64> = table.iter().copied().take(4096).collect();
    let mut g = c.benchmark_group("record_while_exporting");
    g.bench_function("alone", |b| b.iter_custom(|n| record_loop(h, &table, n)));
    for id in [
        "during_otlp_push",
        "during_protobuf_scrape",
        "during_unrelated_memory_scan",
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let exports = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let worker = {
            let (stop, exports, reg) = (stop.clone(), exports.clone(), reg.clone());
            std::thread::spawn(move || {
                let mut enc = MetricsEncoder::new(MetricsOptions::default());
                let mut pb = ProtobufEncoder::default();
                let mut buf = Vec::new();
                // The control: as much memory traffic as an export (the counters of 1,000
                // series are ~11 MiB), touching nothing the recording thread uses.
                let scan: Vec<u64> = (0..(12usize << 20) / 8).map(|i| i as u64).collect();
                while !stop.load(Ordering::Relaxed) {
                    buf.clear();
                    match id {
                        "during_otlp_push" => {
                            enc.build(&reg, SystemTime::now()).encode(&mut buf).unwrap()
                        }
                        "during_protobuf_scrape" => pb.encode_registry(&reg, &mut buf),
                        _ => {
                            black_box(scan.iter().fold(0u64, |a, &x| a.wrapping_add(x)));
                        }
                    }
                    exports.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Start measuring only once the exporter is running.
        while exports.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        g.bench_function(id, |b| b.iter_custom(|n| record_loop(h, &table, n)));
        stop.store(true, Ordering::Relaxed);
        let _ = worker.join();
        eprintln!(
            "{id}: {} exports ran beside the recording thread",
            exports.load(Ordering::Relaxed)
        );
    }
    g.finish();
}

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let m = |g: &str, id: &str| median_ns(&dir, g, id, since);
    eprintln!("\n== summary: medians of this run ({}) ==", dir.display());
    let rows: [(&str, &[&str], &str); 3] = [
        (
            "otlp_push_1000_histograms",
            &["dwcp_exponential", "dwcp_explicit", "otel_sdk_exponential"],
            "otel_sdk_exponential",
        ),
        (
            "exposition_1000_histograms",
            &["dwcp_protobuf", "dwcp_text", "prometheus_client_text"],
            "prometheus_client_text",
        ),
        (
            "record_while_exporting",
            &[
                "alone",
                "during_otlp_push",
                "during_protobuf_scrape",
                "during_unrelated_memory_scan",
            ],
            "alone",
        ),
    ];
    for (group, ids, base) in rows {
        eprintln!("\n{group}");
        let b = m(group, base);
        for id in ids {
            if let Some(v) = m(group, id) {
                let ratio = b.map_or(String::new(), |b| format!("{:>8.2}x {base}", v / b));
                if v >= 1e5 {
                    eprintln!("  {id:<28} {:>10.3} ms {ratio}", v / 1e6);
                } else {
                    eprintln!("  {id:<28} {v:>10.2} ns {ratio}");
                }
            }
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let table = latency_table(SAMPLES + SERIES * 7);
    let (reg, first) = dwcp_registry(&table);
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    otlp(&mut c, &table, &reg);
    exposition(&mut c, &table, &reg);
    while_exporting(&mut c, &table, &reg, &first);
    c.final_summary();
    summary(started);
}
