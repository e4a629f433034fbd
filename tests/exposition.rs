//! Exact-text tests of the Prometheus text 0.0.4 and OpenMetrics 1.0 encoders.

use dwcp_telemetry::export::prometheus::{render, Format, TextEncoder};
use dwcp_telemetry::{FamilySnapshot, Registry, Unit, Value};

/// Encode only the user's families (not the `dwcp_telemetry_*` self-metrics).
fn encode(registry: &Registry, format: Format) -> String {
    let families: Vec<FamilySnapshot> = registry
        .collect()
        .into_iter()
        .filter(|f| !f.descriptor.name().starts_with("dwcp_telemetry_"))
        .collect();
    let mut out = String::new();
    TextEncoder::new(format).encode(&families, &registry.const_labels(), &mut out);
    out
}

fn sample_registry() -> Registry {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .dynamic_labels(["operation"])
        .buckets(vec![0.001, 0.01, 0.1, 1.0])
        .exact_sum(true)
        .register()
        .unwrap();
    let h = lat.with_labels_or_overflow(&["migrate"]);
    for ns in [
        500_000,
        500_000,
        500_000,
        5_000_000,
        5_000_000,
        50_000_000,
        2_000_000_000u64,
    ] {
        h.record(ns);
    }
    let req = reg
        .counter("dwcp_requests_total", "Requests by operation and status")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap();
    req.with_labels_or_overflow(&["migrate", "ok"]).inc_by(41);
    req.with_labels_or_overflow(&["migrate", "error"]).inc();
    let cb = reg
        .gauge(
            "dwcp_circuit_breaker_state",
            "Circuit breaker state (0=closed, 1=open, 2=half-open)",
        )
        .dynamic_labels(["circuit"])
        .register()
        .unwrap();
    cb.with_labels_or_overflow(&["database"]).set(2.0);
    reg
}

#[test]
fn text_0_0_4_exact() {
    let text = encode(&sample_registry(), Format::Text);
    let expected = "\
# HELP dwcp_request_duration_seconds Request latency
# TYPE dwcp_request_duration_seconds histogram
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.001\"} 3
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.01\"} 5
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.1\"} 6
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"1\"} 6
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"+Inf\"} 7
dwcp_request_duration_seconds_sum{version=\"3.0.0\",operation=\"migrate\"} 2.0615
dwcp_request_duration_seconds_count{version=\"3.0.0\",operation=\"migrate\"} 7
# HELP dwcp_requests_total Requests by operation and status
# TYPE dwcp_requests_total counter
dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"ok\"} 41
dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"error\"} 1
# HELP dwcp_circuit_breaker_state Circuit breaker state (0=closed, 1=open, 2=half-open)
# TYPE dwcp_circuit_breaker_state gauge
dwcp_circuit_breaker_state{version=\"3.0.0\",circuit=\"database\"} 2
";
    assert_eq!(text, expected);
}

#[test]
fn openmetrics_exact() {
    let text = encode(&sample_registry(), Format::OpenMetrics);
    let expected = "\
# HELP dwcp_request_duration_seconds Request latency
# TYPE dwcp_request_duration_seconds histogram
# UNIT dwcp_request_duration_seconds seconds
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.001\"} 3
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.01\"} 5
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"0.1\"} 6
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"1.0\"} 6
dwcp_request_duration_seconds_bucket{version=\"3.0.0\",operation=\"migrate\",le=\"+Inf\"} 7
dwcp_request_duration_seconds_sum{version=\"3.0.0\",operation=\"migrate\"} 2.0615
dwcp_request_duration_seconds_count{version=\"3.0.0\",operation=\"migrate\"} 7
# HELP dwcp_requests Requests by operation and status
# TYPE dwcp_requests counter
dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"ok\"} 41
dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"error\"} 1
# HELP dwcp_circuit_breaker_state Circuit breaker state (0=closed, 1=open, 2=half-open)
# TYPE dwcp_circuit_breaker_state gauge
dwcp_circuit_breaker_state{version=\"3.0.0\",circuit=\"database\"} 2
# EOF
";
    assert_eq!(text, expected);
}

#[test]
fn hostile_label_values_and_help_are_escaped() {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let c = reg
        .counter("dwcp_errors", "Errors \"by\" type\\kind\nsecond line")
        .dynamic_labels(["type"])
        .register()
        .unwrap();
    for v in [
        "quote\"d",
        "back\\slash",
        "new\nline",
        "tab\there",
        "ünï ✓ 日本",
        "",
    ] {
        c.with_labels_or_overflow(&[v]).inc();
    }
    let text = encode(&reg, Format::Text);
    assert_eq!(
        text,
        "# HELP dwcp_errors_total Errors \"by\" type\\\\kind\\nsecond line\n\
         # TYPE dwcp_errors_total counter\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"quote\\\"d\"} 1\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"back\\\\slash\"} 1\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"new\\nline\"} 1\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"tab\there\"} 1\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"ünï ✓ 日本\"} 1\n\
         dwcp_errors_total{version=\"3.0.0\",type=\"\"} 1\n"
    );
    let om = encode(&reg, Format::OpenMetrics);
    assert!(om.starts_with(
        "# HELP dwcp_errors Errors \\\"by\\\" type\\\\kind\\nsecond line\n# TYPE dwcp_errors counter\n"
    ));
    assert!(om.contains("dwcp_errors_total{version=\"3.0.0\",type=\"quote\\\"d\"} 1\n"));
}

#[test]
fn gauges_spell_nan_and_infinities() {
    let reg = Registry::builder().version("v\"1").build().unwrap();
    let g = reg
        .gauge("dwcp_ratio", "r")
        .dynamic_labels(["k"])
        .unit(Unit::Ratio)
        .register()
        .unwrap();
    // `Gauge::set(NaN)` is rejected (and counted) by the core, so NaN can only reach the
    // encoder from a snapshot built elsewhere: set it on the collected value.
    g.with_labels_or_overflow(&["nan"]).set(1.0);
    g.with_labels_or_overflow(&["pinf"]).set(f64::INFINITY);
    g.with_labels_or_overflow(&["ninf"]).set(f64::NEG_INFINITY);
    g.with_labels_or_overflow(&["frac"]).set(-0.125);
    g.with_labels_or_overflow(&["tiny"]).set(1e-300);
    let mut families: Vec<FamilySnapshot> = reg
        .collect()
        .into_iter()
        .filter(|f| f.descriptor.name() == "dwcp_ratio")
        .collect();
    families[0].series[0].value = Value::Gauge(f64::NAN);
    let mut text = String::new();
    TextEncoder::new(Format::Text).encode(&families, &reg.const_labels(), &mut text);
    assert_eq!(
        text,
        "# HELP dwcp_ratio r\n# TYPE dwcp_ratio gauge\n\
         dwcp_ratio{version=\"v\\\"1\",k=\"nan\"} NaN\n\
         dwcp_ratio{version=\"v\\\"1\",k=\"pinf\"} +Inf\n\
         dwcp_ratio{version=\"v\\\"1\",k=\"ninf\"} -Inf\n\
         dwcp_ratio{version=\"v\\\"1\",k=\"frac\"} -0.125\n\
         dwcp_ratio{version=\"v\\\"1\",k=\"tiny\"} 1e-300\n"
    );
    // OpenMetrics: UNIT only when the name ends in the unit.
    let om = encode(&reg, Format::OpenMetrics);
    assert!(
        om.starts_with("# HELP dwcp_ratio r\n# TYPE dwcp_ratio gauge\n# UNIT dwcp_ratio ratio\n")
    );
}

#[test]
fn unit_line_only_when_the_name_carries_the_unit() {
    let reg = Registry::builder().version("1").build().unwrap();
    reg.histogram("rpc_latency", "no unit suffix")
        .unit(Unit::Seconds)
        .register()
        .unwrap()
        .handle()
        .record(1);
    let om = encode(&reg, Format::OpenMetrics);
    assert!(!om.contains("# UNIT"), "{om}");
    // Default buckets (Prometheus'), le canonical, 11 + Inf.
    assert_eq!(om.matches("rpc_latency_bucket{").count(), 12);
    assert!(om.contains("le=\"0.005\"} 1\n"));
    assert!(om.contains("le=\"10.0\"} 1\n"));
}

#[test]
fn recovery_durations_get_the_seed_buckets() {
    let reg = Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()
        .unwrap();
    let rec = reg
        .histogram(
            "dwcp_recovery_duration_seconds",
            "Duration of recovery operations in seconds",
        )
        .dynamic_labels(["component"])
        .register()
        .unwrap();
    rec.with_labels_or_overflow(&["amst"]).record_secs(0.3);
    rec.with_labels_or_overflow(&["amst"]).record_secs(7.0);
    let text = encode(&reg, Format::Text);
    let les: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("_bucket"))
        .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert_eq!(les, ["0.1", "0.5", "1", "2", "5", "10", "30", "+Inf"]);
    assert!(text.contains("le=\"0.5\"} 1\n"));
    assert!(text.contains("le=\"5\"} 1\n"));
    assert!(text.contains("le=\"10\"} 2\n"));
}

/// Buckets are an export-time view: the same recorded data exported through coarse and dense
/// bounds agrees with the exact counts at every bound.
#[test]
fn denser_buckets_lose_nothing() {
    let values_ms: Vec<u64> = (0..500u64).map(|i| 1 + (i * 37) % 250).collect();
    let dense: Vec<f64> = (1..=250).map(|ms| ms as f64 / 1000.0).collect();
    for bounds in [vec![0.005, 0.05, 0.25], dense] {
        let reg = Registry::builder().version("1").build().unwrap();
        let h = reg
            .histogram("op_duration_seconds", "d")
            // 3 digits: slots 0.1 % wide, finer than the 1 ms spacing of values and bounds.
            .significant_digits(3)
            .buckets(bounds.clone())
            .register()
            .unwrap()
            .handle();
        for &ms in &values_ms {
            h.record(ms * 1_000_000);
        }
        let text = encode(&reg, Format::Text);
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("op_duration_seconds_bucket") && !l.contains("+Inf"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        let expected: Vec<u64> = bounds
            .iter()
            .map(|b| {
                values_ms
                    .iter()
                    .filter(|&&v| v as f64 / 1000.0 <= *b)
                    .count() as u64
            })
            .collect();
        assert_eq!(counts, expected);
    }
}

#[test]
fn empty_registry_and_eof() {
    let reg = Registry::builder().version("1").build().unwrap();
    assert_eq!(encode(&reg, Format::OpenMetrics), "# EOF\n");
    assert_eq!(encode(&reg, Format::Text), "");
    // The full render includes the self-metrics.
    let full = render(&reg, Format::Text);
    assert!(full.contains("# TYPE dwcp_telemetry_label_errors_total counter\n"));
    assert!(full.contains("dwcp_telemetry_label_errors_total{version=\"1\"} 0\n"));
}

#[test]
fn invalid_names_are_rejected_at_registration() {
    let reg = Registry::builder().version("1").build().unwrap();
    assert!(reg.counter("dwcp-requests", "h").register().is_err());
    assert!(reg.counter("9lives", "h").register().is_err());
    assert!(reg
        .gauge("ok_name", "h")
        .dynamic_labels(["bad-label"])
        .register()
        .is_err());
    assert!(reg
        .histogram("ok_hist", "h")
        .dynamic_labels(["le"])
        .register()
        .is_err());
}

/// `render` streams histograms from their live slots; encoding collected snapshots must give
/// the same text, byte for byte (estimated and exact sums, several layouts, overflow series).
#[test]
fn streaming_render_equals_snapshot_encoding() {
    let reg = Registry::builder()
        .version("3.0.0")
        .cardinality_limit(3)
        .build()
        .unwrap();
    let est = reg
        .histogram("est_seconds", "estimated sum")
        .dynamic_labels(["k"])
        .buckets(vec![0.0, 1e-6, 0.001, 0.5, 3600.0, 1e12])
        .register()
        .unwrap();
    let exact = reg
        .histogram("exact_bytes", "exact sum")
        .unit(Unit::Bytes)
        .significant_digits(3)
        .exact_sum(true)
        .buckets(vec![1.0, 10.0, 1000.0, 1e6])
        .register()
        .unwrap();
    let mut rng = dwcp_support::Rng::new(7);
    for i in 0..10 {
        // 10 label sets past a limit of 3: the rest land in the overflow series.
        let h = est.with_labels_or_overflow(&[&format!("s{i}")]);
        for _ in 0..500 {
            h.record((rng.unit() * 1e10) as u64);
        }
        exact.handle().record(rng.next_u64() % 5_000_000);
    }
    est.with_labels_or_overflow(&["zero"]).record(0);
    for format in [Format::Text, Format::OpenMetrics] {
        let mut from_snapshots = String::new();
        TextEncoder::new(format).encode(&reg.collect(), &reg.const_labels(), &mut from_snapshots);
        assert_eq!(render(&reg, format), from_snapshots);
    }
    assert!(render(&reg, Format::Text)
        .contains("est_seconds_bucket{version=\"3.0.0\",k=\"__overflow__\",le=\"0\"} 1\n"));
}

/// Error ratios pair counters by configuration: a policy names the denominator of an error
/// counter whose name follows no convention.
#[test]
fn error_ratio_denominators_come_from_policies() {
    use dwcp_telemetry::export::summary::Summarizer;
    use dwcp_telemetry::{MetricPolicy, NameMatch};
    let reg = Registry::builder()
        .version("3.0.0")
        .policy(
            NameMatch::exact("dwcp_failed_handshakes_total"),
            MetricPolicy::new().error_ratio_of(["dwcp_handshakes_total"]),
        )
        .build()
        .unwrap();
    let summarizer = Summarizer::new(reg.clone());
    let calls = reg
        .counter("dwcp_handshakes_total", "Handshakes")
        .register()
        .unwrap();
    let failed = reg
        .counter("dwcp_failed_handshakes_total", "Failed handshakes")
        .register()
        .unwrap();
    assert_eq!(
        failed.descriptor().error_denominators(),
        Some(&["dwcp_handshakes_total".to_string()][..])
    );
    calls.handle().inc_by(8);
    failed.handle().inc_by(2);
    let summary = summarizer.summary();
    assert_eq!(summary.error_rates.len(), 1, "{:?}", summary.error_rates);
    let e = &summary.error_rates[0];
    assert_eq!(
        (e.errors.as_str(), e.requests.as_str(), e.error_ratio),
        (
            "dwcp_failed_handshakes_total",
            "dwcp_handshakes_total",
            Some(0.25)
        )
    );
}
