//! Collection: the one path from the registry to every exporter ([`Visitor`]), the
//! snapshot form built on it ([`FamilySnapshot`]), and the library's self-metrics.

use std::sync::Arc;

use super::descriptor::{Descriptor, MetricKind, Unit};
use super::family::{FamilyCore, RegistryTallies, FACADE_REASONS};
use super::AnyFamily;
use crate::histogram::{AtomicHistogram, BadInputCounts, Layout, Snapshot};
use crate::metric::{CounterCell, GaugeCell, HistogramCell};
use crate::sync::{AtomicU64, Ordering};

/// Receives every family and series of a registry, with real values, from
/// [`Registry::visit`](super::Registry::visit). Families come in registration order, the
/// library's self-metrics last; within a family, series in creation order, the overflow
/// series (if any) last.
///
/// ```
/// use std::sync::Arc;
/// use dwcp_telemetry::{Descriptor, HistogramView, Registry, Visitor};
///
/// #[derive(Default)]
/// struct Totals { counters: u64, samples: u64 }
/// impl Visitor for Totals {
///     fn counter(&mut self, _: &Descriptor, _: &Arc<[String]>, value: u64) { self.counters += value; }
///     fn gauge(&mut self, _: &Descriptor, _: &Arc<[String]>, _: f64) {}
///     fn histogram(&mut self, _: &Descriptor, _: &Arc<[String]>, h: HistogramView<'_>) {
///         h.for_each_nonzero(|_, n| self.samples += n);
///     }
/// }
///
/// let registry = Registry::builder().build()?;
/// registry.counter("jobs_total", "Jobs").register()?.handle().inc_by(3);
/// registry.histogram("job_seconds", "Job time").register()?.handle().record(1_000);
/// let mut t = Totals::default();
/// registry.visit(&mut t);
/// assert_eq!(t.samples, 1);
/// assert!(t.counters >= 3); // self-metric counters are visited too
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Visitor {
    /// A family begins; return `false` to skip its series.
    fn family(&mut self, descriptor: &Arc<Descriptor>) -> bool {
        let _ = descriptor;
        true
    }

    /// One counter series: its label values (in [`Descriptor::label_names`] order) and total.
    fn counter(&mut self, descriptor: &Descriptor, labels: &Arc<[String]>, value: u64);

    /// One gauge series.
    fn gauge(&mut self, descriptor: &Descriptor, labels: &Arc<[String]>, value: f64);

    /// One histogram series, read in place: see [`HistogramView`].
    fn histogram(
        &mut self,
        descriptor: &Descriptor,
        labels: &Arc<[String]>,
        histogram: HistogramView<'_>,
    );

    /// The family's series are done.
    fn family_end(&mut self, descriptor: &Descriptor) {
        let _ = descriptor;
    }
}

/// A read-only view of one live histogram series during a visit. Reading only loads
/// atomics: it never blocks writers. Values are stored units; multiply by
/// [`Descriptor::export_scale`] for the exported unit.
#[derive(Debug, Clone, Copy)]
pub struct HistogramView<'a> {
    hist: &'a AtomicHistogram,
}

impl<'a> HistogramView<'a> {
    pub(crate) fn new(hist: &'a AtomicHistogram) -> Self {
        HistogramView { hist }
    }

    /// The layout the series records into.
    pub fn layout(&self) -> &Layout {
        self.hist.layout()
    }

    /// A copy of the non-zero slots, as [`crate::Histogram::snapshot`] gives.
    pub fn snapshot(&self) -> Snapshot {
        self.hist.snapshot()
    }

    /// The non-zero slots as `(slot index, count)`, ascending, in place (no copy).
    pub fn for_each_nonzero(&self, f: impl FnMut(usize, u64)) {
        self.hist.for_each_nonzero(f);
    }

    /// Every allocated region as `(index of its first slot, its counts)`, ascending. All
    /// slots of a region have one width ([`Layout::width_of`]), so an exporter can fold a
    /// region without branching per slot.
    pub fn for_each_region(&self, mut f: impl FnMut(usize, RegionCounts<'_>)) {
        self.hist
            .for_each_region_slots(|first, counters| f(first, RegionCounts { counters }));
    }

    /// The exact running sum, if the family keeps one.
    pub fn exact_sum(&self) -> Option<u64> {
        self.hist.exact_sum()
    }

    /// Counts of values that were clamped, zero or rejected.
    pub fn bad_input(&self) -> BadInputCounts {
        self.hist.bad_input()
    }
}

/// The counts of one histogram region, read-only (each read is a relaxed load).
#[derive(Debug, Clone, Copy)]
pub struct RegionCounts<'a> {
    counters: &'a [AtomicU64],
}

impl<'a> RegionCounts<'a> {
    /// Slots in the region.
    #[inline]
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether the region has no slots (never, for a real layout).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// The count of slot `i` of the region (0 past the end).
    #[inline]
    pub fn get(&self, i: usize) -> u64 {
        self.counters
            .get(i)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Slots `start..end` of the region (clamped to it) as a region of their own, so a
    /// reader can fold part of a region without loading the slots before it.
    #[inline]
    pub fn slice(&self, start: usize, end: usize) -> RegionCounts<'a> {
        let end = end.min(self.counters.len());
        RegionCounts {
            counters: &self.counters[start.min(end)..end],
        }
    }

    /// The counts in slot order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.counters.iter().map(|c| c.load(Ordering::Relaxed))
    }
}

/// The value of one series at collection time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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

/// Builds [`FamilySnapshot`]s from a visit ([`super::Registry::collect`]).
#[derive(Debug, Default)]
pub(super) struct Collector {
    out: Vec<FamilySnapshot>,
}

impl Collector {
    pub(super) fn finish(self) -> Vec<FamilySnapshot> {
        self.out
    }

    fn push(&mut self, labels: &Arc<[String]>, value: Value) {
        if let Some(f) = self.out.last_mut() {
            f.series.push(SeriesSnapshot {
                label_values: labels.clone(),
                value,
            });
        }
    }
}

impl Visitor for Collector {
    fn family(&mut self, descriptor: &Arc<Descriptor>) -> bool {
        self.out.push(FamilySnapshot {
            descriptor: descriptor.clone(),
            series: Vec::new(),
        });
        true
    }
    fn counter(&mut self, _: &Descriptor, labels: &Arc<[String]>, value: u64) {
        self.push(labels, Value::Counter(value));
    }
    fn gauge(&mut self, _: &Descriptor, labels: &Arc<[String]>, value: f64) {
        self.push(labels, Value::Gauge(value));
    }
    fn histogram(&mut self, _: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        self.push(labels, Value::Histogram(h.snapshot()));
    }
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
    /// `with_labels_or_overflow` calls with the wrong number of label values.
    pub const LABEL_ERRORS: &str = "dwcp_telemetry_label_errors_total";
    /// What the `metrics` facade could not do as asked, by `reason`.
    pub const FACADE_ADJUSTMENTS: &str = "dwcp_telemetry_facade_adjustments_total";
    /// Label values shortened to the registry's maximum length.
    pub const LABELS_TRUNCATED: &str = "dwcp_telemetry_label_values_truncated_total";
    /// Registrations refused because the registry holds its family cap.
    pub const FAMILIES_REFUSED: &str = "dwcp_telemetry_families_refused_total";
    /// Counter totals and exact sums pinned at `u64::MAX` instead of wrapping, by `metric`.
    pub const SATURATED: &str = "dwcp_telemetry_saturated_total";
    /// Series per metric.
    pub const SERIES: &str = "dwcp_telemetry_series";
}

/// The self-metric descriptors, built once per registry.
#[derive(Debug)]
pub(super) struct SelfDescriptors {
    adjusted: Arc<Descriptor>,
    overflow_records: Arc<Descriptor>,
    overflow_sets: Arc<Descriptor>,
    label_errors: Arc<Descriptor>,
    facade: Arc<Descriptor>,
    truncated: Arc<Descriptor>,
    refused: Arc<Descriptor>,
    saturated: Arc<Descriptor>,
    series: Arc<Descriptor>,
    facade_labels: Vec<Arc<[String]>>,
    no_labels: Arc<[String]>,
}

fn self_family(name: &str, help: &str, kind: MetricKind, label_names: &[&str]) -> Arc<Descriptor> {
    Arc::new(Descriptor::new(
        name.to_owned(),
        help.to_owned(),
        kind,
        Unit::None,
        label_names.iter().map(|s| (*s).to_owned()).collect(),
        Vec::new(),
        Layout::default(),
        false,
    ))
}

fn labels(values: &[&str]) -> Arc<[String]> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

impl SelfDescriptors {
    pub(super) fn new() -> Self {
        use self_metrics::*;
        use MetricKind::{Counter, Gauge};
        SelfDescriptors {
            adjusted: self_family(VALUES_ADJUSTED, "Values not recorded as given: nan and negative are rejected, clamped were above the trackable maximum and recorded as it, zero were recorded as 0, not_a_duration were durations recorded as nanoseconds into a histogram whose unit is not seconds, rounded were fractional values recorded to the nearest whole number.", Counter, &["metric", "reason"]),
            overflow_records: self_family(OVERFLOW_RECORDS, "Records that went into a metric's overflow series because its cardinality limit was reached or its label values did not fit.", Counter, &["metric"]),
            overflow_sets: self_family(OVERFLOW_LABEL_SETS, "Lookups of new label sets refused because the metric reached its cardinality limit.", Counter, &["metric"]),
            label_errors: self_family(LABEL_ERRORS, "with_labels_or_overflow calls with the wrong number of label values (recorded into the overflow series).", Counter, &[]),
            facade: self_family(FACADE_ADJUSTMENTS, "metrics-facade calls not recorded as written: kind_conflict and family_refused record nowhere, label_mismatch records into the overflow series, reserved_label_renamed, label_collision_dropped and name_sanitized record with the name or label renamed or dropped.", Counter, &["reason"]),
            truncated: self_family(LABELS_TRUNCATED, "Label values shortened to the registry's maximum label value length (with a hash suffix).", Counter, &[]),
            refused: self_family(FAMILIES_REFUSED, "Metric families refused because the registry holds its maximum number of families.", Counter, &[]),
            saturated: self_family(SATURATED, "Counter additions and exact histogram sums that reached the largest u64 and were pinned there instead of wrapping.", Counter, &["metric"]),
            series: self_family(SERIES, "Distinct label sets per metric.", Gauge, &["metric"]),
            facade_labels: FACADE_REASONS.iter().map(|r| labels(&[r])).collect(),
            no_labels: labels(&[]),
        }
    }
}

/// Self-metric series gathered while visiting the user's families.
#[derive(Default)]
struct Gathered {
    adjusted: Vec<(Arc<[String]>, u64)>,
    overflow_records: Vec<(Arc<[String]>, u64)>,
    overflow_sets: Vec<(Arc<[String]>, u64)>,
    saturated: Vec<(Arc<[String]>, u64)>,
    series: Vec<(Arc<[String]>, f64)>,
}

/// What collection reads of one cell besides its value.
struct Extra {
    overflow_records: Option<u64>,
    bad: Option<BadInputCounts>,
    saturated: u64,
}

pub(super) fn visit<V: Visitor + ?Sized>(
    families: &[AnyFamily],
    tallies: &RegistryTallies,
    descs: &SelfDescriptors,
    v: &mut V,
) {
    let mut g = Gathered::default();
    for f in families {
        match f {
            AnyFamily::Counter(core) => family(core, &mut g, v, |v, d, l, c: &CounterCell| {
                let value = c.total();
                if let Some(v) = v {
                    v.counter(d, l, value);
                }
                Extra {
                    overflow_records: c
                        .overflow
                        .then(|| c.overflow_records.load(Ordering::Relaxed)),
                    bad: None,
                    saturated: c.saturated.load(Ordering::Relaxed),
                }
            }),
            AnyFamily::Gauge(core) => family(core, &mut g, v, |v, d, l, c: &GaugeCell| {
                if let Some(v) = v {
                    v.gauge(d, l, c.get());
                }
                Extra {
                    overflow_records: c
                        .overflow
                        .then(|| c.overflow_records.load(Ordering::Relaxed)),
                    bad: Some(BadInputCounts {
                        nan: c.rejected_nan.load(Ordering::Relaxed),
                        ..BadInputCounts::default()
                    }),
                    saturated: 0,
                }
            }),
            AnyFamily::Histogram(core) => family(core, &mut g, v, |v, d, l, c: &HistogramCell| {
                c.flush();
                if let Some(v) = v {
                    v.histogram(d, l, HistogramView::new(&c.hist));
                }
                let overflow_records = c.overflow.then(|| {
                    let mut n = 0u64;
                    c.hist.for_each_nonzero(|_, k| n = n.saturating_add(k));
                    n
                });
                let bad = c.hist.bad_input();
                Extra {
                    overflow_records,
                    saturated: bad.sum_saturated,
                    bad: Some(bad),
                }
            }),
        }
    }
    let counters = |v: &mut V, d: &Arc<Descriptor>, series: &[(Arc<[String]>, u64)]| {
        if v.family(d) {
            for (l, n) in series {
                v.counter(d, l, *n);
            }
        }
        v.family_end(d);
    };
    let one = |n: &AtomicU64| [(descs.no_labels.clone(), n.load(Ordering::Relaxed))];
    counters(v, &descs.adjusted, &g.adjusted);
    counters(v, &descs.overflow_records, &g.overflow_records);
    counters(v, &descs.overflow_sets, &g.overflow_sets);
    counters(v, &descs.label_errors, &one(&tallies.label_errors));
    let facade: Vec<_> = descs
        .facade_labels
        .iter()
        .zip(&tallies.facade)
        .map(|(l, n)| (l.clone(), n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n != 0)
        .collect();
    counters(v, &descs.facade, &facade);
    counters(v, &descs.truncated, &one(&tallies.truncated_label_values));
    counters(v, &descs.refused, &one(&tallies.families_refused));
    counters(v, &descs.saturated, &g.saturated);
    if v.family(&descs.series) {
        for (l, n) in &g.series {
            v.gauge(&descs.series, l, *n);
        }
    }
    v.family_end(&descs.series);
}

fn family<C: super::Cell, V: Visitor + ?Sized>(
    core: &FamilyCore<C>,
    g: &mut Gathered,
    v: &mut V,
    mut read: impl FnMut(Option<&mut V>, &Descriptor, &Arc<[String]>, &C) -> Extra,
) {
    let desc = &core.desc;
    let wanted = v.family(desc);
    let mut adjusted = [0u64; 6];
    let mut overflow_records = 0u64;
    let mut saturated = 0u64;
    for s in core.series() {
        let e = read(wanted.then_some(&mut *v), desc, &s.values, &s.cell);
        overflow_records += e.overflow_records.unwrap_or(0);
        saturated += e.saturated;
        if let Some(b) = e.bad {
            for (acc, x) in adjusted.iter_mut().zip([
                b.clamped,
                b.zero,
                b.nan,
                b.negative,
                b.not_a_duration,
                b.rounded,
            ]) {
                *acc += x;
            }
        }
    }
    v.family_end(desc);
    let name = desc.name();
    for (reason, n) in [
        "clamped",
        "zero",
        "nan",
        "negative",
        "not_a_duration",
        "rounded",
    ]
    .iter()
    .zip(adjusted)
    {
        if n != 0 {
            g.adjusted.push((labels(&[name, reason]), n));
        }
    }
    if overflow_records != 0 {
        g.overflow_records.push((labels(&[name]), overflow_records));
    }
    if saturated != 0 {
        g.saturated.push((labels(&[name]), saturated));
    }
    let sets = core.overflowed_sets.load(Ordering::Relaxed);
    if sets != 0 {
        g.overflow_sets.push((labels(&[name]), sets));
    }
    g.series.push((labels(&[name]), core.len() as f64));
}
