//! Runtime support for [`#[instrument_dwcp]`](crate::instrument_dwcp): the metrics every
//! instrumented function records, how errors are labelled, and the span of a sampled call.
//!
//! ## Spans
//!
//! Spans are off until a sink is installed ([`trace::install_sink`])
//! or a `tracing` subscriber wants the call site's `level`: then each call is first sampled
//! ([`trace::sampler`]: the parent's flag, then the ratio) and only a
//! sampled call builds anything. A sampled call's [`SpanRecord`]
//! carries `code.function`, `code.namespace` (the module path), `dwcp.component`,
//! `dwcp.operation`, the recorded arguments and `fields(..)`, `dwcp.status`, and for an error
//! or a panic an `Error` status and an `exception` event (`exception.type`,
//! `exception.message`). An unsampled call sets its context (so that its children inherit
//! "not sampled") and allocates nothing.
//!
//! Each call site (each instrumented function) records into four families of its registry
//! (the global one unless `registry = expr` says otherwise):
//!
//! | family | labels | what |
//! |---|---|---|
//! | `dwcp_requests_total` | `component`, `operation`, `status` | one per finished call |
//! | `dwcp_request_duration_seconds` | `component`, `operation` | call duration (ns stored) |
//! | `dwcp_errors_total` | `component`, `type` | one per call classified as an error |
//! | `dwcp_requests_in_flight` | `component`, `operation` | calls started, not finished |
//!
//! `status` is `ok`, `error`, `panic` (the function panicked; the panic still unwinds) or
//! `cancelled` (a future dropped before it completed). Every call that started records
//! exactly one status, and its duration, and leaves the in-flight gauge as it found it.
//!
//! The handles are bound once per call site, on its first call (a `static` `OnceLock`);
//! after that a call reads the TSC clock twice and records a duration with one relaxed
//! atomic add, with no lookup and no allocation, except that an error looks up its
//! `dwcp_errors_total{type}` series. The duration it records is the previous call's on the
//! same thread: it swaps its own in for it, so that the add's address does not depend on
//! the clock reading just taken (see `metric::thread_cells`). Every read of the histogram
//! (a snapshot, a scrape, a push) first records the durations left this way, so a read still
//! counts every call that finished before it. The in-flight gauge and the `ok` count are kept in
//! per-thread lines (one cache line per thread, written only by that thread: a load and a
//! store, no locked instruction), shared by every call site of the series and summed into
//! the gauge's and the counter's value whenever they are read (`get`, a scrape, a push).
//! The other statuses are counted on the counter directly.
//!
//! A synchronous call with spans off carries a [`LeanGuard`] (handles, start tick, line:
//! no span state, no flags, no drop glue on the way out), which the compiler keeps in
//! registers. An `async fn` with spans off is polled by a [`LeanWatch`] (handles, start
//! tick, one state byte), which records the call on the line of the thread it finishes on;
//! a function returning a future makes it under a [`LeanGuard`], whose [`LeanPending`] the
//! future carries to its first poll and a [`LeanWatch`]. A call with spans on, or with
//! `circuit`, carries a [`Guard`].
//!
//! ## Error types
//!
//! The `type` label must stay bounded. It is [`ErrorLabel::error_label`] if the error type
//! implements [`ErrorLabel`] (seen at the call site: in a generic function whose error type
//! is a type parameter, the trait is only used if the parameter is bounded by it), and the
//! short name of the type otherwise ([`short_type_name`]: `std::io::Error` gives `Error`,
//! `my::Wrapper<T>` gives `Wrapper`).
//!
//! ## Circuit breaker
//!
//! With `circuit = "name"`, the call site also binds the registry's named breaker
//! ([`CircuitBreaker::named`]) on its first call, and each call takes a permit before its
//! body runs. A rejected call skips the body and returns `Err(E::from(NotPermitted))`
//! (recorded as any `Err`: `status="error"`, `dwcp_errors_total{type}`); a permitted call
//! reports the macro's classification to the permit (ok: success, error: failure); a panic
//! or a cancelled future drops the permit (the breaker's dropped-permit default). If the
//! breaker cannot be created, calls pass unprotected and [`REFUSED`] counts [`CIRCUIT`].
//!
//! ## Registration conflicts
//!
//! If the registry already holds one of these families with another definition (other
//! labels, another kind), the call site records nothing into that family and never fails or
//! panics; each refused family is counted once per call site in
//! `dwcp_telemetry_instrument_refused_total{metric}`.

use std::borrow::{Borrow, Cow};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::num::NonZeroU64;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock;
use crate::metric::thread_cells::{Lined as _, ThreadCells};
use crate::metric::{Counter, Gauge, Histogram};
use crate::propagation::{SpanId, TraceFlags, TraceId};
use crate::registry::{CounterFamily, Registry};
use crate::resilience::{CircuitBreaker, NotPermitted, Permit};
use crate::trace::context::{self, Ctx, CtxScope};
use crate::trace::sampler::{self, SiteRule};
use crate::trace::{self, AttrValue, SpanEvent, SpanKind, SpanRecord, SpanStatus};

/// Name of the request counter.
pub const REQUESTS: &str = "dwcp_requests_total";
/// Name of the duration histogram.
pub const DURATION: &str = "dwcp_request_duration_seconds";
/// Name of the error counter.
pub const ERRORS: &str = "dwcp_errors_total";
/// Name of the in-flight gauge.
pub const IN_FLIGHT: &str = "dwcp_requests_in_flight";
/// The `metric` label of [`REFUSED`] when a call site's `circuit = ".."` breaker could not
/// be created (its families conflict with others on the registry).
pub const CIRCUIT: &str = "dwcp_circuit_breaker_calls_total";
/// Name of the self-metric counting refused family registrations.
pub const REFUSED: &str = "dwcp_telemetry_instrument_refused_total";

const REFUSED_HELP: &str =
    "Families #[instrument_dwcp] call sites could not register (conflicting definitions), per call site";

/// A bounded label for an error type, used as `type` in `dwcp_errors_total`.
///
/// Implement it for an error enum to label errors per variant instead of by the type's
/// name. Return a small, fixed set of strings: each distinct value is a series.
///
/// ```
/// use dwcp_telemetry::instrument::ErrorLabel;
///
/// enum MigrateError { Timeout(u64), Refused(String) }
///
/// impl ErrorLabel for MigrateError {
///     fn error_label(&self) -> &'static str {
///         match self {
///             MigrateError::Timeout(_) => "timeout",
///             MigrateError::Refused(_) => "refused",
///         }
///     }
/// }
/// # let _ = (MigrateError::Timeout(1), MigrateError::Refused(String::new()));
/// ```
pub trait ErrorLabel {
    /// The `type` label value for this error.
    fn error_label(&self) -> &'static str;
}

impl<E: ErrorLabel + ?Sized> ErrorLabel for &E {
    fn error_label(&self) -> &'static str {
        (**self).error_label()
    }
}

/// The last path segment of `std::any::type_name::<T>()`, generics stripped:
/// `std::io::error::Error` → `Error`, `alloc::boxed::Box<dyn core::error::Error>` → `Box`,
/// `&str` → `str`. Never empty (`unknown` if nothing is left).
pub fn short_type_name<T: ?Sized>() -> &'static str {
    short_name(std::any::type_name::<T>())
}

fn short_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    let last = base.rsplit("::").next().unwrap_or(base);
    let trimmed = last.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'));
    if trimmed.is_empty() {
        "unknown"
    } else {
        trimmed
    }
}

/// How a finished call is counted.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `status="ok"`.
    Ok,
    /// `status="error"`, with the `type` label.
    Error(&'static str),
}

/// What a sampled span says about a failed call: its `exception.type` and
/// `exception.message` (bounded to [`MAX_TEXT`] bytes).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The error's type, as `std::any::type_name` gives it.
    pub ty: &'static str,
    /// Its `Display` (else `Debug`) text; empty if it has neither.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok = 0,
    Error = 1,
    Panic = 2,
    Cancelled = 3,
}

const STATUSES: [&str; 4] = ["ok", "error", "panic", "cancelled"];

/// Longest string a span attribute, exception message or status message gets from
/// `#[instrument_dwcp]` (bytes; longer text is cut at a character boundary).
pub const MAX_TEXT: usize = 1024;

/// One instrumented function's metric handles, bound on its first call.
#[doc(hidden)]
#[derive(Debug)]
pub struct SiteHandles {
    component: &'static str,
    requests: [Counter; 4],
    duration: Histogram,
    in_flight: Gauge,
    /// The per-thread lines that count this series' calls in flight and `ok` calls, shared
    /// with its `ok` counter and in-flight gauge (`None` if either is a no-op or an overflow
    /// series: then calls count with atomic adds on the handles).
    threads: Option<Arc<ThreadCells>>,
    /// Whether the duration histogram shares `threads` (and so flushes their pending
    /// durations before every read): then a call leaves its duration pending on its line
    /// and records the one it replaces.
    deferred: bool,
    errors: Option<CounterFamily>,
    /// `circuit = ".."`: the registry's named breaker (`None` without `circuit`, or if it
    /// could not be created: then calls pass unprotected).
    breaker: Option<CircuitBreaker>,
}

impl SiteHandles {
    /// Count a call in flight: on this thread's line, which is returned ([`NO_LINE`]
    /// without lines).
    #[inline(always)]
    fn start_call(&self) -> usize {
        match &self.threads {
            Some(t) => t.start(),
            None => {
                self.in_flight.add_int(1);
                NO_LINE
            }
        }
    }

    /// The status of a call with `outcome`; an error is counted in `dwcp_errors_total`
    /// here.
    #[inline(always)]
    fn status_of(&self, outcome: Outcome) -> Status {
        match outcome {
            Outcome::Ok => Status::Ok,
            Outcome::Error(ty) => {
                if let Some(errors) = &self.errors {
                    errors.with_labels_or_overflow(&[self.component, ty]).inc();
                }
                Status::Error
            }
        }
    }

    /// Record a finished call: its status, the in-flight gauge (on `line`, where it was
    /// counted at the start, or looked up if [`ANY_LINE`]), and its duration from the clock
    /// reading `start`. Returns the duration (ns; 0 if untimed).
    #[inline(always)]
    fn record(&self, status: Status, line: usize, start: u64) -> u64 {
        self.record_on((line != ANY_LINE).then_some(line), status, start)
    }

    /// [`SiteHandles::record`] on `line` (`Some`: where the call started, on this thread),
    /// or on this thread's line, looked up (`None`).
    #[inline(always)]
    fn record_on(&self, line: Option<usize>, status: Status, start: u64) -> u64 {
        // The counts first, then the clock: after the clock read, only the duration is left
        // (pending on the thread's line if the histogram flushes it: see `deferred`).
        let finished = match &self.threads {
            Some(t) => {
                let ok = status == Status::Ok;
                if !ok {
                    self.requests[status as usize].inc();
                }
                Some(match line {
                    Some(line) => t.finish_on(line, ok),
                    None => t.finish(ok),
                })
            }
            None => {
                self.requests[status as usize].inc();
                self.in_flight.add_int(-1);
                None
            }
        };
        // 0 if untimed: no reading is after `UNTIMED`.
        let ns = clock::nanos_since(start);
        match (finished, self.duration.atomic()) {
            (Some(f), Some(hist)) if self.deferred => f.leave((hist, ns)),
            _ => self.duration.record(ns),
        }
        ns
    }

    fn bind(
        registry: &Registry,
        component: &'static str,
        operation: &'static str,
        circuit: Option<&'static str>,
    ) -> Self {
        let refused = |metric: &str| {
            registry
                .self_counter(REFUSED, REFUSED_HELP, "metric", metric)
                .inc();
        };
        let requests = match registry
            .counter(REQUESTS, "Requests by component, operation and status")
            .dynamic_labels(["component", "operation", "status"])
            .register()
        {
            Ok(f) => STATUSES.map(|s| f.with_labels_or_overflow(&[component, operation, s])),
            Err(_) => {
                refused(REQUESTS);
                std::array::from_fn(|_| Counter::noop())
            }
        };
        let duration = match registry
            .histogram(DURATION, "Request duration by component and operation")
            .dynamic_labels(["component", "operation"])
            .register()
        {
            Ok(f) => f.with_labels_or_overflow(&[component, operation]),
            Err(_) => {
                refused(DURATION);
                Histogram::noop()
            }
        };
        let errors = match registry
            .counter(ERRORS, "Errors by component and error type")
            .dynamic_labels(["component", "type"])
            .register()
        {
            Ok(f) => Some(f),
            Err(_) => {
                refused(ERRORS);
                None
            }
        };
        let in_flight = match registry
            .gauge(IN_FLIGHT, "Requests started and not finished")
            .dynamic_labels(["component", "operation"])
            .register()
        {
            Ok(f) => f.with_labels_or_overflow(&[component, operation]),
            Err(_) => {
                refused(IN_FLIGHT);
                Gauge::noop()
            }
        };
        let breaker = circuit.and_then(|c| match CircuitBreaker::named(registry, c) {
            Ok(b) => Some(b),
            Err(_) => {
                refused(CIRCUIT);
                None
            }
        });
        let threads = shared_threads(&requests[Status::Ok as usize], &in_flight);
        let deferred = threads.as_ref().is_some_and(|t| {
            duration
                .thread_cells(|| t.clone())
                .is_some_and(|d| Arc::ptr_eq(&d, t))
        });
        SiteHandles {
            component,
            requests,
            duration,
            in_flight,
            threads,
            deferred,
            errors,
            breaker,
        }
    }
}

/// One set of per-thread lines for the `ok` counter and the in-flight gauge of a series, the
/// same for every call site recording into it (whichever binds first makes them).
fn shared_threads(ok: &Counter, in_flight: &Gauge) -> Option<Arc<ThreadCells>> {
    let gauge = in_flight.thread_cells(|| Arc::new(ThreadCells::new()))?;
    let counter = ok.thread_cells(|| gauge.clone())?;
    Arc::ptr_eq(&gauge, &counter).then_some(counter)
}

/// The span half of a call site: what `code.*` says and the site's own ratio.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SpanSite {
    /// `code.function`: the function's name.
    pub function: &'static str,
    /// `code.namespace`: the module path.
    pub namespace: &'static str,
    /// `sample = ..`: the root ratio of this call site (else its component's).
    pub sample: Option<f64>,
}

/// The `static` each instrumented function declares.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallSite {
    component: &'static str,
    operation: &'static str,
    handles: OnceLock<SiteHandles>,
    span: SpanSite,
    rule: SiteRule,
    circuit: Option<&'static str>,
}

impl CallSite {
    /// A call site of `component`'s `operation`; binds nothing until its first call.
    pub const fn new(component: &'static str, operation: &'static str) -> Self {
        Self::with_span(
            component,
            operation,
            SpanSite {
                function: operation,
                namespace: "",
                sample: None,
            },
        )
    }

    /// A call site with its span description.
    pub const fn with_span(
        component: &'static str,
        operation: &'static str,
        span: SpanSite,
    ) -> Self {
        CallSite {
            component,
            operation,
            handles: OnceLock::new(),
            span,
            rule: SiteRule::new(),
            circuit: None,
        }
    }

    /// The call site runs through the registry's named breaker `circuit`
    /// ([`CircuitBreaker::named`], bound with the handles on the first call).
    pub const fn with_circuit(mut self, circuit: &'static str) -> Self {
        self.circuit = Some(circuit);
        self
    }

    /// The bound handles; `registry` runs on the first call only.
    #[inline]
    pub fn handles<R, F>(&'static self, registry: F) -> &'static SiteHandles
    where
        R: Borrow<Registry>,
        F: FnOnce() -> R,
    {
        match self.handles.get() {
            Some(h) => h,
            None => self.bind(registry),
        }
    }

    #[cold]
    #[inline(never)]
    fn bind<R, F>(&'static self, registry: F) -> &'static SiteHandles
    where
        R: Borrow<Registry>,
        F: FnOnce() -> R,
    {
        self.handles.get_or_init(|| {
            SiteHandles::bind(
                registry().borrow(),
                self.component,
                self.operation,
                self.circuit,
            )
        })
    }

    /// Start a call: bind on first use, count it in flight, decide whether it is sampled
    /// (only if spans are on: a sink is installed, or `tracing_on`, a `tracing` subscriber
    /// wants the call site's level), read the clock.
    #[inline]
    pub fn start<R, F>(&'static self, registry: F, tracing_on: bool) -> Guard
    where
        R: Borrow<Registry>,
        F: FnOnce() -> R,
    {
        self.start_on(self.handles(registry), tracing_on)
    }

    /// [`CallSite::start`] with the handles already bound.
    #[inline(always)]
    fn start_on(&'static self, handles: &'static SiteHandles, tracing_on: bool) -> Guard {
        // Two constructions, so that the metrics-only one writes the `None` alone.
        if tracing_on || trace::sink_installed() {
            self.start_spans(handles, tracing_on)
        } else {
            Self::guard(handles, handles.start_call(), None)
        }
    }

    /// [`CallSite::start`] with the handles bound, once spans are known to be on ([`CallSite::start_lean`]
    /// returned `None`): the sampling decision is made without asking again.
    #[inline(always)]
    pub fn start_spans(&'static self, handles: &'static SiteHandles, tracing_on: bool) -> Guard {
        let line = handles.start_call();
        Self::guard(handles, line, Some(self.decide(tracing_on)))
    }

    #[inline(always)]
    fn guard(handles: &'static SiteHandles, line: usize, span: Option<SpanCall>) -> Guard {
        Guard {
            handles,
            start: UNTIMED,
            line,
            done: false,
            panicked: AtomicBool::new(false),
            span: ManuallyDrop::new(span),
        }
    }

    /// Start a synchronous call with spans off (what the macro generates for a plain `fn`
    /// without `circuit`): count it in flight and return the lean guard, which holds only
    /// what the metrics need. `None` if spans are on (a sink is installed, or
    /// `tracing_on`): then the call starts with [`CallSite::start_spans`] instead.
    #[inline]
    pub fn start_lean(
        &'static self,
        handles: &'static SiteHandles,
        tracing_on: bool,
    ) -> Option<LeanGuard> {
        if tracing_on || trace::sink_installed() {
            return None;
        }
        Some(LeanGuard {
            handles,
            start: UNTIMED,
            line: handles.start_call(),
        })
    }

    /// Start an `async fn`'s call with spans off: count it in flight and return what
    /// [`LeanWatch`] needs to finish it. `None` if spans are on: then the call starts with
    /// [`CallSite::start_spans`] instead (as [`CallSite::start_lean`]).
    #[inline]
    pub fn start_lean_async(
        &'static self,
        handles: &'static SiteHandles,
        tracing_on: bool,
    ) -> Option<LeanStart> {
        if tracing_on || trace::sink_installed() {
            return None;
        }
        // Counted on this thread's line; the call finishes on the line of the thread it
        // finishes on (a future may move between threads).
        handles.start_call();
        Some(LeanStart { handles })
    }

    /// The sampling decision, before anything is built.
    #[inline(always)]
    fn decide(&'static self, tracing_on: bool) -> SpanCall {
        let parent = context::get();
        let (threshold, parent_based) = self.rule.get(|| (self.component, self.span.sample));
        let ctx = match parent {
            Some(p) => {
                let sampled = if parent_based {
                    p.sampled()
                } else {
                    sampler::by_ratio(p.trace_lo, threshold)
                };
                Ctx {
                    span: context::random_id(),
                    bits: Ctx::bits(p.flags().with_sampled(sampled), false),
                    ..p
                }
            }
            None => {
                let [trace_lo, trace_hi, span] = context::random_ids();
                let sampled = sampler::by_ratio(trace_lo, threshold);
                Ctx {
                    trace_hi,
                    trace_lo,
                    span: NonZeroU64::new(span).unwrap_or(NonZeroU64::MIN),
                    bits: Ctx::bits(TraceFlags::NOT_SAMPLED.with_sampled(sampled), false),
                }
            }
        };
        let sampled = ctx.sampled();
        self.state(ctx, sampled, tracing_on)
    }

    #[inline(always)]
    fn state(&'static self, ctx: Ctx, sampled: bool, tracing_on: bool) -> SpanCall {
        SpanCall {
            ctx,
            data: if sampled {
                Some(self.sampled(ctx, tracing_on))
            } else {
                None
            },
        }
    }

    /// A sampled call: everything a span needs, once. Its parent is still the current
    /// context (the decision read it just before): read here again, so that the unsampled
    /// path does not keep a copy of it.
    #[cold]
    #[inline(never)]
    fn sampled(&'static self, ctx: Ctx, tracing_on: bool) -> Box<SpanData> {
        let parent = context::get();
        let recording = trace::sink_installed();
        let mut attributes = Vec::new();
        if recording {
            attributes.reserve(8);
            for (k, v) in [
                ("code.function", self.span.function),
                ("code.namespace", self.span.namespace),
                ("dwcp.component", self.component),
                ("dwcp.operation", self.operation),
            ] {
                attributes.push((Cow::Borrowed(k), AttrValue::Str(Cow::Borrowed(v))));
            }
        }
        Box::new(SpanData {
            site: self,
            ctx,
            parent,
            start_unix_nanos: unix_nanos(),
            recording,
            wants_tracing: tracing_on,
            trace_state: if recording {
                context::state_string()
            } else {
                String::new()
            },
            attributes,
            tracing: None,
        })
    }

    /// Hand a finished sampled span to the sink (the box is the one the call carried: moving
    /// it here moves a pointer).
    #[allow(clippy::boxed_local)]
    #[cold]
    #[inline(never)]
    fn end_span(
        &'static self,
        mut data: Box<SpanData>,
        status: Status,
        ns: u64,
        exception: Option<Exception>,
    ) {
        // Closes the `tracing` span (its subscriber sees it end here).
        drop(data.tracing.take());
        if !data.recording {
            return;
        }
        let Some(sink) = trace::sink() else { return };
        let end = data.start_unix_nanos.saturating_add(ns);
        let exception = match status {
            Status::Ok | Status::Cancelled => None,
            Status::Error => Some(exception.unwrap_or(Exception {
                ty: "error",
                message: String::new(),
            })),
            Status::Panic => Some(Exception {
                ty: "panic",
                message: format!("{} panicked", self.span.function),
            }),
        };
        let mut events = Vec::new();
        let span_status = match exception {
            None => SpanStatus::Unset,
            Some(e) => {
                let message = if e.message.is_empty() {
                    e.ty.to_owned()
                } else {
                    e.message.clone()
                };
                events.push(SpanEvent {
                    name: Cow::Borrowed("exception"),
                    time_unix_nanos: end,
                    attributes: vec![
                        (
                            Cow::Borrowed("exception.type"),
                            AttrValue::Str(Cow::Borrowed(e.ty)),
                        ),
                        (
                            Cow::Borrowed("exception.message"),
                            AttrValue::Str(Cow::Owned(e.message)),
                        ),
                    ],
                });
                SpanStatus::Error {
                    message: Cow::Owned(message),
                }
            }
        };
        let mut attributes = std::mem::take(&mut data.attributes);
        attributes.push((
            Cow::Borrowed("dwcp.status"),
            AttrValue::Str(Cow::Borrowed(STATUSES[status as usize])),
        ));
        let remote_parent = data.parent.is_some_and(|p| p.remote());
        sink.submit(SpanRecord {
            trace_id: data.ctx.trace_id(),
            span_id: data.ctx.span_id(),
            parent_span_id: data.parent.map(|p| p.span_id()),
            flags: data.ctx.flags(),
            trace_state: std::mem::take(&mut data.trace_state),
            name: Cow::Borrowed(self.operation),
            kind: if remote_parent {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            start_unix_nanos: data.start_unix_nanos,
            end_unix_nanos: end,
            status: span_status,
            attributes,
            events,
        });
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A call's span state when spans were on at its start: its context, and its data if it
/// was sampled.
#[derive(Debug)]
struct SpanCall {
    ctx: Ctx,
    data: Option<Box<SpanData>>,
}

/// A sampled call's span while it runs. The generated code adds attributes to it (only if
/// [`SpanData::recording`]) and, for a `tracing` subscriber, the `tracing` span.
#[doc(hidden)]
#[derive(Debug)]
pub struct SpanData {
    site: &'static CallSite,
    ctx: Ctx,
    parent: Option<Ctx>,
    start_unix_nanos: u64,
    recording: bool,
    wants_tracing: bool,
    trace_state: String,
    attributes: Vec<(Cow<'static, str>, AttrValue)>,
    tracing: Option<tracing::Span>,
}

impl SpanData {
    /// Whether a sink will receive the span (attributes are read only then).
    #[inline]
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Adds an attribute (`None`: the value had no usable form; nothing is added).
    #[inline]
    pub fn attr(&mut self, key: &'static str, value: Option<AttrValue>) {
        if let Some(v) = value {
            self.attributes.push((Cow::Borrowed(key), v));
        }
    }

    /// Whether a `tracing` subscriber wanted the call site's level at the start.
    #[inline]
    pub fn wants_tracing(&self) -> bool {
        self.wants_tracing
    }

    /// The `tracing` span to enter while the call runs.
    pub fn set_tracing(&mut self, span: tracing::Span) {
        self.tracing = Some(span);
    }

    /// The span's trace id.
    pub fn trace_id(&self) -> TraceId {
        self.ctx.trace_id()
    }

    /// The span's id.
    pub fn span_id(&self) -> SpanId {
        self.ctx.span_id()
    }
}

/// A guard's start before [`Guard::time`]: no clock reading reaches it, so the duration from
/// it ([`clock::nanos_since`]) is 0. A call finished untimed (it panicked in its span's
/// attributes, say) records a zero duration.
const UNTIMED: u64 = u64::MAX;

/// A guard's line when its call site counts without per-thread lines.
const NO_LINE: usize = usize::MAX - 1;
/// A guard's line when its call may finish on another thread than it started on (a future):
/// the finishing thread's line is looked up then.
const ANY_LINE: usize = usize::MAX;

/// One call in progress. Finishing it records the status; dropping it unfinished records
/// `panic` (while unwinding) or `cancelled`.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct Guard {
    handles: &'static SiteHandles,
    /// The clock reading at the start ([`Guard::time`]), or [`UNTIMED`].
    start: u64,
    /// The per-thread line the call was counted in flight on, where it finishes if it
    /// finishes on the same thread: [`NO_LINE`] without lines, [`ANY_LINE`] for a future.
    line: usize,
    done: bool,
    panicked: AtomicBool,
    /// `None` if spans were off at the start. Taken (and so dropped) when the call's status
    /// is recorded, which every guard does once, finished or dropped unfinished:
    /// `ManuallyDrop` spares the metrics-only path the drop glue of a field that is always
    /// `None` by then.
    span: ManuallyDrop<Option<SpanCall>>,
}

/// The call's context (and `tracing` span) entered: set while the body (or a poll of its
/// future) runs, restored when dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct Entered<'a> {
    _ctx: Option<CtxScope>,
    _tracing: Option<tracing::span::Entered<'a>>,
}

impl Guard {
    /// The sampled call's span, `None` if the call is not sampled (or spans are off).
    #[inline]
    pub fn span(&mut self) -> Option<&mut SpanData> {
        self.span.as_mut().and_then(|s| s.data.as_deref_mut())
    }

    /// Make the call's context current (and enter its `tracing` span) until the returned
    /// value is dropped. Nothing to do when spans are off.
    #[inline]
    pub fn enter(&self) -> Entered<'_> {
        match &*self.span {
            None => Entered {
                _ctx: None,
                _tracing: None,
            },
            Some(s) => Entered {
                _ctx: Some(CtxScope::enter(s.ctx.read_by_words())),
                _tracing: s
                    .data
                    .as_ref()
                    .and_then(|d| d.tracing.as_ref())
                    .map(tracing::Span::enter),
            },
        }
    }

    /// Read the clock: the call's duration runs from here. The generated code calls it once
    /// the guard is in its final place, so that no copy of the guard carries the reading (a
    /// wide load of a separately stored tick stalls store forwarding until the clock read
    /// retires). A call finished without it records a zero duration.
    #[inline(always)]
    pub fn time(&mut self) {
        self.start = clock::now_raw();
    }

    /// A permit of the call site's breaker (`Ok(None)` without one). A rejected call
    /// (counted `not_permitted` by the breaker) still has to be finished.
    #[inline]
    pub fn acquire(&self) -> Result<Option<Permit<'static>>, NotPermitted> {
        match &self.handles.breaker {
            Some(b) => b.try_acquire().map(Some),
            None => Ok(None),
        }
    }

    /// Record the call's outcome.
    #[inline]
    pub fn finish(&mut self, outcome: Outcome) {
        self.finish_outcome(outcome, None);
    }

    #[inline(always)]
    fn finish_outcome(&mut self, outcome: Outcome, exception: Option<Exception>) {
        self.done = true;
        let status = self.handles.status_of(outcome);
        self.record(status, exception);
    }

    /// Run a synchronous call's body with the call's context current, then
    /// [`Guard::finish_with`]: the spans-on half of a sync call.
    #[inline(always)]
    pub fn run_sync<O, B, C, D>(&mut self, body: B, classify: C, describe: D) -> O
    where
        B: FnOnce() -> O,
        C: FnOnce(&O) -> Outcome,
        D: FnOnce(&O) -> Exception,
    {
        let out = {
            let _entered = self.enter();
            body()
        };
        self.finish_with(&out, classify, describe);
        out
    }

    /// Classify `out` with `classify`, then record; a sampled failed call's span describes
    /// it with `describe` (called only then). A panic in either records `panic`.
    #[inline]
    pub fn finish_with<O, C, D>(&mut self, out: &O, classify: C, describe: D)
    where
        C: FnOnce(&O) -> Outcome,
        D: FnOnce(&O) -> Exception,
    {
        self.finish_permit(out, None, classify, describe);
    }

    /// [`Guard::finish_with`], reporting the classified outcome to the breaker's `permit`
    /// first: a call classified ok is a success, an error a failure. (A panic in
    /// `classify` drops the permit: the breaker's dropped-permit default.)
    #[inline]
    pub fn finish_permit<O, C, D>(
        &mut self,
        out: &O,
        permit: Option<Permit<'static>>,
        classify: C,
        describe: D,
    ) where
        C: FnOnce(&O) -> Outcome,
        D: FnOnce(&O) -> Exception,
    {
        let outcome = classify(out);
        if let Some(p) = permit {
            match outcome {
                Outcome::Ok => p.success(),
                Outcome::Error(_) => p.failure(),
            }
        }
        let exception = match outcome {
            Outcome::Error(_) if self.span.as_ref().is_some_and(|s| s.data.is_some()) => {
                Some(describe(out))
            }
            _ => None,
        };
        self.finish_outcome(outcome, exception);
    }

    #[inline(always)]
    fn record(&mut self, status: Status, exception: Option<Exception>) {
        let ns = self.handles.record(status, self.line, self.start);
        // `span` is `ManuallyDrop`: this `take` is what drops it.
        if let Some(SpanCall {
            data: Some(data), ..
        }) = Option::take(&mut *self.span)
        {
            data.site.end_span(data, status, ns, exception);
        }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.unfinished();
        }
    }
}

impl Guard {
    /// Dropped before it finished: the call panicked or its future was dropped.
    ///
    /// It cannot unwind (`extern "C"`; a panic in it, from a span sink, is caught and the
    /// span dropped: the metrics are recorded before the span is handed over). So the drop
    /// glue of an `async fn`'s future, which holds a guard or a [`LeanWatch`], needs no
    /// landing pads, and the compiler inlines it (`docs/INSTRUMENT.md`).
    #[cold]
    #[inline(never)]
    extern "C" fn unfinished(&mut self) {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.record_unfinished()));
    }

    fn record_unfinished(&mut self) {
        self.done = true;
        // A returned future dropped before its first poll never reached `Watch`, and may be
        // dropped on another thread than the one that started it: look the line up.
        self.line = ANY_LINE;
        let status = if self.panicked.load(Ordering::Relaxed) || std::thread::panicking() {
            Status::Panic
        } else {
            Status::Cancelled
        };
        self.record(status, None);
    }
}

/// A synchronous call in progress with spans off ([`CallSite::start_lean`]): only what its
/// metrics need, so that the metrics-only path carries no span state, flags or drop glue
/// (`docs/INSTRUMENT.md`). Finishing it consumes it; dropping it unfinished (the body
/// panicked) records `panic`.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct LeanGuard {
    handles: &'static SiteHandles,
    /// The clock reading at the start ([`LeanGuard::time`]), or [`UNTIMED`].
    start: u64,
    /// The per-thread line the call was counted in flight on ([`NO_LINE`] without lines).
    line: usize,
}

impl LeanGuard {
    /// Read the clock: the call's duration runs from here ([`Guard::time`]).
    #[inline(always)]
    pub fn time(&mut self) {
        self.start = clock::now_raw();
    }

    /// Classify `out` with `classify` and record the call. A panic in `classify` drops the
    /// guard unfinished, which records `panic`.
    #[inline]
    pub fn finish_with<O, C>(self, out: &O, classify: C)
    where
        C: FnOnce(&O) -> Outcome,
    {
        let outcome = classify(out);
        let (handles, line, start) = (self.handles, self.line, self.start);
        std::mem::forget(self);
        handles.record_on(Some(line), handles.status_of(outcome), start);
    }
}

impl LeanGuard {
    /// The call's body made a future (a function returning one, spans off): from here the
    /// future carries the call, which may finish, or be dropped, on another thread. The
    /// clock keeps running from [`LeanGuard::time`].
    #[inline(always)]
    pub fn pending(self) -> LeanPending {
        let (handles, start) = (self.handles, self.start);
        std::mem::forget(self);
        LeanPending { handles, start }
    }
}

/// A returned future's call with spans off, between the function's return and the
/// future's first poll ([`LeanGuard::pending`]), where [`LeanWatch::resume`] takes it over.
/// Dropped before that (the future was never polled), it records `cancelled`, on the line
/// of the thread it is dropped on.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct LeanPending {
    handles: &'static SiteHandles,
    start: u64,
}

impl Drop for LeanPending {
    #[inline]
    fn drop(&mut self) {
        lean_watch_unfinished(self.handles, false, self.start);
    }
}

impl Drop for LeanGuard {
    /// Only an unfinished call drops its guard (`finish_with` consumes it without a drop).
    /// The guard's fields are passed by value, so that its address never escapes and it
    /// can live in registers.
    #[inline]
    fn drop(&mut self) {
        lean_unfinished(self.handles, self.line, self.start);
    }
}

/// A [`LeanGuard`] dropped unfinished: the body panicked. On the thread that started the
/// call (it is unwinding from the body), so on the line the call started on.
#[cold]
#[inline(never)]
fn lean_unfinished(handles: &'static SiteHandles, line: usize, start: u64) {
    let status = if std::thread::panicking() {
        Status::Panic
    } else {
        Status::Cancelled
    };
    handles.record_on(Some(line), status, start);
}

/// An `async fn`'s call counted in flight with spans off ([`CallSite::start_lean_async`]),
/// not yet watched: the generated code hands it straight to [`LeanWatch::new`], with
/// nothing in between that can panic or return.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct LeanStart {
    handles: &'static SiteHandles,
}

/// Polls an `async fn`'s body that started with spans off
/// ([`CallSite::start_lean_async`]), classifies its output and records the call: the
/// metrics-only counterpart of [`Watch`], with no span state, no context to enter and no
/// guard to move (`docs/INSTRUMENT.md`). Dropped before completion, it records `cancelled`,
/// or `panic` if a poll panicked.
#[doc(hidden)]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct LeanWatch<F, C> {
    /// Structurally pinned: see `poll`.
    fut: F,
    handles: &'static SiteHandles,
    /// The clock reading at the start.
    start: u64,
    /// The generated classification closure (it captures nothing, so it is `Fn`: nothing
    /// to take out before calling it).
    classify: C,
    state: LeanState,
}

/// Where a [`LeanWatch`]'s call is: one byte, written twice a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeanState {
    /// Not polled yet, or the last poll returned `Pending`.
    Waiting,
    /// A poll (or the classification after it) is running: still so after the poll, it
    /// unwound.
    Polling,
    /// Recorded.
    Done,
}

impl<F, C> LeanWatch<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    /// Watch `fut` for the call `lean` started, and read the clock: the call's duration
    /// runs from here.
    #[inline(always)]
    pub fn new(lean: LeanStart, fut: F, classify: C) -> Self {
        Self::started(lean.handles, clock::now_raw(), fut, classify)
    }

    /// Watch `fut`, made by a function returning a future, for the call `pending` carries
    /// (its duration runs from the function's start).
    #[inline(always)]
    pub fn resume(pending: LeanPending, fut: F, classify: C) -> Self {
        let (handles, start) = (pending.handles, pending.start);
        std::mem::forget(pending);
        Self::started(handles, start, fut, classify)
    }

    #[inline(always)]
    fn started(handles: &'static SiteHandles, start: u64, fut: F, classify: C) -> Self {
        LeanWatch {
            fut,
            handles,
            start,
            classify,
            state: LeanState::Waiting,
        }
    }
}

impl<F, C> Future for LeanWatch<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of a pinned
        // `LeanWatch` (no method moves it, `Drop` only reads the other fields, and
        // `LeanWatch` is `Unpin` only if `F` is), and the other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above; `this.fut` stays where the pinned `LeanWatch` put it.
        let mut fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        if this.state == LeanState::Done {
            // Polled again after it completed (and recorded): the inner future answers.
            return fut.as_mut().poll(cx);
        }
        this.state = LeanState::Polling;
        match fut.as_mut().poll(cx) {
            Poll::Pending => {
                this.state = LeanState::Waiting;
                Poll::Pending
            }
            Poll::Ready(out) => {
                let handles = this.handles;
                let status = handles.status_of((this.classify)(&out));
                handles.record_on(None, status, this.start);
                this.state = LeanState::Done;
                Poll::Ready(out)
            }
        }
    }
}

impl<F, C> Drop for LeanWatch<F, C> {
    #[inline]
    fn drop(&mut self) {
        if self.state != LeanState::Done {
            lean_watch_unfinished(self.handles, self.state == LeanState::Polling, self.start);
        }
    }
}

/// A [`LeanWatch`] dropped unfinished: `panic` if a poll (or the classification) unwound,
/// now or earlier, else `cancelled`. Possibly on another thread than the call started on:
/// on this thread's line. It cannot unwind, as [`Guard::unfinished`].
#[cold]
#[inline(never)]
extern "C" fn lean_watch_unfinished(
    handles: &'static SiteHandles,
    polled_into_panic: bool,
    start: u64,
) {
    let status = if polled_into_panic || std::thread::panicking() {
        Status::Panic
    } else {
        Status::Cancelled
    };
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| handles.record_on(None, status, start)));
}

/// Marks the guard as panicked if the poll it watches unwinds.
struct PollSentinel<'a>(Option<&'a Guard>);

impl Drop for PollSentinel<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            g.panicked.store(true, Ordering::Relaxed);
        }
    }
}

/// Polls an instrumented future (with the call's context current), classifies its output
/// and finishes the guard. Dropped before completion, the guard records `cancelled` (or
/// `panic` if a poll panicked).
#[doc(hidden)]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Watch<'a, F, C, D> {
    fut: Pin<&'a mut F>,
    guard: Option<Guard>,
    classify: Option<(C, D)>,
    permit: Option<Permit<'static>>,
}

// `Watch` never pins its fields (the inner future is already pinned elsewhere), so it is
// `Unpin` whatever `C` and `D` are.
impl<F, C, D> Unpin for Watch<'_, F, C, D> {}

impl<'a, F, C, D> Watch<'a, F, C, D>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
    D: FnOnce(&F::Output) -> Exception,
{
    /// Watch `fut` for the call `guard`.
    pub fn new(mut guard: Guard, fut: Pin<&'a mut F>, classify: C, describe: D) -> Self {
        // The future may finish on another thread.
        guard.line = ANY_LINE;
        Watch {
            fut,
            guard: Some(guard),
            classify: Some((classify, describe)),
            permit: None,
        }
    }

    /// Report the outcome to the breaker's `permit` too; held across the awaits (dropped
    /// with the future if it is cancelled: the breaker's dropped-permit default).
    pub fn with_permit(mut self, permit: Option<Permit<'static>>) -> Self {
        self.permit = permit;
        self
    }
}

impl<F, C, D> Future for Watch<'_, F, C, D>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
    D: FnOnce(&F::Output) -> Exception,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let polled = {
            let _entered = this.guard.as_ref().map(Guard::enter);
            let mut sentinel = PollSentinel(this.guard.as_ref());
            let polled = this.fut.as_mut().poll(cx);
            sentinel.0 = None;
            polled
        };
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                if let (Some(mut guard), Some((classify, describe))) =
                    (this.guard.take(), this.classify.take())
                {
                    guard.finish_permit(&out, this.permit.take(), classify, describe);
                }
                Poll::Ready(out)
            }
        }
    }
}

/// The `registry = expr` argument: a `Registry`, `&Registry`, `Arc<Registry>`... Runs once
/// per call site; the clone is an `Arc` clone. Generic only here, so that a type error is
/// reported once, at the user's expression.
#[doc(hidden)]
pub fn registry_arg<R: Borrow<Registry>>(registry: R) -> Registry {
    registry.borrow().clone()
}

/// Fixes the output type of a returned future to the declared `Future<Output = O>`.
#[doc(hidden)]
#[inline(always)]
pub fn expect_output<O, F: Future<Output = O>>(f: F) -> F {
    f
}

/// Autoref specialisation of the `type` label: [`ErrorLabel`] if implemented, else the
/// short type name. Call as `(&&ErrorTag(e)).__dwcp_error_type()` with both traits in scope.
#[doc(hidden)]
pub mod __private {
    use std::fmt::{self, Debug, Display, Write as _};

    use super::{short_type_name, ErrorLabel, Exception, MAX_TEXT};
    use crate::trace::AttrValue;

    /// The generated code names `tracing` through here (the user need not depend on it).
    pub use ::tracing;

    /// A `String` that stops growing at [`MAX_TEXT`] bytes (at a character boundary); the
    /// formatting that feeds it stops there too.
    struct Bounded(String);

    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = MAX_TEXT - self.0.len();
            if s.len() <= room {
                self.0.push_str(s);
                Ok(())
            } else {
                let mut cut = room;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.0.push_str(&s[..cut]);
                Err(fmt::Error)
            }
        }
    }

    /// `Display` text, at most [`MAX_TEXT`] bytes.
    pub fn display_text<T: Display + ?Sized>(v: &T) -> String {
        let mut b = Bounded(String::new());
        let _ = write!(b, "{v}");
        b.0
    }

    /// `Debug` text, at most [`MAX_TEXT`] bytes.
    pub fn debug_text<T: Debug + ?Sized>(v: &T) -> String {
        let mut b = Bounded(String::new());
        let _ = write!(b, "{v:?}");
        b.0
    }

    /// `fields(name = %value)`.
    pub fn display<T: Display + ?Sized>(v: &T) -> Option<AttrValue> {
        Some(AttrValue::Str(display_text(v).into()))
    }

    /// `fields(name = ?value)`.
    pub fn debug<T: Debug + ?Sized>(v: &T) -> Option<AttrValue> {
        Some(AttrValue::Str(debug_text(v).into()))
    }

    /// Values recorded with their own type: integers, floats, `bool`, strings.
    pub trait AttrPrimitive {
        /// The attribute value.
        fn attr_value(&self) -> AttrValue;
    }

    macro_rules! ints {
        ($($t:ty),*) => {$(
            impl AttrPrimitive for $t {
                #[allow(clippy::cast_lossless)]
                fn attr_value(&self) -> AttrValue {
                    match i64::try_from(*self) {
                        Ok(v) => AttrValue::I64(v),
                        Err(_) => AttrValue::Str(self.to_string().into()),
                    }
                }
            }
        )*};
    }
    ints!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

    impl AttrPrimitive for f64 {
        fn attr_value(&self) -> AttrValue {
            AttrValue::F64(*self)
        }
    }

    impl AttrPrimitive for f32 {
        fn attr_value(&self) -> AttrValue {
            AttrValue::F64(f64::from(*self))
        }
    }

    impl AttrPrimitive for bool {
        fn attr_value(&self) -> AttrValue {
            AttrValue::Bool(*self)
        }
    }

    impl AttrPrimitive for str {
        fn attr_value(&self) -> AttrValue {
            AttrValue::Str(display_text(self).into())
        }
    }

    impl AttrPrimitive for String {
        fn attr_value(&self) -> AttrValue {
            AttrValue::Str(display_text(self.as_str()).into())
        }
    }

    impl<T: AttrPrimitive + ?Sized> AttrPrimitive for &T {
        fn attr_value(&self) -> AttrValue {
            (**self).attr_value()
        }
    }

    impl<T: AttrPrimitive + ?Sized> AttrPrimitive for &mut T {
        fn attr_value(&self) -> AttrValue {
            (**self).attr_value()
        }
    }

    /// Autoref specialisation of an attribute value: call as
    /// `(&&&&AttrTag(&v)).__dwcp_attr()` with the four `Via*` traits in scope. A primitive
    /// keeps its type, else `Display` text, else `Debug` text, else nothing.
    #[derive(Debug)]
    pub struct AttrTag<'a, T: ?Sized>(pub &'a T);

    pub trait ViaPrimitive {
        fn __dwcp_attr(&self) -> Option<AttrValue>;
    }

    impl<T: AttrPrimitive + ?Sized> ViaPrimitive for &&&AttrTag<'_, T> {
        #[inline]
        fn __dwcp_attr(&self) -> Option<AttrValue> {
            Some(self.0.attr_value())
        }
    }

    pub trait ViaDisplay {
        fn __dwcp_attr(&self) -> Option<AttrValue>;
    }

    impl<T: Display + ?Sized> ViaDisplay for &&AttrTag<'_, T> {
        #[inline]
        fn __dwcp_attr(&self) -> Option<AttrValue> {
            display(self.0)
        }
    }

    pub trait ViaDebug {
        fn __dwcp_attr(&self) -> Option<AttrValue>;
    }

    impl<T: Debug + ?Sized> ViaDebug for &AttrTag<'_, T> {
        #[inline]
        fn __dwcp_attr(&self) -> Option<AttrValue> {
            debug(self.0)
        }
    }

    pub trait ViaNothing {
        fn __dwcp_attr(&self) -> Option<AttrValue>;
    }

    impl<T: ?Sized> ViaNothing for AttrTag<'_, T> {
        #[inline]
        fn __dwcp_attr(&self) -> Option<AttrValue> {
            None
        }
    }

    /// Autoref specialisation of a failure's description: call as
    /// `(&&&ExcTag(&e)).__dwcp_exception()` with the three `Exc*` traits in scope. The type
    /// name, and the `Display` text, else the `Debug` text, else nothing.
    #[derive(Debug)]
    pub struct ExcTag<'a, T: ?Sized>(pub &'a T);

    pub trait ExcDisplay {
        fn __dwcp_exception(&self) -> Exception;
    }

    impl<T: Display + ?Sized> ExcDisplay for &&ExcTag<'_, T> {
        fn __dwcp_exception(&self) -> Exception {
            Exception {
                ty: std::any::type_name::<T>(),
                message: display_text(self.0),
            }
        }
    }

    pub trait ExcDebug {
        fn __dwcp_exception(&self) -> Exception;
    }

    impl<T: Debug + ?Sized> ExcDebug for &ExcTag<'_, T> {
        fn __dwcp_exception(&self) -> Exception {
            Exception {
                ty: std::any::type_name::<T>(),
                message: debug_text(self.0),
            }
        }
    }

    pub trait ExcNothing {
        fn __dwcp_exception(&self) -> Exception;
    }

    impl<T: ?Sized> ExcNothing for ExcTag<'_, T> {
        fn __dwcp_exception(&self) -> Exception {
            Exception {
                ty: std::any::type_name::<T>(),
                message: String::new(),
            }
        }
    }

    #[derive(Debug)]
    pub struct ErrorTag<'a, E: ?Sized>(pub &'a E);

    pub trait ViaErrorLabel {
        fn __dwcp_error_type(&self) -> &'static str;
    }

    impl<E: ErrorLabel + ?Sized> ViaErrorLabel for &ErrorTag<'_, E> {
        #[inline]
        fn __dwcp_error_type(&self) -> &'static str {
            self.0.error_label()
        }
    }

    pub trait ViaTypeName {
        fn __dwcp_error_type(&self) -> &'static str;
    }

    impl<E: ?Sized> ViaTypeName for ErrorTag<'_, E> {
        #[inline]
        fn __dwcp_error_type(&self) -> &'static str {
            short_type_name::<E>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(short_type_name::<Box<dyn std::error::Error>>(), "Box");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec");
        assert_eq!(short_type_name::<str>(), "str");
        assert_eq!(short_type_name::<&str>(), "str");
        assert_eq!(short_type_name::<u32>(), "u32");
        assert_eq!(short_name("()"), "unknown");
        assert_eq!(short_name(""), "unknown");
    }

    #[test]
    fn guard_records_cancelled_and_ok() {
        let reg = Registry::builder().build().unwrap();
        static SITE: CallSite = CallSite::new("unit", "op");
        SITE.start(|| &reg, false).finish(Outcome::Ok);
        drop(SITE.start(|| &reg, false));
        SITE.start(|| &reg, false).finish(Outcome::Error("Boom"));
        let c = reg.existing_counter(REQUESTS).unwrap();
        for (s, n) in [("ok", 1), ("cancelled", 1), ("error", 1), ("panic", 0)] {
            assert_eq!(
                c.try_with_labels(&["unit", "op", s]).unwrap().get(),
                n,
                "{s}"
            );
        }
        let e = reg.existing_counter(ERRORS).unwrap();
        assert_eq!(e.try_with_labels(&["unit", "Boom"]).unwrap().get(), 1);
        let g = reg.existing_gauge(IN_FLIGHT).unwrap();
        assert_eq!(g.try_with_labels(&["unit", "op"]).unwrap().get(), 0.0);
    }

    struct PanicOnPoll;

    impl Future for PanicOnPoll {
        type Output = u8;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
            panic!("poll panicked");
        }
    }

    struct NoopWake;

    impl std::task::Wake for NoopWake {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    /// A `LeanWatch` kept alive past a panicking poll (its owner caught the panic) records
    /// `panic` when it is dropped later, outside any unwinding; one completed and polled
    /// again is recorded once.
    #[test]
    fn lean_watch_remembers_a_panicking_poll_and_records_once() {
        let reg = Registry::builder().build().unwrap();
        static SITE: CallSite = CallSite::new("unit", "lean");
        let handles = SITE.handles(|| &reg);
        let waker = std::task::Waker::from(std::sync::Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let gauge = || {
            reg.existing_gauge(IN_FLIGHT)
                .unwrap()
                .try_with_labels(&["unit", "lean"])
                .unwrap()
                .get()
        };
        let counts = || {
            let c = reg.existing_counter(REQUESTS).unwrap();
            ["ok", "error", "panic", "cancelled"]
                .map(|s| c.try_with_labels(&["unit", "lean", s]).unwrap().get())
        };

        let inner = PanicOnPoll;
        let start = SITE
            .start_lean_async(handles, false)
            .expect("spans are off");
        let mut w = LeanWatch::new(start, inner, |_| Outcome::Ok);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::new(&mut w).poll(&mut cx)
        }));
        assert!(r.is_err());
        assert_eq!(gauge(), 1.0);
        drop(w);
        assert_eq!(counts(), [0, 0, 1, 0]);
        assert_eq!(gauge(), 0.0);

        let inner = std::future::ready(5u8);
        let start = SITE
            .start_lean_async(handles, false)
            .expect("spans are off");
        let mut w = LeanWatch::new(start, inner, |_| Outcome::Ok);
        assert_eq!(Pin::new(&mut w).poll(&mut cx), Poll::Ready(5));
        // `Ready` polled again panics ("`Ready` polled after completion"): not a second call.
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::new(&mut w).poll(&mut cx)
        }));
        assert!(again.is_err());
        drop(w);
        assert_eq!(counts(), [1, 0, 1, 0]);
        assert_eq!(gauge(), 0.0);

        // Dropped pending (never polled): cancelled.
        let inner = std::future::pending::<u8>();
        let start = SITE
            .start_lean_async(handles, false)
            .expect("spans are off");
        drop(LeanWatch::new(start, inner, |_| Outcome::Ok));
        assert_eq!(counts(), [1, 0, 1, 1]);
        assert_eq!(gauge(), 0.0);
    }

    /// A `Watch` kept alive past a panicking poll (its owner caught the panic) still
    /// records `panic` when it is dropped later, outside any unwinding.
    #[test]
    fn watch_remembers_a_panicking_poll() {
        let reg = Registry::builder().build().unwrap();
        static SITE: CallSite = CallSite::new("unit", "watch");
        let waker = std::task::Waker::from(std::sync::Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let mut inner = std::pin::pin!(PanicOnPoll);
        let mut w = Watch::new(
            SITE.start(|| &reg, false),
            inner.as_mut(),
            |_| Outcome::Ok,
            |_| Exception {
                ty: "u8",
                message: String::new(),
            },
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::new(&mut w).poll(&mut cx)
        }));
        assert!(r.is_err());
        let g = reg.existing_gauge(IN_FLIGHT).unwrap();
        assert_eq!(g.try_with_labels(&["unit", "watch"]).unwrap().get(), 1.0);
        drop(w);
        let c = reg.existing_counter(REQUESTS).unwrap();
        for (s, n) in [("ok", 0), ("cancelled", 0), ("error", 0), ("panic", 1)] {
            assert_eq!(
                c.try_with_labels(&["unit", "watch", s]).unwrap().get(),
                n,
                "{s}"
            );
        }
        assert_eq!(g.try_with_labels(&["unit", "watch"]).unwrap().get(), 0.0);
    }
}
