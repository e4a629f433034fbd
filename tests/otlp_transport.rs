//! The OTLP transport against in-process gRPC and HTTP/protobuf receivers: delivery, headers,
//! gzip, the retry rules (429/502/503/504, Retry-After, RESOURCE_EXHAUSTED + RetryInfo, 400
//! and partial_success not retried), a dead collector, and the self-metrics.

mod otlp_support;

use std::time::{Duration, Instant};

use dwcp_telemetry::export::otlp::config::{Compression, ExporterConfig, Protocol, Signal};
use dwcp_telemetry::export::otlp::transport::{ExportOutcome, RetryPolicy, Transport};
use dwcp_telemetry::Registry;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_support::{counter, Kind, Payload, Receiver, Reply};

const EXPORTS: &str = "dwcp_telemetry_otlp_exports_total";
const RETRIES: &str = "dwcp_telemetry_otlp_retries_total";
const DROPPED: &str = "dwcp_telemetry_otlp_dropped_total";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn traces(n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        name: format!("op{i}"),
                        trace_id: vec![1; 16],
                        span_id: vec![(i + 1) as u8; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "dwcp_requests_total".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                value: Some(number_data_point::Value::AsInt(i as i64)),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: 2,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        multiplier: 2.0,
    }
}

fn config(rx: &Receiver, signal: Signal) -> ExporterConfig {
    let protocol = match rx.kind() {
        Kind::Grpc => Protocol::Grpc,
        Kind::Http => Protocol::HttpProtobuf,
    };
    ExporterConfig::builder(signal)
        .protocol(protocol)
        .endpoint(rx.endpoint())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn both() -> [Receiver; 2] {
    [Receiver::grpc(), Receiver::http()]
}

#[test]
fn delivers_traces_and_metrics_with_headers_and_gzip() {
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let cfg = ExporterConfig::builder(Signal::Traces)
            .protocol(if rx.kind() == Kind::Grpc {
                Protocol::Grpc
            } else {
                Protocol::HttpProtobuf
            })
            .endpoint(rx.endpoint())
            .header("x-tenant", "dwcp")
            .compression(Compression::Gzip)
            .build()
            .unwrap();
        let t = rt.block_on(async { Transport::new(cfg, &reg) }).unwrap();
        let r = rt.block_on(t.send(&traces(3), Duration::from_secs(30)));
        assert_eq!(r.outcome, ExportOutcome::Success, "{:?}", rx.kind());
        assert_eq!(r.attempts, 1);
        let reqs = rx.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].header("x-tenant"), Some("dwcp"));
        match rx.kind() {
            Kind::Http => {
                assert_eq!(reqs[0].path, "/v1/traces");
                assert_eq!(reqs[0].header("content-encoding"), Some("gzip"));
                assert_eq!(
                    reqs[0].header("content-type"),
                    Some("application/x-protobuf")
                );
            }
            Kind::Grpc => assert_eq!(reqs[0].header("grpc-encoding"), Some("gzip")),
        }
        assert_eq!(reqs[0].payload, Payload::Traces(traces(3)));
        assert_eq!(counter(&reg, EXPORTS, &["traces", "success"]), 1);
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_exported_items_total",
                &["traces"]
            ),
            3
        );

        let m = rt
            .block_on(async { Transport::new(config(&rx, Signal::Metrics), &reg) })
            .unwrap();
        let r = rt.block_on(m.send(&metrics(4), Duration::from_secs(30)));
        assert_eq!(r.outcome, ExportOutcome::Success);
        assert_eq!(rx.metrics_requests(), vec![metrics(4)]);
        if rx.kind() == Kind::Http {
            assert_eq!(rx.requests()[1].path, "/v1/metrics");
        }
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_exported_items_total",
                &["metrics"]
            ),
            4
        );
    }
}

#[test]
fn retryable_answers_are_retried_honouring_retry_after() {
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let t = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg)
            })
            .unwrap();
        match rx.kind() {
            Kind::Http => {
                rx.push_reply(Reply::http(429, Some("1")));
                rx.push_reply(Reply::http(503, None));
            }
            Kind::Grpc => {
                rx.push_reply(Reply::Grpc {
                    code: tonic::Code::ResourceExhausted,
                    retry_delay: Some(Duration::from_secs(1)),
                });
                rx.push_reply(Reply::Grpc {
                    code: tonic::Code::Unavailable,
                    retry_delay: None,
                });
            }
        }
        let r = rt.block_on(t.send(&traces(2), Duration::from_secs(30)));
        assert_eq!(r.outcome, ExportOutcome::Success, "{:?}", rx.kind());
        assert_eq!(r.attempts, 3);
        let reqs = rx.requests();
        assert_eq!(reqs.len(), 3);
        // The server's delay (1 s) was honoured between the first and second attempt.
        assert!(
            reqs[1].at - reqs[0].at >= Duration::from_secs(1),
            "{:?}",
            reqs[1].at - reqs[0].at
        );
        assert_eq!(rx.spans().len(), 2);
        assert_eq!(counter(&reg, RETRIES, &["traces"]), 2);
        assert_eq!(counter(&reg, EXPORTS, &["traces", "success"]), 1);
    }
}

#[test]
fn http_502_and_504_are_retried_like_429_and_503() {
    // The OTLP/HTTP retryable set is 429, 502, 503 and 504 (429 and 503 are covered above;
    // a 400 on its own is `bad_request_is_not_retried_but_reported`).
    let rx = Receiver::http();
    let reg = Registry::builder().build().unwrap();
    let rt = rt();
    let t = rt
        .block_on(async { Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg) })
        .unwrap();
    rx.push_reply(Reply::http(502, None));
    rx.push_reply(Reply::http(504, None));
    let r = rt.block_on(t.send(&traces(2), Duration::from_secs(30)));
    assert_eq!(r.outcome, ExportOutcome::Success);
    assert_eq!(r.attempts, 3);
    let replies: Vec<Reply> = rx.requests().into_iter().map(|q| q.reply).collect();
    assert_eq!(
        replies,
        [Reply::http(502, None), Reply::http(504, None), Reply::Ok]
    );
    assert_eq!(rx.spans().len(), 2);
    assert_eq!(counter(&reg, RETRIES, &["traces"]), 2);
    assert_eq!(counter(&reg, EXPORTS, &["traces", "success"]), 1);
    assert_eq!(counter(&reg, EXPORTS, &["traces", "rejected"]), 0);
    assert_eq!(counter(&reg, DROPPED, &["traces", "export_failed"]), 0);
    assert_eq!(
        counter(
            &reg,
            "dwcp_telemetry_otlp_exported_items_total",
            &["traces"]
        ),
        2
    );

    // A 400 after a retryable answer ends the retries there: 504, then 400, and no third
    // request.
    rx.push_reply(Reply::http(504, None));
    rx.push_reply(Reply::http(400, None));
    let r = rt.block_on(t.send(&traces(3), Duration::from_secs(30)));
    assert_eq!(r.attempts, 2);
    assert_eq!(
        r.outcome,
        ExportOutcome::Rejected {
            reason: "HTTP 400: scripted HTTP 400".into()
        }
    );
    assert_eq!(rx.request_count(), 5);
    assert_eq!(rx.spans().len(), 2);
    assert_eq!(counter(&reg, RETRIES, &["traces"]), 3);
    assert_eq!(counter(&reg, EXPORTS, &["traces", "success"]), 1);
    assert_eq!(counter(&reg, EXPORTS, &["traces", "rejected"]), 1);
    assert_eq!(counter(&reg, DROPPED, &["traces", "export_rejected"]), 3);
}

#[test]
fn http_date_retry_after_is_honoured() {
    let rx = Receiver::http();
    let reg = Registry::builder().build().unwrap();
    let rt = rt();
    let t = rt
        .block_on(async { Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg) })
        .unwrap();
    // A date 5-6 s ahead (whole seconds, rounded up): even if the first attempt is answered
    // up to 4 s late on a busy machine, at least 1 s of it is left to wait.
    let when = std::time::SystemTime::now() + Duration::from_secs(5);
    rx.push_reply(Reply::http(503, Some(&httpdate_fmt(when))));
    let r = rt.block_on(t.send(&traces(1), Duration::from_secs(30)));
    assert_eq!(r.outcome, ExportOutcome::Success);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    // The retry waited for the date, not the policy's 20 ms backoff.
    let waited = reqs[1].at - reqs[0].at;
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
}

fn httpdate_fmt(t: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate, computed by hand (civil-from-days).
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[test]
fn bad_request_is_not_retried_but_reported() {
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let t = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg)
            })
            .unwrap();
        rx.push_reply(Reply::http(400, None));
        let r = rt.block_on(t.send(&traces(5), Duration::from_secs(30)));
        assert_eq!(r.attempts, 1);
        match (&r.outcome, rx.kind()) {
            (ExportOutcome::Rejected { reason }, Kind::Http) => {
                assert_eq!(reason, "HTTP 400: scripted HTTP 400")
            }
            (ExportOutcome::Rejected { reason }, Kind::Grpc) => {
                assert_eq!(reason, "gRPC InvalidArgument: scripted InvalidArgument")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.request_count(), 1);
        assert_eq!(counter(&reg, RETRIES, &["traces"]), 0);
        assert_eq!(counter(&reg, EXPORTS, &["traces", "rejected"]), 1);
        assert_eq!(counter(&reg, DROPPED, &["traces", "export_rejected"]), 5);
    }
}

#[test]
fn partial_success_is_not_retried_but_reported() {
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let t = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg)
            })
            .unwrap();
        rx.push_reply(Reply::PartialSuccess {
            rejected: 2,
            message: "2 spans too old".into(),
        });
        let r = rt.block_on(t.send(&traces(5), Duration::from_secs(30)));
        assert_eq!(
            r.outcome,
            ExportOutcome::PartialSuccess {
                rejected: 2,
                message: "2 spans too old".into()
            }
        );
        assert_eq!(r.attempts, 1);
        assert_eq!(rx.request_count(), 1);
        assert_eq!(counter(&reg, EXPORTS, &["traces", "partial_success"]), 1);
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_rejected_items_total",
                &["traces"]
            ),
            2
        );
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_exported_items_total",
                &["traces"]
            ),
            3
        );

        // The same for metrics (rejected_data_points).
        let m = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Metrics), fast_retry(), &reg)
            })
            .unwrap();
        rx.push_reply(Reply::PartialSuccess {
            rejected: 1,
            message: "NaN".into(),
        });
        let r = rt.block_on(m.send(&metrics(3), Duration::from_secs(30)));
        assert_eq!(
            r.outcome,
            ExportOutcome::PartialSuccess {
                rejected: 1,
                message: "NaN".into()
            }
        );
        assert_eq!(
            counter(
                &reg,
                "dwcp_telemetry_otlp_rejected_items_total",
                &["metrics"]
            ),
            1
        );
    }
}

#[test]
fn dead_collector_fails_within_the_deadline_and_recovers() {
    for mut rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let t = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg)
            })
            .unwrap();
        rx.stop();
        let start = Instant::now();
        let r = rt.block_on(t.send(&traces(4), Duration::from_secs(2)));
        let took = start.elapsed();
        assert!(
            matches!(&r.outcome, ExportOutcome::Failed { reason } if reason.contains("export deadline")),
            "{r:?}"
        );
        assert!(r.attempts >= 2, "{r:?}");
        // Bounded by the deadline (generous slack for a busy machine).
        assert!(took < Duration::from_secs(20), "{took:?}");
        assert_eq!(counter(&reg, EXPORTS, &["traces", "failed"]), 1);
        assert_eq!(counter(&reg, DROPPED, &["traces", "export_failed"]), 4);
        assert_eq!(
            counter(&reg, RETRIES, &["traces"]),
            u64::from(r.attempts - 1)
        );

        rx.restart();
        let r = rt.block_on(t.send(&traces(1), Duration::from_secs(30)));
        assert_eq!(r.outcome, ExportOutcome::Success, "{:?}", rx.kind());
        assert_eq!(rx.spans().len(), 1);
    }
}

#[test]
fn slow_collector_times_out_per_attempt() {
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let cfg = ExporterConfig::builder(Signal::Traces)
            .protocol(if rx.kind() == Kind::Grpc {
                Protocol::Grpc
            } else {
                Protocol::HttpProtobuf
            })
            .endpoint(rx.endpoint())
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let t = rt
            .block_on(async { Transport::with_retry(cfg, fast_retry(), &reg) })
            .unwrap();
        // Far longer than an attempt may take, and than the test waits (the receiver drops the
        // delayed answer when it stops).
        rx.push_reply(Reply::Delay(Duration::from_secs(60)));
        let r = rt.block_on(t.send(&traces(1), Duration::from_secs(30)));
        // The first attempt timed out and was retried; a later one (the next, unless a busy
        // machine held it past 2 s too) was answered at once.
        assert_eq!(r.outcome, ExportOutcome::Success, "{:?}", rx.kind());
        assert!(r.attempts >= 2, "{r:?}");
        assert_eq!(rx.request_count(), r.attempts as usize);
        assert_eq!(
            counter(&reg, RETRIES, &["traces"]),
            u64::from(r.attempts - 1)
        );
    }
}

#[test]
fn hostile_server_delays_end_retries_without_panicking() {
    // A Retry-After / RetryInfo far beyond the deadline ends the retries at once (no overflow).
    for rx in both() {
        let reg = Registry::builder().build().unwrap();
        let rt = rt();
        let t = rt
            .block_on(async {
                Transport::with_retry(config(&rx, Signal::Traces), fast_retry(), &reg)
            })
            .unwrap();
        match rx.kind() {
            Kind::Http => rx.push_reply(Reply::http(503, Some("18446744073709551615"))),
            Kind::Grpc => rx.push_reply(Reply::Grpc {
                code: tonic::Code::Unavailable,
                retry_delay: Some(Duration::from_secs(i64::MAX as u64)),
            }),
        }
        let r = rt.block_on(t.send(&traces(2), Duration::from_secs(30)));
        assert_eq!(r.attempts, 1, "{:?}", rx.kind());
        assert!(
            matches!(&r.outcome, ExportOutcome::Failed { reason } if reason.contains("would pass the 30s export deadline")),
            "{r:?}"
        );
        assert_eq!(counter(&reg, DROPPED, &["traces", "export_failed"]), 2);
    }
}

#[test]
fn transport_outside_a_runtime_is_an_error() {
    let reg = Registry::builder().build().unwrap();
    let cfg = ExporterConfig::builder(Signal::Metrics)
        .protocol(Protocol::Grpc)
        .endpoint("http://127.0.0.1:4317")
        .build()
        .unwrap();
    let e = Transport::new(cfg, &reg).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Transport::new=\"called outside a tokio runtime\" is invalid: call it inside a tokio runtime (its connections run on it)"
    );
}
