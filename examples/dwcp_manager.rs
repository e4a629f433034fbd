//! An instrumented DWCP manager: simulated traffic on worker threads, the seeds' metrics, and
//! `/metrics`, `/health`, `/metrics/summary` served on loopback. Prints a summary every few
//! seconds (the manager's line, then `v3:` and `consensus:` lines); exits cleanly on Ctrl-C or
//! after `--duration SECS`.
//!
//! Every family is registered through the metric catalog (`dwcp_telemetry::catalog`), and
//! every catalog family of the simulated systems moves: the manager's (requests, errors,
//! resources from `/proc`, resilience), the compression selector and its model, the DWCP
//! protocol and the v3 components (streams, migrations, rollout, throughput, health). Beside
//! it runs a simulated consensus node (ProBFT rounds with a rotating leader, a Bullshark DAG,
//! T-PBFT trust scores) on its own registry (`version="1.0.0"`) and its own endpoint,
//! `--consensus-listen` (default `127.0.0.1:9899`; scrape it as a `*-consensus` job). Faults
//! reach it: the rounds led by the node sharing the faulty dependency's host time out, and a
//! slow dependency slows every peer.
//!
//! The consensus node's rounds run through `#[instrument_dwcp]` (`probft_round`): request,
//! error and latency metrics on its registry, and a trace span per sampled round
//! (`probft-consensus` samples 100 %). Spans are exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (gRPC or HTTP/protobuf per `OTEL_EXPORTER_OTLP_PROTOCOL`),
//! and so are both registries' metrics; the last sampled spans also appear on `/status`.
//!
//! An anomaly monitor watches the p99 of each operation's request latency, one interval
//! snapshot per `--anomaly-tick` (default 1 s, warm-up 60 ticks). Alerts are printed, counted
//! in `dwcp_anomaly_detections_total` and logged through `tracing`. `--incident-at SECS`
//! injects a latency incident (every request 20 times slower for `--incident-for SECS`,
//! default 5) to see one.
//!
//! Every request goes to a simulated dependency (`database` for migrations and replication,
//! `api` for health checks) through a circuit breaker. `--fault-at SECS` makes one fail (or,
//! with `--fault-kind slow`, answer in 150 ms and drop one call in five) for
//! `--fault-for SECS` (default 10): its breaker trips, rejects calls, goes half-open after a backoff and closes again once the
//! dependency is back; a recovery loop reconnects meanwhile; the health checks on `/health`
//! turn unhealthy (database) or degraded (api); the SLA decision over the last
//! `--sla-window SECS` (default 10) goes GO → NO-GO → GO. All of it is printed as it happens
//! and on the summary line. `--fault-file PATH` injects the same fault for as long as `PATH`
//! exists (checked every 100 ms), so a person or a test decides when it starts and ends:
//! `touch PATH` to break the dependency, `rm PATH` to mend it. `--incident-file PATH` does
//! the same for the latency incident.
//!
//! ```text
//! cargo run --release --example dwcp_manager -- [--listen 127.0.0.1:9898]
//!     [--consensus-listen 127.0.0.1:9899] [--duration SECS]
//!     [--token TOKEN] [--every SECS] [--anomaly-tick SECS] [--incident-at SECS]
//!     [--incident-for SECS] [--incident-slowdown X] [--fault-at SECS] [--fault-for SECS]
//!     [--fault-file PATH] [--incident-file PATH] [--fault-kind fail|slow] [--fault-circuit database|api] [--sla-window SECS]
//! curl -s http://127.0.0.1:9898/metrics | head
//! curl -s http://127.0.0.1:9898/metrics | grep dwcp_anomaly
//! curl -s http://127.0.0.1:9898/health    # 503 while the database is down
//! curl -s http://127.0.0.1:9899/metrics | grep probft_consensus
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dwcp_support::Rng;
use dwcp_telemetry::anomaly::{AnomalyMonitor, DetectorConfig, Direction, Statistic};
use dwcp_telemetry::catalog::manager as cm;
use dwcp_telemetry::catalog::v3::{self, V3Component};
use dwcp_telemetry::catalog::{bullshark, compression, probft, protocol, tpbft};
use dwcp_telemetry::export::otlp::metrics::init_metrics_from_env;
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::export::status::Journal;
use dwcp_telemetry::resilience::{
    BreakerConfig, CallError, CheckResult, CircuitBreaker, HealthChecker, HealthStatus, Outcome,
    Recovery, Selector, SlaConfig, SlaInputs, SlaTracker, Sli, State, Transition,
};
use dwcp_telemetry::{instrument_dwcp, Counter, Gauge, Histogram, Registry, Snapshot};

/// The operations, errors and circuits of the simulated service (their label values: see
/// `op_name`, `error_name`, `circuit_name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Migrate,
    Replicate,
    HealthCheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorType {
    Timeout,
    Network,
    Checksum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Circuit {
    Database,
    Api,
}

const OPERATIONS: [Operation; 3] = [
    Operation::Migrate,
    Operation::Replicate,
    Operation::HealthCheck,
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

/// An error type's label value, as exported.
fn error_name(e: ErrorType) -> &'static str {
    match e {
        ErrorType::Timeout => "timeout",
        ErrorType::Network => "network",
        ErrorType::Checksum => "checksum",
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
    /// Every call takes `SLOW_FAULT` (the breaker counts it slow), and one in five of them
    /// then times out.
    Slow,
}

struct Args {
    listen: SocketAddr,
    consensus_listen: SocketAddr,
    duration: Option<Duration>,
    token: Option<String>,
    every: Duration,
    anomaly_tick: Duration,
    incident_at: Option<Duration>,
    incident_for: Duration,
    incident_file: Option<std::path::PathBuf>,
    incident_slowdown: f64,
    fault_at: Option<Duration>,
    fault_for: Duration,
    fault_file: Option<std::path::PathBuf>,
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
        consensus_listen: SocketAddr::from(([127, 0, 0, 1], 9899)),
        duration: None,
        token: None,
        every: Duration::from_secs(5),
        anomaly_tick: Duration::from_secs(1),
        incident_at: None,
        incident_for: Duration::from_secs(5),
        incident_file: None,
        incident_slowdown: 20.0,
        fault_at: None,
        fault_for: Duration::from_secs(10),
        fault_file: None,
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
            "--consensus-listen" => {
                let v = value("--consensus-listen")?;
                args.consensus_listen = v
                    .parse()
                    .map_err(|e| format!("--consensus-listen {v}: {e}"))?;
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
            "--fault-file" => args.fault_file = Some(value("--fault-file")?.into()),
            "--incident-file" => args.incident_file = Some(value("--incident-file")?.into()),
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
                    "usage: dwcp_manager [--listen ADDR] [--consensus-listen ADDR] [--duration SECS] [--every SECS] \
                     [--token TOKEN] [--anomaly-tick SECS] [--incident-at SECS] [--incident-for SECS] \
                     [--incident-slowdown X] [--fault-at SECS] [--fault-for SECS] \
                     [--fault-file PATH] [--incident-file PATH] [--fault-kind fail|slow] [--fault-circuit database|api] [--sla-window SECS]"
                        .to_owned(),
                )
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

/// The manager's families, registered by the catalog (`dwcp_telemetry::catalog`): the
/// manager's own (requests, errors, resources from `/proc`), the v3 components, the protocol
/// and the compression selector. The resilience runtime below registers the manager's
/// resilience families itself, with the catalog's definitions.
#[derive(Clone)]
struct Metrics {
    manager: cm::Manager,
    v3: v3::V3,
    protocol: protocol::Protocol,
    compression: compression::Compression,
}

impl Metrics {
    fn register(reg: &Registry) -> Result<Metrics, dwcp_telemetry::RegistrationError> {
        let (manager, _resilience) = cm::register_all(reg)?;
        Ok(Metrics {
            manager,
            v3: v3::register(reg)?,
            protocol: protocol::register(reg)?,
            compression: compression::register(reg)?,
        })
    }

    /// `dwcp_request_duration_seconds{operation}`.
    fn latency(&self, op: Operation) -> Histogram {
        self.manager.request_duration_seconds.get(&cm::Operation {
            operation: op_name(op).into(),
        })
    }

    /// `dwcp_requests_total{operation, status}` (`success` or `error`).
    fn requests(&self, op: Operation, ok: bool) -> Counter {
        self.manager.requests_total.get(&cm::Request {
            operation: op_name(op).into(),
            status: if ok { "success" } else { "error" }.into(),
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
    /// The injected fault in words, as printed: `database failing`.
    fn describe(&self) -> String {
        let kind = match self.fault_kind {
            FaultKind::Fail => "failing",
            FaultKind::Slow => "slow",
        };
        format!("{} {kind}", circuit_name(self.fault_circuit))
    }

    /// Whether `circuit`'s dependency is down (or slow) now.
    fn hits(&self, circuit: Circuit) -> bool {
        circuit == self.fault_circuit && self.fault.load(Ordering::Relaxed)
    }

    /// One call to `circuit`'s dependency: its simulated latency in nanoseconds, or the error.
    /// Log-normal around 2 ms, slower during an incident, 0.05 % errors (inside the SLA's
    /// 99.9 % availability); during a fault every
    /// call times out, or (slow fault) really takes `SLOW_FAULT` and one in five then times
    /// out.
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
                    let waited = ns + SLOW_FAULT.as_nanos() as u64;
                    // An overloaded dependency also drops some calls.
                    if rng.unit() < 0.2 {
                        return Err((ErrorType::Timeout, waited));
                    }
                    return Ok(waited);
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
            let circuit = if operation == Operation::HealthCheck {
                Circuit::Api
            } else {
                Circuit::Database
            };
            (
                m.latency(operation),
                m.requests(operation, true),
                m.requests(operation, false),
                r.breaker(circuit).clone(),
                circuit,
                operation,
            )
        })
        .collect();
    let comps: Vec<_> = V3Component::ALL
        .iter()
        .map(|&component| {
            let labels = v3::Component { component };
            (
                m.v3.component_latency_seconds.get(&labels),
                m.v3.component_operations_total.get(&labels),
                m.v3.component_errors_total.get(&labels),
            )
        })
        .collect();
    let errors: Vec<_> = ERROR_TYPES
        .iter()
        .map(|&t| {
            m.manager.errors_total.get(&cm::ErrorType {
                r#type: error_name(t).into(),
            })
        })
        .collect();
    // Migrations send chunks, replication receives them (AMST carries both).
    let bytes = |direction: &'static str| {
        m.v3.bytes_transferred_total.get(&v3::Transfer {
            component: V3Component::Amst,
            direction: direction.into(),
        })
    };
    let (tx, rx) = (bytes("tx"), bytes("rx"));
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
                // A 64 MiB chunk moved: about 3 GB/s at the usual request rate.
                match op {
                    Operation::Migrate => tx.inc_by(64 << 20),
                    Operation::Replicate => rx.inc_by(64 << 20),
                    Operation::HealthCheck => {}
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

/// Keeps `flag` set while `path` exists, checking every 100 ms; tells `changed` each change.
fn follow_file(path: &std::path::Path, flag: &AtomicBool, changed: impl Fn(bool)) {
    let mut on = false;
    loop {
        let now = path.exists();
        if now != on {
            on = now;
            flag.store(on, Ordering::Relaxed);
            changed(on);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
        let s = m.latency(op).snapshot();
        match &mut merged {
            None => merged = Some(s),
            Some(acc) => acc.merge(&s).ok()?,
        }
    }
    merged
}

/// `dwcp_requests_total` summed over operations: (all, errors).
fn request_totals(m: &Metrics) -> (u64, u64) {
    OPERATIONS.iter().fold((0, 0), |(all, errors), &op| {
        let e = m.requests(op, false).get();
        (all + m.requests(op, true).get() + e, errors + e)
    })
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
            &m.latency(op),
            Statistic::Quantile(0.99),
            detector,
        )?;
    }
    // Detections also go to the status page's journal.
    let journal = Journal::global();
    monitor.on_anomaly(move |metric, a| {
        journal.record_anomaly(metric, a);
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

/// The consensus node's `version` label (its own software, not the manager's 3.0.0).
const CONSENSUS_VERSION: &str = "1.0.0";

/// How often the platform and consensus simulations step.
const SIM_TICK: Duration = Duration::from_millis(100);

/// Log-normal around `median` with spread `sigma`.
fn lognormal(rng: &mut Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * rng.normal()).exp()
}

/// The fault as the simulations see it: `(down, slow)` when it is injected now.
fn fault_now(faults: &Faults) -> (bool, bool) {
    let on = faults.fault.load(Ordering::Relaxed);
    (
        on && faults.fault_kind == FaultKind::Fail,
        on && faults.fault_kind == FaultKind::Slow,
    )
}

/// The rest of the manager, every `SIM_TICK`: the DWCP protocol (streams, bandwidth,
/// packet loss, latency), the v3 components' gauges, VM migrations, the v3 rollout and the
/// compression selector with its model. A fault degrades them: a failing or slow dependency
/// takes a component down (`ass` for the database, `itp` for the api: its health probe
/// fails) and pauses the rollout; on the database it fails migrations. A failing one cuts
/// the traffic and raises packet loss; a slow one adds its latency to the link and the
/// model, so the selector falls back to its default algorithm.
fn platform(m: Metrics, stop: Arc<AtomicBool>, faults: Arc<Faults>) {
    let mut rng = Rng::new(0x0D3C_97A7);
    let (p, v, c) = (&m.protocol, &m.v3, &m.compression);
    let comp = |component| v3::Component { component };
    let health: Vec<Gauge> = V3Component::ALL
        .iter()
        .map(|&x| v.component_health.get(&comp(x)))
        .collect();
    let throughput = |component, direction: &'static str, transport: &'static str| {
        v.throughput_bytes_per_second.get(&v3::Throughput {
            component,
            direction: direction.into(),
            transport: transport.into(),
        })
    };
    let flows = [
        (throughput(V3Component::Amst, "tx", "rdma"), 0.5),
        (throughput(V3Component::Amst, "rx", "rdma"), 0.3),
        (throughput(V3Component::Hde, "tx", "tcp"), 0.2),
    ];
    let resources: Vec<(Gauge, f64)> = [
        ("cpu", 0.45),
        ("memory", 0.6),
        ("network", 0.5),
        ("disk", 0.3),
    ]
    .iter()
    .map(|&(r, base)| {
        let g = v
            .resource_utilization
            .get(&v3::Resource { resource: r.into() });
        (g, base)
    })
    .collect();
    // Each region's rollout advances toward its stage's target while no fault is active.
    let mut rollout: Vec<(Gauge, f64, f64, f64)> = [
        ("us-east", "100pct", 0.6, 1.0, 0.0010),
        ("eu-west", "50pct", 0.3, 0.5, 0.0005),
        ("ap-south", "10pct", 0.02, 0.1, 0.0002),
    ]
    .iter()
    .map(|&(region, stage, from, to, step)| {
        let g = v.rollout_progress_ratio.get(&v3::Rollout {
            stage: stage.into(),
            region: region.into(),
        });
        (g, from, to, step)
    })
    .collect();
    let migration = |mode, source: &'static str, destination: &'static str| {
        let latency = v.migration_latency_seconds.get(&v3::Migration {
            source: source.into(),
            destination: destination.into(),
            vm_size: "4GB".into(),
            mode,
        });
        let outcome = |status| {
            v.migrations_total
                .get(&v3::MigrationOutcome { mode, status })
        };
        (
            latency,
            outcome(v3::Outcome::Success),
            outcome(v3::Outcome::Failure),
            if mode == v3::Mode::Datacenter {
                6.0
            } else {
                25.0
            },
        )
    };
    let migrations = [
        migration(v3::Mode::Datacenter, "us-east-1a", "us-east-1b"),
        migration(v3::Mode::Internet, "us-east", "eu-west"),
    ];
    // The selector's algorithms: share of selections, expected ratio.
    const MODEL: &str = "v2.3.1";
    let algorithms: Vec<_> = [("zstd", 0.6, 3.2), ("lz4", 0.3, 2.1), ("snappy", 0.1, 1.8)]
        .iter()
        .map(|&(a, share, ratio)| {
            let l = compression::Algorithm {
                algorithm: a.into(),
            };
            let predicted = |confidence: &'static str| {
                c.model_predictions_total.get(&compression::Prediction {
                    prediction: a.into(),
                    confidence: confidence.into(),
                    model_version: MODEL.into(),
                })
            };
            (
                c.algorithm_selected_total.get(&l),
                c.accuracy.get(&l),
                c.ratio_actual.get(&l),
                c.ratio_expected.get(&l),
                predicted("high"),
                predicted("medium"),
                share,
                ratio,
            )
        })
        .collect();
    let model = compression::Model {
        model_version: MODEL.into(),
    };
    let fallback = |reason: &'static str| {
        c.fallback_total.get(&compression::Reason {
            reason: reason.into(),
        })
    };
    let (fallback_timeout, fallback_confidence) =
        (fallback("model_timeout"), fallback("low_confidence"));
    let mut drift = 0.05f64;
    let mut t = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(SIM_TICK);
        t += 1;
        let (down, slow) = fault_now(&faults);
        let incident = faults.incident.load(Ordering::Relaxed);

        // The protocol: 10 Gbit/s links shared with other tenants; AMST allows one stream
        // per 5 MB/s of the bandwidth available now.
        let available = 1.25e9 * (0.7 + 0.3 * rng.unit());
        let load = (0.6 + 0.15 * (t as f64 / 50.0).sin() + 0.05 * rng.normal()).clamp(0.05, 1.0)
            * if down { 0.3 } else { 1.0 };
        let max_streams = (available / 5e6).round();
        let streams = (max_streams * load).round();
        p.bandwidth_available_bytes.handle().set(available);
        p.bandwidth_allocated_bytes.handle().set(available * load);
        p.streams_max.handle().set(max_streams);
        p.streams_active.handle().set(streams);
        p.compression_ratio
            .handle()
            .set(lognormal(&mut rng, 2.6, 0.1).max(1.0));
        p.packet_loss_rate
            .handle()
            .set(if down { 0.02 } else { 0.002 } * rng.unit());
        let mut ms = lognormal(&mut rng, 12.0, 0.2);
        if slow {
            ms += SLOW_FAULT.as_secs_f64() * 1e3;
        }
        if incident {
            ms *= faults.incident_slowdown.min(10.0);
        }
        p.latency_milliseconds.handle().set(ms);

        // v3 components.
        v.active_streams.handle().set(streams);
        v.stream_limit.handle().set(max_streams);
        v.prediction_accuracy.handle().set(
            (0.9 + 0.05 * rng.normal() - if down || slow { 0.1 } else { 0.0 }).clamp(0.0, 1.0),
        );
        v.hde_compression_ratio
            .handle()
            .set(lognormal(&mut rng, 3.0, 0.1).max(1.0));
        for (g, share) in &flows {
            g.set(available * load * share);
        }
        for (i, g) in health.iter().enumerate() {
            // Its 100 ms health probe fails, or times out on a slow dependency.
            let broken = (faults.hits(Circuit::Database)
                && V3Component::ALL[i] == V3Component::Ass)
                || (faults.hits(Circuit::Api) && V3Component::ALL[i] == V3Component::Itp);
            g.set(if broken { 0.0 } else { 1.0 });
        }
        for (g, base) in &resources {
            g.set(
                (base + 0.05 * rng.normal() + if *base == 0.5 { load - 0.6 } else { 0.0 })
                    .clamp(0.0, 1.0),
            );
        }
        for (g, at, to, step) in rollout.iter_mut() {
            if !(down || slow) {
                *at = (*at + *step).min(*to);
            }
            g.set(*at);
        }
        // A migration finishes about every 200 ms; they fail while the database is down.
        if rng.unit() < 0.5 {
            let (latency, ok, failed, median) = &migrations[(rng.next_u64() % 2) as usize];
            let mut secs = lognormal(&mut rng, *median, 0.3);
            if slow {
                secs *= 2.0;
            }
            latency.record_secs(secs);
            // The switch-over commits to the database within 100 ms, or the migration aborts.
            if faults.hits(Circuit::Database) || rng.unit() < 0.01 {
                failed.inc();
            } else {
                ok.inc();
            }
        }

        // The compression selector: a few selections per tick, the model behind it.
        let mut defaulted = false;
        for _ in 0..4 {
            let inference = lognormal(&mut rng, 0.0004, 0.3) + if slow { 0.02 } else { 0.0 };
            c.model_inference_duration_seconds
                .get(&model)
                .record_secs(inference);
            c.selector_prediction_duration
                .handle()
                .record_secs(inference + 0.0001);
            let u = rng.unit();
            let mut acc = 0.0;
            let pick = algorithms
                .iter()
                .find(|a| {
                    acc += a.6;
                    u < acc
                })
                .unwrap_or(&algorithms[0]);
            let confident = rng.unit() < 0.8;
            if confident { &pick.4 } else { &pick.5 }.inc();
            if inference > 0.01 {
                fallback_timeout.inc();
                defaulted = true;
                algorithms[0].0.inc();
            } else if rng.unit() < 0.01 {
                fallback_confidence.inc();
                defaulted = true;
                algorithms[0].0.inc();
            } else {
                pick.0.inc();
            }
            c.selection_duration_seconds
                .handle()
                .record_secs(inference + lognormal(&mut rng, 0.0002, 0.3));
        }
        c.default_algorithm_used
            .handle()
            .set(if defaulted { 1.0 } else { 0.0 });
        for a in &algorithms {
            a.1.set((0.92 + 0.02 * rng.normal()).clamp(0.0, 1.0));
            a.2.set((a.7 * (1.0 + 0.05 * rng.normal())).max(1.0));
            a.3.set(a.7 * (1.0 + 0.03 * rng.normal())); // the model's prediction for this data
        }
        c.overhead_percentage
            .handle()
            .set((1.5 + 0.3 * rng.normal()).max(0.0) + if slow { 4.0 } else { 0.0 });
        c.throughput_bytes_per_second
            .handle()
            .set(lognormal(&mut rng, 8e8, 0.1));
        drift = (drift + 0.002 * rng.normal()).clamp(0.0, 1.0);
        c.model_drift_score.get(&model).set(drift);
        c.model_accuracy_rolling_7d
            .get(&model)
            .set(0.93 - drift / 10.0);
        c.selector_accuracy
            .handle()
            .set((0.92 + 0.01 * rng.normal()).clamp(0.0, 1.0));
    }
}

/// The consensus node's families (ProBFT, Bullshark, T-PBFT), on its own registry.
#[derive(Clone)]
struct Consensus {
    /// The node's registry (its instrumented rounds record into it).
    registry: Registry,
    probft: probft::Probft,
    bullshark: bullshark::Bullshark,
    tpbft: tpbft::Tpbft,
}

/// The ProBFT nodes; this one is `node-01`. `node-03` hosts the manager's dependency (it goes
/// down with a failing one), `node-07` turns Byzantine now and then.
const NODES: [&str; 7] = [
    "node-01", "node-02", "node-03", "node-04", "node-05", "node-06", "node-07",
];
/// The T-PBFT nodes.
const TPBFT_NODES: [&str; 10] = [
    "node-01", "node-02", "node-03", "node-04", "node-05", "node-06", "node-07", "node-08",
    "node-09", "node-10",
];
const DOWN_NODE: usize = 2;
const BYZANTINE_NODE: usize = 6;

impl Consensus {
    fn register(reg: &Registry) -> Result<Consensus, dwcp_telemetry::RegistrationError> {
        Ok(Consensus {
            registry: reg.clone(),
            probft: probft::register(reg)?,
            bullshark: bullshark::register(reg)?,
            tpbft: tpbft::register(reg)?,
        })
    }

    fn view_changes(&self) -> Counter {
        self.probft.view_changes_total.get(&probft::Reason {
            reason: "leader_timeout".into(),
        })
    }

    fn byzantine(&self, kind: &'static str) -> Counter {
        self.probft
            .byzantine_events_detected
            .get(&probft::ByzantineEvent {
                r#type: kind.into(),
            })
    }
}

/// A ProBFT round whose proposal missed the round timeout.
#[derive(Debug)]
struct RoundTimeout;

impl std::fmt::Display for RoundTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("proposal missed the round timeout")
    }
}

/// One ProBFT round led by `leader`, as a handler: `#[instrument_dwcp]` counts it in
/// `dwcp_requests_total{component="probft-consensus",operation="round",status}`, times it and,
/// when sampled, sends its span (with the round and the leader) to the installed sink.
#[instrument_dwcp(
    component = "probft-consensus",
    operation = "round",
    registry = registry,
    skip(registry, timed_out),
    fields(leader = NODES[leader])
)]
fn probft_round(
    registry: &Registry,
    round: u64,
    leader: usize,
    timed_out: bool,
) -> Result<u64, RoundTimeout> {
    if timed_out {
        Err(RoundTimeout)
    } else {
        Ok(round)
    }
}

/// The consensus node, every `SIM_TICK`: five ProBFT rounds (the leader rotates), two
/// Bullshark DAG rounds carrying ~300k tx/s, and T-PBFT's trust scores. `node-03` shares
/// the host of the manager's dependency: while it fails or is slow, the rounds node-03 leads
/// time out (a consensus failure and a view change). A failing one takes node-03 down (its
/// latency is the 1 s timeout, its trust falls); a slow one adds `SLOW_FAULT` to every
/// peer's latency, so rounds, confirmations and finalization slow down and the mempool
/// fills. Every few seconds `node-07` equivocates or sends a bad signature: detected, counted
/// (also by the manager's ACP, `acp`), suspected, confirmed, isolated for 10 s, cleared.
fn consensus(c: Consensus, acp: Counter, stop: Arc<AtomicBool>, faults: Arc<Faults>) {
    let mut rng = Rng::new(0xC0_5E45);
    let (p, b, tp) = (&c.probft, &c.bullshark, &c.tpbft);
    let peers: Vec<Histogram> = NODES[1..]
        .iter()
        .map(|&n| {
            p.network_latency_seconds
                .get(&probft::Peer { peer: n.into() })
        })
        .collect();
    let messages = |t: &'static str| {
        p.message_count_per_round.get(&probft::MessageType {
            message_type: t.into(),
        })
    };
    let (prepare, commit, view_change) = (
        messages("prepare"),
        messages("commit"),
        messages("view_change"),
    );
    let timeouts = p.consensus_failures_total.get(&probft::Reason {
        reason: "timeout".into(),
    });
    let view_changes = c.view_changes();
    let (equivocation, bad_signature) = (
        c.byzantine("equivocation"),
        c.byzantine("invalid_signature"),
    );
    let flagged = |status: &'static str| {
        p.byzantine_nodes_total.get(&probft::NodeStatus {
            status: status.into(),
        })
    };
    let (suspected, confirmed, isolated) = (
        flagged("suspected"),
        flagged("confirmed"),
        flagged("isolated"),
    );
    let node_health: Vec<[Gauge; 3]> = NODES
        .iter()
        .map(|&n| {
            ["healthy", "degraded", "down"].map(|s| {
                p.node_health.get(&probft::NodeHealth {
                    node: n.into(),
                    status: s.into(),
                })
            })
        })
        .collect();
    let dag_error = |t: &'static str| {
        b.dag_validation_errors
            .get(&bullshark::ErrorType { r#type: t.into() })
    };
    let (missing_parent, dag_bad_signature) =
        (dag_error("missing_parent"), dag_error("bad_signature"));
    let rejected = |r: &'static str| {
        b.transactions_rejected
            .get(&bullshark::Reason { reason: r.into() })
    };
    let (invalid, mempool_full) = (rejected("invalid"), rejected("mempool_full"));
    let percentiles = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")].map(|(q, name)| {
        (
            q,
            b.confirmation_latency_seconds.get(&bullshark::Percentile {
                percentile: name.into(),
            }),
        )
    });
    let confirmation = b.transaction_confirmation_duration_seconds.handle();
    let mut confirmations_before = confirmation.snapshot();
    let trust: Vec<(Gauge, Counter, Counter, Counter)> = TPBFT_NODES
        .iter()
        .map(|&n| {
            let change = |direction| {
                tp.trust_score_changes.get(&tpbft::TrustChange {
                    node: n.into(),
                    direction,
                })
            };
            let node = tpbft::Node { node: n.into() };
            (
                tp.node_trust_score.get(&node),
                change(tpbft::Direction::Up),
                change(tpbft::Direction::Down),
                tp.trust_anomalies_detected.get(&node),
            )
        })
        .collect();
    let mut scores = [0.9f64; 10];
    let mut recent = std::collections::VecDeque::with_capacity(100);
    let (mut achieved, mut attempted) = (0u64, 0u64);
    let (mut round, mut strikes, mut isolated_until) = (0u64, 0u32, 0u64);
    let mut mempool = 20_000f64;
    let mut t = 0u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(SIM_TICK);
        t += 1;
        let (down, slow) = fault_now(&faults);
        let delay = if slow { SLOW_FAULT.as_secs_f64() } else { 0.0 };

        // node-07's misbehaviour, seen by ProBFT, the DAG, T-PBFT and the manager's ACP.
        let equivocates = t % 40 == 17;
        let forges = t % 60 == 31;
        if equivocates || forges {
            if equivocates {
                equivocation.inc();
            } else {
                bad_signature.inc();
                p.signature_verification_failures.handle().inc();
                dag_bad_signature.inc();
            }
            acp.inc();
            trust[BYZANTINE_NODE].3.inc();
            scores[BYZANTINE_NODE] -= 0.2;
            trust[BYZANTINE_NODE].2.inc();
            strikes += 1;
            if strikes == 3 {
                isolated_until = t + 100;
            }
        }
        if strikes >= 3 && t >= isolated_until {
            strikes = 0; // cleared after its isolation
        }
        suspected.set(f64::from(u8::from(strikes == 1)));
        confirmed.set(f64::from(u8::from(strikes == 2)));
        isolated.set(f64::from(u8::from(strikes >= 3)));
        for (i, gauges) in node_health.iter().enumerate() {
            let status = match i {
                DOWN_NODE if down => 2,
                DOWN_NODE if slow => 1,
                BYZANTINE_NODE if strikes >= 3 => 2,
                BYZANTINE_NODE if strikes > 0 => 1,
                _ => 0,
            };
            for (s, g) in gauges.iter().enumerate() {
                g.set(f64::from(u8::from(s == status)));
            }
        }
        let up_peers = 6 - u64::from(down) - u64::from(strikes >= 3);
        for (i, h) in peers.iter().enumerate() {
            let secs = if down && i + 1 == DOWN_NODE {
                1.0 // the timeout
            } else {
                lognormal(&mut rng, 0.002, 0.3) + delay
            };
            h.record_secs(secs);
        }

        // ProBFT: five rounds, the leader rotating.
        let mut finalized = 0u64;
        for _ in 0..5 {
            round += 1;
            attempted += 1;
            let leader = (round % 7) as usize;
            // node-03's proposals miss the round timeout while its host is down or slow.
            let timed_out = ((down || slow) && leader == DOWN_NODE) || rng.unit() < 0.002;
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(!timed_out);
            if probft_round(&c.registry, round, leader, timed_out).is_err() {
                timeouts.inc();
                view_changes.inc();
                view_change.record(up_peers);
                continue;
            }
            let secs = lognormal(&mut rng, 0.02, 0.3) + 2.0 * delay;
            p.consensus_rounds_total.handle().inc();
            p.consensus_duration_seconds.handle().record_secs(secs);
            p.quorum_achieved_total.handle().inc();
            p.finalization_duration_seconds
                .handle()
                .record_secs(secs + 0.005);
            p.blocks_finalized_total.handle().inc();
            prepare.record(up_peers);
            commit.record(up_peers);
            achieved += 1;
            finalized += 1;
        }
        p.throughput_transactions_per_second
            .handle()
            .set((finalized * 500) as f64 / SIM_TICK.as_secs_f64());
        p.quorum_achievement_rate
            .handle()
            .set(achieved as f64 / attempted as f64);
        p.quorum_availability
            .handle()
            .set(recent.iter().filter(|&&ok| ok).count() as f64 / recent.len() as f64);

        // Bullshark: two DAG rounds of ~100 vertices, ~30k transactions.
        let factor = if slow {
            0.5
        } else if down {
            0.9
        } else {
            1.0
        };
        let processed = (30_000.0 * factor * (1.0 + 0.05 * rng.normal())).max(0.0);
        b.transactions_processed_total
            .handle()
            .inc_by(processed as u64);
        let tps = processed / SIM_TICK.as_secs_f64();
        b.transactions_per_second.handle().set(tps);
        b.throughput_tx_per_second.handle().set(tps);
        let width = 100 - u64::from(down) - u64::from(strikes >= 3) - rng.next_u64() % 3;
        for _ in 0..2 {
            b.round_duration_seconds
                .handle()
                .record_secs(lognormal(&mut rng, 0.045, 0.2) + delay);
            b.dag_vertices_total.handle().inc_by(width);
        }
        b.dag_width.handle().set(width as f64);
        b.dag_depth
            .handle()
            .set((3 + rng.next_u64() % 3) as f64 + if slow { 4.0 } else { 0.0 });
        b.batch_processing_duration_seconds
            .handle()
            .record_secs(lognormal(&mut rng, 0.02, 0.3));
        for _ in 0..20 {
            confirmation.record_secs(lognormal(&mut rng, 0.3, 0.3) + 2.0 * delay);
        }
        if t % 10 == 0 {
            let now = confirmation.snapshot();
            let window = now.delta(&confirmations_before);
            for (q, g) in &percentiles {
                g.set(window.quantile(*q) as f64 / 1e9);
            }
            confirmations_before = now;
        }
        if down && t % 2 == 0 || t % 25 == 3 {
            missing_parent.inc(); // vertices referencing the missing node's
        }
        mempool = if slow {
            mempool + 3_000.0
        } else {
            mempool * 0.9 + 2_000.0 + 500.0 * rng.normal()
        }
        .clamp(0.0, 100_000.0);
        b.mempool_size.handle().set(mempool.round());
        let usage = mempool / 1_000.0;
        b.mempool_usage_percentage.handle().set(usage);
        if rng.unit() < 0.3 {
            invalid.inc_by(1 + rng.next_u64() % 3);
        }
        if usage > 90.0 {
            mempool_full.inc_by(100);
        }

        // T-PBFT: trust scores drift, the down node's falls, all recover toward 0.9.
        for (i, s) in scores.iter_mut().enumerate() {
            let before = *s;
            let mut next = before + 0.1 * (0.9 - before) + 0.005 * rng.normal();
            if down && i == DOWN_NODE {
                next = before - 0.02;
            }
            *s = next.clamp(0.0, 1.0);
            let (g, up, fall, _) = &trust[i];
            g.set(*s);
            if *s > before {
                up.inc();
            } else if *s < before {
                fall.inc();
            }
        }
        tp.message_reduction_percentage
            .handle()
            .set(35.0 + 2.0 * rng.normal());
        tp.consensus_rounds_per_second
            .handle()
            .set(if slow { 6.0 } else { 60.0 } * (1.0 + 0.05 * rng.normal()));
        tp.performance_improvement
            .handle()
            .set(0.3 + 0.03 * rng.normal());
        let rounds = 6u64;
        for _ in 0..rounds {
            tp.consensus_latency_seconds
                .handle()
                .record_secs(lognormal(&mut rng, 0.03, 0.25) + delay);
        }
        tp.messages_saved_total.handle().inc_by(rounds * 30);
        tp.bandwidth_saved_bytes.handle().inc_by(rounds * 30 * 256);
        tp.transactions_committed_total
            .handle()
            .inc_by(rounds * 200);
    }
}

/// The consensus part of the summary: ProBFT rounds, their p99 over the interval, failures
/// and view changes, the quorum rate, Byzantine detections; Bullshark's throughput,
/// mempool and DAG; T-PBFT's rate and lowest trust.
fn consensus_line(c: &Consensus, rounds_before: u64, p99_window: &Snapshot, secs: f64) -> String {
    let p = &c.probft;
    let min_trust = TPBFT_NODES
        .iter()
        .map(|&n| {
            c.tpbft
                .node_trust_score
                .get(&tpbft::Node { node: n.into() })
                .get()
        })
        .fold(f64::INFINITY, f64::min);
    let rounds = p.consensus_rounds_total.handle().get();
    format!(
        "consensus: probft rounds={rounds} ({:.0}/s) p99={:.3}ms failures={} view_changes={} quorum={:.3} byzantine={} | bullshark tx/s={:.0} mempool={:.1}% dag={}x{} | tpbft rounds/s={:.0} min_trust={:.2}",
        (rounds - rounds_before) as f64 / secs.max(1e-9),
        p99_window.quantile(0.99) as f64 / 1e6,
        p.consensus_failures_total
            .get(&probft::Reason { reason: "timeout".into() })
            .get(),
        c.view_changes().get(),
        p.quorum_achievement_rate.handle().get(),
        c.byzantine("equivocation").get() + c.byzantine("invalid_signature").get(),
        c.bullshark.transactions_per_second.handle().get(),
        c.bullshark.mempool_usage_percentage.handle().get(),
        c.bullshark.dag_depth.handle().get(),
        c.bullshark.dag_width.handle().get(),
        c.tpbft.consensus_rounds_per_second.handle().get(),
        min_trust,
    )
}

/// The v3 / protocol / compression part of the summary.
fn platform_line(m: &Metrics) -> String {
    let migrations = |status| {
        [v3::Mode::Datacenter, v3::Mode::Internet]
            .iter()
            .map(|&mode| {
                m.v3.migrations_total
                    .get(&v3::MigrationOutcome { mode, status })
                    .get()
            })
            .sum::<u64>()
    };
    format!(
        "v3: migrations={} failed={} streams={}/{} link={:.1}ms loss={:.2}% compression={:.2} selector={}",
        migrations(v3::Outcome::Success),
        migrations(v3::Outcome::Failure),
        m.protocol.streams_active.handle().get(),
        m.protocol.streams_max.handle().get(),
        m.protocol.latency_milliseconds.handle().get(),
        m.protocol.packet_loss_rate.handle().get() * 100.0,
        m.protocol.compression_ratio.handle().get(),
        if m.compression.default_algorithm_used.handle().get() > 0.0 {
            "default"
        } else {
            "model"
        },
    )
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
    // The consensus node: its own registry (its own `version`) and its own endpoint, as a
    // separate `*-consensus` scrape job.
    let consensus_registry = Registry::builder().version(CONSENSUS_VERSION).build()?;
    let consensus_metrics = Consensus::register(&consensus_registry)?;
    let mut consensus_server =
        PrometheusServer::builder(consensus_registry.clone()).bind(args.consensus_listen);
    if let Some(t) = &args.token {
        consensus_server = consensus_server.bearer_token(t.clone());
    }
    let consensus_server = consensus_server.start_background()?;
    let consensus_addr = consensus_server.local_addr();
    // OTLP, when OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal form) is set: spans of the
    // instrumented handlers, and both registries' metrics. Nothing else to configure.
    let tracing_guard = dwcp_telemetry::export::otlp::init_tracing_from_env()?;
    // The status page's recent spans: the journal in front of the exporter (or alone).
    dwcp_telemetry::trace::install_sink(Journal::global().span_sink(dwcp_telemetry::trace::sink()));
    let metrics_push = [
        init_metrics_from_env(&registry, "dwcp-manager")?,
        init_metrics_from_env(&consensus_registry, "probft-consensus")?,
    ];
    if let Some(g) = &tracing_guard {
        println!(
            "dwcp_manager: exporting spans over OTLP to {}",
            g.exporter().endpoint()
        );
    }

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
    let simulations = [
        {
            let (m, stop, f) = (metrics.clone(), stop.clone(), faults.clone());
            std::thread::Builder::new()
                .name("platform".into())
                .spawn(move || platform(m, stop, f))?
        },
        {
            let acp = metrics.v3.acp_byzantine_detections_total.get(&v3::Node {
                node: NODES[BYZANTINE_NODE].into(),
            });
            let (c, stop, f) = (consensus_metrics.clone(), stop.clone(), faults.clone());
            std::thread::Builder::new()
                .name("consensus".into())
                .spawn(move || consensus(c, acp, stop, f))?
        },
    ];
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
                    "dwcp_manager: fault: {} for {:.1}s",
                    on.describe(),
                    lasts.as_secs_f64()
                );
            },
            move || {
                off.fault.store(false, Ordering::Relaxed);
                println!("dwcp_manager: fault over");
            },
        )?;
    }

    if let Some(path) = args.fault_file.clone() {
        let f = faults.clone();
        std::thread::Builder::new()
            .name("fault-file".into())
            .spawn(move || {
                follow_file(&path, &f.fault, |on| {
                    if on {
                        println!(
                            "dwcp_manager: fault: {} while {} exists",
                            f.describe(),
                            path.display()
                        );
                    } else {
                        println!("dwcp_manager: fault over");
                    }
                })
            })?;
    }
    if let Some(path) = args.incident_file.clone() {
        let f = faults.clone();
        std::thread::Builder::new()
            .name("incident-file".into())
            .spawn(move || {
                follow_file(&path, &f.incident, |on| {
                    if on {
                        println!(
                            "dwcp_manager: incident: requests {}x slower while {} exists",
                            f.incident_slowdown,
                            path.display()
                        );
                    } else {
                        println!("dwcp_manager: incident over");
                    }
                })
            })?;
    }

    let started = Instant::now();
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
        println!("consensus: serving http://{consensus_addr}/metrics");
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
        let consensus_latency = consensus_metrics.probft.consensus_duration_seconds.handle();
        let mut last_consensus = consensus_latency.snapshot();
        let mut last_rounds = 0u64;
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
            let (requests, errors) = request_totals(&metrics);
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
            let consensus_now = consensus_latency.snapshot();
            println!("  {}", platform_line(&metrics));
            println!(
                "  {}",
                consensus_line(
                    &consensus_metrics,
                    last_rounds,
                    &consensus_now.delta(&last_consensus),
                    secs
                )
            );
            last_consensus = consensus_now;
            last_rounds = consensus_metrics.probft.consensus_rounds_total.handle().get();
            last = now;
            last_requests = requests;
            last_errors = errors;
        }
    });

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    for s in simulations {
        let _ = s.join();
    }
    monitor.stop();
    drop(sla_ticker);
    server.shutdown();
    consensus_server.shutdown();
    // A clean flush of what is queued for the collector, if any.
    for push in metrics_push.into_iter().flatten() {
        push.shutdown(Duration::from_secs(5));
    }
    drop(tracing_guard);
    let (requests, _) = request_totals(&metrics);
    println!(
        "dwcp_manager: stopped after {:.1}s, {} requests recorded",
        started.elapsed().as_secs_f64(),
        requests
    );
    Ok(())
}
