//! Recording-path benchmarks: dwcp-telemetry beside its peers, on the same inputs, in one run.
//!
//! Every group measures dwcp-telemetry, prometheus-client 0.24, prometheus 0.14 (tikv),
//! metrics 0.24 + metrics-exporter-prometheus 0.18, opentelemetry_sdk 0.31, unsynchronised
//! `hdrhistogram` where it applies, a relaxed `AtomicU64::fetch_add` floor and a "nothing
//! installed" baseline. Values are latency-like samples from about 10 µs to 10 ms
//! (`dwcp_support::latency_table`), cycled from a fixed table; peers that take seconds as
//! `f64` get the same table pre-converted, so no peer pays a conversion in the loop.
//!
//! Run: `cargo bench --bench recording -- --warm-up-time 1 --measurement-time 3`.
//! Single-thread cases are timed with the thread's CPU time (see [`Stopwatch`]); set
//! `DWCP_BENCH_WALL=1` for wall-clock time.
//! Before the criterion output, the bench prints the memory report (bytes per series); after
//! it, a summary of medians with the ratio to prometheus-client and the goals of issue 2,
//! read back from criterion's `estimates.json` files written by this run.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, peer_buckets, Inputs, Stopwatch, N};
use dwcp_telemetry::{Counter, Histogram, Layout, Registry};
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

/// Table length: a power of two, so the cycling index is one mask and no bounds check.
const MASK: usize = N - 1;

// ---------------------------------------------------------------------------------------------
// The implementations under test, built once per group.

/// An OpenTelemetry exporter that drops everything: the reader exists only so instruments are
/// live (a provider with no reader records nothing). Cumulative, like a `ManualReader`'s
/// default; the export interval is an hour, so it never runs during a measurement.
#[derive(Debug)]
struct DropExporter;

impl PushMetricExporter for DropExporter {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

struct Otel {
    // Kept alive: dropping the provider shuts the pipeline down.
    _provider: SdkMeterProvider,
    meter: Meter,
    attrs: [KeyValue; 2],
}

impl Otel {
    fn new() -> Self {
        let reader = PeriodicReader::builder(DropExporter)
            .with_interval(Duration::from_secs(3600))
            .build();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let meter = provider.meter("dwcp_bench");
        Otel {
            _provider: provider,
            meter,
            attrs: [
                KeyValue::new("component", "amst"),
                KeyValue::new("node", "n1"),
            ],
        }
    }

    fn histogram(&self) -> opentelemetry::metrics::Histogram<f64> {
        self.meter
            .f64_histogram("dwcp_v3_component_latency_seconds")
            .with_boundaries(peer_buckets())
            .build()
    }

    fn counter(&self) -> opentelemetry::metrics::Counter<u64> {
        self.meter.u64_counter("dwcp_requests").build()
    }
}

/// metrics-exporter-prometheus's recorder, not installed globally: handles are registered
/// through `with_local_recorder`, so the macros elsewhere still see no recorder.
struct MetricsExp {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    handle: metrics_exporter_prometheus::PrometheusHandle,
}

impl MetricsExp {
    fn new() -> Self {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&peer_buckets())
            .expect("buckets")
            .build_recorder();
        let handle = recorder.handle();
        MetricsExp { recorder, handle }
    }

    fn histogram(&self) -> metrics::Histogram {
        metrics::with_local_recorder(
            &self.recorder,
            || metrics::histogram!("dwcp_v3_component_latency_seconds", "component" => "amst"),
        )
    }

    fn counter(&self) -> metrics::Counter {
        metrics::with_local_recorder(
            &self.recorder,
            || metrics::counter!("dwcp_requests_total", "component" => "amst"),
        )
    }

    /// Drain the per-sample buffer (outside the timed region), or memory grows with samples.
    fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn dwcp_histogram(reg: &Registry, name: &str, exact_sum: bool) -> Histogram {
    reg.histogram(name, "Per-component latency")
        .dynamic_labels(["component"])
        .exact_sum(exact_sum)
        .register()
        .expect("register histogram")
        .with_labels_or_overflow(&["amst"])
}

fn dwcp_registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry")
}

fn prom_client_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(peer_buckets())
}

fn prometheus_histogram() -> prometheus::Histogram {
    prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new("dwcp_v3_component_latency_seconds", "latency")
            .buckets(peer_buckets()),
    )
    .expect("prometheus histogram")
}

fn hdr_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("hdr bounds")
}

// ---------------------------------------------------------------------------------------------
// Measurement loops.

/// Time `iters` calls of `f` on one thread, values cycled from `table`.
#[inline(always)]
fn run_1t<T: Copy>(sw: Stopwatch, iters: u64, table: &[T; N], mut f: impl FnMut(T)) -> Duration {
    let table = black_box(table);
    let start = sw.start();
    for i in 0..iters as usize {
        f(table[i & MASK]);
    }
    sw.elapsed(start)
}

/// Two threads released together by a barrier, each making `iters` calls of `f`; returns the
/// slower thread's time, so criterion reports ns per operation per thread. The second thread
/// starts half a table further on, so the two do not walk the same values in lockstep.
fn run_2t<T: Copy + Sync>(iters: u64, table: &[T; N], f: impl Fn(T) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let (f, barrier) = (&f, &barrier);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2usize)
            .map(|k| {
                s.spawn(move || {
                    let table = black_box(table);
                    let offset = k * N / 2;
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters as usize {
                        f(table[(i + offset) & MASK]);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Time `iters` calls of `f` with no input.
#[inline(always)]
fn run_plain(sw: Stopwatch, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = sw.start();
    for _ in 0..iters {
        f();
    }
    sw.elapsed(start)
}

/// Ids benchmarked in this process, in order, for the summary.
static PLAN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn note(group: &str, id: &str) {
    PLAN.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((group.to_owned(), id.to_owned()));
}

fn custom(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &str,
    id: &str,
    mut f: impl FnMut(u64) -> Duration,
) {
    note(group, id);
    g.bench_function(id, |b| b.iter_custom(&mut f));
}

// ---------------------------------------------------------------------------------------------
// 1. One thread, one bound handle.

fn record_1thread(c: &mut Criterion, sw: Stopwatch, inp: &Inputs) {
    const G: &str = "record_1thread";
    let mut g = c.benchmark_group(G);
    let (ns, secs) = (&*inp.ns, &*inp.secs);

    let floor = AtomicU64::new(0);
    custom(&mut g, G, "floor_atomic_fetch_add", |n| {
        run_1t(sw, n, ns, |v| {
            black_box(&floor).fetch_add(v, Ordering::Relaxed);
        })
    });
    let noop = Histogram::noop();
    custom(&mut g, G, "baseline_dwcp_noop", |n| {
        run_1t(sw, n, ns, |v| black_box(&noop).record(v))
    });
    custom(&mut g, G, "baseline_metrics_no_recorder", |n| {
        run_1t(sw, n, secs, |v| {
            metrics::histogram!("dwcp_v3_component_latency_seconds", "component" => "amst")
                .record(v);
        })
    });

    let reg = dwcp_registry();
    let h = dwcp_histogram(&reg, "dwcp_bench_latency_seconds", false);
    custom(&mut g, G, "dwcp", |n| {
        run_1t(sw, n, ns, |v| black_box(&h).record(v))
    });
    let hx = dwcp_histogram(&reg, "dwcp_bench_exact_latency_seconds", true);
    custom(&mut g, G, "dwcp_exact_sum", |n| {
        run_1t(sw, n, ns, |v| black_box(&hx).record(v))
    });
    let raw = dwcp_telemetry::histogram::AtomicHistogram::new(Layout::default());
    custom(&mut g, G, "dwcp_atomic_histogram", |n| {
        run_1t(sw, n, ns, |v| black_box(&raw).record(v))
    });

    let pc = prom_client_histogram();
    custom(&mut g, G, "prometheus_client", |n| {
        run_1t(sw, n, secs, |v| black_box(&pc).observe(v))
    });
    let p = prometheus_histogram();
    custom(&mut g, G, "prometheus", |n| {
        run_1t(sw, n, secs, |v| black_box(&p).observe(v))
    });
    let me = MetricsExp::new();
    let mh = me.histogram();
    custom(&mut g, G, "metrics_exporter_prometheus", |n| {
        let t = run_1t(sw, n, secs, |v| black_box(&mh).record(v));
        me.upkeep();
        t
    });
    let otel = Otel::new();
    let oh = otel.histogram();
    custom(&mut g, G, "opentelemetry_sdk", |n| {
        run_1t(sw, n, secs, |v| black_box(&oh).record(v, &otel.attrs))
    });
    let mut hdr = hdr_histogram();
    custom(&mut g, G, "hdrhistogram_unsync", |n| {
        run_1t(sw, n, ns, |v| {
            let _ = black_box(black_box(&mut hdr).record(v));
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. Two threads, one series.

fn record_2threads(c: &mut Criterion, inp: &Inputs) {
    const G: &str = "record_2threads_same_series";
    let mut g = c.benchmark_group(G);
    let (ns, secs) = (&*inp.ns, &*inp.secs);

    let floor = AtomicU64::new(0);
    custom(&mut g, G, "floor_atomic_fetch_add", |n| {
        run_2t(n, ns, |v| {
            black_box(&floor).fetch_add(v, Ordering::Relaxed);
        })
    });
    let noop = Histogram::noop();
    custom(&mut g, G, "baseline_dwcp_noop", |n| {
        run_2t(n, ns, |v| black_box(&noop).record(v))
    });

    let reg = dwcp_registry();
    let h = dwcp_histogram(&reg, "dwcp_bench_latency_seconds", false);
    custom(&mut g, G, "dwcp", |n| {
        run_2t(n, ns, |v| black_box(&h).record(v))
    });
    let hx = dwcp_histogram(&reg, "dwcp_bench_exact_latency_seconds", true);
    custom(&mut g, G, "dwcp_exact_sum", |n| {
        run_2t(n, ns, |v| black_box(&hx).record(v))
    });

    let pc = prom_client_histogram();
    custom(&mut g, G, "prometheus_client", |n| {
        run_2t(n, secs, |v| black_box(&pc).observe(v))
    });
    let p = prometheus_histogram();
    custom(&mut g, G, "prometheus", |n| {
        run_2t(n, secs, |v| black_box(&p).observe(v))
    });
    let me = MetricsExp::new();
    let mh = me.histogram();
    custom(&mut g, G, "metrics_exporter_prometheus", |n| {
        let t = run_2t(n, secs, |v| black_box(&mh).record(v));
        me.upkeep();
        t
    });
    let otel = Otel::new();
    let oh = otel.histogram();
    custom(&mut g, G, "opentelemetry_sdk", |n| {
        run_2t(n, secs, |v| black_box(&oh).record(v, &otel.attrs))
    });
    // hdrhistogram::Histogram needs `&mut` to record: it cannot be shared, so it is skipped.
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Two clock reads and a record.

fn timed_record(c: &mut Criterion, sw: Stopwatch) {
    const G: &str = "timed_record";
    let mut g = c.benchmark_group(G);
    // Calibrate the TSC clock now, not inside the first measurement.
    dwcp_telemetry::clock::calibrate();

    custom(&mut g, G, "baseline_empty_closure", |n| {
        let f = || black_box(0u64);
        run_plain(sw, n, || {
            black_box(f());
        })
    });
    custom(&mut g, G, "clock_instant_now", |n| {
        run_plain(sw, n, || {
            black_box(Instant::now());
        })
    });
    let clock = quanta::Clock::new();
    custom(&mut g, G, "clock_quanta_raw", |n| {
        run_plain(sw, n, || {
            black_box(clock.raw());
        })
    });
    // The clock part of a timed record alone: two TSC reads and the scaling to nanoseconds.
    custom(&mut g, G, "clock_quanta_pair_to_ns", |n| {
        run_plain(sw, n, || {
            let s = clock.raw();
            black_box(0u64);
            black_box(clock.delta_as_nanos(s, clock.raw()));
        })
    });
    custom(&mut g, G, "clock_instant_pair", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(s.elapsed());
        })
    });

    let reg = dwcp_registry();
    let h = dwcp_histogram(&reg, "dwcp_bench_latency_seconds", false);
    custom(&mut g, G, "dwcp_time", |n| {
        run_plain(sw, n, || {
            black_box(black_box(&h).time(|| black_box(0u64)));
        })
    });
    let ht = dwcp_histogram(&reg, "dwcp_bench_timer_latency_seconds", false);
    custom(&mut g, G, "dwcp_start_timer", |n| {
        run_plain(sw, n, || {
            let _t = black_box(&ht).start_timer();
            black_box(0u64);
        })
    });
    let hi = dwcp_histogram(&reg, "dwcp_bench_instant_latency_seconds", false);
    custom(&mut g, G, "dwcp_instant_record_duration", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(&hi).record_duration(s.elapsed());
        })
    });

    let pc = prom_client_histogram();
    custom(&mut g, G, "prometheus_client", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(&pc).observe(s.elapsed().as_secs_f64());
        })
    });
    let p = prometheus_histogram();
    custom(&mut g, G, "prometheus", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(&p).observe(s.elapsed().as_secs_f64());
        })
    });
    let me = MetricsExp::new();
    let mh = me.histogram();
    custom(&mut g, G, "metrics_exporter_prometheus", |n| {
        let t = run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(&mh).record(s.elapsed());
        });
        me.upkeep();
        t
    });
    let otel = Otel::new();
    let oh = otel.histogram();
    custom(&mut g, G, "opentelemetry_sdk", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            black_box(&oh).record(s.elapsed().as_secs_f64(), &otel.attrs);
        })
    });
    let mut hdr = hdr_histogram();
    custom(&mut g, G, "hdrhistogram_unsync", |n| {
        run_plain(sw, n, || {
            let s = Instant::now();
            black_box(0u64);
            let ns = u64::try_from(s.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = black_box(black_box(&mut hdr).record(ns));
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 4. Counter increment.

fn counter_inc(c: &mut Criterion, sw: Stopwatch) {
    const G: &str = "counter_inc";
    let mut g = c.benchmark_group(G);

    let floor = AtomicU64::new(0);
    custom(&mut g, G, "floor_atomic_fetch_add", |n| {
        run_plain(sw, n, || {
            black_box(&floor).fetch_add(1, Ordering::Relaxed);
        })
    });
    let noop = Counter::noop();
    custom(&mut g, G, "baseline_dwcp_noop", |n| {
        run_plain(sw, n, || black_box(&noop).inc())
    });
    custom(&mut g, G, "baseline_metrics_no_recorder", |n| {
        run_plain(sw, n, || {
            metrics::counter!("dwcp_requests_total", "component" => "amst").increment(1);
        })
    });

    let reg = dwcp_registry();
    let ours = reg
        .counter("dwcp_requests_total", "Requests served")
        .register()
        .expect("register counter")
        .handle();
    custom(&mut g, G, "dwcp", |n| {
        run_plain(sw, n, || black_box(&ours).inc())
    });

    let pc = prometheus_client::metrics::counter::Counter::<u64>::default();
    custom(&mut g, G, "prometheus_client", |n| {
        run_plain(sw, n, || {
            black_box(&pc).inc();
        })
    });
    let p = prometheus::IntCounter::new("dwcp_requests_total", "Requests served")
        .expect("prometheus counter");
    custom(&mut g, G, "prometheus", |n| {
        run_plain(sw, n, || black_box(&p).inc())
    });
    let me = MetricsExp::new();
    let mc = me.counter();
    custom(&mut g, G, "metrics_exporter_prometheus", |n| {
        run_plain(sw, n, || black_box(&mc).increment(1))
    });
    let otel = Otel::new();
    let oc = otel.counter();
    custom(&mut g, G, "opentelemetry_sdk", |n| {
        run_plain(sw, n, || black_box(&oc).add(1, &otel.attrs))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 5. Snapshot of one series: cost must not grow with samples.

fn snapshot(c: &mut Criterion, inp: &Inputs) {
    const G: &str = "snapshot";
    let mut g = c.benchmark_group(G);
    for samples in [1_000usize, 1_000_000] {
        let reg = dwcp_registry();
        let h = dwcp_histogram(&reg, "dwcp_bench_latency_seconds", false);
        let mut hdr = hdr_histogram();
        let pc = prom_client_histogram();
        let mut pc_reg = prometheus_client::registry::Registry::default();
        pc_reg.register("dwcp_v3_component_latency_seconds", "latency", pc.clone());
        let p = prometheus_histogram();
        let p_reg = prometheus::Registry::new();
        p_reg.register(Box::new(p.clone())).expect("register");
        for i in 0..samples {
            black_box(&h).record(inp.ns[i & MASK]);
            hdr.record(inp.ns[i & MASK]).expect("in range");
            pc.observe(inp.secs[i & MASK]);
            p.observe(inp.secs[i & MASK]);
        }
        assert_eq!(h.snapshot().count(), samples as u64);

        let id = |name: &str| {
            note(G, &format!("{name}/{samples}"));
            BenchmarkId::new(name, samples)
        };
        g.bench_function(id("dwcp_snapshot"), |b| b.iter(|| black_box(h.snapshot())));
        g.bench_function(id("dwcp_snapshot_to_hdrhistogram"), |b| {
            b.iter(|| black_box(h.snapshot().to_hdrhistogram().expect("convert")))
        });
        g.bench_function(id("hdrhistogram_clone"), |b| {
            b.iter(|| black_box(hdr.clone()))
        });
        let mut buf = String::with_capacity(4096);
        g.bench_function(id("prometheus_client_encode"), |b| {
            b.iter(|| {
                buf.clear();
                prometheus_client::encoding::text::encode(&mut buf, &pc_reg).expect("encode");
                black_box(buf.len())
            })
        });
        let enc = prometheus::TextEncoder::new();
        let mut buf = String::with_capacity(4096);
        g.bench_function(id("prometheus_gather_encode"), |b| {
            b.iter(|| {
                buf.clear();
                enc.encode_utf8(&p_reg.gather(), &mut buf).expect("encode");
                black_box(buf.len())
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 6. Memory per series (not timed).

fn memory_report(inp: &Inputs) {
    let hdr = hdr_histogram();
    let hdr_bytes = std::mem::size_of::<hdrhistogram::Histogram<u64>>()
        + hdr.distinct_values() * std::mem::size_of::<u64>();
    eprintln!("== memory per series (10 us - 10 ms samples, default precision) ==");
    eprintln!(
        "{:>12} {:>14} {:>20} {:>26}",
        "samples", "dwcp bytes", "dwcp exact_sum bytes", "hdrhistogram(1,3.6e12,2)"
    );
    for samples in [10usize, 1_000, 1_000_000] {
        let reg = dwcp_registry();
        let h = dwcp_histogram(&reg, "dwcp_mem_latency_seconds", false);
        let hx = dwcp_histogram(&reg, "dwcp_mem_exact_latency_seconds", true);
        for i in 0..samples {
            black_box(&h).record(inp.ns[i & MASK]);
            hx.record(inp.ns[i & MASK]);
        }
        eprintln!(
            "{:>12} {:>14} {:>20} {:>26}",
            samples,
            h.heap_bytes(),
            hx.heap_bytes(),
            hdr_bytes
        );
    }
    eprintln!(
        "(dwcp: struct + region table + touched 1 KiB regions; hdrhistogram: struct + \
         counts.len() * 8 = {} counts)",
        hdr.distinct_values()
    );
}

// ---------------------------------------------------------------------------------------------
// Summary read back from criterion's files.

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let plan = PLAN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut groups: Vec<String> = Vec::new();
    for (group, _) in &plan {
        if !groups.contains(group) {
            groups.push(group.clone());
        }
    }
    let mut printed_header = false;
    for group in &groups {
        let rows: Vec<(&str, f64)> = plan
            .iter()
            .filter(|(g, _)| g == group)
            .filter_map(|(g, id)| median_ns(&dir, g, id, since).map(|m| (id.as_str(), m)))
            .collect();
        if rows.is_empty() {
            continue;
        }
        if !printed_header {
            eprintln!("\n== summary: medians of this run ({}) ==", dir.display());
            printed_header = true;
        }
        eprintln!("\n{group}");
        // The ratio is to prometheus-client's figure for the same case (and sample count).
        let reference = |suffix: &str| {
            rows.iter()
                .find(|(id, _)| {
                    *id == format!("prometheus_client{suffix}")
                        || *id == format!("prometheus_client_encode{suffix}")
                })
                .map(|(_, m)| *m)
        };
        let empty = rows
            .iter()
            .find(|(id, _)| *id == "baseline_empty_closure")
            .map(|(_, m)| *m);
        for (id, m) in &rows {
            let suffix = id.find('/').map_or("", |i| &id[i..]);
            let ratio = match reference(suffix) {
                Some(r) if !id.starts_with("prometheus_client") => {
                    format!("{:>7.2}x prometheus-client", m / r)
                }
                _ => String::new(),
            };
            let overhead = match empty {
                Some(e) if !id.starts_with("clock_") && !id.starts_with("baseline") => {
                    format!("  overhead {:>7.2} ns", m - e)
                }
                _ => String::new(),
            };
            eprintln!("  {id:<40} {:>12} ns{ratio}{overhead}", format!("{m:.2}"));
        }
        goals(group, &rows, reference(""), empty);
    }
}

fn goals(group: &str, rows: &[(&str, f64)], pc: Option<f64>, empty: Option<f64>) {
    let get = |id: &str| rows.iter().find(|(i, _)| *i == id).map(|(_, m)| *m);
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let check = |id: &str, max_ns: f64, max_ratio: Option<f64>| {
        let Some(m) = get(id) else { return };
        let ns_ok = m <= max_ns;
        eprint!("  goal {id}: {m:.2} ns <= {max_ns} ns {}", verdict(ns_ok));
        if let (Some(limit), Some(r)) = (max_ratio, pc) {
            let ratio = m / r;
            eprint!("; {ratio:.2}x <= {limit}x {}", verdict(ratio <= limit));
        }
        eprintln!();
    };
    match group {
        "record_1thread" => {
            check("dwcp", 3.0, Some(0.6));
            check("dwcp_exact_sum", 3.0, Some(0.6));
        }
        "record_2threads_same_series" => {
            check("dwcp", 5.0, Some(0.35));
            check("dwcp_exact_sum", 5.0, Some(0.35));
        }
        "timed_record" => {
            for id in ["dwcp_time", "dwcp_start_timer"] {
                if let (Some(m), Some(e)) = (get(id), empty) {
                    let over = m - e;
                    eprintln!(
                        "  goal {id} overhead: {over:.2} ns <= 25 ns {}",
                        verdict(over <= 25.0)
                    );
                }
            }
        }
        _ => {}
    }
}

fn main() {
    let started = SystemTime::now();
    let inputs = Inputs::new();
    memory_report(&inputs);

    let sw = Stopwatch::from_env();
    eprintln!(
        "single-thread cases timed with {}; two-thread cases with wall-clock time",
        sw.label()
    );
    let mut c = Criterion::default().configure_from_args();
    record_1thread(&mut c, sw, &inputs);
    record_2threads(&mut c, &inputs);
    timed_record(&mut c, sw);
    counter_inc(&mut c, sw);
    snapshot(&mut c, &inputs);
    c.final_summary();
    summary(started);
}
