//! The circuit-breaker series, and the instrumentation-only API for services that keep
//! their own breaker.

use super::catalog_help;
use super::{AtomicU8, Ordering};

use crate::{Counter, Gauge, LabelSet, RegistrationError, Registry};

/// A breaker's state (resilience4j's six).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; outcomes are recorded and may trip the breaker.
    Closed,
    /// Calls are rejected until the wait in open ends.
    Open,
    /// A few trial calls decide between closed and open.
    HalfOpen,
    /// Calls flow and are counted, but never trip the breaker; rates export −1 (set by hand).
    Disabled,
    /// Every call is rejected (set by hand).
    ForcedOpen,
    /// Calls flow and outcomes are recorded, but the breaker never opens (set by hand).
    MetricsOnly,
}

impl State {
    /// The value of `dwcp_circuit_breaker_state`: the seeds' 0 closed, 1 open, 2 half-open.
    /// Forced open exports as 1 (calls are rejected); disabled and metrics-only as 0 (calls
    /// flow).
    pub fn gauge_value(self) -> f64 {
        match self {
            State::Closed | State::Disabled | State::MetricsOnly => 0.0,
            State::Open | State::ForcedOpen => 1.0,
            State::HalfOpen => 2.0,
        }
    }

    /// The name, as in logs: `closed`, `open`, `half_open`, …
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }

    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(c: u8) -> State {
        match c {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::Disabled,
            4 => State::ForcedOpen,
            _ => State::MetricsOnly,
        }
    }

    /// Whether `from → to` is a transition a breaker may make: closed → open, open →
    /// half-open, half-open → closed or open (the automatic ones), and by hand any state
    /// to closed, open, disabled, forced-open or metrics-only. Never a state to itself, and
    /// half-open only from open.
    pub fn can_transition(from: State, to: State) -> bool {
        from != to && (to != State::HalfOpen || from == State::Open)
    }
}

/// The `kind` label of `dwcp_circuit_breaker_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// A call that succeeded.
    Successful,
    /// A call that failed.
    Failed,
    /// A call whose outcome was ignored.
    Ignored,
    /// A call the breaker rejected.
    NotPermitted,
}

impl CallKind {
    /// The `kind` label value: `successful`, `failed`, `ignored` or `not_permitted`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Successful => "successful",
            CallKind::Failed => "failed",
            CallKind::Ignored => "ignored",
            CallKind::NotPermitted => "not_permitted",
        }
    }
}

/// An illegal transition reported through [`BreakerMetrics::transition`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit {circuit:?}: illegal transition {from:?} -> {to:?} (allowed: closed -> open, open -> half_open, half_open -> closed | open, and by hand any state to closed, open, disabled, forced_open, metrics_only)")]
pub struct TransitionError {
    /// The circuit.
    pub circuit: String,
    /// The state it was in.
    pub from: State,
    /// The state asked for.
    pub to: State,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct CircuitLabels {
    circuit: String,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct CallLabels {
    circuit: String,
    kind: &'static str,
}

/// The series of one circuit: `dwcp_circuit_breaker_state{circuit, version}`,
/// `_trips_total`, `_resets_total`, `_calls_total{circuit, kind, version}`,
/// `_failure_rate` and `_slow_call_rate` (percent; −1 below the minimum calls).
///
/// [`CircuitBreaker`](super::CircuitBreaker) keeps one up to date. A service with its own
/// breaker uses it directly, as the instrumentation-only API:
///
/// ```
/// use dwcp_telemetry::resilience::{BreakerMetrics, CallKind, State};
/// use dwcp_telemetry::Registry;
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let m = BreakerMetrics::new(&registry, "api")?;
/// m.call(CallKind::Successful);
/// m.transition(State::Open)?; // a trip
/// m.call(CallKind::NotPermitted);
/// assert!(m.transition(State::Closed).is_ok()); // a reset, by hand
/// assert!(m.transition(State::HalfOpen).is_err()); // only from open
/// assert_eq!((m.trips(), m.resets(), m.state()), (1, 1, State::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct BreakerMetrics {
    circuit: std::sync::Arc<str>,
    state: Gauge,
    trips: Counter,
    resets: Counter,
    calls: [Counter; 4],
    failure_rate: Gauge,
    slow_call_rate: Gauge,
    current: std::sync::Arc<AtomicU8>,
}

impl BreakerMetrics {
    /// Register (or fetch) the families on `registry` and bind the series of `circuit`;
    /// the state starts closed and the rates at −1.
    pub fn new(registry: &Registry, circuit: &str) -> Result<Self, RegistrationError> {
        let state = registry
            .gauge(
                "dwcp_circuit_breaker_state",
                catalog_help("dwcp_circuit_breaker_state"),
            )
            .labels::<CircuitLabels>()
            .register()?;
        let trips = registry
            .counter(
                "dwcp_circuit_breaker_trips_total",
                catalog_help("dwcp_circuit_breaker_trips_total"),
            )
            .labels::<CircuitLabels>()
            .register()?;
        let resets = registry
            .counter(
                "dwcp_circuit_breaker_resets_total",
                catalog_help("dwcp_circuit_breaker_resets_total"),
            )
            .labels::<CircuitLabels>()
            .register()?;
        let calls = registry
            .counter(
                "dwcp_circuit_breaker_calls_total",
                catalog_help("dwcp_circuit_breaker_calls_total"),
            )
            .labels::<CallLabels>()
            .register()?;
        let failure_rate = registry
            .gauge(
                "dwcp_circuit_breaker_failure_rate",
                catalog_help("dwcp_circuit_breaker_failure_rate"),
            )
            .labels::<CircuitLabels>()
            .register()?;
        let slow_call_rate = registry
            .gauge(
                "dwcp_circuit_breaker_slow_call_rate",
                catalog_help("dwcp_circuit_breaker_slow_call_rate"),
            )
            .labels::<CircuitLabels>()
            .register()?;
        let l = CircuitLabels {
            circuit: circuit.to_owned(),
        };
        let call = |kind| {
            calls.get(&CallLabels {
                circuit: circuit.to_owned(),
                kind: CallKind::as_str(kind),
            })
        };
        let m = BreakerMetrics {
            circuit: circuit.into(),
            state: state.get(&l),
            trips: trips.get(&l),
            resets: resets.get(&l),
            calls: [
                call(CallKind::Successful),
                call(CallKind::Failed),
                call(CallKind::Ignored),
                call(CallKind::NotPermitted),
            ],
            failure_rate: failure_rate.get(&l),
            slow_call_rate: slow_call_rate.get(&l),
            current: std::sync::Arc::new(AtomicU8::new(State::Closed.code())),
        };
        m.state.set(0.0);
        m.set_rates(None, None);
        Ok(m)
    }

    /// The circuit's name.
    pub fn circuit(&self) -> &str {
        &self.circuit
    }

    /// Count one call of `kind`.
    #[inline]
    pub fn call(&self, kind: CallKind) {
        self.calls[kind as usize].inc();
    }

    /// Count one call of `kind`; returns the count before it.
    #[inline]
    pub(crate) fn call_returning(&self, kind: CallKind) -> u64 {
        self.calls[kind as usize].inc_returning()
    }

    /// Calls counted of `kind`.
    pub fn calls(&self, kind: CallKind) -> u64 {
        self.calls[kind as usize].get()
    }

    /// Report a transition from the current state to `to`: validated with
    /// [`State::can_transition`]; a move into open counts a trip, into closed a reset.
    pub fn transition(&self, to: State) -> Result<(), TransitionError> {
        let mut from = self.current.load(Ordering::Acquire);
        loop {
            let f = State::from_code(from);
            if !State::can_transition(f, to) {
                return Err(TransitionError {
                    circuit: self.circuit.to_string(),
                    from: f,
                    to,
                });
            }
            match self.current.compare_exchange(
                from,
                to.code(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => from = now,
            }
        }
        self.transitioned(to);
        Ok(())
    }

    /// A transition already validated and made: the gauge and the counters.
    fn transitioned(&self, to: State) {
        self.show_state(to);
        self.transitioned_counts(to);
    }

    /// Show `s` as the current state.
    pub(crate) fn show_state(&self, s: State) {
        self.current.store(s.code(), Ordering::Release);
        self.state.set(s.gauge_value());
    }

    /// Count a transition into `to`: a trip into open, a reset into closed.
    pub(crate) fn transitioned_counts(&self, to: State) {
        match to {
            State::Open => self.trips.inc(),
            State::Closed => self.resets.inc(),
            _ => {}
        }
    }

    /// The state last reported.
    pub fn state(&self) -> State {
        State::from_code(self.current.load(Ordering::Acquire))
    }

    /// Set the exported rates (percent); `None` exports −1 (below the minimum calls).
    pub fn set_rates(&self, failure: Option<f64>, slow: Option<f64>) {
        self.failure_rate.set(failure.unwrap_or(-1.0));
        self.slow_call_rate.set(slow.unwrap_or(-1.0));
    }

    /// Trips counted.
    pub fn trips(&self) -> u64 {
        self.trips.get()
    }

    /// Resets (moves into closed) counted.
    pub fn resets(&self) -> u64 {
        self.resets.get()
    }

    /// The exported failure rate (percent, −1 below the minimum calls).
    pub fn failure_rate(&self) -> f64 {
        self.failure_rate.get()
    }

    /// The exported slow-call rate (percent, −1 below the minimum calls).
    pub fn slow_call_rate(&self) -> f64 {
        self.slow_call_rate.get()
    }
}
