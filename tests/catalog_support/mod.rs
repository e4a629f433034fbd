//! Shared by the catalog tests: registers every catalog family on one registry and moves
//! each of them (every counter grows, every gauge moves, every histogram records). Included
//! with `mod catalog_support;`.
#![allow(dead_code)]

use dwcp_telemetry::catalog::{self, MetricDef};
use dwcp_telemetry::{MetricKind, Registry};

/// Every catalog system registered on `reg` (the manager with its `/proc` refresher), plus
/// the anomaly families; returns the manager's resilience families and every definition.
pub fn register_everything(reg: &Registry) -> (catalog::manager::Resilience, Vec<MetricDef>) {
    let (_manager, resilience) = catalog::manager::register_all(reg).unwrap();
    catalog::compression::register(reg).unwrap();
    catalog::probft::register(reg).unwrap();
    catalog::bullshark::register(reg).unwrap();
    catalog::tpbft::register(reg).unwrap();
    catalog::maddpg::register(reg).unwrap();
    catalog::protocol::register(reg).unwrap();
    catalog::v3::register(reg).unwrap();
    // The anomaly families (registered by the anomaly module in a real service).
    reg.counter(
        dwcp_telemetry::anomaly::DETECTIONS_METRIC,
        "Anomalies detected",
    )
    .dynamic_labels(["metric", "severity"])
    .register()
    .unwrap();
    reg.gauge(dwcp_telemetry::anomaly::ZSCORE_METRIC, "Latest z-score")
        .dynamic_labels(["metric"])
        .register()
        .unwrap();
    let defs = catalog::systems()
        .iter()
        .flat_map(|s| s.metrics.iter().copied())
        .chain(catalog::v3::ANOMALY_METRICS.iter().copied())
        .collect();
    (resilience, defs)
}

/// Label values the load loop uses, by label name (every combination is recorded).
pub fn values_for(metric: &str, label: &str) -> &'static [&'static str] {
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
        (_, "resource") => &["cpu"],
        (_, "resource_type") => &["cpu", "memory"],
        (_, "percentile") => &["p99"],
        (_, "metric") => &["dwcp_request_duration_seconds:p99:migrate"],
        (_, "severity") => &["warning"],
        _ => &["x"],
    }
}

pub fn combinations(def: &MetricDef) -> Vec<Vec<&'static str>> {
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
pub fn drive(reg: &Registry, defs: &[MetricDef], tick: u64) {
    for def in defs {
        // The /proc refresher owns the resource gauges.
        if matches!(
            def.name,
            "dwcp_memory_usage_bytes" | "dwcp_goroutines" | "dwcp_cpu_usage_seconds"
        ) {
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
                    let f = reg
                        .existing_histogram(def.name)
                        .expect("registered histogram");
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
