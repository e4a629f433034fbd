//! `OtlpSpanExporter` end to end against in-process OTLP receivers (gRPC and HTTP/protobuf):
//! what arrives (names, ids, parent links, kind, status, attributes, events, resource, scope),
//! batching, flush/shutdown, and a collector outage (submit never blocks, drops counted
//! exactly, spans flow again after recovery).

mod otlp_support;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use dwcp_telemetry::export::otlp::config::{BatchConfig, ResourceConfig};
use dwcp_telemetry::export::otlp::OtlpSpanExporter;
use dwcp_telemetry::propagation::{SpanId, TraceFlags, TraceId};
use dwcp_telemetry::trace::{AttrValue, SpanEvent, SpanKind, SpanRecord, SpanSink, SpanStatus};
use dwcp_telemetry::Registry;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span, status};
use otlp_support::{attr, attr_str, counter, span_exporter, wait_until, Receiver};

const DROPPED: &str = "dwcp_telemetry_otlp_dropped_total";

fn exporter(
    rx: &Receiver,
    batch: BatchConfig,
    reg: &Registry,
    resource: ResourceConfig,
) -> OtlpSpanExporter {
    span_exporter(
        rx.kind(),
        rx.endpoint(),
        Duration::from_secs(5),
        batch,
        resource,
        reg,
    )
}

fn record(name: &'static str, trace: TraceId, id: u8, parent: Option<SpanId>) -> SpanRecord {
    SpanRecord {
        trace_id: trace,
        span_id: SpanId::from_bytes([id; 8]).unwrap(),
        parent_span_id: parent,
        flags: TraceFlags::SAMPLED,
        trace_state: String::new(),
        name: Cow::Borrowed(name),
        kind: SpanKind::Internal,
        start_unix_nanos: 1_700_000_000_000_000_000,
        end_unix_nanos: 1_700_000_000_000_250_000,
        status: SpanStatus::Unset,
        attributes: vec![],
        events: vec![],
    }
}

fn trace_id() -> TraceId {
    TraceId::from_bytes([
        0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47,
        0x36,
    ])
    .unwrap()
}

#[test]
fn spans_arrive_with_names_ids_parents_status_attributes_and_resource() {
    for rx in [Receiver::grpc(), Receiver::http()] {
        let reg = Registry::builder().version("3.0.0").build().unwrap();
        let resource = ResourceConfig::new("dwcp-manager").with_attribute("dwcp.cluster", "eu-1");
        let exp = exporter(&rx, BatchConfig::default(), &reg, resource);

        let mut root = record("migrate", trace_id(), 1, None);
        root.kind = SpanKind::Server;
        root.status = SpanStatus::Ok;
        root.trace_state = "dwcp=t61rcWkgMzE".to_owned();
        root.attributes = vec![
            ("dwcp.component".into(), AttrValue::Str("amst".into())),
            ("dwcp.operation".into(), AttrValue::Str("migrate".into())),
            ("code.function".into(), AttrValue::Str("migrate".into())),
            (
                "code.namespace".into(),
                AttrValue::Str("dwcp_manager::amst".into()),
            ),
            ("vm.count".into(), AttrValue::I64(-3)),
            ("ratio".into(), AttrValue::F64(0.25)),
            ("dry_run".into(), AttrValue::Bool(true)),
        ];
        let mut child = record("copy_pages", trace_id(), 2, Some(root.span_id));
        child.status = SpanStatus::Error {
            message: "page copy timed out".into(),
        };
        child.events = vec![SpanEvent {
            name: "exception".into(),
            time_unix_nanos: 1_700_000_000_000_200_000,
            attributes: vec![
                ("exception.type".into(), AttrValue::Str("Timeout".into())),
                (
                    "exception.message".into(),
                    AttrValue::Str("page copy timed out".into()),
                ),
            ],
        }];
        // The child finishes first, as in a real call tree.
        exp.submit(child);
        exp.submit(root);
        assert!(exp.flush(Duration::from_secs(30)), "{:?}", rx.kind());

        let reqs = rx.trace_requests();
        assert_eq!(reqs.len(), 1);
        let rs = &reqs[0].resource_spans[0];
        let res = &rs.resource.as_ref().unwrap().attributes;
        assert_eq!(attr_str(res, "service.name"), Some("dwcp-manager"));
        assert_eq!(attr_str(res, "service.version"), Some("3.0.0"));
        assert_eq!(attr_str(res, "dwcp.cluster"), Some("eu-1"));
        assert_eq!(attr_str(res, "telemetry.sdk.name"), Some("dwcp-telemetry"));
        let instance = attr_str(res, "service.instance.id").unwrap();
        assert_eq!(instance.len(), 36);
        assert_eq!(&instance[14..15], "4"); // UUID v4
        let scope = rs.scope_spans[0].scope.as_ref().unwrap();
        assert_eq!(scope.name, "dwcp-telemetry");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));

        let spans = &rs.scope_spans[0].spans;
        assert_eq!(spans.len(), 2);
        let (child, root) = (&spans[0], &spans[1]);
        assert_eq!(root.name, "migrate");
        assert_eq!(child.name, "copy_pages");
        assert_eq!(root.trace_id, trace_id().to_bytes().to_vec());
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(root.span_id, vec![1; 8]);
        assert!(root.parent_span_id.is_empty());
        assert_eq!(child.parent_span_id, root.span_id);
        assert_eq!(root.kind, span::SpanKind::Server as i32);
        assert_eq!(child.kind, span::SpanKind::Internal as i32);
        assert_eq!(root.flags, 1);
        assert_eq!(root.trace_state, "dwcp=t61rcWkgMzE");
        assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.end_time_unix_nano, 1_700_000_000_000_250_000);
        let st = root.status.as_ref().unwrap();
        assert_eq!(st.code, status::StatusCode::Ok as i32);
        let st = child.status.as_ref().unwrap();
        assert_eq!(st.code, status::StatusCode::Error as i32);
        assert_eq!(st.message, "page copy timed out");
        assert_eq!(attr_str(&root.attributes, "dwcp.component"), Some("amst"));
        assert_eq!(
            attr_str(&root.attributes, "dwcp.operation"),
            Some("migrate")
        );
        assert_eq!(attr_str(&root.attributes, "code.function"), Some("migrate"));
        assert_eq!(
            attr_str(&root.attributes, "code.namespace"),
            Some("dwcp_manager::amst")
        );
        assert_eq!(
            attr(&root.attributes, "vm.count"),
            Some(&Value::IntValue(-3))
        );
        assert_eq!(
            attr(&root.attributes, "ratio"),
            Some(&Value::DoubleValue(0.25))
        );
        assert_eq!(
            attr(&root.attributes, "dry_run"),
            Some(&Value::BoolValue(true))
        );
        assert_eq!(root.attributes.len(), 7);
        assert_eq!(child.events.len(), 1);
        assert_eq!(child.events[0].name, "exception");
        assert_eq!(child.events[0].time_unix_nano, 1_700_000_000_000_200_000);
        assert_eq!(
            attr_str(&child.events[0].attributes, "exception.type"),
            Some("Timeout")
        );
        assert!(exp.shutdown(Duration::from_secs(30)));
    }
}

#[test]
fn batches_respect_the_size_and_the_schedule_delay() {
    for rx in [Receiver::grpc(), Receiver::http()] {
        let reg = Registry::builder().build().unwrap();
        let batch = BatchConfig {
            schedule_delay: Duration::from_millis(100),
            export_timeout: Duration::from_secs(30),
            max_queue_size: 64,
            max_export_batch_size: 4,
        };
        let exp = exporter(&rx, batch, &reg, ResourceConfig::new("t"));
        for i in 0..10u8 {
            exp.submit(record("op", trace_id(), i + 1, None));
        }
        // No flush: full batches go at once, the remainder after the schedule delay.
        let spans = rx.wait_for_spans(10, Duration::from_secs(30));
        assert_eq!(spans.len(), 10, "{:?}", rx.kind());
        let ids: Vec<u8> = spans.iter().map(|s| s.span_id[0]).collect();
        assert_eq!(ids, (1..=10).collect::<Vec<u8>>());
        let sizes: Vec<usize> = rx
            .trace_requests()
            .iter()
            .map(|r| r.resource_spans[0].scope_spans[0].spans.len())
            .collect();
        assert!(sizes.iter().all(|&n| (1..=4).contains(&n)), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10);

        // After shutdown, submit drops and counts.
        assert!(exp.shutdown(Duration::from_secs(30)));
        exp.submit(record("late", trace_id(), 99, None));
        assert_eq!(counter(&reg, DROPPED, &["traces", "exporter_shutdown"]), 1);
        assert_eq!(counter(&reg, DROPPED, &["traces", "queue_full"]), 0);
    }
}

#[test]
fn collector_outage_never_blocks_counts_drops_exactly_and_recovers() {
    const Q: usize = 16; // queue
    const B: usize = 4; // batch
    const K: u64 = 5; // submitted past a full queue
    for mut rx in [Receiver::grpc(), Receiver::http()] {
        let reg = Registry::builder().build().unwrap();
        let batch = BatchConfig {
            // Only full batches (and flushes) are sent, so what the worker holds is exact.
            schedule_delay: Duration::from_secs(3600),
            export_timeout: Duration::from_secs(300),
            max_queue_size: Q,
            max_export_batch_size: B,
        };
        let exp = exporter(&rx, batch, &reg, ResourceConfig::new("t"));
        rx.stop();

        let start = Instant::now();
        // One full batch: the worker takes it and retries against the dead collector.
        for i in 0..B {
            exp.submit(record("first", trace_id(), i as u8 + 1, None));
        }
        assert!(
            wait_until(Duration::from_secs(60), || {
                counter(&reg, "dwcp_telemetry_otlp_retries_total", &["traces"]) > 0
            }),
            "the worker never retried"
        );
        // The queue fills (Q) and the rest is dropped (K): none of these calls waits.
        for i in 0..Q + K as usize {
            exp.submit(record("queued", trace_id(), (B + i) as u8 + 1, None));
        }
        // A flush with a short timeout gives up instead of hanging on the dead collector.
        assert!(!exp.flush(Duration::from_millis(200)));
        // Generous bound (a busy CI machine), not a speed test: the calls returned while the
        // collector was still down.
        assert!(start.elapsed() < Duration::from_secs(60));
        assert!(!rx.is_running());
        assert_eq!(counter(&reg, DROPPED, &["traces", "queue_full"]), K);
        assert_eq!(rx.request_count(), 0);

        rx.restart();
        // The stuck batch goes through on its next retry, then the queue drains in full batches.
        let spans = rx.wait_for_spans(B + Q, Duration::from_secs(60));
        assert_eq!(spans.len(), B + Q, "{:?}", rx.kind());
        let ids: Vec<u8> = spans.iter().map(|s| s.span_id[0]).collect();
        assert_eq!(ids, (1..=(B + Q) as u8).collect::<Vec<u8>>());
        // Spans flow again.
        for i in 0..3u8 {
            exp.submit(record("after", trace_id(), 100 + i, None));
        }
        assert!(exp.flush(Duration::from_secs(30)));
        let spans = rx.spans();
        assert_eq!(spans.len(), B + Q + 3);
        assert_eq!(spans.last().unwrap().name, "after");
        assert_eq!(counter(&reg, DROPPED, &["traces", "queue_full"]), K);
        assert_eq!(counter(&reg, DROPPED, &["traces", "export_failed"]), 0);
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_exported_items_total",
                &["traces"]
            ),
            (B + Q + 3) as u64
        );
        assert!(exp.shutdown(Duration::from_secs(30)));
    }
}
