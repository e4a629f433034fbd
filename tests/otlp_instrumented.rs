//! End to end: handlers annotated with `#[instrument_dwcp]`, the OTLP span exporter set up
//! by `init_tracing_from_lookup` (as `init_tracing_from_env` does from the environment), and
//! real OTLP receivers (tonic gRPC and hyper HTTP/protobuf, built from `opentelemetry-proto`).
//! Spans arrive with their names, attributes, status, exception event and the parent link
//! between two instrumented calls; a call under a remote parent joins the caller's trace.

mod otlp_support;

use std::collections::HashMap;
use std::time::Duration;

use dwcp_telemetry::export::otlp::init_tracing_from_lookup;
use dwcp_telemetry::propagation::{extract, SpanContext};
use dwcp_telemetry::{instrument_dwcp, Registry};
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};

use otlp_support::{attr_str, Kind, Receiver};

#[derive(Debug)]
struct VoteRejected;

impl std::fmt::Display for VoteRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("vote rejected: stale round")
    }
}

#[instrument_dwcp(component = "probft-consensus", operation = "propose", sample = critical)]
async fn propose(round: u64) -> Result<u64, VoteRejected> {
    let votes = collect_votes(round).await?;
    Ok(votes)
}

#[instrument_dwcp(component = "probft-consensus", sample = critical, skip(round))]
async fn collect_votes(round: u64) -> Result<u64, VoteRejected> {
    if round == 0 {
        Err(VoteRejected)
    } else {
        Ok(round * 3)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn run(kind: Kind) {
    let receiver = Receiver::start(kind);
    let endpoint = receiver.endpoint();
    let protocol = match kind {
        Kind::Grpc => "grpc",
        Kind::Http => "http/protobuf",
    };
    let env: HashMap<&str, String> = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
        ("OTEL_SERVICE_NAME", "probft-node-1".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ]);
    let registry = Registry::builder().build().unwrap();
    let guard = init_tracing_from_lookup(|k| env.get(k).cloned(), &registry)
        .unwrap()
        .expect("an endpoint is set, so the exporter is installed");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(propose(7)).unwrap(), 21);
    assert!(rt.block_on(propose(0)).is_err());
    // A call made under a caller's context, extracted from message metadata.
    let caller = SpanContext::new_root(true);
    let mut carrier: HashMap<String, String> = HashMap::new();
    dwcp_telemetry::propagation::inject(&caller, &mut carrier);
    let remote = extract(&carrier)
        .unwrap()
        .expect("a traceparent was injected");
    rt.block_on(dwcp_telemetry::trace::with_parent_async(remote, propose(5)))
        .unwrap();
    assert!(dwcp_telemetry::trace::SpanSink::flush(
        guard.exporter().as_ref(),
        Duration::from_secs(30)
    ));
    drop(guard);

    let spans = receiver.wait_for_spans(6, Duration::from_secs(30));
    assert_eq!(spans.len(), 6, "{kind:?}: {spans:#?}");
    let proposes = by_name(&spans, "propose");
    let votes = by_name(&spans, "collect_votes");
    assert_eq!((proposes.len(), votes.len()), (3, 3));
    for (p, v) in proposes.iter().zip(&votes) {
        // Each collect_votes span is the child of the propose span of its call.
        let parent = proposes
            .iter()
            .find(|p| p.span_id == v.parent_span_id)
            .unwrap_or_else(|| panic!("{kind:?}: no parent for {v:#?}"));
        assert_eq!(parent.trace_id, v.trace_id);
        assert_eq!(
            attr_str(&p.attributes, "dwcp.component"),
            Some("probft-consensus")
        );
        assert_eq!(attr_str(&p.attributes, "dwcp.operation"), Some("propose"));
        assert_eq!(attr_str(&p.attributes, "code.function"), Some("propose"));
        assert_eq!(
            attr_str(&p.attributes, "code.namespace"),
            Some("otlp_instrumented")
        );
        assert_eq!(
            attr_str(&v.attributes, "dwcp.operation"),
            Some("collect_votes")
        );
        // `skip(round)` keeps the argument out of the inner span.
        assert_eq!(attr_str(&v.attributes, "round"), None);
    }
    // Two roots of their own, and one child of the remote caller, in the caller's trace.
    let roots: Vec<_> = proposes
        .iter()
        .filter(|p| p.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 2, "{kind:?}");
    let joined = proposes
        .iter()
        .find(|p| p.parent_span_id == caller.span_id.to_bytes())
        .expect("the remote caller's child");
    assert_eq!(hex(&joined.trace_id), caller.trace_id.to_string());

    // The failed call: error status on both spans, with the exception event.
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| s.status.as_ref().map(|st| st.code) == Some(StatusCode::Error as i32))
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "{kind:?}: the inner error and the outer one"
    );
    for s in failed {
        let ev = s
            .events
            .iter()
            .find(|e| e.name == "exception")
            .expect("an exception event");
        assert_eq!(
            attr_str(&ev.attributes, "exception.message"),
            Some("vote rejected: stale round")
        );
    }
    // The resource names the service.
    let requests = receiver.trace_requests();
    let resource = requests[0].resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attr_str(&resource.attributes, "service.name"),
        Some("probft-node-1")
    );
}

/// One test, both protocols in turn: the span sink is process-wide.
#[test]
fn instrumented_handlers_export_spans_over_grpc_and_http() {
    run(Kind::Grpc);
    run(Kind::Http);
}
