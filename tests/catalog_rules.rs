//! The ops artifacts generated from the catalog: the committed copies are what the generator
//! writes now, the rules pass `promtool check rules`, every alert has a `promtool test rules`
//! case that fires it (exact labels and annotations) and one that keeps it silent, every
//! alert the seeds name for the catalog's systems is there, and the dashboards are JSON
//! whose queries are the generator's.

mod prom_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use dwcp_telemetry::catalog::ops::{
    alerts, dashboard_queries, generate, recording_rules, OpsConfig,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn promtool(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Every alert the seeds name for the catalog's systems (seed 004's NovaCron API, database
/// and cache alerts watch exporters that are no DWCP system).
const SEED_ALERTS: &[&str] = &[
    // 000
    "CanaryErrorRateHigh",
    "CanaryLatencyHigh",
    "CanarySuccessRateLow",
    "DWCPHealthCheckFailure",
    "DWCPCircuitBreakerStorm",
    "DWCPMemoryLeak",
    "DWCPRecoveryLoop",
    "CompressionAccuracyLow",
    "CompressionOverheadHigh",
    "ByzantineNodeDetected",
    "ConsensusFailure",
    "BullsharkThroughputLow",
    "BullsharkMempoolFull",
    "ResourceStarvation",
    "AllocationEfficiencyLow",
    // 001
    "DWCPManagerDown",
    "ConsensusDown",
    "HighLatency",
    "QuorumNotAchieved",
    "ModelAccuracyDrop",
    // 002
    "SLAAvailabilityViolation",
    "SLALatencyViolation",
    "DWCPv3AllReplicasDown",
    "HighLatencyWarning",
    "ThroughputDegradation",
    // 003 (named)
    "DWCPv3RolloutNoGo",
    "DWCPv3LatencyP99Critical",
    "DWCPv3ThroughputCriticalLow",
    "DWCPv3ErrorRateCritical",
    "DWCPv3ComponentDown",
    "DWCPv3ConsensusFailure",
    "DWCPv3MemoryLeakSuspected",
    // 004
    "DWCPHighLatency",
    "DWCPPacketLoss",
    "DWCPBandwidthExhausted",
    "DWCPLowCompressionRatio",
    "DWCPStreamOverflow",
];

#[test]
fn committed_artifacts_match_the_generator() {
    let files = generate(&OpsConfig::default()).unwrap();
    assert_eq!(files.len(), 9);
    let mut stale = Vec::new();
    for a in &files {
        let committed = std::fs::read_to_string(root().join(a.path)).unwrap_or_default();
        if committed != a.contents {
            stale.push(a.path);
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run `cargo run --example gen_ops` and commit): {stale:?}"
    );
}

#[test]
fn every_seed_alert_is_generated_with_a_firing_and_a_silent_case() {
    let cfg = OpsConfig::default();
    let all = alerts(&cfg);
    assert_eq!(all.len(), 60);
    let files = generate(&cfg).unwrap();
    let text = |p: &str| files.iter().find(|a| a.path == p).unwrap().contents.clone();
    let rules = text("deploy/prometheus/dwcp-alerts.rules.yml");
    let tests = text("deploy/prometheus/dwcp-alerts.test.yml");
    for name in SEED_ALERTS {
        assert!(
            rules.contains(&format!("- alert: {name}\n")),
            "{name} not generated"
        );
    }
    for a in &all {
        let fires = format!("  # {} fires\n", a.name);
        let silent = format!("  # {} stays silent\n", a.name);
        let f = tests
            .find(&fires)
            .unwrap_or_else(|| panic!("no firing case for {}", a.name));
        assert!(tests.contains(&silent), "no silent case for {}", a.name);
        // The firing case expects one alert with labels and annotations.
        let case = &tests[f..];
        let end = case[fires.len()..]
            .find("\n  # ")
            .map_or(case.len(), |i| i + fires.len());
        let case = &case[..end];
        assert!(case.contains(&format!("alertname: {}\n", a.name)), "{case}");
        assert!(
            case.contains("exp_labels:") && case.contains("exp_annotations:"),
            "{case}"
        );
        assert!(case.contains("summary: "), "{case}");
    }
    // Seeds 002 and 000 both name ByzantineNodeDetected (ACP and ProBFT): two rules.
    assert_eq!(rules.matches("- alert: ByzantineNodeDetected\n").count(), 2);
    // Every fix is written down.
    let catalog_md = text("docs/catalog.md");
    for a in all.iter().filter(|a| !a.fix.is_empty()) {
        assert!(catalog_md.contains(&format!("- **{}** (seed {}): {}", a.name, a.seed, a.fix)));
    }
}

#[test]
fn promtool_checks_the_committed_rules() {
    if !prom_support::have("promtool") {
        return;
    }
    let dir = root().join("deploy/prometheus");
    let (code, out) = promtool(&dir, &["check", "rules", "dwcp-alerts.rules.yml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS: 60 rules found"), "{out}");
    let (code, out) = promtool(&dir, &["check", "rules", "dwcp-recording.rules.yml"]);
    assert_eq!(code, 0, "{out}");
    let n = recording_rules(&OpsConfig::default()).len();
    assert!(out.contains(&format!("SUCCESS: {n} rules found")), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
}

#[test]
fn every_alert_fires_and_stays_silent_as_its_unit_tests_say() {
    if !prom_support::have("promtool") {
        return;
    }
    let (code, out) = promtool(
        &root().join("deploy/prometheus"),
        &["test", "rules", "dwcp-alerts.test.yml"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The unit tests can fail: a threshold moved in the rules, or an annotation changed, is
/// reported by promtool for that alert.
#[test]
fn a_changed_rule_fails_its_unit_test() {
    if !prom_support::have("promtool") {
        return;
    }
    let src = root().join("deploy/prometheus");
    for (from, to, alert) in [
        (
            "expr: 'sum(rate(dwcp_circuit_breaker_trips_total[5m])) > 10'",
            "expr: 'sum(rate(dwcp_circuit_breaker_trips_total[5m])) > 20'",
            "DWCPCircuitBreakerStorm",
        ),
        (
            "summary: 'Bullshark mempool critically full'",
            "summary: 'Bullshark mempool full'",
            "BullsharkMempoolFull",
        ),
        (
            "expr: 'avg(bullshark_mempool_usage_percentage) > 95'",
            "expr: 'avg(bullshark_mempool_usage_percentage) > 0.95'",
            "BullsharkMempoolFull",
        ),
    ] {
        let dir =
            std::env::temp_dir().join(format!("dwcp-catalog-rules-{}-{alert}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["dwcp-alerts.rules.yml", "dwcp-recording.rules.yml"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        // Only this alert's two cases, to keep the run short.
        let tests = std::fs::read_to_string(src.join("dwcp-alerts.test.yml")).unwrap();
        let (head, cases) = tests.split_once("tests:\n").unwrap();
        let mut only = format!("{head}tests:\n");
        for case in cases.split("  # ").filter(|c| !c.is_empty()) {
            if case.starts_with(&format!("{alert} ")) {
                only.push_str("  # ");
                only.push_str(case);
            }
        }
        assert_eq!(only.matches("- interval: 1m").count(), 2, "{only}");
        std::fs::write(dir.join("dwcp-alerts.test.yml"), only).unwrap();
        let rules = std::fs::read_to_string(dir.join("dwcp-alerts.rules.yml")).unwrap();
        let broken = rules.replacen(from, to, 1);
        assert_ne!(broken, rules, "the mutation must apply: {from}");
        std::fs::write(dir.join("dwcp-alerts.rules.yml"), broken).unwrap();
        let (code, out) = promtool(&dir, &["test", "rules", "dwcp-alerts.test.yml"]);
        let _ = std::fs::remove_dir_all(&dir);
        assert_ne!(code, 0, "{out}");
        assert!(out.contains(&format!("alertname: {alert}")), "{out}");
    }
}

#[test]
fn short_for_and_interval_are_configurable() {
    let cfg = OpsConfig {
        for_override: Some("5s".into()),
        rule_interval: "1s".into(),
        ..OpsConfig::default()
    };
    let files = generate(&cfg).unwrap();
    let rules = &files[0].contents;
    assert!(rules.contains("interval: 1s") && !rules.contains("interval: 30s"));
    assert!(rules.contains("for: 5s"));
    for d in ["30s", "1m", "2m", "5m", "10m", "1h", "4h"] {
        assert!(!rules.contains(&format!("for: {d}\n")), "for: {d} left");
    }
    // The committed files keep the seeds' values.
    let committed =
        std::fs::read_to_string(root().join("deploy/prometheus/dwcp-alerts.rules.yml")).unwrap();
    assert!(committed.contains("interval: 30s") && committed.contains("for: 4h"));
}

#[test]
fn slo_alerts_follow_the_sla_targets() {
    let mut cfg = OpsConfig::default();
    let a = alerts(&cfg);
    let fast = a
        .iter()
        .find(|a| a.name == "DWCPAvailabilityBudgetBurnFast")
        .unwrap();
    assert_eq!(
        fast.expr,
        "(sla:migration_errors:ratio_rate1h > 0.0144 and sla:migration_errors:ratio_rate5m > 0.0144) \
         or (sla:migration_errors:ratio_rate6h > 0.006 and sla:migration_errors:ratio_rate30m > 0.006)"
    );
    let slow = a
        .iter()
        .find(|a| a.name == "DWCPLatencyBudgetBurnSlow")
        .unwrap();
    assert_eq!(
        slow.expr,
        "(sla:latency_slow:ratio_rate1d > 0.03 and sla:latency_slow:ratio_rate2h > 0.03) \
         or (sla:latency_slow:ratio_rate3d > 0.01 and sla:latency_slow:ratio_rate6h > 0.01)"
    );
    cfg.sla.availability = 0.99;
    cfg.sla.latency_p99_seconds = 0.25;
    let a = alerts(&cfg);
    let fast = a
        .iter()
        .find(|a| a.name == "DWCPAvailabilityBudgetBurnFast")
        .unwrap();
    assert!(
        fast.expr
            .starts_with("(sla:migration_errors:ratio_rate1h > 0.144 and"),
        "{}",
        fast.expr
    );
    let r = recording_rules(&cfg);
    let slow5m = r
        .iter()
        .find(|r| r.record == "sla:latency_slow:ratio_rate5m")
        .unwrap();
    assert!(slow5m.expr.contains(r#"le="0.25""#), "{}", slow5m.expr);
}

#[test]
fn dashboards_are_json_with_the_seeds_panels_and_variables() {
    let cfg = OpsConfig::default();
    let files = generate(&cfg).unwrap();
    let mut exprs = Vec::new();
    for a in files.iter().filter(|a| a.path.ends_with(".json")) {
        let v: serde_json::Value =
            serde_json::from_str(&a.contents).unwrap_or_else(|e| panic!("{}: {e}", a.path));
        for p in v["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().unwrap().to_owned());
            }
        }
        if a.path.ends_with("dwcp-v3-rollout-sla.json") {
            let vars: Vec<&str> = v["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap())
                .collect();
            assert_eq!(vars, ["datasource", "component", "region", "interval"]);
        }
    }
    let expected: Vec<String> = dashboard_queries(&cfg)
        .into_iter()
        .map(|q| q.expr)
        .collect();
    assert_eq!(exprs, expected);
    let titles: Vec<String> = dashboard_queries(&cfg)
        .into_iter()
        .map(|q| q.panel)
        .collect();
    for t in [
        "Health Check Success Rate (24h)",
        "Recovery Duration Heatmap",
        "Circuit Breaker Trips (1h)",
        "Consensus Round Duration",
        "Byzantine Events Detected (24h)",
        "DAG Depth & Width",
        "Node Trust Scores",
        "GO / NO-GO",
        "Rollout Progress",
        "Error Budget Remaining (30d)",
        "SLA Compliance Status",
        "Uptime by Time Window",
    ] {
        assert!(titles.iter().any(|x| x == t), "panel {t} missing");
    }
}

/// `amtool config routes test` for one label set: the receivers, in order.
fn routes(labels: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new("amtool");
    cmd.arg("config").arg("routes").arg("test").arg(format!(
        "--config.file={}",
        root()
            .join("deploy/alertmanager/alertmanager.yml")
            .display()
    ));
    for (k, v) in labels {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("run amtool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.split(',').map(|s| s.trim().to_owned()).collect()
}

#[test]
fn alertmanager_routing_is_valid_and_routes_every_alert() {
    if !prom_support::have("amtool") {
        return;
    }
    let path = root().join("deploy/alertmanager/alertmanager.yml");
    let out = Command::new("amtool")
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .expect("run amtool");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("SUCCESS") && text.contains("7 receivers"),
        "{text}"
    );

    // Team routes come first and continue, so severity routing still applies (the seeds'
    // canary and dwcp routes were unreachable behind the severity routes).
    assert_eq!(
        routes(&[
            ("alertname", "CanaryErrorRateHigh"),
            ("severity", "warning"),
            ("component", "canary")
        ]),
        ["canary-team", "slack-warnings"]
    );
    assert_eq!(
        routes(&[
            ("alertname", "DWCPStreamOverflow"),
            ("severity", "warning"),
            ("component", "dwcp")
        ]),
        ["slack-dwcp", "slack-warnings"]
    );
    assert_eq!(
        routes(&[
            ("alertname", "DWCPLowCompressionRatio"),
            ("severity", "info"),
            ("component", "dwcp")
        ]),
        ["slack-dwcp", "slack-monitoring"]
    );
    // Every generated alert reaches a receiver for its severity (never only the default).
    for a in alerts(&OpsConfig::default()) {
        let mut labels: Vec<(&str, &str)> = vec![("alertname", a.name.as_str())];
        labels.extend(
            a.labels
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, v.as_str())),
        );
        if !labels.iter().any(|(k, _)| *k == "severity") {
            labels.push(("severity", "warning")); // the anomaly alerts' severity comes from the series
        }
        let got = routes(&labels);
        let sev = labels.iter().find(|(k, _)| *k == "severity").unwrap().1;
        let expected = match sev {
            "critical" => "pagerduty-critical",
            "warning" => "slack-warnings",
            "info" => "slack-monitoring",
            other => panic!("{}: unknown severity {other}", a.name),
        };
        assert!(got.iter().any(|r| r == expected), "{}: {got:?}", a.name);
        if sev == "critical" {
            assert!(
                got.iter().any(|r| r == "slack-incidents"),
                "{}: {got:?}",
                a.name
            );
        }
    }
}

/// The generated `dwcp-v3-anomaly` group is the same as the standalone
/// `docs/rules/dwcp-anomaly.rules.yml` (expressions, labels and annotations).
#[test]
fn anomaly_group_matches_docs_rules() {
    let docs = std::fs::read_to_string(root().join("docs/rules/dwcp-anomaly.rules.yml")).unwrap();
    let unquote = |v: &str| -> String {
        let v = v.trim();
        match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => inner.replace("\\\"", "\""),
            None => v.to_owned(),
        }
    };
    let generated: Vec<_> = alerts(&OpsConfig::default())
        .into_iter()
        .filter(|a| a.group == "dwcp-v3-anomaly")
        .collect();
    assert_eq!(generated.len(), 3);
    for a in generated {
        let start = docs
            .find(&format!("- alert: {}\n", a.name))
            .unwrap_or_else(|| panic!("{} not in docs/rules", a.name));
        let block = &docs[start..];
        let end = block[1..].find("- alert:").map_or(block.len(), |i| i + 1);
        let block = &block[..end];
        let field = |key: &str| -> String {
            let line = block
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{key}: ")))
                .unwrap_or_else(|| panic!("{}: no {key}", a.name));
            unquote(line.trim_start().trim_start_matches(&format!("{key}: ")))
        };
        assert_eq!(field("expr"), a.expr, "{}", a.name);
        for (k, v) in a.annotations.iter() {
            assert_eq!(&field(k), v, "{} {k}", a.name);
        }
        for (k, v) in a.labels.iter().filter(|(_, v)| !v.is_empty()) {
            assert_eq!(&field(k), v, "{} {k}", a.name);
        }
    }
}
