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
//! Every request goes to a simulated dependency (`database` for migrations and replication,
//! `api` for health checks) through a circuit breaker. `--fault-at SECS` makes one fail (or,
//! with `--fault-kind slow`, answer in 150 ms) for `--fault-for SECS` (default 10): its
//! breaker trips, rejects calls, goes half-open after a backoff and closes again once the
//! dependency is back; a recovery loop reconnects meanwhile; the health checks on `/health`
//! turn unhealthy (database) or degraded (api); the SLA decision over the last
//! `--sla-window SECS` (default 10) goes GO → NO-GO → GO. All of it is printed as it happens
//! and on the summary line.
//!
//! ```text
//! cargo run --release --example dwcp_manager -- [--listen 127.0.0.1:9898] [--duration SECS]
//!     [--token TOKEN] [--every SECS] [--anomaly-tick SECS] [--incident-at SECS]
//!     [--incident-for SECS] [--incident-slowdown X] [--fault-at SECS] [--fault-for SECS]
//!     [--fault-kind fail|slow] [--fault-circuit database|api] [--sla-window SECS]
//! curl -s http://127.0.0.1:9898/metrics | head
//! curl -s http://127.0.0.1:9898/metrics | grep dwcp_anomaly
//! curl -s http://127.0.0.1:9898/health    # 503 while the database is down
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dwcp_support::Rng;
use dwcp_telemetry::anomaly::{AnomalyMonitor, DetectorConfig, Direction, Statistic};
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::resilience::{
    BreakerConfig, CallError, CheckResult, CircuitBreaker, HealthChecker, HealthStatus, Outcome,
    Recovery, Selector, SlaConfig, SlaInputs, SlaTracker, Sli, State, Transition,
};
use dwcp_telemetry::{CounterFamily, HistogramFamily, LabelSet, LabelValue, Registry, Snapshot};

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
struct ComponentLabels {
    component: Component,
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

/// A circuit's label value, as exported.
fn circuit_name(c: Circuit) -> &'static str {
    match c {
        Circuit::Database => "database",
        Circuit::Api => "api",
    }
}

/// What an injected fault does to its dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    /// Every call fails (a timeout).
    Fail,
    /// Every call succeeds after `SLOW_FAULT` (the breaker counts it slow).
    Slow,
}

struct Args {
    listen: SocketAddr,
    duration: Option<Duration>,
    token: Option<String>,
    every: Duration,
    anomaly_tick: Duration,
    incident_at: Option<Duration>,
    incident_for: Duration,
    incident_slowdown: f64,
    fault_at: Option<Duration>,
    fault_for: Duration,
    fault_kind: FaultKind,
    fault_circuit: Circuit,
    sla_window: Duration,
}

/// How long a call to a dependency takes during a `--fault-kind slow` fault.
const SLOW_FAULT: Duration = Duration::from_millis(150);

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
        incident_slowdown: 20.0,
        fault_at: None,
        fault_for: Duration::from_secs(10),
        fault_kind: FaultKind::Fail,
        fault_circuit: Circuit::Database,
        sla_window: Duration::from_secs(10),
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
            "--incident-slowdown" => {
                let v = value("--incident-slowdown")?;
                let x: f64 = v.parse().map_err(|e| format!("--incident-slowdown {v}: {e}"))?;
                if !(x.is_finite() && x >= 1.0) {
                    return Err(format!("--incident-slowdown {v}: a factor of at least 1"));
                }
                args.incident_slowdown = x;
            }
            "--fault-at" => args.fault_at = Some(secs("--fault-at", value("--fault-at")?, 0.0)?),
            "--fault-for" => args.fault_for = secs("--fault-for", value("--fault-for")?, 0.0)?,
            "--fault-kind" => {
                args.fault_kind = match value("--fault-kind")?.as_str() {
                    "fail" => FaultKind::Fail,
                    "slow" => FaultKind::Slow,
                    other => return Err(format!("--fault-kind {other:?}: use fail or slow")),
                }
            }
            "--fault-circuit" => {
                args.fault_circuit = match value("--fault-circuit")?.as_str() {
                    "database" => Circuit::Database,
                    "api" => Circuit::Api,
                    other => {
                        return Err(format!("--fault-circuit {other:?}: use database or api"))
                    }
                }
            }
            "--sla-window" => args.sla_window = secs("--sla-window", value("--sla-window")?, 1.0)?,
            "--token" => args.token = Some(value("--token")?),
            "-h" | "--help" => {
                return Err(
                    "usage: dwcp_manager [--listen ADDR] [--duration SECS] [--every SECS] \
                     [--token TOKEN] [--anomaly-tick SECS] [--incident-at SECS] [--incident-for SECS] \
                     [--incident-slowdown X] [--fault-at SECS] [--fault-for SECS] \
                     [--fault-kind fail|slow] [--fault-circuit database|api] [--sla-window SECS]"
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
    bytes: dwcp_telemetry::Counter,
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
            bytes: reg
                .counter(
                    "dwcp_v3_bytes_transferred_total",
                    "Bytes transferred by migrations and replication",
                )
                .register()?
                .handle(),
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

/// The simulated dependencies and what is injected into them: a latency incident (every
/// request slower) and a fault on one circuit.
struct Faults {
    incident: AtomicBool,
    incident_slowdown: f64,
    fault: AtomicBool,
    fault_kind: FaultKind,
    fault_circuit: Circuit,
}

impl Faults {
    /// Whether `circuit`'s dependency is down (or slow) now.
    fn hits(&self, circuit: Circuit) -> bool {
        circuit == self.fault_circuit && self.fault.load(Ordering::Relaxed)
    }

    /// One call to `circuit`'s dependency: its simulated latency in nanoseconds, or the error.
    /// Log-normal around 2 ms, slower during an incident, 0.05 % errors (inside the SLA's
    /// 99.9 % availability); during a fault every
    /// call times out, or (slow fault) really takes `SLOW_FAULT`.
    fn call(&self, circuit: Circuit, rng: &mut Rng) -> Result<u64, (ErrorType, u64)> {
        let slowdown = if self.incident.load(Ordering::Relaxed) {
            self.incident_slowdown
        } else {
            1.0
        };
        let ns = (slowdown * 2e6 * (0.8 * rng.normal()).exp()) as u64;
        if self.hits(circuit) {
            match self.fault_kind {
                FaultKind::Fail => return Err((ErrorType::Timeout, 1_000_000_000)),
                FaultKind::Slow => {
                    std::thread::sleep(SLOW_FAULT);
                    return Ok(ns + SLOW_FAULT.as_nanos() as u64);
                }
            }
        }
        if rng.unit() < 0.0005 {
            let t = ERROR_TYPES[(rng.next_u64() % 3) as usize];
            return Err((t, ns));
        }
        Ok(ns)
    }
}

/// The circuit breakers, recovery loops, health checks and SLA tracker of the service.
#[derive(Clone)]
struct Resilience {
    breakers: [CircuitBreaker; 2],
    health: HealthChecker,
    sla: SlaTracker,
}

impl Resilience {
    fn breaker(&self, c: Circuit) -> &CircuitBreaker {
        &self.breakers[c as usize]
    }

    /// Breakers that trip at 50 % failures or slow calls over the last 50 calls (at least 20),
    /// wait 1, 2, then 4 s in open, and try 3 calls in half-open. Each trip starts a
    /// recovery loop for its dependency; transitions are printed.
    fn new(
        registry: &Registry,
        faults: &Arc<Faults>,
        sla_window: Duration,
    ) -> Result<Resilience, Box<dyn std::error::Error>> {
        let breaker = |c: Circuit| -> Result<CircuitBreaker, Box<dyn std::error::Error>> {
            let recovery = Recovery::new(registry, circuit_name(c))?;
            let faults = faults.clone();
            let config = BreakerConfig::builder()
                .count_window(50)
                .minimum_calls(20)
                .failure_rate_threshold(50.0)
                .slow_calls(50.0, Duration::from_millis(100))
                .backoff(|trip| Duration::from_secs(1 << (trip.clamp(1, 3) - 1)))
                .permitted_calls_in_half_open(3)
                .max_wait_in_half_open(Duration::from_secs(5))
                // A request that never reached the dependency says nothing about it.
                .classify(|e: &ErrorType| match e {
                    ErrorType::Checksum => Outcome::Ignore,
                    ErrorType::Timeout | ErrorType::Network => Outcome::Failure,
                })
                .on_transition(move |t: &Transition| {
                    println!(
                        "dwcp_manager: circuit {}: {} -> {}",
                        t.circuit,
                        t.from.as_str(),
                        t.to.as_str()
                    );
                    if t.from == State::Closed && t.to == State::Open {
                        recover(c, recovery.clone(), faults.clone());
                    }
                })
                .build()?;
            Ok(CircuitBreaker::new(registry, circuit_name(c), config)?)
        };
        let breakers = [breaker(Circuit::Database)?, breaker(Circuit::Api)?];
        let health = HealthChecker::new(registry)?;
        for c in CIRCUITS {
            let (b, faults) = (breakers[c as usize].clone(), faults.clone());
            // The database is critical (unhealthy → 503); the api only degrades the service.
            health.add_check(
                circuit_name(c),
                c == Circuit::Database,
                Duration::from_secs(1),
                move || {
                    if faults.hits(c) {
                        CheckResult::Unhealthy(format!("{} not answering", circuit_name(c)))
                    } else if b.state() != State::Closed {
                        CheckResult::Degraded(format!("circuit {}", b.state().as_str()))
                    } else {
                        CheckResult::Healthy
                    }
                },
            );
        }
        let inputs = SlaInputs::new(Selector::new("dwcp_requests_total"))
            .with_errors(Selector::new("dwcp_requests_total").with_label("status", "error"))
            .with_latency(Selector::new("dwcp_request_duration_seconds"))
            .with_bytes(Selector::new("dwcp_v3_bytes_transferred_total"));
        let windows = [
            sla_window,
            Duration::from_secs(300),
            Duration::from_secs(3600),
        ];
        let sla = SlaTracker::new(
            registry,
            SlaConfig::builder(inputs)
                .windows(windows)
                .decision_window(sla_window)
                .resolution(20)
                .build()?,
        )?;
        Ok(Resilience {
            breakers,
            health,
            sla,
        })
    }
}

/// The recovery loop of a tripped circuit: reconnect every 500 ms until the dependency
/// answers, each attempt timed and counted (`dwcp_recovery_*{component}`).
fn recover(c: Circuit, recovery: Recovery, faults: Arc<Faults>) {
    let spawned = std::thread::Builder::new()
        .name(format!("recover-{}", circuit_name(c)))
        .spawn(move || {
            for attempt in 1.. {
                let guard = recovery.start();
                std::thread::sleep(Duration::from_millis(100)); // the reconnect
                if faults.hits(c) {
                    guard.failure();
                    println!(
                        "dwcp_manager: recovery {}: attempt {attempt} failed",
                        circuit_name(c)
                    );
                    std::thread::sleep(Duration::from_millis(400));
                } else {
                    guard.success();
                    println!(
                        "dwcp_manager: recovery {}: reconnected after {attempt} attempts",
                        circuit_name(c)
                    );
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("dwcp_manager: cannot start the recovery loop: {e}");
    }
}

/// One simulated worker: requests with log-normal latencies through the circuit breaker of
/// their dependency. A rejected call fails fast (a request error of type `network`).
fn worker(id: u64, m: Metrics, r: Resilience, stop: Arc<AtomicBool>, faults: Arc<Faults>) {
    let mut rng = Rng::new(0xD3C9_0000 + id);
    // Bind every handle once; the loop only does atomic adds.
    let ops: Vec<_> = OPERATIONS
        .iter()
        .map(|&operation| {
            let status = |status| RequestLabels { operation, status };
            let circuit = if operation == Operation::HealthCheck {
                Circuit::Api
            } else {
                Circuit::Database
            };
            (
                m.request_duration.get(&OperationLabels { operation }),
                m.requests.get(&status(Status::Success)),
                m.requests.get(&status(Status::Error)),
                r.breaker(circuit).clone(),
                circuit,
                operation,
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
            )
        })
        .collect();
    let errors: Vec<_> = ERROR_TYPES
        .iter()
        .map(|&r#type| m.errors.get(&ErrorLabels { r#type }))
        .collect();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (lat, ok, failed, breaker, circuit, op) =
            &ops[(rng.next_u64() % ops.len() as u64) as usize];
        let (clat, cops, cerr) = &comps[(rng.next_u64() % 6) as usize];
        let result = breaker.call(|| faults.call(*circuit, &mut rng));
        cops.inc();
        match result {
            Ok(ns) => {
                lat.record(ns);
                clat.record(ns / 3);
                ok.inc();
                if *op != Operation::HealthCheck {
                    // A 64 MiB chunk moved: about 3 GB/s at the usual request rate.
                    m.bytes.inc_by(64 << 20);
                }
            }
            Err(e) => {
                let (kind, ns) = match e {
                    CallError::Failed((kind, ns)) => (kind, ns),
                    CallError::NotPermitted(_) => (ErrorType::Network, 50_000),
                };
                lat.record(ns);
                clat.record(ns / 3);
                failed.inc();
                cerr.inc();
                errors[kind as usize].inc();
            }
        }
        n += 1;
        if n % 20 == 0 {
            // About 10-20k requests per second per worker: busy, but leaves the CPU to others.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Schedule `on` at `at` and `off` `lasts` later, on a detached timer thread (it ends with
/// the process).
fn inject(
    name: &str,
    at: Duration,
    lasts: Duration,
    on: impl FnOnce() + Send + 'static,
    off: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            std::thread::sleep(at);
            on();
            std::thread::sleep(lasts);
            off();
        })
        .map(drop)
}

/// The resilience part of the summary line: breaker states, health, SLA decision.
fn resilience_line(r: &Resilience, health: HealthStatus) -> String {
    let sla = r.sla.tick();
    let decision_window = sla.windows.iter().find(|w| w.label == sla.decision_window);
    let availability = decision_window
        .and_then(|w| w.sli(Sli::Availability))
        .and_then(|s| s.value)
        .map_or("-".to_owned(), |a| format!("{:.3}%", a * 100.0));
    let budget = decision_window.map_or(1.0, |w| w.error_budget_remaining);
    format!(
        " circuits database={} api={} health={} sla={} (availability {availability} over {}, budget {:.0}%)",
        r.breaker(Circuit::Database).state().as_str(),
        r.breaker(Circuit::Api).state().as_str(),
        health.as_str(),
        sla.decision.as_str(),
        sla.decision_window,
        budget * 100.0,
    )
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

    let faults = Arc::new(Faults {
        incident: AtomicBool::new(false),
        incident_slowdown: args.incident_slowdown,
        fault: AtomicBool::new(false),
        fault_kind: args.fault_kind,
        fault_circuit: args.fault_circuit,
    });
    let resilience = Resilience::new(&registry, &faults, args.sla_window)?;
    // /health runs the checks (503 while a critical one fails); /metrics/summary has the SLA.
    let mut server = PrometheusServer::builder(registry.clone())
        .bind(args.listen)
        .health(resilience.health.clone())
        .sla(resilience.sla.clone());
    if let Some(t) = &args.token {
        server = server.bearer_token(t.clone());
    }
    let server = server.start_background()?;
    let addr = server.local_addr();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let (m, r, stop, f) = (
                metrics.clone(),
                resilience.clone(),
                stop.clone(),
                faults.clone(),
            );
            std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker(id, m, r, stop, f))
        })
        .collect::<Result<_, _>>()?;
    let monitor = watch_latency(&registry, &metrics, args.anomaly_tick)?;
    // The SLA windows advance once a second, whatever the summary interval.
    let sla_ticker = resilience.sla.spawn(Duration::from_secs(1))?;
    if let Some(at) = args.incident_at {
        let (on, off, lasts) = (faults.clone(), faults.clone(), args.incident_for);
        inject(
            "incident",
            at,
            lasts,
            move || {
                on.incident.store(true, Ordering::Relaxed);
                println!(
                    "dwcp_manager: incident: requests {}x slower for {:.1}s",
                    on.incident_slowdown,
                    lasts.as_secs_f64()
                );
            },
            move || {
                off.incident.store(false, Ordering::Relaxed);
                println!("dwcp_manager: incident over");
            },
        )?;
    }
    if let Some(at) = args.fault_at {
        let (on, off, lasts) = (faults.clone(), faults.clone(), args.fault_for);
        inject(
            "fault",
            at,
            lasts,
            move || {
                on.fault.store(true, Ordering::Relaxed);
                println!(
                    "dwcp_manager: fault: {} {} for {:.1}s",
                    circuit_name(on.fault_circuit),
                    match on.fault_kind {
                        FaultKind::Fail => "failing",
                        FaultKind::Slow => "slow",
                    },
                    lasts.as_secs_f64()
                );
            },
            move || {
                off.fault.store(false, Ordering::Relaxed);
                println!("dwcp_manager: fault over");
            },
        )?;
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
        let mut last_health = HealthStatus::Healthy;
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
            metrics::counter!("dwcp_manager_reports_total").increment(1);
            metrics::histogram!("dwcp_manager_report_interval_seconds").record(secs);
            let health = resilience.health.check().await.status;
            if health != last_health {
                println!(
                    "dwcp_manager: health {} -> {}",
                    last_health.as_str(),
                    health.as_str()
                );
                last_health = health;
            }
            let resilience_summary = resilience_line(&resilience, health);
            if let (Some(now), Some(before)) = (&now, &last) {
                let window = now.delta(before);
                let dr = requests - last_requests;
                let de = errors - last_errors;
                println!(
                    "t={:>5.1}s requests={} ({:.0}/s) p50={:.3}ms p99={:.3}ms max={:.3}ms errors={:.2}%{resilience_summary}",
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
    drop(sla_ticker);
    server.shutdown();
    let requests = total(&metrics.requests, &request_sets);
    println!(
        "dwcp_manager: stopped after {:.1}s, {} requests recorded",
        started.elapsed().as_secs_f64(),
        requests
    );
    Ok(())
}
