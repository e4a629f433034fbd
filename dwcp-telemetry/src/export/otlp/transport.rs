//! Signal-generic OTLP sending over gRPC (tonic, the clients generated in
//! `opentelemetry-proto`) and HTTP/protobuf (hyper 1), with the spec's retry rules.
//!
//! A [`Transport`] sends one export request (an [`ExportTraceServiceRequest`] or an
//! [`ExportMetricsServiceRequest`]) and reports what became of it as an [`ExportResult`]:
//!
//! - **Retried** with exponential backoff and jitter, until the deadline given to
//!   [`Transport::send`]: gRPC `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`,
//!   `UNAVAILABLE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED` only when the status carries a
//!   `google.rpc.RetryInfo`; HTTP 429, 502, 503, 504; connection failures and timeouts. A
//!   server-given delay (`RetryInfo.retry_delay`, HTTP `Retry-After` in seconds or as an
//!   HTTP-date) replaces the backoff; one that would pass the deadline ends the retries.
//! - **Not retried, reported**: every other status (HTTP 400, gRPC `INVALID_ARGUMENT`, ...) is
//!   [`ExportOutcome::Rejected`]; a `partial_success` with rejected items is
//!   [`ExportOutcome::PartialSuccess`].
//!
//! Every outcome is counted in the registry's self-metrics:
//!
//! | metric | labels | counts |
//! | --- | --- | --- |
//! | `dwcp_telemetry_otlp_exports_total` | `signal`, `outcome` (`success`, `partial_success`, `rejected`, `failed`) | export requests, by final outcome |
//! | `dwcp_telemetry_otlp_retries_total` | `signal` | retried attempts |
//! | `dwcp_telemetry_otlp_exported_items_total` | `signal` | spans / data points the collector accepted |
//! | `dwcp_telemetry_otlp_rejected_items_total` | `signal` | spans / data points a `partial_success` rejected |
//! | `dwcp_telemetry_otlp_dropped_total` | `signal`, `reason` (`queue_full`, `export_failed`, `export_rejected`, `exporter_shutdown`) | spans / data points dropped on our side |
//!
//! The transport runs on tokio: create it and call [`Transport::send`] inside a tokio runtime
//! (the span exporter runs its own on a background thread, so a dead, slow or refusing
//! collector never blocks the code that records).
//!
//! HTTP uses hyper 1's client through hyper-util's pooled `client::legacy::Client` (HTTP/1.1):
//! the same hyper the `/metrics` server already uses, no second HTTP stack. TLS is not
//! included (see [`super::config::OtlpConfigError::Tls`]).

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    metrics_service_client::MetricsServiceClient, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    trace_service_client::TraceServiceClient, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::config::{Compression, ExporterConfig, OtlpConfigError, Protocol, Signal};
use crate::{Counter, Registry};

/// Largest response body read from a collector (a response is a few bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The `google.rpc` wire types used in OTLP error responses: the `Status` an OTLP/HTTP
/// collector returns in a failed response's body (and gRPC's `grpc-status-details-bin`), and
/// the `RetryInfo` detail that makes `RESOURCE_EXHAUSTED` retryable.
pub mod rpc {
    /// `google.rpc.Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcStatus {
        /// The gRPC status code.
        #[prost(int32, tag = "1")]
        pub code: i32,
        /// A developer-facing message.
        #[prost(string, tag = "2")]
        pub message: String,
        /// Typed details, such as a [`RetryInfo`].
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        /// The type URL, such as [`RETRY_INFO_TYPE_URL`].
        #[prost(string, tag = "1")]
        pub type_url: String,
        /// The encoded message.
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`: how long the client should wait before retrying.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        /// The delay.
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<ProtoDuration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct ProtoDuration {
        /// Whole seconds.
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        /// Nanoseconds past the seconds.
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    /// The `Any.type_url` of a [`RetryInfo`].
    pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

    impl RpcStatus {
        /// The `RetryInfo` delay among the details, if any (negative parts count as 0).
        pub fn retry_delay(&self) -> Option<std::time::Duration> {
            self.details
                .iter()
                .filter(|d| d.type_url == RETRY_INFO_TYPE_URL)
                .find_map(|d| {
                    let info = <RetryInfo as prost::Message>::decode(d.value.as_slice()).ok()?;
                    let d = info.retry_delay.unwrap_or_default();
                    Some(std::time::Duration::new(
                        d.seconds.max(0) as u64,
                        d.nanos.clamp(0, 999_999_999) as u32,
                    ))
                })
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ExportTraceServiceRequest {}
    impl Sealed for super::ExportMetricsServiceRequest {}
}

/// A boxed gRPC export call: `(rejected items, message)` of the response's `partial_success`.
pub type GrpcCall =
    Pin<Box<dyn Future<Output = Result<(i64, String), tonic::Status>> + Send + 'static>>;

/// An OTLP export request: [`ExportTraceServiceRequest`] or [`ExportMetricsServiceRequest`].
/// Sealed.
pub trait OtlpRequest: Message + Default + Clone + Send + Sync + 'static + sealed::Sealed {
    /// The signal this request carries.
    const SIGNAL: Signal;
    /// Spans or data points in the request.
    fn item_count(&self) -> u64;
    /// Sends it over a gRPC channel.
    fn grpc_export(
        channel: Channel,
        compression: Compression,
        request: tonic::Request<Self>,
    ) -> GrpcCall;
    /// The `partial_success` of an HTTP response body: `(rejected items, message)`; `None` when
    /// the body is not a response of this signal.
    fn decode_partial(body: &[u8]) -> Option<(i64, String)>;
}

impl OtlpRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;

    fn item_count(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }

    fn grpc_export(
        channel: Channel,
        compression: Compression,
        request: tonic::Request<Self>,
    ) -> GrpcCall {
        Box::pin(async move {
            let mut client = TraceServiceClient::new(channel);
            if compression == Compression::Gzip {
                client = client.send_compressed(CompressionEncoding::Gzip);
            }
            let resp = client.export(request).await?.into_inner();
            Ok(resp
                .partial_success
                .map(|p| (p.rejected_spans, p.error_message))
                .unwrap_or_default())
        })
    }

    fn decode_partial(body: &[u8]) -> Option<(i64, String)> {
        let r = ExportTraceServiceResponse::decode(body).ok()?;
        Some(
            r.partial_success
                .map(|p| (p.rejected_spans, p.error_message))
                .unwrap_or_default(),
        )
    }
}

impl OtlpRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;

    fn item_count(&self) -> u64 {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len() as u64,
                Some(Data::Sum(s)) => s.data_points.len() as u64,
                Some(Data::Histogram(h)) => h.data_points.len() as u64,
                Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
                Some(Data::Summary(s)) => s.data_points.len() as u64,
                None => 0,
            })
            .sum()
    }

    fn grpc_export(
        channel: Channel,
        compression: Compression,
        request: tonic::Request<Self>,
    ) -> GrpcCall {
        Box::pin(async move {
            let mut client = MetricsServiceClient::new(channel);
            if compression == Compression::Gzip {
                client = client.send_compressed(CompressionEncoding::Gzip);
            }
            let resp = client.export(request).await?.into_inner();
            Ok(resp
                .partial_success
                .map(|p| (p.rejected_data_points, p.error_message))
                .unwrap_or_default())
        })
    }

    fn decode_partial(body: &[u8]) -> Option<(i64, String)> {
        let r = ExportMetricsServiceResponse::decode(body).ok()?;
        Some(
            r.partial_success
                .map(|p| (p.rejected_data_points, p.error_message))
                .unwrap_or_default(),
        )
    }
}

/// Backoff between retries: exponential from `initial` by `multiplier`, capped at `max`, each
/// delay drawn uniformly from `[delay / 2, delay]` (jitter).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The first backoff (default 250 ms).
    pub initial_backoff: Duration,
    /// The largest backoff (default 5 s).
    pub max_backoff: Duration,
    /// Growth per retry (default 2).
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The jittered backoff before retry number `retry` (0-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let mult = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let base = self.initial_backoff.as_secs_f64() * mult.powi(retry.min(64) as i32);
        let capped = base.min(self.max_backoff.as_secs_f64()).max(0.0);
        let r = (u64::from_be_bytes(crate::propagation::SpanId::random().to_bytes()) >> 11) as f64
            / (1u64 << 53) as f64;
        Duration::try_from_secs_f64(capped * (0.5 + 0.5 * r)).unwrap_or(self.max_backoff)
    }
}

/// The final outcome of one export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportOutcome {
    /// Everything was accepted.
    Success,
    /// Accepted, but the collector rejected `rejected` items (not retried).
    PartialSuccess {
        /// Spans or data points rejected.
        rejected: u64,
        /// The collector's message.
        message: String,
    },
    /// A non-retryable error (HTTP 400, gRPC `INVALID_ARGUMENT`, ...): the data is dropped.
    Rejected {
        /// What the collector said.
        reason: String,
    },
    /// Retries ran out of time (or the failure was not an answer from the collector): the data
    /// is dropped.
    Failed {
        /// The last error.
        reason: String,
    },
}

impl ExportOutcome {
    /// The self-metric's `outcome` label value.
    pub fn label(&self) -> &'static str {
        match self {
            ExportOutcome::Success => "success",
            ExportOutcome::PartialSuccess { .. } => "partial_success",
            ExportOutcome::Rejected { .. } => "rejected",
            ExportOutcome::Failed { .. } => "failed",
        }
    }

    /// Whether the collector took the data (fully or partly).
    pub fn is_delivered(&self) -> bool {
        matches!(
            self,
            ExportOutcome::Success | ExportOutcome::PartialSuccess { .. }
        )
    }
}

/// What [`Transport::send`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportResult {
    /// The final outcome.
    pub outcome: ExportOutcome,
    /// Attempts made (1 + retries).
    pub attempts: u32,
}

/// One attempt's result.
enum Attempt {
    Done(ExportOutcome),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

/// The self-metric handles of one signal.
#[derive(Clone)]
pub(crate) struct SelfMetrics {
    exports: [Counter; 4],
    retries: Counter,
    exported_items: Counter,
    rejected_items: Counter,
    dropped_queue_full: Counter,
    dropped_failed: Counter,
    dropped_rejected: Counter,
    dropped_shutdown: Counter,
}

const EXPORTS: &str = "dwcp_telemetry_otlp_exports_total";
const DROPPED: &str = "dwcp_telemetry_otlp_dropped_total";

impl SelfMetrics {
    pub(crate) fn new(registry: &Registry, signal: Signal) -> Self {
        let s = signal.as_str();
        let exports = registry
            .counter(
                EXPORTS,
                "OTLP export requests, by signal and final outcome.",
            )
            .dynamic_labels(["signal", "outcome"])
            .library_owned()
            .register();
        let export = |outcome: &str| match &exports {
            Ok(f) => f.with_labels_or_overflow(&[s, outcome]),
            Err(_) => Counter::noop(),
        };
        let dropped = registry
            .counter(
                DROPPED,
                "Spans or data points dropped before reaching the collector, by signal and reason.",
            )
            .dynamic_labels(["signal", "reason"])
            .library_owned()
            .register();
        let drop = |reason: &str| match &dropped {
            Ok(f) => f.with_labels_or_overflow(&[s, reason]),
            Err(_) => Counter::noop(),
        };
        Self {
            exports: [
                export("success"),
                export("partial_success"),
                export("rejected"),
                export("failed"),
            ],
            retries: registry.self_counter(
                "dwcp_telemetry_otlp_retries_total",
                "OTLP export attempts retried, by signal.",
                "signal",
                s,
            ),
            exported_items: registry.self_counter(
                "dwcp_telemetry_otlp_exported_items_total",
                "Spans or data points the collector accepted, by signal.",
                "signal",
                s,
            ),
            rejected_items: registry.self_counter(
                "dwcp_telemetry_otlp_rejected_items_total",
                "Spans or data points the collector rejected in a partial_success, by signal.",
                "signal",
                s,
            ),
            dropped_queue_full: drop("queue_full"),
            dropped_failed: drop("export_failed"),
            dropped_rejected: drop("export_rejected"),
            dropped_shutdown: drop("exporter_shutdown"),
        }
    }

    /// The `(queue_full, exporter_shutdown)` drop counters, for a queue in front of the
    /// transport.
    pub(crate) fn queue_counters(&self) -> (Counter, Counter) {
        (
            self.dropped_queue_full.clone(),
            self.dropped_shutdown.clone(),
        )
    }

    /// Counts `n` items dropped because a queue was full.
    pub(crate) fn queue_full(&self, n: u64) {
        self.dropped_queue_full.inc_by(n);
    }

    fn record(&self, outcome: &ExportOutcome, items: u64) {
        let i = match outcome {
            ExportOutcome::Success => 0,
            ExportOutcome::PartialSuccess { .. } => 1,
            ExportOutcome::Rejected { .. } => 2,
            ExportOutcome::Failed { .. } => 3,
        };
        self.exports[i].inc();
        match outcome {
            ExportOutcome::Success => self.exported_items.inc_by(items),
            ExportOutcome::PartialSuccess { rejected, .. } => {
                let r = (*rejected).min(items);
                self.rejected_items.inc_by(r);
                self.exported_items.inc_by(items - r);
            }
            ExportOutcome::Rejected { .. } => self.dropped_rejected.inc_by(items),
            ExportOutcome::Failed { .. } => self.dropped_failed.inc_by(items),
        }
    }
}

enum Inner {
    Grpc(Channel),
    Http {
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        uri: hyper::Uri,
    },
}

/// Sends OTLP export requests of one signal to one collector. Cheap to share (`&self`
/// methods); create it inside a tokio runtime.
pub struct Transport {
    config: ExporterConfig,
    retry: RetryPolicy,
    inner: Inner,
    headers: HeaderMap,
    metrics: SelfMetrics,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.config)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `config`, counting into `registry`'s self-metrics. Connects lazily
    /// (a collector that is down is not an error here). Must be called inside a tokio runtime.
    pub fn new(config: ExporterConfig, registry: &Registry) -> Result<Self, OtlpConfigError> {
        Self::with_retry(config, RetryPolicy::default(), registry)
    }

    /// [`Transport::new`] with a retry policy.
    pub fn with_retry(
        config: ExporterConfig,
        retry: RetryPolicy,
        registry: &Registry,
    ) -> Result<Self, OtlpConfigError> {
        let bad = |expected| OtlpConfigError::Invalid {
            var: "endpoint".to_owned(),
            value: config.endpoint().to_owned(),
            expected,
        };
        let mut headers = HeaderMap::new();
        for (k, v) in config.headers() {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("bad header"))?;
            let value = HeaderValue::from_str(v).map_err(|_| bad("bad header"))?;
            headers.append(name, value);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(OtlpConfigError::Invalid {
                var: "Transport::new".to_owned(),
                value: "called outside a tokio runtime".to_owned(),
                expected: "call it inside a tokio runtime (its connections run on it)",
            });
        }
        let inner = match config.protocol() {
            Protocol::Grpc => {
                let endpoint =
                    tonic::transport::Endpoint::from_shared(config.endpoint().to_owned())
                        .map_err(|_| bad("not a valid gRPC endpoint URL"))?
                        .connect_timeout(config.timeout())
                        .timeout(config.timeout())
                        .user_agent(concat!("dwcp-telemetry/", env!("CARGO_PKG_VERSION")))
                        .map_err(|_| bad("bad user agent"))?;
                Inner::Grpc(endpoint.connect_lazy())
            }
            Protocol::HttpProtobuf => {
                let uri = config
                    .endpoint()
                    .parse::<hyper::Uri>()
                    .map_err(|_| bad("not a valid URL"))?;
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(config.timeout()));
                connector.set_nodelay(true);
                let client = Client::builder(TokioExecutor::new()).build(connector);
                Inner::Http {
                    client: Box::new(client),
                    uri,
                }
            }
        };
        let metrics = SelfMetrics::new(registry, config.signal());
        Ok(Self {
            config,
            retry,
            inner,
            headers,
            metrics,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ExporterConfig {
        &self.config
    }

    /// Counts `n` items dropped on the caller's side because its queue was full
    /// (`dwcp_telemetry_otlp_dropped_total{reason="queue_full"}`).
    pub fn count_queue_full(&self, n: u64) {
        self.metrics.queue_full(n);
    }

    /// Sends `request`, retrying per the OTLP spec until `deadline` has passed since the call,
    /// and counts the outcome in the self-metrics. Never panics; a failure is a value.
    pub async fn send<R: OtlpRequest>(&self, request: &R, deadline: Duration) -> ExportResult {
        let items = request.item_count();
        let start = Instant::now();
        let mut attempts = 0u32;
        let http_body = match &self.inner {
            Inner::Http { .. } => Some(self.http_body(request)),
            Inner::Grpc(_) => None,
        };
        let outcome = loop {
            attempts += 1;
            let remaining = deadline.saturating_sub(start.elapsed());
            if remaining.is_zero() {
                break ExportOutcome::Failed {
                    reason: "export deadline passed before the first attempt".to_owned(),
                };
            }
            let per_try = self.config.timeout().min(remaining);
            let attempt = match (&self.inner, &http_body) {
                (Inner::Grpc(channel), _) => self.grpc_attempt(channel, request, per_try).await,
                (Inner::Http { client, uri }, body) => {
                    let body = body.clone().unwrap_or_default();
                    self.http_attempt::<R>(client, uri, body, per_try).await
                }
            };
            match attempt {
                Attempt::Done(o) => break o,
                Attempt::Retry { reason, after } => {
                    let wait = after.unwrap_or_else(|| self.retry.backoff(attempts - 1));
                    let elapsed = start.elapsed();
                    if elapsed.saturating_add(wait) >= deadline {
                        break ExportOutcome::Failed {
                            reason: format!(
                                "{reason}; gave up after {attempts} attempt(s): the next retry (in {wait:?}) would pass the {deadline:?} export deadline"
                            ),
                        };
                    }
                    self.metrics.retries.inc();
                    tracing::debug!(signal = %R::SIGNAL, %reason, ?wait, "OTLP export: retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        };
        self.metrics.record(&outcome, items);
        match &outcome {
            ExportOutcome::Success => {}
            ExportOutcome::PartialSuccess { rejected, message } => {
                tracing::warn!(signal = %R::SIGNAL, rejected, %message, "OTLP export: the collector rejected part of the data");
            }
            ExportOutcome::Rejected { reason } => {
                tracing::warn!(signal = %R::SIGNAL, items, %reason, "OTLP export rejected (not retried); data dropped");
            }
            ExportOutcome::Failed { reason } => {
                tracing::warn!(signal = %R::SIGNAL, items, %reason, "OTLP export failed; data dropped");
            }
        }
        ExportResult { outcome, attempts }
    }

    fn http_body<R: OtlpRequest>(&self, request: &R) -> Bytes {
        let raw = request.encode_to_vec();
        match self.config.compression() {
            Compression::None => Bytes::from(raw),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(raw.len() / 2 + 64),
                    flate2::Compression::default(),
                );
                // Writing into a Vec cannot fail.
                match enc.write_all(&raw).and_then(|()| enc.finish()) {
                    Ok(v) => Bytes::from(v),
                    Err(_) => Bytes::from(raw),
                }
            }
        }
    }

    async fn grpc_attempt<R: OtlpRequest>(
        &self,
        channel: &Channel,
        request: &R,
        per_try: Duration,
    ) -> Attempt {
        let mut req = tonic::Request::new(request.clone());
        req.set_timeout(per_try);
        for (k, v) in &self.headers {
            if let (Ok(key), Ok(val)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_str().as_bytes()),
                tonic::metadata::MetadataValue::try_from(v.as_bytes()),
            ) {
                req.metadata_mut().append(key, val);
            }
        }
        let call = R::grpc_export(channel.clone(), self.config.compression(), req);
        match tokio::time::timeout(per_try, call).await {
            Err(_) => Attempt::Retry {
                reason: format!("no answer within {per_try:?}"),
                after: None,
            },
            Ok(Ok((rejected, message))) => Attempt::Done(partial(rejected, message)),
            Ok(Err(status)) => classify_grpc(&status),
        }
    }

    async fn http_attempt<R: OtlpRequest>(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        uri: &hyper::Uri,
        body: Bytes,
        per_try: Duration,
    ) -> Attempt {
        let mut builder = hyper::Request::post(uri.clone())
            .header(hyper::header::CONTENT_TYPE, "application/x-protobuf")
            .header(
                hyper::header::USER_AGENT,
                concat!("dwcp-telemetry/", env!("CARGO_PKG_VERSION")),
            );
        if self.config.compression() == Compression::Gzip {
            builder = builder.header(hyper::header::CONTENT_ENCODING, "gzip");
        }
        if let Some(h) = builder.headers_mut() {
            for (k, v) in &self.headers {
                h.append(k.clone(), v.clone());
            }
        }
        let req = match builder.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Done(ExportOutcome::Rejected {
                    reason: format!("could not build the request: {e}"),
                })
            }
        };
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                msg
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Ok::<_, String>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(per_try, exchange).await {
            Err(_) => {
                return Attempt::Retry {
                    reason: format!("no answer within {per_try:?}"),
                    after: None,
                }
            }
            Ok(Err(e)) => {
                return Attempt::Retry {
                    reason: format!("connection failed: {e}"),
                    after: None,
                }
            }
            Ok(Ok(x)) => x,
        };
        let status = parts.status.as_u16();
        if parts.status.is_success() {
            let (rejected, message) = R::decode_partial(&body).unwrap_or_default();
            return Attempt::Done(partial(rejected, message));
        }
        let detail = describe_http_body(&body);
        let reason = format!("HTTP {status}{detail}");
        match status {
            429 | 502 | 503 | 504 => Attempt::Retry {
                reason,
                after: parts
                    .headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now())),
            },
            _ => Attempt::Done(ExportOutcome::Rejected { reason }),
        }
    }
}

fn partial(rejected: i64, message: String) -> ExportOutcome {
    if rejected > 0 || !message.is_empty() {
        ExportOutcome::PartialSuccess {
            rejected: rejected.max(0) as u64,
            message,
        }
    } else {
        ExportOutcome::Success
    }
}

/// `": <message>"` from a `google.rpc.Status` body, else a short printable prefix of the body.
fn describe_http_body(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if let Ok(s) = rpc::RpcStatus::decode(body) {
        if !s.message.is_empty() {
            return format!(": {}", truncate(&s.message));
        }
    }
    match std::str::from_utf8(body) {
        Ok(s) if !s.trim().is_empty() => format!(": {}", truncate(s.trim())),
        _ => String::new(),
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 256;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The OTLP/gRPC retry rule.
fn classify_grpc(status: &tonic::Status) -> Attempt {
    use tonic::Code;
    let reason = format!("gRPC {:?}: {}", status.code(), truncate(status.message()));
    let details = if status.details().is_empty() {
        None
    } else {
        rpc::RpcStatus::decode(status.details()).ok()
    };
    let retry_delay = details.as_ref().and_then(rpc::RpcStatus::retry_delay);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Attempt::Retry {
            reason,
            after: retry_delay,
        },
        Code::ResourceExhausted if retry_delay.is_some() => Attempt::Retry {
            reason,
            after: retry_delay,
        },
        // A failure below gRPC (connection reset, protocol error) surfaces as UNKNOWN with a
        // transport error as its source: a transient network error, retried.
        Code::Unknown if is_transport_error(status) => Attempt::Retry {
            reason,
            after: None,
        },
        _ => Attempt::Done(ExportOutcome::Rejected { reason }),
    }
}

fn is_transport_error(status: &tonic::Status) -> bool {
    let mut src = std::error::Error::source(status);
    while let Some(e) = src {
        if e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        src = e.source();
    }
    status.message().starts_with("transport error")
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (a date in the past is 0).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            multiplier: 2.0,
        };
        for _ in 0..100 {
            let b0 = p.backoff(0);
            assert!(b0 >= Duration::from_millis(50) && b0 <= Duration::from_millis(100));
            let b2 = p.backoff(2);
            assert!(b2 >= Duration::from_millis(200) && b2 <= Duration::from_millis(400));
            let b20 = p.backoff(20);
            assert!(b20 >= Duration::from_millis(500) && b20 <= Duration::from_millis(1000));
            assert!(p.backoff(u32::MAX) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn grpc_retry_rule() {
        use tonic::Code;
        let retried = |s: tonic::Status| matches!(classify_grpc(&s), Attempt::Retry { .. });
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert!(retried(tonic::Status::new(code, "x")), "{code:?}");
        }
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            assert!(!retried(tonic::Status::new(code, "x")), "{code:?}");
        }
        let info = rpc::RetryInfo {
            retry_delay: Some(rpc::ProtoDuration {
                seconds: 1,
                nanos: 500_000_000,
            }),
        };
        let details = rpc::RpcStatus {
            code: Code::ResourceExhausted as i32,
            message: "slow down".into(),
            details: vec![rpc::Any {
                type_url: rpc::RETRY_INFO_TYPE_URL.into(),
                value: info.encode_to_vec(),
            }],
        };
        let s = tonic::Status::with_details(
            Code::ResourceExhausted,
            "slow down",
            details.encode_to_vec().into(),
        );
        match classify_grpc(&s) {
            Attempt::Retry { after, .. } => assert_eq!(after, Some(Duration::from_millis(1500))),
            Attempt::Done(o) => panic!("not retried: {o:?}"),
        }
    }

    #[test]
    fn http_error_bodies_are_described() {
        let s = rpc::RpcStatus {
            code: 3,
            message: "bad span".into(),
            details: vec![],
        };
        assert_eq!(describe_http_body(&s.encode_to_vec()), ": bad span");
        assert_eq!(describe_http_body(b"plain text"), ": plain text");
        assert_eq!(describe_http_body(&[0xff, 0x00, 0x13]), "");
        assert_eq!(describe_http_body(b""), "");
    }
}
