//! Circuit-breaker configuration (resilience4j's settings and defaults) and its validation.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::Transition;
use super::clock::Clock;

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded (`kind="successful"`).
    Success,
    /// It failed (`kind="failed"`); counts toward the failure rate.
    Failure,
    /// It neither succeeded nor failed (`kind="ignored"`): not in the window, and in
    /// half-open its permit is handed back.
    Ignore,
}

/// The sliding window the failure and slow-call rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last `n` calls (1 ..= 65,536).
    Count(u32),
    /// The calls of the last `n` whole seconds, in one-second buckets (1 ..= 3,600).
    Time(u32),
}

/// Why a [`BreakerConfig`] (or an SLA configuration) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigurationError {
    /// A rate threshold outside (0, 100].
    #[error("{name} must be a percentage in (0, 100], got {value}")]
    Threshold {
        /// The setting.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A sliding window of zero calls or seconds, or one too large.
    #[error("the sliding window must hold 1 to {max} {unit}, got {got}")]
    Window {
        /// `"calls"` or `"seconds"`.
        unit: &'static str,
        /// The value given.
        got: u32,
        /// The largest accepted.
        max: u32,
    },
    /// Zero (or too many) permitted calls in half-open.
    #[error("permitted_calls_in_half_open must be 1 to 1023, got {0}")]
    Permits(u32),
    /// Zero minimum calls.
    #[error("minimum_calls must be at least 1")]
    MinimumCalls,
    /// A zero duration where a positive one is needed.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// An empty or otherwise unusable name.
    #[error("{0}")]
    Invalid(String),
    /// [`CircuitBreaker::configure_named`](super::CircuitBreaker::configure_named): the named
    /// breaker exists already (configured before, or created by its first use).
    #[error("circuit breaker {0:?} already exists on this registry; configure a named breaker once, before its first use")]
    AlreadyExists(String),
    /// Registering the metric families failed.
    #[error(transparent)]
    Registration(#[from] crate::RegistrationError),
}

type Classifier = Arc<dyn Fn(&dyn Any) -> Outcome + Send + Sync>;
type Backoff = Arc<dyn Fn(u32) -> Duration + Send + Sync>;
pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// A validated circuit-breaker configuration; build it with [`BreakerConfig::builder`].
///
/// Defaults are resilience4j's: a count window of 100 calls, 100 minimum calls, a 50 %
/// failure-rate threshold, no slow-call tracking, 60 s in open, 10 permitted calls in
/// half-open, no maximum wait in half-open, lazy open → half-open. A dropped [`Permit`]
/// counts as a failure.
///
/// [`Permit`]: super::Permit
#[derive(Clone)]
pub struct BreakerConfig {
    pub(crate) window: SlidingWindow,
    pub(crate) minimum_calls: u32,
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) wait_in_open: Duration,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) permitted_in_half_open: u32,
    pub(crate) max_wait_in_half_open: Option<Duration>,
    pub(crate) automatic_transition: bool,
    pub(crate) dropped_permit: Outcome,
    pub(crate) classifiers: HashMap<TypeId, Classifier>,
    pub(crate) listener: Option<Listener>,
    pub(crate) clock: Clock,
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("window", &self.window)
            .field("minimum_calls", &self.minimum_calls)
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("wait_in_open", &self.wait_in_open)
            .field("backoff", &self.backoff.is_some())
            .field("permitted_in_half_open", &self.permitted_in_half_open)
            .field("max_wait_in_half_open", &self.max_wait_in_half_open)
            .field("automatic_transition", &self.automatic_transition)
            .field("dropped_permit", &self.dropped_permit)
            .field("classifiers", &self.classifiers.len())
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: SlidingWindow::Count(100),
            minimum_calls: 100,
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: None,
            wait_in_open: Duration::from_secs(60),
            backoff: None,
            permitted_in_half_open: 10,
            max_wait_in_half_open: None,
            automatic_transition: false,
            dropped_permit: Outcome::Failure,
            classifiers: HashMap::new(),
            listener: None,
            clock: Clock::Monotonic,
        }
    }
}

impl BreakerConfig {
    /// Start from the defaults.
    pub fn builder() -> BreakerConfigBuilder {
        BreakerConfigBuilder {
            config: BreakerConfig::default(),
        }
    }

    /// The minimum calls in effect: never more than a count window holds.
    pub(crate) fn effective_minimum(&self) -> u32 {
        match self.window {
            SlidingWindow::Count(n) => self.minimum_calls.min(n),
            SlidingWindow::Time(_) => self.minimum_calls,
        }
    }

    /// How long the breaker stays open after its `attempt`-th consecutive trip (1-based).
    pub(crate) fn open_wait(&self, attempt: u32) -> Duration {
        match &self.backoff {
            Some(b) => b(attempt),
            None => self.wait_in_open,
        }
    }

    /// The outcome of an error of type `E`: its classifier's, else a failure.
    pub(crate) fn classify<E: 'static>(&self, e: &E) -> Outcome {
        match self.classifiers.get(&TypeId::of::<E>()) {
            Some(c) => c(e),
            None => Outcome::Failure,
        }
    }
}

/// Builds a [`BreakerConfig`]; setters never fail, [`BreakerConfigBuilder::build`]
/// validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct BreakerConfigBuilder {
    config: BreakerConfig,
}

impl BreakerConfigBuilder {
    /// Rates over the last `n` calls.
    pub fn count_window(mut self, n: u32) -> Self {
        self.config.window = SlidingWindow::Count(n);
        self
    }

    /// Rates over the last `n` seconds.
    pub fn time_window(mut self, seconds: u32) -> Self {
        self.config.window = SlidingWindow::Time(seconds);
        self
    }

    /// Calls the window must hold before rates are computed (resilience4j's
    /// `minimumNumberOfCalls`; capped at a count window's size).
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }

    /// Open when the failure rate (percent) is at or above this, in (0, 100].
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Track slow calls: a call taking `duration` or longer is slow, and the breaker opens
    /// when the slow-call rate (percent) is at or above `percent`, in (0, 100]. Costs two
    /// clock reads per call.
    pub fn slow_calls(mut self, percent: f64, duration: Duration) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self.config.slow_call_duration = Some(duration);
        self
    }

    /// How long the breaker stays open before half-open.
    pub fn wait_in_open(mut self, d: Duration) -> Self {
        self.config.wait_in_open = d;
        self
    }

    /// The wait in open as a function of the consecutive trip number (1, 2, …; reset when
    /// the breaker closes), e.g. exponential backoff. Replaces [`Self::wait_in_open`].
    pub fn backoff(mut self, f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        self.config.backoff = Some(Arc::new(f));
        self
    }

    /// Calls let through in half-open (1 ..= 1023); their outcome decides closed or open.
    pub fn permitted_calls_in_half_open(mut self, n: u32) -> Self {
        self.config.permitted_in_half_open = n;
        self
    }

    /// Go back to open when half-open has not decided within `d`.
    pub fn max_wait_in_half_open(mut self, d: Duration) -> Self {
        self.config.max_wait_in_half_open = Some(d);
        self
    }

    /// Move open → half-open when the wait ends, on a timer thread, instead of on the next
    /// call after it (resilience4j's `automaticTransitionFromOpenToHalfOpenEnabled`).
    pub fn automatic_transition(mut self, on: bool) -> Self {
        self.config.automatic_transition = on;
        self
    }

    /// How a permit dropped without an outcome counts (default [`Outcome::Failure`]: a
    /// panic, or a future cancelled by a timeout).
    pub fn dropped_permit(mut self, outcome: Outcome) -> Self {
        self.config.dropped_permit = outcome;
        self
    }

    /// Classify errors of type `E` returned through [`CircuitBreaker::call`]: which count
    /// as failures and which are ignored (errors of unclassified types are failures).
    ///
    /// [`CircuitBreaker::call`]: super::CircuitBreaker::call
    pub fn classify<E: 'static>(
        mut self,
        f: impl Fn(&E) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        let c: Classifier =
            Arc::new(move |e: &dyn Any| e.downcast_ref::<E>().map_or(Outcome::Failure, &f));
        self.config.classifiers.insert(TypeId::of::<E>(), c);
        self
    }

    /// Called after every state transition, by the thread that made it.
    pub fn on_transition(mut self, f: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.config.listener = Some(Arc::new(f));
        self
    }

    /// The time source (default [`Clock::Monotonic`]; tests use a [`Clock::Manual`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Validate.
    pub fn build(self) -> Result<BreakerConfig, ConfigurationError> {
        let c = self.config;
        check_percent("failure_rate_threshold", c.failure_rate_threshold)?;
        check_percent("slow_call_rate_threshold", c.slow_call_rate_threshold)?;
        match c.window {
            SlidingWindow::Count(n) if n == 0 || n > 65_536 => {
                return Err(ConfigurationError::Window {
                    unit: "calls",
                    got: n,
                    max: 65_536,
                })
            }
            SlidingWindow::Time(n) if n == 0 || n > 3_600 => {
                return Err(ConfigurationError::Window {
                    unit: "seconds",
                    got: n,
                    max: 3_600,
                })
            }
            _ => {}
        }
        if c.minimum_calls == 0 {
            return Err(ConfigurationError::MinimumCalls);
        }
        if c.permitted_in_half_open == 0 || c.permitted_in_half_open > 1023 {
            return Err(ConfigurationError::Permits(c.permitted_in_half_open));
        }
        if c.slow_call_duration == Some(Duration::ZERO) {
            return Err(ConfigurationError::ZeroDuration("slow_call_duration"));
        }
        if c.max_wait_in_half_open == Some(Duration::ZERO) {
            return Err(ConfigurationError::ZeroDuration("max_wait_in_half_open"));
        }
        Ok(c)
    }
}

pub(crate) fn check_percent(name: &'static str, value: f64) -> Result<(), ConfigurationError> {
    if value.is_nan() || value <= 0.0 || value > 100.0 {
        return Err(ConfigurationError::Threshold { name, value });
    }
    Ok(())
}
