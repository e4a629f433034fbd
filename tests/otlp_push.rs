//! The periodic OTLP metrics push against in-process gRPC and HTTP receivers: what arrives
//! equals what was recorded (counts, sums, bucket counts, reconstructed quantiles), a shutdown
//! flushes, and a receiver killed and restarted gets complete totals afterwards.

mod otlp_support;

use std::time::{Duration, Instant};

use dwcp_telemetry::export::exponential::ExponentialHistogram as Exp;
use dwcp_telemetry::export::otlp::config::{
    ExporterConfig, PeriodicConfig, Protocol, ResourceConfig, Signal,
};
use dwcp_telemetry::export::otlp::metrics::{
    init_metrics_from_lookup, OtlpMetricsExporter, Temporality,
};
use dwcp_telemetry::export::otlp::transport::RetryPolicy;
use dwcp_telemetry::{Counter, Histogram, Registry};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, ExponentialHistogramDataPoint,
};

use otlp_support::{attr_str, Kind, Receiver};

const WAIT: Duration = Duration::from_secs(60);

fn config(rx: &Receiver, timeout: Duration) -> ExporterConfig {
    ExporterConfig::builder(Signal::Metrics)
        .protocol(match rx.kind() {
            Kind::Grpc => Protocol::Grpc,
            _ => Protocol::HttpProtobuf,
        })
        .endpoint(rx.endpoint())
        .timeout(timeout)
        .build()
        .unwrap()
}

struct Setup {
    reg: Registry,
    lat: Histogram,
    requests: Counter,
}

fn setup() -> Setup {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .dynamic_labels(["operation"])
        .exact_sum(true)
        .register()
        .unwrap()
        .with_labels_or_overflow(&["migrate"]);
    let requests = reg
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["migrate", "ok"]);
    Setup { reg, lat, requests }
}

fn exporter(
    s: &Setup,
    rx: &Receiver,
    interval: Duration,
    timeout: Duration,
) -> OtlpMetricsExporter {
    OtlpMetricsExporter::builder()
        .exporter_config(config(rx, timeout))
        .periodic_config(PeriodicConfig { interval, timeout })
        .resource(
            ResourceConfig::new("dwcp-manager").with_attribute("deployment.environment", "test"),
        )
        .component("amst")
        .temporality(Temporality::Cumulative)
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            multiplier: 2.0,
        })
        .build(&s.reg)
        .unwrap()
}

/// The counter value and the histogram point of one request.
fn read(req: &ExportMetricsServiceRequest) -> (Option<i64>, Option<ExponentialHistogramDataPoint>) {
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    let mut counter = None;
    let mut hist = None;
    for m in metrics {
        match (&m.data, m.name.as_str()) {
            (Some(Data::Sum(s)), "dwcp_requests_total") => {
                if let Some(number_data_point::Value::AsInt(v)) = s.data_points[0].value {
                    counter = Some(v);
                }
            }
            (Some(Data::ExponentialHistogram(h)), "dwcp_request_duration_seconds") => {
                hist = Some(h.data_points[0].clone());
            }
            _ => {}
        }
    }
    (counter, hist)
}

fn last_totals(rx: &Receiver) -> Option<(i64, u64)> {
    let reqs = rx.metrics_requests();
    let (c, h) = read(reqs.last()?);
    Some((c?, h?.count))
}

fn as_exp(p: &ExponentialHistogramDataPoint) -> Exp {
    let b = p.positive.clone().unwrap_or_default();
    Exp {
        scale: p.scale,
        zero_count: p.zero_count,
        offset: b.offset,
        counts: b.bucket_counts,
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        sum_is_exact: true,
        min: p.min.unwrap_or(0.0),
        max: p.max.unwrap_or(0.0),
        slot_precision: 1.0 / 128.0,
    }
}

/// Checks a received histogram point against the live series.
fn check_histogram(p: &ExponentialHistogramDataPoint, lat: &Histogram, values: &[u64]) {
    let snap = lat.snapshot();
    assert_eq!(p.count, values.len() as u64);
    assert_eq!(p.sum, Some(values.iter().sum::<u64>() as f64 / 1e9));
    let e = as_exp(p);
    assert_eq!(e.zero_count + e.counts.iter().sum::<u64>(), p.count);
    // Bucket counts: every recorded value lies in the bucket holding its HDR slot.
    let mut expected = std::collections::BTreeMap::new();
    for &v in values {
        let lo = snap.iter().find(|&(l, h, _)| l <= v && v <= h).unwrap().0 as f64 / 1e9;
        let mut i = e.offset;
        while e.upper_bound(i) < lo {
            i += 1;
        }
        while e.lower_bound(i) >= lo {
            i -= 1;
        }
        *expected.entry(i).or_insert(0u64) += 1;
    }
    for (k, &c) in e.counts.iter().enumerate() {
        let i = e.offset + k as i32;
        assert_eq!(c, expected.get(&i).copied().unwrap_or(0), "bucket {i}");
    }
    for q in [0.5, 0.9, 0.99] {
        let ours = snap.quantile(q) as f64 / 1e9;
        let got = e.quantile(q);
        assert!(
            (got - ours).abs() <= ours * e.relative_error_bound() * (1.0 + 1e-12),
            "q={q}: {got} vs {ours}"
        );
    }
}

fn pushes_what_was_recorded(kind: Kind) {
    let rx = Receiver::start(kind);
    let s = setup();
    let values: Vec<u64> = (0..500u64).map(|i| 200_000 + i * i * 397).collect();
    for &v in &values {
        s.lat.record(v);
    }
    s.requests.inc_by(500);
    let exp = exporter(&s, &rx, Duration::from_millis(200), Duration::from_secs(10));
    assert!(
        rx.wait_until(WAIT, |rx| last_totals(rx) == Some((500, 500))),
        "no push with the totals; got {:?}",
        last_totals(&rx)
    );
    let reqs = rx.metrics_requests();
    let req = reqs.last().unwrap();
    let res = &req.resource_metrics[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes;
    assert_eq!(attr_str(res, "service.name"), Some("dwcp-manager"));
    assert_eq!(attr_str(res, "service.version"), Some("3.0.0"));
    assert_eq!(attr_str(res, "dwcp.component"), Some("amst"));
    assert_eq!(attr_str(res, "deployment.environment"), Some("test"));
    assert_eq!(attr_str(res, "service.instance.id").map(str::len), Some(36));
    let (_, h) = read(req);
    check_histogram(&h.unwrap(), &s.lat, &values);

    // A clean flush on shutdown: values recorded just before it arrive.
    s.requests.inc_by(7);
    s.lat.record(5_000_000);
    let mut all = values.clone();
    all.push(5_000_000);
    assert!(
        exp.shutdown(Duration::from_secs(30)),
        "final push delivered"
    );
    let reqs = rx.metrics_requests();
    let (c, h) = read(reqs.last().unwrap());
    assert_eq!(c, Some(507));
    check_histogram(&h.unwrap(), &s.lat, &all);
    // Nothing more arrives after the shutdown.
    let n = rx.request_count();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(rx.request_count(), n);
    assert!(
        exp.shutdown(Duration::from_secs(1)),
        "second shutdown is a no-op"
    );
}

#[test]
fn grpc_push_carries_what_was_recorded() {
    pushes_what_was_recorded(Kind::Grpc);
}

#[test]
fn http_push_carries_what_was_recorded() {
    pushes_what_was_recorded(Kind::Http);
}

fn outage(kind: Kind) {
    let mut rx = Receiver::start(kind);
    let s = setup();
    let exp = exporter(
        &s,
        &rx,
        Duration::from_millis(150),
        Duration::from_millis(500),
    );
    s.requests.inc_by(10);
    s.lat.record(1_000_000);
    assert!(rx.wait_until(WAIT, |rx| last_totals(rx) == Some((10, 1))));

    rx.stop();
    let before = rx.request_count();
    // Record during the outage, from another thread, while pushes fail: recording never
    // waits for the exporter.
    let recorder = {
        let (lat, requests) = (s.lat.clone(), s.requests.clone());
        std::thread::spawn(move || {
            let t = Instant::now();
            for i in 0..10_000u64 {
                lat.record(1_000_000 + i * 100);
                requests.inc();
            }
            t.elapsed()
        })
    };
    let took = recorder.join().unwrap();
    assert!(took < Duration::from_secs(30), "recording took {took:?}");
    // Wait until at least one push failed (the transport counts it).
    let failed = || {
        otlp_support::counter(
            &s.reg,
            "dwcp_telemetry_otlp_exports_total",
            &["metrics", "failed"],
        )
    };
    let end = Instant::now() + WAIT;
    while failed() == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failed() > 0, "a push failed during the outage");
    assert_eq!(rx.request_count(), before);

    rx.restart();
    // A push that gets through after the restart carries everything recorded before and
    // during. (Not necessarily the first: one collected while the recorder ran may still be
    // retrying when the receiver comes back, and lands with part of it.)
    assert!(
        rx.wait_until(WAIT, |rx| last_totals(rx) == Some((10_010, 10_001))),
        "no push with the complete totals after the restart; last {:?}",
        last_totals(&rx)
    );
    let reqs = rx.metrics_requests();
    let (_, h) = read(reqs.last().unwrap());
    let mut values = vec![1_000_000u64];
    values.extend((0..10_000u64).map(|i| 1_000_000 + i * 100));
    check_histogram(&h.unwrap(), &s.lat, &values);
    assert!(exp.shutdown(Duration::from_secs(30)));
}

#[test]
fn grpc_receiver_killed_and_restarted_gets_complete_totals() {
    outage(Kind::Grpc);
}

#[test]
fn http_receiver_killed_and_restarted_gets_complete_totals() {
    outage(Kind::Http);
}

#[test]
fn delta_push_folds_a_failed_push_into_the_next() {
    let mut rx = Receiver::http();
    let s = setup();
    // A long per-attempt timeout: an attempt that is slow on a busy machine but delivered must
    // not be retried (the receiver would count its delta twice). The push meant to fail fails
    // fast anyway: nobody listens, so every attempt is refused at once.
    let exp = OtlpMetricsExporter::builder()
        .exporter_config(config(&rx, Duration::from_secs(10)))
        .periodic_config(PeriodicConfig {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_millis(500),
        })
        .resource(ResourceConfig::new("dwcp-manager"))
        .temporality(Temporality::Delta)
        .build(&s.reg)
        .unwrap();
    s.requests.inc_by(3);
    assert!(exp.flush(Duration::from_secs(30)));
    rx.stop();
    s.requests.inc_by(4);
    assert!(!exp.flush(Duration::from_secs(5)), "nobody is listening");
    // The failed push has ended (the transport counted it) before the receiver comes back, so
    // none of its retries can reach the restarted one.
    let failed = || {
        otlp_support::counter(
            &s.reg,
            "dwcp_telemetry_otlp_exports_total",
            &["metrics", "failed"],
        )
    };
    assert!(
        rx.wait_until(Duration::from_secs(30), |_| failed() == 1),
        "the failed push was not counted: {}",
        failed()
    );
    rx.restart();
    s.requests.inc_by(5);
    assert!(exp.flush(Duration::from_secs(30)));
    let counts: Vec<i64> = rx
        .metrics_requests()
        .iter()
        .filter_map(|r| read(r).0)
        .collect();
    assert_eq!(counts, vec![3, 9]);
    assert!(exp.shutdown(Duration::from_secs(30)));
}

#[test]
fn environment_alone_turns_the_push_on() {
    let rx = Receiver::http();
    let s = setup();
    s.requests.inc_by(2);
    let endpoint = rx.endpoint();
    let env = |vars: &'static [(&'static str, &'static str)], endpoint: Option<String>| {
        move |k: &str| {
            if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
                return endpoint.clone();
            }
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    // Nothing configured: no exporter.
    assert!(init_metrics_from_lookup(env(&[], None), &s.reg, "amst")
        .unwrap()
        .is_none());
    // Disabled: none either.
    assert!(init_metrics_from_lookup(
        env(&[("OTEL_METRICS_EXPORTER", "none")], Some(endpoint.clone())),
        &s.reg,
        "amst"
    )
    .unwrap()
    .is_none());
    // An endpoint is all it takes.
    let exp = init_metrics_from_lookup(
        env(
            &[
                ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
                ("OTEL_SERVICE_NAME", "dwcp-manager"),
                ("OTEL_RESOURCE_ATTRIBUTES", "region=eu-west-1"),
            ],
            Some(endpoint),
        ),
        &s.reg,
        "amst",
    )
    .unwrap()
    .expect("an exporter");
    assert_eq!(exp.periodic_config().interval, Duration::from_millis(100));
    assert!(rx.wait_until(WAIT, |rx| rx
        .metrics_requests()
        .last()
        .is_some_and(|r| read(r).0 == Some(2))));
    let reqs = rx.metrics_requests();
    let res = &reqs[0].resource_metrics[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes;
    assert_eq!(attr_str(res, "service.name"), Some("dwcp-manager"));
    assert_eq!(attr_str(res, "region"), Some("eu-west-1"));
    assert_eq!(attr_str(res, "dwcp.component"), Some("amst"));
    assert!(exp.shutdown(Duration::from_secs(30)));
}
