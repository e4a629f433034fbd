//! `#[instrument_dwcp]` handlers, sampled (`sample = critical`), with the OTLP span exporter
//! installed as the process's span sink, while the collector is dead or a black hole, over
//! gRPC and HTTP/protobuf. `tests/otlp_traces.rs` shows that the exporter's `submit` never
//! waits; here the caller is the instrumented handler itself, as in a service: every call
//! returns, with its value; its request metrics are exact; and every span it made is either
//! delivered or counted in `dwcp_telemetry_otlp_dropped_total` (nothing is lost silently).
//!
//! - Dead collector (connection refused), and black hole (accepts, reads, never answers: each
//!   attempt is given up at a short per-attempt timeout and retried): of `N` calls, exactly
//!   `B + Q` spans are held and arrive, in call order, once the collector answers, and
//!   exactly `N - B - Q` are dropped and counted (`reason="queue_full"`).
//! - A collector that stays a black hole, with a short batch deadline: each batch is given
//!   up and counted (`reason="export_failed"`), span for span.
//!
//! The arithmetic is exact because the export thread's state is known before the bulk of
//! the calls: the schedule delay is an hour, so only full batches (and flushes) are sent; the
//! first `B` calls make one full batch, and the test waits until the worker has taken it (it
//! retried it, or its request reached the black hole). With a long batch deadline the worker
//! then holds exactly those `B` spans, so of the next calls exactly `Q` fit in the queue and
//! the rest are dropped, whatever the speed of the machine. Time bounds are liveness bounds
//! only (60 s, for a busy 2-core CI machine), never speed claims: each run of calls is made
//! on a thread of its own, so a call that blocked would fail the test, not hang it.
//!
//! Its own binary: the span sink is process-wide. The tests take a lock so they run one at
//! a time, and each handler is its own call site (its own `operation`), so each test reads
//! absolute counts.

mod otlp_support;

use std::future::Future;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use dwcp_telemetry::export::otlp::config::{BatchConfig, ResourceConfig};
use dwcp_telemetry::export::otlp::OtlpSpanExporter;
use dwcp_telemetry::instrument::{DURATION, IN_FLIGHT, REQUESTS};
use dwcp_telemetry::trace::sampler::{self, Sampler};
use dwcp_telemetry::trace::{self, SpanSink};
use dwcp_telemetry::{instrument_dwcp, Registry};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp_support::{attr, attr_str, counter, span_exporter, wait_until, Kind, Receiver};

/// Handler calls made while the collector is down: a few thousand, far more than the
/// exporter can hold, so most spans must be dropped (and counted).
const N: u64 = 3000;
/// The exporter's queue (`OTEL_BSP_MAX_QUEUE_SIZE`): small, so it fills at once.
const Q: usize = 16;
/// The batch size (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`); `Q` is a multiple of it.
const B: usize = 4;
/// Handler calls made once the collector answers again.
const M: u64 = 5;
/// Liveness bound for anything waited on (not a speed claim).
const LIVENESS: Duration = Duration::from_secs(60);
/// The per-attempt timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`) against a black hole that stays
/// one: short, so the worker gives up on a hanging request instead of waiting the 10 s
/// default.
const HOLE_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
/// The same where the collector answers again: longer, so that a request to it on loopback
/// is never cut short on a busy CI machine (one that had arrived would be retried and arrive
/// twice, which the exact counts would catch, as a flaky failure). It costs the test one
/// attempt's wait per protocol (the test waits for the first retry).
const RECOVERING_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

const COMPONENT: &str = "dwcp-manager";
const DROPPED: &str = "dwcp_telemetry_otlp_dropped_total";
const RETRIES: &str = "dwcp_telemetry_otlp_retries_total";
const EXPORTS: &str = "dwcp_telemetry_otlp_exports_total";
const EXPORTED: &str = "dwcp_telemetry_otlp_exported_items_total";

/// The handlers' request metrics (a call site binds its registry once, so a static).
static REQS: LazyLock<Registry> =
    LazyLock::new(|| Registry::builder().version("test").build().unwrap());

/// The span sink is process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What a handler returns for request `seq`: checked for every call.
fn answer(seq: u64) -> u64 {
    seq * 3 + 1
}

/// One handler per test and protocol, so each has its own series
/// (`operation` = the function's name). Each is an `async fn` that awaits once (a
/// `yield_now`), as a service's handler would: its span is handed to the sink when the
/// call completes, on the caller's thread.
macro_rules! handlers {
    ($($name:ident),* $(,)?) => {$(
        #[instrument_dwcp(component = "dwcp-manager", registry = &*REQS, sample = critical)]
        async fn $name(seq: u64) -> u64 {
            tokio::task::yield_now().await;
            answer(seq)
        }
    )*};
}

handlers!(
    dead_grpc,
    dead_http,
    hole_grpc,
    hole_http,
    give_up_grpc,
    give_up_http
);

// ---------------------------------------------------------------------------------------
// Helpers.

/// The test lock, taken first thing (before any port is bound, so that no other test's
/// ephemeral port can land on a port a test stopped listening on and means to take back).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps an exporter installed as the span sink; uninstalls it on drop (also when an
/// assertion fails, so the next test starts clean).
struct Installed;

impl Installed {
    fn new(exporter: &Arc<OtlpSpanExporter>) -> Self {
        // Pin the default sampler, so that `sample = critical` decides (every call sampled)
        // whatever OTEL_TRACES_SAMPLER says in the environment.
        sampler::set_sampler(Sampler::ParentBasedSiteRatio).unwrap();
        assert!(trace::install_sink(exporter.clone()).is_none());
        Self
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        trace::uninstall_sink();
    }
}

/// The span exporter of these tests: only full batches (and flushes) are sent (the schedule
/// delay is an hour), so what the worker holds is exact; a queue of `Q`, batches of `B`.
fn exporter(
    kind: Kind,
    endpoint: String,
    attempt_timeout: Duration,
    export_timeout: Duration,
    reg: &Registry,
) -> Arc<OtlpSpanExporter> {
    let batch = BatchConfig {
        schedule_delay: Duration::from_secs(3600),
        export_timeout,
        max_queue_size: Q,
        max_export_batch_size: B,
    };
    Arc::new(span_exporter(
        kind,
        endpoint,
        attempt_timeout,
        batch,
        ResourceConfig::new("dwcp-manager"),
        reg,
    ))
}

/// Calls `handler` once per `seq`, one after the other, on a tokio runtime of a thread of
/// their own, and returns what each returned. The test thread waits at most [`LIVENESS`]:
/// a call that blocked on the collector fails the test instead of hanging it.
fn call<H, F>(handler: H, seqs: Range<u64>) -> Vec<u64>
where
    H: Fn(u64) -> F + Send + 'static,
    F: Future<Output = u64>,
{
    let what = format!("{seqs:?}");
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("handler-calls".to_owned())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let out = rt.block_on(async {
                let mut out = Vec::with_capacity(seqs.clone().count());
                for seq in seqs {
                    out.push(handler(seq).await);
                }
                out
            });
            let _ = tx.send(out);
        })
        .unwrap();
    match rx.recv_timeout(LIVENESS) {
        Ok(out) => out,
        Err(RecvTimeoutError::Timeout) => {
            panic!("calls {what} did not all return within {LIVENESS:?}: a call is blocked")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("calls {what}: the calling thread panicked"),
    }
}

fn answers(seqs: Range<u64>) -> Vec<u64> {
    seqs.map(answer).collect()
}

/// `dwcp_requests_total{component, operation, status}` for `[ok, error, panic, cancelled]`.
fn statuses(op: &str) -> [u64; 4] {
    ["ok", "error", "panic", "cancelled"].map(|status| {
        REQS.existing_counter(REQUESTS)
            .expect("dwcp_requests_total registered")
            .try_with_labels(&[COMPONENT, op, status])
            .unwrap()
            .get()
    })
}

fn in_flight(op: &str) -> f64 {
    REQS.existing_gauge(IN_FLIGHT)
        .expect("dwcp_requests_in_flight registered")
        .try_with_labels(&[COMPONENT, op])
        .unwrap()
        .get()
}

fn durations_recorded(op: &str) -> u64 {
    REQS.existing_histogram(DURATION)
        .expect("dwcp_request_duration_seconds registered")
        .try_with_labels(&[COMPONENT, op])
        .unwrap()
        .snapshot()
        .count()
}

fn dropped(reg: &Registry, reason: &str) -> u64 {
    counter(reg, DROPPED, &["traces", reason])
}

/// Waits until the registry condition `cond` holds (nothing signals a counter, so
/// `otlp_support::wait_until` checks it); fails the test after [`LIVENESS`].
fn wait_for(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(LIVENESS, cond), "timed out waiting for {what}");
}

/// The `seq` argument each span carries (an integer attribute), in arrival order.
fn seqs(spans: &[Span]) -> Vec<u64> {
    spans
        .iter()
        .map(|s| match attr(&s.attributes, "seq") {
            Some(Value::IntValue(v)) => *v as u64,
            other => panic!("span {:?} has no integer `seq`: {other:?}", s.name),
        })
        .collect()
}

/// What every span of handler `op` holds: its name, and the attributes `#[instrument_dwcp]`
/// sets.
fn check_spans(spans: &[Span], op: &str) {
    for s in spans {
        assert_eq!(s.name, op);
        assert_eq!(attr_str(&s.attributes, "dwcp.component"), Some(COMPONENT));
        assert_eq!(attr_str(&s.attributes, "dwcp.operation"), Some(op));
        assert_eq!(attr_str(&s.attributes, "code.function"), Some(op));
        assert_eq!(
            attr_str(&s.attributes, "code.namespace"),
            Some("otlp_handler_outage")
        );
        assert_eq!(attr_str(&s.attributes, "dwcp.status"), Some("ok"));
        assert!(s.parent_span_id.is_empty(), "each call is a root");
        assert_eq!(s.flags & 1, 1, "sampled");
    }
}

/// An accepted connection (a clone, to cut it) and the thread reading it.
type Conns = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

/// A collector that is up but never answers: it accepts every connection and reads (and
/// discards) what is sent, but never writes a byte. Each read is reported on a channel, so
/// a test waits for the first request to arrive instead of polling. Dropping it closes the
/// listener and cuts every connection.
struct BlackHole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The bytes of each read, as they arrive.
    reads: mpsc::Receiver<usize>,
    /// The accepted connections (clones, to cut them) and their reading threads.
    conns: Conns,
    acceptor: Option<JoinHandle<()>>,
}

impl BlackHole {
    /// Listens on `addr`. Where that is a stopped `Receiver`'s port, the bind succeeds at
    /// once: the receiver's listener is closed when `stop` returns, and the tests of this
    /// file run one at a time (no other test's connection can hold the port meanwhile).
    fn bind(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("binding the black hole on {addr} failed: {e}"));
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, reads) = mpsc::channel();
        let conns: Conns = Arc::default();
        let acceptor = {
            let (stop, conns) = (stop.clone(), conns.clone());
            std::thread::Builder::new()
                .name("black-hole".to_owned())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let Ok(mut conn) = conn else { continue };
                        let cut = conn.try_clone().unwrap();
                        let tx = tx.clone();
                        let reader = std::thread::spawn(move || {
                            let mut buf = vec![0u8; 64 * 1024];
                            // Until the client closes or `drop` cuts the connection.
                            while let Ok(n @ 1..) = conn.read(&mut buf) {
                                let _ = tx.send(n);
                            }
                        });
                        conns.lock().unwrap().push((cut, reader));
                    }
                })
                .unwrap()
        };
        Self {
            addr,
            stop,
            reads,
            conns,
            acceptor: Some(acceptor),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until a request's bytes have arrived; fails the test after [`LIVENESS`].
    fn wait_for_a_request(&self) {
        match self.reads.recv_timeout(LIVENESS) {
            Ok(n) => assert!(n > 0),
            Err(e) => panic!("no request reached the black hole within {LIVENESS:?}: {e}"),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the acceptor, which sees `stop` and closes the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for (conn, reader) in std::mem::take(&mut *self.conns.lock().unwrap()) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
            let _ = reader.join();
        }
    }
}

/// What both outage tests do once the worker holds the first batch (`out`: the answers of
/// calls `0..B`): the rest of the `N` calls, made while the collector is still down or a
/// black hole. The queue fills (`Q`) and every later span is dropped, and counted.
fn rest_of_the_outage<H, F>(
    handler: H,
    op: &str,
    mut out: Vec<u64>,
    rx: &Receiver,
    exp: &OtlpSpanExporter,
    reg: &Registry,
) where
    H: Fn(u64) -> F + Copy + Send + 'static,
    F: Future<Output = u64>,
{
    let kind = rx.kind();
    // (`call` bounds each run of calls by LIVENESS: they all returned, with the collector
    // still not answering.)
    out.extend(call(handler, B as u64..N));
    // Every call returned its own answer, and was counted once, ok, with its duration.
    assert_eq!(out, answers(0..N), "{kind:?}");
    assert_eq!(statuses(op), [N, 0, 0, 0], "{kind:?}");
    assert_eq!(in_flight(op), 0.0, "{kind:?}");
    assert_eq!(durations_recorded(op), N, "{kind:?}");
    // A flush with a short timeout gives up instead of hanging (it stays pending in the
    // worker, and drains the queue once the collector answers).
    assert!(!exp.flush(Duration::from_millis(500)), "{kind:?}");
    // Exactly the spans that fit nowhere were dropped, and counted.
    assert_eq!(dropped(reg, "queue_full"), N - (B + Q) as u64, "{kind:?}");
    assert_eq!(dropped(reg, "export_failed"), 0, "{kind:?}");
    assert_eq!(counter(reg, EXPORTED, &["traces"]), 0, "{kind:?}");
    assert_eq!(rx.request_count(), 0, "{kind:?}");
}

/// What both outage tests do once the collector answers again: the `B + Q` spans the
/// exporter held arrive, in call order, and nothing else of the outage; `M` new calls'
/// spans arrive after them; and the outage's spans are all accounted for: delivered or
/// dropped and counted, exactly `N`.
fn check_recovery<H, F>(handler: H, op: &str, rx: &Receiver, exp: &OtlpSpanExporter, reg: &Registry)
where
    H: Fn(u64) -> F + Copy + Send + 'static,
    F: Future<Output = u64>,
{
    let kind = rx.kind();
    let held = (B + Q) as u64;
    // The stuck batch goes through on its next retry, then the queue drains (the flush made
    // during the outage is still pending, and runs once that batch is done).
    let spans = rx.wait_for_spans(B + Q, LIVENESS);
    assert_eq!(spans.len(), B + Q, "{kind:?}");
    // The first batch (calls 0..B), then the queue (calls B..B+Q): FIFO, every call after
    // those was dropped.
    assert_eq!(seqs(&spans), (0..held).collect::<Vec<u64>>(), "{kind:?}");
    check_spans(&spans, op);

    // New calls' spans arrive.
    assert_eq!(call(handler, N..N + M), answers(N..N + M));
    assert!(exp.flush(LIVENESS), "{kind:?}: flush after recovery");
    let spans = rx.spans();
    assert_eq!(spans.len(), B + Q + M as usize, "{kind:?}");
    assert_eq!(
        seqs(&spans),
        (0..held).chain(N..N + M).collect::<Vec<u64>>(),
        "{kind:?}"
    );
    check_spans(&spans, op);
    assert_eq!(statuses(op), [N + M, 0, 0, 0]);
    assert_eq!(in_flight(op), 0.0);
    assert_eq!(durations_recorded(op), N + M);

    // Nothing lost silently: of the N outage calls, every span was delivered or counted.
    let delivered = seqs(&spans).iter().filter(|&&s| s < N).count() as u64;
    assert_eq!(delivered, held);
    assert_eq!(dropped(reg, "queue_full"), N - held);
    assert_eq!(delivered + dropped(reg, "queue_full"), N);
    for reason in ["export_failed", "export_rejected", "exporter_shutdown"] {
        assert_eq!(dropped(reg, reason), 0, "{kind:?}: {reason}");
    }
    assert_eq!(counter(reg, EXPORTED, &["traces"]), held + M);
    assert_eq!(counter(reg, EXPORTS, &["traces", "failed"]), 0);
}

// ---------------------------------------------------------------------------------------
// Dead collector: the receiver is stopped, connections are refused.

fn dead_collector<H, F>(kind: Kind, op: &str, handler: H)
where
    H: Fn(u64) -> F + Copy + Send + 'static,
    F: Future<Output = u64>,
{
    let _serial = serial();
    let mut rx = Receiver::start(kind);
    let reg = Registry::builder().build().unwrap();
    // The batch deadline (export_timeout) is long: the first batch is retried until the
    // collector comes back, so the worker holds exactly it for the whole outage.
    let exp = exporter(
        kind,
        rx.endpoint(),
        Duration::from_secs(5),
        Duration::from_secs(300),
        &reg,
    );
    rx.stop();
    let installed = Installed::new(&exp);

    // One full batch: the worker takes it and retries it against the dead collector.
    let out = call(handler, 0..B as u64);
    wait_for("the worker to retry its first batch", || {
        counter(&reg, RETRIES, &["traces"]) >= 1
    });
    assert!(!rx.is_running());
    rest_of_the_outage(handler, op, out, &rx, &exp, &reg);

    rx.restart();
    check_recovery(handler, op, &rx, &exp, &reg);

    drop(installed);
    assert!(exp.shutdown(LIVENESS), "{kind:?}");
    assert_eq!(dropped(&reg, "exporter_shutdown"), 0);
}

#[test]
fn dead_collector_handlers_never_block_and_every_span_is_delivered_or_counted() {
    dead_collector(Kind::Grpc, "dead_grpc", dead_grpc);
    dead_collector(Kind::Http, "dead_http", dead_http);
}

// ---------------------------------------------------------------------------------------
// Slow collector: a black hole that accepts connections and never answers.

fn black_hole<H, F>(kind: Kind, op: &str, handler: H)
where
    H: Fn(u64) -> F + Copy + Send + 'static,
    F: Future<Output = u64>,
{
    let _serial = serial();
    // The receiver's port, held by the black hole until the collector "answers again".
    let mut rx = Receiver::start(kind);
    rx.stop();
    let hole = BlackHole::bind(rx.addr());
    let reg = Registry::builder().build().unwrap();
    // Each attempt gives up after RECOVERING_ATTEMPT_TIMEOUT and is retried; the batch
    // deadline is long, so the worker holds the first batch until the collector answers.
    let exp = exporter(
        kind,
        rx.endpoint(),
        RECOVERING_ATTEMPT_TIMEOUT,
        Duration::from_secs(300),
        &reg,
    );
    let installed = Installed::new(&exp);

    let out = call(handler, 0..B as u64);
    // The first attempt reached the black hole, hung, and was given up (a retry is counted
    // only once an attempt has ended; the black hole never answers, so it ended at the
    // per-attempt timeout).
    wait_for("the worker to give up an attempt and retry", || {
        counter(&reg, RETRIES, &["traces"]) >= 1
    });
    hole.wait_for_a_request();
    rest_of_the_outage(handler, op, out, &rx, &exp, &reg);

    // The collector answers again: the black hole closes (its connections are cut) and the
    // receiver takes its port back.
    drop(hole);
    rx.restart();
    check_recovery(handler, op, &rx, &exp, &reg);

    drop(installed);
    assert!(exp.shutdown(LIVENESS), "{kind:?}");
    assert_eq!(dropped(&reg, "exporter_shutdown"), 0);
}

#[test]
fn black_hole_collector_handlers_never_block_drops_are_counted_and_spans_arrive_after() {
    black_hole(Kind::Grpc, "hole_grpc", hole_grpc);
    black_hole(Kind::Http, "hole_http", hole_http);
}

// ---------------------------------------------------------------------------------------
// A collector that stays a black hole: with a short batch deadline (export_timeout), the
// worker gives each batch up, counts it, and goes on to the next.

fn gives_up<H, F>(kind: Kind, op: &str, handler: H)
where
    H: Fn(u64) -> F + Copy + Send + 'static,
    F: Future<Output = u64>,
{
    let _serial = serial();
    let hole = BlackHole::bind("127.0.0.1:0".parse().unwrap());
    let reg = Registry::builder().build().unwrap();
    // Up to three attempts fit in the batch deadline (two of HOLE_ATTEMPT_TIMEOUT, and one cut
    // to what is left); then the next wait would pass it, and the batch is dropped and
    // counted as export_failed.
    let deadline = Duration::from_millis(600);
    let exp = exporter(kind, hole.endpoint(), HOLE_ATTEMPT_TIMEOUT, deadline, &reg);
    let installed = Installed::new(&exp);

    // Batch 1: taken, sent, and hanging in the black hole.
    let mut out = call(handler, 0..B as u64);
    hole.wait_for_a_request();
    // Batch 2: fits in the queue (Q ≥ 2B) whether or not batch 1 was given up yet, so
    // nothing is dropped for lack of room. The worker takes it once batch 1 is given up, as
    // one full batch: the calls are made one at a time, so its wake-up comes after its B-th
    // span is queued. (No race with time here: the counts below hold however slow the
    // machine is.)
    out.extend(call(handler, B as u64..2 * B as u64));
    let calls = 2 * B as u64;
    assert_eq!(out, answers(0..calls), "{kind:?}");
    assert_eq!(statuses(op), [calls, 0, 0, 0], "{kind:?}");
    assert_eq!(in_flight(op), 0.0, "{kind:?}");

    // Both batches are given up, one after the other, and every span is counted.
    wait_for("both batches to be given up", || {
        dropped(&reg, "export_failed") >= calls
    });
    assert_eq!(dropped(&reg, "export_failed"), calls, "{kind:?}");
    assert_eq!(counter(&reg, EXPORTS, &["traces", "failed"]), 2, "{kind:?}");
    assert_eq!(
        counter(&reg, EXPORTS, &["traces", "success"]),
        0,
        "{kind:?}"
    );
    assert_eq!(counter(&reg, EXPORTED, &["traces"]), 0, "{kind:?}");
    assert_eq!(dropped(&reg, "queue_full"), 0, "{kind:?}");
    assert_eq!(dropped(&reg, "export_rejected"), 0, "{kind:?}");

    drop(installed);
    // Nothing is left queued: the shutdown has nothing to send and succeeds at once.
    assert!(exp.shutdown(LIVENESS), "{kind:?}");
    assert_eq!(dropped(&reg, "exporter_shutdown"), 0);
    assert_eq!(dropped(&reg, "export_failed"), calls);
}

#[test]
fn black_hole_collector_batches_are_given_up_at_the_export_timeout_and_counted() {
    gives_up(Kind::Grpc, "give_up_grpc", give_up_grpc);
    gives_up(Kind::Http, "give_up_http", give_up_http);
}
