//! One test per hardening finding: each reproduces the probe's input and asserts the new
//! behaviour with exact values (error variants and their fields, exposition lines, self-metric
//! counts), so a regression fails here.

mod prom_support;

use dwcp_telemetry::export::prometheus::{render, Format};
use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::registry::self_metrics;
use dwcp_telemetry::{
    ConfigError, LabelError, LabelSet, Layout, RegistrationError, Registry, Unit, Value,
};

use prom_support::{have, promtool_check};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The value of the counter series `family{labels}` in `registry`'s collection (self-metrics
/// included), or `None` if there is no such series.
fn counter_value(registry: &Registry, family: &str, labels: &[&str]) -> Option<u64> {
    registry
        .collect()
        .iter()
        .filter(|f| f.descriptor.name() == family)
        .flat_map(|f| f.series.iter())
        .find(|s| {
            s.label_values
                .iter()
                .map(String::as_str)
                .eq(labels.iter().copied())
        })
        .map(|s| match &s.value {
            Value::Counter(v) => *v,
            other => panic!("{family}{labels:?} is not a counter: {other:?}"),
        })
}

fn facade_adjustments(registry: &Registry, reason: &str) -> Option<u64> {
    counter_value(registry, self_metrics::FACADE_ADJUSTMENTS, &[reason])
}

/// Assert that `text` has the exact line `line`.
#[track_caller]
fn assert_line(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line\n  {line}\nin:\n{text}"
    );
}

/// The text exposition of `reg`, after asserting that it has each of `lines` exactly.
#[track_caller]
fn text_with_lines(reg: &Registry, lines: &[&str]) -> String {
    let text = render(reg, Format::Text);
    for line in lines {
        assert_line(&text, line);
    }
    text
}

/// The one line of `text` starting with `prefix`.
#[track_caller]
fn line_starting<'t>(text: &'t str, prefix: &str) -> &'t str {
    let found: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(
        found.len(),
        1,
        "want one line starting {prefix:?} in:\n{text}"
    );
    found[0]
}

/// `promtool check metrics` must say nothing (no error, no lint) about `text`.
#[track_caller]
fn assert_promtool_silent(text: &str) {
    if !have("promtool") {
        return;
    }
    let (code, output) = promtool_check(text);
    assert_eq!(output, "", "promtool said something about:\n{text}");
    assert_eq!(code, 0, "promtool failed on:\n{text}");
}

fn registry() -> Registry {
    Registry::builder().version("1.0").build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Constant labels.

#[test]
fn const_label_clash_is_refused_at_registration() {
    let reg = Registry::builder()
        .version("1.0")
        .const_label("component", "manager")
        .build()
        .unwrap();
    let err = reg
        .counter("ops_total", "Operations")
        .dynamic_labels(["component"])
        .register()
        .unwrap_err();
    assert_eq!(
        err,
        RegistrationError::ConstLabelClash {
            metric: "ops_total".to_owned(),
            label: "component".to_owned(),
        }
    );
    assert_eq!(reg.family_count(), 0);
    // Histograms and gauges too.
    assert!(matches!(
        reg.histogram("lat_seconds", "Latency").dynamic_labels(["op", "component"]).register(),
        Err(RegistrationError::ConstLabelClash { ref label, .. }) if label == "component"
    ));
    assert!(matches!(
        reg.gauge("level", "Level")
            .dynamic_labels(["component"])
            .register(),
        Err(RegistrationError::ConstLabelClash { .. })
    ));
}

#[test]
fn facade_label_equal_to_a_const_label_is_renamed_and_counted() {
    let reg = Registry::builder()
        .version("1.0")
        .const_label("instance", "host-1:8080")
        .build()
        .unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("requests_total", "instance" => "other").increment(3);
    });
    let desc = reg.descriptor_of("requests_total").expect("registered");
    assert_eq!(desc.label_names(), ["instance_"]);
    assert_eq!(counter_value(&reg, "requests_total", &["other"]), Some(3));
    assert_eq!(facade_adjustments(&reg, "reserved_label_renamed"), Some(1));
    let text = text_with_lines(
        &reg,
        &[
            r#"requests_total{version="1.0",instance="host-1:8080",instance_="other"} 3"#,
            r#"dwcp_telemetry_facade_adjustments_total{version="1.0",instance="host-1:8080",reason="reserved_label_renamed"} 1"#,
        ],
    );
    assert_promtool_silent(&text);
}

#[test]
fn const_label_named_le_or_quantile_fails_build() {
    for name in ["le", "quantile"] {
        let err = Registry::builder()
            .const_label(name, "x")
            .build()
            .unwrap_err();
        match err {
            RegistrationError::LabelName { name: got, .. } => assert_eq!(got, name),
            other => panic!("const_label({name:?}): want LabelName, got {other:?}"),
        }
    }
    // `version` is the registry's own; a duplicate const label is refused as well.
    assert!(matches!(
        Registry::builder().const_label("version", "x").build(),
        Err(RegistrationError::LabelName { .. })
    ));
    assert!(matches!(
        Registry::builder()
            .const_label("dc", "a")
            .const_label("dc", "b")
            .build(),
        Err(RegistrationError::DuplicateLabel { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Reserved and colliding names.

#[test]
fn counter_foo_then_foo_total_is_a_name_collision() {
    let reg = registry();
    reg.counter("foo", "Foo").register().unwrap();
    let err = reg
        .counter("foo_total", "Foo total")
        .register()
        .unwrap_err();
    assert_eq!(
        err,
        RegistrationError::NameCollision {
            name: "foo_total".to_owned(),
            exported: "foo".to_owned(),
            existing: "foo".to_owned(),
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"foo_total\"") && msg.contains("\"foo\""),
        "{msg}"
    );
    assert_eq!(reg.family_count(), 1);
    // The other order collides too.
    let reg = registry();
    reg.counter("bar_total", "Bar").register().unwrap();
    assert_eq!(
        reg.counter("bar", "Bar").register().unwrap_err(),
        RegistrationError::NameCollision {
            name: "bar".to_owned(),
            exported: "bar".to_owned(),
            existing: "bar_total".to_owned(),
        }
    );
}

#[test]
fn histogram_foo_then_gauge_foo_count_is_a_name_collision() {
    let reg = registry();
    reg.histogram("foo", "Foo").register().unwrap();
    assert_eq!(
        reg.gauge("foo_count", "Foo count").register().unwrap_err(),
        RegistrationError::NameCollision {
            name: "foo_count".to_owned(),
            exported: "foo_count".to_owned(),
            existing: "foo".to_owned(),
        }
    );
    for suffix in ["_sum", "_bucket"] {
        let name = format!("foo{suffix}");
        assert!(
            matches!(
                reg.counter(name.as_str(), "c").register(),
                Err(RegistrationError::NameCollision { ref existing, .. }) if existing == "foo"
            ),
            "{name}"
        );
    }
    assert_eq!(reg.family_count(), 1);
}

#[test]
fn user_metric_with_reserved_prefix_is_refused() {
    let reg = registry();
    assert_eq!(
        reg.gauge("dwcp_telemetry_series", "mine")
            .register()
            .unwrap_err(),
        RegistrationError::ReservedName("dwcp_telemetry_series".to_owned())
    );
    assert_eq!(
        reg.counter("dwcp_telemetry_mine_total", "mine")
            .register()
            .unwrap_err(),
        RegistrationError::ReservedName("dwcp_telemetry_mine_total".to_owned())
    );
    assert_eq!(reg.family_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Units.

#[test]
fn bytes_histogram_stores_and_exports_bytes() {
    let reg = registry();
    let h = reg
        .histogram("payload_size_bytes", "Payload size")
        .register()
        .unwrap();
    assert_eq!(h.descriptor().unit(), Unit::Bytes);
    h.handle().record(1500);
    text_with_lines(
        &reg,
        &[
            r#"payload_size_bytes_bucket{version="1.0",le="1024"} 0"#,
            r#"payload_size_bytes_bucket{version="1.0",le="4096"} 1"#,
            r#"payload_size_bytes_sum{version="1.0"} 1500"#,
            r#"payload_size_bytes_count{version="1.0"} 1"#,
        ],
    );
    assert_eq!(h.handle().snapshot().bad_input().clamped, 0);
}

#[test]
fn facade_bytes_histogram_is_not_clamped_to_an_hour() {
    let reg = Registry::builder()
        .version("1.0")
        .exact_sums(true)
        .build()
        .unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::histogram!("facade_payload_bytes").record(5000.0);
        metrics::histogram!("x_seconds").record(0.25);
    });
    let bytes = reg.existing_histogram("facade_payload_bytes").unwrap();
    assert_eq!(bytes.descriptor().unit(), Unit::Bytes);
    let snap = bytes.handle().snapshot();
    assert_eq!(snap.count(), 1);
    assert_eq!(snap.sum(), 5000);
    assert_eq!(snap.bad_input().clamped, 0);
    let secs = reg.existing_histogram("x_seconds").unwrap();
    assert_eq!(secs.descriptor().unit(), Unit::Seconds);
    assert_eq!(secs.handle().snapshot().sum(), 250_000_000); // stored in ns

    text_with_lines(
        &reg,
        &[
            r#"facade_payload_bytes_sum{version="1.0"} 5000"#,
            r#"facade_payload_bytes_bucket{version="1.0",le="4096"} 0"#,
            r#"facade_payload_bytes_bucket{version="1.0",le="16384"} 1"#,
            r#"x_seconds_sum{version="1.0"} 0.25"#,
            r#"x_seconds_bucket{version="1.0",le="0.1"} 0"#,
            r#"x_seconds_bucket{version="1.0",le="0.25"} 1"#,
        ],
    );
    assert_eq!(
        counter_value(
            &reg,
            self_metrics::VALUES_ADJUSTED,
            &["facade_payload_bytes", "clamped"]
        ),
        None
    );
}

#[test]
fn facade_describe_before_first_use_sets_the_unit_after_only_the_help() {
    let reg = Registry::builder()
        .version("1.0")
        .exact_sums(true)
        .build()
        .unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::describe_histogram!("early_payload", metrics::Unit::Bytes, "Payload sizes");
        metrics::histogram!("early_payload").record(2048.0);
        metrics::histogram!("late_payload").record(10.0);
        metrics::describe_histogram!("late_payload", metrics::Unit::Bytes, "Late help");
        metrics::histogram!("late_payload").record(20.0);
    });
    let early = reg.descriptor_of("early_payload").unwrap();
    assert_eq!(early.unit(), Unit::Bytes);
    assert_eq!(*early.help(), "Payload sizes");
    assert_eq!(
        reg.existing_histogram("early_payload")
            .unwrap()
            .handle()
            .snapshot()
            .sum(),
        2048
    );

    let late = reg.descriptor_of("late_payload").unwrap();
    assert_eq!(
        late.unit(),
        Unit::None,
        "the unit of an existing family changed"
    );
    assert_eq!(*late.help(), "Late help");
    let snap = reg
        .existing_histogram("late_payload")
        .unwrap()
        .handle()
        .snapshot();
    // A unitless histogram the facade creates stores millionths (it receives f64):
    // 10 + 20 is 30,000,000 stored, exported as 30.
    assert_eq!((snap.count(), snap.sum()), (2, 30_000_000));
    assert_eq!(late.export_scale(), 1e-6);

    let om = render(&reg, Format::OpenMetrics);
    assert!(om.contains("# HELP late_payload Late help\n"), "{om}");
    assert!(!om.contains("# UNIT late_payload"), "{om}");
}

// ---------------------------------------------------------------------------------------------
// Family cap.

#[test]
fn family_cap_refuses_the_101st_registration() {
    let reg = Registry::builder()
        .version("1.0")
        .max_families(100)
        .build()
        .unwrap();
    for i in 0..100 {
        reg.counter(format!("fam_{i}_total"), "f")
            .register()
            .unwrap();
    }
    assert_eq!(
        reg.counter("fam_100_total", "f").register().unwrap_err(),
        RegistrationError::TooManyFamilies { limit: 100 }
    );
    assert_eq!(reg.family_count(), 100);
    // An existing family is still handed out at the cap.
    reg.counter("fam_7_total", "f")
        .register()
        .unwrap()
        .handle()
        .inc();
    assert_eq!(counter_value(&reg, "fam_7_total", &[]), Some(1));
    assert_eq!(
        counter_value(&reg, self_metrics::FAMILIES_REFUSED, &[]),
        Some(1)
    );
}

#[test]
fn facade_names_past_the_family_cap_record_nowhere_and_are_counted() {
    let reg = Registry::builder()
        .version("1.0")
        .max_families(100)
        .build()
        .unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        for i in 0..100 {
            metrics::counter!(format!("facade_{i}_total")).increment(1);
        }
        for i in 100..105 {
            let name = format!("facade_{i}_total");
            metrics::counter!(name.clone()).increment(1);
            metrics::counter!(name).increment(1); // cached no-op: not counted again
        }
        metrics::gauge!("facade_gauge_over_cap").set(1.0);
        metrics::histogram!("facade_hist_over_cap").record(1.0);
    });
    assert_eq!(reg.family_count(), 100);
    assert!(reg.descriptor_of("facade_100_total").is_none());
    assert!(reg.descriptor_of("facade_gauge_over_cap").is_none());
    assert_eq!(counter_value(&reg, "facade_99_total", &[]), Some(1));
    assert_eq!(
        counter_value(&reg, self_metrics::FAMILIES_REFUSED, &[]),
        Some(7)
    );
    assert_eq!(facade_adjustments(&reg, "family_refused"), Some(7));
    let text = text_with_lines(
        &reg,
        &[
            r#"dwcp_telemetry_families_refused_total{version="1.0"} 7"#,
            r#"dwcp_telemetry_facade_adjustments_total{version="1.0",reason="family_refused"} 7"#,
        ],
    );
    assert!(!text.contains("facade_100_total"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Conflicting re-registration.

#[test]
fn reregistration_with_another_definition_is_a_conflict() {
    let reg = registry();
    reg.counter("req_total", "Requests")
        .dynamic_labels(["op"])
        .register()
        .unwrap();
    assert_eq!(
        reg.counter("req_total", "Other help")
            .dynamic_labels(["op"])
            .register()
            .unwrap_err(),
        RegistrationError::Conflict {
            name: "req_total".to_owned(),
            differs: "help",
            existing_kind: "counter",
        }
    );
    assert_eq!(
        reg.counter("req_total", "Requests")
            .dynamic_labels(["op", "status"])
            .register()
            .unwrap_err(),
        RegistrationError::Conflict {
            name: "req_total".to_owned(),
            differs: "label names",
            existing_kind: "counter",
        }
    );
    assert_eq!(
        reg.gauge("req_total", "Requests")
            .dynamic_labels(["op"])
            .register()
            .unwrap_err(),
        RegistrationError::Conflict {
            name: "req_total".to_owned(),
            differs: "kind",
            existing_kind: "counter",
        }
    );

    reg.histogram("size", "Sizes")
        .unit(Unit::Bytes)
        .buckets(vec![1.0, 2.0])
        .register()
        .unwrap();
    assert_eq!(
        reg.histogram("size", "Sizes")
            .unit(Unit::Bytes)
            .buckets(vec![1.0, 3.0])
            .register()
            .unwrap_err(),
        RegistrationError::Conflict {
            name: "size".to_owned(),
            differs: "buckets",
            existing_kind: "histogram",
        }
    );
    assert_eq!(
        reg.histogram("size", "Sizes")
            .unit(Unit::None)
            .buckets(vec![1.0, 2.0])
            .register()
            .unwrap_err(),
        RegistrationError::Conflict {
            name: "size".to_owned(),
            differs: "unit",
            existing_kind: "histogram",
        }
    );
    assert_eq!(reg.family_count(), 2);
}

#[test]
fn identical_reregistration_returns_the_same_family() {
    let reg = registry();
    let a = reg
        .histogram("lat_seconds", "Latency")
        .dynamic_labels(["op"])
        .buckets(vec![0.1, 1.0])
        .exact_sum(true)
        .register()
        .unwrap();
    let b = reg
        .histogram("lat_seconds", "Latency")
        .dynamic_labels(["op"])
        .buckets(vec![0.1, 1.0])
        .exact_sum(true)
        .register()
        .unwrap();
    a.with_labels_or_overflow(&["get"]).record(500_000_000);
    let snap = b.with_labels_or_overflow(&["get"]).snapshot();
    assert_eq!((snap.count(), snap.sum()), (1, 500_000_000));
    assert_eq!(b.series_count(), 1);

    let c1 = reg.counter("hits_total", "Hits").register().unwrap();
    let c2 = reg.counter("hits_total", "Hits").register().unwrap();
    c1.handle().inc_by(4);
    assert_eq!(c2.handle().get(), 4);
    assert_eq!(reg.family_count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Facade label rules.

#[test]
fn facade_histogram_label_le_is_renamed_and_recorded() {
    let reg = Registry::builder()
        .version("1.0")
        .exact_sums(true)
        .build()
        .unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::histogram!("op_seconds", "le" => "x").record(0.5);
    });
    let fam = reg.existing_histogram("op_seconds").unwrap();
    assert_eq!(fam.descriptor().label_names(), ["le_"]);
    let snap = fam.try_with_labels(&["x"]).unwrap().snapshot();
    assert_eq!((snap.count(), snap.sum()), (1, 500_000_000));
    assert_eq!(fam.overflow().snapshot().count(), 0);
    assert_eq!(facade_adjustments(&reg, "reserved_label_renamed"), Some(1));
    let text = text_with_lines(
        &reg,
        &[
            r#"op_seconds_bucket{version="1.0",le_="x",le="0.5"} 1"#,
            r#"op_seconds_sum{version="1.0",le_="x"} 0.5"#,
        ],
    );
    assert_promtool_silent(&text);
}

#[test]
fn facade_labels_equal_after_sanitising_drop_one_and_count_it() {
    let reg = registry();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("coll_total", "a-b" => "first", "a_b" => "second").increment(2);
    });
    let desc = reg.descriptor_of("coll_total").unwrap();
    assert_eq!(desc.label_names(), ["a_b"]);
    assert_eq!(counter_value(&reg, "coll_total", &["first"]), Some(2));
    assert_eq!(counter_value(&reg, "coll_total", &["second"]), None);
    assert_eq!(facade_adjustments(&reg, "label_collision_dropped"), Some(1));
    let text = text_with_lines(&reg, &[r#"coll_total{version="1.0",a_b="first"} 2"#]);
    assert_promtool_silent(&text);
}

#[test]
fn facade_metrics_get_their_name_as_help_and_pass_promtool_lint() {
    let reg = registry();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("jobs_done_total", "queue" => "high").increment(5);
        metrics::counter!("jobs_failed").increment(1);
        metrics::gauge!("jobs_waiting").set(7.0);
        metrics::histogram!("job_run_seconds").record(0.125);
        metrics::histogram!("job_input_bytes").record(300.0);
        metrics::histogram!("job_retries").record(2.0);
        metrics::histogram!("job_fill_ratio").record(0.5);
    });
    for name in [
        "jobs_done_total",
        "jobs_failed",
        "jobs_waiting",
        "job_run_seconds",
        "job_input_bytes",
        "job_retries",
        "job_fill_ratio",
    ] {
        assert_eq!(*reg.descriptor_of(name).unwrap().help(), name);
    }
    let text = text_with_lines(
        &reg,
        &[
            "# HELP jobs_done_total jobs_done_total",
            "# HELP jobs_failed_total jobs_failed",
            "# HELP job_run_seconds job_run_seconds",
            r#"jobs_failed_total{version="1.0"} 1"#,
        ],
    );
    assert_promtool_silent(&text);
}

// ---------------------------------------------------------------------------------------------
// Values.

#[test]
fn gauge_plus_inf_minus_inf_stays_plus_inf_and_counts_a_nan() {
    let reg = registry();
    let g = reg.gauge("level", "Level").register().unwrap().handle();
    g.add(f64::INFINITY);
    g.add(f64::NEG_INFINITY);
    assert_eq!(g.get(), f64::INFINITY);
    assert_eq!(
        counter_value(&reg, self_metrics::VALUES_ADJUSTED, &["level", "nan"]),
        Some(1)
    );
    let text = text_with_lines(
        &reg,
        &[
            r#"level{version="1.0"} +Inf"#,
            r#"dwcp_telemetry_values_adjusted_total{version="1.0",metric="level",reason="nan"} 1"#,
        ],
    );
    assert!(!text.contains("NaN"), "{text}");
}

#[test]
fn counter_saturates_at_u64_max_and_counts_it() {
    let reg = registry();
    let c = reg.counter("big_total", "Big").register().unwrap().handle();
    c.inc_by(u64::MAX);
    assert_eq!(
        counter_value(&reg, self_metrics::SATURATED, &["big_total"]),
        None
    );
    c.inc();
    assert_eq!(c.get(), u64::MAX);
    assert_eq!(
        counter_value(&reg, self_metrics::SATURATED, &["big_total"]),
        Some(1)
    );
    text_with_lines(
        &reg,
        &[
            &format!(r#"big_total{{version="1.0"}} {}"#, u64::MAX),
            r#"dwcp_telemetry_saturated_total{version="1.0",metric="big_total"} 1"#,
        ],
    );
}

#[test]
fn exact_histogram_sum_saturates_at_u64_max_and_counts_it() {
    let reg = registry();
    let h = reg
        .histogram("huge", "Huge values")
        .exact_sum(true)
        .register()
        .unwrap()
        .handle();
    h.record(u64::MAX - 1);
    assert_eq!(h.snapshot().sum(), u128::from(u64::MAX - 1));
    h.record(u64::MAX - 1);
    let snap = h.snapshot();
    assert_eq!(snap.count(), 2);
    assert_eq!(snap.sum(), u128::from(u64::MAX));
    assert_eq!(snap.bad_input().sum_saturated, 1);
    assert_eq!(
        counter_value(&reg, self_metrics::SATURATED, &["huge"]),
        Some(1)
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[test]
fn invalid_buckets_are_a_config_error() {
    let reg = registry();
    let cases: [Vec<f64>; 6] = [
        vec![-1.0, 1.0],
        vec![1.0, 1.0],
        vec![2.0, 1.0],
        vec![],
        vec![1.0, f64::INFINITY],
        vec![f64::NAN],
    ];
    for b in cases {
        assert_eq!(
            reg.histogram("h_seconds", "h")
                .buckets(b.clone())
                .register()
                .unwrap_err(),
            RegistrationError::Config(ConfigError::Buckets),
            "{b:?}"
        );
    }
    assert_eq!(reg.family_count(), 0);
    // Policies are validated at build.
    assert_eq!(
        Registry::builder()
            .policy(
                dwcp_telemetry::NameMatch::suffix("_seconds"),
                dwcp_telemetry::MetricPolicy::new().buckets([0.5, 0.1]),
            )
            .build()
            .unwrap_err(),
        RegistrationError::Config(ConfigError::Buckets)
    );
}

#[test]
fn carriage_return_in_a_label_value_is_escaped_as_newline() {
    let reg = registry();
    reg.counter("cr_total", "CR")
        .dynamic_labels(["v"])
        .register()
        .unwrap()
        .with_labels_or_overflow(&["a\rb\r\nc"])
        .inc();
    let text = text_with_lines(&reg, &[r#"cr_total{version="1.0",v="a\nb\n\nc"} 1"#]);
    assert!(!text.contains('\r'));
    assert_promtool_silent(&text);
    let om = render(&reg, Format::OpenMetrics);
    assert_line(&om, r#"cr_total{version="1.0",v="a\nb\n\nc"} 1"#);
}

#[test]
fn oversized_histogram_layout_is_refused_with_its_size() {
    let reg = registry();
    let asked = Layout::new(5, u64::MAX).unwrap().len() * 8;
    let err = reg
        .histogram("precise", "Precise")
        .significant_digits(5)
        .max_value(u64::MAX)
        .register()
        .unwrap_err();
    assert_eq!(
        err,
        RegistrationError::Config(ConfigError::SeriesMemory {
            sigfig: 5,
            max_value: u64::MAX,
            asked,
            limit: 8 << 20,
        })
    );
    assert!(asked > 8 << 20, "{asked}");
    // Raising the cap accepts it.
    let big = Registry::builder().max_series_bytes(asked).build().unwrap();
    big.histogram("precise", "Precise")
        .significant_digits(5)
        .max_value(u64::MAX)
        .register()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Wrong arity.

#[derive(Debug, LabelSet)]
struct Pair {
    a: &'static str,
    b: &'static str,
}

#[test]
fn wrong_arity_is_an_error_or_the_overflow_series() {
    let reg = registry();
    let dynamic = reg
        .counter("pair_total", "Pairs")
        .dynamic_labels(["a", "b"])
        .register()
        .unwrap();
    assert_eq!(
        dynamic.try_with_labels(&["a"]).unwrap_err(),
        LabelError::Arity {
            metric: "pair_total".to_owned(),
            expected: 2,
            got: 1,
        }
    );
    dynamic.with_labels_or_overflow(&["a"]).inc_by(5);
    assert_eq!(dynamic.overflow().get(), 5);
    assert_eq!(dynamic.series_count(), 0);
    assert_eq!(
        counter_value(&reg, self_metrics::LABEL_ERRORS, &[]),
        Some(1)
    );

    // A typed family seen through the dynamic view.
    let typed = reg
        .counter("typed_pair_total", "Typed pairs")
        .labels::<Pair>()
        .register()
        .unwrap();
    typed.get(&Pair { a: "x", b: "y" }).inc();
    let view = reg.existing_counter("typed_pair_total").unwrap();
    assert_eq!(
        view.try_with_labels(&["x", "y", "z"]).unwrap_err(),
        LabelError::Arity {
            metric: "typed_pair_total".to_owned(),
            expected: 2,
            got: 3,
        }
    );
    assert_eq!(view.try_with_labels(&["x", "y"]).unwrap().get(), 1);
    view.with_labels_or_overflow(&["x"]).inc();
    assert_eq!(typed.overflow().get(), 1);
    assert_eq!(
        counter_value(&reg, self_metrics::LABEL_ERRORS, &[]),
        Some(2)
    );
    let text = text_with_lines(
        &reg,
        &[
            r#"pair_total{version="1.0",a="__overflow__",b="__overflow__"} 5"#,
            r#"dwcp_telemetry_label_errors_total{version="1.0"} 2"#,
            r#"dwcp_telemetry_cardinality_overflow_records_total{version="1.0",metric="pair_total"} 1"#,
        ],
    );
    let _ = line_starting(&text, "typed_pair_total{version=\"1.0\",a=\"x\"");
}

// ------------------------------------------------------------------------------------------
// Found in review: overflow series that would duplicate a label set, help and label-order
// interplay between the facade and the registry, the cardinality limit in re-registration.

/// Every exported sample line (name and labels, value dropped) appears once.
fn assert_no_duplicate_series(text: &str) {
    let mut seen = std::collections::HashSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
        assert!(
            seen.insert(series.to_owned()),
            "duplicate {series} in\n{text}"
        );
    }
}

#[test]
fn no_overflow_series_duplicates_a_label_set() {
    let registry = Registry::builder().build().unwrap();
    // A family without labels has no separate overflow series: wrong arity goes to its one
    // series (counted as a label error).
    let plain = registry.counter("plain_total", "p").register().unwrap();
    plain.handle().inc();
    plain.with_labels_or_overflow(&["x"]).inc();
    plain.overflow().inc();
    assert_eq!(plain.handle().get(), 3);
    assert_eq!(plain.series_count(), 1);
    // A user label set of `__overflow__` values is the overflow series itself.
    let capped = registry
        .counter("capped_total", "c")
        .dynamic_labels(["k"])
        .cardinality_limit(1)
        .register()
        .unwrap();
    capped.with_labels_or_overflow(&["__overflow__"]).inc();
    capped.with_labels_or_overflow(&["a"]).inc();
    capped.with_labels_or_overflow(&["b"]).inc(); // past the limit
    assert_eq!(capped.overflow().get(), 2);
    // Through the facade: first without labels, then with one.
    let recorder = DwcpRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("jobs_total").increment(1);
        metrics::counter!("jobs_total", "kind" => "x").increment(1);
    });
    assert_eq!(counter_value(&registry, "jobs_total", &[]), Some(2));
    for format in [Format::Text, Format::OpenMetrics] {
        assert_no_duplicate_series(&render(&registry, format));
    }
}

#[test]
fn a_facade_family_takes_the_help_of_a_later_registration() {
    let registry = Registry::builder().build().unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("dwcp_handoffs_total").increment(2);
    });
    let family = registry
        .counter("dwcp_handoffs_total", "Handoffs between nodes")
        .register()
        .expect("the facade's default help is supplied, not a conflict");
    family.handle().inc();
    assert_eq!(family.handle().get(), 3);
    assert_eq!(
        &*registry
            .descriptor_of("dwcp_handoffs_total")
            .unwrap()
            .help(),
        "Handoffs between nodes"
    );
    // A help given at registration is kept: a later description does not replace it, and the
    // same registration still succeeds.
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("dwcp_handoffs_total", "Something else");
    });
    assert!(registry
        .counter("dwcp_handoffs_total", "Handoffs between nodes")
        .register()
        .is_ok());
    assert!(matches!(
        registry
            .counter("dwcp_handoffs_total", "Other help")
            .register(),
        Err(RegistrationError::Conflict {
            differs: "help",
            ..
        })
    ));
}

#[test]
fn facade_calls_reach_a_registry_family_whatever_its_label_order() {
    let registry = Registry::builder().build().unwrap();
    let family = registry
        .counter("ordered_total", "o")
        .dynamic_labels(["zone", "app"])
        .register()
        .unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("ordered_total", "app" => "api", "zone" => "eu").increment(5);
    });
    assert_eq!(family.try_with_labels(&["eu", "api"]).unwrap().get(), 5);
    assert_eq!(family.overflow().get(), 0);
    assert_eq!(facade_adjustments(&registry, "label_mismatch"), None);
}

#[test]
fn reregistration_with_another_cardinality_limit_is_a_conflict() {
    let registry = Registry::builder().build().unwrap();
    let make = |limit| {
        registry
            .counter("limited_total", "l")
            .dynamic_labels(["k"])
            .cardinality_limit(limit)
            .register()
    };
    assert!(make(5).is_ok());
    assert!(make(5).is_ok());
    assert!(matches!(
        make(500),
        Err(RegistrationError::Conflict {
            differs: "cardinality limit",
            ..
        })
    ));
}
