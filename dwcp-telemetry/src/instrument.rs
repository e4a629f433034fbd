//! Runtime support for [`#[instrument_dwcp]`](crate::instrument_dwcp): the metrics every
//! instrumented function records, and how errors are labelled.
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
//! after that a call reads the TSC clock twice and does relaxed atomic adds, with no lookup
//! and no allocation, except that an error looks up its `dwcp_errors_total{type}` series.
//!
//! ## Error types
//!
//! The `type` label must stay bounded. It is [`ErrorLabel::error_label`] if the error type
//! implements [`ErrorLabel`] (seen at the call site: in a generic function whose error type
//! is a type parameter, the trait is only used if the parameter is bounded by it), and the
//! short name of the type otherwise ([`short_type_name`]: `std::io::Error` gives `Error`,
//! `my::Wrapper<T>` gives `Wrapper`).
//!
//! ## Registration conflicts
//!
//! If the registry already holds one of these families with another definition (other
//! labels, another kind), the call site records nothing into that family and never fails or
//! panics; each refused family is counted once per call site in
//! `dwcp_telemetry_instrument_refused_total{metric}`.

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};

use crate::metric::Timer;
use crate::metric::{Counter, Gauge, Histogram};
use crate::registry::{CounterFamily, Registry};

/// Name of the request counter.
pub const REQUESTS: &str = "dwcp_requests_total";
/// Name of the duration histogram.
pub const DURATION: &str = "dwcp_request_duration_seconds";
/// Name of the error counter.
pub const ERRORS: &str = "dwcp_errors_total";
/// Name of the in-flight gauge.
pub const IN_FLIGHT: &str = "dwcp_requests_in_flight";
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

#[derive(Debug, Clone, Copy)]
enum Status {
    Ok = 0,
    Error = 1,
    Panic = 2,
    Cancelled = 3,
}

const STATUSES: [&str; 4] = ["ok", "error", "panic", "cancelled"];

/// One instrumented function's metric handles, bound on its first call.
#[doc(hidden)]
#[derive(Debug)]
pub struct SiteHandles {
    component: &'static str,
    requests: [Counter; 4],
    duration: Histogram,
    in_flight: Gauge,
    errors: Option<CounterFamily>,
}

impl SiteHandles {
    fn bind(registry: &Registry, component: &'static str, operation: &'static str) -> Self {
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
        SiteHandles {
            component,
            requests,
            duration,
            in_flight,
            errors,
        }
    }
}

/// The `static` each instrumented function declares.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallSite {
    component: &'static str,
    operation: &'static str,
    handles: OnceLock<SiteHandles>,
}

impl CallSite {
    /// A call site of `component`'s `operation`; binds nothing until its first call.
    pub const fn new(component: &'static str, operation: &'static str) -> Self {
        CallSite {
            component,
            operation,
            handles: OnceLock::new(),
        }
    }

    /// The bound handles; `registry` runs on the first call only.
    pub fn handles<R, F>(&'static self, registry: F) -> &'static SiteHandles
    where
        R: Borrow<Registry>,
        F: FnOnce() -> R,
    {
        self.handles
            .get_or_init(|| SiteHandles::bind(registry().borrow(), self.component, self.operation))
    }

    /// Start a call: bind on first use, count it in flight, read the clock.
    #[inline]
    pub fn start<R, F>(&'static self, registry: F) -> Guard
    where
        R: Borrow<Registry>,
        F: FnOnce() -> R,
    {
        let handles = self.handles(registry);
        handles.in_flight.add(1.0);
        Guard {
            handles,
            timer: Some(handles.duration.start_static_timer()),
            done: false,
            panicked: AtomicBool::new(false),
        }
    }
}

/// One call in progress. Finishing it records the status; dropping it unfinished records
/// `panic` (while unwinding) or `cancelled`.
#[doc(hidden)]
#[derive(Debug)]
#[must_use]
pub struct Guard {
    handles: &'static SiteHandles,
    /// Times the call: the crate's [`Timer`](crate::Timer) on the call site's `static`
    /// duration handle (no clone per call).
    timer: Option<Timer>,
    done: bool,
    panicked: AtomicBool,
}

impl Guard {
    /// Record the call's outcome.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        self.done = true;
        match outcome {
            Outcome::Ok => self.record(Status::Ok),
            Outcome::Error(ty) => {
                if let Some(errors) = &self.handles.errors {
                    errors
                        .with_labels_or_overflow(&[self.handles.component, ty])
                        .inc();
                }
                self.record(Status::Error);
            }
        }
    }

    /// Classify `out` with `classify`, then record. A panic in `classify` records `panic`.
    #[inline]
    pub fn finish_with<O, C: FnOnce(&O) -> Outcome>(self, out: &O, classify: C) {
        let outcome = classify(out);
        self.finish(outcome);
    }

    fn record(&mut self, status: Status) {
        let h = self.handles;
        if let Some(timer) = self.timer.take() {
            timer.stop();
        }
        h.requests[status as usize].inc();
        h.in_flight.sub(1.0);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let status = if self.panicked.load(Ordering::Relaxed) || std::thread::panicking() {
                Status::Panic
            } else {
                Status::Cancelled
            };
            self.record(status);
        }
    }
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

/// Polls an instrumented future, classifies its output and finishes the guard. Dropped
/// before completion, the guard records `cancelled` (or `panic` if a poll panicked).
#[doc(hidden)]
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Watch<'a, F, C> {
    fut: Pin<&'a mut F>,
    guard: Option<Guard>,
    classify: Option<C>,
}

// `Watch` never pins its fields (the inner future is already pinned elsewhere), so it is
// `Unpin` whatever `C` is.
impl<F, C> Unpin for Watch<'_, F, C> {}

impl<'a, F, C> Watch<'a, F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
{
    /// Watch `fut` for the call `guard`.
    pub fn new(guard: Guard, fut: Pin<&'a mut F>, classify: C) -> Self {
        Watch {
            fut,
            guard: Some(guard),
            classify: Some(classify),
        }
    }
}

impl<F, C> Future for Watch<'_, F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> Outcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let mut sentinel = PollSentinel(this.guard.as_ref());
        let polled = this.fut.as_mut().poll(cx);
        sentinel.0 = None;
        drop(sentinel);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                if let (Some(guard), Some(classify)) = (this.guard.take(), this.classify.take()) {
                    guard.finish_with(&out, classify);
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
    use super::{short_type_name, ErrorLabel};

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
        SITE.start(|| &reg).finish(Outcome::Ok);
        drop(SITE.start(|| &reg));
        SITE.start(|| &reg).finish(Outcome::Error("Boom"));
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

    /// A `Watch` kept alive past a panicking poll (its owner caught the panic) still
    /// records `panic` when it is dropped later, outside any unwinding.
    #[test]
    fn watch_remembers_a_panicking_poll() {
        let reg = Registry::builder().build().unwrap();
        static SITE: CallSite = CallSite::new("unit", "watch");
        let waker = std::task::Waker::from(std::sync::Arc::new(NoopWake));
        let mut cx = Context::from_waker(&waker);
        let mut inner = std::pin::pin!(PanicOnPoll);
        let mut w = Watch::new(SITE.start(|| &reg), inner.as_mut(), |_| Outcome::Ok);
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
