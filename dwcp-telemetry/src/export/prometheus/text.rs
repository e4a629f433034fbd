//! The text encoders: Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! Cost is linear in series × exported `le` buckets plus the histograms' non-empty slots,
//! never in the number of recorded samples: each histogram series is one merge of its sorted
//! non-empty slots against the family's sorted bounds.

use std::fmt::Write as _;

use std::sync::Arc;

use crate::histogram::{Layout, Snapshot};
use crate::registry::{
    Descriptor, FamilySnapshot, HistogramView, MetricKind, RegionCounts, Registry, Unit, Value,
    Visitor,
};

/// Where a histogram series' counts come from.
enum Source<'v, 's> {
    Live(HistogramView<'v>),
    Snapshot(&'s Snapshot),
}

/// The encoder as a [`Visitor`] of a registry.
struct Streaming<'e> {
    enc: &'e mut TextEncoder,
    out: &'e mut String,
}

impl Visitor for Streaming<'_> {
    fn family(&mut self, descriptor: &Arc<Descriptor>) -> bool {
        self.enc.start_family(descriptor, self.out);
        true
    }
    fn counter(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: u64) {
        self.enc.write_counter(d, labels, value, self.out);
    }
    fn gauge(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: f64) {
        self.enc.write_gauge(d, labels, value, self.out);
    }
    fn histogram(&mut self, d: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        self.enc
            .write_histogram(d, labels, Source::Live(h), self.out);
    }
}

/// Content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text`), ending in `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }

    /// Choose a format from a request's `Accept` header: OpenMetrics when the client lists
    /// `application/openmetrics-text` with a quality at least that of `text/plain` and `*/*`,
    /// otherwise text 0.0.4 (also when the header is absent or unparseable).
    ///
    /// ```
    /// use dwcp_telemetry::export::prometheus::Format;
    /// // What Prometheus 2.x sends:
    /// let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
    ///             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// assert_eq!(Format::from_accept(Some(prom)), Format::OpenMetrics);
    /// assert_eq!(Format::from_accept(Some("text/plain")), Format::Text);
    /// assert_eq!(Format::from_accept(None), Format::Text);
    /// ```
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut om_q = 0.0f64;
        let mut text_q = 0.0f64;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let mut q = 1.0f64;
            for p in parts {
                let p = p.trim();
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .unwrap_or(0.0);
                }
            }
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                om_q = om_q.max(q);
            } else if media.eq_ignore_ascii_case("text/plain")
                || media == "*/*"
                || media.eq_ignore_ascii_case("text/*")
            {
                text_q = text_q.max(q);
            }
        }
        if om_q > 0.0 && om_q >= text_q {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Render everything in `registry` (including its self-metrics) in `format`.
///
/// ```
/// use dwcp_telemetry::export::prometheus::{render, Format};
/// use dwcp_telemetry::Registry;
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let errors = registry
///     .counter("dwcp_errors_total", "Errors by type")
///     .dynamic_labels(["type"])
///     .register()?;
/// errors.with_labels_or_overflow(&["timeout \"slow\""]).inc_by(3);
/// let text = render(&registry, Format::Text);
/// let expected = concat!(
///     "# HELP dwcp_errors_total Errors by type\n",
///     "# TYPE dwcp_errors_total counter\n",
///     "dwcp_errors_total{version=\"3.0.0\",type=\"timeout \\\"slow\\\"\"} 3\n",
/// );
/// assert!(text.starts_with(expected));
/// let om = render(&registry, Format::OpenMetrics);
/// assert!(om.starts_with("# HELP dwcp_errors Errors by type\n# TYPE dwcp_errors counter\n"));
/// assert!(om.ends_with("# EOF\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    TextEncoder::new(format).encode_registry(registry, &mut out);
    out
}

/// Writes [`FamilySnapshot`]s as exposition text. Keeps scratch buffers between calls, so one
/// encoder reused across scrapes allocates (almost) nothing once warm.
#[derive(Debug, Default)]
pub struct TextEncoder {
    format: Format,
    /// `name="value",` for the constant labels, escaped once per `encode` call.
    const_prefix: String,
    /// The current series' label block (without braces, no trailing comma).
    labels: String,
    /// The current line head (`name_bucket{labels,`).
    head: String,
    /// Per-family `le` bounds: (the last slot index the bound holds, `le="…"} `), `None` for
    /// a bound below zero (it holds nothing).
    les: Vec<(Option<usize>, String)>,
}

impl TextEncoder {
    /// An encoder for `format`.
    pub fn new(format: Format) -> Self {
        TextEncoder {
            format,
            ..TextEncoder::default()
        }
    }

    /// The format this encoder writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Collect `registry` and append its exposition to `out`, through the registry's one
    /// collection path ([`Registry::visit`]). Histograms are streamed from their live slots,
    /// so nothing is copied: the cost is the touched slots plus the text written.
    pub fn encode_registry(&mut self, registry: &Registry, out: &mut String) {
        self.set_const_labels(&registry.const_labels());
        registry.visit(&mut Streaming { enc: self, out });
        self.finish(out);
    }

    /// Append the exposition of `families` to `out`; every series carries `const_labels`
    /// first (pass [`Registry::const_labels`]). In OpenMetrics the text ends with `# EOF`.
    pub fn encode(
        &mut self,
        families: &[FamilySnapshot],
        const_labels: &[(&str, &str)],
        out: &mut String,
    ) {
        self.set_const_labels(const_labels);
        for family in families {
            let desc = &*family.descriptor;
            self.start_family(desc, out);
            for s in &family.series {
                match &s.value {
                    Value::Counter(v) => self.write_counter(desc, &s.label_values, *v, out),
                    Value::Gauge(v) => self.write_gauge(desc, &s.label_values, *v, out),
                    Value::Histogram(snap) => {
                        self.write_histogram(desc, &s.label_values, Source::Snapshot(snap), out)
                    }
                }
            }
        }
        self.finish(out);
    }

    fn set_const_labels(&mut self, const_labels: &[(&str, &str)]) {
        self.const_prefix.clear();
        for (name, value) in const_labels {
            push_label(&mut self.const_prefix, name, value);
        }
    }

    fn finish(&self, out: &mut String) {
        if self.format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
    }

    /// The family name and the counter sample suffix of `desc` in this format.
    fn names<'d>(&self, desc: &'d Descriptor) -> (&'d str, &'static str) {
        let name = desc.name();
        match desc.kind() {
            MetricKind::Counter => (name.strip_suffix("_total").unwrap_or(name), "_total"),
            _ => (name, ""),
        }
    }

    /// Write a family's metadata and, for histograms, prepare its `le` bounds.
    fn start_family(&mut self, desc: &Descriptor, out: &mut String) {
        let (family_name, _) = self.names(desc);
        let counter_text = desc.kind() == MetricKind::Counter && self.format == Format::Text;
        self.write_metadata(desc, family_name, counter_text, out);
        if desc.kind() == MetricKind::Histogram {
            self.prepare_bounds(desc);
        }
    }

    fn write_counter(&mut self, desc: &Descriptor, labels: &[String], v: u64, out: &mut String) {
        let (family_name, suffix) = self.names(desc);
        self.set_labels(desc, labels);
        out.push_str(family_name);
        out.push_str(suffix);
        self.push_braced_labels(out);
        out.push(' ');
        out.push_str(itoa::Buffer::new().format(v));
        out.push('\n');
    }

    fn write_gauge(&mut self, desc: &Descriptor, labels: &[String], v: f64, out: &mut String) {
        self.set_labels(desc, labels);
        out.push_str(desc.name());
        self.push_braced_labels(out);
        out.push(' ');
        push_value(out, v);
        out.push('\n');
    }

    fn write_metadata(
        &self,
        desc: &Descriptor,
        family_name: &str,
        counter_text: bool,
        out: &mut String,
    ) {
        let om = self.format == Format::OpenMetrics;
        let total = if counter_text { "_total" } else { "" };
        let help = desc.help();
        if !help.is_empty() {
            out.push_str("# HELP ");
            out.push_str(family_name);
            out.push_str(total);
            out.push(' ');
            escape_help(out, &help, om);
            out.push('\n');
        }
        out.push_str("# TYPE ");
        out.push_str(family_name);
        out.push_str(total);
        out.push(' ');
        out.push_str(desc.kind().as_str());
        out.push('\n');
        if om && desc.unit() != Unit::None {
            let unit = desc.unit().as_str();
            // OpenMetrics requires the family name to end in `_<unit>`; say nothing otherwise.
            if family_name
                .strip_suffix(unit)
                .is_some_and(|rest| rest.ends_with('_'))
            {
                out.push_str("# UNIT ");
                out.push_str(family_name);
                out.push(' ');
                out.push_str(unit);
                out.push('\n');
            }
        }
    }

    fn prepare_bounds(&mut self, desc: &Descriptor) {
        let scale = desc.storage_scale();
        let layout = desc.layout();
        self.les.clear();
        for &b in desc.buckets() {
            let mut le = String::with_capacity(24);
            le.push_str("le=\"");
            push_le(&mut le, b, self.format);
            le.push_str("\"} ");
            // Slots with index ≤ this one start at or below the bound.
            let slot = stored_bound(b, scale).map(|v| {
                if v >= layout.max_value() {
                    usize::MAX
                } else {
                    layout.index_of(v)
                }
            });
            self.les.push((slot, le));
        }
    }

    fn write_histogram(
        &mut self,
        desc: &Descriptor,
        labels: &[String],
        source: Source<'_, '_>,
        out: &mut String,
    ) {
        let scale = desc.storage_scale();
        let layout = desc.layout();
        let name = desc.name();
        self.set_labels(desc, labels);
        self.head.clear();
        self.head.push_str(name);
        self.head.push_str("_bucket{");
        self.head.push_str(&self.labels);
        if !self.labels.is_empty() {
            self.head.push(',');
        }
        let (count, sum) = match source {
            // Streaming: read the live slots in place, one pass, nothing copied.
            Source::Live(hist) => {
                let exact = hist.exact_sum().is_some();
                let (count, estimate) = self.write_buckets(out, layout, !exact, |b| {
                    hist.for_each_region(|first, counts| b.region(first, counts))
                });
                // Like `snapshot()`, read the exact sum after the slots.
                let sum = match hist.exact_sum() {
                    Some(s) => u128::from(s),
                    None => estimate,
                };
                (count, sum)
            }
            Source::Snapshot(snap) => {
                let slots = snap.layout();
                let (count, _) = self.write_buckets(out, layout, false, |b| {
                    for (lowest, _, n) in snap.iter() {
                        b.slot(slots.index_of(lowest), n);
                    }
                });
                (count, snap.sum())
            }
        };
        let mut num = itoa::Buffer::new();
        out.push_str(&self.head);
        out.push_str("le=\"+Inf\"} ");
        out.push_str(num.format(count));
        out.push('\n');

        out.push_str(name);
        out.push_str("_sum");
        self.push_braced_labels(out);
        out.push(' ');
        push_value(out, scaled_sum(sum, scale));
        out.push('\n');

        out.push_str(name);
        out.push_str("_count");
        self.push_braced_labels(out);
        out.push(' ');
        out.push_str(num.format(count));
        out.push('\n');
    }

    /// Write the finite `le` lines of one series from its non-zero slots (ascending slot
    /// index), which `visit` feeds to [`Buckets::slot`]. Returns the total count and, if
    /// `estimate_sum`, the sum estimated from slot midpoints (else 0).
    fn write_buckets(
        &self,
        out: &mut String,
        layout: Layout,
        estimate_sum: bool,
        visit: impl FnOnce(&mut Buckets<'_>),
    ) -> (u64, u128) {
        let mut b = Buckets {
            les: &self.les,
            head: &self.head,
            out,
            layout,
            estimate_sum,
            k: 0,
            seen: 0,
            sum: 0,
            next: usize::MAX,
        };
        // Bounds below zero hold nothing; they sort first.
        while let Some((None, le)) = b.les.get(b.k) {
            b.emit(le, 0);
            b.k += 1;
        }
        b.next = b.les.get(b.k).and_then(|(s, _)| *s).unwrap_or(usize::MAX);
        visit(&mut b);
        let seen = b.seen;
        for (_, le) in &b.les[b.k.min(b.les.len())..] {
            b.emit(le, seen);
        }
        (b.seen, b.sum)
    }

    fn set_labels(&mut self, desc: &Descriptor, values: &[String]) {
        self.labels.clear();
        self.labels.push_str(&self.const_prefix);
        for (name, value) in desc.label_names().iter().zip(values.iter()) {
            push_label(&mut self.labels, name, value);
        }
        if self.labels.ends_with(',') {
            self.labels.pop();
        }
    }

    fn push_braced_labels(&self, out: &mut String) {
        if !self.labels.is_empty() {
            out.push('{');
            out.push_str(&self.labels);
            out.push('}');
        }
    }
}

/// Cumulative `le` lines of one histogram series, fed its non-zero slots in ascending order.
struct Buckets<'a> {
    les: &'a [(Option<usize>, String)],
    head: &'a str,
    out: &'a mut String,
    layout: Layout,
    estimate_sum: bool,
    /// The next bound to write.
    k: usize,
    /// Values seen so far.
    seen: u64,
    /// Sum estimated from slot midpoints (stored units).
    sum: u128,
    /// The slot index of bound `k` (`usize::MAX` when none is left).
    next: usize,
}

impl Buckets<'_> {
    #[inline]
    fn slot(&mut self, index: usize, n: u64) {
        if index > self.next {
            self.close_bounds_below(index);
        }
        self.seen = self.seen.saturating_add(n);
        if self.estimate_sum {
            self.sum += u128::from(n) * u128::from(self.layout.midpoint_of(index));
        }
    }

    /// All slots of one allocated region, starting at slot `first`, in one branch-free pass
    /// (zero slots included: cheaper than mispredicting on which slots are empty).
    #[inline]
    fn region(&mut self, first: usize, counters: RegionCounts<'_>) {
        if first > self.next {
            self.close_bounds_below(first);
        }
        let mut seen = self.seen;
        let mut weighted = 0u128; // Σ j · n_j
        let mut total = 0u64; // Σ n_j
        for (j, n) in counters.iter().enumerate() {
            seen = seen.wrapping_add(n);
            total = total.wrapping_add(n);
            weighted += j as u128 * u128::from(n);
            if first + j == self.next {
                self.seen = seen;
                self.close_bounds_below(first + j + 1);
            }
        }
        self.seen = seen;
        if self.estimate_sum && total != 0 {
            // Slot first + j has midpoint lowest(first) + j·width + width/2.
            let width = u128::from(self.layout.width_of(first));
            let mid0 = u128::from(self.layout.midpoint_of(first));
            self.sum += mid0 * u128::from(total) + width * weighted;
        }
    }

    #[cold]
    fn close_bounds_below(&mut self, index: usize) {
        while let Some((Some(bound), le)) = self.les.get(self.k) {
            if index <= *bound {
                break;
            }
            self.emit(le, self.seen);
            self.k += 1;
        }
        self.next = self
            .les
            .get(self.k)
            .and_then(|(s, _)| *s)
            .unwrap_or(usize::MAX);
    }

    fn emit(&mut self, le: &str, n: u64) {
        self.out.push_str(self.head);
        self.out.push_str(le);
        self.out.push_str(itoa::Buffer::new().format(n));
        self.out.push('\n');
    }
}

/// `name="escaped value",`
fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push_str("\",");
}

/// Append `value` escaped for a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`,
/// and a carriage return is written as an escaped line feed `\n` too (a raw CR is legal in
/// both formats, but common parsers split lines on it, and neither format has an escape
/// for it). Everything else (tabs, any Unicode) is written as is.
pub fn escape_label_value(out: &mut String, value: &str) {
    escape(out, value, true);
}

/// Append `help` escaped for a `# HELP` line: `\` → `\\` and line feed → `\n`; in OpenMetrics
/// also `"` → `\"` (text 0.0.4 has no such escape and must not get one).
pub fn escape_help(out: &mut String, help: &str, openmetrics: bool) {
    escape(out, help, openmetrics);
}

fn escape(out: &mut String, s: &str, quote: bool) {
    let needs = |b: u8| b == b'\\' || b == b'\n' || b == b'\r' || (quote && b == b'"');
    if !s.bytes().any(needs) {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if needs(b) {
            out.push_str(&s[start..i]);
            out.push_str(match b {
                b'\\' => "\\\\",
                b'\n' | b'\r' => "\\n",
                _ => "\\\"",
            });
            start = i + 1;
        }
    }
    out.push_str(&s[start..]);
}

/// A sample value: integers without a fraction, `NaN`, `+Inf`, `-Inf`, otherwise the
/// shortest representation that reads back exactly.
pub(crate) fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// An `le` value: OpenMetrics' canonical form keeps a `.0` on integers (`1.0`); text 0.0.4
/// writes them as Go's client does (`1`).
fn push_le(out: &mut String, b: f64, format: Format) {
    match format {
        Format::OpenMetrics if b.is_finite() => {
            let _ = write!(out, "{b:?}");
        }
        _ => push_value(out, b),
    }
}

/// The largest stored value an exported bound `b` holds (`value ≤ b`), or `None` if `b < 0`.
/// The stored value of export bound `b` at `per_unit` stored integers per exported unit.
pub(crate) fn stored_bound(b: f64, per_unit: f64) -> Option<u64> {
    if b < 0.0 || b.is_nan() {
        return None;
    }
    let x = b * per_unit;
    let r = x.round();
    // 0.005 s × 1e9 is 4_999_999.999…: bounds within float noise of an integer are that integer.
    let stored = if (x - r).abs() <= r.abs() * 1e-12 {
        r
    } else {
        x.floor()
    };
    Some(stored as u64) // saturating cast
}

/// A stored sum in the exported unit, at `per_unit` stored integers per unit (an integer:
/// 1, 1e6 or 1e9): one division while the sum is exact in `f64`, else split into whole units
/// and the rest, so the result stays exact to the stored resolution as long as `f64` allows.
fn scaled_sum(sum: u128, per_unit: f64) -> f64 {
    if sum < 1 << 53 {
        // Exactly representable: one correctly rounded division.
        return sum as f64 / per_unit;
    }
    let p = (per_unit as u128).max(1);
    (sum / p) as f64 + (sum % p) as f64 / per_unit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut o = String::new();
        escape_label_value(&mut o, s);
        o
    }

    #[test]
    fn label_escaping_exact() {
        assert_eq!(esc(r#"a"b"#), r#"a\"b"#);
        assert_eq!(esc("a\\b"), "a\\\\b");
        assert_eq!(esc("a\nb"), "a\\nb");
        assert_eq!(esc("tab\there"), "tab\there");
        assert_eq!(esc("ünïcødé ✓"), "ünïcødé ✓");
        assert_eq!(esc(""), "");
        assert_eq!(esc("\\\"\n"), "\\\\\\\"\\n");
    }

    #[test]
    fn help_escaping_differs_by_format() {
        let mut t = String::new();
        escape_help(&mut t, "say \"hi\"\\\n", false);
        assert_eq!(t, "say \"hi\"\\\\\\n");
        let mut o = String::new();
        escape_help(&mut o, "say \"hi\"\\\n", true);
        assert_eq!(o, "say \\\"hi\\\"\\\\\\n");
    }

    #[test]
    fn values_and_bounds() {
        let f = |v: f64| {
            let mut s = String::new();
            push_value(&mut s, v);
            s
        };
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(3.0), "3");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(0.005), "0.005");
        assert_eq!(f(1e300), "1e300");
        assert_eq!(f(1e-7), "1e-7");
        let le = |b: f64, fmt| {
            let mut s = String::new();
            push_le(&mut s, b, fmt);
            s
        };
        assert_eq!(le(1.0, Format::OpenMetrics), "1.0");
        assert_eq!(le(1.0, Format::Text), "1");
        assert_eq!(le(0.005, Format::OpenMetrics), "0.005");
        assert_eq!(stored_bound(0.005, 1e9), Some(5_000_000));
        assert_eq!(stored_bound(0.1, 1e9), Some(100_000_000));
        assert_eq!(stored_bound(0.3, 1e6), Some(300_000));
        assert_eq!(stored_bound(2.5, 1.0), Some(2));
        assert_eq!(stored_bound(-1.0, 1.0), None);
        assert_eq!(scaled_sum(1_500_000_001, 1e9), 1.500000001);
        assert_eq!(scaled_sum(12_500_000, 1e6), 12.5);
        assert_eq!(scaled_sum(3_497_984, 1e6), 3.497984);
        assert_eq!(scaled_sum(1500, 1.0), 1500.0);
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text; version=1.0.0")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_accept(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Text
        );
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(Format::from_accept(Some("*/*")), Format::Text);
        assert_eq!(Format::from_accept(Some("garbage;;;q=x,")), Format::Text);
    }
}
