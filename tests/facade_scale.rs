//! 20,000 distinct names through the `metrics` facade: exact outcomes under the default family
//! cap (10,000 registered, the rest refused and counted) and with `max_families(20_000)` (all
//! registered). The elapsed time is printed, not asserted: `benches/facade.rs`
//! (`facade_new_names`) measures it.

use std::time::Instant;

use dwcp_telemetry::facade::DwcpRecorder;
use dwcp_telemetry::registry::{self_metrics, DEFAULT_MAX_FAMILIES};
use dwcp_telemetry::{FamilySnapshot, Registry, Value};

const NAMES: usize = 20_000;

fn counter(families: &[FamilySnapshot], name: &str, label: Option<&str>) -> u64 {
    families
        .iter()
        .find(|f| f.descriptor.name() == name)
        .into_iter()
        .flat_map(|f| f.series.iter())
        .filter(|s| match label {
            Some(l) => s.label_values.first().map(String::as_str) == Some(l),
            None => true,
        })
        .map(|s| match s.value {
            Value::Counter(n) => n,
            _ => panic!("{name} is not a counter"),
        })
        .sum()
}

/// What the registry holds after the facade saw the names.
#[derive(Debug, PartialEq)]
struct Outcome {
    families: usize,
    refused: u64,
    facade_refused: u64,
    /// Sum of the `n*_total` counters.
    total: u64,
}

fn outcome(registry: &Registry) -> Outcome {
    let families = registry.collect();
    let total = families
        .iter()
        .filter(|f| f.descriptor.name().starts_with('n'))
        .flat_map(|f| f.series.iter())
        .map(|s| match s.value {
            Value::Counter(n) => n,
            _ => panic!("not a counter"),
        })
        .sum();
    Outcome {
        families: registry.family_count(),
        refused: counter(&families, self_metrics::FAMILIES_REFUSED, None),
        facade_refused: counter(
            &families,
            self_metrics::FACADE_ADJUSTMENTS,
            Some("family_refused"),
        ),
        total,
    }
}

/// One pass of `counter!(format!("n{i}_total")).increment(1)` over every name; returns the
/// wall-clock time it took.
fn pass(recorder: &DwcpRecorder) -> std::time::Duration {
    let start = Instant::now();
    metrics::with_local_recorder(recorder, || {
        for i in 0..NAMES {
            metrics::counter!(format!("n{i}_total")).increment(1);
        }
    });
    start.elapsed()
}

#[test]
fn default_cap_registers_10_000_and_counts_the_rest_refused() {
    assert_eq!(DEFAULT_MAX_FAMILIES, 10_000);
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    let took = pass(&recorder);
    println!("{NAMES} names, default cap: first pass {took:?} (wall-clock)");
    assert_eq!(
        outcome(&registry),
        Outcome {
            families: 10_000,
            refused: 10_000,
            facade_refused: 10_000,
            total: 10_000,
        }
    );
    // The first 10,000 names are the ones registered.
    assert!(registry.descriptor_of("n0_total").is_some());
    assert!(registry.descriptor_of("n9999_total").is_some());
    assert!(registry.descriptor_of("n10000_total").is_none());

    // A second pass: registered names count again. A refusal is counted each time a thread
    // resolves the name, and a thread caches its last 4,096 keys (the oldest evicted first),
    // so after a first pass over 20,000 names every refused name is resolved, and counted,
    // again.
    let took = pass(&recorder);
    println!("{NAMES} names, default cap: second pass {took:?}");
    assert_eq!(
        outcome(&registry),
        Outcome {
            families: 10_000,
            refused: 20_000,
            facade_refused: 20_000,
            total: 20_000,
        }
    );
}

#[test]
fn max_families_20_000_registers_every_name() {
    let registry = Registry::builder()
        .version("3.0.0")
        .max_families(NAMES)
        .build()
        .unwrap();
    let recorder = DwcpRecorder::new(registry.clone());
    let took = pass(&recorder);
    println!("{NAMES} names, max_families({NAMES}): first pass {took:?} (wall-clock)");
    assert_eq!(
        outcome(&registry),
        Outcome {
            families: NAMES,
            refused: 0,
            facade_refused: 0,
            total: NAMES as u64,
        }
    );
    let families = registry.collect();
    assert_eq!(counter(&families, "n0_total", None), 1);
    assert_eq!(counter(&families, "n19999_total", None), 1);

    let took = pass(&recorder);
    println!("{NAMES} names, max_families({NAMES}): second pass {took:?}");
    assert_eq!(outcome(&registry).total, 2 * NAMES as u64);
    assert_eq!(registry.family_count(), NAMES);
}
