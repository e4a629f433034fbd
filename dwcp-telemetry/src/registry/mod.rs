//! The registry: families of series, bound handles, the cardinality cap, policies and
//! collection.
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
//! assert!(ops.try_with_labels(&["itp"]).is_err()); // the fallible form says why
//! ```

mod collect;
mod descriptor;
mod family;
mod names;
mod policy;

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use collect::{
    self_metrics, FamilySnapshot, HistogramView, RegionCounts, SeriesSnapshot, Value, Visitor,
};
pub use descriptor::{
    Descriptor, MetricKind, Unit, BYTES_BUCKETS, COUNT_BUCKETS, DEFAULT_BUCKETS, RATIO_BUCKETS,
    RECOVERY_BUCKETS,
};
pub(crate) use family::Cell;
#[cfg(feature = "metrics-facade")]
pub(crate) use family::FACADE_REASONS;
pub use family::OVERFLOW_LABEL_VALUE;
use family::{FamilyCore, RegistryTallies};
pub use names::{
    is_valid_label_name, is_valid_metric_name, sanitize_label_name, sanitize_metric_name,
    RESERVED_PREFIX, VERSION_LABEL,
};
pub use policy::{MetricPolicy, NameMatch};

use crate::error::{ConfigError, LabelError, RegistrationError};
use crate::histogram::{AtomicHistogram, Layout};
use crate::labels::{DynamicLabels, LabelSet};
use crate::metric::{Counter, CounterCell, Gauge, GaugeCell, Histogram, HistogramCell};
use crate::sync::RwLock;

/// Default cap on distinct label sets per metric.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 2_000;
/// Default cap on metric families per registry.
pub const DEFAULT_MAX_FAMILIES: usize = 10_000;
/// Default cap on the memory one fully populated histogram series may need (8 MiB).
pub const DEFAULT_MAX_SERIES_BYTES: usize = 8 << 20;
/// Default longest label value kept, in bytes.
pub const DEFAULT_MAX_LABEL_VALUE_LEN: usize = 1_024;

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
        HistogramCell::new(
            AtomicHistogram::with_options(desc.layout(), desc.exact_sum()),
            overflow,
            desc.storage_scale(),
        )
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
    fn limit(&self) -> usize {
        match self {
            AnyFamily::Counter(f) => f.limit(),
            AnyFamily::Gauge(f) => f.limit(),
            AnyFamily::Histogram(f) => f.limit(),
        }
    }

    fn desc(&self) -> &Arc<Descriptor> {
        match self {
            AnyFamily::Counter(f) => &f.desc,
            AnyFamily::Gauge(f) => &f.desc,
            AnyFamily::Histogram(f) => &f.desc,
        }
    }
}

#[derive(Debug, Default)]
struct Families {
    by_name: HashMap<String, usize>,
    /// Exposition names (`foo_total`, `foo_bucket`, …) → the family that writes them.
    exported: HashMap<String, usize>,
    list: Vec<AnyFamily>,
}

#[derive(Debug)]
struct Inner {
    version: String,
    const_labels: Vec<(String, String)>,
    limit: usize,
    sigfig: u8,
    max_value: Option<u64>,
    exact_sum: bool,
    max_families: usize,
    max_series_bytes: usize,
    policies: Vec<(NameMatch, MetricPolicy)>,
    families: RwLock<Families>,
    tallies: Arc<RegistryTallies>,
    self_descs: OnceLock<collect::SelfDescriptors>,
    started: Instant,
    /// Callbacks run at the start of every [`Registry::visit`] (scrape-time refresh).
    collect_hooks: std::sync::RwLock<Vec<CollectHook>>,
}

/// A callback run at the start of every collection (see [`Registry::on_collect`]).
#[derive(Clone)]
struct CollectHook(Arc<dyn Fn() + Send + Sync>);

impl fmt::Debug for CollectHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CollectHook")
    }
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

/// A registry's identity ([`Registry::id`]): compares by address, weakly held.
#[derive(Debug, Clone)]
pub(crate) struct RegistryId(std::sync::Weak<Inner>);

impl RegistryId {
    /// Whether this is `registry`'s identity.
    pub(crate) fn is(&self, registry: &Registry) -> bool {
        std::ptr::eq(self.0.as_ptr(), Arc::as_ptr(&registry.inner))
    }

    /// Whether both are the same registry's.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn same(&self, other: &RegistryId) -> bool {
        std::sync::Weak::ptr_eq(&self.0, &other.0)
    }

    /// Whether the registry still exists.
    pub(crate) fn alive(&self) -> bool {
        self.0.strong_count() > 0
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
    max_value: Option<u64>,
    exact_sum: bool,
    max_label_len: usize,
    max_families: usize,
    max_series_bytes: usize,
    policies: Vec<(NameMatch, MetricPolicy)>,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            version: "unknown".to_owned(),
            const_labels: Vec::new(),
            limit: DEFAULT_CARDINALITY_LIMIT,
            sigfig: crate::histogram::DEFAULT_SIGFIG,
            max_value: None,
            exact_sum: false,
            max_label_len: DEFAULT_MAX_LABEL_VALUE_LEN,
            max_families: DEFAULT_MAX_FAMILIES,
            max_series_bytes: DEFAULT_MAX_SERIES_BYTES,
            policies: Vec::new(),
        }
    }
}

impl RegistryBuilder {
    /// The `version` label value every metric of this registry carries (e.g. `"3.0.0"`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Another constant label on every metric (e.g. `instance`); validated at `build`. A
    /// metric that declares a label of the same name is refused at registration
    /// ([`RegistrationError::ConstLabelClash`]).
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

    /// Highest trackable stored histogram value for every histogram without its own
    /// (default: one hour in ns for durations, `u64::MAX` otherwise; see
    /// [`Unit::default_max_value`]).
    pub fn max_value(mut self, max_value: u64) -> Self {
        self.max_value = Some(max_value);
        self
    }

    /// Keep exact sums in histograms by default (one more atomic add per record).
    pub fn exact_sums(mut self, on: bool) -> Self {
        self.exact_sum = on;
        self
    }

    /// Longest label value kept, in bytes (default 1,024, at least 32). The fallible lookups
    /// (`try_get`, `try_with_labels`) refuse a longer value with
    /// [`LabelError::ValueTooLong`]; the infallible ones shorten it to the maximum, ending in
    /// `~` and 16 hex digits of a hash of the whole value (so two long values that share a
    /// prefix stay two series), and count it in `dwcp_telemetry_label_values_truncated_total`.
    pub fn max_label_value_len(mut self, bytes: usize) -> Self {
        self.max_label_len = bytes;
        self
    }

    /// The most metric families this registry holds (default 10,000). Past it, registration
    /// is [`RegistrationError::TooManyFamilies`], and facade metrics record nowhere (counted
    /// in `dwcp_telemetry_families_refused_total`).
    pub fn max_families(mut self, n: usize) -> Self {
        self.max_families = n;
        self
    }

    /// The most memory one fully populated histogram series may need (default 8 MiB).
    /// A histogram whose layout needs more is refused at registration with
    /// [`ConfigError::SeriesMemory`], which says how much it asked for.
    pub fn max_series_bytes(mut self, bytes: usize) -> Self {
        self.max_series_bytes = bytes;
        self
    }

    /// Apply `policy` to every metric whose name `matcher` accepts, for each setting the
    /// metric's own builder leaves unset. Exact matchers win over prefix and suffix ones;
    /// among those, the first added wins.
    ///
    /// ```
    /// use dwcp_telemetry::{MetricPolicy, NameMatch, Registry, Unit};
    /// let registry = Registry::builder()
    ///     .policy(NameMatch::suffix("_payload"), MetricPolicy::new().unit(Unit::Bytes))
    ///     .policy(
    ///         NameMatch::exact("dwcp_queue_wait_seconds"),
    ///         MetricPolicy::new().buckets([0.001, 0.01, 0.1, 1.0]),
    ///     )
    ///     .build()?;
    /// let h = registry.histogram("dwcp_message_payload", "Message size").register()?;
    /// assert_eq!(h.descriptor().unit(), Unit::Bytes);
    /// let q = registry.histogram("dwcp_queue_wait_seconds", "Queue wait").register()?;
    /// assert_eq!(q.descriptor().buckets(), [0.001, 0.01, 0.1, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(mut self, matcher: NameMatch, policy: MetricPolicy) -> Self {
        self.policies.push((matcher, policy));
        self
    }

    /// Install the DWCP seeds' per-metric defaults as policies: the recovery buckets
    /// ([`RECOVERY_BUCKETS`], 0.1 … 30 s) for `dwcp_recovery_duration_seconds` and every
    /// metric ending in `_recovery_duration_seconds`.
    pub fn dwcp_defaults(self) -> Self {
        let recovery = MetricPolicy::new().buckets(RECOVERY_BUCKETS);
        self.policy(
            NameMatch::exact("dwcp_recovery_duration_seconds"),
            recovery.clone(),
        )
        .policy(NameMatch::suffix("_recovery_duration_seconds"), recovery)
    }

    /// Validate and build.
    pub fn build(self) -> Result<Registry, RegistrationError> {
        if self.limit == 0 {
            return Err(ConfigError::CardinalityLimit.into());
        }
        if self.max_label_len < 32 {
            return Err(ConfigError::LabelValueLen(self.max_label_len).into());
        }
        if self.max_families == 0 {
            return Err(ConfigError::MaxFamilies.into());
        }
        Layout::new(self.sigfig, self.max_value.unwrap_or(u64::MAX))?;
        let names: Vec<String> = self.const_labels.iter().map(|(n, _)| n.clone()).collect();
        // `le` and `quantile` are written by exporters; a constant label of that name would
        // make every histogram invalid.
        names::check_labels("<registry const labels>", &names, &["le", "quantile"])?;
        for (_, p) in &self.policies {
            p.validate()?;
        }
        Ok(Registry::new(self))
    }
}

impl Registry {
    fn new(b: RegistryBuilder) -> Self {
        Registry {
            inner: Arc::new(Inner {
                version: b.version,
                const_labels: b.const_labels,
                limit: b.limit.max(1),
                sigfig: b.sigfig,
                max_value: b.max_value,
                exact_sum: b.exact_sum,
                max_families: b.max_families.max(1),
                max_series_bytes: b.max_series_bytes,
                policies: b.policies,
                families: RwLock::new(Families::default()),
                tallies: Arc::new(RegistryTallies::new(b.max_label_len.max(32))),
                self_descs: OnceLock::new(),
                started: Instant::now(),
                collect_hooks: std::sync::RwLock::new(Vec::new()),
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
        MetricBuilder::new(self, name.into(), help.into())
    }

    /// Begin registering a gauge.
    pub fn gauge(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> MetricBuilder<'_, GaugeKind> {
        MetricBuilder::new(self, name.into(), help.into())
    }

    /// Begin registering a histogram. Its unit comes from, in order: `.unit(..)`, a registry
    /// policy, the name ([`Unit::from_name`]: `_seconds` stores ns and exports seconds;
    /// `_bytes`, `_ratio`; anything else stores and exports values as given).
    pub fn histogram(
        &self,
        name: impl Into<String>,
        help: impl Into<String>,
    ) -> MetricBuilder<'_, HistogramKind> {
        MetricBuilder::new(self, name.into(), help.into())
    }

    fn read_families(&self) -> impl std::ops::Deref<Target = Families> + '_ {
        self.inner
            .families
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn family(&self, name: &str) -> Option<AnyFamily> {
        let f = self.read_families();
        f.by_name.get(name).map(|&i| f.list[i].clone())
    }

    fn register_family(
        &self,
        desc: Descriptor,
        limit: usize,
        wrap: fn(Arc<Descriptor>, usize, Arc<RegistryTallies>) -> AnyFamily,
    ) -> Result<AnyFamily, RegistrationError> {
        let check = |existing: &AnyFamily| match existing.desc().same_definition(&desc) {
            Ok(()) if existing.limit() != limit => Err(RegistrationError::Conflict {
                name: desc.name().to_owned(),
                differs: "cardinality limit",
                existing_kind: existing.desc().kind().as_str(),
            }),
            Ok(()) => {
                if !desc.help_is_default() {
                    existing.desc().supply_help(&desc.help());
                }
                Ok(existing.clone())
            }
            Err(differs) => Err(RegistrationError::Conflict {
                name: desc.name().to_owned(),
                differs,
                existing_kind: existing.desc().kind().as_str(),
            }),
        };
        if let Some(existing) = self.family(desc.name()) {
            return check(&existing);
        }
        let mut families = self
            .inner
            .families
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(&i) = families.by_name.get(desc.name()) {
            return check(&families.list[i]);
        }
        if families.list.len() >= self.inner.max_families {
            self.inner
                .tallies
                .families_refused
                .fetch_add(1, crate::sync::Ordering::Relaxed);
            return Err(RegistrationError::TooManyFamilies {
                limit: self.inner.max_families,
            });
        }
        let exported = desc.exported_names();
        for e in &exported {
            if let Some(&i) = families.exported.get(e) {
                return Err(RegistrationError::NameCollision {
                    name: desc.name().to_owned(),
                    exported: e.clone(),
                    existing: families.list[i].desc().name().to_owned(),
                });
            }
        }
        let name = desc.name().to_owned();
        let family = wrap(Arc::new(desc), limit, self.inner.tallies.clone());
        let index = families.list.len();
        for e in exported {
            families.exported.insert(e, index);
        }
        families.by_name.insert(name, index);
        families.list.push(family.clone());
        Ok(family)
    }

    fn family_list(&self) -> Vec<AnyFamily> {
        self.read_families().list.clone()
    }

    /// Walk every family and series, the library's self-metrics (`dwcp_telemetry_*`) last,
    /// handing real values to `visitor`: this is the one collection path every exporter uses.
    /// Reading values only loads atomics, so recording through bound handles is never
    /// blocked; a thread *creating* a series may wait for the moment it takes to copy that
    /// family's list of series.
    ///
    /// Callbacks registered with [`Registry::on_collect`] run first, in registration order.
    pub fn visit<V: Visitor + ?Sized>(&self, visitor: &mut V) {
        self.run_collect_hooks();
        let families = self.family_list();
        let descs = self
            .inner
            .self_descs
            .get_or_init(collect::SelfDescriptors::new);
        collect::visit(&families, &self.inner.tallies, descs, visitor);
    }

    /// Registers `hook` to run at the start of every collection ([`Registry::visit`], hence
    /// [`Registry::collect`] and every exporter), before any value is read: the place to
    /// refresh gauges that mirror outside state (e.g. process memory read from `/proc`), so
    /// a scrape sees values as of the scrape.
    ///
    /// Hooks run on the collecting thread, in registration order (two overlapping
    /// collections run them concurrently, so a hook must be `Sync`); a hook should be quick
    /// and must not call [`Registry::visit`] on the same registry (it would run the hooks
    /// again, recursively). A panicking hook is
    /// caught and skipped, so one bad hook cannot break a scrape. A hook that captures a
    /// clone of this registry keeps the registry alive (a reference cycle): capture the
    /// handles it updates instead. There is no way to remove a hook.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use dwcp_telemetry::Registry;
    ///
    /// let reg = Registry::builder().build()?;
    /// let gauge = reg.gauge("dwcp_scrapes_seen", "Collections so far").register()?.handle();
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let s = seen.clone();
    /// reg.on_collect(move || {
    ///     gauge.set((s.fetch_add(1, Ordering::Relaxed) + 1) as f64);
    /// });
    /// reg.collect();
    /// let families = reg.collect();
    /// assert_eq!(seen.load(Ordering::Relaxed), 2);
    /// assert!(matches!(families[0].series[0].value, dwcp_telemetry::Value::Gauge(v) if v == 2.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_collect(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.inner
            .collect_hooks
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(CollectHook(Arc::new(hook)));
    }

    fn run_collect_hooks(&self) {
        // Copy the list so a hook may register another hook without deadlocking.
        let hooks = self
            .inner
            .collect_hooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for hook in hooks {
            let f = hook.0;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f()));
        }
    }

    /// A snapshot of every family, in registration order, with the library's self-metrics
    /// last (`dwcp_telemetry_*`). Built on [`Registry::visit`].
    pub fn collect(&self) -> Vec<FamilySnapshot> {
        let mut c = collect::Collector::default();
        self.visit(&mut c);
        c.finish()
    }

    /// How many families are registered.
    pub fn family_count(&self) -> usize {
        self.read_families().list.len()
    }

    /// This registry's identity, for process-wide tables keyed by registry (the named
    /// circuit breakers). Holds a weak reference: it keeps no metric alive, its address
    /// cannot be reused while it exists, and it tells when the registry is gone.
    pub(crate) fn id(&self) -> RegistryId {
        RegistryId(Arc::downgrade(&self.inner))
    }

    #[cfg(feature = "metrics-facade")]
    pub(crate) fn tallies(&self) -> &RegistryTallies {
        &self.inner.tallies
    }

    /// The descriptor of a registered metric, if any.
    pub fn descriptor_of(&self, name: &str) -> Option<Arc<Descriptor>> {
        self.family(name).map(|f| f.desc().clone())
    }

    /// The counter family registered under `name`, if it is a counter (typed or not; this
    /// view takes label values as strings).
    pub fn existing_counter(&self, name: &str) -> Option<CounterFamily> {
        match self.family(name)? {
            AnyFamily::Counter(core) => Some(CounterFamily::from_core(core)),
            _ => None,
        }
    }

    /// The gauge family registered under `name`, if it is a gauge.
    pub fn existing_gauge(&self, name: &str) -> Option<GaugeFamily> {
        match self.family(name)? {
            AnyFamily::Gauge(core) => Some(GaugeFamily::from_core(core)),
            _ => None,
        }
    }

    /// The histogram family registered under `name`, if it is a histogram.
    pub fn existing_histogram(&self, name: &str) -> Option<HistogramFamily> {
        match self.family(name)? {
            AnyFamily::Histogram(core) => Some(HistogramFamily::from_core(core)),
            _ => None,
        }
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
        match self
            .counter(name, help)
            .dynamic_labels([label])
            .library_owned()
            .register()
        {
            Ok(f) => f.with_labels_or_overflow(&[value]),
            Err(_) => Counter::noop(),
        }
    }

    /// A gauge of the library's own without labels (see [`Registry::self_counter`]).
    #[allow(dead_code)] // used by the HTTP server (feature `http`)
    pub(crate) fn self_gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        match self.gauge(name, help).library_owned().register() {
            Ok(f) => f.handle(),
            Err(_) => Gauge::noop(),
        }
    }

    /// The first policy matching `name`: exact matchers first, then the others in order.
    fn policy_for(&self, name: &str) -> Option<&MetricPolicy> {
        let p = &self.inner.policies;
        p.iter()
            .find(|(m, _)| m.is_exact() && m.matches(name))
            .or_else(|| p.iter().find(|(m, _)| !m.is_exact() && m.matches(name)))
            .map(|(_, p)| p)
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
/// `register()` validates names and options.
///
/// `L` is the label type: [`DynamicLabels`] (the default: label names given at run time
/// with [`MetricBuilder::dynamic_labels`], or none) or a [`LabelSet`] chosen with
/// [`MetricBuilder::labels`].
#[must_use = "call .register() to create the family"]
pub struct MetricBuilder<'r, K, L = DynamicLabels> {
    registry: &'r Registry,
    name: String,
    help: String,
    labels: Vec<String>,
    /// What this builder sets; unset fields come from a registry policy, then defaults.
    settings: MetricPolicy,
    internal: bool,
    storage_scale: Option<f64>,
    kind: KindAndLabels<K, L>,
}

/// The builder's metric kind and label type, as a zero-sized marker.
type KindAndLabels<K, L> = PhantomData<(K, fn(&L))>;

impl<K, L> fmt::Debug for MetricBuilder<'_, K, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricBuilder")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<'r, K> MetricBuilder<'r, K, DynamicLabels> {
    fn new(registry: &'r Registry, name: String, help: String) -> Self {
        MetricBuilder {
            registry,
            name,
            help,
            labels: Vec::new(),
            settings: MetricPolicy::new(),
            internal: false,
            storage_scale: None,
            kind: PhantomData,
        }
    }

    /// Label names known only at run time (values are given per series, in this order, to
    /// `try_with_labels` / `with_labels_or_overflow`). `version` is implicit. Prefer a
    /// typed [`LabelSet`] ([`MetricBuilder::labels`]) when the names are known at compile
    /// time.
    pub fn dynamic_labels<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.labels = names.into_iter().map(Into::into).collect();
        self
    }

    /// Type the family's labels: its handles are then looked up with `get(&L)`, and a wrong
    /// label name, a missing label or a wrong value type does not compile.
    pub fn labels<L: LabelSet>(self) -> MetricBuilder<'r, K, L> {
        MetricBuilder {
            registry: self.registry,
            name: self.name,
            help: self.help,
            labels: L::NAMES.iter().map(|s| (*s).to_owned()).collect(),
            settings: self.settings,
            storage_scale: self.storage_scale,
            internal: self.internal,
            kind: PhantomData,
        }
    }
}

impl<K, L> MetricBuilder<'_, K, L> {
    /// The unit of the values (for histograms, also how they are stored: see [`Unit`]).
    pub fn unit(mut self, unit: Unit) -> Self {
        self.settings = self.settings.unit(unit);
        self
    }

    /// Store values at `scale` integers per exported unit (the facade's unitless histograms).
    #[cfg(feature = "metrics-facade")]
    pub(crate) fn storage_scale(mut self, scale: Option<f64>) -> Self {
        self.storage_scale = scale;
        self
    }

    /// Marks a self-metric of the library's own, which may use the reserved
    /// `dwcp_telemetry_` prefix.
    pub(crate) fn library_owned(mut self) -> Self {
        self.internal = true;
        self
    }

    /// Cap on label sets for this metric (overrides the registry default and policies).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.settings = self.settings.cardinality_limit(limit);
        self
    }

    fn descriptor(
        &self,
        kind: MetricKind,
        reserved: &[&str],
    ) -> Result<(Descriptor, usize), RegistrationError> {
        let inner = &self.registry.inner;
        names::check_metric(&self.name, self.internal)?;
        names::check_labels(&self.name, &self.labels, reserved)?;
        if let Some(clash) = self
            .labels
            .iter()
            .find(|l| inner.const_labels.iter().any(|(c, _)| c == *l))
        {
            return Err(RegistrationError::ConstLabelClash {
                metric: self.name.clone(),
                label: clash.clone(),
            });
        }
        let set = self.settings.or(self.registry.policy_for(&self.name));
        let limit = set.cardinality_limit.unwrap_or(inner.limit);
        if limit == 0 {
            return Err(ConfigError::CardinalityLimit.into());
        }
        let unit = set.unit.unwrap_or(match kind {
            MetricKind::Histogram => Unit::from_name(&self.name),
            _ => Unit::None,
        });
        let sigfig = set.sigfig.unwrap_or(inner.sigfig);
        let max_value = set
            .max_value
            .or(inner.max_value)
            .unwrap_or_else(|| unit.default_max_value());
        let layout = Layout::new(sigfig, max_value)?;
        if kind == MetricKind::Histogram {
            let asked = layout.len().saturating_mul(8);
            if asked > inner.max_series_bytes {
                return Err(ConfigError::SeriesMemory {
                    sigfig,
                    max_value,
                    asked,
                    limit: inner.max_series_bytes,
                }
                .into());
            }
        }
        let buckets = match set.buckets {
            Some(b) => {
                policy::check_buckets(&b)?;
                b
            }
            None => unit.default_buckets().to_vec(),
        };
        let exact_sum = set.exact_sum.unwrap_or(inner.exact_sum);
        // An empty HELP becomes the name (every family gets a HELP line: promtool lints its
        // absence) and is marked as a default, which a later definition may supply.
        let desc = Descriptor::new(
            self.name.clone(),
            self.help.clone(),
            kind,
            unit,
            self.labels.clone(),
            buckets,
            layout,
            exact_sum,
        )
        .with_error_denominators(set.error_ratio_of)
        .with_native_histogram(set.native_histogram)
        .with_storage_scale(self.storage_scale);
        Ok((desc, limit))
    }
}

impl<K, L> MetricBuilder<'_, K, L> {
    fn registered(
        &self,
        kind: MetricKind,
        reserved: &[&str],
        wrap: fn(Arc<Descriptor>, usize, Arc<RegistryTallies>) -> AnyFamily,
    ) -> Result<AnyFamily, RegistrationError> {
        let (desc, limit) = self.descriptor(kind, reserved)?;
        self.registry.register_family(desc, limit, wrap)
    }
}

impl<L> MetricBuilder<'_, CounterKind, L> {
    /// Validate and register (or fetch the identical existing family; another definition
    /// under the same name is [`RegistrationError::Conflict`]).
    pub fn register(self) -> Result<CounterFamily<L>, RegistrationError> {
        match self.registered(MetricKind::Counter, &["le", "quantile"], |d, l, t| {
            AnyFamily::Counter(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Counter(core) => Ok(CounterFamily::from_core(core)),
            other => Err(kind_conflict(&self.name, &other)),
        }
    }
}

impl<L> MetricBuilder<'_, GaugeKind, L> {
    /// Validate and register (or fetch the identical existing family; another definition
    /// under the same name is [`RegistrationError::Conflict`]).
    pub fn register(self) -> Result<GaugeFamily<L>, RegistrationError> {
        match self.registered(MetricKind::Gauge, &["le", "quantile"], |d, l, t| {
            AnyFamily::Gauge(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Gauge(core) => Ok(GaugeFamily::from_core(core)),
            other => Err(kind_conflict(&self.name, &other)),
        }
    }
}

fn kind_conflict(name: &str, existing: &AnyFamily) -> RegistrationError {
    RegistrationError::Conflict {
        name: name.to_owned(),
        differs: "kind",
        existing_kind: existing.desc().kind().as_str(),
    }
}

impl<L> MetricBuilder<'_, HistogramKind, L> {
    /// Precision in significant digits, 1 to 5 (default: the registry's, normally 2).
    pub fn significant_digits(mut self, sigfig: u8) -> Self {
        self.settings = self.settings.significant_digits(sigfig);
        self
    }

    /// Highest trackable stored value (default: [`Unit::default_max_value`]).
    pub fn max_value(mut self, max_value: u64) -> Self {
        self.settings = self.settings.max_value(max_value);
        self
    }

    /// Keep an exact sum (one more relaxed add per record) instead of estimating it.
    pub fn exact_sum(mut self, on: bool) -> Self {
        self.settings = self.settings.exact_sum(on);
        self
    }

    /// Export-time `le` boundaries in the exported unit (seconds for durations). They must be
    /// finite, non-negative and strictly ascending. Storage is unaffected, so they can be
    /// made denser later.
    pub fn buckets(mut self, bounds: impl Into<Vec<f64>>) -> Self {
        self.settings = self.settings.buckets(bounds);
        self
    }

    /// Validate and register (or fetch the identical existing family; another definition
    /// under the same name is [`RegistrationError::Conflict`]).
    pub fn register(self) -> Result<HistogramFamily<L>, RegistrationError> {
        match self.registered(MetricKind::Histogram, &["le", "quantile"], |d, l, t| {
            AnyFamily::Histogram(Arc::new(FamilyCore::new(d, l, t)))
        })? {
            AnyFamily::Histogram(core) => Ok(HistogramFamily::from_core(core)),
            other => Err(kind_conflict(&self.name, &other)),
        }
    }
}

macro_rules! family_handle {
    ($(#[$doc:meta])* $family:ident, $cell:ty, $handle:ty) => {
        $(#[$doc])*
        pub struct $family<L = DynamicLabels> {
            core: Arc<FamilyCore<$cell>>,
            labels: PhantomData<fn(&L)>,
        }

        impl<L> Clone for $family<L> {
            fn clone(&self) -> Self {
                Self::from_core(self.core.clone())
            }
        }

        impl<L> fmt::Debug for $family<L> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($family))
                    .field("name", &self.core.desc.name())
                    .field("labels", &self.core.desc.label_names())
                    .field("series", &self.core.len())
                    .finish()
            }
        }

        impl<L> $family<L> {
            fn from_core(core: Arc<FamilyCore<$cell>>) -> Self {
                $family { core, labels: PhantomData }
            }

            /// The handle of a family without labels.
            pub fn handle(&self) -> $handle {
                self.core.get_or_overflow(&[])
            }

            /// The series that label sets past the cardinality limit share (label values
            /// `__overflow__`). A family without labels has no separate overflow series:
            /// this is its one series.
            pub fn overflow(&self) -> $handle {
                self.core.overflow_handle()
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

        impl<L: LabelSet> $family<L> {
            /// The handle for a typed label set. Bind it once and keep it where you can:
            /// recording through a handle does no lookup. A lookup allocates nothing for an
            /// existing series. A new label set past the cardinality limit gives the overflow
            /// series (counted in the self-metrics); a value longer than the registry's
            /// maximum is shortened with a hash suffix (counted). Use [`Self::try_get`] to
            /// be told instead.
            #[inline]
            pub fn get(&self, labels: &L) -> $handle {
                labels.with_values(|v| self.core.get_or_overflow(v))
            }

            /// Like [`Self::get`], but a full family or an over-long value is an `Err`.
            pub fn try_get(&self, labels: &L) -> Result<$handle, LabelError> {
                labels.with_values(|v| self.core.try_get(v))
            }
        }

        impl $family<DynamicLabels> {
            /// The handle for label values given at run time, in label-name order. A wrong
            /// number of values, a new label set past the cardinality limit or an over-long
            /// value is an `Err` that says which.
            pub fn try_with_labels(&self, values: &[&str]) -> Result<$handle, LabelError> {
                self.core.try_get(values)
            }

            /// The handle for `(label name, value)` pairs given at run time, in any order. A
            /// name the family does not declare, or a label given no value or two, is an
            /// `Err` that names it; so are the errors of [`Self::try_with_labels`].
            ///
            /// ```
            /// use dwcp_telemetry::{LabelError, Registry};
            /// let reg = Registry::builder().build()?;
            /// let reqs = reg.counter("reqs_total", "Requests")
            ///     .dynamic_labels(["operation", "status"])
            ///     .register()?;
            /// reqs.try_with_named(&[("status", "ok"), ("operation", "migrate")])?.inc();
            /// assert_eq!(reqs.try_with_labels(&["migrate", "ok"])?.get(), 1);
            /// assert!(matches!(
            ///     reqs.try_with_named(&[("operaton", "migrate"), ("status", "ok")]),
            ///     Err(LabelError::UnknownLabel { .. })
            /// ));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn try_with_named(&self, pairs: &[(&str, &str)]) -> Result<$handle, LabelError> {
                let desc = &self.core.desc;
                let names = desc.label_names();
                if let Some((unknown, _)) = pairs.iter().find(|(n, _)| !names.iter().any(|l| l == n)) {
                    return Err(LabelError::UnknownLabel {
                        metric: desc.name().to_owned(),
                        label: (*unknown).to_owned(),
                        expected: names.to_vec(),
                    });
                }
                let mut values = Vec::with_capacity(names.len());
                for name in names {
                    let mut given = pairs.iter().filter(|(n, _)| n == name);
                    match (given.next(), given.next()) {
                        (Some((_, v)), None) => values.push(*v),
                        _ => {
                            return Err(LabelError::MissingLabel {
                                metric: desc.name().to_owned(),
                                label: name.clone(),
                            })
                        }
                    }
                }
                self.core.try_get(&values)
            }

            /// The handle for label values given at run time, never failing: a wrong number
            /// of values, or a new label set past the cardinality limit, gives the family's
            /// **overflow series** (label values `__overflow__`), counted in
            /// `dwcp_telemetry_label_errors_total` / `..._cardinality_overflow_label_sets_total`;
            /// an over-long value is shortened with a hash suffix (counted). Nothing is lost,
            /// but use [`Self::try_with_labels`] to be told.
            pub fn with_labels_or_overflow(&self, values: &[&str]) -> $handle {
                self.core.get_or_overflow(values)
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

static GLOBAL: OnceLock<Registry> = OnceLock::new();

/// The process-wide registry. Built with defaults on first use unless [`set_global`] ran first.
pub fn global() -> &'static Registry {
    GLOBAL.get_or_init(Registry::default)
}

/// Install `registry` as the process-wide registry. Fails (returning it) if [`global`] was
/// already used or set.
pub fn set_global(registry: Registry) -> Result<(), Registry> {
    GLOBAL.set(registry)
}
