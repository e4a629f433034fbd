//! The HTTP server: `GET /metrics`, `GET /health`, `GET /metrics/summary` (hyper 1, tokio).
//!
//! | path | returns |
//! | --- | --- |
//! | `/metrics` (`GET`, `HEAD`) | the exposition: the protobuf exposition with native histograms if `Accept` asks for it ([`protobuf::accepts_protobuf`](super::protobuf::accepts_protobuf)), OpenMetrics 1.0 if it asks for `application/openmetrics-text`, else text 0.0.4 |
//! | `/health` | `{"status":"ok","version":"3.0.0","uptime_seconds":12.5}`; with [`ServerBuilder::health`], the checks' aggregate and per-component detail, `503` when unhealthy |
//! | `/metrics/summary` | [`Summary`](crate::export::summary::Summary) JSON: counts, rates, quantiles, error rates |
//! | `/status` | the [status page](crate::export::status): HTML for a person (`?fragment=1`: its content only) |
//! | `/status.json` | the status page's [`StatusSnapshot`](crate::export::status::StatusSnapshot) as JSON |
//!
//! Anything else is `404`; another method on a known path is `405` with `Allow`. With a
//! bearer token configured, a request without `Authorization: Bearer <token>` gets `401` with
//! `WWW-Authenticate: Bearer` (the token is compared in constant time).
//!
//! Limits (all configurable on [`ServerBuilder`]): request heads over 16 KiB get `431`, more
//! than 64 headers `431`, a request body (`Content-Length` over 0 bytes by default, or any
//! chunked body) `413`; 30 s in all per connection. Scrapes never touch a lock that recording
//! threads take: collection only loads atomics. Renders and summaries run on tokio's blocking
//! pool, at most two at once (further scrapes wait their turn), so a scrape never stalls the
//! async workers of the runtime the server shares with its service.
//!
//! # Connection handling (slowloris)
//!
//! A connection is either *waiting* for a request head (just accepted, trickling a partial
//! head, or idle on keep-alive between requests) or *busy* (a complete head was read; busy
//! until its response is handed to the socket).
//!
//! - **Head deadline**: a waiting connection has `header_read_timeout` (default 2 s) in all,
//!   counted from the moment it started waiting (accept, or the end of its previous response),
//!   to deliver a complete head. Bytes arriving do not extend it; then it is closed.
//! - **Eviction**: at most `max_connections` (default 64) are open. The next connection
//!   does not get refused: the connection that has been waiting longest for a head is closed
//!   to make room. Only when every connection is busy does a new one wait, at most 1 s, for a
//!   slot, and then gets `503` with `Retry-After: 1`.
//! - **Write timeout**: a busy connection whose response makes no progress for
//!   `write_timeout` (default 10 s) is closed, so clients that request and never read cannot
//!   hold every connection busy.
//! - **Bounds**: sockets held = `max_connections` + the one being admitted + at most 8 being
//!   answered `503` + the listener; further connections wait in the kernel's listen backlog.
//!   Memory per connection is its buffers (at most `max_header_bytes` read, plus the response).
//! - **Counted** in `dwcp_telemetry_http_connections_rejected_total{reason}`: `evicted_idle`,
//!   `at_capacity`, `head_timeout` (a connection that closed at the head deadline having sent
//!   a partial head or no request at all; an idle keep-alive connection that simply expires
//!   after serving requests is not counted), `write_stalled`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dwcp_telemetry::export::prometheus::PrometheusServer;
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let server = PrometheusServer::builder(registry)
//!     .bind("127.0.0.1:9898".parse()?) // "0.0.0.0:9898" to be scraped from other hosts
//!     .bearer_token("s3cret")
//!     .start()
//!     .await?;
//! println!("serving on http://{}/metrics", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::text::{Format, TextEncoder};
use crate::export::status::{Journal, StatusPage};
use crate::export::summary::{health_json, Summarizer};
use crate::registry::Registry;
use crate::resilience::{HealthChecker, HealthStatus, SlaTracker};
use crate::{Counter, Gauge};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding the listening socket failed (address in use, no permission, …).
    #[error("cannot listen on {addr}: {source}; choose another address with .bind(..)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The background thread or its tokio runtime could not be started.
    #[error("cannot start the server thread or runtime: {0}")]
    Runtime(std::io::Error),
    /// The background thread ended before reporting that it listens.
    #[error("the server thread exited before it started listening")]
    ThreadExited,
    /// The bearer token cannot be sent in an HTTP header (empty, or control characters).
    #[error("the bearer token must be non-empty visible ASCII")]
    InvalidToken,
}

/// The entry point: `PrometheusServer::builder(registry)`.
#[derive(Debug)]
pub enum PrometheusServer {}

impl PrometheusServer {
    /// Start configuring a server for `registry` (default: `127.0.0.1:9898`, no auth).
    pub fn builder(registry: Registry) -> ServerBuilder {
        ServerBuilder {
            registry,
            addr: SocketAddr::from(([127, 0, 0, 1], 9898)),
            token: None,
            limits: Limits::default(),
            journal: None,
            health: None,
            sla: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_read_timeout: Duration,
    connection_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    max_body_bytes: u64,
    write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 0,
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Configures the server. Setters never fail; [`ServerBuilder::start`] validates.
#[derive(Debug, Clone)]
#[must_use = "call .start().await or .start_background() to serve"]
pub struct ServerBuilder {
    registry: Registry,
    addr: SocketAddr,
    token: Option<String>,
    limits: Limits,
    journal: Option<Arc<Journal>>,
    health: Option<HealthChecker>,
    sla: Option<SlaTracker>,
}

impl ServerBuilder {
    /// The recent-events journal `/status` shows (default: [`Journal::global`]).
    pub fn status_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The address to listen on (default `127.0.0.1:9898`; port 0 picks a free port). Use
    /// `0.0.0.0:9898` (or `[::]:9898`) for a Prometheus on another host.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Serve `checker`'s report on `/health`: each request runs the checks (each within its
    /// timeout) and answers the aggregate with per-component detail, with status `503` when
    /// it is unhealthy (what a Kubernetes probe needs), else `200`.
    pub fn health(mut self, checker: HealthChecker) -> Self {
        self.health = Some(checker);
        self
    }

    /// Add `tracker`'s report (ticked on each request) to `/metrics/summary` as `"sla"`.
    pub fn sla(mut self, tracker: SlaTracker) -> Self {
        self.sla = Some(tracker);
        self
    }

    /// Require `Authorization: Bearer <token>` on every endpoint.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connections open at once (default 64, at least 1). At the cap, the connection that has
    /// waited longest for a request head (idle keep-alive ones included) is closed to admit
    /// the new one; only when all are busy with a request is the new one answered `503`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n.max(1);
        self
    }

    /// Time a client has to send a complete request head (default 2 s), counted from the
    /// accept (or the end of the previous response on a keep-alive connection); bytes that
    /// trickle in do not extend it.
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.limits.header_read_timeout = d;
        self
    }

    /// Lifetime of one connection, keep-alive included (default 30 s).
    pub fn connection_timeout(mut self, d: Duration) -> Self {
        self.limits.connection_timeout = d;
        self
    }

    /// Largest request head in bytes (default 16 KiB; hyper's floor of 8 KiB applies).
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.limits.max_header_bytes = n;
        self
    }

    /// Most headers in one request (default 64).
    pub fn max_headers(mut self, n: usize) -> Self {
        self.limits.max_headers = n.max(1);
        self
    }

    /// Largest request body accepted (default 0: the endpoints take no body); larger
    /// `Content-Length`s and any chunked body get `413`.
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.limits.max_body_bytes = n;
        self
    }

    /// How long a busy connection may go without its response making progress (from its
    /// request head, or from the last bytes the socket accepted) before it is closed
    /// (default 10 s). Without it, clients that request `/metrics` and never read could keep
    /// every connection busy, where eviction cannot reach them; counted as
    /// `reason="write_stalled"`.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.limits.write_timeout = d;
        self
    }

    fn state(&self) -> Result<Arc<State>, ServerError> {
        let auth = match &self.token {
            None => None,
            Some(t) => {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ServerError::InvalidToken);
                }
                Some(format!("Bearer {t}").into_bytes())
            }
        };
        Ok(Arc::new(State {
            registry: self.registry.clone(),
            status: StatusPage::new(
                self.registry.clone(),
                self.journal.clone().unwrap_or_else(Journal::global),
            ),
            summarizer: Summarizer::new(self.registry.clone()).with_sla(self.sla.clone()),
            health: self.health.clone(),
            auth,
            limits: self.limits,
            size_hint: AtomicUsize::new(4096),
            renders: Arc::new(Semaphore::new(RENDERS_AT_ONCE)),
            conns: Conns::new(
                self.registry
                    .self_gauge(OPEN_METRIC, "Connections the HTTP server holds open now."),
            ),
            rejected: Rejected::register(&self.registry),
            epoch: Instant::now(),
        }))
    }

    /// Bind and serve on the current tokio runtime (which needs its IO and time drivers).
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        let state = self.state()?;
        let listener = listen(self.addr).map_err(|source| ServerError::Bind {
            addr: self.addr,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.addr,
            source,
        })?;
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state, rx));
        Ok(ServerHandle {
            local_addr,
            shutdown: tx,
            task,
        })
    }

    /// Serve from a new thread running its own current-thread tokio runtime, for services
    /// that are not async. Returns once the socket listens.
    pub fn start_background(self) -> Result<BackgroundServer, ServerError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("dwcp-metrics-http".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match self.start().await {
                        Ok(handle) => {
                            let _ = ready_tx.send(Ok(handle.local_addr()));
                            let _ = stop_rx.wait_for(|stop| *stop).await;
                            handle.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(ServerError::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(local_addr)) => Ok(BackgroundServer {
                local_addr,
                stop: stop_tx,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(ServerError::ThreadExited)
            }
        }
    }
}

/// Connections the kernel completes and queues before the server accepts them (capped by
/// `net.core.somaxconn`). Larger than tokio's default of 128, so a burst of connections (a
/// thousand idle ones, say) is queued instead of having SYNs dropped, which would delay a
/// scraper's connect by a 1 s retransmit.
const LISTEN_BACKLOG: u32 = 1024;

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A running server on a tokio runtime. Dropping it stops the server (it stops accepting and
/// closes its connections); [`ServerHandle::shutdown`] does the same and waits for it.
#[derive(Debug)]
#[must_use = "dropping the ServerHandle stops the server: keep it for as long as it should serve"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port if port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, let requests in flight finish (at most a second), and return.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// A server running on its own thread ([`ServerBuilder::start_background`]). Dropping it
/// stops the server and joins the thread.
#[derive(Debug)]
#[must_use = "dropping the BackgroundServer stops the server: keep it for as long as it should serve"]
pub struct BackgroundServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop the server and join its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[derive(Debug)]
struct State {
    registry: Registry,
    summarizer: Summarizer,
    /// The `/status` page (its own rate window).
    status: StatusPage,
    health: Option<HealthChecker>,
    /// `Bearer <token>`, when auth is on.
    auth: Option<Vec<u8>>,
    limits: Limits,
    /// Size of the last rendering, to allocate the next one in one go.
    size_hint: AtomicUsize,
    /// Bounds concurrent renders and summaries.
    renders: Arc<Semaphore>,
    /// The open connections, to pick one to evict at the cap.
    conns: Conns,
    /// `dwcp_telemetry_http_connections_rejected_total{reason}`.
    rejected: Rejected,
    /// Zero of the connections' `waiting_since` clocks.
    epoch: Instant,
}

/// Renders (and summaries) run at most this many at once; further scrapes wait their turn.
const RENDERS_AT_ONCE: usize = 2;

/// How long a new connection waits for a slot when every connection is busy with a request.
const ADMIT_WAIT: Duration = Duration::from_secs(1);

/// At most this many refused connections are being answered `503` at once; past that they are
/// closed without an answer (and still counted).
const REJECTS_AT_ONCE: usize = 8;

/// The self-metric of the connections held open.
pub const OPEN_METRIC: &str = "dwcp_telemetry_http_connections_open";

/// The self-metric counting connections closed without being served.
const REJECTED_METRIC: &str = "dwcp_telemetry_http_connections_rejected_total";
const REJECTED_HELP: &str = "Connections the HTTP server closed without serving a request: \
evicted_idle (waited longest for a request head, closed at the connection cap to admit a new \
one), at_capacity (every connection busy: answered 503), head_timeout (no complete request \
head within the head deadline), write_stalled (a response made no progress within the write \
timeout: the client stopped reading)";

/// The bound counters, registered once at server start.
#[derive(Debug)]
struct Rejected {
    evicted_idle: Counter,
    at_capacity: Counter,
    head_timeout: Counter,
    write_stalled: Counter,
}

impl Rejected {
    fn register(registry: &Registry) -> Self {
        let bound =
            |reason| registry.self_counter(REJECTED_METRIC, REJECTED_HELP, "reason", reason);
        Rejected {
            evicted_idle: bound("evicted_idle"),
            at_capacity: bound("at_capacity"),
            head_timeout: bound("head_timeout"),
            write_stalled: bound("write_stalled"),
        }
    }
}

/// Phases of a connection ([`Slot::phase`]).
///
/// Waiting for a request head: just accepted, a head partly received, or idle on keep-alive
/// after a response was fully handed to the socket. The only phase that can be evicted.
const WAITING: u8 = 0;
/// [`Slot::progress_at`] while the response is being rendered.
const RENDERING: u64 = u64::MAX;

/// A complete request head was read and its response is not yet fully written.
const BUSY: u8 = 1;
/// Chosen for eviction or timed out: the connection task closes the socket.
const CLOSING: u8 = 2;

/// What the accept loop and a connection's task share about that connection.
#[derive(Debug)]
struct Slot {
    id: u64,
    /// [`WAITING`], [`BUSY`] or [`CLOSING`]; `WAITING -> CLOSING` only by compare-exchange, so a
    /// connection is evicted (or timed out) at most once, and never while busy.
    phase: AtomicU8,
    /// When the connection began waiting for its current head, in ns since [`State::epoch`].
    waiting_since: AtomicU64,
    /// While busy: when its response last made progress (the response was ready, or the
    /// socket accepted bytes), in ns since [`State::epoch`]; [`RENDERING`] while the response
    /// is being made (a slow render is not a stalled client).
    progress_at: AtomicU64,
    /// Requests whose response body hyper still holds.
    in_flight: AtomicU32,
    /// Requests served on this connection.
    served: AtomicU32,
    /// Whether bytes arrived since the connection began waiting (a partial head).
    read_while_waiting: AtomicBool,
    /// Wakes the connection's task when the accept loop evicts it.
    evict: Notify,
}

/// The open connections (at most `max_connections`).
#[derive(Debug)]
struct Conns {
    /// `dwcp_telemetry_http_connections_open`, set under the lock on every change.
    open: Gauge,
    slots: Mutex<Vec<Arc<Slot>>>,
    next_id: AtomicU64,
    /// Signalled when a busy connection starts waiting again (becomes evictable).
    became_waiting: Notify,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot>>> {
        // Nothing panics while holding the lock; tolerate poisoning anyway.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new(open: Gauge) -> Self {
        Conns {
            open,
            slots: Mutex::default(),
            next_id: AtomicU64::new(0),
            became_waiting: Notify::new(),
        }
    }

    fn add(&self, now: u64) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: AtomicU8::new(WAITING),
            waiting_since: AtomicU64::new(now),
            progress_at: AtomicU64::new(now),
            in_flight: AtomicU32::new(0),
            served: AtomicU32::new(0),
            read_while_waiting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let mut slots = self.lock();
        slots.push(slot.clone());
        self.open.set(slots.len() as f64);
        slot
    }

    fn remove(&self, id: u64) {
        let mut slots = self.lock();
        if let Some(i) = slots.iter().position(|s| s.id == id) {
            slots.swap_remove(i);
        }
        self.open.set(slots.len() as f64);
    }

    /// Close the connection that has waited longest for a request head. False if every
    /// connection is busy (or already closing).
    fn evict_longest_waiting(&self) -> bool {
        let slots = self.lock();
        // A candidate can turn busy between the scan and the compare-exchange: look again.
        for _ in 0..slots.len() {
            let victim = slots
                .iter()
                .filter(|s| s.phase.load(Ordering::SeqCst) == WAITING)
                .min_by_key(|s| s.waiting_since.load(Ordering::SeqCst));
            let Some(victim) = victim else { return false };
            if victim
                .phase
                .compare_exchange(WAITING, CLOSING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                victim.evict.notify_one();
                return true;
            }
        }
        false
    }
}

impl State {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// A request head was read: the connection is busy until its response is written.
    /// False if the connection is being closed.
    fn request_started(&self, slot: &Slot) -> bool {
        match slot
            .phase
            .compare_exchange(WAITING, BUSY, Ordering::SeqCst, Ordering::SeqCst)
        {
            // BUSY already: a pipelined request read before the previous response was flushed.
            Ok(_) | Err(BUSY) => {
                // Rendering: no write deadline until the response exists.
                slot.progress_at.store(RENDERING, Ordering::SeqCst);
                slot.in_flight.fetch_add(1, Ordering::SeqCst);
                slot.served.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// hyper flushed its write buffer (it flushes only once every queued byte is written): if
    /// no response is still in the making, the connection waits for its next head.
    fn flushed(&self, slot: &Slot) {
        if slot.phase.load(Ordering::SeqCst) != BUSY || slot.in_flight.load(Ordering::SeqCst) != 0 {
            return;
        }
        slot.read_while_waiting.store(false, Ordering::SeqCst);
        slot.waiting_since.store(self.now(), Ordering::SeqCst);
        if slot
            .phase
            .compare_exchange(BUSY, WAITING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.conns.became_waiting.notify_one();
        }
    }
}

/// The socket, watched: tells the connection's [`Slot`] when bytes arrive while it waits for a
/// head, and when hyper has flushed everything it had to write.
struct Watched {
    stream: TcpStream,
    slot: Arc<Slot>,
    state: Arc<State>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before && self.slot.phase.load(Ordering::Relaxed) == WAITING {
            self.slot.read_while_waiting.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl Watched {
    /// The socket accepted bytes: the response is making progress.
    fn progressed(&self, r: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            if *n > 0 {
                self.slot
                    .progress_at
                    .store(self.state.now(), Ordering::Relaxed);
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.progressed(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.progressed(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.stream).poll_flush(cx);
        if r.is_ready() {
            self.state.flushed(&self.slot);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A response body that tells its connection's [`Slot`] when hyper is done with it (hyper
/// drops a body once its last frame is queued for writing).
struct Tracked {
    body: Full<Bytes>,
    slot: Option<Arc<Slot>>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Removes the connection from [`Conns`] however its task ends (aborts included).
struct Registered {
    slot: Arc<Slot>,
    state: Arc<State>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.conns.remove(self.slot.id);
    }
}

/// The outcome of admitting an accepted connection.
enum Admit {
    Yes(OwnedSemaphorePermit),
    /// Every connection stayed busy for [`ADMIT_WAIT`].
    Full,
    Stop,
}

/// Get a connection slot: a free one, else one freed by evicting the connection that has
/// waited longest for a request head, else wait (until `full_since + ADMIT_WAIT`) for a busy
/// one to finish or start waiting.
async fn admit(
    state: &State,
    permits: &Arc<Semaphore>,
    full_since: &mut Option<Instant>,
    stop: &mut watch::Receiver<bool>,
) -> Admit {
    loop {
        if let Ok(p) = permits.clone().try_acquire_owned() {
            *full_since = None;
            return Admit::Yes(p);
        }
        // Register for the wake-up before looking, so a connection that turns evictable
        // between the scan and the wait is not missed.
        let turned_waiting = state.conns.became_waiting.notified();
        tokio::pin!(turned_waiting);
        turned_waiting.as_mut().enable();
        if state.conns.evict_longest_waiting() {
            state.rejected.evicted_idle.inc();
            *full_since = None;
            // The victim's task closes its socket and returns its permit as soon as it runs.
            return tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => Admit::Yes(p),
                    Err(_) => Admit::Stop,
                },
                _ = stop.wait_for(|s| *s) => Admit::Stop,
            };
        }
        let deadline = *full_since.get_or_insert_with(Instant::now) + ADMIT_WAIT;
        tokio::select! {
            p = permits.clone().acquire_owned() => {
                *full_since = None;
                return match p {
                    Ok(p) => Admit::Yes(p),
                    Err(_) => Admit::Stop,
                };
            }
            _ = &mut turned_waiting => continue,
            _ = tokio::time::sleep_until(deadline) => return Admit::Full,
            _ = stop.wait_for(|s| *s) => return Admit::Stop,
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(state.limits.max_connections));
    let rejects = Arc::new(Semaphore::new(REJECTS_AT_ONCE));
    let mut full_since = None;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or a connection reset before accept: back off a
                // little rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        match admit(&state, &permits, &mut full_since, &mut stop).await {
            Admit::Yes(permit) => {
                let slot = state.conns.add(state.now());
                let state = state.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    serve_connection(stream, state, slot, stop).await;
                    drop(permit);
                });
            }
            Admit::Full => {
                state.rejected.at_capacity.inc();
                if let Ok(p) = rejects.clone().try_acquire_owned() {
                    tasks.spawn(async move {
                        reject_busy(stream).await;
                        drop(p);
                    });
                }
            }
            Admit::Stop => break,
        }
    }
    drop(listener);
    // Give connections in flight a moment to finish, then abort the rest.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        tasks.shutdown().await;
    }
}

async fn reject_busy(mut stream: TcpStream) {
    let msg = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(msg)).await;
    let _ = stream.shutdown().await;
}

/// Why a connection's driver stopped polling it.
enum End {
    /// hyper finished (the client closed, or an error).
    Done,
    /// Evicted by the accept loop (already counted there).
    Evicted,
    /// No complete head by the head deadline.
    HeadTimeout,
    /// Busy, and the response made no progress within the write timeout.
    WriteStalled,
    /// The connection lifetime ran out, or the server is stopping.
    Wind,
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    slot: Arc<Slot>,
    mut stop: watch::Receiver<bool>,
) {
    let _registered = Registered {
        slot: slot.clone(),
        state: state.clone(),
    };
    let _ = stream.set_nodelay(true);
    let limits = state.limits;
    let io = TokioIo::new(Watched {
        stream,
        slot: slot.clone(),
        state: state.clone(),
    });
    let svc = {
        let state = state.clone();
        let slot = slot.clone();
        service_fn(move |req| {
            let state = state.clone();
            // Counted here, synchronously, as hyper hands over the head.
            let started = state.request_started(&slot);
            let slot = slot.clone();
            async move {
                if !started {
                    let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "connection closed\n");
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Ok::<_, Infallible>(r.map(|body| Tracked { body, slot: None }));
                }
                let r = handle(state.clone(), req).await;
                // The response is ready: from now on it must make progress.
                slot.progress_at.store(state.now(), Ordering::SeqCst);
                Ok(r.map(|body| Tracked {
                    body,
                    slot: Some(slot),
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Our own head deadline (below) is the one that acts; hyper's is a backstop.
        .header_read_timeout(limits.header_read_timeout + Duration::from_secs(1))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let lifetime = tokio::time::sleep(limits.connection_timeout);
    tokio::pin!(lifetime);
    let mut armed_for = slot.waiting_since.load(Ordering::SeqCst);
    let head_deadline = tokio::time::sleep_until(state.at(armed_for) + limits.header_read_timeout);
    tokio::pin!(head_deadline);
    let mut progress_armed = slot.progress_at.load(Ordering::SeqCst);
    let write_deadline = tokio::time::sleep_until(state.at(progress_armed) + limits.write_timeout);
    tokio::pin!(write_deadline);
    let evicted = slot.evict.notified();
    tokio::pin!(evicted);
    let stopping = stop.wait_for(|s| *s);
    tokio::pin!(stopping);
    let end = poll_fn(|cx| {
        // Phase changes happen inside this poll (the service, the body, the flush), so the
        // checks after it see them.
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Done);
        }
        if evicted.as_mut().poll(cx).is_ready() || slot.phase.load(Ordering::SeqCst) == CLOSING {
            return Poll::Ready(End::Evicted);
        }
        if slot.phase.load(Ordering::SeqCst) == WAITING {
            let since = slot.waiting_since.load(Ordering::SeqCst);
            if since != armed_for {
                armed_for = since;
                head_deadline
                    .as_mut()
                    .reset(state.at(since) + limits.header_read_timeout);
            }
            if head_deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(End::HeadTimeout);
            }
        } else if slot.phase.load(Ordering::SeqCst) == BUSY {
            let at = slot.progress_at.load(Ordering::SeqCst);
            // While rendering there is nothing to write yet: no deadline.
            if at != RENDERING {
                if at != progress_armed {
                    progress_armed = at;
                    write_deadline
                        .as_mut()
                        .reset(state.at(at) + limits.write_timeout);
                }
                if write_deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(End::WriteStalled);
                }
            }
        }
        if lifetime.as_mut().poll(cx).is_ready() || stopping.as_mut().poll(cx).is_ready() {
            return Poll::Ready(End::Wind);
        }
        Poll::Pending
    })
    .await;
    match end {
        End::Done | End::Evicted => {}
        End::WriteStalled => {
            // Dropping the connection closes the socket; the stalled response is abandoned.
            slot.phase.store(CLOSING, Ordering::SeqCst);
            state.rejected.write_stalled.inc();
        }
        End::HeadTimeout => {
            let won = slot
                .phase
                .compare_exchange(WAITING, CLOSING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            // A keep-alive connection that served requests and then sent nothing is simply
            // expiring; one that sent no request, or part of a head, was cut off.
            if won
                && (slot.served.load(Ordering::Relaxed) == 0
                    || slot.read_while_waiting.load(Ordering::Relaxed))
            {
                state.rejected.head_timeout.inc();
            }
        }
        End::Wind => {
            // Waiting for a head (or closing): nothing to finish, close now. Busy: let the
            // response out.
            if let Err(BUSY) =
                slot.phase
                    .compare_exchange(WAITING, CLOSING, Ordering::SeqCst, Ordering::SeqCst)
            {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
            }
        }
    }
}

type Resp = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, body: &'static str) -> Resp {
    respond(status, "text/plain; charset=utf-8", body)
}

/// Compare without an early exit, so the time taken does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// What a request that passed routing and checks asks for.
#[derive(Debug, Clone, Copy)]
enum Work {
    Metrics(Format),
    /// The protobuf exposition (native histograms), when `Accept` asks for it.
    Protobuf,
    Health,
    Summary,
    Status(StatusPart),
}

/// What `/status` serves.
#[derive(Debug, Clone, Copy)]
enum StatusPart {
    Page,
    Fragment,
    Json,
}

/// A fresh CSP nonce: 128 bits from the standard library's randomly keyed hasher.
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x6477_6370);
        h.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

/// Answer a request. Rendering and summaries run on tokio's blocking pool, at most
/// [`RENDERS_AT_ONCE`] at a time, so a scrape never stalls the runtime's async workers
/// (which may be the host service's own) and a burst of scrapes queues instead of piling up.
async fn handle(state: Arc<State>, req: Request<Incoming>) -> Resp {
    let (work, head) = match route(&state, &req) {
        Ok(w) => w,
        Err(response) => return *response,
    };
    drop(req);
    if let Work::Protobuf = work {
        return protobuf_response(state, head).await;
    }
    let nonce = matches!(work, Work::Status(StatusPart::Page)).then(nonce);
    let mut status = StatusCode::OK;
    let (content_type, body) = match work {
        Work::Health => match &state.health {
            None => ("application/json", health_json(&state.registry)),
            Some(checker) => {
                let report = checker.check().await;
                if report.status == HealthStatus::Unhealthy {
                    status = StatusCode::SERVICE_UNAVAILABLE;
                }
                ("application/json", report.to_json(&state.registry))
            }
        },
        work => {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = state.renders.clone().acquire_owned().await else {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            };
            let st = state.clone();
            let n = nonce.clone();
            // The permit moves into the task: if the client goes away mid-render, the slot
            // stays taken until the render really ends.
            let rendered = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                render_work(&st, work, head, n.as_deref())
            })
            .await;
            match rendered {
                Ok(r) => r,
                Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "render failed\n"),
            }
        }
    };
    let mut r = if head {
        let len = body.len();
        let mut r = respond(status, content_type, Bytes::new());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    } else {
        respond(status, content_type, body)
    };
    if let Work::Status(_) = work {
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(n) = &nonce {
            if let Ok(v) = HeaderValue::from_str(&StatusPage::content_security_policy(n)) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
        }
    }
    r
}

fn render_work(st: &State, work: Work, head: bool, nonce: Option<&str>) -> (&'static str, String) {
    match work {
        Work::Status(StatusPart::Page) => (
            "text/html; charset=utf-8",
            st.status.render_html(nonce.unwrap_or("")),
        ),
        Work::Status(StatusPart::Fragment) => {
            ("text/html; charset=utf-8", st.status.render_fragment())
        }
        Work::Status(StatusPart::Json) => ("application/json", st.status.render_json()),
        Work::Metrics(format) => {
            let hint = st.size_hint.load(Ordering::Relaxed);
            let mut out = String::with_capacity(hint + hint / 8 + 1024);
            TextEncoder::new(format).encode_registry(&st.registry, &mut out);
            st.size_hint.store(out.len(), Ordering::Relaxed);
            (format.content_type(), out)
        }
        // HEAD must not close the summary's rate window.
        _ if head => ("application/json", st.summarizer.peek().to_json()),
        _ => ("application/json", st.summarizer.render_json()),
    }
}

/// The protobuf exposition, rendered like the text one: on the blocking pool, at most
/// [`RENDERS_AT_ONCE`] at a time.
async fn protobuf_response(state: Arc<State>, head: bool) -> Resp {
    let Ok(permit) = state.renders.clone().acquire_owned().await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let st = state.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut out = Vec::with_capacity(st.size_hint.load(Ordering::Relaxed) / 2 + 1024);
        super::protobuf::ProtobufEncoder::default().encode_registry(&st.registry, &mut out);
        out
    })
    .await;
    let Ok(body) = rendered else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "render failed\n");
    };
    let ct = super::protobuf::PROTOBUF_CONTENT_TYPE;
    if head {
        let mut r = respond(StatusCode::OK, ct, Bytes::new());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        r
    } else {
        respond(StatusCode::OK, ct, body)
    }
}

/// Auth, routing, method and body checks: the work to do (and whether it is a `HEAD`), or
/// the error response.
fn route(state: &State, req: &Request<Incoming>) -> Result<(Work, bool), Box<Resp>> {
    if let Some(expected) = &state.auth {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or(b"");
        if !constant_time_eq(given, expected) {
            let mut r = plain(StatusCode::UNAUTHORIZED, "unauthorized\n");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dwcp-telemetry\""),
            );
            return Err(Box::new(r));
        }
    }
    let path = req.uri().path();
    let allowed = match path {
        "/metrics" => "GET, HEAD",
        "/health" | "/metrics/summary" | "/status" | "/status.json" => "GET, HEAD",
        _ => {
            return Err(Box::new(plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /health, /metrics/summary or /status\n",
            )))
        }
    };
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return Err(Box::new(r));
    }
    if body_too_large(req, state.limits.max_body_bytes) {
        let mut r = plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Err(Box::new(r));
    }
    let accept = req.headers().get(header::ACCEPT);
    if path == "/metrics" && super::protobuf::accepts_protobuf(accept.and_then(|v| v.to_str().ok()))
    {
        return Ok((Work::Protobuf, head));
    }
    let work = match path {
        "/metrics" => Work::Metrics(Format::from_accept(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )),
        "/health" => Work::Health,
        "/status.json" => Work::Status(StatusPart::Json),
        "/status" if req.uri().query() == Some("fragment=1") => Work::Status(StatusPart::Fragment),
        "/status" => Work::Status(StatusPart::Page),
        _ => Work::Summary,
    };
    Ok((work, head))
}

fn body_too_large(req: &Request<Incoming>, max: u64) -> bool {
    let h = req.headers();
    if h.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    match h.get(header::CONTENT_LENGTH) {
        None => false,
        Some(v) => !matches!(
            v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()),
            Some(n) if n <= max
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer abc"));
        assert!(!constant_time_eq(b"Bearer abcd", b"Bearer abc"));
        assert!(!constant_time_eq(b"", b"Bearer abc"));
    }
}
