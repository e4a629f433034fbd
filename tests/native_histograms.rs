//! A real Prometheus started with `--enable-feature=native-histograms` scrapes our `/metrics`
//! over protobuf: `histogram_quantile` on the native histogram agrees with our own snapshot's
//! p99 within the schema's error, and the same response carries the classic `le` buckets.

mod prom_support;

use std::time::Duration;

use dwcp_telemetry::export::exponential::{ExponentialHistogram, Rebinner};
use dwcp_telemetry::export::prometheus::protobuf::{MetricFamily, PROTOBUF_CONTENT_TYPE};
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::registry::RECOVERY_BUCKETS;
use dwcp_telemetry::{MetricPolicy, NameMatch, Registry};
use prost::Message;

use prom_support::{have, parse_response, raw, PrometheusProcess};

const PROM_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The families of a protobuf scrape, and the raw `Content-Type`.
fn scrape_protobuf(addr: std::net::SocketAddr) -> (String, Vec<MetricFamily>) {
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {PROM_ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    let bytes = raw(addr, req.as_bytes()).expect("scrape");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = parse_response(&bytes[..split]);
    assert_eq!(head.status, 200);
    let ct = head.header("content-type").unwrap_or("").to_owned();
    let mut body = &bytes[split + 4..];
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(MetricFamily::decode_length_delimited(&mut body).expect("delimited protobuf"));
    }
    (ct, out)
}

#[test]
fn prometheus_native_histograms_over_protobuf() {
    if !have("prometheus") {
        return;
    }
    let reg = Registry::builder()
        .version("3.0.0")
        .policy(
            NameMatch::exact("dwcp_recovery_duration_seconds"),
            MetricPolicy::new()
                .buckets(RECOVERY_BUCKETS)
                .native_histogram(false),
        )
        .build()
        .unwrap();
    let recovery = reg
        .histogram("dwcp_recovery_duration_seconds", "Time to recover")
        .dynamic_labels(["component"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["amst"]);
    let fam = reg
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .dynamic_labels(["operation"])
        .exact_sum(true)
        .register()
        .unwrap();
    let lat = fam.with_labels_or_overflow(&["migrate"]);

    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap();
    let target = server.local_addr();
    let prom =
        PrometheusProcess::start_with_args("dwcp", target, &["--enable-feature=native-histograms"]);
    let count_q = "histogram_count(dwcp_request_duration_seconds{operation=\"migrate\"})";
    prom.wait_until(Duration::from_secs(60), "a native scrape of zero", || {
        (prom.query_value(count_q) == Some(0.0)).then_some(())
    });

    // 1,000 values from 1 ms to 3 ms (quadratic spacing: denser at the low end).
    let values: Vec<u64> = (0..1000u64).map(|i| 1_000_000 + i * i * 2).collect();
    for &v in &values {
        lat.record(v);
    }
    for ns in [400_000_000u64, 3_000_000_000, 20_000_000_000] {
        recovery.record(ns);
    }
    prom.wait_until(Duration::from_secs(60), "the recorded values", || {
        (prom.query_value(count_q) == Some(1000.0)
            && prom.query_value("dwcp_recovery_duration_seconds_count") == Some(3.0))
        .then_some(())
    });

    let snap = lat.snapshot();
    let ours_p99 = snap.quantile(0.99) as f64 / 1e9;
    let mut e = ExponentialHistogram::default();
    Rebinner::default().rebin_snapshot(&snap, 1e9, &mut e);
    // 1–3 ms is 1.58 powers of two: schema 6 (64 buckets per power) is the highest that fits
    // 160 buckets.
    assert_eq!(e.scale, 6);
    // Prometheus interpolates inside the bucket (L, U] holding the rank; our p99 is the HDR
    // slot's highest value, whose lowest value is in that bucket. So the two differ by at most
    // one bucket growth and one slot width: a factor base·(1 + δ).
    let base = 2f64.powf(2f64.powi(-e.scale));
    let tol = base * (1.0 + e.slot_precision) - 1.0;

    let sum = prom
        .query_value("histogram_sum(dwcp_request_duration_seconds)")
        .unwrap();
    let exact_sum = values.iter().sum::<u64>() as f64 / 1e9;
    assert!(
        (sum - exact_sum).abs() <= 1e-12 * exact_sum,
        "sum {sum} vs {exact_sum}"
    );

    let instant = prom
        .query_value("histogram_quantile(0.99, dwcp_request_duration_seconds)")
        .unwrap();
    assert!(
        (instant - ours_p99).abs() <= tol * ours_p99,
        "instant p99 {instant} vs ours {ours_p99} (tolerance {tol})"
    );
    // The rate window must still hold the scrape of zero from before the values were recorded,
    // or the rate is empty and the quantile NaN: 5 minutes covers the test's waits (at most
    // 60 s each) however slow the machine, and rate() scales every bucket alike.
    let rated = prom
        .query_value("histogram_quantile(0.99, rate(dwcp_request_duration_seconds[5m]))")
        .unwrap();
    assert!(
        (rated - ours_p99).abs() <= tol * ours_p99,
        "rate p99 {rated} vs ours {ours_p99} (tolerance {tol}); {}",
        prom.query("dwcp_request_duration_seconds[5m]")
    );
    let p50 = prom
        .query_value("histogram_quantile(0.5, rate(dwcp_request_duration_seconds[5m]))")
        .unwrap();
    let ours_p50 = snap.quantile(0.5) as f64 / 1e9;
    assert!(
        (p50 - ours_p50).abs() <= tol * ours_p50,
        "p50 {p50} vs {ours_p50}"
    );

    // Prometheus 2.42 ingests only the native form of a histogram that carries both (2.45+
    // can keep both with `scrape_classic_histograms: true`): the classic series of the native
    // family are absent there, while the family whose policy opts out of native histograms
    // arrives as classic `_bucket` series through the same protobuf scrape (Prometheus' protobuf
    // parser writes integral `le` values as `1.0`).
    for (le, n) in [
        ("0.1", 0.0),
        ("0.5", 1.0),
        ("1.0", 1.0),
        ("5.0", 2.0),
        ("30.0", 3.0),
    ] {
        let q = format!("dwcp_recovery_duration_seconds_bucket{{component=\"amst\",le=\"{le}\"}}");
        assert_eq!(prom.query_value(&q), Some(n), "{q}: {}", prom.query(&q));
    }
    assert_eq!(
        prom.query_value("dwcp_recovery_duration_seconds_count"),
        Some(3.0)
    );
    assert_eq!(
        prom.query("count(dwcp_request_duration_seconds_bucket)")["data"]["result"],
        serde_json::json!([])
    );
    // The very response Prometheus got carries the classic buckets too.
    let (ct, fams) = scrape_protobuf(target);
    assert_eq!(ct, PROTOBUF_CONTENT_TYPE);
    let f = fams
        .iter()
        .find(|f| f.name == "dwcp_request_duration_seconds")
        .unwrap();
    let h = f.metric[0].histogram.as_ref().unwrap();
    assert_eq!(h.sample_count, 1000);
    assert_eq!(h.schema, 6);
    let classic: Vec<(f64, u64)> = h
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count))
        .collect();
    // Prometheus' default bounds; every value is ≤ 3 ms < 5 ms.
    assert_eq!(classic.len(), 11);
    assert_eq!(classic[0], (0.005, 1000));
    let deltas_total: i64 = h
        .positive_delta
        .iter()
        .scan(0i64, |c, d| {
            *c += d;
            Some(*c)
        })
        .sum();
    assert_eq!(deltas_total as u64 + h.zero_count, 1000);
    drop(prom);
    server.shutdown();
}

/// `/metrics` serves protobuf only when asked; text and OpenMetrics negotiation is unchanged,
/// and `HEAD` gives the protobuf body's length.
#[test]
fn metrics_content_negotiation() {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    reg.histogram("dwcp_request_duration_seconds", "Latency")
        .register()
        .unwrap()
        .handle()
        .record(3_000_000);
    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    let (ct, fams) = scrape_protobuf(addr);
    assert_eq!(ct, PROTOBUF_CONTENT_TYPE);
    let h = fams[0].metric[0].histogram.as_ref().unwrap();
    assert_eq!(
        (h.sample_count, h.schema, h.positive_delta.clone()),
        (1, 8, vec![1])
    );

    let text = prom_support::get(addr, "/metrics");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(text
        .body
        .contains("dwcp_request_duration_seconds_bucket{version=\"3.0.0\",le=\"0.005\"} 1\n"));
    let om = prom_support::request(
        addr,
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text;version=1.0.0")],
    );
    assert!(om
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
    // Protobuf listed below text: text wins.
    let low = prom_support::request(
        addr,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.1,text/plain;q=0.9",
        )],
    );
    assert!(low
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));

    let head = prom_support::request(addr, "HEAD", "/metrics", &[("Accept", PROM_ACCEPT)]);
    assert_eq!(head.header("content-type"), Some(PROTOBUF_CONTENT_TYPE));
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    let req = format!(
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {PROM_ACCEPT}\r\nConnection: close\r\n\r\n"
    );
    let bytes = raw(addr, req.as_bytes()).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(bytes.len() - split - 4, len);
    server.shutdown();
}
