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
    // A latency incident, then a slow database, each on while its file exists: the test
    // makes each file once the previous phase has been seen on the endpoints and removes it
    // once the families that phase moves have moved, so no phase can pass unobserved however
    // slow the machine (the p99 detectors tick every 50 ms and are warm after 3 s).
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let incident = tmp.join(format!("example-catalog-incident-{}", std::process::id()));
    let fault = tmp.join(format!("example-catalog-fault-{}", std::process::id()));
    let _ = std::fs::remove_file(&incident);
    let _ = std::fs::remove_file(&fault);
    let r = start_example(
        &bin,
        &[
            "--anomaly-tick",
            "0.05",
            "--incident-file",
            incident.to_str().unwrap(),
            "--incident-slowdown",
            "1000",
            "--fault-file",
            fault.to_str().unwrap(),
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
    let reset = "dwcp_circuit_breaker_resets_total{version=\"3.0.0\",circuit=\"database\"}";
    // Polls both endpoints every 200 ms, striking off the families that moved since the
    // first scrape, until `done(unmoved, manager text)`; at `cap` it returns anyway (the
    // final check names what never moved). Returns the last scrapes.
    let mut phase = |done: &dyn Fn(&BTreeSet<&'static str>, &str) -> bool, cap: Duration| {
        let deadline = Instant::now() + cap;
        loop {
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
            if done(&unmoved, &mtext) || Instant::now() >= deadline {
                eprintln!(
                    "phase over after {:.1} s; not moved yet: {unmoved:?}",
                    cap.as_secs_f64()
                        - deadline
                            .saturating_duration_since(Instant::now())
                            .as_secs_f64()
                );
                return (unmoved.clone(), m, mtext, c, ctext);
            }
        }
    };
    // The p99 detectors are warm once each has scored a tick (their z-score gauges are
    // exported as 0 until then); an incident during the warm-up would become the baseline.
    let warm = |text: &str| {
        let z: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("dwcp_anomaly_zscore{"))
            .map(value)
            .collect();
        z.len() >= 3 && z.iter().all(|v| *v != 0.0)
    };
    phase(&|_, t| warm(t), Duration::from_secs(60));
    // The incident, until the anomaly detector has paged.
    std::fs::write(&incident, b"").unwrap();
    phase(
        &|u, _| !u.contains("dwcp_anomaly_detections_total"),
        Duration::from_secs(90),
    );
    std::fs::remove_file(&incident).unwrap();
    // The slow database, until everything has moved but the breaker's reset and the
    // recovery success rate (which need the dependency back).
    let after_recovery = [
        "dwcp_circuit_breaker_resets_total",
        "dwcp_recovery_success_rate",
    ];
    std::fs::write(&fault, b"").unwrap();
    phase(
        &|u, _| u.iter().all(|n| after_recovery.contains(n)),
        Duration::from_secs(120),
    );
    std::fs::remove_file(&fault).unwrap();
    // Recovery: the breaker resets.
    let recovered = |text: &str| {
        text.lines()
            .find(|l| l.starts_with(reset))
            .is_some_and(|l| value(l) >= 1.0)
    };
    let (unmoved, m, mtext, c, ctext) = phase(
        &|u, t| u.is_empty() && recovered(t),
        Duration::from_secs(90),
    );
    assert!(
        unmoved.is_empty() && recovered(&mtext),
        "families that never moved: {unmoved:?} (breaker reset: {})\n\
         manager:\n{mtext}\nconsensus:\n{ctext}",
        recovered(&mtext)
    );

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
