//! Registry behaviour: names, conflicts, the version label, the cardinality cap.

use dwcp_telemetry::registry::{self_metrics, OVERFLOW_LABEL_VALUE};
use dwcp_telemetry::{ConfigError, LabelError, RegistrationError, Registry, Value};

#[test]
fn invalid_names_are_clear_errors() {
    let reg = Registry::builder().build().unwrap();
    let err = reg.counter("dwcp requests", "").register().unwrap_err();
    assert_eq!(err, RegistrationError::MetricName("dwcp requests".into()));
    assert!(
        err.to_string().contains("[a-zA-Z_:][a-zA-Z0-9_:]*"),
        "{err}"
    );
    for bad in ["", "9lives", "dwcp-requests", "dwcp.requests", "\u{1F4A3}"] {
        assert!(reg.gauge(bad, "").register().is_err(), "{bad:?}");
    }
    let err = reg
        .counter("ok_total", "")
        .dynamic_labels(["bad-label"])
        .register()
        .unwrap_err();
    assert!(matches!(err, RegistrationError::LabelName { ref name, .. } if name == "bad-label"));
    let err = reg
        .histogram("h", "")
        .dynamic_labels(["le"])
        .register()
        .unwrap_err();
    assert!(matches!(err, RegistrationError::LabelName { ref name, .. } if name == "le"));
    let err = reg
        .histogram("h", "")
        .dynamic_labels(["version"])
        .register()
        .unwrap_err();
    assert!(
        err.to_string().contains("RegistryBuilder::version"),
        "{err}"
    );
    let err = reg
        .counter("c", "")
        .dynamic_labels(["a", "a"])
        .register()
        .unwrap_err();
    assert!(matches!(err, RegistrationError::DuplicateLabel { .. }));
    let err = reg
        .histogram("h", "")
        .significant_digits(9)
        .register()
        .unwrap_err();
    assert_eq!(err, RegistrationError::Config(ConfigError::Precision(9)));
    let err = reg
        .histogram("h", "")
        .buckets(vec![1.0, 0.5])
        .register()
        .unwrap_err();
    assert_eq!(err, RegistrationError::Config(ConfigError::Buckets));
    let err = reg
        .histogram("h", "")
        .buckets(vec![f64::NAN])
        .register()
        .unwrap_err();
    assert_eq!(err, RegistrationError::Config(ConfigError::Buckets));
    assert_eq!(
        reg.family_count(),
        0,
        "failed registrations leave nothing behind"
    );
    assert!(Registry::builder().cardinality_limit(0).build().is_err());
    assert!(Registry::builder()
        .const_label("bad name", "x")
        .build()
        .is_err());
}

#[test]
fn registration_is_idempotent_and_conflicts_are_errors() {
    let reg = Registry::builder().build().unwrap();
    let a = reg
        .counter("dwcp_errors_total", "")
        .dynamic_labels(["component"])
        .register()
        .unwrap();
    let b = reg
        .counter("dwcp_errors_total", "")
        .dynamic_labels(["component"])
        .register()
        .unwrap();
    a.with_labels_or_overflow(&["amst"]).inc();
    assert_eq!(b.with_labels_or_overflow(&["amst"]).get(), 1, "same family");
    let err = reg.gauge("dwcp_errors_total", "").register().unwrap_err();
    assert_eq!(
        err,
        RegistrationError::Conflict {
            name: "dwcp_errors_total".into(),
            differs: "kind",
            existing_kind: "counter",
        }
    );
    assert!(reg
        .counter("dwcp_errors_total", "")
        .dynamic_labels(["other"])
        .register()
        .is_err());
}

#[test]
fn every_series_carries_the_version() {
    let reg = Registry::builder()
        .version("3.0.0")
        .const_label("instance", "node-1")
        .build()
        .unwrap();
    assert_eq!(
        reg.const_labels(),
        vec![("version", "3.0.0"), ("instance", "node-1")]
    );
    assert_eq!(Registry::default().version(), "unknown");
}

#[test]
fn cardinality_flood_is_bounded_and_nothing_is_lost() {
    let reg = Registry::builder().cardinality_limit(100).build().unwrap();
    let fam = reg
        .histogram("dwcp_request_duration_seconds", "")
        .dynamic_labels(["path"])
        .register()
        .unwrap();
    for i in 0..10_000 {
        fam.with_labels_or_overflow(&[&format!("/hostile/{i}")])
            .record(1_000);
    }
    assert_eq!(fam.series_count(), 100);
    assert_eq!(fam.overflow().snapshot().count(), 9_900);
    assert_eq!(
        fam.try_with_labels(&["/new"]).unwrap_err(),
        LabelError::CardinalityExceeded {
            metric: "dwcp_request_duration_seconds".into(),
            limit: 100
        }
    );
    // Existing label sets keep working at the cap.
    fam.with_labels_or_overflow(&["/hostile/5"]).record(1_000);
    assert_eq!(
        fam.with_labels_or_overflow(&["/hostile/5"])
            .snapshot()
            .count(),
        2
    );

    let families = reg.collect();
    let main = &families[0];
    assert_eq!(main.series.len(), 101);
    let last = main.series.last().unwrap();
    assert_eq!(&*last.label_values, &[OVERFLOW_LABEL_VALUE.to_owned()]);
    let find = |name: &str| {
        families
            .iter()
            .find(|f| f.descriptor.name() == name)
            .unwrap()
            .series
            .clone()
    };
    assert_eq!(
        find(self_metrics::OVERFLOW_RECORDS)[0].value,
        Value::Counter(9_900)
    );
    assert_eq!(
        find(self_metrics::OVERFLOW_LABEL_SETS)[0].value,
        Value::Counter(9_901)
    );
    assert_eq!(find(self_metrics::SERIES)[0].value, Value::Gauge(100.0));
    // Per-family limit overrides the registry default.
    let small = reg
        .counter("c_total", "")
        .dynamic_labels(["k"])
        .cardinality_limit(2)
        .register()
        .unwrap();
    assert_eq!(small.cardinality_limit(), 2);
}

#[test]
fn wrong_label_arity_records_into_overflow_and_is_counted() {
    let reg = Registry::builder().build().unwrap();
    let fam = reg
        .counter("dwcp_requests_total", "")
        .dynamic_labels(["component", "status"])
        .register()
        .unwrap();
    fam.with_labels_or_overflow(&["amst"]).inc_by(3);
    assert_eq!(
        fam.try_with_labels(&["a", "b", "c"]).unwrap_err(),
        LabelError::Arity {
            metric: "dwcp_requests_total".into(),
            expected: 2,
            got: 3
        }
    );
    assert_eq!(fam.overflow().get(), 3);
    assert_eq!(fam.series_count(), 0);
    let families = reg.collect();
    let errors = families
        .iter()
        .find(|f| f.descriptor.name() == self_metrics::LABEL_ERRORS)
        .unwrap();
    assert_eq!(errors.series[0].value, Value::Counter(1));
    let records = families
        .iter()
        .find(|f| f.descriptor.name() == self_metrics::OVERFLOW_RECORDS)
        .unwrap();
    assert_eq!(records.series[0].value, Value::Counter(1));
}

#[test]
fn hostile_label_values_are_stored_verbatim() {
    let reg = Registry::builder().build().unwrap();
    let fam = reg.gauge("g", "").dynamic_labels(["v"]).register().unwrap();
    let hostile = [
        "",
        "a\"b",
        "back\\slash",
        "new\nline",
        "tab\t",
        "ünï\u{1F600}",
        "\0",
    ];
    for (i, v) in hostile.iter().enumerate() {
        fam.with_labels_or_overflow(&[v]).set(i as f64);
    }
    let families = reg.collect();
    let got: Vec<(String, f64)> = families[0]
        .series
        .iter()
        .map(|s| match s.value {
            Value::Gauge(g) => (s.label_values[0].clone(), g),
            _ => unreachable!(),
        })
        .collect();
    let want: Vec<(String, f64)> = hostile
        .iter()
        .enumerate()
        .map(|(i, v)| (v.to_string(), i as f64))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn noop_handles_record_nothing() {
    let c = dwcp_telemetry::Counter::noop();
    c.inc();
    assert_eq!(c.get(), 0);
    let h = dwcp_telemetry::Histogram::noop();
    h.record(5);
    assert!(!h.record_secs(1.0));
    assert_eq!(h.snapshot().count(), 0);
    let g = dwcp_telemetry::Gauge::noop();
    g.set(1.0);
    assert_eq!(g.get(), 0.0);
}

#[test]
fn global_registry_is_shared() {
    let a = dwcp_telemetry::global();
    a.counter("global_test_total", "")
        .register()
        .unwrap()
        .handle()
        .inc();
    assert_eq!(
        dwcp_telemetry::global()
            .existing_counter("global_test_total")
            .unwrap()
            .handle()
            .get(),
        1
    );
    assert!(dwcp_telemetry::set_global(Registry::default()).is_err());
}

#[test]
fn timers_record_elapsed_time() {
    let reg = Registry::builder().build().unwrap();
    let h = reg.histogram("t_seconds", "").register().unwrap().handle();
    let ns = h.start_timer().stop();
    {
        let _t = h.start_timer();
    }
    h.start_timer().discard();
    let v = h.time(|| 7);
    assert_eq!(v, 7);
    let snap = h.snapshot();
    assert_eq!(snap.count(), 3);
    assert!(ns < 1_000_000_000);
}

#[test]
fn oversize_label_values_are_shortened_with_a_hash_and_counted() {
    let reg = Registry::builder().max_label_value_len(32).build().unwrap();
    let fam = reg
        .counter("c_total", "")
        .dynamic_labels(["k"])
        .register()
        .unwrap();
    let long = "x".repeat(1_000_000);
    let sibling = format!("{}yyyy", "x".repeat(40)); // same first 32 bytes as `long`
    let straddle = format!("{}é{}", "a".repeat(14), "-more".repeat(6)); // é at bytes 14..16
                                                                        // The fallible form says what is wrong.
    assert_eq!(
        fam.try_with_labels(&[&long]).unwrap_err(),
        LabelError::ValueTooLong {
            metric: "c_total".into(),
            label: "k".into(),
            len: 1_000_000,
            max: 32
        }
    );
    fam.with_labels_or_overflow(&["short"]).inc();
    fam.with_labels_or_overflow(&[&long]).inc();
    fam.with_labels_or_overflow(&[&long]).inc();
    fam.with_labels_or_overflow(&[&straddle]).inc();
    fam.with_labels_or_overflow(&[&sibling]).inc();
    let families = reg.collect();
    let got: Vec<(String, Value)> = families[0]
        .series
        .iter()
        .map(|s| (s.label_values[0].clone(), s.value.clone()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], ("short".into(), Value::Counter(1)));
    // Cut at max − 17 bytes (a char boundary at or below), then `~` and 16 hex digits.
    let shape = |v: &str, prefix: &str| {
        v.len() <= 32
            && v.starts_with(prefix)
            && v.as_bytes()[prefix.len()] == b'~'
            && v[prefix.len() + 1..].len() == 16
            && v[prefix.len() + 1..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    assert!(shape(&got[1].0, &"x".repeat(15)), "{got:?}");
    assert_eq!(got[1].1, Value::Counter(2));
    assert!(shape(&got[2].0, &"a".repeat(14)), "{got:?}");
    assert!(shape(&got[3].0, &"x".repeat(15)), "{got:?}");
    // Two long values sharing a prefix stay two series.
    assert_ne!(got[1].0, got[3].0);
    let truncated = families
        .iter()
        .find(|f| f.descriptor.name() == self_metrics::LABELS_TRUNCATED)
        .unwrap();
    assert_eq!(truncated.series[0].value, Value::Counter(4));
    assert!(Registry::builder().max_label_value_len(31).build().is_err());
}

#[test]
fn named_dynamic_labels_report_unknown_and_missing_names() {
    let reg = Registry::builder().build().unwrap();
    let fam = reg
        .counter("reqs_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap();
    fam.try_with_named(&[("status", "ok"), ("operation", "migrate")])
        .unwrap()
        .inc_by(2);
    assert_eq!(fam.try_with_labels(&["migrate", "ok"]).unwrap().get(), 2);
    assert_eq!(
        fam.try_with_named(&[("operation", "migrate")]).unwrap_err(),
        LabelError::MissingLabel {
            metric: "reqs_total".into(),
            label: "status".into()
        }
    );
    assert_eq!(
        fam.try_with_named(&[("operation", "a"), ("operation", "b"), ("status", "ok")])
            .unwrap_err(),
        LabelError::MissingLabel {
            metric: "reqs_total".into(),
            label: "operation".into()
        }
    );
    assert_eq!(
        fam.try_with_named(&[("operation", "a"), ("status", "ok"), ("kind", "x")])
            .unwrap_err(),
        LabelError::UnknownLabel {
            metric: "reqs_total".into(),
            label: "kind".into(),
            expected: vec!["operation".into(), "status".into()]
        }
    );
    assert_eq!(fam.series_count(), 1, "no series created by the errors");
}

/// A careless user times a histogram named without `_seconds`: the durations are recorded
/// (as nanoseconds, nothing lost) and each such call is counted, so the mistake shows on
/// `/metrics` instead of passing for plain numbers.
#[test]
fn durations_into_a_non_duration_histogram_are_recorded_and_counted() {
    let reg = Registry::builder().build().unwrap();
    let careless = reg
        .histogram("rpc_latency", "RPC latency")
        .register()
        .unwrap();
    let right = reg
        .histogram("rpc_latency_seconds", "RPC latency")
        .register()
        .unwrap();
    for h in [careless.handle(), right.handle()] {
        h.start_timer().stop();
        h.record_duration(std::time::Duration::from_millis(2));
        h.time(|| ());
        h.record_secs(0.5);
        assert_eq!(h.snapshot().count(), 4, "nothing lost");
    }
    let adjusted = |metric: &str| -> Option<Value> {
        reg.collect()
            .into_iter()
            .find(|f| f.descriptor.name() == self_metrics::VALUES_ADJUSTED)
            .and_then(|f| {
                f.series
                    .into_iter()
                    .find(|s| s.label_values[..] == [metric.to_string(), "not_a_duration".into()])
            })
            .map(|s| s.value)
    };
    assert_eq!(adjusted("rpc_latency"), Some(Value::Counter(4)));
    assert_eq!(adjusted("rpc_latency_seconds"), None);
    assert_eq!(careless.handle().snapshot().bad_input().not_a_duration, 4);
}

/// The facade receives `f64`: its unitless histograms keep millionths. The registry's own
/// unitless histograms store whole numbers, and a fraction given to `observe` is rounded and
/// counted, never silently.
#[test]
fn fractions_are_kept_by_the_facade_and_counted_when_rounded() {
    use dwcp_telemetry::export::prometheus::{render, Format};
    // Exact sums, so the exported sums can be compared exactly.
    let reg = Registry::builder()
        .version("1")
        .exact_sums(true)
        .build()
        .unwrap();
    let recorder = dwcp_telemetry::facade::DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..10 {
            metrics::histogram!("rpc_load").record(0.3);
        }
        metrics::histogram!("rpc_batch").record(12.5);
    });
    let plain = reg
        .histogram("items_per_batch", "Items")
        .register()
        .unwrap();
    assert!(plain.handle().observe(0.4));
    assert!(plain.handle().observe(7.0));
    let text = render(&reg, Format::Text);
    assert!(text.contains("rpc_load_sum{version=\"1\"} 3\n"), "{text}");
    assert!(
        text.contains("rpc_batch_sum{version=\"1\"} 12.5\n"),
        "{text}"
    );
    assert!(
        text.contains("rpc_load_bucket{version=\"1\",le=\"1\"} 10\n"),
        "{text}"
    );
    assert!(
        text.contains("items_per_batch_sum{version=\"1\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "dwcp_telemetry_values_adjusted_total{version=\"1\",metric=\"items_per_batch\",reason=\"rounded\"} 1\n"
        ),
        "{text}"
    );
    assert!(!text.contains("metric=\"rpc_load\",reason="), "{text}");
}
