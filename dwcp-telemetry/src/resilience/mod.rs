//! A DWCP service's resilience state, measured and exported: circuit breakers, recovery
//! attempts, health checks and SLA compliance (see `docs/RESILIENCE.md`).
//!
//! - [`CircuitBreaker`]: resilience4j's model (count- or time-based sliding window,
//!   failure-rate and slow-call-rate thresholds, minimum calls, wait in open with optional
//!   backoff, half-open permits), lock-free on the call path, exporting
//!   `dwcp_circuit_breaker_state`, `_trips_total`, `_resets_total`, `_calls_total`,
//!   `_failure_rate` and `_slow_call_rate`. [`BreakerMetrics`] exports the same series for a
//!   service that keeps its own breaker.
//! - [`Recovery`]: `dwcp_recovery_attempts_total`, `dwcp_recovery_duration_seconds` and
//!   `dwcp_recovery_success_rate`, through a [`RecoveryGuard`] that times one attempt.
//! - [`HealthChecker`]: named sync and async checks with timeouts, aggregated into
//!   healthy / degraded / unhealthy, exported as `dwcp_health_check_total`,
//!   `dwcp_health_check_duration_seconds` and `dwcp_component_status`, and served on
//!   `/health` (HTTP 503 when unhealthy).
//! - [`SlaTracker`]: the seeds' SLA targets over rolling windows of the registry's own
//!   counters and histograms, the error budget, burn rates and the GO / CAUTION / NO-GO
//!   decision, exported as `dwcp_sla_*` and in `/metrics/summary`.
//!
//! ```
//! use dwcp_telemetry::resilience::{BreakerConfig, CallError, CircuitBreaker};
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let config = BreakerConfig::builder()
//!     .count_window(10)
//!     .minimum_calls(4)
//!     .failure_rate_threshold(50.0)
//!     .build()?;
//! let db = CircuitBreaker::new(&registry, "database", config)?;
//! for _ in 0..4 {
//!     let r: Result<(), CallError<&str>> = db.call(|| Err("timeout"));
//!     assert!(matches!(r, Err(CallError::Failed("timeout"))));
//! }
//! // 4 failures of 4 calls: 100 % ≥ 50 %, the breaker is open and rejects calls.
//! assert!(matches!(db.call(|| Ok::<_, &str>(1)), Err(CallError::NotPermitted(_))));
//! assert_eq!(db.metrics().trips(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod breaker;
mod clock;
mod config;
mod health;
mod metrics;
mod named;
mod recovery;
mod sla;
mod window;

pub use breaker::{CallError, CircuitBreaker, NotPermitted, Permit, Transition};
pub use clock::{Clock, ManualClock};
pub use config::{BreakerConfig, BreakerConfigBuilder, ConfigurationError, Outcome, SlidingWindow};
pub use health::{
    CheckResult, CheckStatus, ComponentReport, HealthChecker, HealthReport, HealthStatus,
};
pub use metrics::{BreakerMetrics, CallKind, State, TransitionError};
pub use recovery::{Recovery, RecoveryGuard};
pub use sla::{
    Decision, Selector, SlaConfig, SlaConfigBuilder, SlaInputs, SlaReport, SlaTargets, SlaTicker,
    SlaTracker, Sli, SliReport, WindowReport,
};

// Atomics: loom's under `cfg(loom)`, so the breaker's state machine can be model-checked.
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

#[cfg(all(test, not(loom)))]
mod tests;

/// The help text of a resilience family, from the catalog's one definition of the DWCP
/// manager's resilience metrics (`catalog::manager::RESILIENCE_METRICS`), so the runtime and
/// the catalog register identical families on a shared registry, in either order.
pub(crate) fn catalog_help(name: &str) -> &'static str {
    crate::catalog::manager::RESILIENCE_METRICS
        .iter()
        .find(|m| m.name == name)
        .map_or("", |m| m.help)
}
