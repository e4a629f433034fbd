//! An instrumented DWCP manager: simulated traffic on worker threads, the seeds' metrics, and
//! `/metrics`, `/health`, `/metrics/summary` served on loopback. Prints a one-line summary
//! every few seconds; exits cleanly on Ctrl-C or after `--duration SECS`.
//!
//! An anomaly monitor watches the p99 of each operation's request latency, one interval
//! snapshot per `--anomaly-tick` (default 1 s, warm-up 60 ticks). Alerts are printed, counted
//! in `dwcp_anomaly_detections_total` and logged through `tracing`. `--incident-at SECS`
//! injects a latency incident (every request 20 times slower for `--incident-for SECS`,
//! default 5) to see one.
//!
//! ```text
//! cargo run --release --example dwcp_manager -- [--listen 127.0.0.1:9898] [--duration SECS]
//!     [--token TOKEN] [--every SECS] [--anomaly-tick SECS] [--incident-at SECS]
//!     [--incident-for SECS]
//! curl -s http://127.0.0.1:9898/metrics | head
//! curl -s http://127.0.0.1:9898/metrics | grep dwcp_anomaly
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dwcp_support::Rng;
use dwcp_telemetry::anomaly::{AnomalyMonitor, DetectorConfig, Direction, Statistic};
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::{
    CounterFamily, GaugeFamily, HistogramFamily, LabelSet, LabelValue, Registry, Snapshot,
};

/// The seeds' label values, typed: a misspelt value or label does not compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
enum Operation {
    Migrate,
    Replicate,
    HealthCheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
enum Status {
    Success,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
enum Component {
    Amst,
    Hde,
    Pba,
    Acp,
    Ass,
    Itp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
enum ErrorType {
    Timeout,
    Network,
    Checksum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, LabelValue)]
enum Circuit {
    Database,
    Api,
}

#[derive(LabelSet)]
struct OperationLabels {
    operation: Operation,
}

#[derive(LabelSet)]
struct RequestLabels {
    operation: Operation,
    status: Status,
}

#[derive(LabelSet)]
struct ErrorLabels {
    r#type: ErrorType,
}

#[derive(LabelSet)]
struct CircuitLabels {
    circuit: Circuit,
}

#[derive(LabelSet)]
struct ComponentLabels {
    component: Component,
}

#[derive(LabelSet)]
struct RecoveryAttemptLabels {
    component: Component,
    success: bool,
}

const OPERATIONS: [Operation; 3] = [
    Operation::Migrate,
    Operation::Replicate,
    Operation::HealthCheck,
];
const COMPONENTS: [Component; 6] = [
    Component::Amst,
    Component::Hde,
    Component::Pba,
    Component::Acp,
    Component::Ass,
    Component::Itp,
];
const ERROR_TYPES: [ErrorType; 3] = [ErrorType::Timeout, ErrorType::Network, ErrorType::Checksum];
const CIRCUITS: [Circuit; 2] = [Circuit::Database, Circuit::Api];

/// An operation's label value, as exported.
fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Migrate => "migrate",
        Operation::Replicate => "replicate",
        Operation::HealthCheck => "health_check",
    }
}

struct Args {
    listen: SocketAddr,
    duration: Option<Duration>,
    token: Option<String>,
    every: Duration,
    anomaly_tick: Duration,
    incident_at: Option<Duration>,
    incident_for: Duration,
}

/// Latency multiplier during an injected incident.
const INCIDENT_SLOWDOWN: f64 = 20.0;

/// Ticks of baseline before the p99 detectors score (a minute at the default tick).
const ANOMALY_WARM_UP: usize = 60;

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
        duration: None,
        token: None,
        every: Duration::from_secs(5),
        anomaly_tick: Duration::from_secs(1),
        incident_at: None,
        incident_for: Duration::from_secs(5),
    };
    let secs = |name: &str, v: String, min: f64| -> Result<Duration, String> {
        let s: f64 = v.parse().map_err(|e| format!("{name} {v}: {e}"))?;
        if s.is_nan() {
            return Err(format!("{name} {v}: not a number of seconds"));
        }
        Duration::try_from_secs_f64(s.max(min))
            .map_err(|e| format!("{name} {v}: not a usable number of seconds ({e})"))
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--duration" => args.duration = Some(secs("--duration", value("--duration")?, 0.0)?),
            "--every" => args.every = secs("--every", value("--every")?, 0.1)?,
            "--anomaly-tick" => {
                args.anomaly_tick = secs("--anomaly-tick", value("--anomaly-tick")?, 0.01)?;
            }
            "--incident-at" => {
                args.incident_at = Some(secs("--incident-at", value("--incident-at")?, 0.0)?);
            }
            "--incident-for" => {
                args.incident_for = secs("--incident-for", value("--incident-for")?, 0.0)?;
            }
            "--token" => args.token = Some(value("--token")?),
            "-h" | "--help" => {
                return Err(
                    "usage: dwcp_manager [--listen ADDR] [--duration SECS] [--every SECS] \
                     [--token TOKEN] [--anomaly-tick SECS] [--incident-at SECS] [--incident-for SECS]"
                        .to_owned(),
                )
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

/// The seeds' DWCP manager metrics.
#[derive(Clone)]
struct Metrics {
    request_duration: HistogramFamily<OperationLabels>,
    requests: CounterFamily<RequestLabels>,
    errors: CounterFamily<ErrorLabels>,
    breaker_state: GaugeFamily<CircuitLabels>,
    breaker_trips: CounterFamily<CircuitLabels>,
    recovery_duration: HistogramFamily<ComponentLabels>,
    recovery_attempts: CounterFamily<RecoveryAttemptLabels>,
    component_latency: HistogramFamily<ComponentLabels>,
    component_operations: CounterFamily<ComponentLabels>,
    component_errors: CounterFamily<ComponentLabels>,
}

impl Metrics {
    fn register(reg: &Registry) -> Result<Metrics, dwcp_telemetry::RegistrationError> {
        Ok(Metrics {
            request_duration: reg
                .histogram(
                    "dwcp_request_duration_seconds",
                    "Request duration in seconds",
                )
                .labels::<OperationLabels>()
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0,
                ])
                .register()?,
            requests: reg
                .counter(
                    "dwcp_requests_total",
                    "Total requests by operation and status",
                )
                .labels::<RequestLabels>()
                .register()?,
            errors: reg
                .counter("dwcp_errors_total", "Total errors by type")
                .labels::<ErrorLabels>()
                .register()?,
            breaker_state: reg
                .gauge(
                    "dwcp_circuit_breaker_state",
                    "Circuit breaker state (0=closed, 1=open, 2=half-open)",
                )
                .labels::<CircuitLabels>()
                .register()?,
            breaker_trips: reg
                .counter(
                    "dwcp_circuit_breaker_trips_total",
                    "Total number of circuit breaker trips",
                )
                .labels::<CircuitLabels>()
                .register()?,
            recovery_duration: reg
                .histogram(
                    "dwcp_recovery_duration_seconds",
                    "Duration of recovery operations in seconds",
                )
                .labels::<ComponentLabels>()
                .register()?, // the seeds' buckets 0.1 … 30 s, from `dwcp_defaults()`
            recovery_attempts: reg
                .counter(
                    "dwcp_recovery_attempts_total",
                    "Total number of recovery attempts",
                )
                .labels::<RecoveryAttemptLabels>()
                .register()?,
            component_latency: reg
                .histogram(
                    "dwcp_v3_component_latency_seconds",
                    "DWCP v3 component latency",
                )
                .labels::<ComponentLabels>()
                .register()?,
            component_operations: reg
                .counter(
                    "dwcp_v3_component_operations_total",
                    "DWCP v3 component operations",
                )
                .labels::<ComponentLabels>()
                .register()?,
            component_errors: reg
                .counter("dwcp_v3_component_errors_total", "DWCP v3 component errors")
                .labels::<ComponentLabels>()
                .register()?,
        })
    }
}

/// One simulated worker: requests with log-normal latencies, ~1 % errors, a breaker that
/// opens on error bursts and a recovery after it.
fn worker(id: u64, m: Metrics, stop: Arc<AtomicBool>, incident: Arc<AtomicBool>) {
    let mut rng = Rng::new(0xD3C9_0000 + id);
    // Bind every handle once; the loop only does atomic adds.
    let ops: Vec<_> = OPERATIONS
        .iter()
        .map(|&operation| {
            let status = |status| RequestLabels { operation, status };
            (
                m.request_duration.get(&OperationLabels { operation }),
                m.requests.get(&status(Status::Success)),
                m.requests.get(&status(Status::Error)),
            )
        })
        .collect();
    let comps: Vec<_> = COMPONENTS
        .iter()
        .map(|&component| {
            let labels = ComponentLabels { component };
            (
                m.component_latency.get(&labels),
                m.component_operations.get(&labels),
                m.component_errors.get(&labels),
                m.recovery_duration.get(&labels),
                m.recovery_attempts.get(&RecoveryAttemptLabels {
                    component,
                    success: true,
                }),
            )
        })
        .collect();
    let errors: Vec<_> = ERROR_TYPES
        .iter()
        .map(|&r#type| m.errors.get(&ErrorLabels { r#type }))
        .collect();
    let circuit = CIRCUITS[(id as usize) % CIRCUITS.len()];
    let breaker = m.breaker_state.get(&CircuitLabels { circuit });
    let trips = m.breaker_trips.get(&CircuitLabels { circuit });
    breaker.set(0.0);
    let mut recent_errors = 0u32;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (lat, ok, failed) = &ops[(rng.next_u64() % ops.len() as u64) as usize];
        // Log-normal around 2 ms, 20 times slower during an injected incident.
        let slowdown = if incident.load(Ordering::Relaxed) {
            INCIDENT_SLOWDOWN
        } else {
            1.0
        };
        let ns = (slowdown * 2e6 * (0.8 * rng.normal()).exp()) as u64;
        lat.record(ns);
        let (clat, cops, cerr, crec, cattempt) = &comps[(rng.next_u64() % 6) as usize];
        clat.record(ns / 3);
        cops.inc();
        if rng.unit() < 0.01 {
            failed.inc();
            cerr.inc();
            errors[(rng.next_u64() % 3) as usize].inc();
            recent_errors += 1;
            if recent_errors >= 3 {
                breaker.set(1.0);
                trips.inc();
                crec.record_secs(0.05 + rng.unit() * 3.0);
                cattempt.inc();
                breaker.set(2.0);
                recent_errors = 0;
            }
        } else {
            ok.inc();
            if recent_errors == 0 {
                breaker.set(0.0);
            }
        }
        n += 1;
        if n % 1_000 == 0 {
            recent_errors = recent_errors.saturating_sub(1);
        }
        if n % 20 == 0 {
            // About 10-20k requests per second per worker: busy, but leaves the CPU to others.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Merge every operation's snapshot into one.
fn all_requests(m: &Metrics) -> Option<Snapshot> {
    let mut merged: Option<Snapshot> = None;
    for op in OPERATIONS {
        let s = m
            .request_duration
            .get(&OperationLabels { operation: op })
            .snapshot();
        match &mut merged {
            None => merged = Some(s),
            Some(acc) => acc.merge(&s).ok()?,
        }
    }
    merged
}

fn total<L: LabelSet>(c: &CounterFamily<L>, label_sets: &[L]) -> u64 {
    label_sets.iter().map(|l| c.get(l).get()).sum()
}

/// One p99 detector per operation on `dwcp_request_duration_seconds`, fed by interval
/// snapshots on a background thread every `tick`. Only slower counts (`Direction::Up`); the
/// baseline spans `ANOMALY_WARM_UP` ticks before anything is scored. The configuration is
/// adapted to the tick (`for_sample_interval`: at one second a day does not fit in the
/// window, so there is no seasonal channel).
fn watch_latency(
    registry: &Registry,
    m: &Metrics,
    tick: Duration,
) -> Result<dwcp_telemetry::anomaly::MonitorHandle, Box<dyn std::error::Error>> {
    let mut monitor = AnomalyMonitor::new(registry)?;
    for op in OPERATIONS {
        let detector = DetectorConfig::for_sample_interval(tick)?
            .with_direction(Direction::Up)
            .with_min_samples(ANOMALY_WARM_UP)
            .build()?;
        monitor.watch_histogram(
            &format!("dwcp_request_duration_seconds:p99:{}", op_name(op)),
            &m.request_duration.get(&OperationLabels { operation: op }),
            Statistic::Quantile(0.99),
            detector,
        )?;
    }
    monitor.on_anomaly(|metric, a| {
        println!(
            "dwcp_manager: anomaly {metric} {} z={:.1} p99={:.3}ms baseline={:.3}ms",
            a.severity.as_str(),
            a.z,
            a.value / 1e6,
            a.baseline_mean / 1e6
        );
    });
    println!(
        "dwcp_manager: watching p99 of dwcp_request_duration_seconds per operation every {:.2}s \
         (warm-up {ANOMALY_WARM_UP} ticks)",
        tick.as_secs_f64()
    );
    Ok(monitor.spawn(tick)?)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("dwcp_manager: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()?;
    // The `metrics` facade, for code that uses `metrics::counter!` & co. Install it first:
    // like any `metrics` recorder, it sees only calls made after `install()`.
    dwcp_telemetry::facade::DwcpRecorder::new(registry.clone())
        .install()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let metrics = Metrics::register(&registry)?;
    metrics::gauge!("dwcp_manager_workers").set(2.0);

    let mut server = PrometheusServer::builder(registry.clone()).bind(args.listen);
    if let Some(t) = &args.token {
        server = server.bearer_token(t.clone());
    }
    let server = server.start_background()?;
    let addr = server.local_addr();

    let stop = Arc::new(AtomicBool::new(false));
    let incident = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let (m, stop, incident) = (metrics.clone(), stop.clone(), incident.clone());
            std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker(id, m, stop, incident))
        })
        .collect::<Result<_, _>>()?;
    let monitor = watch_latency(&registry, &metrics, args.anomaly_tick)?;
    if let Some(at) = args.incident_at {
        let (incident, lasts) = (incident.clone(), args.incident_for);
        // Simulated trouble on a timer thread; detached, it ends with the process.
        std::thread::Builder::new()
            .name("incident".into())
            .spawn(move || {
                std::thread::sleep(at);
                incident.store(true, Ordering::Relaxed);
                println!(
                    "dwcp_manager: incident: requests {INCIDENT_SLOWDOWN}x slower for {:.1}s",
                    lasts.as_secs_f64()
                );
                std::thread::sleep(lasts);
                incident.store(false, Ordering::Relaxed);
                println!("dwcp_manager: incident over");
            })?;
    }

    let started = Instant::now();
    let request_sets: Vec<RequestLabels> = OPERATIONS
        .iter()
        .flat_map(|&operation| {
            [Status::Success, Status::Error].map(|status| RequestLabels { operation, status })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Install the Ctrl-C handler (on its first poll) before announcing the address, so a
        // SIGINT from then on is always a clean stop.
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut interrupted = false;
        tokio::select! {
            biased;
            _ = &mut ctrl_c => interrupted = true,
            _ = std::future::ready(()) => {}
        }
        println!("dwcp_manager: serving http://{addr}/metrics, /health, /metrics/summary");
        if interrupted {
            println!("dwcp_manager: Ctrl-C, stopping");
            return;
        }
        let mut ticker = tokio::time::interval(args.every);
        ticker.tick().await; // the first tick is immediate
        let mut last = all_requests(&metrics);
        let mut last_requests = 0u64;
        let mut last_errors = 0u64;
        let mut last_at = Instant::now();
        let deadline = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => { println!("dwcp_manager: Ctrl-C, stopping"); break; }
                _ = &mut deadline => break,
                _ = ticker.tick() => {}
            }
            let now = all_requests(&metrics);
            let requests = total(&metrics.requests, &request_sets);
            let errors: u64 = request_sets
                .iter()
                .filter(|l| l.status == Status::Error)
                .map(|l| metrics.requests.get(l).get())
                .sum();
            let secs = last_at.elapsed().as_secs_f64();
            last_at = Instant::now();
            metrics::counter!("dwcp_manager_summaries_total").increment(1);
            metrics::histogram!("dwcp_manager_summary_interval_seconds").record(secs);
            if let (Some(now), Some(before)) = (&now, &last) {
                let window = now.delta(before);
                let dr = requests - last_requests;
                let de = errors - last_errors;
                println!(
                    "t={:>5.1}s requests={} ({:.0}/s) p50={:.3}ms p99={:.3}ms max={:.3}ms errors={:.2}%",
                    started.elapsed().as_secs_f64(),
                    requests,
                    dr as f64 / secs.max(1e-9),
                    window.quantile(0.5) as f64 / 1e6,
                    window.quantile(0.99) as f64 / 1e6,
                    window.max() as f64 / 1e6,
                    if dr == 0 { 0.0 } else { 100.0 * de as f64 / dr as f64 },
                );
            }
            last = now;
            last_requests = requests;
            last_errors = errors;
        }
    });

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    monitor.stop();
    server.shutdown();
    let requests = total(&metrics.requests, &request_sets);
    println!(
        "dwcp_manager: stopped after {:.1}s, {} requests recorded",
        started.elapsed().as_secs_f64(),
        requests
    );
    Ok(())
}
