//! Our exposition through real parsers: `promtool check metrics` (Prometheus' own text parser
//! and linter) must report nothing, for a hostile registry and for random registries; and the
//! sample values read back by an independent strict parser equal what was recorded.

mod prom_support;

use std::collections::HashMap;

use dwcp_telemetry::export::prometheus::{render, Format, TextEncoder};
use dwcp_telemetry::{FamilySnapshot, Registry, Unit, Value};
use proptest::prelude::*;

use prom_support::{have, hostile_string, promtool_check};

fn hostile_registry() -> Registry {
    let reg = Registry::builder()
        .version("3.0.0-\"rc\"\\1\n")
        .const_label("instance", "dwcp-manager-01:8080")
        .build()
        .unwrap();
    let lat = reg
        .histogram(
            "dwcp_request_duration_seconds",
            "Request latency \"quoted\" \\ back\nslash",
        )
        .dynamic_labels(["operation"])
        .register()
        .unwrap();
    let comp = reg
        .histogram("dwcp_v3_component_latency_seconds", "Component latency")
        .dynamic_labels(["component"])
        .buckets(vec![
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
        ])
        .register()
        .unwrap();
    let req = reg
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["operation", "status"])
        .register()
        .unwrap();
    let errs = reg
        .counter("dwcp_errors", "Errors by type (registered without _total)")
        .dynamic_labels(["type"])
        .register()
        .unwrap();
    let cb = reg
        .gauge(
            "dwcp_circuit_breaker_state",
            "Circuit breaker state (0=closed, 1=open, 2=half-open)",
        )
        .dynamic_labels(["circuit"])
        .register()
        .unwrap();
    let mem = reg
        .gauge("dwcp_memory_usage_bytes", "Memory")
        .dynamic_labels(["type"])
        .register()
        .unwrap();
    let hostile = [
        "q\"uote",
        "back\\slash",
        "new\nline",
        "tab\t",
        "ünï ✓ 日本",
        "",
        "}{,=\\\"\n",
    ];
    for (i, v) in hostile.iter().enumerate() {
        lat.with_labels_or_overflow(&[v])
            .record(1_000 * (i as u64 + 1) * 997);
        req.with_labels_or_overflow(&[v, "ok"]).inc_by(i as u64 + 1);
        errs.with_labels_or_overflow(&[v]).inc();
        cb.with_labels_or_overflow(&[v]).set(i as f64 / 3.0);
    }
    for c in ["amst", "hde", "pba", "acp", "ass", "itp"] {
        let h = comp.with_labels_or_overflow(&[c]);
        for us in [50u64, 120, 800, 4_000, 90_000, 2_000_000] {
            h.record(us * 1_000);
        }
    }
    mem.with_labels_or_overflow(&["heap"]).set(f64::INFINITY);
    mem.with_labels_or_overflow(&["stack"])
        .set(f64::NEG_INFINITY);
    mem.with_labels_or_overflow(&["rss"]).set(3.5e9);
    reg
}

#[test]
fn promtool_accepts_hostile_registry_without_lint_warnings() {
    if !have("promtool") {
        return;
    }
    let text = render(&hostile_registry(), Format::Text);
    let (code, output) = promtool_check(&text);
    assert_eq!(output, "", "promtool said something about:\n{text}");
    assert_eq!(code, 0, "promtool failed on:\n{text}");
}

#[test]
fn promtool_rejects_broken_text() {
    // The check can fail: an unescaped quote in a label value is a parse error.
    if !have("promtool") {
        return;
    }
    let (code, output) =
        promtool_check("# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"b\"c\"} 1\n");
    assert_ne!(code, 0);
    assert!(!output.is_empty());
}

// ---------------------------------------------------------------------------------------------
// An independent strict parser of the text format (0.0.4; `#` lines skipped), for values.

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

fn parse_samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("name end");
        let name = line[..name_end].to_owned();
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let mut consumed = 0;
            loop {
                // label name
                let mut lname = String::new();
                for (i, c) in chars.by_ref() {
                    if c == '=' {
                        consumed = i + 1;
                        break;
                    }
                    if c == '}' && lname.is_empty() {
                        consumed = i + 1;
                        break;
                    }
                    lname.push(c);
                }
                if lname.is_empty() {
                    break;
                }
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "quote in {line:?}");
                let mut value = String::new();
                loop {
                    let (i, c) = chars.next().expect("unterminated value");
                    match c {
                        '\\' => match chars.next().expect("escape").1 {
                            'n' => value.push('\n'),
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            other => panic!("bad escape \\{other} in {line:?}"),
                        },
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        '\n' => panic!("raw newline"),
                        c => value.push(c),
                    }
                }
                labels.push((lname, value));
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((i, '}')) => {
                        consumed = i + 1;
                        break;
                    }
                    other => panic!("unexpected {other:?} in {line:?}"),
                }
            }
            rest = &r[consumed..];
        }
        let v = rest.trim_start_matches(' ');
        let value = match v {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?} in {line:?}")),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

#[test]
fn strict_parser_reads_back_hostile_values() {
    let reg = hostile_registry();
    let samples = parse_samples(&render(&reg, Format::Text));
    let find = |name: &str, key: &str, v: &str| {
        samples
            .iter()
            .find(|s| s.name == name && s.labels.iter().any(|(k, x)| k == key && x == v))
            .map(|s| s.value)
    };
    assert_eq!(
        find("dwcp_requests_total", "operation", "}{,=\\\"\n"),
        Some(7.0)
    );
    assert_eq!(find("dwcp_errors_total", "type", "new\nline"), Some(1.0));
    assert_eq!(
        find("dwcp_circuit_breaker_state", "circuit", "ünï ✓ 日本"),
        Some(4.0 / 3.0)
    );
    assert_eq!(
        find("dwcp_memory_usage_bytes", "type", "stack"),
        Some(f64::NEG_INFINITY)
    );
    let s = samples
        .iter()
        .find(|s| s.name == "dwcp_errors_total")
        .unwrap();
    assert_eq!(
        s.labels[0],
        ("version".to_owned(), "3.0.0-\"rc\"\\1\n".to_owned())
    );
    assert_eq!(
        s.labels[1],
        ("instance".to_owned(), "dwcp-manager-01:8080".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Random registries.

#[derive(Debug, Clone)]
enum Kind {
    Counter(Vec<u64>),
    Gauge(Vec<f64>),
    Histogram(Vec<Vec<u64>>),
}

#[derive(Debug, Clone)]
struct FamilySpec {
    token: String,
    help: String,
    label_count: usize,
    label_values: Vec<Vec<String>>,
    kind: Kind,
}

fn gauge_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        -1e6f64..1e6,
    ]
}

fn family_spec() -> impl Strategy<Value = FamilySpec> {
    let kind = prop_oneof![
        proptest::collection::vec(any::<u32>().prop_map(u64::from), 1..4).prop_map(Kind::Counter),
        proptest::collection::vec(gauge_value(), 1..4).prop_map(Kind::Gauge),
        proptest::collection::vec(proptest::collection::vec(1u64..10_000_000_000, 0..20), 1..4)
            .prop_map(Kind::Histogram),
    ];
    (
        "[a-z][a-z0-9]{2,10}",
        "[ -~]{1,20}|.{1,10}",
        0usize..3,
        kind,
        // No '\r': a CR is stored as a line feed, so `a\rb` and `a\nb` are one series
        // (tests/hardening.rs); this model keeps one series per generated label set.
        proptest::collection::vec(proptest::collection::vec(hostile_string(false), 2), 4),
    )
        .prop_map(|(token, help, label_count, kind, values)| FamilySpec {
            token,
            // promtool lints whitespace-only help as "no help text": start with a letter.
            help: format!("h{help}"),
            label_count,
            label_values: values
                .into_iter()
                .map(|v| v.into_iter().take(label_count).collect())
                .collect(),
            kind,
        })
}

type Expected = HashMap<(String, Vec<(String, String)>), f64>;

/// Build a registry for `specs` (names prefixed with `case`), encode it, and return the text
/// and the samples we expect to read back.
fn build(case: usize, specs: &[FamilySpec]) -> (String, Expected) {
    let reg = Registry::builder()
        .version(format!("v{case}\"\\\n"))
        .build()
        .unwrap();
    let version = ("version".to_owned(), format!("v{case}\"\\\n"));
    let mut expected = Expected::new();
    let mut nan_series = Vec::new();
    for (i, f) in specs.iter().enumerate() {
        let name = format!("p{case}x{i}{}", f.token);
        let label_names: Vec<String> = (0..f.label_count).map(|l| format!("l{l}")).collect();
        let key = |sample: &str, vals: &[String], extra: Option<(&str, String)>| {
            let mut labels = vec![version.clone()];
            labels.extend(label_names.iter().cloned().zip(vals.iter().cloned()));
            if let Some((k, v)) = extra {
                labels.push((k.to_owned(), v));
            }
            (sample.to_owned(), labels)
        };
        match &f.kind {
            Kind::Counter(adds) => {
                let fam = reg
                    .counter(&name, &f.help)
                    .dynamic_labels(label_names.clone())
                    .register()
                    .unwrap();
                for (j, n) in adds.iter().enumerate() {
                    let vals = &f.label_values[j];
                    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                    fam.with_labels_or_overflow(&refs).inc_by(*n);
                    *expected
                        .entry(key(&format!("{name}_total"), vals, None))
                        .or_insert(0.0) += *n as f64;
                }
            }
            Kind::Gauge(sets) => {
                let fam = reg
                    .gauge(&name, &f.help)
                    .dynamic_labels(label_names.clone())
                    .register()
                    .unwrap();
                for (j, v) in sets.iter().enumerate() {
                    let vals = &f.label_values[j];
                    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                    let g = fam.with_labels_or_overflow(&refs);
                    if v.is_nan() {
                        g.set(0.0);
                        nan_series.push((name.clone(), vals.clone()));
                    } else {
                        g.set(*v);
                        nan_series.retain(|(n, x)| !(n == &name && x == vals));
                    }
                    expected.insert(key(&name, vals, None), *v);
                }
            }
            Kind::Histogram(series) => {
                let fam = reg
                    .histogram(&name, &f.help)
                    .unit(Unit::Seconds)
                    .dynamic_labels(label_names.clone())
                    .exact_sum(true)
                    .register()
                    .unwrap();
                let mut totals: HashMap<Vec<String>, (u64, u64)> = HashMap::new();
                for (j, values) in series.iter().enumerate() {
                    let vals = &f.label_values[j];
                    let refs: Vec<&str> = vals.iter().map(String::as_str).collect();
                    let h = fam.with_labels_or_overflow(&refs);
                    let t = totals.entry(vals.clone()).or_default();
                    for &v in values {
                        h.record(v);
                        t.0 += 1;
                        t.1 += v;
                    }
                }
                for (vals, (count, sum)) in totals {
                    expected.insert(key(&format!("{name}_count"), &vals, None), count as f64);
                    expected.insert(
                        key(
                            &format!("{name}_bucket"),
                            &vals,
                            Some(("le", "+Inf".to_owned())),
                        ),
                        count as f64,
                    );
                    // The exact sum in seconds, correctly rounded (sums here stay below 2^53 ns).
                    assert!(sum < 1 << 53);
                    let secs = sum as f64 / 1e9;
                    expected.insert(key(&format!("{name}_sum"), &vals, None), secs);
                }
            }
        }
    }
    let mut families: Vec<FamilySnapshot> = reg
        .collect()
        .into_iter()
        .filter(|f| !f.descriptor.name().starts_with("dwcp_telemetry_"))
        .collect();
    for f in &mut families {
        for s in &mut f.series {
            if nan_series
                .iter()
                .any(|(n, v)| n == f.descriptor.name() && v[..] == s.label_values[..])
            {
                s.value = Value::Gauge(f64::NAN);
            }
        }
    }
    let mut text = String::new();
    TextEncoder::new(Format::Text).encode(&families, &reg.const_labels(), &mut text);
    (text, expected)
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Several random registries per case, batched into one promtool run.
    #[test]
    fn random_registries_parse_and_read_back(batch in proptest::collection::vec(
        proptest::collection::vec(family_spec(), 1..5), 1..6))
    {
        let mut all = String::new();
        for (case, specs) in batch.iter().enumerate() {
            let (text, expected) = build(case, specs);
            let samples = parse_samples(&text);
            for ((name, labels), value) in &expected {
                let found = samples.iter().find(|s| &s.name == name && &s.labels == labels);
                let found = found.map(|s| s.value);
                prop_assert!(
                    found.is_some_and(|v| same(v, *value)),
                    "{name} {labels:?}: expected {value}, found {found:?} in\n{text}"
                );
            }
            all.push_str(&text);
        }
        if have("promtool") {
            let (code, output) = promtool_check(&all);
            prop_assert!(code == 0 && output.is_empty(), "promtool: {output}\n{all}");
        }
    }
}
