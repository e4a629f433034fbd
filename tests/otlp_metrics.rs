//! OTLP metrics requests built from a registry, encoded and decoded with prost: exact counts,
//! sums, bucket counts, reconstructed quantiles, temporality and resource.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dwcp_telemetry::export::exponential::{ExponentialConfig, ExponentialHistogram as Exp};
use dwcp_telemetry::export::otlp::metrics::{
    HistogramForm, MetricsEncoder, MetricsOptions, ResourceAttributes, Temporality,
};
use dwcp_telemetry::Registry;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, ExponentialHistogramDataPoint,
    HistogramDataPoint, Metric, NumberDataPoint,
};
use proptest::prelude::*;
use prost::Message;

fn round_trip(req: &ExportMetricsServiceRequest) -> ExportMetricsServiceRequest {
    let bytes = req.encode_to_vec();
    ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("decodes")
}

fn metric<'r>(req: &'r ExportMetricsServiceRequest, name: &str) -> &'r Metric {
    req.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn attrs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn int(p: &NumberDataPoint) -> i64 {
    match p.value {
        Some(number_data_point::Value::AsInt(v)) => v,
        other => panic!("not an int point: {other:?}"),
    }
}

fn exp_points(m: &Metric) -> (&[ExponentialHistogramDataPoint], i32) {
    match &m.data {
        Some(Data::ExponentialHistogram(h)) => (&h.data_points, h.aggregation_temporality),
        other => panic!("not exponential: {other:?}"),
    }
}

fn explicit_points(m: &Metric) -> (&[HistogramDataPoint], i32) {
    match &m.data {
        Some(Data::Histogram(h)) => (&h.data_points, h.aggregation_temporality),
        other => panic!("not explicit: {other:?}"),
    }
}

/// The point as our re-binning type, to read quantiles from what went over the wire.
fn as_exp(p: &ExponentialHistogramDataPoint) -> Exp {
    let b = p.positive.as_ref().expect("positive buckets");
    Exp {
        scale: p.scale,
        zero_count: p.zero_count,
        offset: b.offset,
        counts: b.bucket_counts.clone(),
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        sum_is_exact: true,
        min: p.min.unwrap_or(0.0),
        max: p.max.unwrap_or(0.0),
        slot_precision: 1.0 / 128.0,
    }
}

fn registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .const_label("instance", "node-1")
        .build()
        .unwrap()
}

#[test]
fn cumulative_request_exact_values() {
    let reg = registry();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .dynamic_labels(["operation"])
        .exact_sum(true)
        .register()
        .unwrap();
    let migrate = lat.with_labels_or_overflow(&["migrate"]);
    // 900 × 3 ms, 95 × 30 ms, 5 × 300 ms, and 2 zeros.
    for (n, ns) in [
        (900, 3_000_000u64),
        (95, 30_000_000),
        (5, 300_000_000),
        (2, 0),
    ] {
        for _ in 0..n {
            migrate.record(ns);
        }
    }
    let requests = reg
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap();
    requests
        .with_labels_or_overflow(&["migrate", "ok"])
        .inc_by(1000);
    reg.gauge("dwcp_circuit_breaker_state", "Breaker")
        .dynamic_labels(["circuit"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["database"])
        .set(2.0);

    let resource = ResourceAttributes::new(
        "dwcp-manager",
        "3.0.0",
        "host-a:9090",
        "amst",
        &[
            ("deployment.environment".to_owned(), "prod".to_owned()),
            ("service.name".to_owned(), "ignored".to_owned()),
        ],
    );
    let mut enc = MetricsEncoder::new(MetricsOptions {
        resource,
        ..MetricsOptions::default()
    });
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let req = round_trip(&enc.build(&reg, now));

    let rm = &req.resource_metrics[0];
    assert_eq!(
        attrs(&rm.resource.as_ref().unwrap().attributes),
        vec![
            ("service.name".to_owned(), "dwcp-manager".to_owned()),
            ("service.version".to_owned(), "3.0.0".to_owned()),
            ("service.instance.id".to_owned(), "host-a:9090".to_owned()),
            ("dwcp.component".to_owned(), "amst".to_owned()),
            ("deployment.environment".to_owned(), "prod".to_owned()),
        ]
    );
    assert_eq!(
        rm.scope_metrics[0].scope.as_ref().unwrap().name,
        "dwcp-telemetry"
    );

    let c = metric(&req, "dwcp_requests_total");
    let Some(Data::Sum(sum)) = &c.data else {
        panic!("counter is not a Sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(int(&sum.data_points[0]), 1000);
    assert_eq!(
        attrs(&sum.data_points[0].attributes),
        vec![
            ("version".to_owned(), "3.0.0".to_owned()),
            ("instance".to_owned(), "node-1".to_owned()),
            ("operation".to_owned(), "migrate".to_owned()),
            ("status".to_owned(), "ok".to_owned()),
        ]
    );
    let p = &sum.data_points[0];
    assert_eq!(p.time_unix_nano, 1_800_000_000_000_000_000);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert!(p.start_time_unix_nano > 0 && p.start_time_unix_nano <= wall);

    let g = metric(&req, "dwcp_circuit_breaker_state");
    let Some(Data::Gauge(gauge)) = &g.data else {
        panic!("gauge is not a Gauge")
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(2.0))
    );

    let h = metric(&req, "dwcp_request_duration_seconds");
    assert_eq!(h.unit, "s");
    assert_eq!(h.description, "Request latency");
    let (points, temporality) = exp_points(h);
    assert_eq!(temporality, AggregationTemporality::Cumulative as i32);
    let p = &points[0];
    assert_eq!(p.count, 1002);
    assert_eq!(p.zero_count, 2);
    assert_eq!(p.zero_threshold, 0.0);
    let buckets = p.positive.as_ref().unwrap();
    assert_eq!(buckets.bucket_counts.iter().sum::<u64>(), 1000);
    // 3 ms … 300 ms is 6.6 powers of two: scale 4 (16 per power, ≤ 160 buckets).
    assert_eq!(p.scale, 4);
    assert_eq!(buckets.bucket_counts.len(), 108);
    assert_eq!(buckets.bucket_counts[0], 900);
    assert_eq!(*buckets.bucket_counts.last().unwrap(), 5);
    assert_eq!(buckets.bucket_counts.iter().filter(|&&c| c != 0).count(), 3);
    // The exact sum, 7_050_000_000 ns, divided once: 7.05 exactly rounded.
    assert_eq!(p.sum, Some(7.05));
    assert_eq!(p.min, Some(0.0));
    let snap = migrate.snapshot();
    assert_eq!(p.max, Some(snap.max() as f64 / 1e9));
    // Quantiles reconstructed from the wire agree with our snapshot within the stated bound.
    let e = as_exp(p);
    for q in [0.5, 0.9, 0.99, 0.999] {
        let ours = snap.quantile(q) as f64 / 1e9;
        let got = e.quantile(q);
        assert!(
            (got - ours).abs() <= ours * e.relative_error_bound() * (1.0 + 1e-12),
            "q={q}: {got} vs {ours}"
        );
    }
    // And the recorded values sit inside the buckets that hold them.
    assert!(e.quantile(0.5) >= 0.003 && e.quantile(0.5) < 0.003 * 2f64.powf(1.0 / 16.0) * 1.008);
    assert!(e.quantile(0.99) >= 0.03 * 0.99 && e.quantile(0.99) < 0.03 * 1.05);
}

#[test]
fn explicit_bucket_histograms_use_the_export_bounds() {
    let reg = registry();
    let rec = reg
        .histogram("dwcp_recovery_duration_seconds", "Recovery")
        .buckets([0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0])
        .register()
        .unwrap()
        .handle();
    // 0.5 s is on a bound: inside it, as in the Prometheus exposition.
    for ns in [50_000_000u64, 500_000_000, 3_000_000_000, 40_000_000_000] {
        rec.record(ns);
    }
    let mut enc = MetricsEncoder::new(MetricsOptions {
        histograms: HistogramForm::Explicit,
        ..MetricsOptions::default()
    });
    let req = round_trip(&enc.build(&reg, SystemTime::now()));
    let (points, _) = explicit_points(metric(&req, "dwcp_recovery_duration_seconds"));
    let p = &points[0];
    assert_eq!(p.explicit_bounds, vec![0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]);
    assert_eq!(p.bucket_counts, vec![1, 1, 0, 0, 1, 0, 0, 1]);
    assert_eq!(p.count, 4);
    assert!((p.sum.unwrap() - 43.55).abs() < 43.55 / 128.0);
}

#[test]
fn delta_explicit_histograms() {
    let reg = registry();
    let h = reg
        .histogram("dwcp_recovery_duration_seconds", "Recovery")
        .buckets([0.1, 1.0])
        .register()
        .unwrap()
        .handle();
    let mut enc = MetricsEncoder::new(MetricsOptions {
        histograms: HistogramForm::Explicit,
        temporality: Temporality::Delta,
        ..MetricsOptions::default()
    });
    h.record(50_000_000);
    h.record(2_000_000_000);
    let req = round_trip(&enc.build(&reg, SystemTime::now()));
    let (points, t) = explicit_points(metric(&req, "dwcp_recovery_duration_seconds"));
    assert_eq!(t, AggregationTemporality::Delta as i32);
    assert_eq!(points[0].bucket_counts, vec![1, 0, 1]);
    enc.commit();
    h.record(500_000_000);
    let req = round_trip(&enc.build(&reg, SystemTime::now()));
    let (points, _) = explicit_points(metric(&req, "dwcp_recovery_duration_seconds"));
    assert_eq!(points[0].bucket_counts, vec![0, 1, 0]);
    assert_eq!(points[0].count, 1);
}

#[test]
fn delta_temporality_counts_from_the_last_commit() {
    let reg = registry();
    let c = reg
        .counter("dwcp_requests_total", "Requests")
        .register()
        .unwrap()
        .handle();
    let h = reg
        .histogram("dwcp_request_duration_seconds", "Latency")
        .exact_sum(true)
        .register()
        .unwrap()
        .handle();
    let mut enc = MetricsEncoder::new(MetricsOptions {
        temporality: Temporality::Delta,
        ..MetricsOptions::default()
    });
    let t = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    c.inc_by(10);
    h.record(1_000_000);
    let first = round_trip(&enc.build(&reg, t(100)));
    enc.commit();
    let sum_point = |req: &ExportMetricsServiceRequest| {
        let Some(Data::Sum(s)) = &metric(req, "dwcp_requests_total").data else {
            panic!()
        };
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Delta as i32
        );
        (
            int(&s.data_points[0]),
            s.data_points[0].start_time_unix_nano,
        )
    };
    assert_eq!(sum_point(&first).0, 10);

    c.inc_by(5);
    h.record(2_000_000);
    h.record(2_000_000);
    // This one "fails" (never committed): the next request still counts from t=100.
    let lost = round_trip(&enc.build(&reg, t(110)));
    assert_eq!(sum_point(&lost), (5, 100_000_000_000));
    c.inc_by(1);
    let next = round_trip(&enc.build(&reg, t(120)));
    assert_eq!(sum_point(&next), (6, 100_000_000_000));
    let (points, temporality) = exp_points(metric(&next, "dwcp_request_duration_seconds"));
    assert_eq!(temporality, AggregationTemporality::Delta as i32);
    assert_eq!(points[0].count, 2);
    assert_eq!(points[0].sum, Some(0.004));
    enc.commit();
    let quiet = round_trip(&enc.build(&reg, t(130)));
    assert_eq!(sum_point(&quiet), (0, 120_000_000_000));
    let (points, _) = exp_points(metric(&quiet, "dwcp_request_duration_seconds"));
    assert_eq!(points[0].count, 0);
    assert!(points[0]
        .positive
        .as_ref()
        .unwrap()
        .bucket_counts
        .is_empty());
    assert_eq!((points[0].min, points[0].max), (None, None));
}

#[test]
fn temporality_preference_from_the_environment() {
    let env = |v: Option<&'static str>| {
        move |k: &str| {
            assert_eq!(k, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
            v.map(str::to_owned)
        }
    };
    assert_eq!(
        Temporality::from_lookup(env(None)),
        Ok(Temporality::Cumulative)
    );
    assert_eq!(
        Temporality::from_lookup(env(Some(""))),
        Ok(Temporality::Cumulative)
    );
    assert_eq!(
        Temporality::from_lookup(env(Some("DELTA"))),
        Ok(Temporality::Delta)
    );
    assert_eq!(
        Temporality::from_lookup(env(Some("LowMemory"))),
        Ok(Temporality::Delta)
    );
    let err = Temporality::from_lookup(env(Some("hourly"))).unwrap_err();
    assert!(
        err.contains("hourly") && err.contains("cumulative"),
        "{err}"
    );
}

#[test]
fn scale_follows_the_configured_limits() {
    let reg = registry();
    let h = reg
        .histogram("op_seconds", "Op")
        .register()
        .unwrap()
        .handle();
    // 1 µs to 1 s: 19.9 powers of two, so 160 buckets fit at scale 3 (8 per power), 1000
    // at scale 5 (32 per power), and 2 only at scale −4 (16 powers per bucket).
    for ns in [1_000u64, 1_000_000_000] {
        h.record(ns);
    }
    for (max_scale, max_buckets, want) in [(8, 160, 3), (8, 1000, 5), (1, 1000, 1), (8, 2, -4)] {
        let mut enc = MetricsEncoder::new(MetricsOptions {
            histograms: HistogramForm::Exponential(
                ExponentialConfig::new(max_scale, max_buckets).unwrap(),
            ),
            ..MetricsOptions::default()
        });
        let req = round_trip(&enc.build(&reg, SystemTime::now()));
        let (points, _) = exp_points(metric(&req, "op_seconds"));
        assert_eq!(
            points[0].scale, want,
            "max_scale {max_scale}, {max_buckets} buckets"
        );
        assert_eq!(
            points[0]
                .positive
                .as_ref()
                .unwrap()
                .bucket_counts
                .iter()
                .sum::<u64>(),
            2
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever is recorded, the request's histogram has the recorded count, the exact sum,
    /// and quantiles within the stated bound of the snapshot's.
    #[test]
    fn histograms_round_trip(values in prop::collection::vec(0u64..10_000_000_000, 1..300)) {
        let reg = registry();
        let h = reg.histogram("x_seconds", "x").exact_sum(true).register().unwrap().handle();
        for &v in &values {
            h.record(v);
        }
        let mut enc = MetricsEncoder::new(MetricsOptions::default());
        let req = round_trip(&enc.build(&reg, SystemTime::now()));
        let (points, _) = exp_points(metric(&req, "x_seconds"));
        let p = &points[0];
        prop_assert_eq!(p.count, values.len() as u64);
        let total: u64 = values.iter().sum();
        prop_assert_eq!(p.sum, Some(total as f64 / 1e9));
        let e = as_exp(p);
        prop_assert_eq!(e.zero_count + e.counts.iter().sum::<u64>(), p.count);
        let snap = h.snapshot();
        for q in [0.25, 0.5, 0.9, 0.99, 1.0] {
            let ours = snap.quantile(q) as f64 / 1e9;
            prop_assert!((e.quantile(q) - ours).abs() <= ours * e.relative_error_bound() * (1.0 + 1e-12));
        }
    }
}
