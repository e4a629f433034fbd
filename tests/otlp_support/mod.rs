//! In-process OTLP receivers for the export tests, built from `opentelemetry-proto`'s types:
//! a tonic gRPC server implementing `TraceService` and `MetricsService`, and a hyper
//! HTTP/protobuf server for `/v1/traces` and `/v1/metrics`. Both record every request they
//! decode, answer as scripted ([`Reply`]), and can be stopped ("killed": connections are cut)
//! and restarted on the same port.
//!
//! ```ignore
//! mod otlp_support;
//! use otlp_support::{Receiver, Reply};
//!
//! let rx = Receiver::grpc();                 // or Receiver::http()
//! rx.push_reply(Reply::http(503, Some("1")));  // the first request gets 503 + Retry-After: 1
//! // point the exporter at rx.endpoint() ...
//! let spans = rx.wait_for_spans(3, Duration::from_secs(30));
//! ```
#![allow(dead_code)] // each test binary uses a different part

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_server::{MetricsService, MetricsServiceServer},
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_server::{TraceService, TraceServiceServer},
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// How the receiver answers one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Accept everything.
    Ok,
    /// Accept, with a `partial_success` rejecting `rejected` items.
    PartialSuccess {
        /// Items rejected (spans or data points).
        rejected: i64,
        /// The message.
        message: String,
    },
    /// HTTP receiver: answer this status, with an optional `Retry-After` value.
    /// gRPC receiver: answer the matching gRPC code (429 -> RESOURCE_EXHAUSTED,
    /// 502/503/504 -> UNAVAILABLE, 400 -> INVALID_ARGUMENT, else INTERNAL).
    Http {
        /// The status code.
        status: u16,
        /// The `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// gRPC receiver: answer this code, with an optional `RetryInfo` delay. (HTTP receiver:
    /// 503 with no Retry-After.)
    Grpc {
        /// The code.
        code: tonic::Code,
        /// The `google.rpc.RetryInfo` delay.
        retry_delay: Option<Duration>,
    },
    /// Wait, then accept (a slow collector).
    Delay(Duration),
}

impl Reply {
    /// `Reply::Http` shorthand.
    pub fn http(status: u16, retry_after: Option<&str>) -> Self {
        Reply::Http {
            status,
            retry_after: retry_after.map(str::to_owned),
        }
    }

    fn accepts(&self) -> bool {
        matches!(
            self,
            Reply::Ok | Reply::PartialSuccess { .. } | Reply::Delay(_)
        )
    }
}

/// A decoded request body.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// `/v1/traces` or `TraceService/Export`.
    Traces(ExportTraceServiceRequest),
    /// `/v1/metrics` or `MetricsService/Export`.
    Metrics(ExportMetricsServiceRequest),
    /// A body that did not decode (HTTP only): the path and the error.
    Undecodable(String),
}

/// One request the receiver saw.
#[derive(Clone, Debug)]
pub struct Received {
    /// HTTP path or gRPC method path.
    pub path: String,
    /// Request headers (gRPC: metadata), names lower-case.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub payload: Payload,
    /// How it was answered.
    pub reply: Reply,
    /// When it arrived.
    pub at: Instant,
}

impl Received {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn next_reply(&self) -> Reply {
        let mut s = self.state.lock().unwrap();
        s.script
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or(Reply::Ok)
    }

    fn record(&self, path: String, headers: Vec<(String, String)>, payload: Payload, reply: Reply) {
        self.state.lock().unwrap().requests.push(Received {
            path,
            headers,
            payload,
            reply,
            at: Instant::now(),
        });
    }
}

/// Which protocol a receiver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP protobuf.
    Http,
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// An OTLP receiver on 127.0.0.1. Stopped on drop.
pub struct Receiver {
    kind: Kind,
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("running", &self.running.is_some())
            .finish()
    }
}

impl Receiver {
    /// A gRPC receiver (TraceService + MetricsService) on an ephemeral port.
    pub fn grpc() -> Self {
        Self::start(Kind::Grpc)
    }

    /// An HTTP/protobuf receiver (`/v1/traces`, `/v1/metrics`) on an ephemeral port.
    pub fn http() -> Self {
        Self::start(Kind::Http)
    }

    /// A receiver of `kind` on an ephemeral port.
    pub fn start(kind: Kind) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let mut r = Self {
            kind,
            addr,
            shared: Arc::default(),
            running: None,
        };
        r.run(listener);
        r
    }

    /// The protocol.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next request (after those already scripted) with `reply`.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.state.lock().unwrap().script.push_back(reply);
    }

    /// Answers every unscripted request with `reply` (default [`Reply::Ok`]).
    pub fn set_default_reply(&self, reply: Reply) {
        self.shared.state.lock().unwrap().default = Some(reply);
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.state.lock().unwrap().requests.clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.shared.state.lock().unwrap().requests.len()
    }

    /// The trace requests that were accepted (answered Ok, PartialSuccess or Delay).
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.reply.accepts())
            .filter_map(|r| match r.payload {
                Payload::Traces(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// The metrics requests that were accepted.
    pub fn metrics_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.reply.accepts())
            .filter_map(|r| match r.payload {
                Payload::Metrics(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Every span in accepted trace requests, in arrival order.
    pub fn spans(&self) -> Vec<Span> {
        self.trace_requests()
            .into_iter()
            .flat_map(|r| r.resource_spans)
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }

    /// Waits (polling) until at least `n` spans were accepted, or `deadline` passes; returns
    /// the spans accepted by then.
    pub fn wait_for_spans(&self, n: usize, deadline: Duration) -> Vec<Span> {
        wait_until(deadline, || self.spans().len() >= n);
        self.spans()
    }

    /// Waits until `cond(self)` holds or `deadline` passes; returns whether it held.
    pub fn wait_until(&self, deadline: Duration, cond: impl Fn(&Self) -> bool) -> bool {
        wait_until(deadline, || cond(self))
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops it: the listener closes and open connections are cut, as when a collector dies.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
            let _ = r.thread.join();
        }
    }

    /// Starts it again on the same port (retrying the bind for up to 10 s).
    pub fn restart(&mut self) {
        self.stop();
        let end = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("rebinding {} failed: {e}", self.addr),
            }
        };
        self.run(listener);
    }

    fn run(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let kind = self.kind;
        let thread = std::thread::Builder::new()
            .name(format!("otlp-receiver-{kind:?}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    match kind {
                        Kind::Grpc => {
                            let serve = tonic::transport::Server::builder()
                                .add_service(
                                    TraceServiceServer::new(GrpcSvc(Arc::clone(&shared)))
                                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                                )
                                .add_service(
                                    MetricsServiceServer::new(GrpcSvc(Arc::clone(&shared)))
                                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                                )
                                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(
                                    listener,
                                ));
                            tokio::select! {
                                _ = serve => {}
                                _ = stopped => {}
                            }
                        }
                        Kind::Http => {
                            tokio::select! {
                                _ = http_accept_loop(listener, shared) => {}
                                _ = stopped => {}
                            }
                        }
                    }
                });
                // Dropping the runtime drops every connection task: connections are cut.
                drop(rt);
            })
            .unwrap();
        self.running = Some(Running { stop, thread });
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

struct GrpcSvc(Arc<Shared>);

fn grpc_headers(md: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    md.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn grpc_status(reply: &Reply) -> Option<tonic::Status> {
    use dwcp_telemetry::export::otlp::transport::rpc;
    let status = |code: tonic::Code, delay: Option<Duration>| {
        let msg = format!("scripted {code:?}");
        match delay {
            None => tonic::Status::new(code, msg),
            Some(d) => {
                let info = rpc::RetryInfo {
                    retry_delay: Some(rpc::ProtoDuration {
                        seconds: d.as_secs() as i64,
                        nanos: d.subsec_nanos() as i32,
                    }),
                };
                let details = rpc::RpcStatus {
                    code: code as i32,
                    message: msg.clone(),
                    details: vec![rpc::Any {
                        type_url: rpc::RETRY_INFO_TYPE_URL.to_owned(),
                        value: info.encode_to_vec(),
                    }],
                };
                tonic::Status::with_details(code, msg, details.encode_to_vec().into())
            }
        }
    };
    match reply {
        Reply::Grpc { code, retry_delay } => Some(status(*code, *retry_delay)),
        Reply::Http { status: s, .. } => Some(status(
            match s {
                429 => tonic::Code::ResourceExhausted,
                502..=504 => tonic::Code::Unavailable,
                400 => tonic::Code::InvalidArgument,
                _ => tonic::Code::Internal,
            },
            None,
        )),
        _ => None,
    }
}

#[tonic::async_trait]
impl TraceService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = grpc_headers(request.metadata());
        let reply = self.0.next_reply();
        self.0.record(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export".to_owned(),
            headers,
            Payload::Traces(request.into_inner()),
            reply.clone(),
        );
        if let Reply::Delay(d) = &reply {
            tokio::time::sleep(*d).await;
        }
        if let Some(status) = grpc_status(&reply) {
            return Err(status);
        }
        let partial_success = match reply {
            Reply::PartialSuccess { rejected, message } => Some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            }),
            _ => None,
        };
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcSvc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = grpc_headers(request.metadata());
        let reply = self.0.next_reply();
        self.0.record(
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export".to_owned(),
            headers,
            Payload::Metrics(request.into_inner()),
            reply.clone(),
        );
        if let Reply::Delay(d) = &reply {
            tokio::time::sleep(*d).await;
        }
        if let Some(status) = grpc_status(&reply) {
            return Err(status);
        }
        let partial_success = match reply {
            Reply::PartialSuccess { rejected, message } => Some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
            _ => None,
        };
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success,
        }))
    }
}

async fn http_accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(http_handle(req, &shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn response(status: u16, body: Vec<u8>) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn http_handle(
    req: hyper::Request<Incoming>,
    shared: &Shared,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let method_ok = req.method() == hyper::Method::POST;
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return response(400, Vec::new()),
    };
    let body = if gzip {
        let mut out = Vec::new();
        match flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut out) {
            Ok(_) => out,
            Err(e) => {
                shared.record(
                    path,
                    headers,
                    Payload::Undecodable(format!("gzip: {e}")),
                    Reply::http(400, None),
                );
                return response(400, Vec::new());
            }
        }
    } else {
        body
    };
    if !method_ok {
        return response(405, Vec::new());
    }
    let payload = match path.as_str() {
        "/v1/traces" => match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(r) => Payload::Traces(r),
            Err(e) => Payload::Undecodable(format!("traces: {e}")),
        },
        "/v1/metrics" => match ExportMetricsServiceRequest::decode(body.as_slice()) {
            Ok(r) => Payload::Metrics(r),
            Err(e) => Payload::Undecodable(format!("metrics: {e}")),
        },
        _ => {
            shared.record(
                path,
                headers,
                Payload::Undecodable("unknown path".into()),
                Reply::http(404, None),
            );
            return response(404, Vec::new());
        }
    };
    if matches!(payload, Payload::Undecodable(_)) {
        shared.record(path, headers, payload, Reply::http(400, None));
        return response(400, Vec::new());
    }
    let is_traces = matches!(payload, Payload::Traces(_));
    let reply = shared.next_reply();
    shared.record(path, headers, payload, reply.clone());
    match reply {
        Reply::Delay(d) => {
            tokio::time::sleep(d).await;
            response(200, Vec::new())
        }
        Reply::Ok => response(200, Vec::new()),
        Reply::PartialSuccess { rejected, message } => {
            let body = if is_traces {
                ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: message,
                    }),
                }
                .encode_to_vec()
            } else {
                ExportMetricsServiceResponse {
                    partial_success: Some(ExportMetricsPartialSuccess {
                        rejected_data_points: rejected,
                        error_message: message,
                    }),
                }
                .encode_to_vec()
            };
            response(200, body)
        }
        Reply::Http {
            status,
            retry_after,
        } => {
            let body = dwcp_telemetry::export::otlp::transport::rpc::RpcStatus {
                code: 3,
                message: format!("scripted HTTP {status}"),
                details: vec![],
            }
            .encode_to_vec();
            let mut r = response(status, body);
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Reply::Grpc { .. } => response(503, Vec::new()),
    }
}

/// The string value of attribute `key`, if it is a string.
pub fn attr_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}

/// The value of attribute `key`.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// Waits until `cond` holds or `deadline` passes; returns whether it held. For conditions
/// nothing signals, such as a registry's counters or what a receiver has accepted: it checks
/// every 20 ms, and the deadline, not the period, bounds the wait.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The crate's span exporter, sending to `endpoint` over `kind`'s protocol, with
/// `attempt_timeout` per request, `batch`, `resource`, self-metrics in `reg`, and a short
/// retry backoff (20 ms doubling to 200 ms) so that the tests' retries come quickly.
pub fn span_exporter(
    kind: Kind,
    endpoint: String,
    attempt_timeout: Duration,
    batch: dwcp_telemetry::export::otlp::config::BatchConfig,
    resource: dwcp_telemetry::export::otlp::config::ResourceConfig,
    reg: &dwcp_telemetry::Registry,
) -> dwcp_telemetry::export::otlp::OtlpSpanExporter {
    use dwcp_telemetry::export::otlp::config::{ExporterConfig, Protocol, Signal};
    use dwcp_telemetry::export::otlp::transport::RetryPolicy;
    let protocol = match kind {
        Kind::Grpc => Protocol::Grpc,
        Kind::Http => Protocol::HttpProtobuf,
    };
    dwcp_telemetry::export::otlp::OtlpSpanExporter::builder()
        .exporter_config(
            ExporterConfig::builder(Signal::Traces)
                .protocol(protocol)
                .endpoint(endpoint)
                .timeout(attempt_timeout)
                .build()
                .unwrap(),
        )
        .batch_config(batch)
        .resource(resource)
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            multiplier: 2.0,
        })
        .registry(reg)
        .build()
        .unwrap()
}

/// The value of counter `name{labels}` in `registry` (0 when not registered).
pub fn counter(registry: &dwcp_telemetry::Registry, name: &str, labels: &[&str]) -> u64 {
    registry
        .existing_counter(name)
        .map_or(0, |f| f.with_labels_or_overflow(labels).get())
}
