//! `GET /status`: one self-contained HTML page a person can read, served by the service itself.
//!
//! The page shows, from the registry and a bounded [`Journal`] of recent events:
//!
//! - **operations**: every histogram series, with its call rate, error ratio, p50 / p90 / p99 /
//!   p99.9 / max and its latency distribution drawn from the full HDR snapshot (server-side
//!   SVG, log-spaced bins);
//! - **circuit breakers**: from the `dwcp_circuit_breaker_*` families (state, failure and
//!   slow-call rates, trips, resets) and the journal's recent transitions;
//! - **health**: `dwcp_component_status{component, status}`;
//! - **SLA**: `dwcp_sla_compliance{sli, window}`, `dwcp_sla_error_budget_remaining_ratio` and
//!   the GO / CAUTION / NO-GO `dwcp_sla_decision`, in the seeds' green / yellow / red;
//! - **anomalies** and **recent sampled spans** from the journal.
//!
//! The page refreshes itself every five seconds by fetching `/status?fragment=1` (the same
//! content without the page frame) and swapping it in; machines can read `/status.json`.
//! Everything taken from labels, names or events is HTML-escaped, and the page is served with
//! a Content-Security-Policy that allows only its own inline style and its one inline script
//! (by nonce): no external request, no CDN.
//!
//! **Rates** are per second over the time since the previous render of the same
//! [`StatusPage`] (the first render: since the registry was built), like `/metrics/summary`.
//!
//! **Error ratio** of an operation: a counter family with a `status` label whose other label
//! names equal the histogram's (for `#[instrument_dwcp]`, `dwcp_requests_total` beside
//! `dwcp_request_duration_seconds`), when exactly one such family exists; errors are the
//! series with `status` in `error`, `panic`, `failed`, `failure` or `timeout`. Otherwise the
//! ratio is not shown.
//!
//! **Cost**: one collection of the registry per render, as a scrape; at most
//! [`MAX_OPERATIONS`] operations are drawn (the busiest), the rest are counted.

mod html;
mod journal;

pub use journal::{
    AnomalyEvent, Journal, JournalObserver, OperationSpans, SpanEntry, TransitionEvent,
    DEFAULT_CAPACITY, DEFAULT_SPANS_PER_OPERATION, DEFAULT_SPAN_OPERATIONS,
};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::json;
use super::summary::{SeriesSummary, Summarizer};
use crate::registry::{FamilySnapshot, MetricKind, Registry, Unit, Value};

/// Series summaries by (name, labels), for their rates.
type Rates<'a> = HashMap<(&'a str, &'a [(String, String)]), &'a SeriesSummary>;

/// The most operations drawn on the page (the busiest by rate; the rest are counted).
pub const MAX_OPERATIONS: usize = 200;
/// Bins of each latency distribution.
pub const DISTRIBUTION_BINS: usize = 24;

/// `status` label values counted as errors in an operation's error ratio.
const ERROR_STATUSES: [&str; 5] = ["error", "panic", "failed", "failure", "timeout"];

/// One histogram series as an operation row.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRow {
    /// The histogram family.
    pub metric: String,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// The exported unit.
    pub unit: Unit,
    /// Recorded values per second over the window.
    pub rate: f64,
    /// Errors ÷ calls over the window, when a request counter with `status` matches.
    pub error_ratio: Option<f64>,
    /// Number of values recorded (lifetime).
    pub count: u64,
    /// p50, p90, p99, p99.9, in the exported unit.
    pub quantiles: [f64; 4],
    /// Largest value, in the exported unit.
    pub max: f64,
    /// The distribution: `(bin upper bound, count)` over log-spaced bins from min to max.
    pub distribution: Vec<(f64, u64)>,
}

/// One circuit breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerRow {
    /// The `circuit` label.
    pub circuit: String,
    /// `closed`, `open`, `half_open` or `unknown`.
    pub state: &'static str,
    /// Failure rate in percent (`None` below the minimum calls, exported as −1).
    pub failure_rate: Option<f64>,
    /// Slow-call rate in percent (`None` below the minimum calls).
    pub slow_call_rate: Option<f64>,
    /// Trips so far.
    pub trips: u64,
    /// Resets so far.
    pub resets: u64,
}

/// One component's health.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentHealth {
    /// The `component` label.
    pub component: String,
    /// The `status` label whose gauge is set (`healthy`, `degraded`, `unhealthy`, ...).
    pub status: String,
}

/// One SLI against its target in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaRow {
    /// The SLI (`availability`, `latency_p99`, ...).
    pub sli: String,
    /// The window (`5m`, `1h`, ...).
    pub window: String,
    /// The exported compliance value.
    pub compliance: f64,
}

/// The SLA section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SlaView {
    /// Compliance per SLI and window.
    pub rows: Vec<SlaRow>,
    /// Error budget remaining, a ratio.
    pub error_budget_remaining: Option<f64>,
    /// `GO`, `CAUTION` or `NO-GO`, when the service exports a decision.
    pub decision: Option<&'static str>,
}

/// Everything the page shows, at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSnapshot {
    /// The registry's `version`.
    pub version: String,
    /// Seconds since the registry was built.
    pub uptime_seconds: f64,
    /// Seconds the rates cover.
    pub window_seconds: f64,
    /// Operations, busiest first (at most [`MAX_OPERATIONS`]).
    pub operations: Vec<OperationRow>,
    /// Operations not drawn.
    pub operations_omitted: usize,
    /// Circuit breakers by name.
    pub breakers: Vec<BreakerRow>,
    /// Components by name.
    pub health: Vec<ComponentHealth>,
    /// The SLA section.
    pub sla: SlaView,
    /// Recent anomalies, newest first.
    pub anomalies: Vec<AnomalyEvent>,
    /// Recent breaker transitions, newest first.
    pub transitions: Vec<TransitionEvent>,
    /// Recent sampled spans per operation.
    pub spans: Vec<OperationSpans>,
}

/// Renders the status page of one registry (see the module docs).
#[derive(Debug)]
pub struct StatusPage {
    summarizer: Summarizer,
    journal: Arc<Journal>,
}

impl StatusPage {
    /// A page for `registry`, reading recent events from `journal`.
    pub fn new(registry: Registry, journal: Arc<Journal>) -> Self {
        StatusPage {
            summarizer: Summarizer::new(registry),
            journal,
        }
    }

    /// The journal this page reads.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Collects the registry and the journal; closes the rate window.
    pub fn snapshot(&self) -> StatusSnapshot {
        let (summary, families) = self.summarizer.summary_and_families();
        let by_name: HashMap<&str, &FamilySnapshot> =
            families.iter().map(|f| (f.descriptor.name(), f)).collect();
        let rates: Rates<'_> = summary
            .series
            .iter()
            .map(|s| ((s.name.as_str(), s.labels.as_slice()), s))
            .collect();

        let mut operations = Vec::new();
        for f in &families {
            let d = &f.descriptor;
            if d.kind() != MetricKind::Histogram || d.name().starts_with("dwcp_telemetry_") {
                continue;
            }
            let requests = request_family(&families, d.label_names());
            for s in &f.series {
                let Value::Histogram(h) = &s.value else {
                    continue;
                };
                let labels = pairs(d.label_names(), &s.label_values);
                let rate = rates
                    .get(&(d.name(), labels.as_slice()))
                    .map_or(0.0, |r| r.rate);
                let error_ratio = requests.and_then(|r| error_ratio(r, &labels, &rates));
                let scale = d.storage_scale();
                let q = |p: f64| h.quantile(p) as f64 / scale;
                operations.push(OperationRow {
                    metric: d.name().to_owned(),
                    labels,
                    unit: d.unit(),
                    rate,
                    error_ratio,
                    count: h.count(),
                    quantiles: [q(0.5), q(0.9), q(0.99), q(0.999)],
                    max: h.max() as f64 / scale,
                    distribution: distribution(h, scale),
                });
            }
        }
        operations.sort_by(|a, b| {
            b.rate
                .total_cmp(&a.rate)
                .then(b.count.cmp(&a.count))
                .then_with(|| a.metric.cmp(&b.metric))
                .then_with(|| a.labels.cmp(&b.labels))
        });
        let operations_omitted = operations.len().saturating_sub(MAX_OPERATIONS);
        operations.truncate(MAX_OPERATIONS);

        StatusSnapshot {
            version: summary.version.clone(),
            uptime_seconds: summary.uptime_seconds,
            window_seconds: summary.window_seconds,
            operations,
            operations_omitted,
            breakers: breakers(&by_name),
            health: health(&by_name),
            sla: sla(&by_name),
            anomalies: self.journal.anomalies(),
            transitions: self.journal.transitions(),
            spans: self.journal.spans(),
        }
    }

    /// The whole page. `nonce` goes into the inline script's `nonce` attribute and must match
    /// the response's Content-Security-Policy (see [`StatusPage::content_security_policy`]).
    pub fn render_html(&self, nonce: &str) -> String {
        html::page(&self.snapshot(), nonce)
    }

    /// The page's content without its frame (what the page's refresh script fetches).
    pub fn render_fragment(&self) -> String {
        html::fragment(&self.snapshot())
    }

    /// The snapshot as JSON (`/status.json`).
    pub fn render_json(&self) -> String {
        to_json(&self.snapshot())
    }

    /// The Content-Security-Policy header value for a page rendered with `nonce`.
    pub fn content_security_policy(nonce: &str) -> String {
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; \
             connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

fn pairs(names: &[String], values: &[String]) -> Vec<(String, String)> {
    names.iter().cloned().zip(values.iter().cloned()).collect()
}

/// The one counter family with a `status` label whose other labels are `names`.
fn request_family<'a>(
    families: &'a [FamilySnapshot],
    names: &[String],
) -> Option<&'a FamilySnapshot> {
    let mut found = families.iter().filter(|f| {
        let d = &f.descriptor;
        d.kind() == MetricKind::Counter
            && d.label_names().iter().any(|n| n == "status")
            && d.label_names().len() == names.len() + 1
            && d.label_names()
                .iter()
                .filter(|n| *n != "status")
                .eq(names.iter())
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn error_ratio(
    requests: &FamilySnapshot,
    labels: &[(String, String)],
    rates: &Rates<'_>,
) -> Option<f64> {
    let d = &requests.descriptor;
    let status_at = d.label_names().iter().position(|n| n == "status")?;
    let (mut total, mut errors) = (0.0, 0.0);
    for s in &requests.series {
        let matches = d
            .label_names()
            .iter()
            .zip(s.label_values.iter())
            .enumerate()
            .filter(|(i, _)| *i != status_at)
            .all(|(_, (n, v))| labels.iter().any(|(ln, lv)| ln == n && lv == v));
        if !matches {
            continue;
        }
        let series_labels = pairs(d.label_names(), &s.label_values);
        let rate = rates
            .get(&(d.name(), series_labels.as_slice()))
            .map_or(0.0, |r| r.rate);
        total += rate;
        if ERROR_STATUSES.contains(&s.label_values[status_at].as_str()) {
            errors += rate;
        }
    }
    (total > 0.0).then(|| errors / total)
}

/// Log-spaced bins from the smallest to the largest recorded value; each HDR slot's count goes
/// to the bin holding its highest value.
fn distribution(h: &crate::Snapshot, scale: f64) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let lo = (h.min().max(1)) as f64;
    let hi = (h.max().max(1)) as f64;
    let n = DISTRIBUTION_BINS;
    let ratio = if hi > lo {
        (hi / lo).ln() / n as f64
    } else {
        0.0
    };
    let bound = |i: usize| {
        if ratio == 0.0 {
            hi
        } else {
            lo * ((i + 1) as f64 * ratio).exp()
        }
    };
    let mut bins: Vec<(f64, u64)> = (0..n).map(|i| (bound(i) / scale, 0)).collect();
    for (_, high, count) in h.iter() {
        let v = (high.max(1)) as f64;
        let i = if ratio == 0.0 || v <= lo {
            0
        } else {
            (((v / lo).ln() / ratio).ceil() as usize)
                .saturating_sub(1)
                .min(n - 1)
        };
        bins[i].1 += count;
    }
    bins
}

fn label<'a>(f: &'a FamilySnapshot, values: &'a [String], name: &str) -> Option<&'a str> {
    let i = f.descriptor.label_names().iter().position(|n| n == name)?;
    values.get(i).map(String::as_str)
}

fn number(v: &Value) -> f64 {
    match v {
        Value::Counter(c) => *c as f64,
        Value::Gauge(g) => *g,
        _ => f64::NAN,
    }
}

fn per_circuit(
    by_name: &HashMap<&str, &FamilySnapshot>,
    metric: &str,
    into: &mut BTreeMap<String, BreakerRow>,
    set: impl Fn(&mut BreakerRow, f64),
) {
    let Some(f) = by_name.get(metric) else {
        return;
    };
    for s in &f.series {
        let Some(circuit) = label(f, &s.label_values, "circuit") else {
            continue;
        };
        let row = into
            .entry(circuit.to_owned())
            .or_insert_with(|| BreakerRow {
                circuit: circuit.to_owned(),
                state: "unknown",
                failure_rate: None,
                slow_call_rate: None,
                trips: 0,
                resets: 0,
            });
        set(row, number(&s.value));
    }
}

fn breakers(by_name: &HashMap<&str, &FamilySnapshot>) -> Vec<BreakerRow> {
    let mut rows = BTreeMap::new();
    per_circuit(by_name, "dwcp_circuit_breaker_state", &mut rows, |r, v| {
        r.state = match v as i64 {
            0 => "closed",
            1 => "open",
            2 => "half_open",
            _ => "unknown",
        }
    });
    let rate = |v: f64| (v >= 0.0).then_some(v);
    per_circuit(
        by_name,
        "dwcp_circuit_breaker_failure_rate",
        &mut rows,
        |r, v| r.failure_rate = rate(v),
    );
    per_circuit(
        by_name,
        "dwcp_circuit_breaker_slow_call_rate",
        &mut rows,
        |r, v| r.slow_call_rate = rate(v),
    );
    // Counters may be registered with or without `_total` (both export `…_total`).
    for name in [
        "dwcp_circuit_breaker_trips",
        "dwcp_circuit_breaker_trips_total",
    ] {
        per_circuit(by_name, name, &mut rows, |r, v| r.trips += v as u64);
    }
    for name in [
        "dwcp_circuit_breaker_resets",
        "dwcp_circuit_breaker_resets_total",
    ] {
        per_circuit(by_name, name, &mut rows, |r, v| r.resets += v as u64);
    }
    rows.into_values().collect()
}

fn health(by_name: &HashMap<&str, &FamilySnapshot>) -> Vec<ComponentHealth> {
    let Some(f) = by_name.get("dwcp_component_status") else {
        return Vec::new();
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for s in &f.series {
        let (Some(c), Some(st)) = (
            label(f, &s.label_values, "component"),
            label(f, &s.label_values, "status"),
        ) else {
            continue;
        };
        if number(&s.value) > 0.0 {
            out.insert(c.to_owned(), st.to_owned());
        } else {
            out.entry(c.to_owned()).or_insert_with(|| "unknown".into());
        }
    }
    out.into_iter()
        .map(|(component, status)| ComponentHealth { component, status })
        .collect()
}

fn single_gauge(by_name: &HashMap<&str, &FamilySnapshot>, name: &str) -> Option<f64> {
    let f = by_name.get(name)?;
    f.series.first().map(|s| number(&s.value))
}

fn sla(by_name: &HashMap<&str, &FamilySnapshot>) -> SlaView {
    let mut rows = Vec::new();
    if let Some(f) = by_name.get("dwcp_sla_compliance") {
        for s in &f.series {
            let (Some(sli), Some(window)) = (
                label(f, &s.label_values, "sli"),
                label(f, &s.label_values, "window"),
            ) else {
                continue;
            };
            rows.push(SlaRow {
                sli: sli.to_owned(),
                window: window.to_owned(),
                compliance: number(&s.value),
            });
        }
    }
    rows.sort_by(|a, b| (&a.sli, &a.window).cmp(&(&b.sli, &b.window)));
    SlaView {
        rows,
        error_budget_remaining: single_gauge(by_name, "dwcp_sla_error_budget_remaining_ratio"),
        decision: single_gauge(by_name, "dwcp_sla_decision").map(decision_name),
    }
}

/// The exported `dwcp_sla_decision` value as its name.
fn decision_name(v: f64) -> &'static str {
    match v as i64 {
        0 => "GO",
        1 => "CAUTION",
        _ => "NO-GO",
    }
}

fn opt(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) => json::number(out, v),
        None => out.push_str("null"),
    }
}

fn labels_json(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        json::key(out, k, i == 0);
        json::string(out, v);
    }
    out.push('}');
}

/// The `/status.json` document: the [`StatusSnapshot`]'s fields, in the exported units.
fn to_json(s: &StatusSnapshot) -> String {
    let mut o = String::with_capacity(4096 + s.operations.len() * 256);
    o.push('{');
    json::key(&mut o, "version", true);
    json::string(&mut o, &s.version);
    json::key(&mut o, "uptime_seconds", false);
    json::number(&mut o, s.uptime_seconds);
    json::key(&mut o, "window_seconds", false);
    json::number(&mut o, s.window_seconds);
    json::key(&mut o, "operations", false);
    o.push('[');
    for (i, r) in s.operations.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        json::key(&mut o, "metric", true);
        json::string(&mut o, &r.metric);
        json::key(&mut o, "labels", false);
        labels_json(&mut o, &r.labels);
        json::key(&mut o, "unit", false);
        json::string(&mut o, r.unit.as_str());
        json::key(&mut o, "rate", false);
        json::number(&mut o, r.rate);
        json::key(&mut o, "error_ratio", false);
        opt(&mut o, r.error_ratio);
        json::key(&mut o, "count", false);
        json::number(&mut o, r.count as f64);
        for (k, v) in ["p50", "p90", "p99", "p999"].iter().zip(r.quantiles) {
            json::key(&mut o, k, false);
            json::number(&mut o, v);
        }
        json::key(&mut o, "max", false);
        json::number(&mut o, r.max);
        o.push('}');
    }
    o.push(']');
    json::key(&mut o, "operations_omitted", false);
    json::number(&mut o, s.operations_omitted as f64);
    json::key(&mut o, "breakers", false);
    o.push('[');
    for (i, b) in s.breakers.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        json::key(&mut o, "circuit", true);
        json::string(&mut o, &b.circuit);
        json::key(&mut o, "state", false);
        json::string(&mut o, b.state);
        json::key(&mut o, "failure_rate", false);
        opt(&mut o, b.failure_rate);
        json::key(&mut o, "slow_call_rate", false);
        opt(&mut o, b.slow_call_rate);
        json::key(&mut o, "trips", false);
        json::number(&mut o, b.trips as f64);
        json::key(&mut o, "resets", false);
        json::number(&mut o, b.resets as f64);
        o.push('}');
    }
    o.push(']');
    json::key(&mut o, "health", false);
    o.push('{');
    for (i, c) in s.health.iter().enumerate() {
        json::key(&mut o, &c.component, i == 0);
        json::string(&mut o, &c.status);
    }
    o.push('}');
    json::key(&mut o, "sla", false);
    o.push('{');
    json::key(&mut o, "decision", true);
    match s.sla.decision {
        Some(d) => json::string(&mut o, d),
        None => o.push_str("null"),
    }
    json::key(&mut o, "error_budget_remaining", false);
    opt(&mut o, s.sla.error_budget_remaining);
    json::key(&mut o, "compliance", false);
    o.push('[');
    for (i, r) in s.sla.rows.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        json::key(&mut o, "sli", true);
        json::string(&mut o, &r.sli);
        json::key(&mut o, "window", false);
        json::string(&mut o, &r.window);
        json::key(&mut o, "compliance", false);
        json::number(&mut o, r.compliance);
        o.push('}');
    }
    o.push_str("]}");
    json::key(&mut o, "anomalies", false);
    o.push('[');
    for (i, a) in s.anomalies.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        json::key(&mut o, "at_unix", true);
        json::number(&mut o, a.at_unix);
        json::key(&mut o, "metric", false);
        json::string(&mut o, &a.metric);
        json::key(&mut o, "severity", false);
        json::string(&mut o, a.severity);
        json::key(&mut o, "z", false);
        json::number(&mut o, a.z);
        json::key(&mut o, "value", false);
        json::number(&mut o, a.value);
        o.push('}');
    }
    o.push(']');
    json::key(&mut o, "transitions", false);
    o.push('[');
    for (i, t) in s.transitions.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('{');
        json::key(&mut o, "at_unix", true);
        json::number(&mut o, t.at_unix);
        json::key(&mut o, "circuit", false);
        json::string(&mut o, &t.circuit);
        json::key(&mut o, "from", false);
        json::string(&mut o, &t.from);
        json::key(&mut o, "to", false);
        json::string(&mut o, &t.to);
        o.push('}');
    }
    o.push(']');
    o.push('}');
    o
}
