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
//! [`exponential`](crate::export::exponential) (scale ≤ 8, at most 160 buckets by default;
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
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

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
    /// let h = registry.histogram("dwcp_request_duration_seconds", "Latency").register()?.handle();
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
