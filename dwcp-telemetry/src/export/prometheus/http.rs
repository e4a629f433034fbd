//! The HTTP server: `GET /metrics`, `GET /health`, `GET /metrics/summary` (hyper 1, tokio).
//!
//! | path | returns |
//! | --- | --- |
//! | `/metrics` (`GET`, `HEAD`) | the exposition: OpenMetrics 1.0 if `Accept` asks for `application/openmetrics-text`, else text 0.0.4 |
//! | `/health` | `{"status":"ok","version":"3.0.0","uptime_seconds":12.5}` |
//! | `/metrics/summary` | [`Summary`](crate::export::summary::Summary) JSON: counts, rates, quantiles, error rates |
//!
//! Anything else is `404`; another method on a known path is `405` with `Allow`. With a
//! bearer token configured, a request without `Authorization: Bearer <token>` gets `401` with
//! `WWW-Authenticate: Bearer` (the token is compared in constant time).
//!
//! Limits (all configurable on [`ServerBuilder`]): request heads over 16 KiB get `431`, more
//! than 64 headers `431`, a request body (`Content-Length` over 0 bytes by default, or any
//! chunked body) `413`; a client has 5 s to send its request head and 30 s in all per
//! connection; at most 64 connections are served at once (more are answered `503` and
//! closed). Scrapes never touch a lock that recording threads take: collection only loads
//! atomics. Renders and summaries run on tokio's blocking pool, at most two at once (further
//! scrapes wait their turn), so a scrape never stalls the async workers of the runtime the
//! server shares with its service.
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
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::text::{Format, TextEncoder};
use crate::export::summary::{health_json, Summarizer};
use crate::registry::Registry;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 0,
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
}

impl ServerBuilder {
    /// The address to listen on (default `127.0.0.1:9898`; port 0 picks a free port). Use
    /// `0.0.0.0:9898` (or `[::]:9898`) for a Prometheus on another host.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Require `Authorization: Bearer <token>` on every endpoint.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Connections served at once (default 64, at least 1); more are answered `503`.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n.max(1);
        self
    }

    /// Time a client has to send a complete request head (default 5 s).
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
            summarizer: Summarizer::new(self.registry.clone()),
            auth,
            limits: self.limits,
            size_hint: AtomicUsize::new(4096),
            renders: Arc::new(Semaphore::new(RENDERS_AT_ONCE)),
        }))
    }

    /// Bind and serve on the current tokio runtime (which needs its IO and time drivers).
    pub async fn start(self) -> Result<ServerHandle, ServerError> {
        let state = self.state()?;
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| ServerError::Bind {
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

/// A running server on a tokio runtime. Dropping it leaves the server running; call
/// [`ServerHandle::shutdown`] to stop it.
#[derive(Debug)]
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
    /// `Bearer <token>`, when auth is on.
    auth: Option<Vec<u8>>,
    limits: Limits,
    /// Size of the last rendering, to allocate the next one in one go.
    size_hint: AtomicUsize,
    /// Bounds concurrent renders and summaries.
    renders: Arc<Semaphore>,
}

/// Renders (and summaries) run at most this many at once; further scrapes wait their turn.
const RENDERS_AT_ONCE: usize = 2;

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(state.limits.max_connections));
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
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let state = state.clone();
                let stop = stop.clone();
                tasks.spawn(async move {
                    serve_connection(stream, state, stop).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tasks.spawn(reject_busy(stream));
            }
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

async fn serve_connection(stream: TcpStream, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let limits = state.limits;
    let svc = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let deadline = tokio::time::sleep(limits.connection_timeout);
    tokio::pin!(deadline);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = &mut deadline => {}
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
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
    Health,
    Summary,
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
    let (content_type, body) = match work {
        Work::Health => ("application/json", health_json(&state.registry)),
        work => {
            // The semaphore is never closed, so acquiring only waits.
            let Ok(permit) = state.renders.clone().acquire_owned().await else {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
            };
            let st = state.clone();
            // The permit moves into the task: if the client goes away mid-render, the slot
            // stays taken until the render really ends.
            let rendered = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                render_work(&st, work, head)
            })
            .await;
            match rendered {
                Ok(r) => r,
                Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "render failed\n"),
            }
        }
    };
    if head {
        let len = body.len();
        let mut r = respond(StatusCode::OK, content_type, Bytes::new());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    } else {
        respond(StatusCode::OK, content_type, body)
    }
}

fn render_work(st: &State, work: Work, head: bool) -> (&'static str, String) {
    match work {
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
        "/health" | "/metrics/summary" => "GET, HEAD",
        _ => {
            return Err(Box::new(plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /health or /metrics/summary\n",
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
    let work = match path {
        "/metrics" => Work::Metrics(Format::from_accept(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )),
        "/health" => Work::Health,
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
