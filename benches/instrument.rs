//! `#[instrument_dwcp]`: the cost it adds to a call, metrics only and with spans, beside the
//! peers in one run (issue 9's goals: metrics only ≤ 30 ns added per call; metrics + span,
//! call not sampled ≤ 40 ns; sampled and exported ≤ 400 ns).
//!
//! One small function `migrate(x: u64) -> Result<u64, MyError>` (a few `black_box`ed integer
//! operations; `Ok` for every input of the timed loop), in one module per case so that each
//! has the same name, argument and `operation` label `migrate`; all `#[inline(never)]`, so
//! every case pays one call and the same body. "Added per call" is the case's median minus
//! the baseline's median, in the same run.
//!
//! | case | what |
//! |---|---|
//! | `baseline` | uninstrumented |
//! | `floor_two_clock_reads` | the body between two reads of the crate's TSC clock (`clock::now_raw`) and their difference in ns: the floor of any per-call timing on this machine |
//! | `floor_timed_record` | the body timed into a histogram bound once, by hand (`Histogram::time`: two clock reads and one record, no counter, gauge or guard): the floor of any per-call latency histogram |
//! | `dwcp` | `#[instrument_dwcp(component = "amst", registry = ..)]`, spans off (no sink, no `tracing` subscriber): metrics only |
//! | `dwcp_span_unsampled` | the same with `sample = 0.0` and a sink installed: the sampling decision is made (and says no) on every call |
//! | `dwcp_span_ratio_10` | `sample = 0.1`, sink installed: 10 % of calls build a span |
//! | `dwcp_span_sampled` | `sample = 1.0`: every call builds a `SpanRecord` (with the `x` argument as an attribute) and submits it to a bounded `MemorySink` that a background thread drains every millisecond, as an exporter's queue would be |
//! | `dwcp_span_sampled_otlp` | the same with the crate's `OtlpSpanExporter` as the sink (HTTP/protobuf, batches of 512, queue 4096) exporting to an in-process receiver (`tests/otlp_support`); calls in chunks of 1024 with an untimed flush after each, so the queue never fills (the accepting path, as `benches/otlp.rs`); its own short group (the receiver keeps every span) |
//! | `metrics_exporter_prometheus` | the same four metric families by hand with the `metrics` macros, recorded into a metrics-exporter-prometheus 0.18.3 recorder (`with_local_recorder`; its histogram buffer drained after each sample, untimed) |
//! | `autometrics` | `#[autometrics(track_concurrency)]` (autometrics 3.0.0, its `metrics` 0.24 backend) on the same function, recorded into the same metrics-exporter-prometheus recorder: its call counter by `result`, its duration histogram and its concurrency gauge, the peer issue 9 names first |
//! | `dwcp_circuit` | `#[instrument_dwcp(component = "amst", registry = .., circuit = "database")]`, spans off: the metrics and a named circuit breaker's permit and outcome per call |
//! | `peer_circuit` | what a user would write instead: the `metrics_exporter_prometheus` case's function called through a failsafe 1.3 breaker (`Config::new().build()`, its defaults) |
//! | `tracing_otel_always_on` | `#[tracing::instrument(level = "info")]` (records `x`) under a `tracing-subscriber` registry with a tracing-opentelemetry 0.34 layer, opentelemetry_sdk 0.33 `Sampler::AlwaysOn`, its `BatchSpanProcessor` and an exporter that discards the batches |
//! | `tracing_otel_ratio_10` | the same with `Sampler::TraceIdRatioBased(0.1)` |
//!
//! The spans-off case runs first: a `tracing` subscriber, once seen, raises `tracing`'s global
//! maximum level for the rest of the process, and `#[instrument_dwcp]` would then make its
//! sampling decision on every call. Our span cases run before the `tracing` peers for the same
//! reason (they measure the sink path alone).
//!
//! After the run every side is checked: each dwcp registry's `dwcp_requests_total{status="ok"}`
//! and histogram count equal its calls and its in-flight gauge is back at 0; the sampled sink
//! received one span per call (none dropped); the 10 % case's spans are 10 % ± 1 % of its calls;
//! the unsampled case's none; the metrics peer's rendered counter equals its calls; the OTel
//! peers' exporters saw spans (AlwaysOn: every call, unless its queue dropped some, which is
//! printed). A figure from a no-op would fail here instead of being reported.
//!
//! Timed with the thread's CPU time (`DWCP_BENCH_WALL=1` for wall-clock time): the background
//! threads that drain our sink and the peers' batch queues are not counted, on either side.
//!
//! **Paired measurement.** This host's speed drifts by a fifth and more over minutes, more
//! than the differences measured here, and criterion runs each case in its own few seconds.
//! So the bench also measures the floors, `dwcp` and `dwcp_span_unsampled` *paired*: 100
//! rounds, each timing a batch of 100 000 baseline calls and then a batch of each case, the
//! case's added cost taken against the baseline batch of its own round. It reports the p10,
//! median and p90 of the rounds, and checks the goals on the medians as well.
//!
//! Run: `cargo bench --bench instrument -- --warm-up-time 1 --measurement-time 3`. After
//! criterion's output the bench prints this run's medians, the added ns per call, the ratios
//! to the peers and the goal checks, read back from criterion's `estimates.json` files, then
//! the paired figures.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, Stopwatch};
use dwcp_telemetry::export::otlp::config::{
    BatchConfig, ExporterConfig, Protocol, ResourceConfig, Signal,
};
use dwcp_telemetry::export::otlp::OtlpSpanExporter;
use dwcp_telemetry::instrument::{DURATION, IN_FLIGHT, REQUESTS};
use dwcp_telemetry::resilience::{CallKind, CircuitBreaker};
use dwcp_telemetry::trace::{self, MemorySink, SpanSink as _};
use dwcp_telemetry::Registry;
use metrics_exporter_prometheus::PrometheusBuilder;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

#[path = "../tests/otlp_support/mod.rs"]
mod otlp_support;
use otlp_support::Receiver;

const GROUP: &str = "instrument_ok_call";
const BASELINE: &str = "baseline";
const FLOOR: &str = "floor_two_clock_reads";
const FLOOR_TIMED: &str = "floor_timed_record";
const DWCP: &str = "dwcp";
const DWCP_UNSAMPLED: &str = "dwcp_span_unsampled";
const DWCP_TEN: &str = "dwcp_span_ratio_10";
const DWCP_SAMPLED: &str = "dwcp_span_sampled";
const PEER: &str = "metrics_exporter_prometheus";
const AUTOMETRICS: &str = "autometrics";
const DWCP_CIRCUIT: &str = "dwcp_circuit";
const PEER_CIRCUIT: &str = "peer_circuit";
const OTEL_ON: &str = "tracing_otel_always_on";
const OTEL_TEN: &str = "tracing_otel_ratio_10";
const GROUP_OTLP: &str = "instrument_ok_call_otlp";
const DWCP_OTLP: &str = "dwcp_span_sampled_otlp";
const BASELINE_ASYNC: &str = "baseline_async";
const DWCP_ASYNC: &str = "dwcp_async";
const BASELINE_TASK: &str = "baseline_async_task";
const DWCP_TASK: &str = "dwcp_async_task";
const BASELINE_BOXED: &str = "baseline_boxed_future";
const DWCP_BOXED: &str = "dwcp_boxed_future";
/// Calls per chunk between two (untimed) flushes of the OTLP exporter.
const CHUNK: u64 = 1024;

#[derive(Debug)]
pub enum MyError {
    Overflow,
}

/// The body shared by every version: a little integer work the optimiser cannot remove.
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

/// The floor of any per-call timing: the body between two reads of the crate's clock, the
/// difference converted to nanoseconds and kept. Nothing else of the instrumentation.
mod floor {
    use super::{body, MyError};
    use dwcp_telemetry::clock;
    use std::hint::black_box;

    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        let start = clock::now_raw();
        let out = body(x);
        black_box(clock::nanos_between(start, clock::now_raw()));
        out
    }
}

/// Two clock reads and one record into a histogram bound once (`Histogram::time`): what
/// timing a call into our own histogram costs by hand, with no counter, gauge or guard.
mod floor_timed {
    use super::{body, MyError};
    use dwcp_telemetry::Histogram;
    use std::sync::LazyLock;

    static H: LazyLock<Histogram> = LazyLock::new(|| {
        super::registry()
            .histogram("dwcp_request_duration_seconds", "Duration")
            .register()
            .expect("histogram")
            .handle()
    });

    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        H.time(|| body(x))
    }
}

fn registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry")
}

static REG: LazyLock<Registry> = LazyLock::new(registry);
static REG_UNSAMPLED: LazyLock<Registry> = LazyLock::new(registry);
static REG_TEN: LazyLock<Registry> = LazyLock::new(registry);
static REG_SAMPLED: LazyLock<Registry> = LazyLock::new(registry);
static REG_OTLP: LazyLock<Registry> = LazyLock::new(registry);
static REG_ASYNC: LazyLock<Registry> = LazyLock::new(registry);
static REG_ASYNC_DYN: LazyLock<Registry> = LazyLock::new(registry);
static REG_BOXED: LazyLock<Registry> = LazyLock::new(registry);
static REG_CIRCUIT: LazyLock<Registry> = LazyLock::new(registry);

mod dwcp {
    use super::{body, MyError, REG};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG.clone())]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

/// The handler form of the README: an `async fn`, polled once (its body never waits) with a
/// waker that does nothing, uninstrumented and instrumented. Twice: polled where it is made
/// (the compiler may keep its state in registers), and polled as an executor polls a task,
/// through `dyn Future` in a function of its own (its state stays in memory).
mod async_fns {
    use super::{body, MyError, REG_ASYNC, REG_ASYNC_DYN, REG_BOXED};
    use std::future::Future;
    use std::pin::pin;
    use std::pin::Pin;
    use std::sync::{Arc, LazyLock};
    use std::task::{Context, Poll, Wake, Waker};

    struct Noop;

    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    static WAKER: LazyLock<Waker> = LazyLock::new(|| Waker::from(Arc::new(Noop)));

    #[inline(always)]
    fn poll_once<F: Future>(f: F) -> F::Output {
        match pin!(f).poll(&mut Context::from_waker(&WAKER)) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the bench's async bodies never wait"),
        }
    }

    async fn plain(x: u64) -> Result<u64, MyError> {
        body(x)
    }

    #[dwcp_telemetry::instrument_dwcp(component = "amst", operation = "migrate", registry = REG_ASYNC.clone())]
    async fn instrumented(x: u64) -> Result<u64, MyError> {
        body(x)
    }

    #[inline(never)]
    pub fn baseline(x: u64) -> Result<u64, MyError> {
        poll_once(plain(x))
    }

    #[inline(never)]
    pub fn dwcp(x: u64) -> Result<u64, MyError> {
        poll_once(instrumented(x))
    }

    type Task<'a> = Pin<&'a mut dyn Future<Output = Result<u64, MyError>>>;

    #[inline(never)]
    fn poll_task(task: Task<'_>) -> Result<u64, MyError> {
        match task.poll(&mut Context::from_waker(&WAKER)) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the bench's async bodies never wait"),
        }
    }

    #[dwcp_telemetry::instrument_dwcp(component = "amst", operation = "migrate", registry = REG_ASYNC_DYN.clone())]
    async fn instrumented_task(x: u64) -> Result<u64, MyError> {
        body(x)
    }

    type Boxed = Pin<Box<dyn Future<Output = Result<u64, MyError>> + Send>>;

    /// The shape `#[async_trait]` gives a method.
    fn plain_boxed(x: u64) -> Boxed {
        Box::pin(async move { body(x) })
    }

    #[dwcp_telemetry::instrument_dwcp(component = "amst", operation = "migrate", registry = REG_BOXED.clone())]
    fn instrumented_boxed(x: u64) -> Boxed {
        Box::pin(async move { body(x) })
    }

    #[inline(never)]
    pub fn baseline_boxed(x: u64) -> Result<u64, MyError> {
        poll_task(plain_boxed(x).as_mut())
    }

    #[inline(never)]
    pub fn dwcp_boxed(x: u64) -> Result<u64, MyError> {
        poll_task(instrumented_boxed(x).as_mut())
    }

    #[inline(never)]
    pub fn baseline_task(x: u64) -> Result<u64, MyError> {
        poll_task(pin!(plain(x)))
    }

    #[inline(never)]
    pub fn dwcp_task(x: u64) -> Result<u64, MyError> {
        poll_task(pin!(instrumented_task(x)))
    }
}

/// The handler behind a circuit breaker, as `circuit = ".."` gives it: the macro's metrics
/// plus the registry's named breaker (`dwcp_circuit_breaker_*`) on every call.
///
/// `circuit` needs an error type that a refusal converts into; `MyError` stays as it is, so
/// that the baseline's code does not change: the case's function maps its error back (a
/// cost counted against us).
mod dwcp_circuit {
    use super::{body, MyError, REG_CIRCUIT};
    use dwcp_telemetry::resilience::NotPermitted;

    #[derive(Debug)]
    pub enum CircuitError {
        Inner(MyError),
        Rejected,
    }

    impl From<NotPermitted> for CircuitError {
        fn from(_: NotPermitted) -> Self {
            CircuitError::Rejected
        }
    }

    #[dwcp_telemetry::instrument_dwcp(component = "amst", operation = "migrate", registry = REG_CIRCUIT.clone(), circuit = "database")]
    fn handler(x: u64) -> Result<u64, CircuitError> {
        body(x).map_err(CircuitError::Inner)
    }

    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        match handler(x) {
            Ok(v) => Ok(v),
            Err(CircuitError::Inner(e)) => Err(e),
            Err(CircuitError::Rejected) => Err(MyError::Overflow),
        }
    }
}

/// What a user would write without us: the `metrics` macros' handler (`peer::migrate`)
/// called through a failsafe breaker with its defaults.
mod peer_circuit {
    use super::MyError;
    use failsafe::CircuitBreaker as _;
    use std::sync::LazyLock;

    type Breaker = failsafe::StateMachine<
        failsafe::failure_policy::OrElse<
            failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
            failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
        >,
        (),
    >;

    static BREAKER: LazyLock<Breaker> = LazyLock::new(|| failsafe::Config::new().build());

    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        match BREAKER.call(|| super::peer::migrate(x)) {
            Ok(v) => Ok(v),
            Err(failsafe::Error::Inner(e)) => Err(e),
            Err(failsafe::Error::Rejected) => Err(MyError::Overflow),
        }
    }
}

mod dwcp_unsampled {
    use super::{body, MyError, REG_UNSAMPLED};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG_UNSAMPLED.clone(), sample = 0.0)]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

mod dwcp_ten {
    use super::{body, MyError, REG_TEN};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG_TEN.clone(), sample = 0.1)]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

mod dwcp_sampled {
    use super::{body, MyError, REG_SAMPLED};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG_SAMPLED.clone(), sample = 1.0)]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

mod dwcp_otlp {
    use super::{body, MyError, REG_OTLP};

    #[dwcp_telemetry::instrument_dwcp(component = "amst", registry = REG_OTLP.clone(), sample = 1.0)]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

mod otel {
    use super::{body, MyError};

    #[tracing::instrument(level = "info")]
    #[inline(never)]
    pub fn migrate(x: u64) -> Result<u64, MyError> {
        body(x)
    }
}

/// autometrics on the same function: `function_calls_total{function, module, result, ..}`,
/// `function_calls_duration_seconds` and, with `track_concurrency`, a gauge of calls in
/// flight (the three things `#[instrument_dwcp]` records without spans).
mod autometrics_peer {
    use super::{body, MyError};

    #[autometrics::autometrics(track_concurrency)]
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

/// The OTel peers' exporter: counts the spans of each batch and discards them.
#[derive(Debug, Clone, Default)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// A `tracing` dispatcher with the tracing-opentelemetry layer over an SDK provider.
fn otel_dispatch(sampler: Sampler) -> (tracing::Dispatch, SdkTracerProvider, Discard) {
    let exporter = Discard::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("bench");
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    (tracing::Dispatch::new(subscriber), provider, exporter)
}

/// Time `iters` calls of `f` (inputs `0..iters`, all `Ok`).
#[inline(always)]
fn run(sw: Stopwatch, iters: u64, f: Migrate) -> Duration {
    let f = black_box(f);
    let start = sw.start();
    for i in 0..iters {
        let _ = black_box(f(black_box(i)));
    }
    sw.elapsed(start)
}

/// Every case's function.
type Migrate = fn(u64) -> Result<u64, MyError>;

/// Rounds and calls per batch of the paired measurement.
const PAIRED_ROUNDS: usize = 100;
const PAIRED_BATCH: u64 = 100_000;

/// One case's added ns per call in the paired measurement: p10, median, p90 over the rounds.
struct Paired {
    case: &'static str,
    added: [f64; 3],
}

/// The paired measurement: `PAIRED_ROUNDS` rounds, each timing one batch of the baseline and
/// then one batch of each case; a case's added cost in a round is its batch's ns per call
/// minus the baseline's. Every case is measured within milliseconds of its baseline, so a
/// change in the host's speed between criterion's separate runs (this host drifts by a
/// fifth and more over minutes) moves both sides alike.
fn paired(sw: Stopwatch, cases: &[(&'static str, Migrate)]) -> Vec<Paired> {
    let per_call = |d: Duration| d.as_nanos() as f64 / PAIRED_BATCH as f64;
    let mut added = vec![Vec::with_capacity(PAIRED_ROUNDS); cases.len()];
    for _ in 0..PAIRED_ROUNDS {
        let base = per_call(run(sw, PAIRED_BATCH, baseline::migrate));
        for (k, (_, f)) in cases.iter().enumerate() {
            added[k].push(per_call(run(sw, PAIRED_BATCH, *f)) - base);
        }
    }
    cases
        .iter()
        .zip(added)
        .map(|((case, _), mut a)| {
            a.sort_by(f64::total_cmp);
            let at = |q: f64| a[((a.len() - 1) as f64 * q).round() as usize];
            Paired {
                case,
                added: [at(0.1), at(0.5), at(0.9)],
            }
        })
        .collect()
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

/// autometrics' rendered `function_calls_total{function="migrate",..,result="ok"}` value.
fn rendered_autometrics_ok(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| {
            l.starts_with("function_calls_total{")
                && l.contains("function=\"migrate\"")
                && l.contains("result=\"ok\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// A registry's `ok` count, duration count and in-flight gauge are exact.
fn check_registry(name: &str, reg: &Registry, calls: u64) {
    if calls == 0 {
        return;
    }
    let ok = reg
        .existing_counter(REQUESTS)
        .expect("dwcp_requests_total registered")
        .try_with_labels(&["amst", "migrate", "ok"])
        .expect("series")
        .get();
    assert_eq!(ok, calls, "{name}: requests counter == calls");
    let count = reg
        .existing_histogram(DURATION)
        .expect("histogram registered")
        .try_with_labels(&["amst", "migrate"])
        .expect("series")
        .snapshot()
        .count();
    assert_eq!(count, calls, "{name}: durations recorded == calls");
    let in_flight = reg
        .existing_gauge(IN_FLIGHT)
        .expect("gauge registered")
        .try_with_labels(&["amst", "migrate"])
        .expect("series")
        .get();
    assert_eq!(in_flight, 0.0, "{name}: in flight back at 0");
    eprintln!(
        "check: {name} dwcp_requests_total{{status=\"ok\"}} = {ok} = calls; {count} durations; in flight 0"
    );
}

/// Drains `sink` every millisecond until `stop`, counting what it took.
fn drainer(sink: Arc<MemorySink>, stop: Arc<AtomicBool>, taken: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
        let n = sink.take().len();
        taken.fetch_add(n as u64, Ordering::Relaxed);
    }
    taken.fetch_add(sink.take().len() as u64, Ordering::Relaxed);
}

fn cases(c: &mut Criterion, sw: Stopwatch) -> Vec<Paired> {
    let peer_rec = PrometheusBuilder::new()
        .set_buckets(&dwcp_support::bench::peer_buckets())
        .expect("buckets")
        .build_recorder();
    let peer_handle = peer_rec.handle();

    let mut calls = [0u64; 11];
    let mut g = short_group(c, GROUP);
    g.bench_function(BASELINE, |b| {
        b.iter_custom(|n| run(sw, n, baseline::migrate))
    });
    g.bench_function(FLOOR, |b| b.iter_custom(|n| run(sw, n, floor::migrate)));
    g.bench_function(FLOOR_TIMED, |b| {
        b.iter_custom(|n| run(sw, n, floor_timed::migrate))
    });
    // Spans off: no sink, and no `tracing` subscriber seen yet in this process.
    assert!(trace::uninstall_sink().is_none());
    g.bench_function(DWCP, |b| {
        b.iter_custom(|n| {
            calls[0] += n;
            run(sw, n, dwcp::migrate)
        })
    });
    // Spans off too: the same with `circuit = "database"`.
    g.bench_function(DWCP_CIRCUIT, |b| {
        b.iter_custom(|n| {
            calls[9] += n;
            run(sw, n, dwcp_circuit::migrate)
        })
    });
    let mut pairs = paired(
        sw,
        &[
            (FLOOR, floor::migrate),
            (FLOOR_TIMED, floor_timed::migrate),
            (DWCP, dwcp::migrate),
            (BASELINE_ASYNC, async_fns::baseline),
            (DWCP_ASYNC, async_fns::dwcp),
            (BASELINE_TASK, async_fns::baseline_task),
            (DWCP_TASK, async_fns::dwcp_task),
            (BASELINE_BOXED, async_fns::baseline_boxed),
            (DWCP_BOXED, async_fns::dwcp_boxed),
        ],
    );
    calls[0] += PAIRED_ROUNDS as u64 * PAIRED_BATCH;
    check_registry(DWCP_ASYNC, &REG_ASYNC, PAIRED_ROUNDS as u64 * PAIRED_BATCH);
    check_registry(DWCP_BOXED, &REG_BOXED, PAIRED_ROUNDS as u64 * PAIRED_BATCH);
    check_registry(
        DWCP_TASK,
        &REG_ASYNC_DYN,
        PAIRED_ROUNDS as u64 * PAIRED_BATCH,
    );

    // Spans on: a bounded in-memory sink, drained in the background.
    let sink = Arc::new(MemorySink::new(1 << 20));
    trace::install_sink(sink.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicU64::new(0));
    let drain = {
        let (sink, stop, taken) = (sink.clone(), stop.clone(), taken.clone());
        std::thread::spawn(move || drainer(sink, stop, taken))
    };
    g.bench_function(DWCP_UNSAMPLED, |b| {
        b.iter_custom(|n| {
            calls[1] += n;
            run(sw, n, dwcp_unsampled::migrate)
        })
    });
    pairs.extend(paired(sw, &[(DWCP_UNSAMPLED, dwcp_unsampled::migrate)]));
    calls[1] += PAIRED_ROUNDS as u64 * PAIRED_BATCH;
    let taken_unsampled = taken.load(Ordering::Relaxed) + sink.len() as u64;
    g.bench_function(DWCP_TEN, |b| {
        b.iter_custom(|n| {
            calls[2] += n;
            run(sw, n, dwcp_ten::migrate)
        })
    });
    let taken_ten = taken.load(Ordering::Relaxed) + sink.len() as u64 - taken_unsampled;
    g.bench_function(DWCP_SAMPLED, |b| {
        b.iter_custom(|n| {
            calls[3] += n;
            run(sw, n, dwcp_sampled::migrate)
        })
    });
    stop.store(true, Ordering::Relaxed);
    drain.join().expect("drainer");
    let taken_sampled = taken.load(Ordering::Relaxed) - taken_ten - taken_unsampled;
    trace::uninstall_sink();
    g.finish();

    // Sampled and exported over OTLP (HTTP/protobuf, batches of 512) to an in-process
    // receiver, as benches/otlp.rs does: calls in chunks of 1024, the exporter flushed after
    // each chunk, untimed, so its queue (4096) never fills: the accepting path, not the drop
    // path. A short group: the receiver keeps every span it gets.
    let otlp_rx = Receiver::http();
    let otlp_reg = Registry::builder().build().expect("registry");
    let exporter = Arc::new(
        OtlpSpanExporter::builder()
            .exporter_config(
                ExporterConfig::builder(Signal::Traces)
                    .protocol(Protocol::HttpProtobuf)
                    .endpoint(otlp_rx.endpoint())
                    .build()
                    .expect("exporter config"),
            )
            .batch_config(BatchConfig {
                schedule_delay: Duration::from_secs(5),
                export_timeout: Duration::from_secs(30),
                max_queue_size: 4096,
                max_export_batch_size: 512,
            })
            .resource(ResourceConfig::new("bench"))
            .registry(&otlp_reg)
            .build()
            .expect("exporter"),
    );
    trace::install_sink(exporter.clone());
    let mut otlp_calls = 0u64;
    {
        let mut g = c.benchmark_group(GROUP_OTLP);
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700))
            .sample_size(10);
        g.bench_function(DWCP_OTLP, |b| {
            b.iter_custom(|n| {
                otlp_calls += n;
                let mut total = Duration::ZERO;
                let mut left = n;
                while left > 0 {
                    let k = left.min(CHUNK);
                    total += run(sw, k, dwcp_otlp::migrate);
                    assert!(exporter.flush(Duration::from_secs(30)), "flushed");
                    left -= k;
                }
                total
            })
        });
        g.finish();
    }
    trace::uninstall_sink();
    let mut g = short_group(c, GROUP);

    g.bench_function(PEER, |b| {
        b.iter_custom(|n| {
            calls[4] += n;
            let t = metrics::with_local_recorder(&peer_rec, || run(sw, n, peer::migrate));
            peer_handle.run_upkeep(); // drain the sample buffer, untimed
            t
        })
    });

    g.bench_function(AUTOMETRICS, |b| {
        b.iter_custom(|n| {
            calls[8] += n;
            let t =
                metrics::with_local_recorder(&peer_rec, || run(sw, n, autometrics_peer::migrate));
            peer_handle.run_upkeep(); // drain the sample buffer, untimed
            t
        })
    });

    g.bench_function(PEER_CIRCUIT, |b| {
        b.iter_custom(|n| {
            calls[10] += n;
            let t = metrics::with_local_recorder(&peer_rec, || run(sw, n, peer_circuit::migrate));
            peer_handle.run_upkeep(); // drain the sample buffer, untimed
            t
        })
    });

    let (on_dispatch, on_provider, on_exporter) = otel_dispatch(Sampler::AlwaysOn);
    g.bench_function(OTEL_ON, |b| {
        b.iter_custom(|n| {
            calls[5] += n;
            tracing::dispatcher::with_default(&on_dispatch, || run(sw, n, otel::migrate))
        })
    });
    let (ten_dispatch, ten_provider, ten_exporter) = otel_dispatch(Sampler::TraceIdRatioBased(0.1));
    g.bench_function(OTEL_TEN, |b| {
        b.iter_custom(|n| {
            calls[6] += n;
            tracing::dispatcher::with_default(&ten_dispatch, || run(sw, n, otel::migrate))
        })
    });
    g.finish();

    // Nothing measured was a no-op.
    check_registry(DWCP, &REG, calls[0]);
    check_registry(DWCP_UNSAMPLED, &REG_UNSAMPLED, calls[1]);
    check_registry(DWCP_TEN, &REG_TEN, calls[2]);
    check_registry(DWCP_SAMPLED, &REG_SAMPLED, calls[3]);
    check_registry(DWCP_OTLP, &REG_OTLP, otlp_calls);
    if otlp_calls > 0 {
        let got = otlp_rx.spans().len() as u64;
        assert_eq!(got, otlp_calls, "otlp: spans received == calls");
        let dropped = otlp_reg
            .existing_counter("dwcp_telemetry_otlp_dropped_total")
            .map_or(0, |f| {
                f.with_labels_or_overflow(&["traces", "queue_full"]).get()
            });
        assert_eq!(dropped, 0, "otlp: nothing dropped");
        eprintln!("check: {DWCP_OTLP} receiver got {got} spans = calls, 0 dropped");
    }
    if calls[1] > 0 {
        assert_eq!(taken_unsampled, 0, "unsampled: no span");
    }
    if calls[2] > 0 {
        let share = taken_ten as f64 / calls[2] as f64;
        assert!((0.09..=0.11).contains(&share), "ratio 0.1: {share}");
        eprintln!(
            "check: {DWCP_TEN} {taken_ten} spans of {} calls ({share:.4})",
            calls[2]
        );
    }
    if calls[3] > 0 {
        assert_eq!(sink.dropped(), 0, "sampled: no span dropped by the sink");
        assert_eq!(taken_sampled, calls[3], "sampled: one span per call");
        eprintln!("check: {DWCP_SAMPLED} {taken_sampled} spans = calls, none dropped");
    }
    if calls[4] + calls[10] > 0 {
        // Both cases call `peer::migrate`, into the same recorder.
        let text = peer_handle.render();
        let ok = rendered_ok_requests(&text).expect("peer dwcp_requests_total rendered");
        assert_eq!(ok, calls[4] + calls[10], "peer: requests counter == calls");
        eprintln!(
            "check: {PEER} and {PEER_CIRCUIT} dwcp_requests_total{{status=\"ok\"}} = {ok} = calls"
        );
    }
    if calls[9] > 0 {
        check_registry(DWCP_CIRCUIT, &REG_CIRCUIT, calls[9]);
        let breaker = CircuitBreaker::named(&REG_CIRCUIT, "database").expect("named breaker");
        let ok = breaker.metrics().calls(CallKind::Successful);
        assert_eq!(ok, calls[9], "circuit: successful calls == calls");
        eprintln!("check: {DWCP_CIRCUIT} breaker successful calls = {ok} = calls");
    }
    if calls[8] > 0 {
        let text = peer_handle.render();
        let ok = rendered_autometrics_ok(&text).expect("autometrics function_calls_total rendered");
        assert_eq!(ok, calls[8], "autometrics: calls counter == calls");
        eprintln!("check: {AUTOMETRICS} function_calls_total{{result=\"ok\"}} = {ok} = calls");
    }
    for (name, provider, exporter, n) in [
        (OTEL_ON, &on_provider, &on_exporter, calls[5]),
        (OTEL_TEN, &ten_provider, &ten_exporter, calls[6]),
    ] {
        let _ = provider.force_flush();
        let exported = exporter.0.load(Ordering::Relaxed);
        if n > 0 {
            assert!(exported > 0, "{name}: spans exported");
            eprintln!(
                "check: {name} exported {exported} spans of {n} calls ({:.4}; the rest dropped by its queue or not sampled)",
                exported as f64 / n as f64
            );
        }
    }
    pairs
}

// ---------------------------------------------------------------------------------------------
// Summary read back from criterion's files (as in benches/facade.rs).

fn summary(since: SystemTime, pairs: &[Paired]) {
    let dir = criterion_dir();
    let get = |id: &str| median_ns(&dir, GROUP, id, since);
    let base = get(BASELINE);
    eprintln!(
        "\n== summary: medians of this run ({}) ==\n{GROUP}",
        dir.display()
    );
    let added = |id: &str| {
        let m = if id == DWCP_OTLP {
            median_ns(&dir, GROUP_OTLP, id, since)
        } else {
            get(id)
        };
        base.zip(m).map(|(b, m)| m - b)
    };
    for id in [
        BASELINE,
        FLOOR,
        FLOOR_TIMED,
        DWCP,
        DWCP_UNSAMPLED,
        DWCP_TEN,
        DWCP_SAMPLED,
        DWCP_OTLP,
        PEER,
        AUTOMETRICS,
        DWCP_CIRCUIT,
        PEER_CIRCUIT,
        OTEL_ON,
        OTEL_TEN,
    ] {
        let m = if id == DWCP_OTLP {
            median_ns(&dir, GROUP_OTLP, id, since)
        } else {
            get(id)
        };
        let Some(m) = m else { continue };
        let a = added(id).map_or(String::new(), |a| format!("  added {a:>8.2} ns per call"));
        eprintln!("  {id:<30} {m:>8.2} ns{a}");
    }
    let ratio = |ours: &str, peer: &str| match (added(ours), added(peer)) {
        (Some(o), Some(p)) if p > 0.0 => format!("{:.3}x", o / p),
        _ => "n/a".to_string(),
    };
    eprintln!("  ratios of added cost:");
    eprintln!("    {DWCP} / {AUTOMETRICS}: {}", ratio(DWCP, AUTOMETRICS));
    eprintln!("    {DWCP} / {PEER}: {}", ratio(DWCP, PEER));
    eprintln!(
        "    {DWCP_CIRCUIT} / {PEER_CIRCUIT}: {}",
        ratio(DWCP_CIRCUIT, PEER_CIRCUIT)
    );
    eprintln!(
        "    {DWCP_UNSAMPLED} / {OTEL_TEN}: {}",
        ratio(DWCP_UNSAMPLED, OTEL_TEN)
    );
    eprintln!("    {DWCP_TEN} / {OTEL_TEN}: {}", ratio(DWCP_TEN, OTEL_TEN));
    eprintln!(
        "    {DWCP_SAMPLED} / {OTEL_ON}: {}",
        ratio(DWCP_SAMPLED, OTEL_ON)
    );
    eprintln!("    {DWCP_OTLP} / {OTEL_ON}: {}", ratio(DWCP_OTLP, OTEL_ON));
    for (id, goal, what) in [
        (DWCP, 30.0, "metrics only (spans off)"),
        (DWCP_UNSAMPLED, 40.0, "metrics + span, not sampled"),
        (
            DWCP_OTLP,
            400.0,
            "metrics + span, sampled, exported over OTLP in batches",
        ),
    ] {
        if let Some(a) = added(id) {
            eprintln!(
                "  goal {what}: added <= {goal} ns: {a:.2} ns {}",
                if a <= goal { "PASS" } else { "FAIL" }
            );
        }
    }
    // Not one of the goals (the OTLP case is): `MemorySink` is a test sink, a
    // mutex-guarded deque that this bench's drainer thread empties every millisecond.
    if let Some(a) = added(DWCP_SAMPLED) {
        eprintln!("  reference (no goal): metrics + span, sampled, into a drained MemorySink: added {a:.2} ns");
    }
    eprintln!(
        "\n== paired: {PAIRED_ROUNDS} rounds of {PAIRED_BATCH} calls, each case right after the baseline =="
    );
    eprintln!("  added ns per call: p10 / median / p90");
    for p in pairs {
        let [lo, mid, hi] = p.added;
        eprintln!("  {:<30} {lo:>8.2} {mid:>8.2} {hi:>8.2}", p.case);
    }
    for (id, goal, what) in [
        (DWCP, 30.0, "metrics only (spans off)"),
        (DWCP_UNSAMPLED, 40.0, "metrics + span, not sampled"),
    ] {
        if let Some(p) = pairs.iter().find(|p| p.case == id) {
            let mid = p.added[1];
            eprintln!(
                "  goal {what}, paired median: added <= {goal} ns: {mid:.2} ns {}",
                if mid <= goal { "PASS" } else { "FAIL" }
            );
        }
    }
    // The README's handler form: the metrics-only goal for an `async fn` (its own lean path,
    // `LeanWatch`), measured over the same `async fn` uninstrumented.
    let median = |id: &str| pairs.iter().find(|p| p.case == id).map(|p| p.added[1]);
    for (base, ours, how) in [
        (
            BASELINE_ASYNC,
            DWCP_ASYNC,
            "async fn polled where it is made",
        ),
        (
            BASELINE_TASK,
            DWCP_TASK,
            "async fn polled as a task, through dyn Future",
        ),
        (
            BASELINE_BOXED,
            DWCP_BOXED,
            "fn -> Pin<Box<dyn Future>> (the #[async_trait] shape) polled as a task",
        ),
    ] {
        if let (Some(b), Some(d)) = (median(base), median(ours)) {
            let a = d - b;
            eprintln!(
                "  goal metrics only (spans off), {how}, paired medians over the same uninstrumented: added <= 30 ns: {a:.2} ns {}",
                if a <= 30.0 { "PASS" } else { "FAIL" }
            );
        }
    }
}

fn main() {
    let started = SystemTime::now();
    let sw = Stopwatch::from_env();
    eprintln!("timed with {}", sw.label());
    let mut c = Criterion::default().configure_from_args();
    let pairs = cases(&mut c, sw);
    c.final_summary();
    summary(started, &pairs);
}
