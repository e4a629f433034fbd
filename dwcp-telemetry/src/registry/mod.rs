//! The registry: families of series, bound handles, the cardinality cap, and collection.
//!
//! ```
//! use dwcp_telemetry::{Registry, Unit};
//! let reg = Registry::builder().version("3.0.0").cardinality_limit(2).build().unwrap();
//! let ops = reg
//!     .counter("dwcp_v3_component_operations_total", "Operations per component")
//!     .dynamic_labels(["component"])
//!     .register()
//!     .unwrap();
//! ops.with_labels_or_overflow(&["amst"]).inc();
//! ops.with_labels_or_overflow(&["hde"]).inc();
//! ops.with_labels_or_overflow(&["pba"]).inc(); // third label set: past the limit of 2
//! assert_eq!(ops.series_count(), 2);
//! assert_eq!(ops.overflow().get(), 1); // recorded, not lost
//! ```

mod collect;
mod descriptor;
mod family;
mod names;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use once_cell::sync::OnceCell;

pub use collect::{self_metrics, FamilySnapshot, SeriesSnapshot, Value};
pub use descriptor::{Descriptor, MetricKind, Unit, DEFAULT_BUCKETS, RECOVERY_BUCKETS};
pub(crate) use family::Cell;
pub use family::OVERFLOW_LABEL_VALUE;
use family::{FamilyCore, RegistryTallies};
pub use names::{
    is_valid_label_name, is_valid_metric_name, sanitize_label_name, sanitize_metric_name,
    VERSION_LABEL,
};

use crate::error::{ConfigError, LabelError, RegistrationError};
use crate::histogram::{AtomicHistogram, Layout, ONE_HOUR_NS};
use crate::metric::{Counter, CounterCell, Gauge, GaugeCell, Histogram, HistogramCell};
use crate::sync::{ArcCell, Mutex};

/// Default cap on distinct label sets per metric.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2_000;

impl Cell for CounterCell {
    type Handle = Counter;
    fn make(_: &Descriptor, overflow: bool) -> Self {
        CounterCell::new(overflow)
    }
    fn handle(cell: &Arc<Self>) -> Counter {
        Counter::from_cell(cell.clone())
    }
}

impl Cell for GaugeCell {
    type Handle = Gauge;
    fn make(_: &Descriptor, overflow: bool) -> Self {
        GaugeCell::new(overflow)
    }
    fn handle(cell: &Arc<Self>) -> Gauge {
        Gauge::from_cell(cell.clone())
    }
}

impl Cell for HistogramCell {
    type Handle = Histogram;
    fn make(desc: &Descriptor, overflow: bool) -> Self {
        HistogramCell {
            hist: AtomicHistogram::with_options(desc.layout(), desc.exact_sum()),
            overflow,
        }
    }
    fn handle(cell: &Arc<Self>) -> Histogram {
        Histogram::from_cell(cell.clone())
    }
}

#[derive(Debug, Clone)]
pub(crate) enum AnyFamily {
    Counter(Arc<FamilyCore<CounterCell>>),
    Gauge(Arc<FamilyCore<GaugeCell>>),
    Histogram(Arc<FamilyCore<HistogramCell>>),
}

impl AnyFamily {
    fn desc(&self) -> &Arc<Descriptor> {
        match self {
            AnyFamily::Counter(f) => &f.desc,
            AnyFamily::Gauge(f) => &f.desc,
            AnyFamily::Histogram(f) => &f.desc,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Families {
    by_name: HashMap<String, usize>,
    list: Vec<AnyFamily>,
}

#[derive(Debug)]
struct Inner {
    version: String,
    const_labels: Vec<(String, String)>,
    limit: usize,
    layout: Layout,
    exact_sum: bool,
    families: ArcCell<Families>,
    write: Mutex<()>,
    tallies: Arc<RegistryTallies>,
    started: Instant,
}

/// Where every metric lives. Cheap to clone (shared).
///
/// Make one with [`Registry::builder`], or use the process-wide [`global`] registry.
#[derive(Debug, Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(RegistryBuilder::default())
    }
}

/// Configures a [`Registry`]. Setters never fail; [`RegistryBuilder::build`] validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct RegistryBuilder {
    version: String,
    const_labels: Vec<(String, String)>,
    limit: usize,
    sigfig: u8,
    max_value: u64,
    exact_sum: bool,
    max_label_len: usize,
}

/// Default longest label value kept, in bytes.
pub const DEFAULT_MAX_LABEL_VALUE_LEN: usize = 1_024;

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            version: "unknown".to_owned(),
            const_labels: Vec::new(),
            limit: DEFAULT_CARDINALITY_LIMIT,
            sigfig: crate::histogram::DEFAULT_SIGFIG,
            max_value: ONE_HOUR_NS,
            exact_sum: false,
            max_label_len: DEFAULT_MAX_LABEL_VALUE_LEN,
        }
    }
}

impl RegistryBuilder {
    /// The `version` label value every metric of this registry carries (e.g. `"3.0.0"`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Another constant label on every metric (e.g. `instance`); validated at `build`.
    pub fn const_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.const_labels.push((name.into(), value.into()));
        self
    }

    /// The default cap on label sets per metric (default 2,000).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Default histogram precision, 1 to 5 significant digits (default 2).
    pub fn significant_digits(mut self, sigfig: u8) -> Self {
        self.sigfig = sigfig;
        self
    }

    /// Default highest trackable histogram value (default one hour in ns).
    pub fn max_value(mut self, max_value: u64) -> Self {
        self.max_value = max_value;
        self
    }

    /// Keep exact sums in histograms by default (one more atomic add per record).
    pub fn exact_sums(mut self, on: bool) -> Self {
        self.exact_sum = on;
        self
    }

    /// Longest label value kept, in bytes (default 1,024). Longer values are cut at a char
    /// boundary and counted in `dwcp_telemetry_label_values_truncated_total`, so a hostile
    /// value cannot make one series arbitrarily large.
    pub fn max_label_value_len(mut self, bytes: usize) -> Self {
        self.max_label_len = bytes;
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<Registry, RegistrationError> {
        if self.limit == 0 {
            return Err(ConfigError::CardinalityLimit.into());
        }
        Layout::new(self.sigfig, self.max_value)?;
        let names: Vec<String> = self.const_labels.iter().map(|(n, _)| n.clone()).collect();
        names::check_labels("<registry const labels>", &names, &[])?;
        Ok(Registry::new(self))
    }
}

impl Registry {
    fn new(b: RegistryBuilder) -> Self {
        let layout = Layout::new(b.sigfig, b.max_value).unwrap_or_default();
        Registry {
            inner: Arc::new(Inner {
                version: b.version,
                const_labels: b.const_labels,
                limit: b.limit.max(1),
                layout,
                exact_sum: b.exact_sum,
                families: ArcCell::new(Families::default()),
                write: Mutex::new(()),
                tallies: Arc::new(RegistryTallies::new(b.max_label_len)),
                started: Instant::now(),
            }),
        }
    }

    /// Start configuring a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The `version` label value.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// Labels every series carries: `version` first, then any `const_label`s.
    pub fn const_labels(&self) -> Vec<(&str, &str)> {
        std::iter::once((VERSION_LABEL, self.inner.version.as_str()))
            .chain(
                self.inner
                    .const_labels
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
            .collect()
    }

    /// When the registry was built (for uptime).
    pub fn started(&self) -> Instant {
        self.inner.started
    }

    /// Begin registering a counter. `_total` is added on export if the name lacks it.
    pub fn counter(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> MetricBuilder<'_, CounterKind> {
        MetricBuilder::new(self, name.into(), help.into(), Unit::None)
    }

    /// Begin registering a gauge.
    pub fn gauge(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> MetricBuilder<'_, GaugeKind> {
        MetricBuilder::new(self, name.into(), help.into(), Unit::None)
    }

    /// Begin registering a histogram. The unit defaults to seconds (values recorded as ns).
    pub fn histogram(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> MetricBuilder<'_, HistogramKind> {
        MetricBuilder::new(self, name.into(), help.into(), Unit::Seconds)
    }

    fn family(&self, name: &str) -> Option<AnyFamily> {
        self.inner
            .families
            .with(|f| f.by_name.get(name).map(|&i| f.list[i].clone()))
    }

    fn register_family(
        &self,
        desc: Descriptor,
        limit: usize,
        wrap: fn(Arc<Descriptor>, usize, Arc<RegistryTallies>) -> AnyFamily,
    ) -> Result<AnyFamily, RegistrationError> {
        let check = |existing: &AnyFamily| {
            let e = existing.desc();
            if e.kind() == desc.kind() && e.label_names() == desc.label_names() {
                Ok(existing.clone())
            } else {
                Err(RegistrationError::Conflict {
                    name: desc.name().to_owned(),
                    existing: e.kind().as_str(),
                    existing_labels: e.label_names().to_vec(),
                })
            }
        };
        if let Some(existing) = self.family(desc.name()) {
            return check(&existing);
        }
        let _guard = self.inner.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.inner.families.load_full();
        if let Some(&i) = current.by_name.get(desc.name()) {
            return check(&current.list[i]);
        }
        let name = desc.name().to_owned();
        let family = wrap(Arc::new(desc), limit, self.inner.tallies.clone());
        let mut next = Families::clone(&current);
        next.by_name.insert(name, next.list.len());
        next.list.push(family.clone());
        self.inner.families.store(Arc::new(next));
        Ok(family)
    }

    /// A snapshot of every family, in registration order, with the library's self-metrics
    /// last (`dwcp_telemetry_*`). Never blocks recording threads.
    pub fn collect(&self) -> Vec<FamilySnapshot> {
        let families = self.inner.families.load_full();
        collect::collect(&families.list, &self.inner.tallies)
    }

    /// Like [`Registry::collect`], for exporters that stream histograms instead of copying
    /// them: each family comes with the live handles of its histogram series, in the order of
    /// its `series`, and those series' [`Value::Histogram`] is an empty placeholder (read the
    /// data through [`Histogram::atomic`]). Counters, gauges and self-metrics are as in
    /// `collect`; self-metric families come with no handles.
    pub fn collect_deferred(&self) -> Vec<(FamilySnapshot, Vec<Histogram>)> {
        let families = self.inner.families.load_full();
        let mut handles = Vec::with_capacity(families.list.len());
        let snaps = collect::collect_impl(&families.list, &self.inner.tallies, Some(&mut handles));
        let mut handles = handles.into_iter();
        snaps
            .into_iter()
            .map(|f| (f, handles.next().unwrap_or_default()))
            .collect()
    }

    /// How many families are registered.
    pub fn family_count(&self) -> usize {
        self.inner.families.with(|f| f.list.len())
    }
}

/// Marker for [`MetricBuilder`]s of counters.
#[derive(Debug)]
pub enum CounterKind {}
/// Marker for [`MetricBuilder`]s of gauges.
#[derive(Debug)]
pub enum GaugeKind {}
/// Marker for [`MetricBuilder`]s of histograms.
#[derive(Debug)]
pub enum HistogramKind {}

/// Describes a metric family before registration. Setters never fail;
/// [`MetricBuilder::register`] validates names and options.
#[derive(Debug)]
#[must_use = "call .register() to create the family"]
pub struct MetricBuilder<'r, K> {
    registry: &'r Registry,
    name: String,
    help: String,
    unit: Unit,
    labels: Vec<String>,
    limit: Option<usize>,
    sigfig: Option<u8>,
    max_value: Option<u64>,
    exact_sum: Option<bool>,
    buckets: Option<Vec<f64>>,
    kind: PhantomData<K>,
}

impl<'r, K> MetricBuilder<'r, K> {
    fn new(registry: &'r Registry, name: String, help: String, unit: Unit) -> Self {
        MetricBuilder {
            registry,
            name,
            help,
            unit,
            labels: Vec::new(),
            limit: None,
            sigfig: None,
            max_value: None,
            exact_sum: None,
            buckets: None,
            kind: PhantomData,
        }
    }

    /// Label names known only at run time (values are given per series, in this order).
    /// `version` is implicit.
    pub fn dynamic_labels<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labels = names.into_iter().map(Into::into).collect();
        self
    }

    /// The unit of the values.
    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = unit;
        self
    }

    /// Cap on label sets for this metric (overrides the registry default).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    fn descriptor(
        &self,
        kind: MetricKind,
        reserved: &[&str],
    ) -> Result<(Descriptor, usize), RegistrationError> {
        names::check_metric(&self.name)?;
        names::check_labels(&self.name, &self.labels, reserved)?;
        let limit = self.limit.unwrap_or(self.registry.inner.limit);
        if limit == 0 {
            return Err(ConfigError::CardinalityLimit.into());
        }
        let layout = match (self.sigfig, self.max_value) {
            (None, None) => self.registry.inner.layout,
            (s, m) => Layout::new(
                s.unwrap_or(self.registry.inner.layout.sigfig()),
                m.unwrap_or(self.registry.inner.layout.max_value()),
            )?,
        };
        if let Some(b) = &self.buckets {
            if b.is_empty()
                || b.iter().any(|x| !x.is_finite())
                || b.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(ConfigError::Buckets.into());
            }
        }
        let desc = Descriptor::new(
            self.name.clone(),
            self.help.clone(),
            kind,
            self.unit,
            self.labels.clone(),
            self.buckets.clone(),
            layout,
            self.exact_sum.unwrap_or(self.registry.inner.exact_sum),
        );
        Ok((desc, limit))
    }
}

impl MetricBuilder<'_, CounterKind> {
    /// Validate and register (or fetch the identical existing family).
    pub fn register(self) -> Result<CounterFamily, RegistrationError> {
        let (desc, limit) = self.descriptor(MetricKind::Counter, &[])?;
        match self.registry.register_family(desc, limit, |d, l, t| {
            AnyFamily::Counter(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Counter(core) => Ok(CounterFamily { core }),
            _ => Err(RegistrationError::MetricName(self.name)),
        }
    }
}

impl MetricBuilder<'_, GaugeKind> {
    /// Validate and register (or fetch the identical existing family).
    pub fn register(self) -> Result<GaugeFamily, RegistrationError> {
        let (desc, limit) = self.descriptor(MetricKind::Gauge, &[])?;
        match self.registry.register_family(desc, limit, |d, l, t| {
            AnyFamily::Gauge(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Gauge(core) => Ok(GaugeFamily { core }),
            _ => Err(RegistrationError::MetricName(self.name)),
        }
    }
}

impl MetricBuilder<'_, HistogramKind> {
    /// Precision in significant digits, 1 to 5 (default: the registry's, normally 2).
    pub fn significant_digits(mut self, sigfig: u8) -> Self {
        self.sigfig = Some(sigfig);
        self
    }

    /// Highest trackable value (default: the registry's, normally one hour in ns).
    pub fn max_value(mut self, max_value: u64) -> Self {
        self.max_value = Some(max_value);
        self
    }

    /// Keep an exact sum (one more relaxed add per record) instead of estimating it.
    pub fn exact_sum(mut self, on: bool) -> Self {
        self.exact_sum = Some(on);
        self
    }

    /// Export-time `le` boundaries in the exported unit (seconds for durations). They must be
    /// finite and strictly ascending. Storage is unaffected, so they can be made denser later.
    pub fn buckets(mut self, bounds: impl Into<Vec<f64>>) -> Self {
        self.buckets = Some(bounds.into());
        self
    }

    /// Validate and register (or fetch the identical existing family).
    pub fn register(self) -> Result<HistogramFamily, RegistrationError> {
        let (desc, limit) = self.descriptor(MetricKind::Histogram, &["le", "quantile"])?;
        match self.registry.register_family(desc, limit, |d, l, t| {
            AnyFamily::Histogram(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Histogram(core) => Ok(HistogramFamily { core }),
            _ => Err(RegistrationError::MetricName(self.name)),
        }
    }
}

macro_rules! family_handle {
    ($(#[$doc:meta])* $family:ident, $cell:ty, $handle:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $family {
            core: Arc<FamilyCore<$cell>>,
        }

        impl $family {
            /// The handle for these label values (in label-name order). Create it once and
            /// keep it: recording through it does no lookup. A wrong number of values, or a
            /// new label set past the cardinality limit, gives the overflow series (counted
            /// in the self-metrics) instead of failing.
            pub fn with_labels_or_overflow(&self, values: &[&str]) -> $handle {
                self.core.get(values)
            }

            /// Like [`Self::with_labels`], but reports arity and cardinality problems.
            pub fn try_with_labels(&self, values: &[&str]) -> Result<$handle, LabelError> {
                self.core.try_get(values)
            }

            /// The handle of a family without labels (same as `with_labels_or_overflow(&[])`).
            pub fn handle(&self) -> $handle {
                self.core.get(&[])
            }

            /// The series that label sets past the cardinality limit share.
            pub fn overflow(&self) -> $handle {
                <$cell as Cell>::handle(&self.core.overflow_series().cell)
            }

            /// Distinct label sets, not counting the overflow series.
            pub fn series_count(&self) -> usize {
                self.core.len()
            }

            /// The cardinality limit of this family.
            pub fn cardinality_limit(&self) -> usize {
                self.core.limit()
            }

            /// Name, help, labels and unit.
            pub fn descriptor(&self) -> &Descriptor {
                &self.core.desc
            }
        }
    };
}

family_handle!(
    /// A registered counter family; hands out [`Counter`] handles per label set.
    CounterFamily, CounterCell, Counter
);
family_handle!(
    /// A registered gauge family; hands out [`Gauge`] handles per label set.
    GaugeFamily, GaugeCell, Gauge
);
family_handle!(
    /// A registered histogram family; hands out [`Histogram`] handles per label set.
    HistogramFamily, HistogramCell, Histogram
);

static GLOBAL: OnceCell<Registry> = OnceCell::new();

/// The process-wide registry. Built with defaults on first use unless [`set_global`] ran first.
pub fn global() -> &'static Registry {
    GLOBAL.get_or_init(Registry::default)
}

/// Install `registry` as the process-wide registry. Fails (returning it) if [`global`] was
/// already used or set.
pub fn set_global(registry: Registry) -> Result<(), Registry> {
    GLOBAL.set(registry)
}

impl Registry {
    pub(crate) fn tallies(&self) -> &RegistryTallies {
        &self.inner.tallies
    }

    /// A counter of the library's own (a `dwcp_telemetry_*` self-metric, which user
    /// registrations may not use), bound to one value of its one label. Registering the same
    /// name again returns the same family. Never fails: a refused registration (it cannot
    /// happen for the library's constant names) gives a no-op counter.
    #[allow(dead_code)] // used by the HTTP server (feature `http`)
    pub(crate) fn self_counter(
        &self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        value: &str,
    ) -> Counter {
        match self.counter(name, help).dynamic_labels([label]).register() {
            Ok(f) => f.with_labels_or_overflow(&[value]),
            Err(_) => Counter::noop(),
        }
    }

    /// The descriptor of a registered metric, if any.
    pub fn descriptor_of(&self, name: &str) -> Option<Arc<Descriptor>> {
        self.family(name).map(|f| f.desc().clone())
    }

    /// The counter family registered under `name`, if it is a counter.
    pub fn existing_counter(&self, name: &str) -> Option<CounterFamily> {
        match self.family(name)? {
            AnyFamily::Counter(core) => Some(CounterFamily { core }),
            _ => None,
        }
    }

    /// The gauge family registered under `name`, if it is a gauge.
    pub fn existing_gauge(&self, name: &str) -> Option<GaugeFamily> {
        match self.family(name)? {
            AnyFamily::Gauge(core) => Some(GaugeFamily { core }),
            _ => None,
        }
    }

    /// The histogram family registered under `name`, if it is a histogram.
    pub fn existing_histogram(&self, name: &str) -> Option<HistogramFamily> {
        match self.family(name)? {
            AnyFamily::Histogram(core) => Some(HistogramFamily { core }),
            _ => None,
        }
    }
}
