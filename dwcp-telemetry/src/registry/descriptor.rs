//! What a family is: name, help, kind, unit, label names, and export-time buckets.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::histogram::Layout;

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Unit {
    /// Durations. Histograms store integer nanoseconds and export seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A ratio (0..1).
    Ratio,
    /// No unit (counts, or anything else); values are exported as recorded.
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
}

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
    kind: MetricKind,
    unit: Unit,
    label_names: Vec<String>,
    buckets: Option<Vec<f64>>,
    layout: Layout,
    exact_sum: bool,
}

impl Descriptor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        help: String,
        kind: MetricKind,
        unit: Unit,
        label_names: Vec<String>,
        buckets: Option<Vec<f64>>,
        layout: Layout,
        exact_sum: bool,
    ) -> Self {
        Descriptor {
            name,
            help: ArcSwap::from_pointee(help),
            kind,
            unit,
            label_names,
            buckets,
            layout,
            exact_sum,
        }
    }

    /// The metric name as registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The help text.
    pub fn help(&self) -> Arc<String> {
        self.help.load_full()
    }

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
    /// (1e-9 for [`Unit::Seconds`]: stored in ns, exported in s).
    pub fn export_scale(&self) -> f64 {
        match (self.kind, self.unit) {
            (MetricKind::Histogram, Unit::Seconds) => 1e-9,
            _ => 1.0,
        }
    }

    /// The `le` bucket boundaries to export, in the exported unit: those set at registration,
    /// else the seeds' recovery buckets for `*recovery_duration*` metrics, else Prometheus'
    /// defaults. Storage keeps full resolution, so these can change without losing data.
    pub fn buckets(&self) -> &[f64] {
        match &self.buckets {
            Some(b) => b,
            None if self.name.contains("recovery_duration") => &RECOVERY_BUCKETS,
            None => &DEFAULT_BUCKETS,
        }
    }
}
