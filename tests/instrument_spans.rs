//! The span half of `#[instrument_dwcp]`: what a sampled call hands to the installed
//! `SpanSink` (a `MemorySink`, the crate's own bounded in-process sink), for every status,
//! with exact metrics and the in-flight gauge back at 0; parent links across nested
//! instrumented calls (sync and async) and from a remote parent (`propagation::extract` +
//! `trace::with_parent`); argument and `fields(..)` attributes; an unsampled call allocates
//! nothing and reads no attribute; `#[async_trait]` methods; a `tracing` subscriber sees a
//! sampled call's span and the events logged inside it.
//!
//! One sink is installed for the whole binary (spans are process-wide); every test uses its
//! own `component`, and reads only the spans of its component. The process's sampler is
//! left at its default here (tests that change it are in `tests/instrument_sampling.rs`),
//! so each call site states its ratio with `sample = ..`.

use std::collections::HashMap;
use std::future::Future;
use std::panic::catch_unwind;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use dwcp_support::alloc::allocations_in;
use dwcp_telemetry::instrument::{DURATION, IN_FLIGHT, REQUESTS};
use dwcp_telemetry::propagation::{self, TraceFlags};
use dwcp_telemetry::trace::{self, AttrValue, MemorySink, SpanKind, SpanRecord, SpanStatus};
use dwcp_telemetry::{instrument_dwcp, Registry};

#[global_allocator]
static GLOBAL: dwcp_support::alloc::Counting = dwcp_support::alloc::Counting;

// ---------------------------------------------------------------------------------------
// The sink, the registry, readers.

static SINK: LazyLock<Arc<MemorySink>> = LazyLock::new(|| {
    let sink = Arc::new(MemorySink::new(1_000_000));
    trace::install_sink(sink.clone());
    sink
});

static REG: LazyLock<Registry> =
    LazyLock::new(|| Registry::builder().version("test").build().unwrap());

/// Install the sink (first use) and return it.
fn sink() -> &'static MemorySink {
    &SINK
}

fn attr<'a>(span: &'a SpanRecord, key: &str) -> Option<&'a AttrValue> {
    span.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(v.to_string().into())
}

/// The spans of `component`, in the order they finished.
fn spans_of(component: &str) -> Vec<SpanRecord> {
    sink()
        .spans()
        .into_iter()
        .filter(|r| attr(r, "dwcp.component") == Some(&s(component)))
        .collect()
}

fn statuses(component: &str, operation: &str) -> [u64; 4] {
    let fam = REG.existing_counter(REQUESTS).expect("registered");
    ["ok", "error", "panic", "cancelled"].map(|st| {
        fam.try_with_labels(&[component, operation, st])
            .unwrap()
            .get()
    })
}

fn in_flight(component: &str, operation: &str) -> f64 {
    REG.existing_gauge(IN_FLIGHT)
        .expect("registered")
        .try_with_labels(&[component, operation])
        .unwrap()
        .get()
}

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

fn block_on<F: Future>(f: F) -> F::Output {
    let w = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&w);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
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

/// Checks shared by every span: the call site's attributes, ids, times.
fn check_common(span: &SpanRecord, component: &str, operation: &str, function: &str) {
    assert_eq!(span.name, operation);
    assert_eq!(attr(span, "code.function"), Some(&s(function)));
    assert_eq!(attr(span, "code.namespace"), Some(&s("instrument_spans")));
    assert_eq!(attr(span, "dwcp.component"), Some(&s(component)));
    assert_eq!(attr(span, "dwcp.operation"), Some(&s(operation)));
    assert!(span.flags.is_sampled());
    assert!(span.end_unix_nanos >= span.start_unix_nanos);
    assert!(span.start_unix_nanos > 1_600_000_000_000_000_000);
}

fn exception(span: &SpanRecord) -> (AttrValue, AttrValue) {
    assert_eq!(span.events.len(), 1, "{span:?}");
    let e = &span.events[0];
    assert_eq!(e.name, "exception");
    assert_eq!(e.attributes.len(), 2);
    let get = |k: &str| {
        e.attributes
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    (get("exception.type"), get("exception.message"))
}

// ---------------------------------------------------------------------------------------
// Every status, sync.

#[derive(Debug)]
struct Refused(u32);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer refused migration {}", self.0)
    }
}

#[instrument_dwcp(component = "sync-status", registry = &*REG, sample = critical)]
fn migrate(vm: u32) -> Result<u32, Refused> {
    if vm == 0 {
        panic!("no vm 0");
    }
    if vm % 2 == 1 {
        return Err(Refused(vm));
    }
    Ok(vm * 10)
}

#[test]
fn sync_statuses_produce_spans() {
    sink();
    assert_eq!(migrate(2).unwrap(), 20);
    assert!(migrate(3).is_err());
    assert!(catch_unwind(|| migrate(0)).is_err());
    assert_eq!(statuses("sync-status", "migrate"), [1, 1, 1, 0]);
    assert_eq!(in_flight("sync-status", "migrate"), 0.0);

    let spans = spans_of("sync-status");
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for sp in &spans {
        check_common(sp, "sync-status", "migrate", "migrate");
        assert_eq!(sp.parent_span_id, None);
        assert_eq!(sp.kind, SpanKind::Internal);
        assert_eq!(sp.trace_state, "");
    }
    let [ok, err, panicked] = [&spans[0], &spans[1], &spans[2]];

    assert_eq!(ok.status, SpanStatus::Unset);
    assert!(ok.events.is_empty());
    assert_eq!(attr(ok, "dwcp.status"), Some(&s("ok")));
    assert_eq!(attr(ok, "vm"), Some(&AttrValue::I64(2)));

    assert_eq!(
        err.status,
        SpanStatus::Error {
            message: "peer refused migration 3".into()
        }
    );
    assert_eq!(attr(err, "dwcp.status"), Some(&s("error")));
    assert_eq!(
        exception(err),
        (
            s("instrument_spans::Refused"),
            s("peer refused migration 3")
        )
    );

    assert!(matches!(panicked.status, SpanStatus::Error { .. }));
    assert_eq!(attr(panicked, "dwcp.status"), Some(&s("panic")));
    assert_eq!(exception(panicked), (s("panic"), s("migrate panicked")));
    // Three distinct root traces.
    assert_ne!(spans[0].trace_id, spans[1].trace_id);
    assert_ne!(spans[1].trace_id, spans[2].trace_id);
}

// ---------------------------------------------------------------------------------------
// Every status, async.

#[derive(Debug)]
struct Timeout;

#[instrument_dwcp(component = "async-status", registry = &*REG, sample = 1.0)]
async fn replicate(n: u32) -> Result<u32, Timeout> {
    YieldOnce(false).await;
    match n {
        0 => panic!("replicate 0"),
        1 => Err(Timeout),
        _ => Ok(n),
    }
}

#[test]
fn async_statuses_produce_spans() {
    sink();
    assert_eq!(block_on(replicate(5)).unwrap(), 5);
    assert!(block_on(replicate(1)).is_err());
    assert!(catch_unwind(|| block_on(replicate(0))).is_err());
    // Cancelled: polled once (pending), then dropped.
    {
        let w = Waker::from(Arc::new(NoopWake));
        let mut cx = Context::from_waker(&w);
        let mut f = Box::pin(replicate(7));
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(in_flight("async-status", "replicate"), 1.0);
        drop(f);
    }
    assert_eq!(statuses("async-status", "replicate"), [1, 1, 1, 1]);
    assert_eq!(in_flight("async-status", "replicate"), 0.0);

    let spans = spans_of("async-status");
    assert_eq!(spans.len(), 4, "{spans:#?}");
    for sp in &spans {
        check_common(sp, "async-status", "replicate", "replicate");
    }
    let st: Vec<_> = spans
        .iter()
        .map(|sp| attr(sp, "dwcp.status").cloned().unwrap())
        .collect();
    assert_eq!(st, [s("ok"), s("error"), s("panic"), s("cancelled")]);
    assert_eq!(spans[0].status, SpanStatus::Unset);
    // `Timeout` has Debug, not Display: the message is its Debug text.
    assert_eq!(
        exception(&spans[1]),
        (s("instrument_spans::Timeout"), s("Timeout"))
    );
    assert_eq!(
        spans[1].status,
        SpanStatus::Error {
            message: "Timeout".into()
        }
    );
    assert_eq!(exception(&spans[2]).0, s("panic"));
    // A cancelled call is not an error.
    assert_eq!(spans[3].status, SpanStatus::Unset);
    assert!(spans[3].events.is_empty());
    assert_eq!(attr(&spans[3], "n"), Some(&AttrValue::I64(7)));
}

// ---------------------------------------------------------------------------------------
// Parent links.

#[instrument_dwcp(component = "links", registry = &*REG, sample = 1.0)]
fn outer_sync(x: u32) -> u32 {
    let here = trace::current().expect("spans are on: the call's context is current");
    assert!(here.flags.is_sampled());
    inner_sync(x) + 1
}

// The child's own ratio is 0: a parent-based sampler still samples it, as its parent is.
#[instrument_dwcp(component = "links", registry = &*REG, sample = 0.0)]
fn inner_sync(x: u32) -> u32 {
    x * 2
}

#[instrument_dwcp(component = "links", registry = &*REG, sample = 1.0)]
async fn outer_async(x: u32) -> u32 {
    YieldOnce(false).await;
    let a = inner_async(x).await;
    YieldOnce(false).await;
    a + inner_future(x).await
}

#[instrument_dwcp(component = "links", registry = &*REG, sample = 0.0)]
async fn inner_async(x: u32) -> u32 {
    YieldOnce(false).await;
    x + 1
}

#[instrument_dwcp(component = "links", registry = &*REG, sample = 0.0)]
fn inner_future(x: u32) -> impl Future<Output = u32> {
    async move {
        YieldOnce(false).await;
        x + 2
    }
}

#[test]
fn parent_links_across_nested_calls() {
    sink();
    assert_eq!(outer_sync(4), 9);
    assert!(trace::current().is_none(), "restored after the call");
    assert_eq!(block_on(outer_async(1)), 2 + 3);
    assert!(trace::current().is_none());

    let spans = spans_of("links");
    let by =
        |op: &str| -> Vec<SpanRecord> { spans.iter().filter(|s| s.name == op).cloned().collect() };
    let (os, is) = (by("outer_sync"), by("inner_sync"));
    assert_eq!((os.len(), is.len()), (1, 1), "{spans:#?}");
    assert_eq!(is[0].trace_id, os[0].trace_id);
    assert_eq!(is[0].parent_span_id, Some(os[0].span_id));
    assert_eq!(os[0].parent_span_id, None);
    assert!(is[0].end_unix_nanos <= os[0].end_unix_nanos);

    let (oa, ia, ifu) = (by("outer_async"), by("inner_async"), by("inner_future"));
    assert_eq!((oa.len(), ia.len(), ifu.len()), (1, 1, 1), "{spans:#?}");
    for child in [&ia[0], &ifu[0]] {
        assert_eq!(child.trace_id, oa[0].trace_id);
        assert_eq!(child.parent_span_id, Some(oa[0].span_id));
    }
    assert_ne!(oa[0].trace_id, os[0].trace_id);
    assert_eq!(statuses("links", "inner_async"), [1, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------
// Remote parent.

#[instrument_dwcp(component = "remote", registry = &*REG, sample = 0.0)]
fn handle(msg: &str) -> usize {
    msg.len()
}

#[instrument_dwcp(component = "remote", registry = &*REG, sample = 0.0)]
async fn handle_async(msg: String) -> usize {
    YieldOnce(false).await;
    msg.len()
}

#[test]
fn remote_parent_from_extracted_metadata() {
    sink();
    let mut metadata: HashMap<String, String> = HashMap::new();
    metadata.insert(
        "traceparent".into(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
    );
    metadata.insert("tracestate".into(), "dwcp=amst,congo=t61rcWkgMzE".into());
    let remote = propagation::extract(&metadata).unwrap().unwrap();
    // Sampled remote parent: the handler is sampled although its own ratio is 0.
    assert_eq!(trace::with_parent(&remote, || handle("hello")), 5);
    assert_eq!(
        block_on(trace::with_parent_async(
            remote.clone(),
            handle_async("hi".into())
        )),
        2
    );
    // The callee continues the trace in what it sends on.
    let mut outgoing: HashMap<String, String> = HashMap::new();
    trace::with_parent(&remote, || {
        propagation::inject(&trace::current().unwrap(), &mut outgoing)
    });
    assert!(outgoing["traceparent"].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    assert_eq!(outgoing["tracestate"], "dwcp=amst,congo=t61rcWkgMzE");

    // Not sampled remote parent: nothing, whatever the ratio.
    let mut unsampled = remote.clone();
    unsampled.flags = TraceFlags::NOT_SAMPLED;
    assert_eq!(trace::with_parent(&unsampled, || handle("quiet")), 5);

    let spans = spans_of("remote");
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for sp in &spans {
        assert_eq!(sp.trace_id, remote.trace_id);
        assert_eq!(sp.parent_span_id, Some(remote.span_id));
        assert_eq!(sp.kind, SpanKind::Server);
        assert_eq!(sp.trace_state, "dwcp=amst,congo=t61rcWkgMzE");
    }
    assert_eq!(attr(&spans[0], "msg"), Some(&s("hello")));
    assert_eq!(attr(&spans[1], "msg"), Some(&s("hi")));
    assert_eq!(statuses("remote", "handle"), [2, 0, 0, 0]);
}

// ---------------------------------------------------------------------------------------
// Attributes: arguments and fields.

#[derive(Debug)]
struct VmId(u64);

struct Opaque;

impl std::fmt::Display for VmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vm-{}", self.0)
    }
}

#[allow(clippy::too_many_arguments)]
#[instrument_dwcp(
    component = "attrs",
    registry = &*REG,
    sample = 1.0,
    skip(secret),
    fields(dwcp.bytes = payload.len(), peer = %vm, raw = ?vm, ratio = 0.5, label = "x")
)]
fn attrs(
    vm: VmId,
    payload: Vec<u8>,
    secret: &str,
    _unused: u8,
    opaque: Opaque,
    flag: bool,
    big: u64,
    tags: Vec<&str>,
) -> usize {
    let _ = (secret, opaque);
    payload.len() + usize::from(flag) + tags.len() + usize::try_from(big % 2).unwrap()
}

#[instrument_dwcp(component = "attrs", registry = &*REG, sample = 1.0, skip_all)]
fn all_skipped(password: &str) -> usize {
    password.len()
}

#[instrument_dwcp(component = "attrs", registry = &*REG, sample = 1.0)]
fn generic<T: std::fmt::Debug, U>(t: T, _u: U, u: U) -> usize {
    let _ = (t, u);
    1
}

#[test]
fn arguments_and_fields_become_attributes() {
    sink();
    attrs(
        VmId(7),
        vec![1, 2, 3],
        "hunter2",
        0,
        Opaque,
        true,
        u64::MAX,
        vec!["a"],
    );
    all_skipped("hunter2");
    generic(3u8, "no Debug bound on U", "u");
    let spans = spans_of("attrs");
    assert_eq!(spans.len(), 3);
    let keys = |sp: &SpanRecord| -> Vec<String> {
        sp.attributes.iter().map(|(k, _)| k.to_string()).collect()
    };
    let a = &spans[0];
    assert_eq!(
        keys(a),
        [
            "code.function",
            "code.namespace",
            "dwcp.component",
            "dwcp.operation",
            "vm",
            "payload",
            "flag",
            "big",
            "tags",
            "dwcp.bytes",
            "peer",
            "raw",
            "ratio",
            "label",
            "dwcp.status"
        ]
    );
    assert_eq!(attr(a, "vm"), Some(&s("vm-7")), "Display before Debug");
    assert_eq!(attr(a, "payload"), Some(&s("[1, 2, 3]")), "Debug");
    assert_eq!(attr(a, "flag"), Some(&AttrValue::Bool(true)));
    assert_eq!(attr(a, "big"), Some(&s("18446744073709551615")));
    assert_eq!(attr(a, "tags"), Some(&s("[\"a\"]")));
    assert_eq!(attr(a, "dwcp.bytes"), Some(&AttrValue::I64(3)));
    assert_eq!(attr(a, "peer"), Some(&s("vm-7")));
    assert_eq!(attr(a, "raw"), Some(&s("VmId(7)")));
    assert_eq!(attr(a, "ratio"), Some(&AttrValue::F64(0.5)));
    assert_eq!(attr(a, "label"), Some(&s("x")));
    assert_eq!(attr(a, "secret"), None);
    assert_eq!(
        keys(&spans[1]).len(),
        5,
        "skip_all: only the call site's own"
    );
    // In a generic fn the bounds decide: `T: Debug` is recorded by its Debug text.
    assert_eq!(attr(&spans[2], "t"), Some(&s("3")));
    assert_eq!(
        attr(&spans[2], "u"),
        None,
        "a type parameter without Debug/Display bounds is not recorded"
    );
}

#[instrument_dwcp(component = "attrs-long", registry = &*REG, sample = 1.0)]
fn long(text: String) -> Result<(), String> {
    Err(text)
}

#[test]
fn long_text_is_bounded() {
    sink();
    let _ = long("é".repeat(5000));
    let spans = spans_of("attrs-long");
    let AttrValue::Str(v) = attr(&spans[0], "text").unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), dwcp_telemetry::instrument::MAX_TEXT);
    let (_, AttrValue::Str(m)) = exception(&spans[0]) else {
        panic!()
    };
    assert_eq!(m.len(), dwcp_telemetry::instrument::MAX_TEXT);
}

// ---------------------------------------------------------------------------------------
// Not sampled: no allocation, no attribute read.

static READS: AtomicU64 = AtomicU64::new(0);

fn counted_read(v: u32) -> u32 {
    READS.fetch_add(1, Ordering::Relaxed);
    v
}

#[instrument_dwcp(component = "unsampled", registry = &*REG, sample = 0.0, fields(read = counted_read(x)))]
fn quiet(x: u32) -> Result<u32, Refused> {
    if x == 0 {
        return Err(Refused(0));
    }
    Ok(x + 1)
}

#[instrument_dwcp(component = "unsampled", registry = &*REG, sample = 0.0, fields(read = counted_read(x)))]
async fn quiet_async(x: u32) -> u32 {
    YieldOnce(false).await;
    x
}

#[instrument_dwcp(component = "unsampled", registry = &*REG, sample = 1.0, fields(read = counted_read(x)))]
fn loud(x: u32) -> u32 {
    x
}

#[test]
fn unsampled_calls_allocate_nothing_and_read_no_attribute() {
    sink();
    // Warm up: binds the call sites, the error series, the thread's random state.
    quiet(1).unwrap();
    quiet(0).unwrap_err();
    let w = Waker::from(Arc::new(NoopWake));
    let mut cx = Context::from_waker(&w);
    let mut warm = pin!(quiet_async(1));
    while warm.as_mut().poll(&mut cx).is_pending() {}
    // Touch every duration histogram region (a region's first record allocates it: a
    // metrics cost, not a span one).
    for op in ["quiet", "quiet_async"] {
        let h = REG
            .existing_histogram(DURATION)
            .unwrap()
            .try_with_labels(&["unsampled", op])
            .unwrap();
        for shift in 0..40 {
            h.record(1 << shift);
        }
    }
    let reads_before = READS.load(Ordering::Relaxed);
    let n = allocations_in(|| {
        for i in 0..1000 {
            let _ = std::hint::black_box(quiet(std::hint::black_box(i % 7)));
            let mut f = pin!(quiet_async(i));
            while f.as_mut().poll(&mut cx).is_pending() {}
        }
    });
    assert_eq!(n, 0, "allocations in 2000 unsampled calls");
    assert_eq!(READS.load(Ordering::Relaxed), reads_before, "no field read");
    assert!(spans_of("unsampled").is_empty());
    assert_eq!(statuses("unsampled", "quiet"), [858, 144, 0, 0]);
    assert_eq!(in_flight("unsampled", "quiet"), 0.0);
    // A sampled call reads its field once.
    loud(3);
    assert_eq!(READS.load(Ordering::Relaxed), reads_before + 1);
    assert_eq!(spans_of("unsampled").len(), 1);
}

// ---------------------------------------------------------------------------------------
// #[async_trait], either way round: the attribute on a method of an `#[async_trait]` impl
// (async_trait expands first: the method returns `Pin<Box<dyn Future + Send>>`) and on a
// default method of an `#[async_trait]` trait; and `?Send`.

#[async_trait::async_trait]
trait Store {
    async fn put(&self, key: u32) -> Result<u32, Refused>;

    #[instrument_dwcp(component = "async-trait", registry = &*REG, sample = 1.0)]
    async fn get(&self, key: u32) -> Option<u32> {
        YieldOnce(false).await;
        Some(key)
    }
}

struct Mem;

#[async_trait::async_trait]
impl Store for Mem {
    #[instrument_dwcp(component = "async-trait", registry = &*REG, sample = 1.0)]
    async fn put(&self, key: u32) -> Result<u32, Refused> {
        YieldOnce(false).await;
        self.get(key)
            .await
            .filter(|k| k % 2 == 0)
            .ok_or(Refused(key))
    }
}

#[async_trait::async_trait(?Send)]
trait Local {
    async fn local(&self, key: u32) -> u32;
}

#[async_trait::async_trait(?Send)]
impl Local for Mem {
    #[instrument_dwcp(component = "async-trait", registry = &*REG, sample = 1.0)]
    async fn local(&self, key: u32) -> u32 {
        key
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[test]
fn async_trait_methods() {
    sink();
    assert_eq!(block_on(assert_send(Mem.put(2))).unwrap(), 2);
    assert!(block_on(Mem.put(3)).is_err());
    assert_eq!(block_on(Mem.local(9)), 9);
    assert_eq!(statuses("async-trait", "put"), [1, 1, 0, 0]);
    assert_eq!(statuses("async-trait", "get"), [2, 0, 0, 0]);
    assert_eq!(in_flight("async-trait", "put"), 0.0);
    let spans = spans_of("async-trait");
    assert_eq!(spans.len(), 5, "{spans:#?}");
    let puts: Vec<_> = spans.iter().filter(|s| s.name == "put").collect();
    let gets: Vec<_> = spans.iter().filter(|s| s.name == "get").collect();
    for (p, g) in puts.iter().zip(&gets) {
        assert_eq!(g.parent_span_id, Some(p.span_id));
        assert_eq!(g.trace_id, p.trace_id);
    }
    assert_eq!(attr(puts[1], "key"), Some(&AttrValue::I64(3)));
    assert_eq!(exception(puts[1]).1, s("peer refused migration 3"));
}

// ---------------------------------------------------------------------------------------
// A `tracing` subscriber sees the span, and events inside it carry it.

mod seen {
    use super::*;
    use tracing::span::{Attributes, Id};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context as LayerCx, Layer};
    use tracing_subscriber::registry::LookupSpan;

    #[derive(Default, Clone)]
    pub struct Seen(pub Arc<Mutex<Vec<String>>>);

    struct Fields<'a>(&'a mut String);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={:?}", f.name(), v));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
        fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _cx: LayerCx<'_, S>) {
            let mut line = format!(
                "new {} {}",
                attrs.metadata().level(),
                attrs.metadata().name()
            );
            attrs.record(&mut Fields(&mut line));
            self.0.lock().unwrap().push(line);
        }

        fn on_event(&self, event: &Event<'_>, cx: LayerCx<'_, S>) {
            let span = cx
                .event_span(event)
                .map_or("none".to_string(), |s| s.name().to_string());
            let mut line = format!("event in {span}:");
            event.record(&mut Fields(&mut line));
            self.0.lock().unwrap().push(line);
        }

        fn on_close(&self, id: Id, cx: LayerCx<'_, S>) {
            let name = cx.span(&id).map_or("?", |s| s.name());
            self.0.lock().unwrap().push(format!("close {name}"));
        }
    }
}

#[instrument_dwcp(component = "tracing", registry = &*REG, sample = 1.0, level = "debug")]
fn logged(x: u32) -> u32 {
    tracing::info!(x, "inside");
    x
}

#[instrument_dwcp(component = "tracing", registry = &*REG, sample = 0.0)]
fn logged_unsampled(x: u32) -> u32 {
    tracing::info!(x, "inside unsampled");
    x
}

#[instrument_dwcp(component = "tracing", registry = &*REG, sample = 1.0, level = "debug")]
async fn logged_async(x: u32) -> u32 {
    YieldOnce(false).await;
    tracing::info!(x, "inside async");
    x
}

#[test]
fn tracing_subscriber_sees_sampled_spans() {
    use tracing_subscriber::layer::SubscriberExt;
    sink();
    let seen = seen::Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        logged(1);
        logged_unsampled(2);
        block_on(logged_async(3));
    });
    let lines = seen.0.lock().unwrap().clone();
    let spans = spans_of("tracing");
    assert_eq!(spans.len(), 2);
    let (a, b) = (&spans[0], &spans[1]);
    assert_eq!(
        lines,
        [
            format!(
                "new DEBUG logged dwcp.component=\"tracing\" trace_id={} span_id={}",
                a.trace_id, a.span_id
            ),
            "event in logged: message=inside x=1".to_string(),
            "close logged".to_string(),
            "event in none: message=inside unsampled x=2".to_string(),
            format!(
                "new DEBUG logged_async dwcp.component=\"tracing\" trace_id={} span_id={}",
                b.trace_id, b.span_id
            ),
            "event in logged_async: message=inside async x=3".to_string(),
            "close logged_async".to_string(),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// A spawned task starts without a parent; `with_parent_async(current())` keeps the link.

#[instrument_dwcp(component = "spawn", registry = &*REG, sample = 1.0)]
async fn spawner() -> (u32, u32) {
    let detached = tokio::spawn(spawned(1));
    let parent = trace::current().expect("inside an instrumented call");
    let linked = tokio::spawn(trace::with_parent_async(parent, spawned(2)));
    (detached.await.unwrap(), linked.await.unwrap())
}

#[instrument_dwcp(component = "spawn", registry = &*REG, sample = 1.0)]
async fn spawned(n: u32) -> u32 {
    YieldOnce(false).await;
    n
}

#[test]
fn spawned_tasks_link_through_with_parent_async() {
    sink();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(spawner()), (1, 2));
    let spans = spans_of("spawn");
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let root = spans.iter().find(|s| s.name == "spawner").unwrap();
    let child = |n: i64| {
        spans
            .iter()
            .find(|s| s.name == "spawned" && attr(s, "n") == Some(&AttrValue::I64(n)))
            .unwrap()
    };
    assert_eq!(
        child(1).parent_span_id,
        None,
        "a spawned task starts a new trace"
    );
    assert_ne!(child(1).trace_id, root.trace_id);
    assert_eq!(child(2).parent_span_id, Some(root.span_id));
    assert_eq!(child(2).trace_id, root.trace_id);
}
