//! The circuit breaker: resilience4j's state machine on a few atomics.
//!
//! One `u64` holds the state and a generation, bumped by every transition; a transition is
//! one compare-and-swap of that word, so concurrent callers that see the same trigger make
//! it once (one trip counted, one listener call). A permit remembers the word it was issued
//! under; an outcome reported under an older generation is counted in
//! `dwcp_circuit_breaker_calls_total` but kept out of the new state's window. The half-open
//! permits and outcomes are one more packed word, tagged with the generation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
#[cfg(not(loom))]
use std::time::Duration;

use super::config::{BreakerConfig, ConfigurationError, Outcome, SlidingWindow};
use super::metrics::{BreakerMetrics, CallKind, State};
use super::window::{self, CountWindow, TimeWindow, Window};
use super::{AtomicU32, AtomicU64, Ordering};
use crate::Registry;

const STATE_BITS: u32 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const DISABLED: u64 = 3;
const FORCED_OPEN: u64 = 4;
const METRICS_ONLY: u64 = 5;

#[inline]
fn state_of(word: u64) -> State {
    State::from_code((word & STATE_MASK) as u8)
}

#[inline]
fn generation(word: u64) -> u64 {
    word >> STATE_BITS
}

fn word(generation: u64, state: State) -> u64 {
    (generation << STATE_BITS) | state.code() as u64
}

/// Deadlines (end of the wait in open, end of the maximum wait in half-open): milliseconds
/// in the low 42 bits, the generation they belong to in the high 22.
const DEADLINE_BITS: u32 = 42;
const DEADLINE_MASK: u64 = (1 << DEADLINE_BITS) - 1;

fn deadline_word(generation: u64, at_ms: u64) -> u64 {
    (generation << DEADLINE_BITS) | at_ms.min(DEADLINE_MASK)
}

/// Half-open word: generation (24 bits), permits taken, outcomes, failures, slow (10 each).
const HO_FIELD: u32 = 10;
const HO_MASK: u64 = (1 << HO_FIELD) - 1;
const HO_TAKEN: u32 = 30;
const HO_DONE: u32 = 20;
const HO_FAILED: u32 = 10;
const HO_SLOW: u32 = 0;
const HO_GEN: u32 = 40;

fn ho_field(w: u64, shift: u32) -> u64 {
    (w >> shift) & HO_MASK
}

fn ho_gen(generation: u64) -> u64 {
    generation & ((1 << 24) - 1)
}

/// A state change, as passed to [`BreakerConfigBuilder::on_transition`].
///
/// [`BreakerConfigBuilder::on_transition`]: super::BreakerConfigBuilder::on_transition
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The circuit.
    pub circuit: Arc<str>,
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// The generation entered: each transition adds one, so sorting by it orders
    /// transitions made on different threads.
    pub generation: u64,
}

/// A call the breaker rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit {circuit:?} is {} and does not permit calls", state.as_str())]
pub struct NotPermitted {
    /// The circuit.
    pub circuit: Arc<str>,
    /// Its state when the call was rejected.
    pub state: State,
}

/// The error of [`CircuitBreaker::call`]: rejected, or the call's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The breaker did not let the call through.
    NotPermitted(NotPermitted),
    /// The call ran and returned this error.
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotPermitted(n) => n.fmt(f),
            CallError::Failed(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::NotPermitted(n) => Some(n),
            CallError::Failed(e) => Some(e),
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: AtomicU64,
    /// The highest state word whose state the gauge shows (see `publish`).
    published: AtomicU64,
    deadline: AtomicU64,
    half_open: AtomicU64,
    consecutive_trips: AtomicU32,
    window: Window,
    /// Slow-call duration in clock nanoseconds; 0 when slow calls are not tracked.
    slow_ns: u64,
    min_calls: u32,
    config: BreakerConfig,
    metrics: BreakerMetrics,
    circuit: Arc<str>,
    #[cfg_attr(loom, allow(dead_code))]
    weak: std::sync::Weak<Inner>,
}

/// A circuit breaker (resilience4j's model), exporting its state, transitions, calls and
/// rates on a registry. Cheap to clone (clones share the breaker).
///
/// On the success path, a closed breaker costs an atomic load of its state, one atomic add
/// (to `dwcp_circuit_breaker_calls_total`, which also orders its count window) and, with
/// slow-call tracking, two clock reads; no lock, no allocation. One breaker per circuit name
/// per registry (two would share their counters). See `docs/RESILIENCE.md` for the
/// state machine.
///
/// ```
/// use dwcp_telemetry::resilience::{BreakerConfig, CircuitBreaker, Outcome};
/// use dwcp_telemetry::Registry;
///
/// #[derive(Debug)]
/// enum DbError { Timeout, NotFound }
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let config = BreakerConfig::builder()
///     // "not found" is an answer, not a failure of the database.
///     .classify(|e: &DbError| match e {
///         DbError::NotFound => Outcome::Ignore,
///         DbError::Timeout => Outcome::Failure,
///     })
///     .build()?;
/// let db = CircuitBreaker::new(&registry, "database", config)?;
/// let _ = db.call(|| Err::<(), _>(DbError::NotFound));
/// let permit = db.try_acquire()?; // the permit API, for code that cannot be a closure
/// permit.success();
/// use dwcp_telemetry::resilience::CallKind;
/// assert_eq!(db.metrics().calls(CallKind::Ignored), 1);
/// assert_eq!(db.metrics().calls(CallKind::Successful), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

/// Permission to make one call, from [`CircuitBreaker::try_acquire`]. Report the outcome
/// with [`Permit::success`], [`Permit::failure`] or [`Permit::ignore`]; a permit dropped
/// without one counts as the configured default (a failure unless
/// [`BreakerConfigBuilder::dropped_permit`] says otherwise).
///
/// [`BreakerConfigBuilder::dropped_permit`]: super::BreakerConfigBuilder::dropped_permit
#[derive(Debug)]
#[must_use = "report the call's outcome with .success(), .failure() or .ignore()"]
pub struct Permit<'a> {
    breaker: &'a Inner,
    word: u64,
    start: u64,
    done: bool,
}

impl CircuitBreaker {
    /// A breaker named `circuit` whose series are registered on `registry` (typically
    /// [`crate::global()`]).
    pub fn new(
        registry: &Registry,
        circuit: &str,
        config: BreakerConfig,
    ) -> Result<Self, ConfigurationError> {
        if circuit.is_empty() {
            return Err(ConfigurationError::Invalid(
                "a circuit breaker needs a non-empty name (the `circuit` label)".into(),
            ));
        }
        let metrics = BreakerMetrics::new(registry, circuit)?;
        let window = match config.window {
            SlidingWindow::Count(n) => Window::Count(CountWindow::new(n)),
            SlidingWindow::Time(n) => Window::Time(TimeWindow::new(n)),
        };
        let slow_ns = config.slow_call_duration.map_or(0, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        let initial = word(0, State::Closed);
        Ok(CircuitBreaker {
            inner: Arc::new_cyclic(|weak| Inner {
                state: AtomicU64::new(initial),
                published: AtomicU64::new(initial),
                deadline: AtomicU64::new(0),
                half_open: AtomicU64::new(0),
                consecutive_trips: AtomicU32::new(0),
                window,
                slow_ns,
                min_calls: config.effective_minimum(),
                config,
                metrics,
                circuit: circuit.into(),
                weak: weak.clone(),
            }),
        })
    }

    #[cfg(all(test, loom))]
    pub(crate) fn words(&self) -> (u64, u64) {
        (
            self.inner.state.load(Ordering::SeqCst),
            self.inner.published.load(Ordering::SeqCst),
        )
    }

    /// The circuit's name.
    pub fn name(&self) -> &str {
        &self.inner.circuit
    }

    /// The current state.
    pub fn state(&self) -> State {
        state_of(self.inner.state.load(Ordering::Acquire))
    }

    /// The series this breaker keeps up to date.
    pub fn metrics(&self) -> &BreakerMetrics {
        &self.inner.metrics
    }

    /// Ask to make a call. In open (before the wait ends), forced open, or half-open with
    /// every trial permit taken, the call is rejected and counted `not_permitted`.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, NotPermitted> {
        let w = self.inner.state.load(Ordering::Acquire);
        let w = match w & STATE_MASK {
            CLOSED | METRICS_ONLY | DISABLED => w,
            _ => self.inner.acquire_slow(w)?,
        };
        Ok(Permit {
            breaker: &self.inner,
            word: w,
            start: if self.inner.slow_ns != 0 {
                self.inner.config.clock.raw()
            } else {
                0
            },
            done: false,
        })
    }

    /// Run `f` through the breaker: rejected calls return [`CallError::NotPermitted`]
    /// without running it; an `Err` counts as the configured classifier of `E` says
    /// (a failure by default).
    #[inline]
    pub fn call<T, E: 'static>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::NotPermitted)?;
        match f() {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.finish(self.inner.config.classify(&e));
                Err(CallError::Failed(e))
            }
        }
    }

    /// [`CircuitBreaker::call`] for a future. The permit is taken before the future is
    /// first polled; if the returned future is dropped before it completes (a timeout,
    /// say), the call counts as the dropped-permit default.
    pub async fn call_async<T, E: 'static>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::NotPermitted)?;
        match fut.await {
            Ok(v) => {
                permit.success();
                Ok(v)
            }
            Err(e) => {
                permit.finish(self.inner.config.classify(&e));
                Err(CallError::Failed(e))
            }
        }
    }

    /// Move to `to` by hand (resilience4j's `transitionTo…State`): back to closed (a
    /// reset), open, disabled, forced open or metrics-only. Fails on an illegal transition
    /// ([`State::can_transition`]).
    pub fn transition_to(&self, to: State) -> Result<(), super::TransitionError> {
        loop {
            let w = self.inner.state.load(Ordering::Acquire);
            let from = state_of(w);
            if !State::can_transition(from, to) {
                return Err(super::TransitionError {
                    circuit: self.inner.circuit.to_string(),
                    from,
                    to,
                });
            }
            if self.inner.transition(w, to) {
                return Ok(());
            }
        }
    }

    /// Back to closed with an empty window (a no-op when already closed).
    pub fn reset(&self) {
        let _ = self.transition_to(State::Closed);
    }

    /// Recompute the exported failure and slow-call rates from the window now (they are
    /// otherwise refreshed on failures, slow calls and every 64th call).
    pub fn refresh_rates(&self) {
        let w = self.inner.state.load(Ordering::Acquire);
        self.inner.evaluate(w, false);
    }

    /// The window's failure rate in percent, `None` below the minimum calls.
    pub fn failure_rate(&self) -> Option<f64> {
        let c = self.inner.counts();
        (c.calls >= self.inner.min_calls).then(|| c.failure_rate())
    }

    /// The window's slow-call rate in percent, `None` below the minimum calls.
    pub fn slow_call_rate(&self) -> Option<f64> {
        let c = self.inner.counts();
        (c.calls >= self.inner.min_calls).then(|| c.slow_rate())
    }
}

impl Permit<'_> {
    /// The call succeeded (or was slow, if it took the slow-call duration).
    #[inline]
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.finish(Outcome::Failure);
    }

    /// The call's outcome does not count (in half-open, the permit is handed back).
    #[inline]
    pub fn ignore(self) {
        self.finish(Outcome::Ignore);
    }

    /// Report `outcome`.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.report(outcome);
    }

    #[inline]
    fn report(&self, outcome: Outcome) {
        let b = self.breaker;
        let slow = b.slow_ns != 0
            && outcome != Outcome::Ignore
            && b.config.clock.elapsed_nanos(self.start) >= b.slow_ns;
        b.record(self.word, outcome, slow);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.report(self.breaker.config.dropped_permit);
        }
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.config.clock.now_nanos() / 1_000_000
    }

    fn counts(&self) -> window::Counts {
        match &self.window {
            Window::Count(w) => w.counts(
                self.metrics.calls(CallKind::Successful),
                self.metrics.calls(CallKind::Failed),
            ),
            Window::Time(w) => w.counts(self.config.clock.now_nanos() / 1_000_000_000),
        }
    }

    fn reject(&self, w: u64) -> NotPermitted {
        self.metrics.call(CallKind::NotPermitted);
        NotPermitted {
            circuit: self.circuit.clone(),
            state: state_of(w),
        }
    }

    /// Whether the deadline stored for `w`'s generation has passed (false while the
    /// transitioning thread has not stored it yet).
    fn deadline_passed(&self, w: u64) -> bool {
        let d = self.deadline.load(Ordering::Acquire);
        let tag = generation(w) & ((1 << (64 - DEADLINE_BITS)) - 1);
        d >> DEADLINE_BITS == tag && self.now_ms() >= d & DEADLINE_MASK
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, mut w: u64) -> Result<u64, NotPermitted> {
        loop {
            match w & STATE_MASK {
                CLOSED | METRICS_ONLY | DISABLED => return Ok(w),
                FORCED_OPEN => return Err(self.reject(w)),
                OPEN => {
                    if !self.deadline_passed(w) {
                        return Err(self.reject(w));
                    }
                    self.transition(w, State::HalfOpen);
                }
                _ => {
                    // Half-open: give up on a trial that took too long, else take a permit.
                    if self.config.max_wait_in_half_open.is_some() && self.deadline_passed(w) {
                        self.transition(w, State::Open);
                    } else {
                        return self.take_trial_permit(w);
                    }
                }
            }
            w = self.state.load(Ordering::Acquire);
        }
    }

    fn take_trial_permit(&self, w: u64) -> Result<u64, NotPermitted> {
        let g = ho_gen(generation(w));
        let permitted = self.config.permitted_in_half_open as u64;
        let mut cur = self.half_open.load(Ordering::Acquire);
        loop {
            let base = if cur >> HO_GEN == g { cur } else { g << HO_GEN };
            if ho_field(base, HO_TAKEN) >= permitted {
                return Err(self.reject(w));
            }
            match self.half_open.compare_exchange_weak(
                cur,
                base + (1 << HO_TAKEN),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(w),
                Err(now) => cur = now,
            }
        }
    }

    #[inline]
    fn record(&self, w: u64, outcome: Outcome, slow: bool) {
        let before = self.metrics.call_returning(match outcome {
            Outcome::Success => CallKind::Successful,
            Outcome::Failure => CallKind::Failed,
            Outcome::Ignore => CallKind::Ignored,
        });
        if let Window::Count(win) = &self.window {
            // The count window is ordered by the call counters: every success and failure
            // counted since its reset is in it (a call issued before a transition, finishing
            // after the next reset, included), so its entries always match the counters.
            let evaluate = match outcome {
                Outcome::Success => {
                    win.record_success(before, slow, || self.metrics.calls(CallKind::Failed))
                }
                Outcome::Failure => {
                    win.record_failure(before, slow, self.metrics.calls(CallKind::Successful))
                }
                Outcome::Ignore => false,
            };
            match w & STATE_MASK {
                CLOSED | METRICS_ONLY if evaluate => self.evaluate(w, true),
                HALF_OPEN => self.record_trial(w, outcome, slow),
                _ => {}
            }
            return;
        }
        match w & STATE_MASK {
            CLOSED | METRICS_ONLY => {
                if outcome == Outcome::Ignore || self.state.load(Ordering::Relaxed) != w {
                    return; // ignored, or issued before a transition: not in this window
                }
                let code = window::code(outcome == Outcome::Failure, slow);
                let evaluate = match &self.window {
                    Window::Count(_) => false,
                    Window::Time(win) => {
                        let second = self.config.clock.now_nanos() / 1_000_000_000;
                        let in_bucket = win.record(code, second);
                        code != window::OK || in_bucket <= self.min_calls || in_bucket % 64 == 0
                    }
                };
                if evaluate {
                    self.evaluate(w, true);
                }
            }
            HALF_OPEN => self.record_trial(w, outcome, slow),
            _ => {}
        }
    }

    /// Export the window's rates; with `may_trip`, open a closed breaker whose rates reach
    /// a threshold.
    #[cold]
    fn evaluate(&self, w: u64, may_trip: bool) {
        let c = self.counts();
        if c.calls < self.min_calls || w & STATE_MASK == DISABLED {
            self.metrics.set_rates(None, None);
            return;
        }
        let (fr, sr) = (c.failure_rate(), c.slow_rate());
        self.metrics.set_rates(Some(fr), Some(sr));
        if may_trip && w & STATE_MASK == CLOSED && self.over_threshold(fr, sr) {
            self.transition(w, State::Open);
        }
    }

    fn over_threshold(&self, failure_rate: f64, slow_rate: f64) -> bool {
        failure_rate >= self.config.failure_rate_threshold
            || (self.slow_ns != 0 && slow_rate >= self.config.slow_call_rate_threshold)
    }

    fn record_trial(&self, w: u64, outcome: Outcome, slow: bool) {
        let g = ho_gen(generation(w));
        let mut cur = self.half_open.load(Ordering::Acquire);
        let next = loop {
            if cur >> HO_GEN != g {
                return; // a permit of an earlier half-open period
            }
            let next = match outcome {
                Outcome::Ignore => cur.saturating_sub(1 << HO_TAKEN),
                Outcome::Success | Outcome::Failure => {
                    cur + (1 << HO_DONE)
                        + (((outcome == Outcome::Failure) as u64) << HO_FAILED)
                        + ((slow as u64) << HO_SLOW)
                }
            };
            match self.half_open.compare_exchange_weak(
                cur,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break next,
                Err(now) => cur = now,
            }
        };
        let done = ho_field(next, HO_DONE);
        if outcome != Outcome::Ignore && done == self.config.permitted_in_half_open as u64 {
            // The last trial outcome decides (exactly one thread sees `done` reach it).
            let rate = |n: u64| n as f64 * 100.0 / done as f64;
            let open = self.over_threshold(
                rate(ho_field(next, HO_FAILED)),
                rate(ho_field(next, HO_SLOW)),
            );
            self.transition(w, if open { State::Open } else { State::Closed });
        }
    }

    /// Move from exactly `from` to `to`; false when another thread moved first.
    fn transition(&self, from: u64, to: State) -> bool {
        let g = generation(from) + 1;
        let to_word = word(g, to);
        if matches!(to, State::Closed | State::MetricsOnly) {
            // Empty the window before anyone can record under the new word.
            match &self.window {
                Window::Count(w) => w.reset(
                    self.metrics.calls(CallKind::Successful),
                    self.metrics.calls(CallKind::Failed),
                ),
                Window::Time(w) => w.reset(),
            }
        }
        if self
            .state
            .compare_exchange(from, to_word, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let tag = g & ((1 << (64 - DEADLINE_BITS)) - 1);
        let mut wait = None;
        match to {
            State::Open => {
                let attempt = self
                    .consecutive_trips
                    .fetch_add(1, Ordering::AcqRel)
                    .saturating_add(1);
                let d = self.config.open_wait(attempt);
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                self.deadline.store(
                    deadline_word(tag, self.now_ms().saturating_add(ms)),
                    Ordering::Release,
                );
                wait = Some(d);
            }
            State::HalfOpen => {
                if let Some(d) = self.config.max_wait_in_half_open {
                    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                    self.deadline.store(
                        deadline_word(tag, self.now_ms().saturating_add(ms)),
                        Ordering::Release,
                    );
                    wait = Some(d);
                }
            }
            State::Closed => self.consecutive_trips.store(0, Ordering::Release),
            _ => {}
        }
        self.metrics.transitioned_counts(to);
        if matches!(to, State::Closed | State::MetricsOnly) {
            self.metrics.set_rates(None, None);
        }
        self.publish();
        if let Some(listener) = &self.config.listener {
            listener(&Transition {
                circuit: self.circuit.clone(),
                from: state_of(from),
                to,
                generation: g,
            });
        }
        // The status page's recent transitions (a bounded ring; transitions are rare).
        #[cfg(all(feature = "prometheus", not(loom)))]
        crate::export::status::Journal::global().record_transition(
            &self.circuit,
            state_of(from).as_str(),
            to.as_str(),
        );
        #[cfg(not(loom))]
        if let (true, Some(d)) = (self.config.automatic_transition, wait) {
            self.schedule(to_word, d);
        }
        #[cfg(loom)]
        let _ = wait;
        true
    }

    /// Show the newest state on the gauge. Each transition publishes its word with
    /// `fetch_max` (the generation is in the high bits), then shows the maximum and checks
    /// it is still the maximum. The reads are read-modify-writes, which see the latest value
    /// and order this thread's gauge store before any later publisher's: the last store is
    /// of the newest state (a plain load may return an older value; loom found that).
    fn publish(&self) {
        let w = self.state.load(Ordering::Acquire);
        let mut p = self.published.fetch_max(w, Ordering::AcqRel).max(w);
        loop {
            self.metrics.show_state(state_of(p));
            let now = self.published.fetch_add(0, Ordering::AcqRel);
            if now == p {
                return;
            }
            p = now;
        }
    }

    /// The automatic transition out of `word` after `d`: open → half-open, or a half-open
    /// that waited too long → open. A timer thread that holds only a weak reference.
    #[cfg(not(loom))]
    fn schedule(&self, word: u64, d: Duration) {
        let Some(me) = self.me() else { return };
        let _ = std::thread::Builder::new()
            .name("dwcp-breaker-timer".into())
            .spawn(move || {
                std::thread::sleep(d);
                if let Some(inner) = me.upgrade() {
                    if inner.state.load(Ordering::Acquire) == word {
                        let to = if word & STATE_MASK == OPEN {
                            State::HalfOpen
                        } else {
                            State::Open
                        };
                        inner.transition(word, to);
                    }
                }
            });
    }

    #[cfg(not(loom))]
    fn me(&self) -> Option<std::sync::Weak<Inner>> {
        Some(self.weak.clone())
    }
}
