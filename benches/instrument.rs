//! `#[instrument_dwcp]`, metrics half (no spans): the cost it adds to a call, beside the same
//! function instrumented by hand with the `metrics` macros and metrics-exporter-prometheus
//! 0.18.3, in one run (issue 9: "metrics only (spans off): ≤ 30 ns added per call").
//!
//! Three versions of one small function `migrate(x: u64) -> Result<u64, MyError>` (a few
//! `black_box`ed integer operations; it returns `Ok` for every input of the timed loop), each
//! in its own module so all three have the same name and `operation` label `migrate`:
//! - `baseline`: uninstrumented;
//! - `dwcp`: `#[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG.clone())]`,
//!   `REG` a `static LazyLock<Registry>` (the expression is evaluated once per call site);
//! - `peer`: what a `metrics` user writes by hand for the same four families: `gauge!`
//!   in-flight `+1`, `Instant::now()`, the body, `histogram!(..).record(secs)`,
//!   `counter!(.., "status" => "ok")` (a `match` on the result picks the literal, so every
//!   key stays a `static`), `-1` on the gauge. Recorded into a metrics-exporter-prometheus
//!   recorder entered with `metrics::with_local_recorder` around the timed loop (as in
//!   `benches/facade.rs`: one process can install one global recorder, once).
//!
//! All three functions are `#[inline(never)]`, so each case pays one call and the same body;
//! "added per call" is the case's median minus the baseline's median, in the same run.
//!
//! The peer's histogram keeps every sample in a buffer until `run_upkeep`; it is drained after
//! each criterion sample (one `iter_custom` call), outside the timed region, as
//! `benches/facade.rs` does. Growing that buffer inside a sample is the peer's own cost.
//!
//! After the run every side is checked: the dwcp registry's `dwcp_requests_total{status="ok"}`
//! and histogram count equal the number of calls made and the in-flight gauge is back at 0;
//! the peer's rendered `dwcp_requests_total` equals its number of calls. A figure from a
//! no-op would fail here instead of being reported.
//!
//! `#[tracing::instrument]` is not measured: without a subscriber it only creates a disabled
//! span, and the comparable setup (a subscriber with an OpenTelemetry metrics layer) needs
//! dependencies this package does not have.
//!
//! Timed with the thread's CPU time (`DWCP_BENCH_WALL=1` for wall-clock time).
//!
//! Run: `cargo bench --bench instrument -- --noplot`. After criterion's output the bench prints
//! this run's medians, the added ns per call, the ratio to the peer's added cost and the goal
//! check, read back from criterion's `estimates.json` files written by this run.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, Stopwatch};
use dwcp_telemetry::instrument::{DURATION, IN_FLIGHT, REQUESTS};
use dwcp_telemetry::Registry;
use metrics_exporter_prometheus::PrometheusBuilder;

const GROUP: &str = "instrument_ok_call";
const BASELINE: &str = "baseline";
const DWCP: &str = "dwcp";
const PEER: &str = "metrics_exporter_prometheus";
/// The goal: nanoseconds `#[instrument_dwcp]` may add to a call.
const GOAL_NS: f64 = 30.0;

#[derive(Debug)]
pub enum MyError {
    Overflow,
}

/// The body shared by the three versions: a little integer work the optimiser cannot remove.
#[inline(always)]
fn body(x: u64) -> Result<u64, MyError> {
    let x = black_box(x);
    if x == u64::MAX {
        return Err(MyError::Overflow);
    }
    Ok(black_box(
        x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ x,
    ))
}

mod baseline {
    use super::{body, MyError};

    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

static REG: LazyLock<Registry> = LazyLock::new(|| {
    Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry")
});

mod dwcp {
    use super::{body, MyError, REG};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG.clone())]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

mod peer {
    use super::{body, MyError};
    use std::time::Instant;

    /// The same four families, by hand, through the `metrics` macros.
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        let in_flight = metrics::gauge!(
            "dwcp_requests_in_flight",
            "component" => "amst",
            "operation" => "migrate"
        );
        in_flight.increment(1.0);
        let start = Instant::now();
        let out = body(x);
        metrics::histogram!(
            "dwcp_request_duration_seconds",
            "component" => "amst",
            "operation" => "migrate"
        )
        .record(start.elapsed().as_secs_f64());
        match &out {
            Ok(_) => metrics::counter!(
                "dwcp_requests_total",
                "component" => "amst",
                "operation" => "migrate",
                "status" => "ok"
            )
            .increment(1),
            Err(_) => {
                metrics::counter!(
                    "dwcp_requests_total",
                    "component" => "amst",
                    "operation" => "migrate",
                    "status" => "error"
                )
                .increment(1);
                metrics::counter!(
                    "dwcp_errors_total",
                    "component" => "amst",
                    "type" => "MyError"
                )
                .increment(1);
            }
        }
        in_flight.decrement(1.0);
        out
    }
}

/// Time `iters` calls of `f` (inputs `0..iters`, all `Ok`).
#[inline(always)]
fn run(sw: Stopwatch, iters: u64, f: fn(u64) -> Result<u64, MyError>) -> Duration {
    let f = black_box(f);
    let start = sw.start();
    for i in 0..iters {
        let _ = black_box(f(black_box(i)));
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

/// The value of the one `dwcp_requests_total` line with `status="ok"` in a text render.
fn rendered_ok_requests(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("dwcp_requests_total{") && l.contains("status=\"ok\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn cases(c: &mut Criterion, sw: Stopwatch) {
    let peer_rec = PrometheusBuilder::new()
        .set_buckets(
            &(0..16)
                .map(|k| 1e-5 * f64::from(1u32 << k))
                .collect::<Vec<_>>(),
        )
        .expect("buckets")
        .build_recorder();
    let peer_handle = peer_rec.handle();

    let mut dwcp_calls = 0u64;
    let mut peer_calls = 0u64;
    let mut g = short_group(c, GROUP);
    g.bench_function(BASELINE, |b| {
        b.iter_custom(|n| run(sw, n, baseline::migrate))
    });
    g.bench_function(DWCP, |b| {
        b.iter_custom(|n| {
            dwcp_calls += n;
            run(sw, n, dwcp::migrate)
        })
    });
    g.bench_function(PEER, |b| {
        b.iter_custom(|n| {
            peer_calls += n;
            let t = metrics::with_local_recorder(&peer_rec, || run(sw, n, peer::migrate));
            peer_handle.run_upkeep(); // drain the sample buffer, untimed
            t
        })
    });
    g.finish();

    // Nothing measured was a no-op.
    if dwcp_calls > 0 {
        let ok = REG
            .existing_counter(REQUESTS)
            .expect("dwcp_requests_total registered")
            .try_with_labels(&["amst", "migrate", "ok"])
            .expect("series")
            .get();
        assert_eq!(ok, dwcp_calls, "dwcp: requests counter == calls");
        let count = REG
            .existing_histogram(DURATION)
            .expect("histogram registered")
            .try_with_labels(&["amst", "migrate"])
            .expect("series")
            .snapshot()
            .count();
        assert_eq!(count, dwcp_calls, "dwcp: durations recorded == calls");
        let in_flight = REG
            .existing_gauge(IN_FLIGHT)
            .expect("gauge registered")
            .try_with_labels(&["amst", "migrate"])
            .expect("series")
            .get();
        assert_eq!(in_flight, 0.0, "dwcp: in flight back at 0");
        eprintln!("check: dwcp dwcp_requests_total{{status=\"ok\"}} = {ok} = calls; {count} durations; in flight 0");
    }
    if peer_calls > 0 {
        let text = peer_handle.render();
        let ok = rendered_ok_requests(&text).expect("peer dwcp_requests_total rendered");
        assert_eq!(ok, peer_calls, "peer: requests counter == calls");
        eprintln!("check: peer dwcp_requests_total{{status=\"ok\"}} = {ok} = calls");
    }
}

// ---------------------------------------------------------------------------------------------
// Summary read back from criterion's files (as in benches/facade.rs).

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let get = |id| median_ns(&dir, GROUP, id, since);
    let (base, ours, peer) = (get(BASELINE), get(DWCP), get(PEER));
    eprintln!(
        "\n== summary: medians of this run ({}) ==\n{GROUP}",
        dir.display()
    );
    let peer_added = base.zip(peer).map(|(b, p)| p - b);
    for (id, m) in [(BASELINE, base), (DWCP, ours), (PEER, peer)] {
        let Some(m) = m else { continue };
        let added = base.map_or(String::new(), |b| {
            format!("  added {:>7.2} ns per call", m - b)
        });
        let ratio = match (base, peer_added) {
            (Some(b), Some(pa)) if id != BASELINE && pa > 0.0 => {
                format!("  {:>5.2}x the peer's added cost", (m - b) / pa)
            }
            _ => String::new(),
        };
        eprintln!("  {id:<30} {m:>8.2} ns{added}{ratio}");
    }
    if let (Some(b), Some(o)) = (base, ours) {
        let added = o - b;
        eprintln!(
            "  goal dwcp added <= {GOAL_NS} ns per call: {added:.2} ns {}",
            if added <= GOAL_NS { "PASS" } else { "FAIL" }
        );
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
