//! Looking the series up on every call: the cost of `family.get(&labels).record(v)` (typed) and
//! `family.with_labels_or_overflow(&[..]).record(v)` (dynamic), for a user who does not bind
//! the handle once, beside the same per-call lookup in the peers they would otherwise pick,
//! in one run with the same inputs:
//!
//! - `dwcp_typed`: `#[derive(LabelSet)] struct Req { operation: Op, status: &'static str }`
//!   (`Op` a `#[derive(LabelValue)]` enum) on a histogram family registered with
//!   `.labels::<Req>()`; timed `fam.get(&req).record(ns)`;
//! - `dwcp_dynamic`: a `.dynamic_labels(["operation", "status"])` family; timed
//!   `fam.with_labels_or_overflow(&["migrate", "ok"]).record(ns)`;
//! - `prometheus_client` (0.24.1): `Family<Labels, Histogram>` with a
//!   `#[derive(EncodeLabelSet)] struct Labels { operation: &'static str, status: &'static str }`
//!   and the 16 buckets `benches/recording.rs` gives the peers; timed
//!   `family.get_or_create(&labels).observe(secs)`;
//! - `prometheus` (0.14.0, tikv): `HistogramVec` with labels `["operation", "status"]` and the
//!   same buckets; timed `vec.with_label_values(&["migrate", "ok"]).observe(secs)`;
//! - `dwcp_bound_handle` (reference only): the handle bound once, timed `h.record(ns)`, so the
//!   lookup's share of the dwcp figures can be read off.
//!
//! metrics-exporter-prometheus is measured in `benches/facade.rs` and not here.
//!
//! Values are `dwcp_support::latency_table(4096)` (ns), cycled; the peers that take `f64` get
//! the same values in seconds (`ns / 1e9`, converted before the run). Each case's label set
//! (the `Req`, the `&[&str]` slice, the `Labels`) is built once outside the timed loop and
//! passed through `black_box` on every call, so every case does its whole lookup (hashing
//! and/or comparing the label values) on every call. Each dwcp family lives in its own
//! registry, so the typed and the dynamic family do not share a series.
//!
//! After the run every side is checked: each dwcp family holds exactly one series (and its
//! overflow series is empty), and that series' count equals the number of calls made
//! (warm-up included); each peer's one series counts its calls too. A figure from a no-op
//! would fail here instead of being reported.
//!
//! Timed with the thread's CPU time (`DWCP_BENCH_WALL=1` for wall-clock time).
//!
//! Run: `cargo bench --bench lookup -- --noplot`. After criterion's output the bench prints
//! this run's medians and the ratio of each to prometheus-client's, read back from criterion's
//! `estimates.json` files written by this run.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, peer_buckets, Inputs, Stopwatch, N};
use dwcp_telemetry::Registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;

const GROUP: &str = "lookup_per_call";
const TYPED: &str = "dwcp_typed";
const DYNAMIC: &str = "dwcp_dynamic";
const PROM_CLIENT: &str = "prometheus_client";
const PROM: &str = "prometheus";
const BOUND: &str = "dwcp_bound_handle";
const NAME: &str = "dwcp_request_duration_seconds";

const MASK: usize = N - 1;

#[derive(Clone, Copy, dwcp_telemetry::LabelValue)]
enum Op {
    Migrate,
    #[allow(dead_code)] // a second value, so `Op` is a real choice; not recorded here
    Replicate,
}

#[derive(dwcp_telemetry::LabelSet)]
struct Req {
    operation: Op,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct Labels {
    operation: &'static str,
    status: &'static str,
}

fn dwcp_registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry")
}

/// Time `iters` calls of `f` on one thread, values cycled from `table`.
#[inline(always)]
fn run<T: Copy>(sw: Stopwatch, iters: u64, table: &[T; N], mut f: impl FnMut(T)) -> Duration {
    let table = black_box(table);
    let start = sw.start();
    for i in 0..iters as usize {
        f(table[i & MASK]);
    }
    sw.elapsed(start)
}

fn short_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    g
}

fn cases(c: &mut Criterion, sw: Stopwatch) {
    let inputs = Inputs::new();
    let (ns, secs) = (&*inputs.ns, &*inputs.secs);

    // dwcp, typed labels.
    let typed_reg = dwcp_registry();
    let typed = typed_reg
        .histogram(NAME, "h")
        .labels::<Req>()
        .register()
        .expect("register typed family");
    let req = Req {
        operation: Op::Migrate,
        status: "ok",
    };

    // dwcp, dynamic labels.
    let dyn_reg = dwcp_registry();
    let dynamic = dyn_reg
        .histogram(NAME, "h")
        .dynamic_labels(["operation", "status"])
        .register()
        .expect("register dynamic family");
    let values: [&str; 2] = ["migrate", "ok"];

    // dwcp, the handle bound once (reference).
    let bound_reg = dwcp_registry();
    let bound_fam = bound_reg
        .histogram(NAME, "h")
        .labels::<Req>()
        .register()
        .expect("register bound family");
    let bound = bound_fam.get(&req);

    // prometheus-client.
    let pc_family: Family<Labels, PcHistogram, fn() -> PcHistogram> =
        Family::new_with_constructor(|| PcHistogram::new(peer_buckets()));
    let pc_labels = Labels {
        operation: "migrate",
        status: "ok",
    };
    // Registered only to read the count back after the run (`Histogram::count` is test-only).
    let mut pc_reg = prometheus_client::registry::Registry::default();
    pc_reg.register(NAME, "h", pc_family.clone());

    // prometheus (tikv).
    let p_vec = prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(NAME, "h").buckets(peer_buckets()),
        &["operation", "status"],
    )
    .expect("prometheus histogram vec");

    let (mut typed_calls, mut dyn_calls, mut bound_calls) = (0u64, 0u64, 0u64);
    let (mut pc_calls, mut p_calls) = (0u64, 0u64);
    let mut g = short_group(c, GROUP);
    g.bench_function(TYPED, |b| {
        b.iter_custom(|n| {
            typed_calls += n;
            run(sw, n, ns, |v| typed.get(black_box(&req)).record(v))
        })
    });
    g.bench_function(DYNAMIC, |b| {
        b.iter_custom(|n| {
            dyn_calls += n;
            run(sw, n, ns, |v| {
                dynamic
                    .with_labels_or_overflow(black_box(&values))
                    .record(v)
            })
        })
    });
    g.bench_function(PROM_CLIENT, |b| {
        b.iter_custom(|n| {
            pc_calls += n;
            run(sw, n, secs, |s| {
                pc_family.get_or_create(black_box(&pc_labels)).observe(s)
            })
        })
    });
    g.bench_function(PROM, |b| {
        b.iter_custom(|n| {
            p_calls += n;
            run(sw, n, secs, |s| {
                p_vec.with_label_values(black_box(&values)).observe(s)
            })
        })
    });
    g.bench_function(BOUND, |b| {
        b.iter_custom(|n| {
            bound_calls += n;
            run(sw, n, ns, |v| black_box(&bound).record(v))
        })
    });
    g.finish();

    // Nothing measured was a no-op: one series per family, holding every call.
    if typed_calls > 0 {
        assert_eq!(typed.series_count(), 1, "dwcp typed: one series");
        assert_eq!(
            typed.overflow().snapshot().count(),
            0,
            "dwcp typed: no overflow"
        );
        let count = typed
            .try_get(&req)
            .expect("typed series")
            .snapshot()
            .count();
        assert_eq!(count, typed_calls, "dwcp typed: recorded == calls");
        eprintln!("check: dwcp typed: 1 series, {count} recorded = calls, overflow empty");
    }
    if dyn_calls > 0 {
        assert_eq!(dynamic.series_count(), 1, "dwcp dynamic: one series");
        assert_eq!(
            dynamic.overflow().snapshot().count(),
            0,
            "dwcp dynamic: no overflow"
        );
        let count = dynamic
            .try_with_labels(&values)
            .expect("dynamic series")
            .snapshot()
            .count();
        assert_eq!(count, dyn_calls, "dwcp dynamic: recorded == calls");
        eprintln!("check: dwcp dynamic: 1 series, {count} recorded = calls, overflow empty");
    }
    if bound_calls > 0 {
        assert_eq!(bound_fam.series_count(), 1, "dwcp bound: one series");
        let count = bound.snapshot().count();
        assert_eq!(count, bound_calls, "dwcp bound: recorded == calls");
        eprintln!("check: dwcp bound handle: 1 series, {count} recorded = calls");
    }
    if pc_calls > 0 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &pc_reg).expect("encode");
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{NAME}_count{{")))
            .filter_map(|l| l.rsplit(' ').next()?.trim().parse().ok())
            .collect();
        assert_eq!(
            counts,
            [pc_calls],
            "prometheus-client: one series, observed == calls"
        );
        eprintln!("check: prometheus-client: 1 series, {pc_calls} observed = calls");
    }
    if p_calls > 0 {
        let count = p_vec
            .get_metric_with_label_values(&values)
            .expect("prometheus series")
            .get_sample_count();
        assert_eq!(count, p_calls, "prometheus: observed == calls");
        eprintln!("check: prometheus: {count} observed = calls");
    }
}

// ---------------------------------------------------------------------------------------------
// Summary read back from criterion's files (as in benches/instrument.rs).

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let get = |id| median_ns(&dir, GROUP, id, since);
    let reference = get(PROM_CLIENT);
    eprintln!(
        "\n== summary: medians of this run ({}) ==\n{GROUP}",
        dir.display()
    );
    for id in [TYPED, DYNAMIC, PROM_CLIENT, PROM, BOUND] {
        let Some(m) = get(id) else { continue };
        let ratio = reference.map_or(String::new(), |r| {
            format!("  {:>5.2}x prometheus-client", m / r)
        });
        eprintln!("  {id:<20} {m:>8.2} ns{ratio}");
    }
}

fn main() {
    let started = SystemTime::now();
    let sw = Stopwatch::from_env();
    eprintln!("timed with {}", sw.label());
    let mut c = Criterion::default().configure_from_args();
    cases(&mut c, sw);
    c.final_summary();
    summary(started);
}
