//! A real Prometheus loads the rules generated from the catalog (with a short `for:` and a
//! 1 s evaluation interval), scrapes an in-process server exporting every catalog family
//! while a load loop moves all of them, and:
//!
//! - sees `DWCPCircuitBreakerStorm` go from inactive to pending to firing (pending for its
//!   `for:` first, per Prometheus' `ALERTS` series) while the test drives a trip storm through
//!   the catalog's typed `dwcp_circuit_breaker_trips_total` handles;
//! - returns data (at least one finite sample) for every recording rule, queried both by its
//!   expression and by its recorded name, and for every PromQL query of the generated
//!   Grafana dashboards (variables expanded to match everything).

mod catalog_support;
mod prom_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dwcp_telemetry::catalog::manager::Circuit;
use dwcp_telemetry::catalog::ops::{dashboard_queries, generate, recording_rules, OpsConfig};
use dwcp_telemetry::export::prometheus::PrometheusServer;
use dwcp_telemetry::Registry;

use prom_support::{have, PrometheusProcess};

/// The state of `alertname` in `/api/v1/alerts` (`None` when not active).
fn alert_state(prom: &PrometheusProcess, alertname: &str) -> Option<String> {
    let r = prom_support::get(prom.addr, "/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    v["data"]["alerts"].as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == alertname)
            .then(|| a["state"].as_str().unwrap_or("").to_owned())
    })
}

/// The earliest sample time (Unix seconds) in the range-vector query `promql`, over all its
/// series; `None` without samples.
fn first_sample_time(prom: &PrometheusProcess, promql: &str) -> Option<f64> {
    let v = prom.query(promql);
    v["data"]["result"]
        .as_array()?
        .iter()
        .filter_map(|s| s["values"].as_array())
        .flatten()
        .filter_map(|p| p[0].as_f64())
        .min_by(f64::total_cmp)
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
    let (resilience, defs) = catalog_support::register_everything(&reg);

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
                catalog_support::drive(&reg, &defs, t);
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
    prom.wait_until(
        Duration::from_secs(30),
        "DWCPHealthCheckFailure active",
        || alert_state(&prom, "DWCPHealthCheckFailure").map(|_| ()),
    );
    assert_eq!(alert_state(&prom, "DWCPCircuitBreakerStorm"), None);
    let before = prom
        .query_value("sum(rate(dwcp_circuit_breaker_trips_total[5m]))")
        .unwrap();
    assert!(
        before < 10.0,
        "the trickle alone must stay under the threshold: {before}"
    );

    // --- the trip storm, through the catalog's typed handles --------------------------------
    let trips = resilience.circuit_breaker_trips_total.get(&Circuit {
        circuit: "database".into(),
    });
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
    prom.wait_until(
        Duration::from_secs(120),
        "DWCPCircuitBreakerStorm firing",
        || {
            (alert_state(&prom, "DWCPCircuitBreakerStorm").as_deref() == Some("firing"))
                .then_some(())
        },
    );
    // Pending before firing, from Prometheus' own record of every evaluation (the `ALERTS`
    // series), not from polling `/api/v1/alerts` within the 10 s `for:` window (a busy machine
    // can miss it): the first pending evaluation comes before the first firing one, at least
    // the `for:` duration earlier.
    let (first_pending, first_firing) = prom.wait_until(
        Duration::from_secs(30),
        "DWCPCircuitBreakerStorm pending and firing in ALERTS",
        || {
            let first = |state: &str| {
                first_sample_time(
                    &prom,
                    &format!(
                        "ALERTS{{alertname=\"DWCPCircuitBreakerStorm\",alertstate=\"{state}\"}}[1h]"
                    ),
                )
            };
            Some((first("pending")?, first("firing")?))
        },
    );
    eprintln!("DWCPCircuitBreakerStorm pending from {first_pending}, firing from {first_firing}");
    assert!(
        first_firing - first_pending >= 10.0 - 1e-3,
        "the alert must be pending for its `for: 10s` before it fires: pending from \
         {first_pending}, firing from {first_firing}; {}",
        prom.query("ALERTS{alertname=\"DWCPCircuitBreakerStorm\"}[1h]")
    );
    storm_stop.store(true, Ordering::Relaxed);
    storm.join().unwrap();

    // --- every recording rule and every dashboard query returns data ------------------------
    let mut queries: Vec<(String, String)> = Vec::new();
    for r in recording_rules(&cfg) {
        queries.push((
            format!("recording rule {} (expr)", r.record),
            r.expr.clone(),
        ));
        queries.push((
            format!("recording rule {} (recorded)", r.record),
            r.record.clone(),
        ));
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
    assert!(
        missing.is_empty(),
        "queries without data:\n{}",
        missing.join("\n")
    );
}
