//! The metric catalog: every system registers on one registry without conflicts and exactly
//! as its table documents; registering again fetches the same families; typed handles
//! record where the table says; `Registry::on_collect` hooks run at every collection; and
//! `promtool check metrics` complains about exactly the seed names the catalog documents as
//! deviations. (The `/proc` resource gauges: `tests/catalog_resources.rs`.)

mod catalog_support;
mod prom_support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dwcp_telemetry::catalog::manager::{self, CheckStatus, Circuit, HealthCheck, RecoveryAttempt};
use dwcp_telemetry::catalog::v3::{self, Component, V3Component};
use dwcp_telemetry::catalog::{self, probft, MetricDef};
use dwcp_telemetry::export::prometheus::{render, Format};
use dwcp_telemetry::{MetricKind, Registry, Value};

fn registry() -> Registry {
    Registry::builder().version("3.0.0").build().unwrap()
}

#[test]
fn every_system_registers_as_documented() {
    let reg = registry();
    let (_, defs) = catalog_support::register_everything(&reg);
    assert_eq!(reg.family_count(), defs.len());
    let names: BTreeSet<&str> = defs.iter().map(|d| d.name).collect();
    assert_eq!(names.len(), defs.len(), "a metric is defined twice");
    for d in &defs {
        let desc = reg
            .descriptor_of(d.name)
            .unwrap_or_else(|| panic!("{} not registered", d.name));
        assert_eq!(desc.kind(), d.kind, "{}", d.name);
        assert_eq!(desc.label_names(), d.labels, "{}", d.name);
        assert!(!d.help.is_empty() && !d.unit.is_empty(), "{}", d.name);
        if let Some(b) = d.buckets {
            assert_eq!(desc.buckets(), b, "{}", d.name);
        }
        assert!(
            d.kind != MetricKind::Histogram || desc.buckets().len() > 3,
            "{}",
            d.name
        );
    }
    // Registering again is idempotent (the same definitions).
    catalog_support::register_everything(&reg);
    assert_eq!(reg.family_count(), defs.len());
}

#[test]
fn seeds_names_labels_and_buckets() {
    let find = |n: &str| catalog::find(n).unwrap_or_else(|| panic!("{n} not in the catalog"));
    // Seed 000's Go instrumentation, exactly.
    let hc = find("dwcp_health_check_duration_seconds");
    assert_eq!(hc.labels, ["status"]);
    assert_eq!(
        hc.buckets.unwrap(),
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    );
    let rd = find("dwcp_recovery_duration_seconds");
    assert_eq!(rd.labels, ["component"]);
    assert_eq!(rd.buckets.unwrap(), [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]);
    assert_eq!(
        find("dwcp_recovery_attempts_total").labels,
        ["component", "success"]
    );
    assert_eq!(find("dwcp_circuit_breaker_state").labels, ["circuit"]);
    assert_eq!(find("dwcp_memory_usage_bytes").labels, ["type"]);
    assert_eq!(find("dwcp_goroutines").labels, [] as [&str; 0]);
    assert_eq!(
        find("model_predictions_total").labels,
        ["prediction", "confidence", "model_version"]
    );
    assert_eq!(find("probft_node_health").labels, ["node", "status"]);
    assert_eq!(
        find("tpbft_trust_score_changes").labels,
        ["node", "direction"]
    );
    assert_eq!(
        find("maddpg_resource_utilization").labels,
        ["service", "resource_type"]
    );
    assert_eq!(
        find("bullshark_confirmation_latency_seconds").labels,
        ["percentile"]
    );
    // Counters without `_total` are found by their exported name too.
    let b = find("probft_byzantine_events_detected_total");
    assert_eq!(b.name, "probft_byzantine_events_detected");
    assert_eq!(b.sample_name(), "probft_byzantine_events_detected_total");
    assert!(!b.note.is_empty());
    assert_eq!(
        find("dwcp_requests_total").sample_name(),
        "dwcp_requests_total"
    );
}

#[test]
fn typed_handles_record_under_the_documented_labels() {
    let reg = registry();
    let (m, r) = manager::register_all(&reg).unwrap();
    let v = v3::register(&reg).unwrap();
    let p = probft::register(&reg).unwrap();
    r.circuit_breaker_trips_total
        .get(&Circuit {
            circuit: "database".into(),
        })
        .inc_by(3);
    r.recovery_attempts_total
        .get(&RecoveryAttempt {
            component: String::from("amst").into(),
            success: false,
        })
        .inc();
    r.health_check_duration_seconds
        .get(&HealthCheck {
            status: CheckStatus::Failure,
        })
        .record_secs(0.3);
    v.component_operations_total
        .get(&Component {
            component: V3Component::Itp,
        })
        .inc();
    p.byzantine_events_detected
        .get(&probft::ByzantineEvent {
            r#type: "equivocation".into(),
        })
        .inc();
    m.requests_total
        .get(&manager::Request {
            operation: "migrate".into(),
            status: "ok".into(),
        })
        .inc();
    let text = render(&reg, Format::Text);
    for line in [
        "dwcp_circuit_breaker_trips_total{version=\"3.0.0\",circuit=\"database\"} 3\n",
        "dwcp_recovery_attempts_total{version=\"3.0.0\",component=\"amst\",success=\"false\"} 1\n",
        "dwcp_health_check_duration_seconds_bucket{version=\"3.0.0\",status=\"failure\",le=\"0.5\"} 1\n",
        "dwcp_v3_component_operations_total{version=\"3.0.0\",component=\"itp\"} 1\n",
        "probft_byzantine_events_detected_total{version=\"3.0.0\",type=\"equivocation\"} 1\n",
        "dwcp_requests_total{version=\"3.0.0\",operation=\"migrate\",status=\"ok\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn collect_hooks_run_at_every_collection_and_survive_a_panic() {
    let reg = registry();
    let g = reg
        .gauge("dwcp_hook_runs", "Hook runs")
        .register()
        .unwrap()
        .handle();
    let runs = Arc::new(AtomicU64::new(0));
    let r = runs.clone();
    reg.on_collect(|| panic!("a broken hook"));
    reg.on_collect(move || {
        g.set((r.fetch_add(1, Ordering::Relaxed) + 1) as f64);
    });
    for i in 1..=3u64 {
        let families = reg.collect();
        let f = families
            .iter()
            .find(|f| f.descriptor.name() == "dwcp_hook_runs")
            .unwrap();
        assert!(matches!(f.series[0].value, Value::Gauge(v) if v == i as f64));
    }
    let _ = render(&reg, Format::Text);
    assert_eq!(runs.load(Ordering::Relaxed), 4);
}

/// `promtool check metrics` on every catalog family with a series: its only complaints are
/// about names the catalog keeps from the seeds and documents as deviations.
#[test]
fn promtool_lints_only_the_documented_seed_names() {
    if !prom_support::have("promtool") {
        return;
    }
    let reg = registry();
    let (_, defs) = catalog_support::register_everything(&reg);
    catalog_support::drive(&reg, &defs, 1);
    let text = render(&reg, Format::Text);
    let (_code, out) = prom_support::promtool_check(&text);
    let flagged: BTreeSet<String> = out
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_owned()))
        .collect();
    let documented: BTreeSet<String> = defs
        .iter()
        .filter(|d: &&MetricDef| !d.note.is_empty())
        .map(|d| d.sample_name().into_owned())
        .collect();
    let undocumented: Vec<_> = flagged.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "promtool flags undocumented names: {undocumented:?}\n{out}"
    );
    // And it does flag the seed's gauge with a `_total` suffix.
    assert!(out.contains("probft_byzantine_nodes_total"), "{out}");
}
