//! Collection: turning the registry into snapshots for exporters, plus self-metrics.

use std::sync::Arc;

use super::descriptor::{Descriptor, MetricKind, Unit};
use super::family::{FamilyCore, RegistryTallies};
use super::AnyFamily;
use crate::histogram::{Layout, Snapshot};
use crate::metric::{CounterCell, GaugeCell, HistogramCell};
use crate::sync::Ordering;

/// The value of one series at collection time.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram's cumulative snapshot (values in stored units; see
    /// [`Descriptor::export_scale`]).
    Histogram(Snapshot),
}

/// One series: label values (in the family's label-name order) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// Label values, matching [`Descriptor::label_names`].
    pub label_values: Arc<[String]>,
    /// The value.
    pub value: Value,
}

/// One family at collection time.
#[derive(Debug, Clone)]
pub struct FamilySnapshot {
    /// Name, help, kind, unit, label names, buckets.
    pub descriptor: Arc<Descriptor>,
    /// Its series, in creation order, the overflow series (if any) last.
    pub series: Vec<SeriesSnapshot>,
}

/// Names of the self-metrics the registry appends to every collection.
pub mod self_metrics {
    /// Values not recorded as given, by `metric` and `reason`
    /// (`nan`, `negative` = rejected; `clamped` = above max, recorded as max; `zero`).
    pub const VALUES_ADJUSTED: &str = "dwcp_telemetry_values_adjusted_total";
    /// Records that went into a family's overflow series, by `metric`.
    pub const OVERFLOW_RECORDS: &str = "dwcp_telemetry_cardinality_overflow_records_total";
    /// New label sets refused for the cardinality limit, by `metric`.
    pub const OVERFLOW_LABEL_SETS: &str = "dwcp_telemetry_cardinality_overflow_label_sets_total";
    /// `with_labels` calls with the wrong number of label values.
    pub const LABEL_ERRORS: &str = "dwcp_telemetry_label_errors_total";
    /// `metrics`-facade registrations refused (a name already used by another kind).
    pub const REGISTRATION_ERRORS: &str = "dwcp_telemetry_registration_errors_total";
    /// Label values cut to the registry's maximum length.
    pub const LABELS_TRUNCATED: &str = "dwcp_telemetry_label_values_truncated_total";
    /// Series per metric.
    pub const SERIES: &str = "dwcp_telemetry_series";
}

struct SelfMetrics {
    adjusted: Vec<SeriesSnapshot>,
    overflow_records: Vec<SeriesSnapshot>,
    overflow_sets: Vec<SeriesSnapshot>,
    series: Vec<SeriesSnapshot>,
}

fn labels(values: &[&str]) -> Arc<[String]> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn self_family(name: &str, help: &str, kind: MetricKind, label_names: &[&str]) -> Arc<Descriptor> {
    Arc::new(Descriptor::new(
        name.to_owned(),
        help.to_owned(),
        kind,
        Unit::None,
        label_names.iter().map(|s| (*s).to_owned()).collect(),
        None,
        Layout::default(),
        false,
    ))
}

pub(super) fn collect(families: &[AnyFamily], tallies: &RegistryTallies) -> Vec<FamilySnapshot> {
    let mut me = SelfMetrics {
        adjusted: Vec::new(),
        overflow_records: Vec::new(),
        overflow_sets: Vec::new(),
        series: Vec::new(),
    };
    let mut out = Vec::with_capacity(families.len() + 5);
    for f in families {
        match f {
            AnyFamily::Counter(core) => out.push(family(core, &mut me, |c: &CounterCell| {
                (
                    Value::Counter(c.value.load(Ordering::Relaxed)),
                    c.overflow
                        .then(|| c.overflow_records.load(Ordering::Relaxed)),
                    None,
                )
            })),
            AnyFamily::Gauge(core) => out.push(family(core, &mut me, |c: &GaugeCell| {
                let nan = c.rejected_nan.load(Ordering::Relaxed);
                (
                    Value::Gauge(c.get()),
                    c.overflow
                        .then(|| c.overflow_records.load(Ordering::Relaxed)),
                    Some([0, 0, nan, 0]),
                )
            })),
            AnyFamily::Histogram(core) => out.push(family(core, &mut me, |c: &HistogramCell| {
                let snap = c.hist.snapshot();
                let b = snap.bad_input();
                let overflow = c.overflow.then(|| snap.count());
                (
                    Value::Histogram(snap),
                    overflow,
                    Some([b.clamped, b.zero, b.nan, b.negative]),
                )
            })),
        }
    }
    let label_errors = tallies.label_errors.load(Ordering::Relaxed);
    let push =
        |out: &mut Vec<FamilySnapshot>, desc: Arc<Descriptor>, series: Vec<SeriesSnapshot>| {
            out.push(FamilySnapshot {
                descriptor: desc,
                series,
            });
        };
    push(
        &mut out,
        self_family(
            self_metrics::VALUES_ADJUSTED,
            "Values not recorded as given: nan and negative are rejected, clamped were above the trackable maximum and recorded as it, zero were recorded as 0.",
            MetricKind::Counter,
            &["metric", "reason"],
        ),
        me.adjusted,
    );
    push(
        &mut out,
        self_family(
            self_metrics::OVERFLOW_RECORDS,
            "Records that went into a metric's overflow series because its cardinality limit was reached.",
            MetricKind::Counter,
            &["metric"],
        ),
        me.overflow_records,
    );
    push(
        &mut out,
        self_family(
            self_metrics::OVERFLOW_LABEL_SETS,
            "Lookups of new label sets refused because the metric reached its cardinality limit.",
            MetricKind::Counter,
            &["metric"],
        ),
        me.overflow_sets,
    );
    push(
        &mut out,
        self_family(
            self_metrics::LABEL_ERRORS,
            "with_labels calls with the wrong number of label values (recorded into the overflow series).",
            MetricKind::Counter,
            &[],
        ),
        vec![SeriesSnapshot { label_values: labels(&[]), value: Value::Counter(label_errors) }],
    );
    push(
        &mut out,
        self_family(
            self_metrics::REGISTRATION_ERRORS,
            "metrics-facade registrations refused because the name is used by another metric kind (recorded nowhere).",
            MetricKind::Counter,
            &[],
        ),
        vec![SeriesSnapshot {
            label_values: labels(&[]),
            value: Value::Counter(tallies.registration_errors.load(Ordering::Relaxed)),
        }],
    );
    push(
        &mut out,
        self_family(
            self_metrics::LABELS_TRUNCATED,
            "Label values cut to the registry's maximum label value length.",
            MetricKind::Counter,
            &[],
        ),
        vec![SeriesSnapshot {
            label_values: labels(&[]),
            value: Value::Counter(tallies.truncated_label_values.load(Ordering::Relaxed)),
        }],
    );
    push(
        &mut out,
        self_family(
            self_metrics::SERIES,
            "Distinct label sets per metric.",
            MetricKind::Gauge,
            &["metric"],
        ),
        me.series,
    );
    out
}

/// `(value, overflow records if this is the overflow series, [clamped, zero, nan, negative])`
type CellReading = (Value, Option<u64>, Option<[u64; 4]>);

fn family<C: super::Cell>(
    core: &FamilyCore<C>,
    me: &mut SelfMetrics,
    read: impl Fn(&C) -> CellReading,
) -> FamilySnapshot {
    let name = core.desc.name();
    let mut series = Vec::new();
    let mut adjusted = [0u64; 4];
    let mut overflow_records = 0u64;
    for s in core.series() {
        let (value, overflow, bad) = read(&s.cell);
        if let Some(n) = overflow {
            overflow_records += n;
        }
        if let Some(b) = bad {
            for (acc, x) in adjusted.iter_mut().zip(b) {
                *acc += x;
            }
        }
        series.push(SeriesSnapshot {
            label_values: s.values.clone(),
            value,
        });
    }
    for (reason, n) in ["clamped", "zero", "nan", "negative"].iter().zip(adjusted) {
        if n != 0 {
            me.adjusted.push(SeriesSnapshot {
                label_values: labels(&[name, reason]),
                value: Value::Counter(n),
            });
        }
    }
    if overflow_records != 0 {
        me.overflow_records.push(SeriesSnapshot {
            label_values: labels(&[name]),
            value: Value::Counter(overflow_records),
        });
    }
    let sets = core.overflowed_sets.load(Ordering::Relaxed);
    if sets != 0 {
        me.overflow_sets.push(SeriesSnapshot {
            label_values: labels(&[name]),
            value: Value::Counter(sets),
        });
    }
    me.series.push(SeriesSnapshot {
        label_values: labels(&[name]),
        value: Value::Gauge(core.len() as f64),
    });
    FamilySnapshot {
        descriptor: core.desc.clone(),
        series,
    }
}
