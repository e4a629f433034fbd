//! Random registries, built through both the registry API and the `metrics` facade on the same
//! registry, must always render valid exposition: `promtool check metrics` says nothing (no
//! error, no lint) about the text 0.0.4 render, and a strict OpenMetrics parser (Python's
//! `prometheus_client.openmetrics.parser`) accepts the OpenMetrics render.
//!
//! The generator aims at the hardening findings: colliding names (`x`, `x_total`, `x_count`,
//! `x_created`, …), reserved and duplicate label names (`le`, `quantile`, `version`, a constant
//! label), invalid buckets, units, and hostile values (NaN, ±∞, `u64::MAX`). Registrations the
//! registry refuses are skipped; whatever it accepts must export cleanly.
//!
//! Names are drawn per kind so that each name alone is lint-clean (promtool lints a gauge named
//! `*_count` or a histogram named `*_total` as the user's naming, not the exporter's).

mod prom_support;

use std::process::{Command, Stdio};

use dwcp_telemetry::export::prometheus::{render, Format};
use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::{RegistrationError, Registry, Unit};
use proptest::prelude::*;
use proptest::test_runner::Config;

use prom_support::{have, hostile_string, promtool_check, run_with_stdin};

// ---------------------------------------------------------------------------------------------
// The strict OpenMetrics parser.

const OM_PARSE: &str = "\
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.buffer.read().decode('utf-8')
n = sum(1 for _ in text_string_to_metric_families(text))
print(n)
";

/// Whether Python's `prometheus_client` is importable. If not: panic when
/// `DWCP_REQUIRE_PROMETHEUS=1`, else print why and return false (the caller skips).
fn have_openmetrics_parser() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg = "python3 module `prometheus_client` not found: run `bash scripts/setup.sh` \
                   (python3 -m pip install prometheus-client)";
        if std::env::var("DWCP_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("{msg} (DWCP_REQUIRE_PROMETHEUS=1, so this is a failure)");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

/// Parse `text` with the strict OpenMetrics parser: `Ok(families)` or `Err(traceback)`.
fn openmetrics_parse(text: &str) -> Result<usize, String> {
    match run_with_stdin("python3", &["-c", OM_PARSE], text) {
        (0, out, _) => Ok(out.trim().parse().unwrap_or(0)),
        (_, _, err) => Err(err),
    }
}

#[test]
fn openmetrics_parser_rejects_broken_text() {
    // The check can fail: a clashing family name and a missing `# EOF` are errors.
    if !have_openmetrics_parser() {
        return;
    }
    assert!(openmetrics_parse("# TYPE a counter\na_total 1\n").is_err());
    assert!(openmetrics_parse(
        "# TYPE a counter\na_total 1\n# TYPE a_created gauge\na_created 1\n# EOF\n"
    )
    .is_err());
    assert_eq!(
        openmetrics_parse("# TYPE a counter\na_total 1\n# EOF\n"),
        Ok(1)
    );
}

// ---------------------------------------------------------------------------------------------
// The generator.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One recording: label values (any arity: a wrong one goes to the overflow series) and a
/// value, interpreted per kind.
#[derive(Debug, Clone)]
struct Op {
    values: Vec<String>,
    int: u64,
    float: f64,
    /// Counters: `absolute` instead of an increment; gauges: `add` instead of `set`.
    alt: bool,
}

#[derive(Debug, Clone)]
struct FamilySpec {
    via_facade: bool,
    kind: Kind,
    name: String,
    help: String,
    labels: Vec<String>,
    unit: Option<Unit>,
    buckets: Option<Vec<f64>>,
    exact_sum: bool,
    /// Facade only: a `describe_*!` before first use (true) or after it (false).
    describe: Option<(bool, Option<metrics::Unit>)>,
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
struct Case {
    const_label: Option<&'static str>,
    families: Vec<FamilySpec>,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Counter),
        Just(Kind::Gauge),
        Just(Kind::Histogram)
    ]
}

/// A name for `kind`, often colliding with another family's exposition names.
fn name_for(kind: Kind, via_facade: bool) -> BoxedStrategy<String> {
    let mut suffixes: Vec<&'static str> = vec![
        "",
        "_created",
        "_seconds",
        "_bytes",
        "_ratio",
        "_info",
        "_count",
        "_sum",
        "_bucket",
        "_total",
        "_seconds_total",
    ];
    match kind {
        Kind::Counter => {}
        // promtool lints `*_total` on anything but a counter, and `*_count`/`*_sum`/`*_bucket`
        // on gauges: the user's naming, not ours.
        Kind::Histogram => suffixes.retain(|s| !s.ends_with("_total")),
        Kind::Gauge => suffixes.retain(|s| {
            !["_total", "_count", "_sum", "_bucket"]
                .iter()
                .any(|bad| s.ends_with(bad))
        }),
    }
    let mut bases = vec!["x", "y", "dwcp_telemetry_series", "dwcp_telemetry_x"];
    if via_facade {
        // Sanitised by the facade (`x.y` → `x_y`, `9x` → `_9x`).
        bases.extend(["x.y", "9x", "x y"]);
    }
    (
        proptest::sample::select(bases),
        proptest::sample::select(suffixes),
    )
        .prop_map(|(b, s)| {
            if b.starts_with("dwcp_telemetry_") && b.ends_with("series") {
                b.to_owned()
            } else {
                format!("{b}{s}")
            }
        })
        .boxed()
}

fn label_name(via_facade: bool) -> BoxedStrategy<String> {
    let mut names = vec![
        "a",
        "b",
        "le",
        "quantile",
        "version",
        "instance",
        "component",
        "a_b",
        "__x",
    ];
    if via_facade {
        names.extend(["a-b", "a.b", "9z", ""]);
    }
    proptest::sample::select(names)
        .prop_map(str::to_owned)
        .boxed()
}

fn int_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(1500),
        Just(250_000_000),
        Just(3_600_000_000_000),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        any::<u64>(),
        0u64..10_000,
    ]
}

fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(-1.0),
        Just(0.25),
        Just(5000.0),
        Just(1e300),
        Just(-1e300),
        Just(f64::MIN_POSITIVE),
        any::<f64>(),
        -1e6f64..1e6,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (
        proptest::collection::vec(hostile_string(true), 0..4),
        int_value(),
        float_value(),
        any::<bool>(),
    )
        .prop_map(|(values, int, float, alt)| Op {
            values,
            int,
            float,
            alt,
        })
}

fn unit() -> impl Strategy<Value = Option<Unit>> {
    prop_oneof![
        Just(None),
        Just(Some(Unit::Seconds)),
        Just(Some(Unit::Bytes)),
        Just(Some(Unit::Ratio)),
        Just(Some(Unit::None)),
    ]
}

fn facade_unit() -> impl Strategy<Value = Option<metrics::Unit>> {
    prop_oneof![
        Just(None),
        Just(Some(metrics::Unit::Seconds)),
        Just(Some(metrics::Unit::Milliseconds)),
        Just(Some(metrics::Unit::Bytes)),
        Just(Some(metrics::Unit::Kibibytes)),
        Just(Some(metrics::Unit::Percent)),
        Just(Some(metrics::Unit::Count)),
    ]
}

fn buckets() -> impl Strategy<Value = Option<Vec<f64>>> {
    let valid = proptest::sample::subsequence(
        vec![
            0.0, 0.001, 0.005, 0.25, 1.0, 2.5, 100.0, 4096.0, 1e6, 1e12, 1e19,
        ],
        1..6,
    );
    prop_oneof![
        3 => Just(None),
        3 => valid.prop_map(Some),
        1 => Just(Some(vec![])),
        1 => Just(Some(vec![-1.0, 1.0])),
        1 => Just(Some(vec![1.0, 1.0])),
        1 => Just(Some(vec![2.0, 1.0])),
        1 => Just(Some(vec![f64::NAN])),
        1 => Just(Some(vec![1.0, f64::INFINITY])),
    ]
}

fn help() -> impl Strategy<Value = String> {
    // promtool lints a missing or blank HELP ("no help text"): start with a letter.
    hostile_string(true).prop_map(|s| format!("h{s}"))
}

fn family_spec() -> impl Strategy<Value = FamilySpec> {
    (any::<bool>(), kind()).prop_flat_map(|(via_facade, kind)| {
        (
            name_for(kind, via_facade),
            help(),
            proptest::collection::vec(label_name(via_facade), 0..4),
            unit(),
            buckets(),
            any::<bool>(),
            proptest::option::of((any::<bool>(), facade_unit())),
            proptest::collection::vec(op(), 1..6),
        )
            .prop_map(
                move |(name, help, labels, unit, buckets, exact_sum, describe, ops)| FamilySpec {
                    via_facade,
                    kind,
                    name,
                    help,
                    labels,
                    unit,
                    buckets,
                    exact_sum,
                    describe: describe.filter(|_| via_facade),
                    ops,
                },
            )
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(vec![None, Some("instance"), Some("component"), Some("le")]),
        proptest::collection::vec(family_spec(), 1..10),
    )
        .prop_map(|(const_label, families)| Case {
            const_label,
            families,
        })
}

// ---------------------------------------------------------------------------------------------
// Building a registry from a case.

fn build(case: &Case) -> Registry {
    let base = Registry::builder().version("1.0\"\\\n").exact_sums(false);
    let reg = match case.const_label {
        None => base.build().unwrap(),
        Some("le") => {
            // An exporter-generated label cannot be a constant label.
            let err = base.clone().const_label("le", "x").build().unwrap_err();
            assert!(
                matches!(err, RegistrationError::LabelName { ref name, .. } if name == "le"),
                "{err:?}"
            );
            base.build().unwrap()
        }
        Some(name) => base.const_label(name, "c\"1\"").build().unwrap(),
    };
    let rec = DwcpRecorder::new(reg.clone());
    for f in &case.families {
        if f.via_facade {
            metrics::with_local_recorder(&rec, || through_facade(f));
        } else {
            through_registry(&reg, f);
        }
    }
    reg
}

fn refs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

fn through_registry(reg: &Registry, f: &FamilySpec) {
    macro_rules! common {
        ($b:expr) => {{
            let mut b = $b.dynamic_labels(f.labels.clone());
            if let Some(u) = f.unit {
                b = b.unit(u);
            }
            b
        }};
    }
    match f.kind {
        Kind::Counter => {
            let Ok(fam) = common!(reg.counter(f.name.as_str(), f.help.as_str())).register() else {
                return;
            };
            for op in &f.ops {
                let c = fam.with_labels_or_overflow(&refs(&op.values));
                if op.alt {
                    c.absolute(op.int);
                } else {
                    c.inc_by(op.int);
                }
            }
        }
        Kind::Gauge => {
            let Ok(fam) = common!(reg.gauge(f.name.as_str(), f.help.as_str())).register() else {
                return;
            };
            for op in &f.ops {
                let g = fam.with_labels_or_overflow(&refs(&op.values));
                if op.alt {
                    g.add(op.float);
                } else {
                    g.set(op.float);
                }
            }
        }
        Kind::Histogram => {
            let mut b = common!(reg.histogram(f.name.as_str(), f.help.as_str()));
            if let Some(bk) = &f.buckets {
                b = b.buckets(bk.clone());
            }
            let Ok(fam) = b.exact_sum(f.exact_sum).register() else {
                return;
            };
            for op in &f.ops {
                let h = match fam.try_with_labels(&refs(&op.values)) {
                    Ok(h) => h,
                    Err(_) => fam.with_labels_or_overflow(&refs(&op.values)),
                };
                if op.alt {
                    h.observe(op.float);
                } else {
                    h.record(op.int);
                }
            }
        }
    }
}

fn through_facade(f: &FamilySpec) {
    let describe = |unit: Option<metrics::Unit>| match (f.kind, unit) {
        (Kind::Counter, Some(u)) => metrics::describe_counter!(f.name.clone(), u, f.help.clone()),
        (Kind::Counter, None) => metrics::describe_counter!(f.name.clone(), f.help.clone()),
        (Kind::Gauge, Some(u)) => metrics::describe_gauge!(f.name.clone(), u, f.help.clone()),
        (Kind::Gauge, None) => metrics::describe_gauge!(f.name.clone(), f.help.clone()),
        (Kind::Histogram, Some(u)) => {
            metrics::describe_histogram!(f.name.clone(), u, f.help.clone())
        }
        (Kind::Histogram, None) => metrics::describe_histogram!(f.name.clone(), f.help.clone()),
    };
    if let Some((true, unit)) = f.describe {
        describe(unit);
    }
    for op in &f.ops {
        // Label names are the family's; values as many as the op has (missing ones empty).
        let labels: Vec<metrics::Label> = f
            .labels
            .iter()
            .enumerate()
            .map(|(i, k)| {
                metrics::Label::new(k.clone(), op.values.get(i).cloned().unwrap_or_default())
            })
            .collect();
        match f.kind {
            Kind::Counter => {
                let c = metrics::counter!(f.name.clone(), labels);
                if op.alt {
                    c.absolute(op.int);
                } else {
                    c.increment(op.int);
                }
            }
            Kind::Gauge => {
                let g = metrics::gauge!(f.name.clone(), labels);
                match op.int % 3 {
                    0 => g.set(op.float),
                    1 => g.increment(op.float),
                    _ => g.decrement(op.float),
                }
            }
            Kind::Histogram => {
                let h = metrics::histogram!(f.name.clone(), labels);
                h.record(op.float);
                if op.alt {
                    h.record(op.int as f64);
                }
            }
        }
    }
    if let Some((false, unit)) = f.describe {
        describe(unit);
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal reproductions of what the generator found, one test each (they assert the valid
// exposition, whichever way the library chooses to get there: refuse, rename or merge).

/// `promtool check metrics` must say nothing about `text`.
fn assert_promtool_silent(text: &str) {
    let (code, output) = promtool_check(text);
    assert_eq!(output, "", "promtool said something about:\n{text}");
    assert_eq!(code, 0, "promtool failed on:\n{text}");
}

fn assert_openmetrics_valid(reg: &Registry) {
    let om = render(reg, Format::OpenMetrics);
    if let Err(e) = openmetrics_parse(&om) {
        panic!("OpenMetrics parser refused:\n{e}\n{om}");
    }
}

#[test]
fn label_values_differing_in_cr_vs_lf_do_not_export_one_series_twice() {
    if !have_openmetrics_parser() {
        return;
    }
    let reg = Registry::builder().version("1.0").build().unwrap();
    let g = reg
        .gauge("g", "G")
        .dynamic_labels(["a"])
        .register()
        .unwrap();
    g.with_labels_or_overflow(&["\n"]).set(1.0);
    g.with_labels_or_overflow(&[""]).set(2.0);
    g.with_labels_or_overflow(&["\r"]).set(3.0);
    let text = render(&reg, Format::Text);
    let same = text
        .lines()
        .filter(|l| l.starts_with(r#"g{version="1.0",a="\n"}"#))
        .count();
    assert_eq!(same, 1, "one label set exported {same} times:\n{text}");
    assert_openmetrics_valid(&reg);
}

#[test]
fn a_family_named_like_a_created_sample_does_not_clash_in_openmetrics() {
    if !have_openmetrics_parser() {
        return;
    }
    // Counter `x` owns `x_created` in OpenMetrics, and so does histogram `h`.
    let reg = Registry::builder().version("1.0").build().unwrap();
    reg.counter("x", "X").register().unwrap().handle().inc();
    if let Ok(c) = reg.counter("x_created", "X created").register() {
        c.handle().inc();
    }
    reg.histogram("h", "H")
        .register()
        .unwrap()
        .handle()
        .record(3);
    if let Ok(g) = reg.gauge("h_created", "H created").register() {
        g.handle().set(1.0);
    }
    assert_openmetrics_valid(&reg);

    let reg = Registry::builder().version("1.0").build().unwrap();
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("y").increment(1);
        metrics::gauge!("y_created").set(1.0);
    });
    assert_openmetrics_valid(&reg);
}

#[test]
fn a_label_named_le_on_counters_and_gauges_passes_promtool_lint() {
    if !have("promtool") {
        return;
    }
    let reg = Registry::builder().version("1.0").build().unwrap();
    if let Ok(c) = reg
        .counter("c_total", "C")
        .dynamic_labels(["le"])
        .register()
    {
        c.with_labels_or_overflow(&["a"]).inc();
    }
    if let Ok(g) = reg.gauge("g", "G").dynamic_labels(["le"]).register() {
        g.with_labels_or_overflow(&["a"]).set(1.0);
    }
    let rec = DwcpRecorder::new(reg.clone());
    metrics::with_local_recorder(&rec, || {
        metrics::counter!("f_total", "le" => "a").increment(1);
        metrics::gauge!("f_level", "le" => "a").set(1.0);
    });
    assert_promtool_silent(&render(&reg, Format::Text));
}

// ---------------------------------------------------------------------------------------------
// The property.

proptest! {
    #![proptest_config(Config {
        cases: 24,
        failure_persistence: None,
        // Each shrink step runs promtool and python: keep a failure's report quick.
        max_shrink_iters: 64,
        ..Config::default()
    })]

    #[test]
    fn random_registries_render_valid_text_and_openmetrics(case in case()) {
        if !have("promtool") || !have_openmetrics_parser() {
            return Ok(());
        }
        let reg = build(&case);

        let text = render(&reg, Format::Text);
        let (code, output) = promtool_check(&text);
        prop_assert_eq!(
            output.as_str(), "",
            "promtool said something (exit {}) about:\n{}", code, text
        );
        prop_assert_eq!(code, 0, "promtool failed on:\n{}", text);

        let om = render(&reg, Format::OpenMetrics);
        match openmetrics_parse(&om) {
            // At least the self-metrics are there.
            Ok(n) => prop_assert!(n >= 9, "{} families in:\n{}", n, om),
            Err(e) => prop_assert!(false, "OpenMetrics parser refused:\n{}\n{}", e, om),
        }
    }
}
