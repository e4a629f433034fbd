//! The `/metrics/summary` document: per series, its count, its rate since the previous
//! summary, quantiles, and error rates (like the seeds' `GetMetricsSummary`).
//!
//! Definitions:
//!
//! - **count**: a counter's total, or a histogram's number of recorded values (lifetime).
//! - **rate**: the increase of `count` per second since the previous call of
//!   [`Summarizer::summary`] on the same summarizer (the first call: since the registry was
//!   built). Concurrent callers share one window: each call closes it.
//! - **quantiles** (histograms): `p50`, `p90`, `p95`, `p99`, `p999`, `max`, `min`, `mean` and
//!   `sum` over the histogram's lifetime, in the exported unit (seconds for durations).
//! - **error rates**: an error counter's denominators are the counters its registry policy
//!   names (`MetricPolicy::error_ratio_of`); without one, by the DWCP naming convention, for
//!   every counter family `P_errors_total` the families `P_requests_total` and
//!   `P_operations_total` (counters, if registered) are its denominators. `errors_per_second` is the errors' increase per second over the window;
//!   `error_ratio` is errors ÷ requests over the window (`null` when no request arrived). When
//!   both families have the same label names, one entry per error series compares it with the
//!   request series of the same label values; otherwise one entry compares the families' sums.
//!   So `dwcp_v3_component_errors_total{component}` ÷ `dwcp_v3_component_operations_total{component}`
//!   is per component, and `dwcp_errors_total{type}` ÷ `dwcp_requests_total{operation,status}`
//!   is one ratio of totals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::json;
use crate::registry::{FamilySnapshot, MetricKind, Registry, Value};

/// Quantiles reported for each histogram, with their JSON keys.
pub const QUANTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
];

/// One series in a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSummary {
    /// Metric name as registered.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Label names and values (constant labels not included).
    pub labels: Vec<(String, String)>,
    /// Counter total or histogram count (0 for gauges).
    pub count: u64,
    /// Increase of `count` per second over the window (0 for gauges).
    pub rate: f64,
    /// A gauge's value.
    pub value: Option<f64>,
    /// A histogram's statistics, in the exported unit.
    pub stats: Option<HistogramStats>,
}

/// Lifetime statistics of a histogram series, in the exported unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramStats {
    /// Sum of the values (exact or slot-midpoint estimate).
    pub sum: f64,
    /// Mean.
    pub mean: f64,
    /// Smallest value (lowest equivalent).
    pub min: f64,
    /// `p50, p90, p95, p99, p999` (see [`QUANTILES`]).
    pub quantiles: [f64; 5],
    /// Largest value (highest equivalent).
    pub max: f64,
}

/// One error-rate entry (see the module docs for the definition).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRate {
    /// The errors counter family.
    pub errors: String,
    /// The denominator family (`…requests_total` or `…operations_total`).
    pub requests: String,
    /// The label values compared (empty when whole families are compared).
    pub labels: Vec<(String, String)>,
    /// Errors per second over the window.
    pub errors_per_second: f64,
    /// Errors ÷ requests over the window; `None` when there were no requests.
    pub error_ratio: Option<f64>,
}

/// A summary of a registry at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The registry's `version`.
    pub version: String,
    /// Seconds since the registry was built.
    pub uptime_seconds: f64,
    /// Length of the window the rates cover, in seconds.
    pub window_seconds: f64,
    /// Every series, self-metrics (`dwcp_telemetry_*`) included.
    pub series: Vec<SeriesSummary>,
    /// Error rates.
    pub error_rates: Vec<ErrorRate>,
    /// The SLA report, when the summarizer tracks one ([`Summarizer::with_sla`]).
    pub sla: Option<crate::resilience::SlaReport>,
}

type SeriesKey = (String, Arc<[String]>);

#[derive(Debug)]
struct Window {
    at: Instant,
    counts: HashMap<SeriesKey, u64>,
}

/// Produces [`Summary`]s of a registry, remembering the previous call's counts for rates.
/// Its lock is taken only by summary callers, never by recording threads.
#[derive(Debug)]
pub struct Summarizer {
    registry: Registry,
    window: Mutex<Window>,
    sla: Option<crate::resilience::SlaTracker>,
}

impl Summarizer {
    /// A summarizer whose first window starts when `registry` was built.
    pub fn new(registry: Registry) -> Self {
        let at = registry.started();
        Summarizer {
            registry,
            window: Mutex::new(Window {
                at,
                counts: HashMap::new(),
            }),
            sla: None,
        }
    }

    /// Also report `tracker` (ticked on each summary) as the summary's `"sla"`.
    pub fn with_sla(mut self, tracker: Option<crate::resilience::SlaTracker>) -> Self {
        self.sla = tracker;
        self
    }

    /// Collect the registry and summarise it; closes the current rate window.
    pub fn summary(&self) -> Summary {
        self.summarise(true)
    }

    /// Like [`Summarizer::summary`], but leaves the rate window open (for `HEAD` requests and
    /// other observers that must not disturb the next caller's rates).
    pub fn peek(&self) -> Summary {
        self.summarise(false)
    }

    fn summarise(&self, close_window: bool) -> Summary {
        let families = self.registry.collect();
        let now = Instant::now();
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let secs = now.duration_since(window.at).as_secs_f64();
        let mut counts = HashMap::with_capacity(window.counts.len());
        let mut deltas: HashMap<SeriesKey, u64> = HashMap::new();
        let mut series = Vec::new();
        for f in &families {
            let desc = &f.descriptor;
            let scale = desc.storage_scale();
            for s in &f.series {
                let key = (desc.name().to_owned(), s.label_values.clone());
                let labels = desc
                    .label_names()
                    .iter()
                    .cloned()
                    .zip(s.label_values.iter().cloned())
                    .collect();
                let (count, value, stats) = match &s.value {
                    Value::Counter(v) => (*v, None, None),
                    Value::Gauge(v) => (0, Some(*v), None),
                    Value::Histogram(h) => {
                        let unit = |x: f64| to_unit(x, scale);
                        let q = |x: u64| unit(x as f64);
                        let stats = HistogramStats {
                            sum: unit(h.sum() as f64),
                            mean: unit(h.mean()),
                            min: q(h.min()),
                            quantiles: QUANTILES.map(|(_, p)| q(h.quantile(p))),
                            max: q(h.max()),
                        };
                        (h.count(), None, Some(stats))
                    }
                };
                let before = window.counts.get(&key).copied().unwrap_or(0);
                let delta = count.saturating_sub(before);
                let rate = if secs > 0.0 { delta as f64 / secs } else { 0.0 };
                if desc.kind() != MetricKind::Gauge {
                    counts.insert(key.clone(), count);
                    deltas.insert(key, delta);
                }
                series.push(SeriesSummary {
                    name: desc.name().to_owned(),
                    kind: desc.kind(),
                    labels,
                    count,
                    rate,
                    value,
                    stats,
                });
            }
        }
        if close_window {
            window.at = now;
            window.counts = counts;
        }
        drop(window);
        let error_rates = error_rates(&families, &deltas, secs);
        Summary {
            version: self.registry.version().to_owned(),
            uptime_seconds: now.duration_since(self.registry.started()).as_secs_f64(),
            window_seconds: secs,
            series,
            error_rates,
            sla: self.sla.as_ref().map(|t| t.tick()),
        }
    }

    /// [`Summarizer::summary`] as JSON (the `/metrics/summary` body).
    pub fn render_json(&self) -> String {
        self.summary().to_json()
    }
}

/// Stored units to exported units: divided by the (integral) stored integers per unit, not
/// multiplied by an inexact reciprocal, so round values stay round.
fn to_unit(x: f64, per_unit: f64) -> f64 {
    x / per_unit
}

/// The request counters an error counter is divided by: those its registry policy names
/// ([`MetricPolicy::error_ratio_of`](crate::MetricPolicy::error_ratio_of)), else, by the DWCP
/// naming convention, `P_requests_total` and `P_operations_total` for `P_errors_total`.
/// `None` for a counter that counts no errors.
fn error_denominators(desc: &crate::Descriptor) -> Option<Vec<String>> {
    if let Some(d) = desc.error_denominators() {
        return Some(d.to_vec());
    }
    let base = desc.name().strip_suffix("_total").unwrap_or(desc.name());
    let prefix = base.strip_suffix("errors")?;
    if !(prefix.is_empty() || prefix.ends_with('_')) {
        return None;
    }
    Some(
        ["requests", "operations"]
            .iter()
            .flat_map(|d| [format!("{prefix}{d}_total"), format!("{prefix}{d}")])
            .collect(),
    )
}

fn error_rates(
    families: &[FamilySnapshot],
    deltas: &HashMap<SeriesKey, u64>,
    secs: f64,
) -> Vec<ErrorRate> {
    let counters: HashMap<&str, &FamilySnapshot> = families
        .iter()
        .filter(|f| f.descriptor.kind() == MetricKind::Counter)
        .map(|f| (f.descriptor.name(), f))
        .collect();
    let delta = |name: &str, values: &Arc<[String]>| {
        deltas
            .get(&(name.to_owned(), values.clone()))
            .copied()
            .unwrap_or(0)
    };
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let ratio = |e: u64, r: u64| (r > 0).then(|| e as f64 / r as f64);
    let mut out = Vec::new();
    for f in families {
        let desc = &f.descriptor;
        if desc.kind() != MetricKind::Counter {
            continue;
        }
        let Some(denominators) = error_denominators(desc) else {
            continue;
        };
        for denom in denominators {
            let Some(req) = counters.get(denom.as_str()) else {
                continue;
            };
            let rdesc = &req.descriptor;
            if rdesc.label_names() == desc.label_names() && !desc.label_names().is_empty() {
                for s in &f.series {
                    let e = delta(desc.name(), &s.label_values);
                    let r = delta(rdesc.name(), &s.label_values);
                    out.push(ErrorRate {
                        errors: desc.name().to_owned(),
                        requests: rdesc.name().to_owned(),
                        labels: desc
                            .label_names()
                            .iter()
                            .cloned()
                            .zip(s.label_values.iter().cloned())
                            .collect(),
                        errors_per_second: per_sec(e),
                        error_ratio: ratio(e, r),
                    });
                }
            } else {
                let e: u64 = f
                    .series
                    .iter()
                    .map(|s| delta(desc.name(), &s.label_values))
                    .sum();
                let r: u64 = req
                    .series
                    .iter()
                    .map(|s| delta(rdesc.name(), &s.label_values))
                    .sum();
                out.push(ErrorRate {
                    errors: desc.name().to_owned(),
                    requests: rdesc.name().to_owned(),
                    labels: Vec::new(),
                    errors_per_second: per_sec(e),
                    error_ratio: ratio(e, r),
                });
            }
        }
    }
    out
}

fn labels_json(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        json::key(out, k, i == 0);
        json::string(out, v);
    }
    out.push('}');
}

impl Summary {
    /// The JSON document served at `/metrics/summary`:
    ///
    /// ```json
    /// {"status":"ok","version":"3.0.0","uptime_seconds":12.5,"window_seconds":5.0,
    ///  "series":[{"name":"dwcp_request_duration_seconds","type":"histogram",
    ///             "labels":{"operation":"migrate"},"count":1000,"rate":200.0,
    ///             "sum":1.2,"mean":0.0012,"min":0.0001,"p50":0.001,"p90":0.002,
    ///             "p95":0.0025,"p99":0.004,"p999":0.009,"max":0.01}, …],
    ///  "error_rates":[{"errors":"dwcp_errors_total","requests":"dwcp_requests_total",
    ///                  "labels":{},"errors_per_second":1.5,"error_ratio":0.0075}]}
    /// ```
    ///
    /// Gauges carry `"value"` (`null` for NaN or infinities, which JSON cannot spell).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + self.series.len() * 160);
        out.push_str("{\"status\":\"ok\"");
        json::key(&mut out, "version", false);
        json::string(&mut out, &self.version);
        json::key(&mut out, "uptime_seconds", false);
        json::number(&mut out, self.uptime_seconds);
        json::key(&mut out, "window_seconds", false);
        json::number(&mut out, self.window_seconds);
        json::key(&mut out, "series", false);
        out.push('[');
        for (i, s) in self.series.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json::key(&mut out, "name", true);
            json::string(&mut out, &s.name);
            json::key(&mut out, "type", false);
            json::string(&mut out, s.kind.as_str());
            json::key(&mut out, "labels", false);
            labels_json(&mut out, &s.labels);
            if let Some(v) = s.value {
                json::key(&mut out, "value", false);
                json::number(&mut out, v);
            } else {
                json::key(&mut out, "count", false);
                json::number(&mut out, s.count as f64);
                json::key(&mut out, "rate", false);
                json::number(&mut out, s.rate);
            }
            if let Some(st) = &s.stats {
                for (k, v) in [("sum", st.sum), ("mean", st.mean), ("min", st.min)] {
                    json::key(&mut out, k, false);
                    json::number(&mut out, v);
                }
                for ((k, _), v) in QUANTILES.iter().zip(st.quantiles) {
                    json::key(&mut out, k, false);
                    json::number(&mut out, v);
                }
                json::key(&mut out, "max", false);
                json::number(&mut out, st.max);
            }
            out.push('}');
        }
        out.push(']');
        json::key(&mut out, "error_rates", false);
        out.push('[');
        for (i, e) in self.error_rates.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json::key(&mut out, "errors", true);
            json::string(&mut out, &e.errors);
            json::key(&mut out, "requests", false);
            json::string(&mut out, &e.requests);
            json::key(&mut out, "labels", false);
            labels_json(&mut out, &e.labels);
            json::key(&mut out, "errors_per_second", false);
            json::number(&mut out, e.errors_per_second);
            json::key(&mut out, "error_ratio", false);
            match e.error_ratio {
                Some(r) => json::number(&mut out, r),
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push(']');
        if let Some(sla) = &self.sla {
            json::key(&mut out, "sla", false);
            sla.write_json(&mut out);
        }
        out.push('}');
        out
    }
}

/// The `/health` document: `{"status":"ok","version":"…","uptime_seconds":…}`.
pub fn health_json(registry: &Registry) -> String {
    let mut out = String::with_capacity(96);
    out.push_str("{\"status\":\"ok\"");
    json::key(&mut out, "version", false);
    json::string(&mut out, registry.version());
    json::key(&mut out, "uptime_seconds", false);
    json::number(&mut out, registry.started().elapsed().as_secs_f64());
    out.push('}');
    out
}
