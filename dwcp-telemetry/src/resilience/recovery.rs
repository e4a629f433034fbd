//! Recovery attempts: `dwcp_recovery_attempts_total{component, success, version}`,
//! `dwcp_recovery_duration_seconds{component, version}` and
//! `dwcp_recovery_success_rate{component, version}`.

use super::catalog_help;
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use crate::{Counter, Gauge, Histogram, LabelSet, RegistrationError, Registry};

#[derive(LabelSet)]
#[label(crate = crate)]
struct ComponentLabels {
    component: String,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct AttemptLabels {
    component: String,
    success: bool,
}

#[derive(Debug)]
struct Inner {
    succeeded: Counter,
    failed: Counter,
    duration: Histogram,
    success_rate: Gauge,
    clock: Clock,
}

/// The recovery series of one component. Each attempt is timed by a [`RecoveryGuard`].
///
/// `dwcp_recovery_success_rate` is the lifetime ratio of successful attempts (0 … 1), set
/// after each attempt. The duration histogram takes its buckets from the registry's policy:
/// `RegistryBuilder::dwcp_defaults()` installs the seeds' 0.1 … 30 s.
///
/// ```
/// use dwcp_telemetry::resilience::Recovery;
/// use dwcp_telemetry::Registry;
///
/// let registry = Registry::builder().version("3.0.0").dwcp_defaults().build()?;
/// let amst = Recovery::new(&registry, "amst")?;
/// let guard = amst.start();
/// guard.failure(); // the first reconnect failed
/// let ok = amst.attempt(|| Ok::<_, std::io::Error>(()));
/// assert!(ok.is_ok());
/// drop(amst.start()); // abandoned: counts as a failure
/// assert_eq!((amst.succeeded(), amst.failed()), (1, 2));
/// assert!((amst.success_rate() - 1.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Recovery {
    inner: Arc<Inner>,
}

/// One recovery attempt in progress: [`RecoveryGuard::success`] or
/// [`RecoveryGuard::failure`] records it; dropped without either, it counts as a failure.
#[derive(Debug)]
#[must_use = "record the attempt's outcome with .success() or .failure()"]
pub struct RecoveryGuard {
    recovery: Arc<Inner>,
    start: u64,
    done: bool,
}

impl Recovery {
    /// Register (or fetch) the families on `registry` and bind `component`'s series.
    pub fn new(registry: &Registry, component: &str) -> Result<Self, RegistrationError> {
        Self::with_clock(registry, component, Clock::Monotonic)
    }

    /// [`Recovery::new`] with a time source (tests use a manual clock).
    pub fn with_clock(
        registry: &Registry,
        component: &str,
        clock: Clock,
    ) -> Result<Self, RegistrationError> {
        let attempts = registry
            .counter(
                "dwcp_recovery_attempts_total",
                catalog_help("dwcp_recovery_attempts_total"),
            )
            .labels::<AttemptLabels>()
            .register()?;
        let duration = registry
            .histogram(
                "dwcp_recovery_duration_seconds",
                catalog_help("dwcp_recovery_duration_seconds"),
            )
            .labels::<ComponentLabels>()
            .register()?;
        let rate = registry
            .gauge(
                "dwcp_recovery_success_rate",
                catalog_help("dwcp_recovery_success_rate"),
            )
            .labels::<ComponentLabels>()
            .register()?;
        let c = || component.to_owned();
        Ok(Recovery {
            inner: Arc::new(Inner {
                succeeded: attempts.get(&AttemptLabels {
                    component: c(),
                    success: true,
                }),
                failed: attempts.get(&AttemptLabels {
                    component: c(),
                    success: false,
                }),
                duration: duration.get(&ComponentLabels { component: c() }),
                success_rate: rate.get(&ComponentLabels { component: c() }),
                clock,
            }),
        })
    }

    /// Start timing an attempt.
    pub fn start(&self) -> RecoveryGuard {
        RecoveryGuard {
            recovery: self.inner.clone(),
            start: self.inner.clock.now_nanos(),
            done: false,
        }
    }

    /// Run one attempt: `Ok` records a success, `Err` a failure.
    pub fn attempt<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let guard = self.start();
        let r = f();
        guard.finish(r.is_ok());
        r
    }

    /// Successful attempts so far.
    pub fn succeeded(&self) -> u64 {
        self.inner.succeeded.get()
    }

    /// Failed (or abandoned) attempts so far.
    pub fn failed(&self) -> u64 {
        self.inner.failed.get()
    }

    /// The exported success rate (0 before the first attempt).
    pub fn success_rate(&self) -> f64 {
        self.inner.success_rate.get()
    }
}

impl RecoveryGuard {
    /// The attempt recovered the component.
    pub fn success(self) {
        self.finish(true);
    }

    /// The attempt failed.
    pub fn failure(self) {
        self.finish(false);
    }

    /// Record with `success` as the outcome.
    pub fn finish(mut self, success: bool) {
        self.done = true;
        self.record(success);
    }

    /// Time spent so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.recovery.clock.now_nanos().saturating_sub(self.start))
    }

    fn record(&self, success: bool) {
        let r = &self.recovery;
        r.duration.record_duration(self.elapsed());
        if success {
            r.succeeded.inc();
        } else {
            r.failed.inc();
        }
        let (s, f) = (r.succeeded.get(), r.failed.get());
        r.success_rate.set(s as f64 / (s + f).max(1) as f64);
    }
}

impl Drop for RecoveryGuard {
    fn drop(&mut self) {
        if !self.done {
            self.record(false);
        }
    }
}
