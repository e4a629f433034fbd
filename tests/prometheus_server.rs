//! A real Prometheus scrapes our `/metrics` (it negotiates OpenMetrics) and its query API must
//! see exactly what we recorded: counter values, the p99 of a known distribution through
//! `histogram_quantile`, hostile label values, the `version` label and the unit.

mod prom_support;

use std::time::Duration;

use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::Registry;

use prom_support::{get, have, PrometheusProcess};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn prometheus_scrapes_and_agrees() {
    if !have("prometheus") {
        return;
    }
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
    let hostile = "q\"uote \\back\nnew ✓";
    let errors = reg
        .counter("dwcp_errors_total", "Errors")
        .dynamic_labels(["type"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&[hostile]);
    // Hostile values everywhere, so Prometheus' OpenMetrics parser sees all of them.
    let weird = reg
        .gauge("dwcp_weird_values", "Help with \"quotes\", \\ and\nnewline")
        .dynamic_labels(["v"])
        .register()
        .unwrap();
    for (i, v) in ["", "\"", "\\", "\n", "\t", "✓ 日本", "}{,=", "__overflow__"]
        .iter()
        .enumerate()
    {
        weird.with_labels_or_overflow(&[v]).set(match i {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => 1e-300,
            3 => -1.5e300,
            _ => i as f64,
        });
    }
    let breaker = reg
        .gauge(
            "dwcp_circuit_breaker_state",
            "Circuit breaker state (0=closed, 1=open, 2=half-open)",
        )
        .dynamic_labels(["circuit"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["database"]);

    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap();
    let target = server.local_addr();
    assert_eq!(get(target, "/health").status, 200);

    let prom = PrometheusProcess::start("dwcp-manager", target);
    let up = "up{job=\"dwcp-manager\"}";
    prom.wait_until(Duration::from_secs(60), "first scrape", || {
        (prom.query_value(up) == Some(1.0)
            && prom.query_value("dwcp_requests_total{operation=\"migrate\"}") == Some(0.0))
        .then_some(())
    });

    // A known distribution, recorded after a scrape of all zeros so rate() sees it.
    // 900 × 3 ms, 95 × 30 ms, 5 × 300 ms: the true p99 is 30 ms, in the (0.025, 0.05] bucket.
    // (Rank 990 falls strictly inside that bucket: a rank exactly on a bucket's upper edge
    // would make Prometheus' float comparison of rank and cumulative rates timing-dependent.)
    for (n, ns) in [(900, 3_000_000u64), (95, 30_000_000), (5, 300_000_000)] {
        for _ in 0..n {
            lat.record(ns);
        }
    }
    requests.inc_by(1000);
    errors.inc_by(7);
    breaker.set(2.0);
    prom.wait_until(Duration::from_secs(60), "the recorded values", || {
        (prom.query_value("dwcp_request_duration_seconds_count{operation=\"migrate\"}")
            == Some(1000.0))
        .then_some(())
    });

    // Counters and gauges: exact.
    assert_eq!(
        prom.query_value(
            "dwcp_requests_total{operation=\"migrate\",status=\"ok\",version=\"3.0.0\"}"
        ),
        Some(1000.0)
    );
    assert_eq!(
        prom.query_value("dwcp_errors_total{type=\"q\\\"uote \\\\back\\nnew ✓\"}"),
        Some(7.0),
        "hostile label value did not round-trip"
    );
    assert_eq!(
        prom.query_value("dwcp_circuit_breaker_state{circuit=\"database\"}"),
        Some(2.0)
    );
    let sum = 900.0 * 0.003 + 95.0 * 0.03 + 5.0 * 0.3;
    let got_sum = prom
        .query_value("dwcp_request_duration_seconds_sum")
        .unwrap();
    assert!(close(got_sum, sum), "sum {got_sum} vs {sum}");

    // Quantiles. Prometheus interpolates linearly inside the bucket holding rank 0.99 × 1000 =
    // 990: bucket (0.025, 0.05] holds ranks 901..=995, so the estimate is
    // 0.025 + 0.025 × (990 − 900) / 95; the true p99 (30 ms) is in the same bucket.
    let p99 = 0.025 + 0.025 * 90.0 / 95.0;
    let instant = prom
        .query_value("histogram_quantile(0.99, sum(dwcp_request_duration_seconds_bucket) by (le))")
        .unwrap();
    assert!(close(instant, p99), "instant p99 {instant}");
    assert!(
        0.025 < instant && instant <= 0.05,
        "estimate in the true p99's bucket"
    );
    // The rate window must still hold a sample from before the values were recorded (the
    // scrape of zeros), or every bucket's rate is 0 and the quantile NaN. 5 minutes covers the
    // test's waits (at most 60 s each) however slow the machine; the whole test is younger than
    // that window, and rate() scales every bucket alike, so the estimate is the same as over 1m.
    let rated = prom
        .query_value(
            "histogram_quantile(0.99, sum(rate(dwcp_request_duration_seconds_bucket[5m])) by (le))",
        )
        .unwrap();
    assert!(
        close(rated, p99),
        "rate p99 {rated}; buckets over the window: {}",
        prom.query("dwcp_request_duration_seconds_bucket[5m]")
    );
    // p50: rank 500 in (0, 0.005] (900 values) → 0.005 × 500/900.
    let p50 = prom
        .query_value(
            "histogram_quantile(0.5, sum(rate(dwcp_request_duration_seconds_bucket[5m])) by (le))",
        )
        .unwrap();
    assert!(close(p50, 0.005 * 500.0 / 900.0), "rate p50 {p50}");
    // The rate of the counter over the window is positive and its increase is what we added,
    // up to Prometheus' extrapolation to the window edges.
    let inc = prom
        .query_value("increase(dwcp_requests_total[5m])")
        .unwrap();
    assert!(inc >= 1000.0 - 1e-9, "increase {inc}");

    // Prometheus negotiated OpenMetrics: it knows the unit from the `# UNIT` line.
    let meta = get(
        prom.addr,
        "/api/v1/targets/metadata?metric=dwcp_request_duration_seconds",
    );
    let meta: serde_json::Value = serde_json::from_str(&meta.body).unwrap();
    assert_eq!(meta["data"][0]["unit"], "seconds", "{meta}");
    assert_eq!(meta["data"][0]["type"], "histogram");

    // No scrape errors were logged for our target.
    assert_eq!(
        prom.query_value("scrape_samples_post_metric_relabeling{job=\"dwcp-manager\"}")
            .map(|v| v > 0.0),
        Some(true)
    );
    server.shutdown();
}
