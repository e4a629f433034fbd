//! The Prometheus protobuf exposition (feature `protobuf`): length-delimited
//! `io.prometheus.client.MetricFamily` messages, with histograms carrying both native
//! (sparse exponential) buckets and the classic `le` buckets.
//!
//! A Prometheus started with `--enable-feature=native-histograms` asks for this format in its
//! `Accept` header ([`PROTOBUF_CONTENT_TYPE`]); the `/metrics` server answers with it then and
//! only then, so text and OpenMetrics scrapes are unchanged.
//!
//! What is exported is what the text formats export (same names, `_total` on counters, the
//! registry's constant labels first, the same `le` bounds and the same rule for values on a
//! bound), plus, for each histogram family whose policy leaves
//! [`MetricPolicy::native_histogram`](crate::MetricPolicy::native_histogram) on, the native
//! buckets of [`exponential`](crate::export::exponential): schema = the chosen scale (≤ 8,
//! at most 160 buckets by default), Prometheus bucket index = OTLP index + 1 (Prometheus'
//! bucket `i` is `(base^(i−1), base^i]`), integer counts delta-encoded. The zero bucket's
//! threshold is `2^-128` (as client_golang's default; it also marks the histogram as native for
//! every Prometheus version), far below any value our storage can hold, so it holds exactly the
//! recorded zeros.
//!
//! The message types below are written from `client_model`'s `metrics.proto` (proto2 and
//! proto3 share the wire format), with the field numbers of that file.

use std::sync::Arc;

use prost::Message;

use crate::export::exponential::{ExponentialConfig, ExponentialHistogram, Rebinner};
use crate::registry::{Descriptor, HistogramView, MetricKind, Registry, Visitor};

use super::text::stored_bound;

/// Content type of the protobuf exposition (length-delimited `MetricFamily` messages).
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Zero-bucket threshold of native histograms: client_golang's default, `2^-128`.
pub const NATIVE_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    /// Uses [`Metric::counter`].
    Counter = 0,
    /// Uses [`Metric::gauge`].
    Gauge = 1,
    /// Uses [`Metric::summary`].
    Summary = 2,
    /// Uses [`Metric::untyped`].
    Untyped = 3,
    /// Uses [`Metric::histogram`].
    Histogram = 4,
    /// Uses [`Metric::histogram`].
    GaugeHistogram = 5,
}

/// `io.prometheus.client.LabelPair`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `io.prometheus.client.Gauge`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Gauge {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// `io.prometheus.client.Counter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    /// The total.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// An exemplar.
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    /// When the counter was created.
    #[prost(message, optional, tag = "3")]
    pub created_timestamp: Option<Timestamp>,
}

/// `io.prometheus.client.Quantile`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Quantile {
    /// The quantile (0 to 1).
    #[prost(double, tag = "1")]
    pub quantile: f64,
    /// Its value.
    #[prost(double, tag = "2")]
    pub value: f64,
}

/// `io.prometheus.client.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// Number of observations.
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// Quantiles.
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    /// When the summary was created.
    #[prost(message, optional, tag = "4")]
    pub created_timestamp: Option<Timestamp>,
}

/// `io.prometheus.client.Untyped`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Untyped {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
}

/// `io.prometheus.client.Histogram`: classic buckets (`bucket`) and native buckets (the
/// `schema`, `zero_*`, `*_span` and `*_delta` fields) in one message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Number of observations.
    #[prost(uint64, tag = "1")]
    pub sample_count: u64,
    /// Float count (overrides `sample_count` if > 0).
    #[prost(double, tag = "4")]
    pub sample_count_float: f64,
    /// Sum of observations.
    #[prost(double, tag = "2")]
    pub sample_sum: f64,
    /// Classic buckets, ascending `upper_bound`; `+Inf` optional.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    /// When the histogram was created.
    #[prost(message, optional, tag = "15")]
    pub created_timestamp: Option<Timestamp>,
    /// Native schema (−4 to 8): each power of two holds `2^schema` buckets.
    #[prost(sint32, tag = "5")]
    pub schema: i32,
    /// Breadth of the zero bucket.
    #[prost(double, tag = "6")]
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    #[prost(uint64, tag = "7")]
    pub zero_count: u64,
    /// Float zero count.
    #[prost(double, tag = "8")]
    pub zero_count_float: f64,
    /// Spans of negative buckets.
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    /// Negative bucket counts, delta-encoded.
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    /// Negative bucket counts, absolute (float histograms).
    #[prost(double, repeated, tag = "11")]
    pub negative_count: Vec<f64>,
    /// Spans of positive buckets (a no-op span `{0, 0}` marks an empty native histogram).
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    /// Positive bucket counts, each the difference to the previous bucket's (to 0 for the
    /// first), across spans.
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
    /// Positive bucket counts, absolute (float histograms).
    #[prost(double, repeated, tag = "14")]
    pub positive_count: Vec<f64>,
    /// Native-histogram exemplars.
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

/// `io.prometheus.client.Bucket` (classic).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    /// Observations ≤ `upper_bound`.
    #[prost(uint64, tag = "1")]
    pub cumulative_count: u64,
    /// Float cumulative count.
    #[prost(double, tag = "4")]
    pub cumulative_count_float: f64,
    /// Inclusive upper bound.
    #[prost(double, tag = "2")]
    pub upper_bound: f64,
    /// An exemplar.
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

/// `io.prometheus.client.BucketSpan`: `length` consecutive native buckets, `offset` after the
/// previous span's end (or at index `offset`, for the first).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span, or the first span's starting index.
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// `io.prometheus.client.Exemplar`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Exemplar labels.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// Value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// When it was observed.
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `io.prometheus.client.Metric`: one series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Labels.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    /// For gauges.
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    /// For counters.
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    /// For summaries.
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    /// For untyped metrics.
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    /// For histograms.
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<Histogram>,
    /// Sample timestamp in ms (unset: the scrape time).
    #[prost(int64, tag = "6")]
    pub timestamp_ms: i64,
}

/// `io.prometheus.client.MetricFamily`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// Family name (counters include `_total`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Help text.
    #[prost(string, tag = "2")]
    pub help: String,
    /// The type.
    #[prost(enumeration = "MetricType", tag = "3")]
    pub r#type: i32,
    /// The series.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    /// Unit (newer client_model versions).
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// Whether an `Accept` header asks for the protobuf exposition: it lists
/// `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily` and
/// `encoding=delimited`, at a quality above 0 and at least that of every other listed type.
///
/// ```
/// use dwcp_telemetry::export::prometheus::protobuf::accepts_protobuf;
/// // What Prometheus 2.x sends with `--enable-feature=native-histograms`:
/// let prom = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
///             encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// assert!(accepts_protobuf(Some(prom)));
/// assert!(!accepts_protobuf(Some("text/plain;version=0.0.4")));
/// assert!(!accepts_protobuf(None));
/// ```
pub fn accepts_protobuf(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut pb_q = 0.0f64;
    let mut other_q = 0.0f64;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let (mut q, mut proto, mut delimited) = (1.0f64, false, false);
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("q") {
                q = v
                    .parse::<f64>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(0.0);
            } else if k.eq_ignore_ascii_case("proto") {
                proto = v == "io.prometheus.client.MetricFamily";
            } else if k.eq_ignore_ascii_case("encoding") {
                delimited = v.eq_ignore_ascii_case("delimited");
            }
        }
        if media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
            if proto && delimited {
                pb_q = pb_q.max(q);
            }
        } else if !media.is_empty() && media != "*/*" {
            other_q = other_q.max(q);
        }
    }
    pb_q > 0.0 && pb_q >= other_q
}

/// Render everything in `registry` (self-metrics included) as the protobuf exposition.
///
/// ```
/// use dwcp_telemetry::export::prometheus::protobuf::{render_protobuf, MetricFamily};
/// use dwcp_telemetry::Registry;
/// use prost::Message;
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let h = registry.histogram("dwcp_request_duration_seconds", "Latency").register()?.handle();
/// h.record(3_000_000); // 3 ms
/// let bytes = render_protobuf(&registry);
/// let first = MetricFamily::decode_length_delimited(&bytes[..])?;
/// assert_eq!(first.name, "dwcp_request_duration_seconds");
/// let hist = first.metric[0].histogram.as_ref().unwrap();
/// assert_eq!((hist.sample_count, hist.schema), (1, 8));
/// assert_eq!(hist.positive_delta, vec![1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render_protobuf(registry: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    ProtobufEncoder::default().encode_registry(registry, &mut out);
    out
}

/// Writes a registry as length-delimited `MetricFamily` messages; keeps its scratch space
/// between calls.
#[derive(Debug, Default)]
pub struct ProtobufEncoder {
    rebinner: Rebinner,
    exp: ExponentialHistogram,
    const_labels: Vec<LabelPair>,
    family: Option<MetricFamily>,
    /// Per-family classic bounds: (exported bound, last slot index it holds).
    bounds: Vec<(f64, Option<usize>)>,
    /// Classic cumulative counts of the current series.
    cumulative: Vec<u64>,
}

impl ProtobufEncoder {
    /// An encoder whose native histograms use `config` for their scale.
    pub fn new(config: ExponentialConfig) -> Self {
        ProtobufEncoder {
            rebinner: Rebinner::new(config),
            ..ProtobufEncoder::default()
        }
    }

    /// Append the exposition of `registry` to `out`, through [`Registry::visit`].
    pub fn encode_registry(&mut self, registry: &Registry, out: &mut Vec<u8>) {
        self.const_labels = registry
            .const_labels()
            .into_iter()
            .map(|(n, v)| LabelPair {
                name: n.to_owned(),
                value: v.to_owned(),
            })
            .collect();
        registry.visit(&mut Streaming { enc: self, out });
    }

    fn labels(&self, desc: &Descriptor, values: &[String]) -> Vec<LabelPair> {
        let mut l = Vec::with_capacity(self.const_labels.len() + values.len());
        l.extend(self.const_labels.iter().cloned());
        for (name, value) in desc.label_names().iter().zip(values) {
            l.push(LabelPair {
                name: name.clone(),
                value: value.clone(),
            });
        }
        l
    }

    fn start(&mut self, desc: &Descriptor) {
        let (name, ty) = match desc.kind() {
            MetricKind::Counter => {
                let base = desc.name().strip_suffix("_total").unwrap_or(desc.name());
                (format!("{base}_total"), MetricType::Counter)
            }
            MetricKind::Gauge => (desc.name().to_owned(), MetricType::Gauge),
            MetricKind::Histogram => (desc.name().to_owned(), MetricType::Histogram),
        };
        self.family = Some(MetricFamily {
            name,
            help: desc.help().to_string(),
            r#type: ty as i32,
            metric: Vec::new(),
            unit: String::new(),
        });
        if desc.kind() == MetricKind::Histogram {
            let layout = desc.layout();
            let scale = desc.storage_scale();
            self.bounds.clear();
            for &b in desc.buckets() {
                let slot = stored_bound(b, scale).map(|v| {
                    if v >= layout.max_value() {
                        usize::MAX
                    } else {
                        layout.index_of(v)
                    }
                });
                self.bounds.push((b, slot));
            }
        }
    }

    fn push(&mut self, metric: Metric) {
        if let Some(f) = self.family.as_mut() {
            f.metric.push(metric);
        }
    }

    fn histogram(&mut self, desc: &Descriptor, labels: &[String], view: HistogramView<'_>) {
        // Classic cumulative counts, gathered in the same pass as the native buckets.
        let cumulative = &mut self.cumulative;
        cumulative.clear();
        cumulative.resize(self.bounds.len(), 0);
        let bounds = &self.bounds;
        let mut k = bounds.iter().take_while(|(_, s)| s.is_none()).count();
        let mut seen = 0u64;
        self.rebinner
            .rebin_view_with(desc, view, &mut self.exp, |index, n| {
                while let Some(&(_, Some(last))) = bounds.get(k) {
                    if index <= last {
                        break;
                    }
                    cumulative[k] = seen;
                    k += 1;
                }
                seen = seen.saturating_add(n);
            });
        for c in cumulative.iter_mut().skip(k) {
            *c = seen;
        }
        let e = &self.exp;
        let mut h = Histogram {
            sample_count: e.count,
            sample_sum: e.sum,
            bucket: bounds
                .iter()
                .zip(cumulative.iter())
                .map(|(&(b, _), &c)| Bucket {
                    cumulative_count: c,
                    upper_bound: b,
                    ..Bucket::default()
                })
                .collect(),
            ..Histogram::default()
        };
        if desc.native_histogram() {
            native_buckets(e, &mut h);
        }
        let metric = Metric {
            label: self.labels(desc, labels),
            histogram: Some(h),
            ..Metric::default()
        };
        self.push(metric);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if let Some(f) = self.family.take() {
            if f.metric.is_empty() {
                return;
            }
            // Encoding into a Vec only fails for lack of capacity, which a Vec grows.
            let _ = f.encode_length_delimited(out);
        }
    }
}

/// Fill the native fields of `h` from `e`: Prometheus index = OTLP index + 1; spans split at
/// gaps of more than two empty buckets (shorter gaps are cheaper sent as zero deltas).
pub fn native_buckets(e: &ExponentialHistogram, h: &mut Histogram) {
    h.schema = e.scale;
    h.zero_threshold = NATIVE_ZERO_THRESHOLD;
    h.zero_count = e.zero_count;
    h.positive_span.clear();
    h.positive_delta.clear();
    let mut prev = 0i64;
    let mut gap = 0i32;
    let mut end = 0i32; // Prometheus index after the last span
    let mut open = false;
    for (k, &c) in e.counts.iter().enumerate() {
        if c == 0 {
            gap += 1;
            continue;
        }
        let index = e.offset.saturating_add(k as i32).saturating_add(1);
        let count = i64::try_from(c).unwrap_or(i64::MAX);
        if open && gap <= 2 {
            for _ in 0..gap {
                h.positive_delta.push(-prev);
                prev = 0;
            }
            if let Some(s) = h.positive_span.last_mut() {
                s.length += gap as u32 + 1;
            }
        } else {
            let offset = if open { index - end } else { index };
            h.positive_span.push(BucketSpan { offset, length: 1 });
            open = true;
        }
        h.positive_delta.push(count.wrapping_sub(prev));
        prev = count;
        gap = 0;
        end = index + 1;
    }
    if h.positive_span.is_empty() {
        // The no-op span: a native histogram with nothing recorded yet.
        h.positive_span.push(BucketSpan::default());
    }
}

struct Streaming<'e> {
    enc: &'e mut ProtobufEncoder,
    out: &'e mut Vec<u8>,
}

impl Visitor for Streaming<'_> {
    fn family(&mut self, descriptor: &Arc<Descriptor>) -> bool {
        self.enc.start(descriptor);
        true
    }
    fn counter(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: u64) {
        let m = Metric {
            label: self.enc.labels(d, labels),
            counter: Some(Counter {
                value: value as f64,
                ..Counter::default()
            }),
            ..Metric::default()
        };
        self.enc.push(m);
    }
    fn gauge(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: f64) {
        let m = Metric {
            label: self.enc.labels(d, labels),
            gauge: Some(Gauge { value }),
            ..Metric::default()
        };
        self.enc.push(m);
    }
    fn histogram(&mut self, d: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        self.enc.histogram(d, labels, h);
    }
    fn family_end(&mut self, _: &Descriptor) {
        self.enc.end(self.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(mut bytes: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let f = MetricFamily::decode_length_delimited(&mut bytes).unwrap();
            out.push(f);
        }
        out
    }

    #[test]
    fn accept_negotiation() {
        let prom242 = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(accepts_protobuf(Some(prom242)));
        assert!(!accepts_protobuf(Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
        )));
        assert!(!accepts_protobuf(Some(
            "application/vnd.google.protobuf;proto=other;encoding=delimited"
        )));
        assert!(!accepts_protobuf(Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,text/plain;q=0.5"
        )));
        assert!(!accepts_protobuf(Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"
        )));
        assert!(!accepts_protobuf(Some("garbage;;;=,q=x")));
        assert!(!accepts_protobuf(Some("*/*")));
    }

    #[test]
    fn spans_and_deltas_exact() {
        let e = ExponentialHistogram {
            scale: 3,
            offset: -2,
            counts: vec![1, 0, 3, 0, 0, 0, 2, 5],
            count: 11,
            ..Default::default()
        };
        let mut h = Histogram::default();
        native_buckets(&e, &mut h);
        assert_eq!(h.schema, 3);
        // OTLP -2 → Prometheus -1: buckets -1 and 1 in one span (gap of 1), then 5, 6.
        assert_eq!(
            h.positive_span,
            vec![
                BucketSpan {
                    offset: -1,
                    length: 3
                },
                BucketSpan {
                    offset: 3,
                    length: 2
                }
            ]
        );
        assert_eq!(h.positive_delta, vec![1, -1, 3, -1, 3]);
        let mut empty = Histogram::default();
        native_buckets(&ExponentialHistogram::default(), &mut empty);
        assert_eq!(empty.positive_span, vec![BucketSpan::default()]);
        assert!(empty.positive_delta.is_empty());
    }

    #[test]
    fn registry_round_trip_and_opt_out() {
        use crate::{MetricPolicy, NameMatch};
        let reg = Registry::builder()
            .version("3.0.0")
            .policy(
                NameMatch::exact("classic_only_seconds"),
                MetricPolicy::new().native_histogram(false),
            )
            .build()
            .unwrap();
        let lat = reg
            .histogram("dwcp_request_duration_seconds", "Latency")
            .dynamic_labels(["operation"])
            .exact_sum(true)
            .register()
            .unwrap()
            .with_labels_or_overflow(&["migrate"]);
        for ns in [0u64, 3_000_000, 3_000_000, 30_000_000, 1_000_000_000] {
            lat.record(ns);
        }
        let classic = reg
            .histogram("classic_only_seconds", "Classic")
            .register()
            .unwrap()
            .handle();
        classic.record(5_000_000);
        reg.counter("dwcp_requests_total", "Requests")
            .register()
            .unwrap()
            .handle()
            .inc_by(7);
        reg.gauge("dwcp_up", "Up")
            .register()
            .unwrap()
            .handle()
            .set(1.5);
        let fams = decode_all(&render_protobuf(&reg));
        let f = &fams[0];
        assert_eq!(f.name, "dwcp_request_duration_seconds");
        assert_eq!(f.r#type, MetricType::Histogram as i32);
        let m = &f.metric[0];
        assert_eq!(
            m.label,
            vec![
                LabelPair {
                    name: "version".into(),
                    value: "3.0.0".into()
                },
                LabelPair {
                    name: "operation".into(),
                    value: "migrate".into()
                }
            ]
        );
        let h = m.histogram.as_ref().unwrap();
        assert_eq!(h.sample_count, 5);
        assert_eq!(h.sample_sum, 1.036);
        assert_eq!(h.zero_count, 1);
        assert_eq!(h.zero_threshold, NATIVE_ZERO_THRESHOLD);
        // Classic buckets: Prometheus' defaults, same counts as the text format.
        let classic_counts: Vec<(f64, u64)> = h
            .bucket
            .iter()
            .map(|b| (b.upper_bound, b.cumulative_count))
            .collect();
        assert_eq!(
            classic_counts,
            vec![
                (0.005, 3),
                (0.01, 3),
                (0.025, 3),
                (0.05, 4),
                (0.1, 4),
                (0.25, 4),
                (0.5, 4),
                (1.0, 5),
                (2.5, 5),
                (5.0, 5),
                (10.0, 5)
            ]
        );
        // Native buckets: 3 ms to 1 s is ~8.4 powers of two: scale 4 (≤ 160 buckets).
        assert_eq!(h.schema, 4);
        let total: i64 = {
            let (mut c, mut t) = (0i64, 0i64);
            for d in &h.positive_delta {
                c += d;
                t += c;
            }
            t
        };
        assert_eq!(total, 4);
        // The last native bucket is the one whose upper bound is exactly 1 s (index 0).
        let last_index = {
            let (mut idx, mut last) = (0i32, 0i32);
            for s in &h.positive_span {
                idx += s.offset;
                last = idx + s.length as i32 - 1;
                idx += s.length as i32;
            }
            last
        };
        assert_eq!(last_index, 0);

        let c = fams
            .iter()
            .find(|f| f.name == "classic_only_seconds")
            .unwrap();
        let ch = c.metric[0].histogram.as_ref().unwrap();
        assert!(ch.positive_span.is_empty() && ch.positive_delta.is_empty());
        assert_eq!(ch.zero_threshold, 0.0);
        assert_eq!(ch.sample_count, 1);
        // 5 ms is on the first bound (0.005): inside it, as in the text formats.
        assert_eq!(ch.bucket[0].cumulative_count, 1);
        assert_eq!(ch.bucket[1].cumulative_count, 1);

        let r = fams
            .iter()
            .find(|f| f.name == "dwcp_requests_total")
            .unwrap();
        assert_eq!(r.r#type, MetricType::Counter as i32);
        assert_eq!(r.metric[0].counter.as_ref().unwrap().value, 7.0);
        let g = fams.iter().find(|f| f.name == "dwcp_up").unwrap();
        assert_eq!(g.metric[0].gauge.unwrap().value, 1.5);
    }
}
