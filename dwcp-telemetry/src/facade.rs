//! `metrics::Recorder` for a [`Registry`]: `metrics::counter!`, `gauge!` and `histogram!` from
//! any crate land in the registry.
//!
//! - `histogram!` values are **seconds** (the `metrics` convention) and are stored as integer
//!   nanoseconds, exported as seconds. If `describe_histogram!` gave a unit other than
//!   seconds before first use, values are stored as given (rounded to integers).
//! - Names and label names that Prometheus would refuse are sanitised (invalid characters
//!   become `_`), since the facade cannot return an error.
//! - A name first used with one set of label names and later with another records the
//!   mismatching calls into the family's overflow series
//!   (`dwcp_telemetry_label_errors_total` counts them).
//! - A name used as two kinds: the second kind records nowhere and is counted in
//!   `dwcp_telemetry_registration_errors_total`.
//!
//! Every `counter!(...)` call looks the series up (that is how the facade works); keep the
//! returned handle to record without a lookup.
//!
//! ```
//! use dwcp_telemetry::{facade::DwcpRecorder, Registry, Value};
//! let registry = Registry::builder().version("3.0.0").build().unwrap();
//! let recorder = DwcpRecorder::new(registry.clone());
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::counter!("dwcp_requests_total", "component" => "amst").increment(2);
//!     metrics::histogram!("dwcp_request_duration_seconds").record(0.25);
//! });
//! let families = registry.collect();
//! assert_eq!(families[0].series[0].value, Value::Counter(2));
//! assert!(matches!(&families[1].series[0].value, Value::Histogram(h) if h.count() == 1));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString};

use crate::metric::{CounterCell, GaugeCell, HistogramCell};
use crate::registry::{
    sanitize_label_name, sanitize_metric_name, CounterFamily, GaugeFamily, HistogramFamily,
    Registry, Unit,
};
use crate::sync::Ordering;

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.inc_by(value);
    }
    fn absolute(&self, value: u64) {
        CounterCell::absolute(self, value);
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }
    fn decrement(&self, value: f64) {
        self.add(-value);
    }
    fn set(&self, value: f64) {
        GaugeCell::set(self, value);
    }
}

/// A histogram cell plus the factor from facade values to stored integers.
#[derive(Debug)]
struct ScaledHistogram {
    cell: Arc<HistogramCell>,
    scale: f64,
}

impl HistogramFn for ScaledHistogram {
    fn record(&self, value: f64) {
        self.cell.hist.record_f64(value, self.scale);
    }
}

/// Implements [`metrics::Recorder`] over a [`Registry`].
///
/// Install it process-wide with [`DwcpRecorder::install`] (or `metrics::set_global_recorder`),
/// or scope it with `metrics::with_local_recorder`.
#[derive(Debug)]
pub struct DwcpRecorder {
    registry: Registry,
    described: Mutex<HashMap<String, (Option<metrics::Unit>, String)>>,
}

impl DwcpRecorder {
    /// A recorder writing into `registry`.
    #[must_use]
    pub fn new(registry: Registry) -> Self {
        DwcpRecorder {
            registry,
            described: Mutex::new(HashMap::new()),
        }
    }

    /// The registry this recorder writes into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Install as the global `metrics` recorder. Fails if one is already installed.
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Self>> {
        metrics::set_global_recorder(self)
    }

    fn describe(&self, key: KeyName, unit: Option<metrics::Unit>, description: SharedString) {
        let name = sanitize_metric_name(key.as_str());
        let help = description.into_owned();
        if let Some(desc) = self.registry.descriptor_of(&name) {
            desc.set_help(help.clone());
        }
        self.described
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, (unit, help));
    }

    fn description(&self, name: &str) -> (Option<metrics::Unit>, String) {
        self.described
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .unwrap_or((None, String::new()))
    }

    /// Sanitised name, and labels sorted by sanitised name (so label order in the macro does
    /// not matter).
    fn split(key: &Key) -> (String, Vec<String>, Vec<String>) {
        let mut pairs: Vec<(String, String)> = key
            .labels()
            .map(|l| (sanitize_label_name(l.key()), l.value().to_owned()))
            .filter(|(n, _)| n != crate::registry::VERSION_LABEL)
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|a, b| a.0 == b.0);
        let (names, values) = pairs.into_iter().unzip();
        (sanitize_metric_name(key.name()), names, values)
    }

    /// The handle for `values` in `family`, or its overflow series (counted) when the family
    /// was registered with other label names.
    fn bind<F: FacadeFamily>(
        &self,
        family: Option<F>,
        names: &[String],
        values: &[String],
    ) -> Option<F::Handle> {
        let family = family?;
        Some(if family.descriptor().label_names() == names {
            family.with_labels_or_overflow(&refs(values))
        } else {
            self.mismatch();
            family.overflow()
        })
    }

    fn mismatch(&self) {
        self.registry
            .tallies()
            .label_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    fn refuse(&self) {
        self.registry
            .tallies()
            .registration_errors
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// What `bind` needs of the three family types.
trait FacadeFamily {
    type Handle;
    fn descriptor(&self) -> &crate::registry::Descriptor;
    fn with_labels_or_overflow(&self, values: &[&str]) -> Self::Handle;
    fn overflow(&self) -> Self::Handle;
}

macro_rules! facade_family {
    ($($family:ty => $handle:ty),*) => {$(
        impl FacadeFamily for $family {
            type Handle = $handle;
            fn descriptor(&self) -> &crate::registry::Descriptor {
                <$family>::descriptor(self)
            }
            fn with_labels_or_overflow(&self, values: &[&str]) -> $handle {
                <$family>::with_labels_or_overflow(self, values)
            }
            fn overflow(&self) -> $handle {
                <$family>::overflow(self)
            }
        }
    )*};
}

facade_family!(
    CounterFamily => crate::Counter,
    GaugeFamily => crate::Gauge,
    HistogramFamily => crate::Histogram
);

fn to_unit(unit: Option<metrics::Unit>, default: Unit) -> Unit {
    match unit {
        Some(metrics::Unit::Seconds) => Unit::Seconds,
        Some(metrics::Unit::Bytes) => Unit::Bytes,
        Some(_) => Unit::None,
        None => default,
    }
}

fn refs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

impl Recorder for DwcpRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
        self.describe(key, unit, d);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
        self.describe(key, unit, d);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<metrics::Unit>, d: SharedString) {
        self.describe(key, unit, d);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        let (name, names, values) = Self::split(key);
        let (unit, help) = self.description(&name);
        let family: Option<CounterFamily> = self
            .registry
            .counter(name.clone(), help)
            .unit(to_unit(unit, Unit::None))
            .dynamic_labels(names.clone())
            .register()
            .ok()
            .or_else(|| self.registry.existing_counter(&name));
        let handle = self.bind(family, &names, &values);
        match handle.as_ref().and_then(|h| h.cell().cloned()) {
            Some(cell) => metrics::Counter::from_arc(cell),
            None => {
                self.refuse();
                metrics::Counter::noop()
            }
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        let (name, names, values) = Self::split(key);
        let (unit, help) = self.description(&name);
        let family: Option<GaugeFamily> = self
            .registry
            .gauge(name.clone(), help)
            .unit(to_unit(unit, Unit::None))
            .dynamic_labels(names.clone())
            .register()
            .ok()
            .or_else(|| self.registry.existing_gauge(&name));
        let handle = self.bind(family, &names, &values);
        match handle.as_ref().and_then(|h| h.cell().cloned()) {
            Some(cell) => metrics::Gauge::from_arc(cell),
            None => {
                self.refuse();
                metrics::Gauge::noop()
            }
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        let (name, names, values) = Self::split(key);
        let (unit, help) = self.description(&name);
        let family: Option<HistogramFamily> = self
            .registry
            .histogram(name.clone(), help)
            .unit(to_unit(unit, Unit::Seconds))
            .dynamic_labels(names.clone())
            .register()
            .ok()
            .or_else(|| self.registry.existing_histogram(&name));
        let scale = match &family {
            Some(f) if f.descriptor().unit() != Unit::Seconds => 1.0,
            _ => 1e9,
        };
        let handle = self.bind(family, &names, &values);
        match handle.as_ref().and_then(|h| h.cell().cloned()) {
            Some(cell) => metrics::Histogram::from_arc(Arc::new(ScaledHistogram { cell, scale })),
            None => {
                self.refuse();
                metrics::Histogram::noop()
            }
        }
    }
}
