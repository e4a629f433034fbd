//! OTLP metrics: an `ExportMetricsServiceRequest` built from a [`Registry`] through its one
//! collection path ([`Registry::visit`]).
//!
//! | ours | OTLP | unit |
//! | --- | --- | --- |
//! | counter | `Sum`, monotonic, integer points | `""` |
//! | gauge | `Gauge`, double points | `""` |
//! | histogram | `ExponentialHistogram` (default), or `Histogram` with the family's export-time `le` bounds ([`HistogramForm::Explicit`]) | `s` for `_seconds`, `By` for bytes, `1` for ratios |
//!
//! Names are the registered names (counters keep `_total`), so a collector's Prometheus
//! exporter produces the very series a scrape would. Every point carries the registry's
//! constant labels (`version` first) and the series' labels as attributes; the resource carries
//! `service.name`, `service.version`, `service.instance.id`, `dwcp.component` and any further
//! attributes (`OTEL_RESOURCE_ATTRIBUTES`).
//!
//! Exponential histograms are the exact re-binning of
//! [`exponential`] (scale ≤ 8, at most 160 buckets by default;
//! zero threshold 0, since a stored zero is exactly zero), with `min`, `max` and the sum
//! (exact when the family keeps one).
//!
//! **Temporality.** Cumulative by default: every request carries complete totals since the
//! registry was built (`start_time_unix_nano`), so a request lost in an outage loses nothing.
//! [`Temporality::Delta`] sends what was recorded since the last request that was
//! [`committed`](MetricsEncoder::commit) (a push commits after the collector accepted it), so a
//! failed push is folded into the next one instead of lost. Memory for delta is one copy of
//! each series' last committed value; series that disappear are forgotten at the next commit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::config::{
    endpoint_configured, ExporterConfig, OtlpConfigError, PeriodicConfig, ResourceConfig, Signal,
};
use super::transport::{RetryPolicy, Transport};
use crate::export::exponential::{self, ExponentialConfig, Rebinner};
use crate::histogram::Snapshot;
use crate::registry::{Descriptor, HistogramView, MetricKind, Registry, Unit, Visitor};

/// Aggregation temporality of counters and histograms (gauges have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Temporality {
    /// Totals since the registry was built (the default).
    #[default]
    Cumulative,
    /// What was recorded since the last committed request.
    Delta,
}

impl Temporality {
    /// Parse `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (case-insensitive):
    /// `cumulative`, `delta`, or `lowmemory` (delta for counters and histograms, which are
    /// all our instruments are, so the same as `delta`). Anything else is `None`.
    ///
    /// ```
    /// use dwcp_telemetry::export::otlp::metrics::Temporality;
    /// assert_eq!(Temporality::parse(" Delta "), Some(Temporality::Delta));
    /// assert_eq!(Temporality::parse("lowmemory"), Some(Temporality::Delta));
    /// assert_eq!(Temporality::parse("cumulative"), Some(Temporality::Cumulative));
    /// assert_eq!(Temporality::parse("weekly"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Temporality> {
        let v = value.trim();
        if v.eq_ignore_ascii_case("cumulative") {
            Some(Temporality::Cumulative)
        } else if v.eq_ignore_ascii_case("delta") || v.eq_ignore_ascii_case("lowmemory") {
            Some(Temporality::Delta)
        } else {
            None
        }
    }

    /// The temporality `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` asks for through
    /// `lookup`: cumulative when unset or empty; an unknown value is an error naming it (the
    /// caller may log it and keep the default).
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Temporality, String> {
        const VAR: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        match lookup(VAR) {
            None => Ok(Temporality::Cumulative),
            Some(v) if v.trim().is_empty() => Ok(Temporality::Cumulative),
            Some(v) => Temporality::parse(&v)
                .ok_or_else(|| format!("{VAR}={v:?} is not one of cumulative, delta, lowmemory")),
        }
    }

    fn otlp(self) -> i32 {
        match self {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }
}

/// How histograms are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistogramForm {
    /// `ExponentialHistogram`, re-binned exactly from the HDR slots (the default).
    Exponential(ExponentialConfig),
    /// `Histogram` with explicit bounds: the family's export-time `le` bounds
    /// ([`Descriptor::buckets`]), counted as the Prometheus exposition counts them.
    Explicit,
}

impl Default for HistogramForm {
    fn default() -> Self {
        HistogramForm::Exponential(ExponentialConfig::default())
    }
}

/// The resource every request describes: service and DWCP identity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAttributes {
    attributes: Vec<(String, String)>,
}

impl ResourceAttributes {
    /// `service.name`, `service.version`, `service.instance.id` and `dwcp.component`, then
    /// `extra` (e.g. the parsed `OTEL_RESOURCE_ATTRIBUTES`); a key of `extra` that is already
    /// set does not replace it, empty values are left out.
    pub fn new(
        service_name: &str,
        service_version: &str,
        instance_id: &str,
        component: &str,
        extra: &[(String, String)],
    ) -> Self {
        let mut attributes: Vec<(String, String)> = Vec::new();
        for (k, v) in [
            ("service.name", service_name),
            ("service.version", service_version),
            ("service.instance.id", instance_id),
            ("dwcp.component", component),
        ] {
            if !v.is_empty() {
                attributes.push((k.to_owned(), v.to_owned()));
            }
        }
        for (k, v) in extra {
            if !k.is_empty() && !attributes.iter().any(|(a, _)| a == k) {
                attributes.push((k.clone(), v.clone()));
            }
        }
        ResourceAttributes { attributes }
    }

    /// The attributes, in order.
    pub fn attributes(&self) -> &[(String, String)] {
        &self.attributes
    }
}

/// Options of a [`MetricsEncoder`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsOptions {
    /// Cumulative (default) or delta.
    pub temporality: Temporality,
    /// Exponential (default) or explicit-bucket histograms.
    pub histograms: HistogramForm,
    /// The resource.
    pub resource: ResourceAttributes,
}

/// What a series held at the last committed request (delta temporality).
#[derive(Debug, Clone)]
enum Prev {
    Counter(u64),
    Histogram(Snapshot),
}

type SeriesKey = (Arc<str>, Arc<[String]>);

/// Builds `ExportMetricsServiceRequest`s from a registry; keeps scratch space and, for delta
/// temporality, the last committed value of every series.
#[derive(Debug)]
pub struct MetricsEncoder {
    options: MetricsOptions,
    rebinner: Rebinner,
    resource: Resource,
    scope: InstrumentationScope,
    committed: HashMap<SeriesKey, Prev>,
    pending: HashMap<SeriesKey, Prev>,
    /// Wall time (ns since the epoch) the committed state was taken at.
    committed_at: Option<u64>,
    pending_at: u64,
    exp: exponential::ExponentialHistogram,
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The UCUM unit OTLP expects for a family.
fn otlp_unit(desc: &Descriptor) -> &'static str {
    if desc.kind() != MetricKind::Histogram {
        return "";
    }
    match desc.unit() {
        Unit::Seconds => "s",
        Unit::Bytes => "By",
        Unit::Ratio => "1",
        _ => "",
    }
}

impl MetricsEncoder {
    /// An encoder with `options`.
    pub fn new(options: MetricsOptions) -> Self {
        let rebinner = match options.histograms {
            HistogramForm::Exponential(c) => Rebinner::new(c),
            HistogramForm::Explicit => Rebinner::default(),
        };
        let resource = Resource {
            attributes: options
                .resource
                .attributes()
                .iter()
                .map(|(k, v)| kv(k, v))
                .collect(),
            ..Resource::default()
        };
        MetricsEncoder {
            options,
            rebinner,
            resource,
            scope: InstrumentationScope {
                name: "dwcp-telemetry".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
            committed: HashMap::new(),
            pending: HashMap::new(),
            committed_at: None,
            pending_at: 0,
            exp: exponential::ExponentialHistogram::default(),
        }
    }

    /// The options.
    pub fn options(&self) -> &MetricsOptions {
        &self.options
    }

    /// Use `resource` as is (e.g. [`to_proto_resource`](super::traces::to_proto_resource)
    /// of a [`ResourceConfig`], so traces and metrics describe the process identically)
    /// instead of [`MetricsOptions::resource`].
    pub fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }

    /// Build one request holding every family of `registry` (self-metrics included), with
    /// `now` as the points' time.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use dwcp_telemetry::export::otlp::metrics::{MetricsEncoder, MetricsOptions};
    /// use dwcp_telemetry::Registry;
    /// use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    ///
    /// let registry = Registry::builder().version("3.0.0").build()?;
    /// let h = registry
    ///     .histogram("dwcp_request_duration_seconds", "Latency")
    ///     .exact_sum(true)
    ///     .register()?
    ///     .handle();
    /// h.record(3_000_000);
    /// let mut enc = MetricsEncoder::new(MetricsOptions::default());
    /// let req = enc.build(&registry, SystemTime::now());
    /// let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
    /// assert_eq!((m.name.as_str(), m.unit.as_str()), ("dwcp_request_duration_seconds", "s"));
    /// let Some(Data::ExponentialHistogram(e)) = &m.data else { panic!() };
    /// assert_eq!(e.data_points[0].count, 1);
    /// assert_eq!(e.data_points[0].sum, Some(0.003));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(&mut self, registry: &Registry, now: SystemTime) -> ExportMetricsServiceRequest {
        let now = unix_nanos(now);
        let started = unix_nanos(SystemTime::now())
            .saturating_sub(u64::try_from(registry.started().elapsed().as_nanos()).unwrap_or(0));
        let start = match self.options.temporality {
            Temporality::Cumulative => started,
            Temporality::Delta => self.committed_at.unwrap_or(started),
        };
        self.pending.clear();
        self.pending_at = now;
        let const_attrs: Vec<KeyValue> = registry
            .const_labels()
            .into_iter()
            .map(|(k, v)| kv(k, v))
            .collect();
        let mut v = Building {
            enc: self,
            const_attrs,
            start,
            now,
            metrics: Vec::new(),
            current: None,
        };
        registry.visit(&mut v);
        let metrics = v.metrics;
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    /// The last [`MetricsEncoder::build`] reached the collector: with delta temporality, the
    /// next request counts from it (and series absent from it are forgotten). Without a
    /// commit, the next delta request covers everything since the last commit.
    pub fn commit(&mut self) {
        if self.options.temporality == Temporality::Delta {
            std::mem::swap(&mut self.committed, &mut self.pending);
            self.pending.clear();
            self.committed_at = Some(self.pending_at);
        }
    }

    fn delta_base(&self, key: &SeriesKey) -> Option<&Prev> {
        self.committed.get(key)
    }
}

struct Building<'e> {
    enc: &'e mut MetricsEncoder,
    const_attrs: Vec<KeyValue>,
    start: u64,
    now: u64,
    metrics: Vec<Metric>,
    current: Option<(Arc<str>, Metric)>,
}

impl Building<'_> {
    fn attributes(&self, desc: &Descriptor, labels: &[String]) -> Vec<KeyValue> {
        let mut a = Vec::with_capacity(self.const_attrs.len() + labels.len());
        a.extend(self.const_attrs.iter().cloned());
        for (k, v) in desc.label_names().iter().zip(labels) {
            a.push(kv(k, v));
        }
        a
    }

    fn key(&self, labels: &Arc<[String]>) -> Option<SeriesKey> {
        let (name, _) = self.current.as_ref()?;
        Some((name.clone(), labels.clone()))
    }

    fn data(&mut self) -> Option<&mut Data> {
        self.current.as_mut().and_then(|(_, m)| m.data.as_mut())
    }

    fn explicit_point(
        &self,
        desc: &Descriptor,
        attributes: Vec<KeyValue>,
        snap: &Snapshot,
    ) -> HistogramDataPoint {
        let scale = desc.storage_scale();
        let bounds = desc.buckets();
        let stored: Vec<u64> = bounds
            .iter()
            // Registration keeps bounds finite and non-negative.
            .map(|&b| stored_bound(b, scale).unwrap_or(0))
            .collect();
        let cumulative = snap.cumulative(&stored);
        let mut counts = Vec::with_capacity(bounds.len() + 1);
        let mut prev = 0u64;
        for &c in &cumulative {
            counts.push(c.saturating_sub(prev));
            prev = prev.max(c);
        }
        counts.push(snap.count().saturating_sub(prev));
        let (min, max) = if snap.is_empty() {
            (None, None)
        } else {
            (
                Some(snap.min() as f64 / scale),
                Some(snap.max() as f64 / scale),
            )
        };
        HistogramDataPoint {
            attributes,
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            count: snap.count(),
            sum: Some(exported_sum(snap.sum(), scale)),
            bucket_counts: counts,
            explicit_bounds: bounds.to_vec(),
            min,
            max,
            ..HistogramDataPoint::default()
        }
    }

    fn exponential_point(&self, attributes: Vec<KeyValue>) -> ExponentialHistogramDataPoint {
        let e = &self.enc.exp;
        let (min, max) = if e.count == 0 {
            (None, None)
        } else {
            (Some(e.min), Some(e.max))
        };
        ExponentialHistogramDataPoint {
            attributes,
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            count: e.count,
            sum: Some(e.sum),
            scale: e.scale,
            zero_count: e.zero_count,
            positive: Some(Buckets {
                offset: e.offset,
                bucket_counts: e.counts.clone(),
            }),
            negative: None,
            min,
            max,
            zero_threshold: 0.0,
            ..ExponentialHistogramDataPoint::default()
        }
    }
}

impl Visitor for Building<'_> {
    fn family(&mut self, d: &Arc<Descriptor>) -> bool {
        let temporality = self.enc.options.temporality.otlp();
        let data = match d.kind() {
            MetricKind::Counter => Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality,
                is_monotonic: true,
            }),
            MetricKind::Gauge => Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            MetricKind::Histogram => match self.enc.options.histograms {
                HistogramForm::Exponential(_) => Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: Vec::new(),
                    aggregation_temporality: temporality,
                }),
                HistogramForm::Explicit => Data::Histogram(Histogram {
                    data_points: Vec::new(),
                    aggregation_temporality: temporality,
                }),
            },
        };
        let metric = Metric {
            name: d.name().to_owned(),
            description: d.help().to_string(),
            unit: otlp_unit(d).to_owned(),
            data: Some(data),
            ..Metric::default()
        };
        self.current = Some((Arc::from(d.name()), metric));
        true
    }

    fn counter(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: u64) {
        let mut v = value;
        if self.enc.options.temporality == Temporality::Delta {
            if let Some(key) = self.key(labels) {
                if let Some(Prev::Counter(before)) = self.enc.delta_base(&key) {
                    v = value.saturating_sub(*before);
                }
                self.enc.pending.insert(key, Prev::Counter(value));
            }
        }
        let point = NumberDataPoint {
            attributes: self.attributes(d, labels),
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            value: Some(number_data_point::Value::AsInt(
                i64::try_from(v).unwrap_or(i64::MAX),
            )),
            ..NumberDataPoint::default()
        };
        if let Some(Data::Sum(s)) = self.data() {
            s.data_points.push(point);
        }
    }

    fn gauge(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: f64) {
        let point = NumberDataPoint {
            attributes: self.attributes(d, labels),
            time_unix_nano: self.now,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..NumberDataPoint::default()
        };
        if let Some(Data::Gauge(g)) = self.data() {
            g.data_points.push(point);
        }
    }

    fn histogram(&mut self, d: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        let attributes = self.attributes(d, labels);
        let delta = self.enc.options.temporality == Temporality::Delta;
        let explicit = self.enc.options.histograms == HistogramForm::Explicit;
        // Cumulative: straight from the live slots, nothing copied.
        if !delta && !explicit {
            self.enc.rebinner.rebin_view(d, h, &mut self.enc.exp);
            let p = self.exponential_point(attributes);
            if let Some(Data::ExponentialHistogram(e)) = self.data() {
                e.data_points.push(p);
            }
            return;
        }
        if !delta {
            // Per-bucket counts in the same pass: a slot belongs to the first bound whose last
            // slot is at or above it (the exposition's rule), else to the overflow bucket.
            let layout = d.layout();
            let last_slots: Vec<usize> = d
                .buckets()
                .iter()
                .map(|&b| match stored_bound(b, d.storage_scale()) {
                    Some(v) if v >= layout.max_value() => usize::MAX,
                    Some(v) => layout.index_of(v),
                    None => 0,
                })
                .collect();
            let mut counts = vec![0u64; last_slots.len() + 1];
            let mut k = 0usize;
            self.enc
                .rebinner
                .rebin_view_with(d, h, &mut self.enc.exp, |slot, n| {
                    while last_slots.get(k).is_some_and(|&l| slot > l) {
                        k += 1;
                    }
                    if let Some(c) = counts.get_mut(k) {
                        *c = c.saturating_add(n);
                    }
                });
            let e = &self.enc.exp;
            let (min, max) = if e.count == 0 {
                (None, None)
            } else {
                (Some(e.min), Some(e.max))
            };
            let p = HistogramDataPoint {
                attributes,
                start_time_unix_nano: self.start,
                time_unix_nano: self.now,
                count: e.count,
                sum: Some(e.sum),
                bucket_counts: counts,
                explicit_bounds: d.buckets().to_vec(),
                min,
                max,
                ..HistogramDataPoint::default()
            };
            if let Some(Data::Histogram(e)) = self.data() {
                e.data_points.push(p);
            }
            return;
        }
        let snap = h.snapshot();
        let snap = match (delta, self.key(labels)) {
            (true, Some(key)) => {
                let d = match self.enc.delta_base(&key) {
                    Some(Prev::Histogram(before)) => snap.delta(before),
                    _ => snap.clone(),
                };
                self.enc.pending.insert(key, Prev::Histogram(snap));
                d
            }
            _ => snap,
        };
        if explicit {
            let p = self.explicit_point(d, attributes, &snap);
            if let Some(Data::Histogram(e)) = self.data() {
                e.data_points.push(p);
            }
        } else {
            self.enc
                .rebinner
                .rebin_snapshot(&snap, d.storage_scale(), &mut self.enc.exp);
            let p = self.exponential_point(attributes);
            if let Some(Data::ExponentialHistogram(e)) = self.data() {
                e.data_points.push(p);
            }
        }
    }

    fn family_end(&mut self, _: &Descriptor) {
        if let Some((_, m)) = self.current.take() {
            let empty = match &m.data {
                Some(Data::Sum(s)) => s.data_points.is_empty(),
                Some(Data::Gauge(g)) => g.data_points.is_empty(),
                Some(Data::Histogram(h)) => h.data_points.is_empty(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.is_empty(),
                _ => true,
            };
            if !empty {
                self.metrics.push(m);
            }
        }
    }
}

/// The stored value of export bound `b` (as the Prometheus exposition computes it).
fn stored_bound(b: f64, per_unit: f64) -> Option<u64> {
    if b < 0.0 || b.is_nan() {
        return None;
    }
    let x = b * per_unit;
    let r = x.round();
    let stored = if (x - r).abs() <= r.abs() * 1e-12 {
        r
    } else {
        x.floor()
    };
    Some(stored as u64)
}

fn exported_sum(sum: u128, per_unit: f64) -> f64 {
    if sum < 1 << 53 {
        return sum as f64 / per_unit;
    }
    let p = (per_unit as u128).max(1);
    (sum / p) as f64 + (sum % p) as f64 / per_unit
}

// ---------------------------------------------------------------------------------------------
// The periodic push.

/// What the caller asks of the push thread.
enum Control {
    /// Push now; answer whether the collector took it.
    Flush(Duration, std_mpsc::SyncSender<bool>),
    /// Push now, then stop.
    Shutdown(Duration, std_mpsc::SyncSender<bool>),
}

/// Pushes the registry's metrics over OTLP every [`PeriodicConfig::interval`]
/// (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s), from its own thread.
///
/// - Recording never waits for it: a push only reads the registry's atomics, like a scrape.
/// - Memory is bounded: one request is built per push and dropped after it; nothing queues
///   while the collector is down. With cumulative temporality (the default) the first push
///   that gets through after an outage carries complete totals, so nothing is lost; with delta,
///   a push is committed only once the collector took it, so the next push covers the gap.
/// - A push retries per the OTLP rules ([`Transport`]) within
///   [`PeriodicConfig::timeout`]; ticks that pass while a push is still retrying are skipped.
///   Failures, retries, rejections and points not delivered are the transport's
///   self-metrics (`dwcp_telemetry_otlp_*{signal="metrics"}`).
/// - [`OtlpMetricsExporter::shutdown`] pushes once more and stops (a clean flush); dropping
///   the exporter does the same without waiting.
pub struct OtlpMetricsExporter {
    control: tokio::sync::mpsc::UnboundedSender<Control>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
    endpoint: String,
    periodic: PeriodicConfig,
}

impl std::fmt::Debug for OtlpMetricsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpMetricsExporter")
            .field("endpoint", &self.endpoint)
            .field("periodic", &self.periodic)
            .finish_non_exhaustive()
    }
}

/// Configures an [`OtlpMetricsExporter`]; anything not set is read from the environment.
#[derive(Debug, Default)]
#[must_use = "call .build()"]
pub struct OtlpMetricsExporterBuilder {
    exporter: Option<ExporterConfig>,
    periodic: Option<PeriodicConfig>,
    resource: Option<ResourceConfig>,
    component: Option<String>,
    temporality: Option<Temporality>,
    histograms: Option<HistogramForm>,
    retry: Option<RetryPolicy>,
}

impl OtlpMetricsExporterBuilder {
    /// Where and how to send (default [`ExporterConfig::from_env`] for metrics: the
    /// `OTEL_EXPORTER_OTLP_*` variables and their `_METRICS_` forms).
    pub fn exporter_config(mut self, config: ExporterConfig) -> Self {
        self.exporter = Some(config);
        self
    }
    /// Interval and per-push timeout (default [`PeriodicConfig::from_lookup`] over the
    /// environment).
    pub fn periodic_config(mut self, config: PeriodicConfig) -> Self {
        self.periodic = Some(config);
        self
    }
    /// The resource (default [`ResourceConfig::from_env`]). `service.version` defaults to the
    /// registry's `version`, `service.instance.id` to a random UUID.
    pub fn resource(mut self, resource: ResourceConfig) -> Self {
        self.resource = Some(resource);
        self
    }
    /// The DWCP component (`dwcp.component` resource attribute), unless the resource sets it.
    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }
    /// Temporality (default: `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, else
    /// cumulative; an unknown value is logged and ignored).
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = Some(temporality);
        self
    }
    /// Exponential (default) or explicit-bucket histograms.
    pub fn histograms(mut self, form: HistogramForm) -> Self {
        self.histograms = Some(form);
        self
    }
    /// The retry backoff (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Validate and start pushing `registry` (its self-metrics count the pushes).
    pub fn build(self, registry: &Registry) -> Result<OtlpMetricsExporter, OtlpConfigError> {
        self.build_with(registry, |k| std::env::var(k).ok())
    }

    fn build_with<F: Fn(&str) -> Option<String>>(
        self,
        registry: &Registry,
        lookup: F,
    ) -> Result<OtlpMetricsExporter, OtlpConfigError> {
        let exporter = match self.exporter {
            Some(c) => c,
            None => ExporterConfig::from_lookup(Signal::Metrics, &lookup)?,
        };
        if exporter.signal() != Signal::Metrics {
            return Err(OtlpConfigError::Invalid {
                var: "exporter_config".to_owned(),
                value: exporter.signal().to_string(),
                expected: "a configuration for Signal::Metrics",
            });
        }
        let periodic = match self.periodic {
            Some(p) if p.interval.is_zero() => {
                return Err(OtlpConfigError::Invalid {
                    var: "OTEL_METRIC_EXPORT_INTERVAL".to_owned(),
                    value: "0".to_owned(),
                    expected: "an interval of at least 1 millisecond",
                })
            }
            Some(p) => p,
            None => PeriodicConfig::from_lookup(&lookup)?,
        };
        let temporality = match self.temporality {
            Some(t) => t,
            None => Temporality::from_lookup(&lookup).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "temporality preference ignored");
                Temporality::Cumulative
            }),
        };
        let resource = match self.resource {
            Some(r) => r,
            None => {
                let (r, problem) = ResourceConfig::from_lookup(&lookup);
                if let Some(p) = problem {
                    tracing::warn!(error = %p, "OTEL_RESOURCE_ATTRIBUTES ignored");
                }
                r
            }
        };
        let mut resource =
            resource.with_default_attribute("service.instance.id", super::traces::instance_id());
        if registry.version() != "unknown" && !registry.version().is_empty() {
            resource = resource.with_default_attribute("service.version", registry.version());
        }
        if let Some(c) = self.component.filter(|c| !c.is_empty()) {
            resource = resource.with_default_attribute("dwcp.component", c);
        }
        let encoder = MetricsEncoder::new(MetricsOptions {
            temporality,
            histograms: self.histograms.unwrap_or_default(),
            resource: ResourceAttributes::default(),
        })
        .with_resource(super::traces::to_proto_resource(&resource));
        let retry = self.retry.unwrap_or_default();
        let endpoint = exporter.endpoint().to_owned();
        let (control, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<(), OtlpConfigError>>(1);
        let registry = registry.clone();
        let thread = std::thread::Builder::new()
            .name("dwcp-otlp-metrics".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(OtlpConfigError::Invalid {
                            var: "runtime".to_owned(),
                            value: e.to_string(),
                            expected: "a tokio runtime for the push thread",
                        }));
                        return;
                    }
                };
                rt.block_on(async move {
                    let transport = match Transport::with_retry(exporter, retry, &registry) {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let mut pusher = Pusher {
                        encoder,
                        transport,
                        registry,
                    };
                    pusher.run(periodic, control_rx).await;
                });
            })
            .map_err(|e| OtlpConfigError::Invalid {
                var: "thread".to_owned(),
                value: e.to_string(),
                expected: "the push thread to start",
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(OtlpConfigError::Invalid {
                    var: "thread".to_owned(),
                    value: "exited".to_owned(),
                    expected: "the push thread to start",
                });
            }
        }
        Ok(OtlpMetricsExporter {
            control,
            thread: Mutex::new(Some(thread)),
            shut_down: AtomicBool::new(false),
            endpoint,
            periodic,
        })
    }
}

impl OtlpMetricsExporter {
    /// A builder; what is not set comes from the environment.
    pub fn builder() -> OtlpMetricsExporterBuilder {
        OtlpMetricsExporterBuilder::default()
    }

    /// The URL metrics go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Interval and per-push timeout.
    pub fn periodic_config(&self) -> PeriodicConfig {
        self.periodic
    }

    /// Push now (besides the schedule) and wait at most `timeout` for the collector to take
    /// it; returns whether it did.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = std_mpsc::sync_channel(1);
        if self.control.send(Control::Flush(timeout, tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout + Duration::from_millis(100))
            .unwrap_or(false)
    }

    /// Push once more (at most `timeout`), then stop the push thread. Returns whether the
    /// last push was delivered; calling it again returns `true` at once.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return true;
        }
        let (tx, rx) = std_mpsc::sync_channel(1);
        if self.control.send(Control::Shutdown(timeout, tx)).is_err() {
            return false;
        }
        let ok = rx
            .recv_timeout(timeout + Duration::from_millis(100))
            .unwrap_or(false);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if t.is_finished() || ok {
                let _ = t.join();
            }
        }
        ok
    }
}

/// Starts an [`OtlpMetricsExporter`] for `registry` when the environment names an endpoint
/// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) and neither
/// `OTEL_SDK_DISABLED=true` nor `OTEL_METRICS_EXPORTER=none` is set; `Ok(None)` otherwise.
/// Everything else comes from the standard variables; `component` is the DWCP component.
pub fn init_metrics_from_env(
    registry: &Registry,
    component: &str,
) -> Result<Option<OtlpMetricsExporter>, OtlpConfigError> {
    init_metrics_from_lookup(|k| std::env::var(k).ok(), registry, component)
}

/// [`init_metrics_from_env`] over any variable lookup (for tests and embedding).
pub fn init_metrics_from_lookup<F: Fn(&str) -> Option<String>>(
    lookup: F,
    registry: &Registry,
    component: &str,
) -> Result<Option<OtlpMetricsExporter>, OtlpConfigError> {
    let is = |k: &str, v: &str| lookup(k).is_some_and(|x| x.trim().eq_ignore_ascii_case(v));
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_METRICS_EXPORTER", "none") {
        return Ok(None);
    }
    if !endpoint_configured(Signal::Metrics, &lookup) {
        return Ok(None);
    }
    OtlpMetricsExporter::builder()
        .component(component)
        .build_with(registry, lookup)
        .map(Some)
}

impl Drop for OtlpMetricsExporter {
    fn drop(&mut self) {
        // Closing the control channel makes the thread push once more and stop.
        if !self.shut_down.load(Ordering::Acquire) {
            let (tx, _rx) = std_mpsc::sync_channel(1);
            let timeout = self.periodic.timeout;
            let _ = self.control.send(Control::Shutdown(timeout, tx));
        }
    }
}

/// The push thread's state.
struct Pusher {
    encoder: MetricsEncoder,
    transport: Transport,
    registry: Registry,
}

impl Pusher {
    async fn run(
        &mut self,
        periodic: PeriodicConfig,
        mut control: tokio::sync::mpsc::UnboundedReceiver<Control>,
    ) {
        let start = tokio::time::Instant::now() + periodic.interval;
        let mut ticks = tokio::time::interval_at(start, periodic.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    self.push(periodic.timeout).await;
                }
                c = control.recv() => match c {
                    Some(Control::Flush(timeout, reply)) => {
                        let ok = self.push(timeout).await;
                        let _ = reply.try_send(ok);
                    }
                    Some(Control::Shutdown(timeout, reply)) => {
                        let ok = self.push(timeout).await;
                        let _ = reply.try_send(ok);
                        return;
                    }
                    None => {
                        self.push(periodic.timeout).await;
                        return;
                    }
                },
            }
        }
    }

    /// Build one request from the registry as it is now, send it, commit it if delivered.
    async fn push(&mut self, deadline: Duration) -> bool {
        let request = self.encoder.build(&self.registry, SystemTime::now());
        let result = self.transport.send(&request, deadline).await;
        let delivered = result.outcome.is_delivered();
        if delivered {
            self.encoder.commit();
        } else {
            tracing::debug!(outcome = ?result.outcome, "OTLP metrics push not delivered");
        }
        delivered
    }
}
