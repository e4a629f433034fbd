//! A real Prometheus loads the rules generated from the catalog (with a short `for:` and a
//! 1 s evaluation interval), scrapes an in-process server exporting every catalog family
//! while a load loop moves all of them, and:
//!
//! - sees `DWCPCircuitBreakerStorm` go from inactive to pending to firing while the test
//!   drives a trip storm through the catalog's typed `dwcp_circuit_breaker_trips_total`
//!   handles;
//! - returns data (at least one finite sample) for every recording rule, queried both by its
//!   expression and by its recorded name, and for every PromQL query of the generated
//!   Grafana dashboards (variables expanded to match everything).

mod prom_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dwcp_telemetry::catalog::manager::Circuit;
use dwcp_telemetry::catalog::ops::{dashboard_queries, generate, recording_rules, OpsConfig};
use dwcp_telemetry::catalog::{self, MetricDef};
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::{MetricKind, Registry};

use prom_support::{have, PrometheusProcess};

/// Label values the load loop uses, by label name (every combination is recorded).
fn values_for(metric: &str, label: &str) -> &'static [&'static str] {
    match (metric, label) {
        ("dwcp_health_check_total" | "dwcp_health_check_duration_seconds", "status") => {
            &["success", "failure"]
        }
        ("dwcp_v3_migrations_total", "status") => &["success", "failure"],
        ("dwcp_component_status", "status") => &["healthy"],
        ("dwcp_requests_total", "status") => &["ok", "error"],
        (_, "status") => &["confirmed"],
        (_, "success") => &["true", "false"],
        (_, "circuit") => &["database", "api"],
        (m, "component") if m.starts_with("dwcp_v3_") => &["amst", "acp"],
        (_, "component") => &["amst"],
        (_, "sli") => &["availability", "latency_p99"],
        (_, "window") => &["5m"],
        (_, "mode") => &["datacenter"],
        (_, "direction") => &["tx"],
        (_, "transport") => &["rdma"],
        (_, "region") => &["eu-west"],
        (_, "stage") => &["50pct"],
        (_, "resource" | "resource_type") => &["cpu"],
        (_, "percentile") => &["p99"],
        (_, "metric") => &["dwcp_request_duration_seconds:p99:migrate"],
        (_, "severity") => &["warning"],
        _ => &["x"],
    }
}

fn combinations(def: &MetricDef) -> Vec<Vec<&'static str>> {
    let mut out: Vec<Vec<&'static str>> = vec![vec![]];
    for l in def.labels {
        let mut next = Vec::new();
        for prefix in &out {
            for v in values_for(def.name, l) {
                let mut p = prefix.clone();
                p.push(v);
                next.push(p);
            }
        }
        out = next;
    }
    out
}

/// One step of load: every counter grows, every gauge moves, every histogram records.
fn drive(reg: &Registry, defs: &[MetricDef], tick: u64) {
    for def in defs {
        // The /proc refresher owns the resource gauges.
        if matches!(def.name, "dwcp_memory_usage_bytes" | "dwcp_goroutines" | "dwcp_cpu_usage_seconds") {
            continue;
        }
        for values in combinations(def) {
            match def.kind {
                MetricKind::Counter => {
                    let f = reg.existing_counter(def.name).expect("registered counter");
                    let n = if def.name == "dwcp_circuit_breaker_trips_total" {
                        // A trickle (0.1/s per circuit): the storm below is the test's.
                        u64::from(tick % 10 == 0)
                    } else if values.contains(&"failure") || values.contains(&"false") {
                        1
                    } else {
                        7
                    };
                    f.try_with_labels(&values).expect("labels").inc_by(n);
                }
                MetricKind::Gauge => {
                    let f = reg.existing_gauge(def.name).expect("registered gauge");
                    let v = match def.name {
                        "dwcp_component_status" | "dwcp_sla_compliance" => 1.0,
                        _ => 0.5 + (tick % 5) as f64 * 0.1,
                    };
                    f.try_with_labels(&values).expect("labels").set(v);
                }
                _ => {
                    let f = reg.existing_histogram(def.name).expect("registered histogram");
                    let h = f.try_with_labels(&values).expect("labels");
                    if def.name.ends_with("_seconds") {
                        h.record_secs(0.002 * (1 + tick % 50) as f64);
                    } else {
                        h.record(1 + tick % 40);
                    }
                }
            }
        }
    }
}

/// The state of `alertname` in `/api/v1/alerts` (`None` when not active).
fn alert_state(prom: &PrometheusProcess, alertname: &str) -> Option<String> {
    let r = prom_support::get(prom.addr, "/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    v["data"]["alerts"].as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == alertname).then(|| a["state"].as_str().unwrap_or("").to_owned())
    })
}

/// Whether `promql` returns at least one finite sample.
fn has_finite_data(prom: &PrometheusProcess, promql: &str) -> bool {
    let v = prom.query(promql);
    let Some(result) = v["data"]["result"].as_array() else {
        return false;
    };
    result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    })
}

#[test]
fn generated_rules_and_dashboards_work_against_prometheus() {
    if !have("prometheus") {
        return;
    }
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let (_manager, resilience) = catalog::manager::register_all(&reg).unwrap();
    catalog::compression::register(&reg).unwrap();
    catalog::probft::register(&reg).unwrap();
    catalog::bullshark::register(&reg).unwrap();
    catalog::tpbft::register(&reg).unwrap();
    catalog::maddpg::register(&reg).unwrap();
    catalog::protocol::register(&reg).unwrap();
    catalog::v3::register(&reg).unwrap();
    // The anomaly families (registered by the anomaly module in a real service).
    reg.counter(dwcp_telemetry::anomaly::DETECTIONS_METRIC, "Anomalies detected")
        .dynamic_labels(["metric", "severity"])
        .register()
        .unwrap();
    reg.gauge(dwcp_telemetry::anomaly::ZSCORE_METRIC, "Latest z-score")
        .dynamic_labels(["metric"])
        .register()
        .unwrap();
    let defs: Vec<MetricDef> = catalog::systems()
        .iter()
        .flat_map(|s| s.metrics.iter().copied())
        .chain(catalog::v3::ANOMALY_METRICS.iter().copied())
        .collect();

    let server = PrometheusServer::builder(reg.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap();

    let cfg = OpsConfig {
        for_override: Some("10s".into()),
        rule_interval: "1s".into(),
        ..OpsConfig::default()
    };
    let files = generate(&cfg).unwrap();
    let file = |p: &str| files.iter().find(|a| a.path == p).unwrap().contents.clone();
    let alerts = file("deploy/prometheus/dwcp-alerts.rules.yml");
    let recording = file("deploy/prometheus/dwcp-recording.rules.yml");
    assert!(alerts.contains("for: 10s") && !alerts.contains("for: 5m"));
    let prom = PrometheusProcess::start_with_rules(
        "dwcp-manager",
        server.local_addr(),
        &[("alerts.yml", &alerts), ("recording.yml", &recording)],
        "1s",
    );

    // Steady load on every family, in the background.
    let stop = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicU64::new(0));
    let load = {
        let (reg, defs, stop, ticks) = (reg.clone(), defs.clone(), stop.clone(), ticks.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = ticks.fetch_add(1, Ordering::Relaxed);
                drive(&reg, &defs, t);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    prom.wait_until(Duration::from_secs(60), "the first scrapes", || {
        (prom.query_value("count(up{job=\"dwcp-manager\"} == 1)") == Some(1.0)
            && prom.query_value("count(dwcp_v3_migrations_total)") == Some(2.0))
        .then_some(())
    });
    prom.wait_until(Duration::from_secs(30), "the rules to load", || {
        let r = prom_support::get(prom.addr, "/api/v1/rules");
        (r.body.contains("DWCPCircuitBreakerStorm") && r.body.contains("sla:availability:5m"))
            .then_some(())
    });
    // Before the storm: the rule is evaluated (another alert of its group is active) and the
    // storm alert is not.
    prom.wait_until(Duration::from_secs(30), "DWCPHealthCheckFailure active", || {
        alert_state(&prom, "DWCPHealthCheckFailure").map(|_| ())
    });
    assert_eq!(alert_state(&prom, "DWCPCircuitBreakerStorm"), None);
    let before = prom.query_value("sum(rate(dwcp_circuit_breaker_trips_total[5m]))").unwrap();
    assert!(before < 10.0, "the trickle alone must stay under the threshold: {before}");

    // --- the trip storm, through the catalog's typed handles --------------------------------
    let trips = resilience.circuit_breaker_trips_total.get(&Circuit { circuit: "database".into() });
    let storm_stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let stop = storm_stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                trips.inc_by(500);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let pending = prom.wait_until(Duration::from_secs(60), "DWCPCircuitBreakerStorm pending", || {
        match alert_state(&prom, "DWCPCircuitBreakerStorm").as_deref() {
            Some("pending") => Some(true),
            Some("firing") => Some(false),
            _ => None,
        }
    });
    assert!(pending, "the alert must be seen pending before it fires (for: 10s, eval 1s)");
    prom.wait_until(Duration::from_secs(60), "DWCPCircuitBreakerStorm firing", || {
        (alert_state(&prom, "DWCPCircuitBreakerStorm").as_deref() == Some("firing")).then_some(())
    });
    storm_stop.store(true, Ordering::Relaxed);
    storm.join().unwrap();

    // --- every recording rule and every dashboard query returns data ------------------------
    let mut queries: Vec<(String, String)> = Vec::new();
    for r in recording_rules(&cfg) {
        queries.push((format!("recording rule {} (expr)", r.record), r.expr.clone()));
        queries.push((format!("recording rule {} (recorded)", r.record), r.record.clone()));
    }
    for q in dashboard_queries(&cfg) {
        let expr = q
            .expr
            .replace("$component", ".*")
            .replace("$region", ".*")
            .replace("$interval", "1m");
        queries.push((format!("{} / {}", q.dashboard, q.panel), expr));
    }
    assert!(queries.len() > 100, "{} queries", queries.len());
    let mut missing = Vec::new();
    for (what, expr) in &queries {
        let ok = (0..50).any(|_| {
            has_finite_data(&prom, expr) || {
                std::thread::sleep(Duration::from_millis(200));
                false
            }
        });
        if !ok {
            missing.push(format!("{what}: {expr} -> {}", prom.query(expr)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(missing.is_empty(), "queries without data:\n{}", missing.join("\n"));
}
