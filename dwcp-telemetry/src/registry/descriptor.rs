//! What a family is: name, help, kind, unit, label names, and export-time buckets.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::histogram::Layout;

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// Monotonic `u64`.
    Counter,
    /// `f64` that goes up and down.
    Gauge,
    /// HDR histogram of `u64`.
    Histogram,
}

impl MetricKind {
    /// Lower-case name, as in Prometheus `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// The unit of a metric's values. For histograms it also fixes how values are stored:
/// each unit has a storage resolution ([`Unit::storage_scale`]), and exporters divide by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Unit {
    /// Durations. Histograms store integer nanoseconds and export seconds.
    Seconds,
    /// Bytes, stored and exported as given.
    Bytes,
    /// A ratio (0..1). Histograms store millionths and export the ratio.
    Ratio,
    /// No unit (counts, or anything else); values are stored and exported as given.
    #[default]
    None,
}

impl Unit {
    /// The OpenMetrics unit name (empty for [`Unit::None`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Ratio => "ratio",
            Unit::None => "",
        }
    }

    /// Stored integers per exported unit: 1e9 for seconds (stored as ns), 1e6 for ratios
    /// (stored as millionths), 1 otherwise.
    pub fn storage_scale(self) -> f64 {
        match self {
            Unit::Seconds => 1e9,
            Unit::Ratio => 1e6,
            Unit::Bytes | Unit::None => 1.0,
        }
    }

    /// The unit a histogram's name implies: `_seconds` → seconds, `_bytes` → bytes,
    /// `_ratio` → ratio, anything else → none (values as given). Names are never guessed
    /// beyond these exact suffixes; set a unit explicitly for anything else.
    pub fn from_name(name: &str) -> Unit {
        if name.ends_with("_seconds") {
            Unit::Seconds
        } else if name.ends_with("_bytes") {
            Unit::Bytes
        } else if name.ends_with("_ratio") {
            Unit::Ratio
        } else {
            Unit::None
        }
    }

    /// The default highest trackable stored value: one hour for durations (in ns), the
    /// whole `u64` range otherwise.
    pub fn default_max_value(self) -> u64 {
        match self {
            Unit::Seconds => crate::histogram::ONE_HOUR_NS,
            _ => u64::MAX,
        }
    }

    /// The default export-time `le` bounds for histograms of this unit, in the exported unit.
    pub fn default_buckets(self) -> &'static [f64] {
        match self {
            Unit::Seconds => &DEFAULT_BUCKETS,
            Unit::Bytes => &BYTES_BUCKETS,
            Unit::Ratio => &RATIO_BUCKETS,
            Unit::None => &COUNT_BUCKETS,
        }
    }
}

/// Default buckets for byte sizes: powers of four from 64 B to 1 GiB.
pub const BYTES_BUCKETS: [f64; 13] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];

/// Default buckets for ratios.
pub const RATIO_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// Default buckets for unitless histograms (counts): powers of ten from 1 to 10^9.
pub const COUNT_BUCKETS: [f64; 10] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Prometheus' default histogram buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The seeds' buckets for recovery durations (`dwcp_recovery_duration_seconds`), in seconds.
pub const RECOVERY_BUCKETS: [f64; 7] = [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];

/// Everything about a family except its series.
#[derive(Debug)]
pub struct Descriptor {
    name: String,
    help: ArcSwap<String>,
    /// The help was not given (it is the name): a later definition may supply one.
    help_is_default: std::sync::atomic::AtomicBool,
    kind: MetricKind,
    unit: Unit,
    label_names: Vec<String>,
    buckets: Vec<f64>,
    layout: Layout,
    exact_sum: bool,
    error_denominators: Option<Vec<String>>,
    /// Stored integers per exported unit (histograms).
    storage_scale: f64,
    /// Export exponential (native) buckets besides the classic ones.
    native_histogram: bool,
}

impl Descriptor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        help: String,
        kind: MetricKind,
        unit: Unit,
        label_names: Vec<String>,
        buckets: Vec<f64>,
        layout: Layout,
        exact_sum: bool,
    ) -> Self {
        Descriptor {
            name: name.clone(),
            help_is_default: std::sync::atomic::AtomicBool::new(help.is_empty()),
            help: ArcSwap::from_pointee(if help.is_empty() { name.clone() } else { help }),
            kind,
            unit,
            label_names,
            buckets,
            layout,
            exact_sum,
            error_denominators: None,
            storage_scale: unit.storage_scale(),
            native_histogram: true,
        }
    }

    pub(crate) fn with_native_histogram(mut self, on: Option<bool>) -> Self {
        if let Some(on) = on {
            self.native_histogram = on;
        }
        self
    }

    /// Whether this histogram family is also exported as a Prometheus native histogram
    /// (exponential buckets) in the protobuf exposition; a registry policy
    /// ([`MetricPolicy::native_histogram`](crate::MetricPolicy::native_histogram)) turns it
    /// off per metric. Always `false` for counters and gauges.
    pub fn native_histogram(&self) -> bool {
        self.kind == MetricKind::Histogram && self.native_histogram
    }

    /// Store values at `scale` integers per exported unit instead of the unit's own (the
    /// facade keeps unitless histograms in millionths, since it receives `f64`).
    pub(crate) fn with_storage_scale(mut self, scale: Option<f64>) -> Self {
        if let Some(s) = scale {
            self.storage_scale = s;
        }
        self
    }

    pub(crate) fn with_error_denominators(mut self, d: Option<Vec<String>>) -> Self {
        self.error_denominators = d;
        self
    }

    /// For an error counter, the request counters a policy named as its error-ratio
    /// denominators (`MetricPolicy::error_ratio_of`), if any.
    pub fn error_denominators(&self) -> Option<&[String]> {
        self.error_denominators.as_deref()
    }

    /// The metric name as registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text.
    pub fn help(&self) -> Arc<String> {
        self.help.load_full()
    }

    /// Whether the help is the default (the name), given by no registration or description.
    pub fn help_is_default(&self) -> bool {
        self.help_is_default
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replace a default help (the first real one wins; a given help is never overwritten).
    /// Returns whether it was replaced.
    pub(crate) fn supply_help(&self, help: &str) -> bool {
        if help.is_empty() || !self.help_is_default() {
            return false;
        }
        self.help.store(Arc::new(help.to_owned()));
        self.help_is_default
            .store(false, std::sync::atomic::Ordering::Release);
        true
    }

    #[allow(dead_code)]
    pub(crate) fn set_help(&self, help: String) {
        self.help.store(Arc::new(help));
    }

    /// Counter, gauge or histogram.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The unit of the values.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Label names, in the order label values are given.
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// The HDR layout histograms of this family record into.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Whether histograms of this family keep an exact sum.
    pub fn exact_sum(&self) -> bool {
        self.exact_sum
    }

    /// Multiply stored histogram values by this to get the exported unit
    /// (1e-9 for [`Unit::Seconds`]: stored in ns, exported in s; 1e-6 for ratios).
    pub fn export_scale(&self) -> f64 {
        1.0 / self.storage_scale()
    }

    /// Stored integers per exported unit: 1e9 for durations (ns), 1e6 for ratios, 1 for
    /// bytes and counts given through the registry, 1e6 for unitless histograms the
    /// `metrics` facade creates (it receives `f64`); 1 for counters and gauges.
    pub fn storage_scale(&self) -> f64 {
        match self.kind {
            MetricKind::Histogram => self.storage_scale,
            _ => 1.0,
        }
    }

    /// The `le` bucket boundaries to export, in the exported unit: those set at registration
    /// or by a registry policy, else the unit's defaults ([`Unit::default_buckets`]). Storage
    /// keeps full resolution, so these can change without losing data.
    pub fn buckets(&self) -> &[f64] {
        &self.buckets
    }

    /// Whether `other` describes the same family (kind, labels, help, unit, buckets, layout,
    /// sum mode); `Err` names the first field that differs.
    pub(crate) fn same_definition(&self, other: &Descriptor) -> Result<(), &'static str> {
        if self.kind != other.kind {
            Err("kind")
        } else if self.label_names != other.label_names {
            Err("label names")
        } else if !self.help_is_default()
            && !other.help_is_default()
            && *self.help() != *other.help()
        {
            // A default help (none given) matches any: the given one is adopted.
            Err("help")
        } else if self.unit != other.unit {
            Err("unit")
        } else if self.storage_scale() != other.storage_scale() {
            Err("storage scale")
        } else if self.kind == MetricKind::Histogram && self.buckets != other.buckets {
            Err("buckets")
        } else if self.kind == MetricKind::Histogram && self.layout != other.layout {
            Err("precision or maximum value")
        } else if self.kind == MetricKind::Histogram && self.exact_sum != other.exact_sum {
            Err("exact sum")
        } else {
            Ok(())
        }
    }

    /// The names this family's samples and metadata use or reserve in the exposition (both
    /// formats): counters `base`, `base_total` and `base_created`; histograms `name`,
    /// `name_bucket`, `name_sum`, `name_count` and `name_created` (OpenMetrics reserves the
    /// `_created` sample for both); gauges `name`. Two families may not share any of them.
    pub(crate) fn exported_names(&self) -> Vec<String> {
        let name = self.name.as_str();
        match self.kind {
            MetricKind::Counter => {
                let base = name.strip_suffix("_total").unwrap_or(name);
                vec![
                    base.to_owned(),
                    format!("{base}_total"),
                    format!("{base}_created"),
                ]
            }
            MetricKind::Gauge => vec![name.to_owned()],
            MetricKind::Histogram => ["", "_bucket", "_sum", "_count", "_created"]
                .iter()
                .map(|s| format!("{name}{s}"))
                .collect(),
        }
    }
}
