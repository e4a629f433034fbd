//! The main example covers the catalog: run as a process, it serves the DWCP manager's
//! families (manager, resilience, compression selector, protocol, v3, anomaly) on its
//! `/metrics` and a consensus node's (ProBFT, Bullshark, T-PBFT) on a second endpoint with
//! its own `version`. Over real HTTP, every catalog family of those systems is present with
//! its labels and the label values the generated rules and dashboards query, each one moves
//! under the simulated load, a latency incident and a slow dependency (counters and
//! histograms grow, gauges change), the two expositions stay apart, and both pass
//! `promtool check metrics` but for the seed names the catalog documents as kept.

mod prom_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dwcp_telemetry::catalog::{self, MetricDef};
use dwcp_telemetry::MetricKind;

use prom_support::{assert_promtool_only_documented, example_binary, get, have, start_example};

/// The catalog families the manager's endpoint serves.
fn manager_defs() -> Vec<MetricDef> {
    use catalog::{compression, manager, protocol, v3};
    [
        manager::SYSTEM,
        manager::RESILIENCE_SYSTEM,
        compression::SYSTEM,
        protocol::SYSTEM,
        v3::SYSTEM,
    ]
    .iter()
    .flat_map(|s| s.metrics.iter().copied())
    .chain(v3::ANOMALY_METRICS.iter().copied())
    .collect()
}

/// The catalog families the consensus node's endpoint serves.
fn consensus_defs() -> Vec<MetricDef> {
    use catalog::{bullshark, probft, tpbft};
    [probft::SYSTEM, bullshark::SYSTEM, tpbft::SYSTEM]
        .iter()
        .flat_map(|s| s.metrics.iter().copied())
        .collect()
}

/// The sample names of a family as exported.
fn sample_names(d: &MetricDef) -> Vec<String> {
    match d.kind {
        MetricKind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{}{s}", d.name))
            .collect(),
        _ => vec![d.sample_name().into_owned()],
    }
}

/// One scrape: per family (by name), its sample lines (`name{labels} value`).
type Scrape = BTreeMap<&'static str, Vec<String>>;

fn scrape(addr: SocketAddr, defs: &[MetricDef]) -> (Scrape, String) {
    let text = get(addr, "/metrics").body;
    let by_sample: BTreeMap<String, &'static str> = defs
        .iter()
        .flat_map(|d| sample_names(d).into_iter().map(move |n| (n, d.name)))
        .collect();
    let mut out = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if let Some(&family) = by_sample.get(name) {
            out.entry(family).or_default().push(line.to_owned());
        }
    }
    (out, text)
}

fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {line:?}"))
}

/// What grows in a counter or histogram family: the sum of its counters or `_count`s.
fn growth_total(d: &MetricDef, lines: &[String]) -> f64 {
    let count = format!("{}_count", d.name);
    lines
        .iter()
        .filter(|l| d.kind != MetricKind::Histogram || l.starts_with(&count))
        .map(|l| value(l))
        .sum()
}

/// Whether family `d` moved from `before` to `now`: a counter or histogram grew, a gauge
/// present before changed its samples (a value, or a new series).
fn moved(d: &MetricDef, before: &Scrape, now: &Scrape) -> bool {
    let empty = Vec::new();
    let (b, n) = (
        before.get(d.name).unwrap_or(&empty),
        now.get(d.name).unwrap_or(&empty),
    );
    match d.kind {
        MetricKind::Gauge => !b.is_empty() && b != n,
        _ => growth_total(d, n) > growth_total(d, b),
    }
}

/// Every label of `d` on one of its samples, after the `version` label.
fn has_labels(d: &MetricDef, lines: &[String], version: &str) -> bool {
    lines.iter().any(|l| {
        l.contains(&format!("{{version=\"{version}\""))
            && d.labels
                .iter()
                .all(|name| l.contains(&format!(",{name}=\"")))
    })
}

#[test]
fn both_endpoints_serve_every_catalog_family_and_each_moves() {
    let Some(bin) = example_binary() else { return };
    // A latency incident at 8 s (the p99 detectors, ticking every 50 ms, are warm after 3 s)
    // and a slow database from 12 s to 18 s. Every wait is on a condition, with deadlines far
    // beyond the timeline.
    let r = start_example(
        &bin,
        &[
            "--anomaly-tick",
            "0.05",
            "--incident-at",
            "8",
            "--incident-for",
            "2",
            "--incident-slowdown",
            "1000",
            "--fault-at",
            "12",
            "--fault-for",
            "6",
            "--fault-kind",
            "slow",
            "--sla-window",
            "3",
        ],
    );
    // The consensus endpoint is announced on its own line, right after the manager's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let consensus: SocketAddr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = r
            .lines
            .recv_timeout(left)
            .expect("the example prints the consensus endpoint");
        if let Some(rest) = line.strip_prefix("consensus: serving http://") {
            break rest
                .strip_suffix("/metrics")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no address in {line:?}"));
        }
    };
    assert_ne!(consensus, r.addr);
    assert_ne!(consensus.port(), 0);

    let (mdefs, cdefs) = (manager_defs(), consensus_defs());
    // The baseline: the first scrapes in which every gauge family has its series (a gauge
    // set for the first time is not "moving").
    let gauges_present = |defs: &[MetricDef], s: &Scrape| {
        defs.iter()
            .filter(|d| d.kind == MetricKind::Gauge)
            .all(|d| s.contains_key(d.name))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (m0, c0) = loop {
        let (m0, mtext) = scrape(r.addr, &mdefs);
        let (c0, ctext) = scrape(consensus, &cdefs);
        if gauges_present(&mdefs, &m0) && gauges_present(&cdefs, &c0) {
            break (m0, c0);
        }
        assert!(
            Instant::now() < deadline,
            "gauge families missing:\nmanager:\n{mtext}\nconsensus:\n{ctext}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut unmoved: BTreeSet<&'static str> = mdefs.iter().chain(&cdefs).map(|d| d.name).collect();
    // Poll both endpoints until every family has moved since the first scrape and the
    // fault is over (the breaker reset), or fail naming the families that never moved.
    let deadline = Instant::now() + Duration::from_secs(150);
    let reset = "dwcp_circuit_breaker_resets_total{version=\"3.0.0\",circuit=\"database\"}";
    let (m, mtext, c, ctext) = loop {
        std::thread::sleep(Duration::from_millis(200));
        let (m, mtext) = scrape(r.addr, &mdefs);
        let (c, ctext) = scrape(consensus, &cdefs);
        for d in &mdefs {
            if moved(d, &m0, &m) {
                unmoved.remove(d.name);
            }
        }
        for d in &cdefs {
            if moved(d, &c0, &c) {
                unmoved.remove(d.name);
            }
        }
        let recovered = mtext
            .lines()
            .find(|l| l.starts_with(reset))
            .is_some_and(|l| value(l) >= 1.0);
        if unmoved.is_empty() && recovered {
            break (m, mtext, c, ctext);
        }
        assert!(
            Instant::now() < deadline,
            "families that never moved: {unmoved:?} (breaker reset: {recovered})\n\
             manager:\n{mtext}\nconsensus:\n{ctext}"
        );
    };

    // Every family is present with its labels, under each endpoint's own version.
    for (defs, scrape, version, text) in
        [(&mdefs, &m, "3.0.0", &mtext), (&cdefs, &c, "1.0.0", &ctext)]
    {
        for d in defs.iter() {
            let lines = scrape
                .get(d.name)
                .unwrap_or_else(|| panic!("{} missing:\n{text}", d.name));
            assert!(
                has_labels(d, lines, version),
                "{} lacks version {version} or one of {:?}: {lines:#?}",
                d.name,
                d.labels
            );
            assert!(
                text.contains(&format!("# TYPE {} ", d.sample_name())),
                "{}: no TYPE line",
                d.name
            );
        }
    }
    // The endpoints stay apart: no consensus family on the manager's, and the reverse.
    for d in &cdefs {
        assert!(
            !mtext.contains(&format!("# TYPE {} ", d.name)),
            "{}",
            d.name
        );
    }
    // (The consensus node's rounds go through `#[instrument_dwcp]`, whose request families,
    // labelled by `component`, share the manager's request metric names.)
    let instrumented = [
        "dwcp_requests_total",
        "dwcp_request_duration_seconds",
        "dwcp_errors_total",
        "dwcp_requests_in_flight",
    ];
    for d in mdefs.iter().filter(|d| !instrumented.contains(&d.name)) {
        assert!(
            !ctext.contains(&format!("# TYPE {} ", d.name)),
            "{}",
            d.name
        );
    }
    // The label values the generated rules and dashboards query.
    let has = |text: &str, sample: &str, label: &str| {
        text.lines()
            .any(|l| l.starts_with(&format!("{sample}{{")) && l.contains(label))
    };
    for (sample, label) in [
        ("dwcp_circuit_breaker_state", "circuit=\"database\""),
        ("dwcp_circuit_breaker_state", "circuit=\"api\""),
        ("dwcp_circuit_breaker_trips_total", "circuit=\"database\""),
        ("dwcp_health_check_total", "status=\"success\""),
        ("dwcp_health_check_total", "status=\"failure\""),
        ("dwcp_recovery_attempts_total", "success=\"true\""),
        ("dwcp_recovery_attempts_total", "success=\"false\""),
        ("dwcp_component_status", "status=\"healthy\""),
        ("dwcp_component_status", "status=\"unhealthy\""),
        ("dwcp_requests_total", "status=\"error\""),
        ("dwcp_sla_compliance", "window=\"5m\""),
        ("dwcp_v3_migrations_total", "status=\"success\""),
        ("dwcp_v3_migrations_total", "status=\"failure\""),
        ("dwcp_v3_resource_utilization", "resource=\"cpu\""),
        (
            "dwcp_v3_component_latency_seconds_bucket",
            "component=\"acp\"",
        ),
        ("dwcp_v3_component_errors_total", "component=\"acp\""),
        (
            "dwcp_v3_rollout_progress_ratio",
            "stage=\"50pct\",region=\"eu-west\"",
        ),
        ("dwcp_anomaly_detections_total", "severity=\""),
    ] {
        assert!(
            has(&mtext, sample, label),
            "no {sample} with {label}:\n{mtext}"
        );
    }
    for (sample, label) in [
        ("probft_consensus_failures_total", "reason=\"timeout\""),
        ("probft_view_changes_total", "reason=\"leader_timeout\""),
        (
            "probft_byzantine_events_detected_total",
            "type=\"equivocation\"",
        ),
        ("probft_node_health", "node=\"node-03\",status=\"degraded\""),
        (
            "bullshark_confirmation_latency_seconds",
            "percentile=\"p99\"",
        ),
        ("tpbft_trust_score_changes_total", "direction=\"down\""),
    ] {
        assert!(
            has(&ctext, sample, label),
            "no {sample} with {label}:\n{ctext}"
        );
    }
    // The manager's ACP counted node-07's misbehaviour that the consensus node detected.
    assert!(
        has(
            &mtext,
            "dwcp_v3_acp_byzantine_detections_total",
            "node=\"node-07\""
        ),
        "{mtext}"
    );

    // Both expositions pass promtool but for the documented seed names.
    if have("promtool") {
        assert_eq!(
            assert_promtool_only_documented(&mtext)
                .into_iter()
                .collect::<Vec<_>>(),
            ["dwcp_latency_milliseconds"]
        );
        assert_eq!(
            assert_promtool_only_documented(&ctext)
                .into_iter()
                .collect::<Vec<_>>(),
            ["probft_byzantine_nodes_total"]
        );
    }

    // The summary shows each system's key figures: the manager's line, then v3 and consensus.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !(seen
        .iter()
        .any(|l: &String| l.starts_with("t=") && l.contains(" sla="))
        && seen.iter().any(|l| {
            l.starts_with("  v3: migrations=")
                && l.contains(" streams=")
                && l.contains(" compression=")
        })
        && seen.iter().any(|l| {
            l.starts_with("  consensus: probft rounds=")
                && l.contains(" view_changes=")
                && l.contains("| bullshark tx/s=")
                && l.contains("| tpbft rounds/s=")
        }))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = r
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no full summary in {seen:#?}"));
        seen.push(line);
    }
}
