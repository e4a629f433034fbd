//! Behaviour of `#[instrument_dwcp]` (the metrics half): exact counts per status, the
//! in-flight gauge back at zero in every path, error `type` labels, methods, generics,
//! futures, `registry = expr`, `ok_if` / `error_if`, registration conflicts, the global
//! registry, the registry's `version` label on every family, and no allocation on the
//! steady-state path.
//!
//! Every test uses its own registry (a `LazyLock` static, since a call site binds its
//! handles once) except `minimal_form_records_into_global`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Wake, Waker};

use dwcp_support::alloc::allocations_in;
use dwcp_telemetry::instrument::{ErrorLabel, DURATION, ERRORS, IN_FLIGHT, REFUSED, REQUESTS};
use dwcp_telemetry::{instrument_dwcp, Registry};

// ---------------------------------------------------------------------------------------
// A counting allocator (per thread, so parallel tests do not disturb each other).

#[global_allocator]
static GLOBAL: dwcp_support::alloc::Counting = dwcp_support::alloc::Counting;

// ---------------------------------------------------------------------------------------
// Helpers: reading the registry, and a tiny executor.

fn requests(reg: &Registry, component: &str, operation: &str, status: &str) -> u64 {
    reg.existing_counter(REQUESTS)
        .expect("dwcp_requests_total registered")
        .try_with_labels(&[component, operation, status])
        .unwrap()
        .get()
}

/// `[ok, error, panic, cancelled]`.
fn statuses(reg: &Registry, component: &str, operation: &str) -> [u64; 4] {
    ["ok", "error", "panic", "cancelled"].map(|s| requests(reg, component, operation, s))
}

fn errors(reg: &Registry, component: &str, ty: &str) -> u64 {
    reg.existing_counter(ERRORS)
        .expect("dwcp_errors_total registered")
        .try_with_labels(&[component, ty])
        .unwrap()
        .get()
}

fn in_flight(reg: &Registry, component: &str, operation: &str) -> f64 {
    reg.existing_gauge(IN_FLIGHT)
        .expect("dwcp_requests_in_flight registered")
        .try_with_labels(&[component, operation])
        .unwrap()
        .get()
}

fn durations(reg: &Registry, component: &str, operation: &str) -> dwcp_telemetry::Snapshot {
    reg.existing_histogram(DURATION)
        .expect("dwcp_request_duration_seconds registered")
        .try_with_labels(&[component, operation])
        .unwrap()
        .snapshot()
}

fn error_series(reg: &Registry) -> usize {
    reg.existing_counter(ERRORS).map_or(0, |f| f.series_count())
}

fn new_registry() -> Registry {
    Registry::builder().version("test").build().unwrap()
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

fn waker() -> Waker {
    Waker::from(Arc::new(NoopWake))
}

fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    let w = waker();
    let mut cx = Context::from_waker(&w);
    f.poll(&mut cx)
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = poll_once(f.as_mut()) {
            return v;
        }
    }
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
// Sync functions.

static SYNC: LazyLock<Registry> = LazyLock::new(new_registry);

#[derive(Debug)]
struct ParseFailure;

#[instrument_dwcp(component = "amst", registry = &*SYNC)]
fn double(x: u32) -> u32 {
    assert_eq!(
        in_flight(&SYNC, "amst", "double"),
        1.0,
        "in flight during the call"
    );
    x * 2
}

#[instrument_dwcp(component = "amst", operation = "parse_number", registry = &*SYNC)]
fn parse(s: &str) -> Result<u32, ParseFailure> {
    let n: u32 = s.parse().map_err(|_| ParseFailure)?; // `?` keeps its meaning
    if n == 0 {
        return Ok(100); // so does `return`
    }
    Ok(n)
}

#[instrument_dwcp(component = "amst", registry = &*SYNC)]
fn explode(x: u32) -> u32 {
    if x > 0 {
        panic!("boom {x}");
    }
    x
}

#[instrument_dwcp(component = "amst", registry = &*SYNC)]
fn nothing() {}

#[instrument_dwcp(component = "amst", registry = &*SYNC)]
fn slow(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

#[test]
fn durations_are_nanoseconds_of_the_call() {
    slow(20);
    let snap = durations(&SYNC, "amst", "slow");
    assert_eq!(snap.count(), 1);
    // HDR at 2 significant digits: within about 1 % of the true value, at least 20 ms.
    assert!(snap.max() >= 19_500_000, "{}", snap.max());
    assert!(snap.max() < 2_000_000_000, "{}", snap.max());
}

#[test]
fn sync_ok_counts_once() {
    assert_eq!(double(21), 42);
    assert_eq!(double(1), 2);
    assert_eq!(statuses(&SYNC, "amst", "double"), [2, 0, 0, 0]);
    assert_eq!(durations(&SYNC, "amst", "double").count(), 2);
    assert_eq!(in_flight(&SYNC, "amst", "double"), 0.0);
    nothing();
    assert_eq!(statuses(&SYNC, "amst", "nothing"), [1, 0, 0, 0]);
}

#[test]
fn sync_result_error_with_type_label_and_early_return() {
    assert_eq!(parse("7").unwrap(), 7);
    assert_eq!(parse("0").unwrap(), 100);
    assert!(parse("x").is_err());
    assert!(parse("").is_err());
    assert_eq!(statuses(&SYNC, "amst", "parse_number"), [2, 2, 0, 0]);
    assert_eq!(errors(&SYNC, "amst", "ParseFailure"), 2);
    assert_eq!(durations(&SYNC, "amst", "parse_number").count(), 4);
    assert_eq!(in_flight(&SYNC, "amst", "parse_number"), 0.0);
}

#[instrument_dwcp(component = "amst", registry = &*SYNC)]
fn fatal(msg: &str) -> ! {
    panic!("fatal: {msg}")
}

#[test]
fn never_returning_fn_records_panic() {
    assert!(catch_unwind(|| fatal("x")).is_err());
    assert_eq!(statuses(&SYNC, "amst", "fatal"), [0, 0, 1, 0]);
    assert_eq!(in_flight(&SYNC, "amst", "fatal"), 0.0);
}

#[test]
fn sync_panic_is_recorded_and_propagates() {
    assert_eq!(explode(0), 0);
    let caught = catch_unwind(|| explode(3));
    let msg = caught.expect_err("the panic propagates");
    assert_eq!(
        msg.downcast_ref::<String>().map(String::as_str),
        Some("boom 3")
    );
    assert_eq!(statuses(&SYNC, "amst", "explode"), [1, 0, 1, 0]);
    assert_eq!(durations(&SYNC, "amst", "explode").count(), 2);
    assert_eq!(in_flight(&SYNC, "amst", "explode"), 0.0);
}

// ---------------------------------------------------------------------------------------
// Error labels: `ErrorLabel` per variant, and the short type name otherwise.

static LABELS: LazyLock<Registry> = LazyLock::new(new_registry);

#[derive(Debug)]
enum MigrateError {
    Timeout(#[allow(dead_code)] u64),
    Refused,
}

impl ErrorLabel for MigrateError {
    fn error_label(&self) -> &'static str {
        match self {
            MigrateError::Timeout(_) => "timeout",
            MigrateError::Refused => "refused",
        }
    }
}

#[derive(Debug)]
struct Wrapper<T>(#[allow(dead_code)] T);

#[instrument_dwcp(component = "migration", registry = &*LABELS)]
fn migrate(step: u8) -> Result<(), MigrateError> {
    match step {
        0 => Ok(()),
        1 => Err(MigrateError::Timeout(5)),
        _ => Err(MigrateError::Refused),
    }
}

#[instrument_dwcp(component = "io", registry = &*LABELS)]
fn read_file() -> std::io::Result<Vec<u8>> {
    std::fs::read("/definitely/not/there/dwcp-telemetry")
}

#[instrument_dwcp(component = "wrap", registry = &*LABELS)]
fn wrapped() -> Result<(), Wrapper<std::collections::HashMap<String, u8>>> {
    Err(Wrapper(Default::default()))
}

#[test]
fn error_type_labels() {
    migrate(0).unwrap();
    migrate(1).unwrap_err();
    migrate(1).unwrap_err();
    migrate(2).unwrap_err();
    assert_eq!(statuses(&LABELS, "migration", "migrate"), [1, 3, 0, 0]);
    assert_eq!(errors(&LABELS, "migration", "timeout"), 2);
    assert_eq!(errors(&LABELS, "migration", "refused"), 1);
    read_file().unwrap_err();
    assert_eq!(errors(&LABELS, "io", "Error"), 1);
    wrapped().unwrap_err();
    assert_eq!(errors(&LABELS, "wrap", "Wrapper"), 1);
}

// ---------------------------------------------------------------------------------------
// Async functions, cancellation, futures.

static ASYNC: LazyLock<Registry> = LazyLock::new(new_registry);

#[instrument_dwcp(component = "net", registry = &*ASYNC)]
async fn fetch(fail: bool) -> Result<u32, std::fmt::Error> {
    YieldOnce(false).await;
    assert_eq!(in_flight(&ASYNC, "net", "fetch"), 1.0);
    if fail {
        Err(std::fmt::Error)?;
    }
    Ok(7)
}

#[instrument_dwcp(component = "net", registry = &*ASYNC)]
async fn hang() -> u32 {
    std::future::pending::<()>().await;
    1
}

#[instrument_dwcp(component = "net", registry = &*ASYNC)]
async fn explode_later() -> u32 {
    YieldOnce(false).await;
    panic!("async boom");
}

#[instrument_dwcp(component = "net", registry = &*ASYNC)]
fn returns_future(fail: bool) -> impl Future<Output = Result<u8, ParseFailure>> + Send {
    async move {
        YieldOnce(false).await;
        if fail {
            Err(ParseFailure)
        } else {
            Ok(1)
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shape `#[async_trait]` gives a method.
#[instrument_dwcp(component = "net", registry = &*ASYNC)]
fn boxed(name: &str) -> Pin<Box<dyn Future<Output = Result<usize, ParseFailure>> + Send + '_>> {
    Box::pin(async move {
        YieldOnce(false).await;
        if name.is_empty() {
            Err(ParseFailure)
        } else {
            Ok(name.len())
        }
    })
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[test]
fn async_ok_and_error() {
    assert_eq!(block_on(assert_send(fetch(false))).unwrap(), 7);
    assert!(block_on(fetch(true)).is_err());
    assert_eq!(statuses(&ASYNC, "net", "fetch"), [1, 1, 0, 0]);
    assert_eq!(errors(&ASYNC, "net", "Error"), 1);
    assert_eq!(in_flight(&ASYNC, "net", "fetch"), 0.0);
    assert_eq!(durations(&ASYNC, "net", "fetch").count(), 2);
}

#[test]
fn dropped_future_is_cancelled() {
    {
        let mut f = pin!(hang());
        assert!(poll_once(f.as_mut()).is_pending());
        assert!(poll_once(f.as_mut()).is_pending());
        assert_eq!(in_flight(&ASYNC, "net", "hang"), 1.0);
    }
    // Never polled: the body never started, so nothing was in flight.
    drop(hang());
    assert_eq!(statuses(&ASYNC, "net", "hang"), [0, 0, 0, 1]);
    assert_eq!(in_flight(&ASYNC, "net", "hang"), 0.0);
    assert_eq!(durations(&ASYNC, "net", "hang").count(), 1);
}

#[test]
fn async_panic_is_recorded_and_propagates() {
    let mut f = Box::pin(explode_later());
    assert!(poll_once(f.as_mut()).is_pending());
    assert_eq!(in_flight(&ASYNC, "net", "explode_later"), 1.0);
    let caught = catch_unwind(AssertUnwindSafe(|| poll_once(f.as_mut())));
    assert!(caught.is_err(), "the panic propagates");
    // Recorded while unwinding out of the poll, not when the future is dropped later.
    assert_eq!(statuses(&ASYNC, "net", "explode_later"), [0, 0, 1, 0]);
    assert_eq!(in_flight(&ASYNC, "net", "explode_later"), 0.0);
    drop(f);
    assert_eq!(statuses(&ASYNC, "net", "explode_later"), [0, 0, 1, 0]);
    assert_eq!(in_flight(&ASYNC, "net", "explode_later"), 0.0);
}

#[test]
fn impl_future_and_boxed_future_returns() {
    assert_eq!(block_on(returns_future(false)).unwrap(), 1);
    assert!(block_on(returns_future(true)).is_err());
    // Called, never polled, dropped: the call started, so it is cancelled.
    let f = returns_future(false);
    assert_eq!(in_flight(&ASYNC, "net", "returns_future"), 1.0);
    drop(f);
    assert_eq!(statuses(&ASYNC, "net", "returns_future"), [1, 1, 0, 1]);
    assert_eq!(in_flight(&ASYNC, "net", "returns_future"), 0.0);
    assert_eq!(errors(&ASYNC, "net", "ParseFailure"), 1);

    let name = String::from("abc");
    assert_eq!(block_on(boxed(&name)).unwrap(), 3);
    assert!(block_on(boxed("")).is_err());
    drop::<BoxFuture<'_, _>>(boxed("x")); // dropped unpolled
    assert_eq!(statuses(&ASYNC, "net", "boxed"), [1, 1, 0, 1]);
    assert_eq!(in_flight(&ASYNC, "net", "boxed"), 0.0);
}

#[instrument_dwcp(component = "fut", registry = &*ASYNC)]
fn makes_a_future(how: u8) -> impl Future<Output = u8> + Send {
    if how == 1 {
        panic!("no future made");
    }
    async move {
        YieldOnce(false).await;
        if how == 2 {
            panic!("the future panicked");
        }
        how
    }
}

/// A function returning a future: a panic while it makes the future, and one in the
/// future's poll (caught by its owner, the future dropped later), are each the call's
/// `panic`, recorded once; in flight is back at 0.
#[test]
fn a_returned_future_records_panics_made_and_polled() {
    assert_eq!(block_on(makes_a_future(0)), 0);
    assert!(catch_unwind(|| makes_a_future(1)).is_err());
    assert_eq!(statuses(&ASYNC, "fut", "makes_a_future"), [1, 0, 1, 0]);
    let mut f = Box::pin(makes_a_future(2));
    assert!(poll_once(f.as_mut()).is_pending());
    assert_eq!(in_flight(&ASYNC, "fut", "makes_a_future"), 1.0);
    assert!(catch_unwind(AssertUnwindSafe(|| poll_once(f.as_mut()))).is_err());
    drop(f);
    assert_eq!(statuses(&ASYNC, "fut", "makes_a_future"), [1, 0, 2, 0]);
    assert_eq!(in_flight(&ASYNC, "fut", "makes_a_future"), 0.0);
    assert_eq!(durations(&ASYNC, "fut", "makes_a_future").count(), 3);
}

#[instrument_dwcp(component = "net", registry = &*ASYNC)]
fn made_here_dropped_there(x: u64) -> impl Future<Output = Result<u64, ParseFailure>> + Send {
    async move {
        YieldOnce(false).await;
        Ok(x)
    }
}

#[test]
fn futures_dropped_unpolled_on_another_thread_count_on_that_threads_line() {
    // This thread makes every future and runs half of them; another thread drops the other
    // half unpolled, at the same time. Each thread counts on its own per-thread line (a plain
    // load and store): a drop counted on the maker's line would race its counts and lose some.
    const N: u64 = 200_000;
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    let dropper = std::thread::spawn(move || {
        let mut dropped = 0u64;
        for f in rx {
            drop::<Pin<Box<dyn Future<Output = Result<u64, ParseFailure>> + Send>>>(f);
            dropped += 1;
        }
        dropped
    });
    let mut sum = 0;
    for i in 0..N {
        let f = made_here_dropped_there(i);
        if i % 2 == 0 {
            tx.send(Box::pin(f) as Pin<Box<dyn Future<Output = _> + Send>>)
                .unwrap();
        } else {
            sum += block_on(f).unwrap();
        }
    }
    drop(tx);
    assert_eq!(dropper.join().unwrap(), N / 2);
    assert_eq!(sum, (0..N).filter(|i| i % 2 == 1).sum::<u64>());
    assert_eq!(
        statuses(&ASYNC, "net", "made_here_dropped_there"),
        [N / 2, 0, 0, N / 2]
    );
    assert_eq!(in_flight(&ASYNC, "net", "made_here_dropped_there"), 0.0);
    assert_eq!(
        durations(&ASYNC, "net", "made_here_dropped_there").count(),
        N
    );
}

#[instrument_dwcp(component = "mig", registry = &*ASYNC)]
async fn moves_between_threads(x: u64) -> Result<u64, ParseFailure> {
    YieldOnce(false).await;
    if x % 3 == 0 {
        return Err(ParseFailure);
    }
    Ok(x)
}

#[test]
fn async_calls_finish_on_the_line_of_the_thread_they_finish_on() {
    // Each call starts here (first poll: pending) and finishes on another thread, while this
    // thread starts and finishes calls of its own. A call finished on its starting thread's
    // line would race that thread's plain load-and-store counts and lose some.
    const N: u64 = 100_000;
    type Call = Pin<Box<dyn Future<Output = Result<u64, ParseFailure>> + Send>>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Call>(1024);
    let finisher = std::thread::spawn(move || {
        let mut sum = 0;
        for f in rx {
            sum += block_on(f).unwrap_or(0);
        }
        sum
    });
    let mut sum = 0;
    for i in 0..N {
        let mut f: Call = Box::pin(moves_between_threads(i));
        if i % 2 == 0 {
            assert!(poll_once(f.as_mut()).is_pending());
            tx.send(f).unwrap();
        } else {
            sum += block_on(f).unwrap_or(0);
        }
    }
    drop(tx);
    sum += finisher.join().unwrap();
    assert_eq!(sum, (0..N).filter(|i| i % 3 != 0).sum::<u64>());
    let errors_expected = (0..N).filter(|i| i % 3 == 0).count() as u64;
    assert_eq!(
        statuses(&ASYNC, "mig", "moves_between_threads"),
        [N - errors_expected, errors_expected, 0, 0]
    );
    assert_eq!(in_flight(&ASYNC, "mig", "moves_between_threads"), 0.0);
    assert_eq!(durations(&ASYNC, "mig", "moves_between_threads").count(), N);
    assert_eq!(errors(&ASYNC, "mig", "ParseFailure"), errors_expected);
}

#[test]
fn async_fn_runs_on_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let reg = &*ASYNC;
    let v = rt.block_on(async { tokio::spawn(fetch_on_tokio()).await.unwrap() });
    assert_eq!(v, 7);
    // A panicking task: tokio catches the panic and drops the future.
    let err = rt
        .block_on(async { tokio::spawn(explode_on_tokio()).await })
        .unwrap_err();
    assert!(err.is_panic());
    // Dropped by an aborted task while pending.
    rt.block_on(async {
        let task = tokio::spawn(sleep_on_tokio());
        tokio::task::yield_now().await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_eq!(statuses(reg, "tokio", "fetch_on_tokio"), [1, 0, 0, 0]);
    assert_eq!(statuses(reg, "tokio", "explode_on_tokio"), [0, 0, 1, 0]);
    assert_eq!(statuses(reg, "tokio", "sleep_on_tokio"), [0, 0, 0, 1]);
    for op in ["fetch_on_tokio", "explode_on_tokio", "sleep_on_tokio"] {
        assert_eq!(in_flight(reg, "tokio", op), 0.0, "{op}");
    }
}

#[instrument_dwcp(component = "tokio", registry = &*ASYNC)]
async fn fetch_on_tokio() -> u32 {
    tokio::task::yield_now().await;
    7
}

#[instrument_dwcp(component = "tokio", registry = &*ASYNC)]
async fn explode_on_tokio() -> u32 {
    tokio::task::yield_now().await;
    panic!("tokio boom");
}

#[instrument_dwcp(component = "tokio", registry = &*ASYNC)]
async fn sleep_on_tokio() {
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

// ---------------------------------------------------------------------------------------
// Methods, trait impls, generics, `registry = expr` reading `self`.

static METHODS: LazyLock<Registry> = LazyLock::new(new_registry);

struct Store {
    name: String,
    hits: u32,
    registry: Registry,
}

impl Store {
    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    fn name(&self) -> &str {
        &self.name
    }

    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    fn hit(&mut self) -> u32 {
        self.hits += 1;
        self.hits
    }

    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    async fn name_async(&self) -> &str {
        YieldOnce(false).await;
        &self.name
    }

    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    fn into_name(self) -> String {
        self.name
    }

    /// `registry` may read the arguments; it is evaluated on the call site's first call.
    #[instrument_dwcp(component = "own", registry = self.registry.clone())]
    fn own_registry(&self) -> u32 {
        self.hits
    }
}

trait Lookup {
    fn lookup(&self, key: u32) -> Result<u32, MigrateError>;
    fn describe<T: std::fmt::Debug>(&self, t: T) -> String;
}

impl Lookup for Store {
    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    fn lookup(&self, key: u32) -> Result<u32, MigrateError> {
        if key == 0 {
            return Err(MigrateError::Refused);
        }
        Ok(key + self.hits)
    }

    #[instrument_dwcp(component = "store", registry = &*METHODS)]
    fn describe<T: std::fmt::Debug>(&self, t: T) -> String {
        format!("{}: {t:?}", self.name)
    }
}

#[instrument_dwcp(component = "generic", registry = &*METHODS)]
fn first_or<T: Clone, E>(items: &[T], missing: E) -> Result<T, E> {
    items.first().cloned().ok_or(missing)
}

#[instrument_dwcp(component = "generic", registry = &*METHODS)]
fn total(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[test]
fn methods_and_generics() {
    let own = new_registry();
    let mut s = Store {
        name: "amst".into(),
        hits: 0,
        registry: own.clone(),
    };
    assert_eq!(s.name(), "amst");
    assert_eq!(s.hit(), 1);
    assert_eq!(block_on(s.name_async()), "amst");
    assert_eq!(s.lookup(1).unwrap(), 2);
    s.lookup(0).unwrap_err();
    assert_eq!(s.describe(5u8), "amst: 5");
    assert_eq!(s.describe("x"), "amst: \"x\"");
    assert_eq!(s.own_registry(), 1);
    assert_eq!(requests(&own, "own", "own_registry", "ok"), 1);
    assert_eq!(s.into_name(), "amst");
    for (op, expected) in [
        ("name", [1, 0, 0, 0]),
        ("hit", [1, 0, 0, 0]),
        ("name_async", [1, 0, 0, 0]),
        ("lookup", [1, 1, 0, 0]),
        ("describe", [2, 0, 0, 0]),
        ("into_name", [1, 0, 0, 0]),
    ] {
        assert_eq!(statuses(&METHODS, "store", op), expected, "{op}");
        assert_eq!(in_flight(&METHODS, "store", op), 0.0, "{op}");
    }
    assert_eq!(errors(&METHODS, "store", "refused"), 1);

    assert_eq!(first_or(&[1, 2], "none").unwrap(), 1);
    assert_eq!(first_or::<u8, _>(&[], "none").unwrap_err(), "none");
    assert!(first_or::<u8, _>(&[], MigrateError::Refused).is_err());
    // Two monomorphisations share the call site; the error type is labelled per call. In a
    // generic function `E` is a type parameter, so `ErrorLabel` is not seen: the short name.
    assert_eq!(statuses(&METHODS, "generic", "first_or"), [1, 2, 0, 0]);
    assert_eq!(errors(&METHODS, "generic", "str"), 1);
    assert_eq!(errors(&METHODS, "generic", "MigrateError"), 1);
    assert_eq!(total([1, 2, 3]), 6);
    assert_eq!(total(vec![4]), 4);
    assert_eq!(statuses(&METHODS, "generic", "total"), [2, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------
// `ok_if` / `error_if`.

static CLASSIFY: LazyLock<Registry> = LazyLock::new(new_registry);

#[derive(Debug, PartialEq)]
enum FetchError {
    NotFound,
    Io,
}

impl ErrorLabel for FetchError {
    fn error_label(&self) -> &'static str {
        match self {
            FetchError::NotFound => "not_found",
            FetchError::Io => "io",
        }
    }
}

#[derive(Debug, PartialEq)]
enum Health {
    Good,
    Degraded,
}

fn not_found_is_fine(e: &FetchError) -> bool {
    *e == FetchError::NotFound
}

fn degraded_is_error(h: &Health) -> bool {
    *h == Health::Degraded
}

fn is_negative(v: &i64) -> bool {
    *v < 0
}

#[instrument_dwcp(component = "cls", registry = &*CLASSIFY, ok_if = not_found_is_fine)]
fn get(k: u8) -> Result<u8, FetchError> {
    match k {
        0 => Err(FetchError::NotFound),
        1 => Err(FetchError::Io),
        k => Ok(k),
    }
}

#[instrument_dwcp(component = "cls", registry = &*CLASSIFY, error_if = degraded_is_error)]
async fn health(good: bool) -> Result<Health, FetchError> {
    Ok(if good { Health::Good } else { Health::Degraded })
}

#[instrument_dwcp(component = "cls", registry = &*CLASSIFY, error_if = is_negative)]
fn balance(v: i64) -> i64 {
    v
}

#[test]
fn ok_if_and_error_if_override_the_classification() {
    get(0).unwrap_err();
    get(1).unwrap_err();
    get(2).unwrap();
    assert_eq!(statuses(&CLASSIFY, "cls", "get"), [2, 1, 0, 0]);
    assert_eq!(errors(&CLASSIFY, "cls", "io"), 1);
    assert_eq!(errors(&CLASSIFY, "cls", "not_found"), 0);

    block_on(health(true)).unwrap();
    block_on(health(false)).unwrap();
    assert_eq!(statuses(&CLASSIFY, "cls", "health"), [1, 1, 0, 0]);
    assert_eq!(errors(&CLASSIFY, "cls", "Health"), 1);

    balance(3);
    balance(-3);
    assert_eq!(statuses(&CLASSIFY, "cls", "balance"), [1, 1, 0, 0]);
    assert_eq!(errors(&CLASSIFY, "cls", "i64"), 1);
}

static PANICKY: LazyLock<Registry> = LazyLock::new(new_registry);

fn refuses_to_classify(_: &FetchError) -> bool {
    panic!("the classifier failed")
}

#[instrument_dwcp(component = "cls", registry = &*PANICKY, ok_if = refuses_to_classify)]
fn classified(fail: bool) -> Result<u8, FetchError> {
    if fail {
        Err(FetchError::Io)
    } else {
        Ok(1)
    }
}

/// The classification runs after the body, on the call's guard: a panic in it is the
/// call's panic (recorded once, with its duration, and in flight back at 0), and it still
/// reaches the caller.
#[test]
fn a_panic_in_the_classifier_records_panic() {
    assert_eq!(classified(false).unwrap(), 1);
    let caught = catch_unwind(|| classified(true)).expect_err("the panic propagates");
    assert_eq!(
        caught.downcast_ref::<&str>().copied(),
        Some("the classifier failed")
    );
    assert_eq!(statuses(&PANICKY, "cls", "classified"), [1, 0, 1, 0]);
    assert_eq!(errors(&PANICKY, "cls", "io"), 0);
    assert_eq!(durations(&PANICKY, "cls", "classified").count(), 2);
    assert_eq!(in_flight(&PANICKY, "cls", "classified"), 0.0);
}

#[instrument_dwcp(component = "cls", registry = &*PANICKY, ok_if = refuses_to_classify)]
async fn classified_later(fail: bool) -> Result<u8, FetchError> {
    YieldOnce(false).await;
    if fail {
        Err(FetchError::Io)
    } else {
        Ok(1)
    }
}

/// The same for an `async fn`: the classification runs in the poll that completes the
/// call. A caught panic leaves the future alive; dropping it later records nothing more.
#[test]
fn a_panic_in_an_async_classifier_records_panic_once() {
    assert_eq!(block_on(classified_later(false)).unwrap(), 1);
    let mut f = Box::pin(classified_later(true));
    assert!(poll_once(f.as_mut()).is_pending());
    let caught =
        catch_unwind(AssertUnwindSafe(|| poll_once(f.as_mut()))).expect_err("the panic propagates");
    assert_eq!(
        caught.downcast_ref::<&str>().copied(),
        Some("the classifier failed")
    );
    assert_eq!(statuses(&PANICKY, "cls", "classified_later"), [1, 0, 1, 0]);
    assert_eq!(in_flight(&PANICKY, "cls", "classified_later"), 0.0);
    drop(f);
    assert_eq!(statuses(&PANICKY, "cls", "classified_later"), [1, 0, 1, 0]);
    assert_eq!(errors(&PANICKY, "cls", "io"), 0);
    assert_eq!(durations(&PANICKY, "cls", "classified_later").count(), 2);
    assert_eq!(in_flight(&PANICKY, "cls", "classified_later"), 0.0);
}

// ---------------------------------------------------------------------------------------
// Registration conflicts.

static CONFLICT: LazyLock<Registry> = LazyLock::new(|| {
    let reg = new_registry();
    // The application owns `dwcp_requests_total` with other labels, as examples/dwcp_manager.rs.
    reg.counter(REQUESTS, "Requests by operation and status")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap();
    // ... and `dwcp_errors_total` as a gauge.
    reg.gauge(ERRORS, "not a counter").register().unwrap();
    reg
});

#[instrument_dwcp(component = "conflict", registry = &*CONFLICT)]
fn conflicted(fail: bool) -> Result<u8, ParseFailure> {
    if fail {
        Err(ParseFailure)
    } else {
        Ok(1)
    }
}

#[instrument_dwcp(component = "conflict", registry = &*CONFLICT)]
fn conflicted_too() -> u8 {
    2
}

fn refused(reg: &Registry, metric: &str) -> u64 {
    reg.existing_counter(REFUSED)
        .expect("refusal self-metric registered")
        .try_with_labels(&[metric])
        .unwrap()
        .get()
}

#[test]
fn registration_conflict_is_counted_and_never_fails() {
    assert_eq!(conflicted(false).unwrap(), 1);
    conflicted(true).unwrap_err();
    conflicted(false).unwrap();
    assert_eq!(conflicted_too(), 2);
    let reg = &*CONFLICT;
    // Once per call site per refused family.
    assert_eq!(refused(reg, REQUESTS), 2);
    assert_eq!(refused(reg, ERRORS), 2);
    assert_eq!(refused(reg, DURATION), 0);
    assert_eq!(refused(reg, IN_FLIGHT), 0);
    // The application's family is untouched ...
    let app = reg.existing_counter(REQUESTS).unwrap();
    assert_eq!(app.series_count(), 0);
    // ... and the families that did register still record.
    assert_eq!(durations(reg, "conflict", "conflicted").count(), 3);
    assert_eq!(in_flight(reg, "conflict", "conflicted"), 0.0);
    assert!(reg.collect().iter().any(|f| f.descriptor.name() == REFUSED));
}

// ---------------------------------------------------------------------------------------
// The minimal form, into the global registry.

#[instrument_dwcp(component = "amst_global_test")]
fn minimal() -> u8 {
    9
}

#[test]
fn minimal_form_records_into_global() {
    assert_eq!(minimal(), 9);
    let g = dwcp_telemetry::global();
    assert_eq!(requests(g, "amst_global_test", "minimal", "ok"), 1);
    assert_eq!(in_flight(g, "amst_global_test", "minimal"), 0.0);
}

// ---------------------------------------------------------------------------------------
// No allocation on the steady-state path.

static NOALLOC: LazyLock<Registry> = LazyLock::new(new_registry);

#[instrument_dwcp(component = "alloc", registry = &*NOALLOC)]
fn hot(x: u64) -> Result<u64, MigrateError> {
    if x == u64::MAX {
        Err(MigrateError::Refused)
    } else {
        Ok(x.wrapping_add(1))
    }
}

#[test]
fn ok_and_error_calls_allocate_nothing_after_warm_up() {
    hot(0).unwrap();
    hot(u64::MAX).unwrap_err();
    // Touch every histogram region, so that no duration can be a region's first touch.
    let h = NOALLOC
        .existing_histogram(DURATION)
        .unwrap()
        .try_with_labels(&["alloc", "hot"])
        .unwrap();
    for shift in 0..40 {
        h.record(1 << shift);
    }
    let mut acc = 0;
    let ok_allocs = allocations_in(|| {
        for i in 0..10_000 {
            acc += hot(std::hint::black_box(i)).unwrap();
        }
    });
    let err_allocs = allocations_in(|| {
        for _ in 0..1_000 {
            hot(std::hint::black_box(u64::MAX)).unwrap_err();
        }
    });
    assert!(acc > 0);
    assert_eq!(ok_allocs, 0, "ok calls allocated");
    assert_eq!(err_allocs, 0, "error calls allocated");
    assert_eq!(statuses(&NOALLOC, "alloc", "hot"), [10_001, 1_001, 0, 0]);
    assert_eq!(error_series(&NOALLOC), 1);
}

// ---------------------------------------------------------------------------------------
// Durations left pending on a thread's line (the hot path records the previous call's
// duration): every read counts every finished call, once, and no bucket ever goes down.

static PENDING: LazyLock<Registry> = LazyLock::new(new_registry);

/// Spins `n` rounds, so that calls land in different buckets.
#[instrument_dwcp(component = "amst", registry = &*PENDING)]
fn spin(n: u32) -> u32 {
    (0..n).fold(0u32, |a, i| std::hint::black_box(a.wrapping_add(i)))
}

/// `le` → cumulative count of `dwcp_request_duration_seconds` for `spin`, and its `_count`.
fn scraped_buckets(text: &str) -> (Vec<(String, u64)>, u64) {
    let mut buckets = Vec::new();
    let mut count = None;
    for line in text.lines() {
        if !line.contains("operation=\"spin\"") {
            continue;
        }
        let value = || line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
        if line.starts_with("dwcp_request_duration_seconds_bucket{") {
            let le = line
                .split("le=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            buckets.push((le.to_owned(), value()));
        } else if line.starts_with("dwcp_request_duration_seconds_count{") {
            count = Some(value());
        }
    }
    (buckets, count.expect("spin's _count is exported"))
}

#[test]
fn every_read_counts_each_finished_call_once_and_no_bucket_goes_down() {
    use dwcp_telemetry::export::prometheus::{render, Format};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const THREADS: usize = 4;
    const CALLS: u32 = 20_000;
    spin(0); // binds the call site before the readers look
    let finished = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let finished = finished.clone();
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    // Short and long calls alternate, so a line's pending duration keeps
                    // changing bucket.
                    spin(if (i + t as u32) % 2 == 0 { 1 } else { 3_000 });
                }
                finished.fetch_add(1, Ordering::Release);
            })
        })
        .collect();
    // Read while the writers run (at least twice, whatever the scheduling), both ways: the
    // series' snapshot and a scrape.
    let mut last_slots: HashMap<(u64, u64), u64> = HashMap::new();
    let mut last_buckets: HashMap<String, u64> = HashMap::new();
    let mut reads = 0;
    while reads < 2 || finished.load(Ordering::Acquire) < THREADS {
        reads += 1;
        let snap = durations(&PENDING, "amst", "spin");
        let ok_after = requests(&PENDING, "amst", "spin", "ok");
        assert!(snap.count() <= ok_after, "{} > {ok_after}", snap.count());
        for (lo, hi, n) in snap.iter() {
            let before = last_slots.insert((lo, hi), n).unwrap_or(0);
            assert!(n >= before, "slot {lo}..{hi} went from {before} to {n}");
        }
        let (buckets, count) = scraped_buckets(&render(&PENDING, Format::Text));
        let ok_after = requests(&PENDING, "amst", "spin", "ok");
        assert!(count <= ok_after, "_count {count} > ok {ok_after}");
        for (le, n) in buckets {
            let before = last_buckets.get(&le).copied().unwrap_or(0);
            assert!(n >= before, "bucket le={le} went from {before} to {n}");
            last_buckets.insert(le, n);
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    let calls = u64::from(CALLS) * THREADS as u64 + 1;
    // Each writer's last duration is still pending on its line: every read counts it.
    assert_eq!(statuses(&PENDING, "amst", "spin"), [calls, 0, 0, 0]);
    assert_eq!(durations(&PENDING, "amst", "spin").count(), calls);
    let (buckets, count) = scraped_buckets(&render(&PENDING, Format::Text));
    assert_eq!(count, calls);
    assert_eq!(
        buckets.last().map(|(le, n)| (le.as_str(), *n)),
        Some(("+Inf", calls))
    );
    assert_eq!(in_flight(&PENDING, "amst", "spin"), 0.0);
}

// ---------------------------------------------------------------------------------------
// The registry's `version` label on every family the attribute records into.

static VERSIONED: LazyLock<Registry> =
    LazyLock::new(|| Registry::builder().version("3.0.0").build().unwrap());

#[derive(Debug)]
struct Unreachable;

#[instrument_dwcp(component = "rollout", registry = &*VERSIONED)]
fn deploy(fail: bool) -> Result<(), Unreachable> {
    if fail {
        Err(Unreachable)
    } else {
        Ok(())
    }
}

#[test]
fn version_label_is_on_every_family() {
    use dwcp_telemetry::export::prometheus::{render, Format};
    deploy(false).unwrap();
    deploy(false).unwrap();
    deploy(true).unwrap_err();
    let text = render(&VERSIONED, Format::Text);
    let family =
        |prefix: &str| -> Vec<&str> { text.lines().filter(|l| l.starts_with(prefix)).collect() };
    assert_eq!(
        family("dwcp_requests_total{"),
        [
            r#"dwcp_requests_total{version="3.0.0",component="rollout",operation="deploy",status="ok"} 2"#,
            r#"dwcp_requests_total{version="3.0.0",component="rollout",operation="deploy",status="error"} 1"#,
            r#"dwcp_requests_total{version="3.0.0",component="rollout",operation="deploy",status="panic"} 0"#,
            r#"dwcp_requests_total{version="3.0.0",component="rollout",operation="deploy",status="cancelled"} 0"#,
        ]
    );
    assert_eq!(
        family("dwcp_errors_total{"),
        [r#"dwcp_errors_total{version="3.0.0",component="rollout",type="Unreachable"} 1"#]
    );
    assert_eq!(
        family("dwcp_requests_in_flight{"),
        [r#"dwcp_requests_in_flight{version="3.0.0",component="rollout",operation="deploy"} 0"#]
    );
    // The histogram: 11 finite buckets, +Inf, _sum and _count, every one labelled. (The
    // finite buckets' counts and the sum depend on how long the calls took; not asserted.)
    let duration = family("dwcp_request_duration_seconds_");
    assert_eq!(duration.len(), 14, "{duration:#?}");
    for line in &duration {
        assert!(
            line.contains(r#"{version="3.0.0",component="rollout",operation="deploy""#),
            "{line}"
        );
    }
    assert!(duration.contains(
        &r#"dwcp_request_duration_seconds_bucket{version="3.0.0",component="rollout",operation="deploy",le="+Inf"} 3"#
    ));
    assert!(duration.contains(
        &r#"dwcp_request_duration_seconds_count{version="3.0.0",component="rollout",operation="deploy"} 3"#
    ));
    assert_eq!(
        duration
            .iter()
            .filter(|l| l.starts_with(
                r#"dwcp_request_duration_seconds_sum{version="3.0.0",component="rollout",operation="deploy"} "#
            ))
            .count(),
        1
    );
}
