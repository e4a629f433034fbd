//! OTLP span export: our exporter beside the OpenTelemetry SDK 0.33 + opentelemetry-otlp 0.33
//! on the same spans, in one run (issue 9: "metrics + span, sampled, exported over OTLP in
//! batches: ≤ 400 ns added per call"; this bench covers the export half of that path).
//!
//! The span: what `#[instrument_dwcp]` produces for a sampled call: name `migrate`, a random
//! trace and span id and a parent, kind internal, status unset, four string attributes
//! (`code.function`, `code.namespace`, `dwcp.component`, `dwcp.operation`, `'static`), no
//! events. The SDK side gets the same content as an `opentelemetry_sdk::trace::SpanData`.
//!
//! Groups:
//! - `otlp_submit` (per span; the caller's cost): build the finished-span value and hand it to
//!   the batch processor.
//!   - `dwcp`: a `SpanRecord` built and `OtlpSpanExporter::submit`ted (a bounded lock-free
//!     queue; the export thread is woken once per 512-span batch);
//!   - `otel_sdk`: a `SpanData` built and `BatchSpanProcessor::on_end` called (the call
//!     `Span::end` makes; the SDK's bounded channel), exporting with opentelemetry-otlp's tonic
//!     `SpanExporter`.
//!
//!   Both export over loopback to the same in-process receivers (tests/otlp_support; ours
//!   over HTTP/protobuf, the SDK's over gRPC, its default transport in this build), batch 512,
//!   queue 4096. Spans are submitted in chunks of 1024 and each side is flushed after each
//!   chunk, untimed, so the queue never fills: the figure is the accepting path, not the drop
//!   path. Timed with the thread's CPU time (`DWCP_BENCH_WALL=1` for wall-clock time): the
//!   export threads' work is not the caller's cost. The chunk loop's sampling is short (the
//!   untimed export of every submitted span costs far more than its submit).
//! - `otlp_encode_512` (per batch of 512 spans): what the export thread does before the
//!   network: `dwcp` = `traces::build_request` (SpanRecord -> OTLP Span, resource, scope) +
//!   `prost` encoding; `otel_sdk` = opentelemetry-proto 0.33's
//!   `group_spans_by_resource_and_scope` (the conversion opentelemetry-otlp runs on `SpanData`)
//!   and the same encoding. Inputs are cloned untimed for both (`iter_batched`).
//!
//! After the run every side is checked: the receivers hold exactly the number of spans
//! submitted, nothing was dropped, and both encodings decode to 512 spans.
//!
//! Run: `cargo bench --bench otlp -- --warm-up-time 1 --measurement-time 3 --noplot`.

#[path = "../tests/otlp_support/mod.rs"]
mod otlp_support;

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion};
use dwcp_support::bench::{criterion_dir, median_ns, Stopwatch};
use dwcp_telemetry::export::otlp::config::{
    BatchConfig, ExporterConfig, Protocol, ResourceConfig, Signal,
};
use dwcp_telemetry::export::otlp::traces::{build_request, to_proto_resource};
use dwcp_telemetry::export::otlp::OtlpSpanExporter;
use dwcp_telemetry::propagation::{SpanId, TraceFlags, TraceId};
use dwcp_telemetry::trace::{AttrValue, SpanKind, SpanRecord, SpanSink, SpanStatus};
use dwcp_telemetry::Registry;
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind as OtelKind, Status as OtelStatus,
    TraceFlags as OtelFlags, TraceId as OtelTraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use otlp_support::Receiver;
use prost::Message;

const SUBMIT: &str = "otlp_submit";
const ENCODE: &str = "otlp_encode_512";
const DWCP: &str = "dwcp";
const PEER: &str = "otel_sdk";
const CHUNK: u64 = 1024;
const BATCH: usize = 512;
const QUEUE: usize = 4096;
/// The budget for metrics + a sampled span exported in batches.
const GOAL_NS: f64 = 400.0;

fn ids(i: u64) -> ([u8; 16], [u8; 8], [u8; 8]) {
    let t = TraceId::random().to_bytes();
    let mut s = [0u8; 8];
    s[..8].copy_from_slice(&(i | 1 << 63).to_be_bytes());
    let p = SpanId::random().to_bytes();
    (t, s, p)
}

#[inline(always)]
fn our_span(i: u64, start: u64) -> SpanRecord {
    let (t, s, p) = ids(i);
    SpanRecord {
        trace_id: TraceId::from_bytes(t).unwrap(),
        span_id: SpanId::from_bytes(s).unwrap(),
        parent_span_id: SpanId::from_bytes(p),
        flags: TraceFlags::SAMPLED,
        trace_state: String::new(),
        name: Cow::Borrowed("migrate"),
        kind: SpanKind::Internal,
        start_unix_nanos: start,
        end_unix_nanos: start + 250_000,
        status: SpanStatus::Unset,
        attributes: vec![
            (
                Cow::Borrowed("code.function"),
                AttrValue::Str(Cow::Borrowed("migrate")),
            ),
            (
                Cow::Borrowed("code.namespace"),
                AttrValue::Str(Cow::Borrowed("dwcp_manager::amst")),
            ),
            (
                Cow::Borrowed("dwcp.component"),
                AttrValue::Str(Cow::Borrowed("amst")),
            ),
            (
                Cow::Borrowed("dwcp.operation"),
                AttrValue::Str(Cow::Borrowed("migrate")),
            ),
        ],
        events: Vec::new(),
    }
}

#[inline(always)]
fn sdk_span(i: u64, start: SystemTime, scope: &InstrumentationScope) -> SpanData {
    let (t, s, p) = ids(i);
    SpanData {
        span_context: SpanContext::new(
            OtelTraceId::from_bytes(t),
            OtelSpanId::from_bytes(s),
            OtelFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: OtelSpanId::from_bytes(p),
        parent_span_is_remote: false,
        span_kind: OtelKind::Internal,
        name: Cow::Borrowed("migrate"),
        start_time: start,
        end_time: start + Duration::from_micros(250),
        attributes: vec![
            KeyValue::new("code.function", "migrate"),
            KeyValue::new("code.namespace", "dwcp_manager::amst"),
            KeyValue::new("dwcp.component", "amst"),
            KeyValue::new("dwcp.operation", "migrate"),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: OtelStatus::Unset,
        instrumentation_scope: scope.clone(),
    }
}

fn main() {
    let started = SystemTime::now();
    let sw = Stopwatch::from_env();
    eprintln!("timed with {}", sw.label());
    let mut c = Criterion::default().configure_from_args();
    submit_cases(&mut c, sw);
    encode_cases(&mut c);
    c.final_summary();
    summary(started);
}

fn submit_cases(c: &mut Criterion, sw: Stopwatch) {
    let now_ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let batch = BatchConfig {
        schedule_delay: Duration::from_secs(5),
        export_timeout: Duration::from_secs(30),
        max_queue_size: QUEUE,
        max_export_batch_size: BATCH,
    };

    // Ours: HTTP/protobuf to an in-process receiver.
    let our_rx = Receiver::http();
    let reg = Registry::builder().build().unwrap();
    let ours = OtlpSpanExporter::builder()
        .exporter_config(
            ExporterConfig::builder(Signal::Traces)
                .protocol(Protocol::HttpProtobuf)
                .endpoint(our_rx.endpoint())
                .build()
                .unwrap(),
        )
        .batch_config(batch)
        .resource(ResourceConfig::new("bench"))
        .registry(&reg)
        .build()
        .unwrap();

    // The SDK: BatchSpanProcessor + opentelemetry-otlp's tonic exporter to a gRPC receiver.
    // Its tonic channel needs a tokio runtime running; one is driven on a background thread.
    let peer_rx = Receiver::grpc();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let exporter = {
        let _enter = rt.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(peer_rx.endpoint())
            .build()
            .unwrap()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = std::thread::spawn(move || {
        rt.block_on(async {
            let _ = stop_rx.await;
        })
    });
    let peer = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE)
                .with_max_export_batch_size(BATCH)
                .with_scheduled_delay(Duration::from_secs(5))
                .build(),
        )
        .build();
    let scope = InstrumentationScope::builder("dwcp-telemetry").build();

    let ours_n = AtomicU64::new(0);
    let peer_n = AtomicU64::new(0);
    let mut g = c.benchmark_group(SUBMIT);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500));
    g.bench_function(DWCP, |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK);
                let base = ours_n.fetch_add(k, Ordering::Relaxed);
                let t = sw.start();
                for i in 0..k {
                    ours.submit(black_box(our_span(base + i, now_ns)));
                }
                total += sw.elapsed(t);
                assert!(ours.flush(Duration::from_secs(60)), "dwcp flush");
                left -= k;
            }
            total
        })
    });
    g.bench_function(PEER, |b| {
        b.iter_custom(|n| {
            let start = SystemTime::now();
            let mut total = Duration::ZERO;
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK);
                let base = peer_n.fetch_add(k, Ordering::Relaxed);
                let t = sw.start();
                for i in 0..k {
                    peer.on_end(black_box(sdk_span(base + i, start, &scope)));
                }
                total += sw.elapsed(t);
                peer.force_flush().expect("sdk flush");
                left -= k;
            }
            total
        })
    });
    g.finish();

    // Nothing measured was a no-op: every submitted span arrived, none was dropped.
    let submitted = ours_n.load(Ordering::Relaxed);
    if submitted > 0 {
        let got = our_rx.spans().len() as u64;
        assert_eq!(got, submitted, "dwcp: spans received == submitted");
        let dropped = reg
            .existing_counter("dwcp_telemetry_otlp_dropped_total")
            .map_or(0, |f| {
                f.with_labels_or_overflow(&["traces", "queue_full"]).get()
            });
        assert_eq!(dropped, 0, "dwcp: nothing dropped");
        eprintln!("check: dwcp received {got} spans = submitted, 0 dropped");
    }
    let submitted = peer_n.load(Ordering::Relaxed);
    if submitted > 0 {
        let got = peer_rx.spans().len() as u64;
        assert_eq!(got, submitted, "otel_sdk: spans received == submitted");
        eprintln!("check: otel_sdk received {got} spans = submitted");
    }
    ours.shutdown(Duration::from_secs(30));
    let _ = peer.shutdown();
    let _ = stop_tx.send(());
    let _ = driver.join();
}

fn encode_cases(c: &mut Criterion) {
    let now_ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let start = SystemTime::now();
    let ours: Vec<SpanRecord> = (0..BATCH as u64).map(|i| our_span(i, now_ns)).collect();
    let scope = InstrumentationScope::builder("dwcp-telemetry")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let theirs: Vec<SpanData> = (0..BATCH as u64)
        .map(|i| sdk_span(i, start, &scope))
        .collect();
    let our_resource = to_proto_resource(
        &ResourceConfig::new("dwcp-manager").with_attribute("service.instance.id", "b1"),
    );
    let sdk_resource = opentelemetry_sdk::Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "dwcp-manager"),
            KeyValue::new("service.instance.id", "b1"),
            KeyValue::new("telemetry.sdk.name", "opentelemetry"),
            KeyValue::new("telemetry.sdk.language", "rust"),
            KeyValue::new("telemetry.sdk.version", "0.33.1"),
        ])
        .build();
    let sdk_resource = ResourceAttributesWithSchema::from(&sdk_resource);

    let encode_ours = |spans: Vec<SpanRecord>| build_request(&our_resource, &spans).encode_to_vec();
    let encode_theirs = |spans: Vec<SpanData>| {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &sdk_resource),
        }
        .encode_to_vec()
    };
    // Both encode the same 512 spans.
    for bytes in [encode_ours(ours.clone()), encode_theirs(theirs.clone())] {
        let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let n: usize = req.resource_spans[0]
            .scope_spans
            .iter()
            .map(|s| s.spans.len())
            .sum();
        assert_eq!(n, BATCH);
    }

    let mut g = c.benchmark_group(ENCODE);
    g.bench_function(DWCP, |b| {
        b.iter_batched(
            || ours.clone(),
            |s| encode_ours(black_box(s)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function(PEER, |b| {
        b.iter_batched(
            || theirs.clone(),
            |s| encode_theirs(black_box(s)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    eprintln!("\n== summary: medians of this run ({}) ==", dir.display());
    for (group, unit) in [(SUBMIT, "per span"), (ENCODE, "per 512-span batch")] {
        let ours = median_ns(&dir, group, DWCP, since);
        let peer = median_ns(&dir, group, PEER, since);
        eprintln!("{group} ({unit})");
        for (id, m) in [(DWCP, ours), (PEER, peer)] {
            if let Some(m) = m {
                eprintln!("  {id:<10} {m:>12.1} ns");
            }
        }
        if let (Some(o), Some(p)) = (ours, peer) {
            eprintln!("  ratio dwcp / otel_sdk: {:.2}", o / p);
        }
        if group == SUBMIT {
            if let Some(o) = ours {
                eprintln!(
                    "  export half of the {GOAL_NS} ns sampled-span budget: {o:.1} ns ({:.0}%)",
                    100.0 * o / GOAL_NS
                );
            }
        }
    }
}
