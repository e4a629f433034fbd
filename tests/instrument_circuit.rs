//! `#[instrument_dwcp(circuit = "...")]`: calls run through the registry's named breaker.
//! After enough failures the breaker opens and the next call is rejected without running
//! the body (a counter proves it), returning `Err(E::from(NotPermitted))`, counted as an
//! `error` request and as `not_permitted` by the breaker. Sync functions, `async fn`
//! (a cancelled call drops its permit: a failure by default) and `impl Future`.
//!
//! Each test has its own registry (a call site binds its breaker once).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};

use dwcp_telemetry::instrument::{ErrorLabel, ERRORS, IN_FLIGHT, REQUESTS};
use dwcp_telemetry::resilience::{BreakerConfig, CircuitBreaker, NotPermitted, State};
use dwcp_telemetry::{instrument_dwcp, Registry};

#[derive(Debug)]
enum DbError {
    Down,
    Miss,
    Rejected(NotPermitted),
}

impl From<NotPermitted> for DbError {
    fn from(n: NotPermitted) -> Self {
        DbError::Rejected(n)
    }
}

impl ErrorLabel for DbError {
    fn error_label(&self) -> &'static str {
        match self {
            DbError::Down => "down",
            DbError::Miss => "miss",
            DbError::Rejected(_) => "not_permitted",
        }
    }
}

fn is_miss(e: &DbError) -> bool {
    matches!(e, DbError::Miss)
}

fn new_registry() -> Registry {
    Registry::builder().version("test").build().unwrap()
}

/// A breaker that opens at 50 % failures over the last 4 calls (at least 4).
fn small_window(reg: &Registry, circuit: &str) -> CircuitBreaker {
    let config = BreakerConfig::builder()
        .count_window(4)
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .build()
        .unwrap();
    CircuitBreaker::configure_named(reg, circuit, config).unwrap()
}

/// `[ok, error, panic, cancelled]` of `dwcp_requests_total{component, operation}`.
fn statuses(reg: &Registry, component: &str, operation: &str) -> [u64; 4] {
    let f = reg.existing_counter(REQUESTS).unwrap();
    ["ok", "error", "panic", "cancelled"]
        .map(|s| f.try_with_labels(&[component, operation, s]).unwrap().get())
}

fn errors(reg: &Registry, component: &str, ty: &str) -> u64 {
    reg.existing_counter(ERRORS)
        .unwrap()
        .try_with_labels(&[component, ty])
        .unwrap()
        .get()
}

fn in_flight(reg: &Registry, component: &str, operation: &str) -> f64 {
    reg.existing_gauge(IN_FLIGHT)
        .unwrap()
        .try_with_labels(&[component, operation])
        .unwrap()
        .get()
}

/// `[successful, failed, ignored, not_permitted]` of `dwcp_circuit_breaker_calls_total`,
/// read from the registry.
fn breaker_calls(reg: &Registry, circuit: &str) -> [u64; 4] {
    let f = reg
        .existing_counter("dwcp_circuit_breaker_calls_total")
        .unwrap();
    ["successful", "failed", "ignored", "not_permitted"]
        .map(|k| f.try_with_labels(&[circuit, k]).unwrap().get())
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    let w = Waker::from(Arc::new(NoopWake));
    f.poll(&mut Context::from_waker(&w))
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = poll_once(f.as_mut()) {
            return v;
        }
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

/// Pending on the first poll, ready on the second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sync.

static SYNC: LazyLock<Registry> = LazyLock::new(new_registry);
static SYNC_RUNS: AtomicU64 = AtomicU64::new(0);

#[instrument_dwcp(component = "store", registry = &*SYNC, circuit = "database")]
fn query(fail: bool) -> Result<u32, DbError> {
    SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(DbError::Down)
    } else {
        Ok(7)
    }
}

#[test]
fn sync_calls_open_the_breaker_and_are_then_rejected() {
    let reg = &*SYNC;
    let breaker = small_window(reg, "database");
    assert_eq!(query(false).unwrap(), 7);
    assert_eq!(query(false).unwrap(), 7);
    assert!(matches!(query(true), Err(DbError::Down)));
    assert_eq!(breaker.state(), State::Closed);
    // 2 failures of 4 calls: 50 % ≥ 50 %, open.
    assert!(matches!(query(true), Err(DbError::Down)));
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 4);

    match query(false) {
        Err(DbError::Rejected(n)) => {
            assert_eq!(&*n.circuit, "database");
            assert_eq!(n.state, State::Open);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // The body did not run.
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 4);

    assert_eq!(statuses(reg, "store", "query"), [2, 3, 0, 0]);
    assert_eq!(errors(reg, "store", "down"), 2);
    assert_eq!(errors(reg, "store", "not_permitted"), 1);
    assert_eq!(in_flight(reg, "store", "query"), 0.0);
    assert_eq!(breaker_calls(reg, "database"), [2, 2, 0, 1]);
}

static CLASSIFIED: LazyLock<Registry> = LazyLock::new(new_registry);

#[instrument_dwcp(component = "store", registry = &*CLASSIFIED, circuit = "cache", ok_if = is_miss)]
fn lookup(hit: bool) -> Result<u32, DbError> {
    if hit {
        Ok(1)
    } else {
        Err(DbError::Miss)
    }
}

/// A call classified ok (`ok_if`) is a success for the breaker; a breaker not configured
/// before is created with the defaults on first use.
#[test]
fn ok_if_classified_errors_are_successes() {
    let reg = &*CLASSIFIED;
    assert!(lookup(true).is_ok());
    for _ in 0..3 {
        assert!(matches!(lookup(false), Err(DbError::Miss)));
    }
    assert_eq!(statuses(reg, "store", "lookup"), [4, 0, 0, 0]);
    assert_eq!(breaker_calls(reg, "cache"), [4, 0, 0, 0]);
    let breaker = CircuitBreaker::named(reg, "cache").unwrap();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.failure_rate(), None); // below the default 100 minimum calls
}

// ---------------------------------------------------------------------------------------
// Async.

static ASYNC: LazyLock<Registry> = LazyLock::new(new_registry);
static ASYNC_RUNS: AtomicU64 = AtomicU64::new(0);

#[instrument_dwcp(component = "store", registry = &*ASYNC, circuit = "database")]
async fn fetch(fail: bool) -> Result<u32, DbError> {
    ASYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    YieldOnce(false).await;
    if fail {
        return Err(DbError::Down);
    }
    Ok(9)
}

#[test]
fn async_calls_hold_the_permit_across_awaits() {
    let reg = &*ASYNC;
    let breaker = small_window(reg, "database");
    assert_eq!(block_on(assert_send(fetch(false))).unwrap(), 9);

    // Started, suspended, then dropped: cancelled, and the dropped permit is a failure.
    {
        let mut f = pin!(fetch(false));
        assert!(poll_once(f.as_mut()).is_pending());
        assert_eq!(in_flight(reg, "store", "fetch"), 1.0);
        assert_eq!(breaker_calls(reg, "database"), [1, 0, 0, 0]);
    }
    assert_eq!(breaker_calls(reg, "database"), [1, 1, 0, 0]);
    assert!(matches!(block_on(fetch(true)), Err(DbError::Down)));
    assert_eq!(breaker.state(), State::Closed);
    assert!(matches!(block_on(fetch(true)), Err(DbError::Down)));
    // 3 failures of 4 calls.
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 4);

    assert!(matches!(
        block_on(fetch(false)),
        Err(DbError::Rejected(NotPermitted {
            state: State::Open,
            ..
        }))
    ));
    assert_eq!(ASYNC_RUNS.load(Ordering::SeqCst), 4);

    assert_eq!(statuses(reg, "store", "fetch"), [1, 3, 0, 1]);
    assert_eq!(errors(reg, "store", "down"), 2);
    assert_eq!(errors(reg, "store", "not_permitted"), 1);
    assert_eq!(in_flight(reg, "store", "fetch"), 0.0);
    assert_eq!(breaker_calls(reg, "database"), [1, 3, 0, 1]);
}

static FUTURE: LazyLock<Registry> = LazyLock::new(new_registry);
static FUTURE_BODIES: AtomicU64 = AtomicU64::new(0);

#[instrument_dwcp(component = "store", registry = &*FUTURE, circuit = "queue")]
fn enqueue(fail: bool) -> impl Future<Output = Result<u32, DbError>> + Send {
    FUTURE_BODIES.fetch_add(1, Ordering::SeqCst);
    async move {
        YieldOnce(false).await;
        if fail {
            Err(DbError::Down)
        } else {
            Ok(3)
        }
    }
}

/// A function returning `impl Future`: a rejected call does not even run the body that
/// makes the future.
#[test]
fn impl_future_rejected_without_running_the_body() {
    let reg = &*FUTURE;
    let breaker = small_window(reg, "queue");
    assert_eq!(block_on(enqueue(false)).unwrap(), 3);
    for _ in 0..3 {
        assert!(matches!(block_on(enqueue(true)), Err(DbError::Down)));
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(FUTURE_BODIES.load(Ordering::SeqCst), 4);
    assert!(matches!(
        block_on(enqueue(false)),
        Err(DbError::Rejected(_))
    ));
    assert_eq!(FUTURE_BODIES.load(Ordering::SeqCst), 4);
    assert_eq!(statuses(reg, "store", "enqueue"), [1, 4, 0, 0]);
    assert_eq!(errors(reg, "store", "not_permitted"), 1);
    assert_eq!(breaker_calls(reg, "queue"), [1, 3, 0, 1]);
}

static BOXED: LazyLock<Registry> = LazyLock::new(new_registry);

/// What `#[async_trait]` produces.
#[instrument_dwcp(component = "store", registry = &*BOXED, circuit = "boxed")]
fn boxed(fail: bool) -> Pin<Box<dyn Future<Output = Result<u32, DbError>> + Send>> {
    Box::pin(async move {
        YieldOnce(false).await;
        if fail {
            Err(DbError::Down)
        } else {
            Ok(5)
        }
    })
}

#[test]
fn boxed_future_through_the_breaker() {
    let reg = &*BOXED;
    let config = BreakerConfig::builder()
        .count_window(2)
        .minimum_calls(2)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::configure_named(reg, "boxed", config).unwrap();
    assert_eq!(block_on(boxed(false)).unwrap(), 5);
    assert!(matches!(block_on(boxed(true)), Err(DbError::Down)));
    assert_eq!(breaker.state(), State::Open);
    assert!(matches!(block_on(boxed(false)), Err(DbError::Rejected(_))));
    assert_eq!(statuses(reg, "store", "boxed"), [1, 2, 0, 0]);
    assert_eq!(breaker_calls(reg, "boxed"), [1, 1, 0, 1]);
}
