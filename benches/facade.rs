//! The `metrics` facade: `dwcp_telemetry::facade::DwcpRecorder` beside
//! `metrics-exporter-prometheus` 0.18.3, on the same calls, in one run.
//!
//! Both recorders are "installed" the same way, with `metrics::with_local_recorder` around
//! each timed loop: a process can install only one global recorder, and it cannot be
//! uninstalled, so the two cannot both be global in one process. The macros resolve a local
//! recorder through one thread-local read, as they would load the global one.
//!
//! Cases (one criterion group each, ids `dwcp` and `metrics_exporter_prometheus`):
//! - `facade_histogram_2labels`: `histogram!(name, "operation" => .., "component" => ..)
//!   .record(x)`, looked up on every call;
//! - `facade_histogram_0labels`: `histogram!(name).record(x)`, looked up on every call;
//! - `facade_counter_2labels`: `counter!(name, "operation" => .., "status" => ..)
//!   .increment(1)`;
//! - `facade_gauge_2labels`: `gauge!(name, "operation" => .., "component" => ..).set(x)`;
//! - `facade_bound_histogram`: `let h = histogram!(..)` once, `h.record(x)` timed;
//! - `facade_histogram_2labels_local_per_call`: the first case with `with_local_recorder`
//!   entered around every call instead of around the loop (both sides pay the guard).
//!
//! Then the cost of new series and new families:
//! - `registration_label_sets`: a fresh counter family, then 200 or 2,000 new label sets
//!   (`with_labels_or_overflow`), beside prometheus-client's `Family::get_or_create` for the
//!   same label sets; a fresh registry per iteration (`iter_batched`);
//! - `facade_new_names`: 20,000 distinct counter names through the facade, into a fresh
//!   registry per iteration (with `max_families(20_000)`, and with the default cap of 10,000
//!   where the other 10,000 are refused and counted), beside a fresh
//!   metrics-exporter-prometheus recorder.
//!
//! Values are `dwcp_support::latency_table` (10 µs – 10 ms, ns) converted to seconds in
//! advance. Single-thread loops are timed with the thread's CPU time (set
//! `DWCP_BENCH_WALL=1` for wall-clock time); the `iter_batched` groups use wall-clock time.
//!
//! Run: `cargo bench --bench facade -- --noplot`. After criterion's output the bench prints
//! this run's medians with the ratio to the peer and the goal checks, read back from
//! criterion's `estimates.json` files written by this run.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, peer_buckets, Stopwatch, N};
use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::registry::self_metrics;
use dwcp_telemetry::{Registry, Value};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Table length: a power of two, so the cycling index is one mask and no bounds check.
const MASK: usize = N - 1;

/// Distinct names in `facade_new_names`.
const NAMES: usize = 20_000;

/// The input table in seconds.
fn seconds_table() -> Box<[f64; N]> {
    let table = dwcp_support::latency_table(N);
    let mut secs = Box::new([0f64; N]);
    for (s, &v) in secs.iter_mut().zip(table.iter()) {
        *s = v as f64 * 1e-9;
    }
    secs
}

// ---------------------------------------------------------------------------------------------
// The two recorders.

fn dwcp_registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry")
}

/// Both recorders, fresh for each case, neither installed globally.
struct Pair {
    registry: Registry,
    dwcp: DwcpRecorder,
    prom: PrometheusRecorder,
    prom_handle: PrometheusHandle,
}

impl Pair {
    fn new() -> Self {
        let registry = dwcp_registry();
        let dwcp = DwcpRecorder::new(registry.clone());
        let prom = PrometheusBuilder::new()
            .set_buckets(&peer_buckets())
            .expect("buckets")
            .build_recorder();
        let prom_handle = prom.handle();
        Pair {
            registry,
            dwcp,
            prom,
            prom_handle,
        }
    }

    /// Drain the peer's per-sample histogram buffers (outside the timed region), or memory
    /// grows with samples.
    fn upkeep(&self) {
        self.prom_handle.run_upkeep();
    }

    /// The facade calls landed in one series of `name`, with nothing adjusted: no renamed
    /// label, no mismatch, no overflow. Checked after each case, so a bench that measured a
    /// no-op or the overflow series would fail instead of reporting a figure.
    fn check_one_series(&self, name: &str, labels: &[&str]) {
        let rendered = self.prom_handle.render();
        let families = self.registry.collect();
        if !rendered.contains(name) && !families.iter().any(|f| f.descriptor.name() == name) {
            return; // the case was filtered out on the command line: neither side ran
        }
        assert!(rendered.contains(name), "peer has no {name}");
        let family = families
            .iter()
            .find(|f| f.descriptor.name() == name)
            .unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(family.series.len(), 1, "{name}: one series");
        assert_eq!(&family.series[0].label_values[..], labels, "{name}: labels");
        let recorded = match &family.series[0].value {
            Value::Counter(n) => *n > 0,
            Value::Gauge(x) => *x > 0.0,
            Value::Histogram(h) => h.count() > 0,
            _ => false,
        };
        assert!(recorded, "{name}: nothing recorded");
        let adjusted = families
            .iter()
            .find(|f| f.descriptor.name() == self_metrics::FACADE_ADJUSTMENTS)
            .map_or(0, |f| {
                f.series
                    .iter()
                    .map(|s| match s.value {
                        Value::Counter(n) => n,
                        _ => 0,
                    })
                    .sum()
            });
        assert_eq!(adjusted, 0, "facade adjustments");
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement loops (as in benches/recording.rs).

/// Time `iters` calls of `f` on one thread, values cycled from `table`.
#[inline(always)]
fn run_1t(sw: Stopwatch, iters: u64, table: &[f64; N], mut f: impl FnMut(f64)) -> Duration {
    let table = black_box(table);
    let start = sw.start();
    for i in 0..iters as usize {
        f(table[i & MASK]);
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

fn short_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    g
}

// ---------------------------------------------------------------------------------------------
// 1. Macro calls for an existing series, looked up on every call.

/// One group: the same macro call timed under each recorder. `$body` is the call, with the
/// value bound to `$v`.
macro_rules! facade_case {
    ($c:expr, $sw:expr, $secs:expr, $group:literal, $name:literal, [$($label:literal),*],
     |$v:ident| $body:expr) => {{
        const G: &str = $group;
        let sw = $sw;
        let secs = $secs;
        let pair = Pair::new();
        let mut g = short_group($c, G);
        custom(&mut g, G, "dwcp", |n| {
            metrics::with_local_recorder(&pair.dwcp, || run_1t(sw, n, secs, |$v| $body))
        });
        custom(&mut g, G, "metrics_exporter_prometheus", |n| {
            let t = metrics::with_local_recorder(&pair.prom, || run_1t(sw, n, secs, |$v| $body));
            pair.upkeep();
            t
        });
        g.finish();
        pair.check_one_series($name, &[$($label),*]);
    }};
}

fn facade_calls(c: &mut Criterion, sw: Stopwatch, secs: &[f64; N]) {
    // Label names are sorted by the facade ("component" < "operation"); neither is renamed
    // (`version` would be, so it is not used: both recorders do the same work).
    facade_case!(
        c,
        sw,
        secs,
        "facade_histogram_2labels",
        "dwcp_request_duration_seconds",
        ["amst", "migrate"],
        |v| metrics::histogram!(
            "dwcp_request_duration_seconds",
            "operation" => "migrate",
            "component" => "amst"
        )
        .record(v)
    );
    facade_case!(
        c,
        sw,
        secs,
        "facade_histogram_0labels",
        "dwcp_request_duration_seconds",
        [],
        |v| metrics::histogram!("dwcp_request_duration_seconds").record(v)
    );
    facade_case!(
        c,
        sw,
        secs,
        "facade_counter_2labels",
        "dwcp_requests_total",
        ["migrate", "success"],
        |_v| metrics::counter!(
            "dwcp_requests_total",
            "operation" => "migrate",
            "status" => "success"
        )
        .increment(1)
    );
    facade_case!(
        c,
        sw,
        secs,
        "facade_gauge_2labels",
        "dwcp_queue_delay_seconds",
        ["amst", "migrate"],
        |v| metrics::gauge!(
            "dwcp_queue_delay_seconds",
            "operation" => "migrate",
            "component" => "amst"
        )
        .set(v)
    );

    // The same 2-label histogram call with `with_local_recorder` entered and left around
    // every single call instead of around the loop: what the brief's wording could also
    // mean. It adds the guard's thread-local write and restore to both sides.
    {
        const G: &str = "facade_histogram_2labels_local_per_call";
        let pair = Pair::new();
        let call = |v: f64| {
            metrics::histogram!(
                "dwcp_request_duration_seconds",
                "operation" => "migrate",
                "component" => "amst"
            )
            .record(v)
        };
        let mut g = short_group(c, G);
        custom(&mut g, G, "dwcp", |n| {
            run_1t(sw, n, secs, |v| {
                metrics::with_local_recorder(black_box(&pair.dwcp), || call(v))
            })
        });
        custom(&mut g, G, "metrics_exporter_prometheus", |n| {
            let t = run_1t(sw, n, secs, |v| {
                metrics::with_local_recorder(black_box(&pair.prom), || call(v))
            });
            pair.upkeep();
            t
        });
        g.finish();
        pair.check_one_series("dwcp_request_duration_seconds", &["amst", "migrate"]);
    }

    // A bound handle: registered once, the record alone is timed.
    const G: &str = "facade_bound_histogram";
    let pair = Pair::new();
    let bind = || {
        metrics::histogram!(
            "dwcp_request_duration_seconds",
            "operation" => "migrate",
            "component" => "amst"
        )
    };
    let ours = metrics::with_local_recorder(&pair.dwcp, bind);
    let theirs = metrics::with_local_recorder(&pair.prom, bind);
    let mut g = short_group(c, G);
    custom(&mut g, G, "dwcp", |n| {
        run_1t(sw, n, secs, |v| black_box(&ours).record(v))
    });
    custom(&mut g, G, "metrics_exporter_prometheus", |n| {
        let t = run_1t(sw, n, secs, |v| black_box(&theirs).record(v));
        pair.upkeep();
        t
    });
    g.finish();
    pair.check_one_series("dwcp_request_duration_seconds", &["amst", "migrate"]);
}

// ---------------------------------------------------------------------------------------------
// 2. New label sets in a fresh family.

type PcFamily = prometheus_client::metrics::family::Family<
    Vec<(String, String)>,
    prometheus_client::metrics::counter::Counter,
>;

fn registration(c: &mut Criterion) {
    const G: &str = "registration_label_sets";
    let mut g = short_group(c, G);
    for sets in [200usize, 2_000] {
        // Label values formatted once, outside the timed region.
        let values: Vec<String> = (0..sets).map(|i| format!("v{i}")).collect();
        let pc_labels: Vec<Vec<(String, String)>> = values
            .iter()
            .map(|v| vec![("k".to_owned(), v.clone())])
            .collect();

        let fresh_dwcp = || {
            let registry = dwcp_registry();
            let family = registry
                .counter("c_total", "c")
                .dynamic_labels(["k"])
                .register()
                .expect("register");
            (registry, family)
        };
        // Every label set is a new series (the default cardinality limit is 2,000).
        {
            let (_r, family) = fresh_dwcp();
            for v in &values {
                family.with_labels_or_overflow(&[v]).inc();
            }
            assert_eq!(family.series_count(), sets);
            assert_eq!(family.overflow().get(), 0, "nothing in the overflow series");
        }

        note(G, &format!("dwcp/{sets}"));
        g.bench_function(BenchmarkId::new("dwcp", sets), |b| {
            b.iter_batched(
                fresh_dwcp,
                |(registry, family)| {
                    for v in &values {
                        drop(black_box(family.with_labels_or_overflow(&[v.as_str()])));
                    }
                    // Returned, so criterion drops them outside the timed region.
                    (registry, family)
                },
                BatchSize::LargeInput,
            )
        });
        note(G, &format!("prometheus_client/{sets}"));
        g.bench_function(BenchmarkId::new("prometheus_client", sets), |b| {
            b.iter_batched(
                PcFamily::default,
                |family| {
                    for l in &pc_labels {
                        black_box(&*family.get_or_create(l));
                    }
                    family
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. New families through the facade.

fn registered(registry: &Registry) -> (usize, u64) {
    let refused = registry
        .collect()
        .iter()
        .find(|f| f.descriptor.name() == self_metrics::FAMILIES_REFUSED)
        .and_then(|f| match f.series.first().map(|s| &s.value) {
            Some(Value::Counter(n)) => Some(*n),
            _ => None,
        })
        .unwrap_or(0);
    (registry.family_count(), refused)
}

fn new_names(c: &mut Criterion) {
    const G: &str = "facade_new_names";
    // Names formatted once and leaked, outside the timed region: `counter!(name)` with a
    // `&'static str` borrows it.
    let names: Vec<&'static str> = (0..NAMES)
        .map(|i| &*Box::leak(format!("n{i}_total").into_boxed_str()))
        .collect();
    let run = |rec: &dyn metrics::Recorder| {
        metrics::with_local_recorder(rec, || {
            for &name in &names {
                metrics::counter!(name).increment(1);
            }
        });
    };
    let fresh = |max_families: Option<usize>| {
        let b = Registry::builder().version("3.0.0");
        let b = match max_families {
            Some(m) => b.max_families(m),
            None => b,
        };
        let registry = b.build().expect("registry");
        let rec = DwcpRecorder::new(registry.clone());
        (registry, rec)
    };

    // The outcomes, once (the exact assertions live in tests/facade_scale.rs).
    for (max, expected) in [(Some(NAMES), (NAMES, 0)), (None, (10_000, 10_000))] {
        let (registry, rec) = fresh(max);
        let t = Instant::now();
        run(&rec);
        let took = t.elapsed();
        assert_eq!(registered(&registry), (expected.0, expected.1 as u64));
        eprintln!(
            "facade_new_names: {NAMES} names, max_families {max:?}: {} families, {} refused, \
             {took:?} (one untimed check run, wall-clock)",
            expected.0, expected.1
        );
    }

    let mut g = c.benchmark_group(G);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(10);
    let id = |name: &str| {
        note(G, &format!("{name}/{NAMES}"));
        BenchmarkId::new(name, NAMES)
    };
    g.bench_function(id("dwcp_max_families_20000"), |b| {
        b.iter_batched(
            || fresh(Some(NAMES)),
            |(registry, rec)| {
                run(&rec);
                (registry, rec)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(id("dwcp_default_cap_10000"), |b| {
        b.iter_batched(
            || fresh(None),
            |(registry, rec)| {
                run(&rec);
                (registry, rec)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(id("metrics_exporter_prometheus"), |b| {
        b.iter_batched(
            || PrometheusBuilder::new().build_recorder(),
            |rec| {
                run(&rec);
                rec
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
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
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
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
        let get = |id: &str| rows.iter().find(|(i, _)| *i == id).map(|(_, m)| *m);
        if group.starts_with("facade_") && group != "facade_new_names" {
            let peer = get("metrics_exporter_prometheus");
            for (id, m) in &rows {
                let ratio = peer.map_or(String::new(), |p| format!("{:>7.2}x the peer", m / p));
                eprintln!("  {id:<40} {m:>12.2} ns{ratio}");
            }
            if let (Some(ours), Some(p)) = (get("dwcp"), peer) {
                let r = ours / p;
                eprintln!(
                    "  goal dwcp <= 0.5x metrics-exporter-prometheus: {r:.2}x {}",
                    verdict(r <= 0.5)
                );
            }
        } else if group == "registration_label_sets" {
            for (id, m) in &rows {
                let sets: f64 = id
                    .rsplit('/')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1.0);
                let name = id.split('/').next().unwrap_or(id);
                let suffix = &id[name.len()..];
                let ratio = get(&format!("prometheus_client{suffix}"))
                    .filter(|_| name != "prometheus_client")
                    .map_or(String::new(), |p| {
                        format!("  {:.2}x prometheus-client", m / p)
                    });
                eprintln!(
                    "  {id:<40} {:>10.1} us total {:>8.1} ns per label set{ratio}",
                    m / 1e3,
                    m / sets
                );
            }
        } else {
            for (id, m) in &rows {
                eprintln!(
                    "  {id:<48} {:>8.1} ms total {:>8.1} ns per name",
                    m / 1e6,
                    m / NAMES as f64
                );
            }
            if let Some(m) = get(&format!("dwcp_max_families_20000/{NAMES}")) {
                eprintln!(
                    "  goal {NAMES} names through the facade < 0.2 s: {:.1} ms {}",
                    m / 1e6,
                    verdict(m < 2e8)
                );
            }
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let secs = seconds_table();
    let sw = Stopwatch::from_env();
    eprintln!(
        "macro cases timed with {}; registration cases with wall-clock time",
        sw.label()
    );
    let mut c = Criterion::default().configure_from_args();
    facade_calls(&mut c, sw, &secs);
    registration(&mut c);
    new_names(&mut c);
    c.final_summary();
    summary(started);
}
