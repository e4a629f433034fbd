//! The DWCP manager (seed 000, "DWCP Manager Metrics"): health, recovery, circuit breaker,
//! performance and resources.
//!
//! The resilience part (health checks, component status, recovery, circuit breakers and the
//! SLA state) is [`Resilience`], registered by [`register_resilience`]; the resilience
//! runtime (issue 11) registers the same families with the same names, labels, kinds and
//! buckets. The rest is [`Manager`] ([`register`]); [`register_all`] registers both and
//! the `/proc`-backed resource refresher.
//!
//! ```
//! use dwcp_telemetry::catalog::manager::{self, RecoveryAttempt, Component};
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").dwcp_defaults().build()?;
//! let r = manager::register_resilience(&registry)?;
//! r.recovery_attempts_total
//!     .get(&RecoveryAttempt { component: "amst".into(), success: true })
//!     .inc();
//! r.recovery_duration_seconds.get(&Component { component: "amst".into() }).record_secs(0.4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{catalog, Text};
use crate::registry::{DEFAULT_BUCKETS, RECOVERY_BUCKETS};
use crate::{LabelSet, LabelValue, RegistrationError, Registry};

/// Outcome of one health check (`status` of `dwcp_health_check_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, LabelValue)]
#[label(crate = crate)]
pub enum CheckStatus {
    /// `success`.
    Success,
    /// `failure`.
    Failure,
}

/// `{status}` of the health-check metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct HealthCheck {
    /// The check's outcome.
    pub status: CheckStatus,
}

/// `{component, status}` of `dwcp_component_status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct ComponentStatus {
    /// The component (`amst`, `database`, …).
    pub component: Text,
    /// Its status (`healthy`, `degraded`, `unhealthy`).
    pub status: Text,
}

/// `{component, success}` of `dwcp_recovery_attempts_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct RecoveryAttempt {
    /// The component recovered.
    pub component: Text,
    /// Whether the attempt succeeded (`"true"` / `"false"`, as the seeds' queries expect).
    pub success: bool,
}

/// `{component}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Component {
    /// The component.
    pub component: Text,
}

/// `{circuit}` of the circuit-breaker metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Circuit {
    /// The breaker's name (`database`, `api`, …).
    pub circuit: Text,
}

/// `{circuit, kind}` of `dwcp_circuit_breaker_calls_total` (issue 11).
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct CircuitCall {
    /// The breaker's name.
    pub circuit: Text,
    /// `successful`, `failed`, `ignored` or `not_permitted`.
    pub kind: Text,
}

/// `{sli, window}` of `dwcp_sla_compliance`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct SlaWindow {
    /// `availability`, `latency_p99`, `error_rate` or `throughput`.
    pub sli: Text,
    /// `5m`, `1h`, `24h`, `7d`, `30d`.
    pub window: Text,
}

/// `{window}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Window {
    /// `5m`, `1h`, `24h`, `7d`, `30d`.
    pub window: Text,
}

/// `{operation}` of `dwcp_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Operation {
    /// The operation (`migrate`, `replicate`, …).
    pub operation: Text,
}

/// `{operation, status}` of `dwcp_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Request {
    /// The operation.
    pub operation: Text,
    /// Its outcome (`ok`, `error`, …).
    pub status: Text,
}

/// `{type}` of `dwcp_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct ErrorType {
    /// The error type (`timeout`, `network`, …).
    pub r#type: Text,
}

/// Which memory `dwcp_memory_usage_bytes` reports (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, LabelValue)]
#[label(crate = crate)]
pub enum MemoryType {
    /// `heap`: resident anonymous memory (`RssAnon` of `/proc/self/status`; `VmData` on
    /// kernels before 4.5).
    Heap,
    /// `stack`: the main thread's stack (`VmStk`).
    Stack,
    /// `rss`: resident set size (`VmRSS`).
    Rss,
}

/// `{type}` of `dwcp_memory_usage_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Memory {
    /// Which memory.
    pub r#type: MemoryType,
}

/// The buckets of `dwcp_request_duration_seconds`: dense around the 100 ms SLA and the
/// 200 ms `HighLatency` threshold (the same as `examples/dwcp_manager.rs`).
pub const REQUEST_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0,
];

#[allow(unreachable_pub)]
mod resilience {
    use super::*;

    catalog! {
        system: "manager_resilience", "DWCP manager: resilience (shared with the resilience runtime)";
        /// The resilience families of the DWCP manager: health checks, component status,
        /// recovery, circuit breakers (seed 000) and the SLA state (issue 11). Kept apart
        /// so the resilience runtime and the catalog agree on one definition.
        pub struct Resilience {
            health_check_total: counter<HealthCheck> = "dwcp_health_check_total" {
                help: "Total number of health checks performed",
                unit: "checks",
                seed: MonitoringAlerting,
            },
            health_check_duration_seconds: histogram<HealthCheck> = "dwcp_health_check_duration_seconds" {
                help: "Duration of health checks in seconds",
                unit: "seconds",
                seed: MonitoringAlerting,
                buckets: DEFAULT_BUCKETS,
            },
            component_status: gauge<ComponentStatus> = "dwcp_component_status" {
                help: "Component status (1 for the component's current status, 0 otherwise)",
                unit: "0 or 1",
                seed: MonitoringAlerting,
            },
            recovery_attempts_total: counter<RecoveryAttempt> = "dwcp_recovery_attempts_total" {
                help: "Total number of recovery attempts",
                unit: "attempts",
                seed: MonitoringAlerting,
            },
            recovery_duration_seconds: histogram<Component> = "dwcp_recovery_duration_seconds" {
                help: "Duration of recovery operations in seconds",
                unit: "seconds",
                seed: MonitoringAlerting,
                buckets: RECOVERY_BUCKETS,
            },
            recovery_success_rate: gauge<Component> = "dwcp_recovery_success_rate" {
                help: "Fraction of recovery attempts that succeeded",
                unit: "ratio 0..1",
                seed: MonitoringAlerting,
                note: "`_rate` is a ratio of attempts (0..1), not a per-second rate; the seed's name is kept.",
            },
            circuit_breaker_state: gauge<Circuit> = "dwcp_circuit_breaker_state" {
                help: "Circuit breaker state (0=closed, 1=open, 2=half-open)",
                unit: "state 0/1/2",
                seed: MonitoringAlerting,
            },
            circuit_breaker_trips_total: counter<Circuit> = "dwcp_circuit_breaker_trips_total" {
                help: "Total number of circuit breaker trips",
                unit: "trips",
                seed: MonitoringAlerting,
            },
            circuit_breaker_resets_total: counter<Circuit> = "dwcp_circuit_breaker_resets_total" {
                help: "Total number of circuit breaker resets",
                unit: "resets",
                seed: MonitoringAlerting,
            },
            circuit_breaker_calls_total: counter<CircuitCall> = "dwcp_circuit_breaker_calls_total" {
                help: "Calls through a circuit breaker by kind (successful, failed, ignored, not_permitted)",
                unit: "calls",
                seed: Catalog,
                note: "Named by issue 11 (resilience4j's call kinds), not by a seed.",
            },
            circuit_breaker_failure_rate: gauge<Circuit> = "dwcp_circuit_breaker_failure_rate" {
                help: "Failure rate of the breaker's sliding window in percent (-1 below the minimum calls)",
                unit: "percent 0..100, -1 = not enough calls",
                seed: Catalog,
                note: "Named by issue 11; `_rate` is a percentage of calls (resilience4j's convention), not a per-second rate.",
            },
            circuit_breaker_slow_call_rate: gauge<Circuit> = "dwcp_circuit_breaker_slow_call_rate" {
                help: "Slow-call rate of the breaker's sliding window in percent (-1 below the minimum calls)",
                unit: "percent 0..100, -1 = not enough calls",
                seed: Catalog,
                note: "Named by issue 11; a percentage of calls, not a per-second rate.",
            },
            sla_compliance: gauge<SlaWindow> = "dwcp_sla_compliance" {
                help: "Whether an SLI met its target over a window (1 compliant, 0 violated)",
                unit: "0 or 1",
                seed: Catalog,
                note: "Named by issue 11; seed 003 describes `slaCompliance` without a name.",
            },
            sla_error_budget_remaining_ratio: gauge<Window> = "dwcp_sla_error_budget_remaining_ratio" {
                help: "Error budget left over a window (1 untouched, 0 spent, negative overspent)",
                unit: "ratio",
                seed: Catalog,
                note: "Named by issue 11.",
            },
            sla_error_budget_burn_rate: gauge<Window> = "dwcp_sla_error_budget_burn_rate" {
                help: "Error rate over the window divided by the target error rate",
                unit: "ratio (1 = spending exactly the budget)",
                seed: Catalog,
                note: "Added by the resilience runtime (issue 11) beside the budget; the SRE workbook's burn rate.",
            },
            sla_decision: gauge<()> = "dwcp_sla_decision" {
                help: "Rollout decision from the SLAs (0=GO, 1=CAUTION, 2=NO-GO)",
                unit: "state 0/1/2",
                seed: Catalog,
                note: "Named by issue 11; seeds 002/003 describe the GO/NO-GO indicator.",
            },
        }
    }
}

#[allow(unreachable_pub)]
mod core {
    use super::*;

    catalog! {
        system: "manager", "DWCP manager";
        /// The DWCP manager's performance and resource families (seed 000).
        pub struct Manager {
            request_duration_seconds: histogram<Operation> = "dwcp_request_duration_seconds" {
                help: "Request duration in seconds",
                unit: "seconds",
                seed: MonitoringAlerting,
                buckets: REQUEST_BUCKETS,
            },
            requests_total: counter<Request> = "dwcp_requests_total" {
                help: "Total requests by operation and status",
                unit: "requests",
                seed: MonitoringAlerting,
            },
            errors_total: counter<ErrorType> = "dwcp_errors_total" {
                help: "Total errors by type",
                unit: "errors",
                seed: MonitoringAlerting,
            },
            memory_usage_bytes: gauge<Memory> = "dwcp_memory_usage_bytes" {
                help: "Current memory usage in bytes",
                unit: "bytes",
                seed: MonitoringAlerting,
                note: "Filled from /proc/self/status at scrape time (heap = RssAnon, the resident anonymous memory; stack = VmStk; rss = VmRSS); `rss` is an addition.",
            },
            goroutines: gauge<()> = "dwcp_goroutines" {
                help: "Current number of OS threads of the process (the seeds' goroutine count)",
                unit: "threads",
                seed: MonitoringAlerting,
                note: "A Rust service has no goroutines: this is the process's OS thread count (/proc/self/status `Threads`), kept under the seed's name because its dashboard queries it.",
            },
            cpu_usage_seconds: gauge<()> = "dwcp_cpu_usage_seconds" {
                help: "CPU time used by the process since it started, in seconds (user + system)",
                unit: "seconds (cumulative)",
                seed: MonitoringAlerting,
                note: "Cumulative, so by convention a counter named `_seconds_total`; it is a gauge under the seed's name because this crate's counters are integers and CPU time is fractional. `rate()` over it gives CPU cores used. Filled from /proc/self/stat at scrape time.",
            },
        }
    }
}

pub use self::core::{Manager, METRICS as CORE_METRICS};
pub use self::resilience::{Resilience, METRICS as RESILIENCE_METRICS};

/// Registers the performance and resource families ([`Manager`]). The resource gauges stay
/// 0 until [`super::resources::install`] (or [`register_all`]) wires them to `/proc`.
pub fn register(registry: &Registry) -> Result<Manager, RegistrationError> {
    self::core::register(registry)
}

/// Registers the resilience families ([`Resilience`]).
pub fn register_resilience(registry: &Registry) -> Result<Resilience, RegistrationError> {
    self::resilience::register(registry)
}

/// Every manager family, and the resource refresher installed on `registry` (call it once
/// per registry: each call installs another refresher).
pub fn register_all(registry: &Registry) -> Result<(Manager, Resilience), RegistrationError> {
    let m = register(registry)?;
    let r = register_resilience(registry)?;
    super::resources::install(registry, &m);
    Ok((m, r))
}

/// The manager's performance and resource metrics as a catalog system.
pub const SYSTEM: super::System = self::core::SYSTEM;
/// The manager's resilience metrics as a catalog system.
pub const RESILIENCE_SYSTEM: super::System = self::resilience::SYSTEM;
