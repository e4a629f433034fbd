//! [`OtlpSpanExporter`]: a [`SpanSink`] that batches finished spans and sends them over OTLP.
//!
//! [`SpanSink::submit`] moves the span into a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default
//! 2048) with a non-blocking `try_send`: when the queue is full the span is dropped and counted
//! in `dwcp_telemetry_otlp_dropped_total{signal="traces",reason="queue_full"}`. A background
//! thread (`dwcp-otlp-traces`, running its own single-threaded tokio runtime) takes spans off
//! the queue, and sends a batch when it holds `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans (default
//! 512) or every `OTEL_BSP_SCHEDULE_DELAY` (default 5 s), through the [`Transport`] with its
//! retry rules, each batch's retries bounded by `OTEL_BSP_EXPORT_TIMEOUT` (default 30 s). While
//! a batch is being sent (or retried against a dead collector), new spans wait in the queue;
//! when it is full they are dropped and counted: the caller never waits.
//!
//! ```
//! use dwcp_telemetry::export::otlp::init_tracing_from_lookup;
//!
//! // In a service: `let _guard = dwcp_telemetry::export::otlp::init_tracing_from_env()?;`
//! // With OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) set, that installs the exporter
//! // as the process's span sink and returns a guard that flushes on drop. With nothing
//! // configured it installs nothing, and spans stay off:
//! let guard = init_tracing_from_lookup(|_| None, dwcp_telemetry::global())?;
//! assert!(guard.is_none());
//! assert!(dwcp_telemetry::trace::sink().is_none());
//! # Ok::<(), dwcp_telemetry::export::otlp::config::OtlpConfigError>(())
//! ```

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use tokio::sync::mpsc;

use super::config::{
    endpoint_configured, BatchConfig, ExporterConfig, OtlpConfigError, ResourceConfig, Signal,
};
use super::transport::{RetryPolicy, SelfMetrics, Transport};
use crate::batch_trigger::BatchTrigger;
use crate::trace::{AttrValue, SpanEvent, SpanKind, SpanRecord, SpanSink, SpanStatus};
use crate::{Counter, Registry};

/// The longest schedule delay honoured (a larger one would overflow the timer).
const MAX_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The instrumentation scope name on exported spans.
pub const SCOPE_NAME: &str = "dwcp-telemetry";

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attr_value(v: &AttrValue) -> any_value::Value {
    match v {
        AttrValue::Str(s) => any_value::Value::StringValue(s.to_string()),
        AttrValue::I64(i) => any_value::Value::IntValue(*i),
        AttrValue::F64(f) => any_value::Value::DoubleValue(*f),
        AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
        // `AttrValue` is non-exhaustive: a future variant is sent as its debug form.
        #[allow(unreachable_patterns)]
        other => any_value::Value::StringValue(format!("{other:?}")),
    }
}

fn attributes(attrs: &[(Cow<'static, str>, AttrValue)]) -> Vec<KeyValue> {
    attrs.iter().map(|(k, v)| kv(k, attr_value(v))).collect()
}

fn event(e: &SpanEvent) -> span::Event {
    span::Event {
        time_unix_nano: e.time_unix_nanos,
        name: e.name.to_string(),
        attributes: attributes(&e.attributes),
        dropped_attributes_count: 0,
    }
}

/// Converts one finished span to its OTLP form: ids, parent, trace flags (the low 8 bits of
/// `flags`), `trace_state`, kind, times, status, attributes and events.
pub fn to_proto_span(s: &SpanRecord) -> Span {
    let kind = match s.kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
        #[allow(unreachable_patterns)]
        _ => span::SpanKind::Unspecified,
    };
    let status = match &s.status {
        SpanStatus::Unset => None,
        SpanStatus::Ok => Some(Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        }),
        SpanStatus::Error { message } => Some(Status {
            message: message.to_string(),
            code: status::StatusCode::Error as i32,
        }),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    Span {
        trace_id: s.trace_id.to_bytes().to_vec(),
        span_id: s.span_id.to_bytes().to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_bytes().to_vec())
            .unwrap_or_default(),
        flags: u32::from(s.flags.bits()),
        name: s.name.to_string(),
        kind: kind as i32,
        start_time_unix_nano: s.start_unix_nanos,
        end_time_unix_nano: s.end_unix_nanos.max(s.start_unix_nanos),
        attributes: attributes(&s.attributes),
        dropped_attributes_count: 0,
        events: s.events.iter().map(event).collect(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
    }
}

/// The OTLP resource for `config`, plus the `telemetry.sdk.*` attributes.
pub fn to_proto_resource(config: &ResourceConfig) -> Resource {
    let mut attributes = vec![kv(
        "service.name",
        any_value::Value::StringValue(config.service_name.clone()),
    )];
    attributes.extend(
        config
            .attributes
            .iter()
            .map(|(k, v)| kv(k, any_value::Value::StringValue(v.clone()))),
    );
    for (k, v) in [
        ("telemetry.sdk.name", SCOPE_NAME),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
    ] {
        if !config.attributes.iter().any(|(key, _)| key == k) {
            attributes.push(kv(k, any_value::Value::StringValue(v.to_owned())));
        }
    }
    Resource {
        attributes,
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    }
}

/// One export request for `spans` under `resource`, scope `dwcp-telemetry` + crate version.
pub fn build_request(resource: &Resource, spans: &[SpanRecord]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    attributes: Vec::new(),
                    dropped_attributes_count: 0,
                }),
                spans: spans.iter().map(to_proto_span).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A random `service.instance.id` (a UUID v4 string).
pub(crate) fn instance_id() -> String {
    let mut b = crate::propagation::TraceId::random().to_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

enum Control {
    /// Send everything queued, each export bounded by the duration; reply whether all of it
    /// was delivered.
    Flush(Duration, std_mpsc::SyncSender<bool>),
    /// Flush, then stop the worker.
    Shutdown(Duration, std_mpsc::SyncSender<bool>),
}

/// A [`SpanSink`] exporting over OTLP in batches (see the [module docs](self)).
pub struct OtlpSpanExporter {
    queue: std_mpsc::SyncSender<SpanRecord>,
    wake: Arc<Wake>,
    control: mpsc::UnboundedSender<Control>,
    dropped_full: Counter,
    dropped_closed: Counter,
    thread: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
    batch: BatchConfig,
    endpoint: String,
}

impl std::fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSpanExporter")
            .field("endpoint", &self.endpoint)
            .field("batch", &self.batch)
            .field("shut_down", &self.shut_down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Configures an [`OtlpSpanExporter`]. Anything not set is read from the environment.
#[derive(Debug, Default)]
#[must_use = "call .build()"]
pub struct OtlpSpanExporterBuilder {
    exporter: Option<ExporterConfig>,
    batch: Option<BatchConfig>,
    resource: Option<ResourceConfig>,
    retry: Option<RetryPolicy>,
    registry: Option<Registry>,
}

impl OtlpSpanExporterBuilder {
    /// Where and how to send (default: [`ExporterConfig::from_env`] for traces).
    pub fn exporter_config(mut self, config: ExporterConfig) -> Self {
        self.exporter = Some(config);
        self
    }
    /// Queue and batch settings (default: [`BatchConfig::from_env`]).
    pub fn batch_config(mut self, config: BatchConfig) -> Self {
        self.batch = Some(config);
        self
    }
    /// The resource (default: [`ResourceConfig::from_env`]; a malformed
    /// `OTEL_RESOURCE_ATTRIBUTES` is discarded and logged). `service.version` defaults to the
    /// registry's `version` and `service.instance.id` to a random UUID.
    pub fn resource(mut self, resource: ResourceConfig) -> Self {
        self.resource = Some(resource);
        self
    }
    /// The retry backoff (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }
    /// The registry holding the self-metrics (default [`crate::global`]).
    pub fn registry(mut self, registry: &Registry) -> Self {
        self.registry = Some(registry.clone());
        self
    }

    /// Validates the configuration and starts the export thread.
    pub fn build(self) -> Result<OtlpSpanExporter, OtlpConfigError> {
        let exporter = match self.exporter {
            Some(c) => c,
            None => ExporterConfig::from_env(Signal::Traces)?,
        };
        if exporter.signal() != Signal::Traces {
            return Err(OtlpConfigError::Invalid {
                var: "exporter_config".to_owned(),
                value: exporter.signal().to_string(),
                expected: "a configuration for Signal::Traces",
            });
        }
        let batch = match self.batch {
            Some(b) => {
                b.validate()?;
                b
            }
            None => BatchConfig::from_env()?,
        };
        let registry = self.registry.unwrap_or_else(|| crate::global().clone());
        let resource = match self.resource {
            Some(r) => r,
            None => {
                let (r, problem) = ResourceConfig::from_env();
                if let Some(p) = problem {
                    tracing::warn!(error = %p, "OTEL_RESOURCE_ATTRIBUTES ignored");
                }
                r
            }
        };
        let mut resource = resource.with_default_attribute("service.instance.id", instance_id());
        if registry.version() != "unknown" && !registry.version().is_empty() {
            resource = resource.with_default_attribute("service.version", registry.version());
        }
        let resource = to_proto_resource(&resource);
        let retry = self.retry.unwrap_or_default();
        let metrics = SelfMetrics::new(&registry, Signal::Traces);
        let (dropped_full, dropped_closed) = metrics.queue_counters();

        let (queue, rx) = std_mpsc::sync_channel(batch.max_queue_size);
        let wake = Arc::new(Wake {
            trigger: BatchTrigger::new(batch.max_export_batch_size),
            notify: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
        });
        let (control, control_rx) = mpsc::unbounded_channel();
        let endpoint = exporter.endpoint().to_owned();
        // The transport needs a runtime to be created in: build both on the export thread and
        // report a construction error back before returning.
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<(), OtlpConfigError>>(1);
        let worker = Worker {
            rx: Some(rx),
            wake: Arc::clone(&wake),
            control: control_rx,
            batch,
            resource,
        };
        let thread = std::thread::Builder::new()
            .name("dwcp-otlp-traces".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(OtlpConfigError::Invalid {
                            var: "runtime".to_owned(),
                            value: e.to_string(),
                            expected: "a tokio runtime for the export thread",
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let transport = match Transport::with_retry(exporter, retry, &registry) {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    worker.run(transport).await;
                });
            })
            .map_err(|e| OtlpConfigError::Invalid {
                var: "thread".to_owned(),
                value: e.to_string(),
                expected: "the export thread to start",
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(OtlpConfigError::Invalid {
                    var: "thread".to_owned(),
                    value: "exited".to_owned(),
                    expected: "the export thread to start",
                });
            }
        }
        Ok(OtlpSpanExporter {
            queue,
            wake,
            control,
            dropped_full,
            dropped_closed,
            thread: Mutex::new(Some(thread)),
            shut_down: AtomicBool::new(false),
            batch,
            endpoint,
        })
    }
}

impl OtlpSpanExporter {
    /// A builder; what is not set comes from the environment.
    pub fn builder() -> OtlpSpanExporterBuilder {
        OtlpSpanExporterBuilder::default()
    }

    /// An exporter configured entirely from the environment, counting into [`crate::global`].
    pub fn from_env() -> Result<Self, OtlpConfigError> {
        Self::builder().build()
    }

    /// The URL spans go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The queue and batch settings.
    pub fn batch_config(&self) -> BatchConfig {
        self.batch
    }

    /// Sends what is queued, waits for the export thread to finish (at most `timeout`) and
    /// stops it. Spans submitted afterwards are dropped and counted
    /// (`reason="exporter_shutdown"`). Returns whether everything queued was delivered.
    /// Calling it again returns `true` at once.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return true;
        }
        let (tx, rx) = std_mpsc::sync_channel(1);
        if self.control.send(Control::Shutdown(timeout, tx)).is_err() {
            return false;
        }
        let ok = rx.recv_timeout(timeout).unwrap_or(false);
        if ok {
            if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = t.join();
            }
        }
        ok
    }
}

impl SpanSink for OtlpSpanExporter {
    fn submit(&self, span: SpanRecord) {
        // Counted before the send, so the export thread never takes more than was counted
        // (see `batch_trigger`).
        self.wake.trigger.reserve();
        match self.queue.try_send(span) {
            Ok(()) => {
                // Wake the export thread once per full batch, not once per span: a wake-up is
                // a syscall when the thread sleeps. Partial batches go on the schedule tick.
                if self.wake.trigger.sent() {
                    self.wake.notify.notify_one();
                }
            }
            Err(e) => {
                self.wake.trigger.cancel();
                match e {
                    std_mpsc::TrySendError::Full(_) => self.dropped_full.inc(),
                    std_mpsc::TrySendError::Disconnected(_) => self.dropped_closed.inc(),
                }
            }
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = std_mpsc::sync_channel(1);
        if self.control.send(Control::Flush(timeout, tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).unwrap_or(false)
    }
}

impl Drop for OtlpSpanExporter {
    fn drop(&mut self) {
        // Tell the export thread to send what is queued and stop (without waiting for it).
        self.wake.closed.store(true, Ordering::Release);
        self.wake.notify.notify_one();
    }
}

/// What the submitting side shares with the export thread.
#[derive(Debug)]
struct Wake {
    /// When to wake the export thread.
    trigger: BatchTrigger,
    /// Woken once per full batch (see `batch_trigger`), or on close.
    notify: tokio::sync::Notify,
    /// The exporter was dropped.
    closed: AtomicBool,
}

struct Worker {
    /// `None` once shut down (dropping it makes later submits fail fast and be counted).
    rx: Option<std_mpsc::Receiver<SpanRecord>>,
    wake: Arc<Wake>,
    control: mpsc::UnboundedReceiver<Control>,
    batch: BatchConfig,
    resource: Resource,
}

impl Worker {
    async fn run(mut self, transport: Transport) {
        let mut tick = tokio::time::interval(
            self.batch
                .schedule_delay
                .clamp(Duration::from_millis(1), MAX_DELAY),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        let mut control_open = true;
        let timeout = self.batch.export_timeout;
        loop {
            tokio::select! {
                biased;
                c = self.control.recv(), if control_open => match c {
                    Some(Control::Flush(t, reply)) => {
                        let ok = self.send_queued(&transport, t, false).await;
                        let _ = reply.send(ok);
                    }
                    Some(Control::Shutdown(t, reply)) => {
                        let ok = self.send_queued(&transport, t, false).await;
                        self.rx = None;
                        let _ = reply.send(ok);
                        return;
                    }
                    None => control_open = false,
                },
                _ = self.wake.notify.notified() => {
                    if self.wake.closed.load(Ordering::Acquire) {
                        self.send_queued(&transport, timeout, false).await;
                        return;
                    }
                    if self.wake.trigger.woke() {
                        self.send_queued(&transport, timeout, true).await;
                    }
                }
                _ = tick.tick() => {
                    self.send_queued(&transport, timeout, false).await;
                }
            }
        }
    }

    /// Takes up to one batch off the queue; also whether a full batch is still counted.
    fn take_batch(&self) -> (Vec<SpanRecord>, bool) {
        let Some(rx) = &self.rx else {
            return (Vec::new(), false);
        };
        let max = self.batch.max_export_batch_size;
        let mut buf = Vec::with_capacity(max.min(self.wake.trigger.pending()));
        while buf.len() < max {
            match rx.try_recv() {
                Ok(s) => buf.push(s),
                Err(_) => break,
            }
        }
        let still_full = self.wake.trigger.taken(buf.len());
        (buf, still_full)
    }

    /// Sends what is queued batch by batch: only full batches when `full_only`, else
    /// everything (spans submitted meanwhile included). Returns whether all was delivered.
    async fn send_queued(
        &self,
        transport: &Transport,
        deadline: Duration,
        full_only: bool,
    ) -> bool {
        let mut ok = true;
        loop {
            let (buf, still_full) = self.take_batch();
            if buf.is_empty() {
                return ok;
            }
            let request = build_request(&self.resource, &buf);
            drop(buf);
            ok &= transport
                .send(&request, deadline)
                .await
                .outcome
                .is_delivered();
            if full_only && !still_full {
                return ok;
            }
        }
    }
}

/// Keeps the exporter installed by [`init_tracing_from_env`]; dropping it uninstalls the
/// sink (if it is still the installed one) and shuts the exporter down, sending what is
/// queued (waiting at most `OTEL_BSP_EXPORT_TIMEOUT`).
#[must_use = "dropping the guard shuts the exporter down"]
#[derive(Debug)]
pub struct TracingGuard {
    exporter: Arc<OtlpSpanExporter>,
}

impl TracingGuard {
    /// The installed exporter.
    pub fn exporter(&self) -> &Arc<OtlpSpanExporter> {
        &self.exporter
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(current) = crate::trace::sink() {
            let ours: Arc<dyn SpanSink> = self.exporter.clone();
            if std::ptr::addr_eq(Arc::as_ptr(&current), Arc::as_ptr(&ours)) {
                crate::trace::uninstall_sink();
            }
        }
        let timeout = self.exporter.batch.export_timeout;
        self.exporter.shutdown(timeout);
    }
}

/// One-call setup: when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// is set (and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`), builds an
/// [`OtlpSpanExporter`] from the environment, installs it with
/// [`crate::trace::install_sink`] and returns its guard. Otherwise returns `Ok(None)` and
/// spans stay off. Self-metrics go to [`crate::global`].
pub fn init_tracing_from_env() -> Result<Option<TracingGuard>, OtlpConfigError> {
    init_tracing_from_lookup(|k| std::env::var(k).ok(), crate::global())
}

/// [`init_tracing_from_env`] over `lookup` (instead of the process environment), counting
/// self-metrics into `registry`.
pub fn init_tracing_from_lookup<F: Fn(&str) -> Option<String>>(
    lookup: F,
    registry: &Registry,
) -> Result<Option<TracingGuard>, OtlpConfigError> {
    let is = |k: &str, v: &str| lookup(k).is_some_and(|x| x.trim().eq_ignore_ascii_case(v));
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
        return Ok(None);
    }
    if !endpoint_configured(Signal::Traces, &lookup) {
        return Ok(None);
    }
    let (resource, problem) = ResourceConfig::from_lookup(&lookup);
    if let Some(p) = problem {
        tracing::warn!(error = %p, "OTEL_RESOURCE_ATTRIBUTES ignored");
    }
    let exporter = OtlpSpanExporter::builder()
        .exporter_config(ExporterConfig::from_lookup(Signal::Traces, &lookup)?)
        .batch_config(BatchConfig::from_lookup(&lookup)?)
        .resource(resource)
        .registry(registry)
        .build()?;
    let exporter = Arc::new(exporter);
    crate::trace::install_sink(exporter.clone());
    Ok(Some(TracingGuard { exporter }))
}
