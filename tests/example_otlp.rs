//! The main job pushes OTLP with nothing to configure but `OTEL_EXPORTER_OTLP_ENDPOINT`: its
//! instrumented consensus rounds arrive as spans, and both registries' metrics arrive, at a
//! real OTLP receiver (HTTP/protobuf, the spec's default protocol, and gRPC).

mod otlp_support;
mod prom_support;

use std::time::Duration;

use otlp_support::{attr_str, Kind, Receiver};

fn run(kind: Kind) {
    let Some(bin) = prom_support::example_binary() else {
        return;
    };
    let receiver = Receiver::start(kind);
    let endpoint = receiver.endpoint();
    let protocol = match kind {
        Kind::Grpc => "grpc",
        Kind::Http => "http/protobuf",
    };
    let _job = prom_support::start_example_with_env(
        &bin,
        &["--duration", "120"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            // Faster than the defaults (5 s, 60 s), so the test is short.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
        ],
    );
    let long = Duration::from_secs(90);
    // Spans of the instrumented rounds, with their attributes.
    let got_spans = receiver.wait_until(long, |r| r.spans().iter().any(|s| s.name == "round"));
    assert!(got_spans, "{kind:?}: no round span arrived");
    let spans = receiver.spans();
    let round = spans.iter().find(|s| s.name == "round").unwrap();
    assert_eq!(
        attr_str(&round.attributes, "dwcp.component"),
        Some("probft-consensus")
    );
    assert_eq!(
        attr_str(&round.attributes, "code.function"),
        Some("probft_round")
    );
    assert!(attr_str(&round.attributes, "leader").is_some_and(|l| l.starts_with("node-")));
    // Both registries push metrics: the manager's and the consensus node's families.
    let names = |r: &Receiver| -> Vec<String> {
        r.metrics_requests()
            .iter()
            .flat_map(|req| req.resource_metrics.iter())
            .flat_map(|rm| rm.scope_metrics.iter())
            .flat_map(|sm| sm.metrics.iter())
            .map(|m| m.name.clone())
            .collect()
    };
    let both = receiver.wait_until(long, |r| {
        let n = names(r);
        n.iter().any(|n| n == "dwcp_circuit_breaker_state")
            && n.iter().any(|n| n == "probft_consensus_rounds_total")
    });
    assert!(both, "{kind:?}: metrics seen: {:?}", names(&receiver));
}

#[test]
fn the_main_job_exports_spans_and_metrics_over_otlp_http() {
    run(Kind::Http);
}

#[test]
fn the_main_job_exports_spans_and_metrics_over_otlp_grpc() {
    run(Kind::Grpc);
}
