//! The `metrics` facade lands in the registry.

use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::registry::self_metrics;
use dwcp_telemetry::{FamilySnapshot, Registry, Unit, Value};

fn values(families: &[FamilySnapshot], name: &str) -> Vec<(Vec<String>, Value)> {
    families
        .iter()
        .find(|f| f.descriptor.name() == name)
        .unwrap_or_else(|| panic!("no family {name}"))
        .series
        .iter()
        .map(|s| (s.label_values.to_vec(), s.value.clone()))
        .collect()
}

#[test]
fn macros_from_any_crate_land_in_the_registry() {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::describe_counter!("dwcp_requests_total", "Requests served");
        metrics::counter!("dwcp_requests_total", "component" => "amst", "status" => "ok")
            .increment(2);
        // Label order in the macro does not matter.
        metrics::counter!("dwcp_requests_total", "status" => "ok", "component" => "amst")
            .increment(3);
        metrics::counter!("dwcp_requests_total", "component" => "hde", "status" => "err")
            .absolute(7);
        metrics::gauge!("dwcp_streams_active").set(4.0);
        metrics::gauge!("dwcp_streams_active").increment(1.5);
        metrics::gauge!("dwcp_streams_active").decrement(0.5);
        let h = metrics::histogram!("dwcp_request_duration_seconds", "component" => "amst");
        h.record(0.25);
        h.record(std::time::Duration::from_micros(1_500));
        h.record(f64::NAN);
        h.record(-1.0);
    });
    let families = reg.collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        values(&families, "dwcp_requests_total"),
        vec![
            (s(&["amst", "ok"]), Value::Counter(5)),
            (s(&["hde", "err"]), Value::Counter(7))
        ]
    );
    assert_eq!(
        reg.descriptor_of("dwcp_requests_total")
            .unwrap()
            .help()
            .as_str(),
        "Requests served"
    );
    assert_eq!(
        values(&families, "dwcp_streams_active"),
        vec![(vec![], Value::Gauge(5.0))]
    );
    let hist = values(&families, "dwcp_request_duration_seconds");
    let Value::Histogram(snap) = &hist[0].1 else {
        panic!()
    };
    assert_eq!(snap.count(), 2);
    assert_eq!(snap.count_le(1_500_000), 1); // 1.5 ms, stored as ns
    assert_eq!(snap.bad_input().nan, 1);
    assert_eq!(snap.bad_input().negative, 1);
    let desc = reg.descriptor_of("dwcp_request_duration_seconds").unwrap();
    assert_eq!(desc.unit(), Unit::Seconds);
    assert_eq!(desc.export_scale(), 1e-9);
}

#[test]
fn facade_sanitises_and_counts_what_it_cannot_honour() {
    let reg = Registry::builder().build().unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("http.requests-total", "bad-label" => "x").increment(1);
        metrics::counter!("dwcp_errors_total", "component" => "amst").increment(1);
        // Same name, other label names: recorded into the overflow series, counted.
        metrics::counter!("dwcp_errors_total", "kind" => "timeout").increment(4);
        // Same name, other kind: refused, counted.
        metrics::gauge!("dwcp_errors_total").set(1.0);
        // `version` comes from the registry; a per-call one is renamed `version_`, counted.
        metrics::counter!("v_total", "version" => "9.9").increment(1);
    });
    let families = reg.collect();
    assert_eq!(
        values(&families, "http_requests_total"),
        vec![(vec!["x".to_string()], Value::Counter(1))]
    );
    assert_eq!(
        reg.descriptor_of("http_requests_total")
            .unwrap()
            .label_names(),
        ["bad_label"]
    );
    assert_eq!(
        values(&families, "dwcp_errors_total"),
        vec![
            (vec!["amst".to_string()], Value::Counter(1)),
            (vec!["__overflow__".to_string()], Value::Counter(4))
        ]
    );
    assert_eq!(
        values(&families, self_metrics::FACADE_ADJUSTMENTS),
        vec![
            (vec!["kind_conflict".to_string()], Value::Counter(1)),
            (vec!["label_mismatch".to_string()], Value::Counter(1)),
            (
                vec!["reserved_label_renamed".to_string()],
                Value::Counter(1)
            ),
            // "http.requests-total" became "http_requests_total".
            (vec!["name_sanitized".to_string()], Value::Counter(1)),
        ]
    );
    assert_eq!(
        values(&families, "v_total"),
        vec![(vec!["9.9".to_string()], Value::Counter(1))]
    );
    assert_eq!(
        reg.descriptor_of("v_total").unwrap().label_names(),
        ["version_"]
    );
}

#[test]
fn described_non_time_histograms_store_raw_values() {
    let reg = Registry::builder().build().unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::describe_histogram!(
            "dwcp_v3_bytes_per_message",
            metrics::Unit::Bytes,
            "Message size"
        );
        metrics::histogram!("dwcp_v3_bytes_per_message").record(1_500.0);
    });
    let families = reg.collect();
    let Value::Histogram(snap) = &values(&families, "dwcp_v3_bytes_per_message")[0].1 else {
        panic!()
    };
    assert_eq!((snap.count(), snap.min()), (1, 1_496));
    assert_eq!(
        reg.descriptor_of("dwcp_v3_bytes_per_message")
            .unwrap()
            .export_scale(),
        1.0
    );
}
