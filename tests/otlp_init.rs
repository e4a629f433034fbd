//! `init_tracing_from_lookup`: installs the OTLP span sink only when an endpoint is set; the
//! guard flushes on drop. (Its own test binary: the span sink is process-wide.)

mod otlp_support;

use std::borrow::Cow;
use std::time::Duration;

use dwcp_telemetry::export::otlp::init_tracing_from_lookup;
use dwcp_telemetry::propagation::{SpanId, TraceFlags, TraceId};
use dwcp_telemetry::trace::{self, SpanKind, SpanRecord, SpanStatus};
use dwcp_telemetry::Registry;
use otlp_support::{attr_str, Receiver};

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
}

#[test]
fn init_from_env_installs_only_with_an_endpoint_and_flushes_on_drop() {
    let reg = Registry::builder().build().unwrap();
    // No endpoint: nothing installed.
    assert!(init_tracing_from_lookup(env(vec![]), &reg)
        .unwrap()
        .is_none());
    assert!(trace::sink().is_none());
    // Disabled.
    let rx = Receiver::http();
    let g = init_tracing_from_lookup(
        env(vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_SDK_DISABLED", "true".into()),
        ]),
        &reg,
    )
    .unwrap();
    assert!(g.is_none());
    // A bad value is an error, not a panic.
    let e = init_tracing_from_lookup(
        env(vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "lots".into()),
        ]),
        &reg,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "OTEL_BSP_MAX_QUEUE_SIZE=\"lots\" is invalid: expected a positive whole number"
    );
    assert!(trace::sink().is_none());

    for (rx, protocol) in [(Receiver::grpc(), "grpc"), (rx, "http/protobuf")] {
        let guard = init_tracing_from_lookup(
            env(vec![
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    match protocol {
                        "grpc" => rx.endpoint(),
                        _ => format!("{}/v1/traces", rx.endpoint()),
                    },
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
                ("OTEL_SERVICE_NAME", "dwcp-manager".into()),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=ci".into(),
                ),
            ]),
            &reg,
        )
        .unwrap()
        .expect("an endpoint is set");
        let sink = trace::sink().expect("installed");
        sink.submit(SpanRecord {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            flags: TraceFlags::SAMPLED,
            trace_state: String::new(),
            name: Cow::Borrowed("handle"),
            kind: SpanKind::Server,
            start_unix_nanos: 1,
            end_unix_nanos: 2,
            status: SpanStatus::Unset,
            attributes: vec![],
            events: vec![],
        });
        drop(sink);
        // Dropping the guard uninstalls the sink and sends what is queued (the 5 s schedule
        // delay has not passed).
        drop(guard);
        assert!(trace::sink().is_none());
        let spans = rx.wait_for_spans(1, Duration::from_secs(30));
        assert_eq!(spans.len(), 1, "{protocol}");
        assert_eq!(spans[0].name, "handle");
        let req = &rx.trace_requests()[0];
        let res = &req.resource_spans[0].resource.as_ref().unwrap().attributes;
        assert_eq!(attr_str(res, "service.name"), Some("dwcp-manager"));
        assert_eq!(attr_str(res, "deployment.environment"), Some("ci"));
    }
}
