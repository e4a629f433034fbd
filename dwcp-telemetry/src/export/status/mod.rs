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
//! **Cost**: one visit of the registry per render, as a scrape (histograms are read in place,
//! never copied); at most
//! [`MAX_OPERATIONS`] operations are drawn (the busiest), the rest are counted.

mod html;
mod journal;

pub use journal::{
    AnomalyEvent, Journal, JournalObserver, OperationSpans, SpanEntry, TransitionEvent,
    DEFAULT_CAPACITY, DEFAULT_SPANS_PER_OPERATION, DEFAULT_SPAN_OPERATIONS,
};

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::json;
use crate::registry::{Descriptor, HistogramView, MetricKind, Registry, Unit, Visitor};

/// The most operations drawn on the page (the busiest by rate; the rest are counted).
pub const MAX_OPERATIONS: usize = 100;
/// The most bars in a latency distribution.
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
    /// The distribution: `(bin upper bound, count)` over log-spaced bins (a quarter of an HDR
    /// region each, about a fifth of an octave, merged in pairs down to at most
    /// [`DISTRIBUTION_BINS`]) from the smallest recorded value's to the largest's.
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
    registry: Registry,
    journal: Arc<Journal>,
    window: Mutex<Window>,
}

/// The previous render's totals, for rates. Keyed by the address of a series' label-values
/// `Arc`, which the registry keeps for the series' life (the map holds a clone, so the address
/// cannot be reused while it is a key).
#[derive(Debug)]
struct Window {
    at: Instant,
    totals: Totals,
}

/// Series totals by label-`Arc` address.
type Totals = HashMap<usize, (Arc<[String]>, u64), BuildHasherDefault<AddressHasher>>;

/// Hashes an address: a multiply by an odd constant, high bits first (addresses are aligned,
/// so their low bits carry nothing).
#[derive(Debug, Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(32);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(32);
    }
}

/// Families the page reads besides histograms: their series as (labels, value, increase since
/// the previous render; 0 for gauges).
#[derive(Debug)]
struct Fam {
    desc: Arc<Descriptor>,
    series: Vec<(Arc<[String]>, f64, u64)>,
}

/// One histogram series, read in place.
struct Hist {
    desc: Arc<Descriptor>,
    labels: Arc<[String]>,
    count: u64,
    rate: f64,
    quantiles: [f64; 4],
    max: f64,
    distribution: Bins,
}

/// A distribution of at most [`DISTRIBUTION_BINS`] bars, kept inline: every series read gets
/// one, and only the drawn rows' become a `Vec`.
#[derive(Clone, Copy)]
struct Bins {
    bins: [(f64, u64); DISTRIBUTION_BINS],
    len: usize,
}

impl Bins {
    const EMPTY: Bins = Bins {
        bins: [(0.0, 0); DISTRIBUTION_BINS],
        len: 0,
    };

    fn as_slice(&self) -> &[(f64, u64)] {
        &self.bins[..self.len]
    }
}

/// Reads what the page needs in one visit: no copy of any histogram.
struct Reader<'w> {
    window: &'w Window,
    secs: f64,
    totals: Totals,
    current: Option<Arc<Descriptor>>,
    keep: bool,
    pending: Option<Fam>,
    hists: Vec<Hist>,
    fams: HashMap<String, Fam>,
    slices: Vec<(usize, usize, u64)>,
}

impl Reader<'_> {
    /// The increase per second since the previous render; remembers `total`.
    /// The increase since the previous render; remembers `total`.
    fn increase(&mut self, labels: &Arc<[String]>, total: u64) -> u64 {
        let key = Arc::as_ptr(labels) as *const () as usize;
        let before = self.window.totals.get(&key).map_or(0, |e| e.1);
        self.totals.insert(key, (labels.clone(), total));
        total.saturating_sub(before)
    }

    fn per_second(&self, increase: u64) -> f64 {
        if self.secs > 0.0 {
            increase as f64 / self.secs
        } else {
            0.0
        }
    }

    fn scalar(&mut self, labels: &Arc<[String]>, value: f64, increase: u64) {
        if let Some(f) = &mut self.pending {
            f.series.push((labels.clone(), value, increase));
        }
    }
}

/// Whether the page reads a non-histogram family: request counters (a `status` label) and the
/// breaker, health and SLA families.
fn wanted(d: &Descriptor) -> bool {
    let n = d.name();
    (d.kind() == MetricKind::Counter && d.label_names().iter().any(|l| l == "status"))
        || n.starts_with("dwcp_circuit_breaker_")
        || n == "dwcp_component_status"
        || n.starts_with("dwcp_sla_")
}

impl Visitor for Reader<'_> {
    fn family(&mut self, descriptor: &Arc<Descriptor>) -> bool {
        self.keep = !descriptor.name().starts_with("dwcp_telemetry_")
            && (descriptor.kind() == MetricKind::Histogram || wanted(descriptor));
        self.current = Some(descriptor.clone());
        self.pending = (self.keep && descriptor.kind() != MetricKind::Histogram).then(|| Fam {
            desc: descriptor.clone(),
            series: Vec::new(),
        });
        self.keep
    }

    fn family_end(&mut self, descriptor: &Descriptor) {
        if let Some(f) = self.pending.take() {
            self.fams.insert(descriptor.name().to_owned(), f);
        }
    }

    fn counter(&mut self, _: &Descriptor, labels: &Arc<[String]>, value: u64) {
        let increase = self.increase(labels, value);
        self.scalar(labels, value as f64, increase);
    }

    fn gauge(&mut self, _: &Descriptor, labels: &Arc<[String]>, value: f64) {
        self.scalar(labels, value, 0);
    }

    fn histogram(&mut self, descriptor: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        let Some(desc) = self.current.clone() else {
            return;
        };
        let mut slices = std::mem::take(&mut self.slices);
        let read = read_histogram(&h, descriptor.storage_scale(), &mut slices);
        self.slices = slices;
        let increase = self.increase(labels, read.count);
        let rate = self.per_second(increase);
        self.hists.push(Hist {
            desc,
            labels: labels.clone(),
            count: read.count,
            rate,
            quantiles: read.quantiles,
            max: read.max,
            distribution: read.distribution,
        });
    }
}

/// What the page shows of one histogram series.
struct Read {
    count: u64,
    quantiles: [f64; 4],
    max: f64,
    distribution: Bins,
}

/// Slices per histogram region in the distribution: HDR regions double in value, so four
/// slices a region make bins about a fifth of an octave wide.
const SLICES_PER_REGION: usize = 4;

/// Reads a live histogram in place, without a branch per slot and without a copy. One pass
/// sums each quarter of each region (the distribution, log-scale by construction: regions
/// double in value); the quantiles, the smallest and the largest slot are then looked up only
/// in the slices that hold them. The quantiles are those of `Snapshot::quantile` (the highest
/// equivalent value of the slot holding the ceil(q·n)-th smallest value). Counts only grow,
/// so a value recorded between the passes can only move a result to a later slot of the
/// same slice.
fn read_histogram(
    h: &HistogramView<'_>,
    scale: f64,
    slices: &mut Vec<(usize, usize, u64)>,
) -> Read {
    let layout = h.layout();
    slices.clear();
    h.for_each_region(|first, counts| {
        let len = counts.len();
        let step = (len / SLICES_PER_REGION).max(1);
        let mut start = 0;
        while start < len {
            let end = (start + step).min(len);
            let sum = counts.slice(start, end).iter().sum();
            slices.push((first + start, first + end - 1, sum));
            start = end;
        }
    });
    let count: u64 = slices.iter().map(|r| r.2).sum();
    let (Some(first_nz), Some(last_nz)) = (
        slices.iter().position(|r| r.2 > 0),
        slices.iter().rposition(|r| r.2 > 0),
    ) else {
        return Read {
            count,
            quantiles: [0.0; 4],
            max: 0.0,
            distribution: Bins::EMPTY,
        };
    };
    // Which slice holds each rank, and the rank within it.
    let ranks = QS.map(|q| ((q * count as f64).ceil() as u64).clamp(1, count));
    let mut at = [(usize::MAX, 0u64); 4];
    let mut seen = 0u64;
    for (si, r) in slices.iter().enumerate() {
        for (k, &rank) in ranks.iter().enumerate() {
            if at[k].0 == usize::MAX && rank <= seen + r.2 {
                at[k] = (si, rank - seen);
            }
        }
        seen += r.2;
    }
    let last_slot = slices[last_nz].1;
    let mut max_slot = last_slot;
    let mut quantile_slots = [last_slot; 4];
    let wanted = |si: usize| si == last_nz || at.iter().any(|a| a.0 == si);
    let mut si = 0;
    h.for_each_region(|first, counts| {
        let len = counts.len();
        let step = (len / SLICES_PER_REGION).max(1);
        let mut start = 0;
        while start < len {
            let end = (start + step).min(len);
            if wanted(si) {
                let part = counts.slice(start, end);
                let slice = || part.iter().enumerate().map(|(j, c)| (start + j, c));
                if si == last_nz {
                    if let Some((j, _)) = slice().filter(|(_, c)| *c > 0).last() {
                        max_slot = first + j;
                    }
                }
                for (k, &(s, local_rank)) in at.iter().enumerate() {
                    if s == si {
                        let mut cum = 0;
                        for (j, c) in slice() {
                            cum += c;
                            if cum >= local_rank {
                                quantile_slots[k] = first + j;
                                break;
                            }
                        }
                    }
                }
            }
            si += 1;
            start = end;
        }
    });
    let value = |slot: usize| layout.highest_of(slot) as f64 / scale;
    // At most DISTRIBUTION_BINS bars: neighbouring slices merged in runs of a power of two
    // (each bar keeps its last slice's upper bound), with no allocation.
    let used = &slices[first_nz..=last_nz];
    let mut run = 1;
    while used.len().div_ceil(run) > DISTRIBUTION_BINS {
        run *= 2;
    }
    let mut distribution = Bins::EMPTY;
    for (bin, chunk) in distribution.bins.iter_mut().zip(used.chunks(run)) {
        *bin = (
            value(chunk[chunk.len() - 1].1),
            chunk.iter().map(|r| r.2).sum(),
        );
        distribution.len += 1;
    }
    Read {
        count,
        quantiles: quantile_slots.map(value),
        max: value(max_slot),
        distribution,
    }
}

/// The quantiles the page shows.
const QS: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

impl StatusPage {
    /// A page for `registry`, reading recent events from `journal`.
    pub fn new(registry: Registry, journal: Arc<Journal>) -> Self {
        let at = registry.started();
        StatusPage {
            registry,
            journal,
            window: Mutex::new(Window {
                at,
                totals: Totals::default(),
            }),
        }
    }

    /// The journal this page reads.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Reads the registry (one visit, no histogram copied) and the journal; closes the rate
    /// window.
    pub fn snapshot(&self) -> StatusSnapshot {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let secs = now.duration_since(window.at).as_secs_f64();
        let mut r = Reader {
            window: &window,
            secs,
            totals: Totals::with_capacity_and_hasher(window.totals.len(), Default::default()),
            current: None,
            keep: false,
            pending: None,
            // Last render's series count (histograms and counters): room enough, no regrowth.
            hists: Vec::with_capacity(window.totals.len()),
            fams: HashMap::new(),
            slices: Vec::new(),
        };
        self.registry.visit(&mut r);
        let Reader {
            totals,
            hists,
            fams,
            ..
        } = r;
        window.at = now;
        window.totals = totals;
        drop(window);

        // The busiest first; only the drawn rows get an error ratio and a distribution `Vec`.
        let busiest = |a: &&Hist, b: &&Hist| {
            b.rate
                .total_cmp(&a.rate)
                .then(b.count.cmp(&a.count))
                .then_with(|| a.desc.name().cmp(b.desc.name()))
                .then_with(|| a.labels.cmp(&b.labels))
        };
        let mut drawn: Vec<&Hist> = hists.iter().collect();
        let operations_omitted = drawn.len().saturating_sub(MAX_OPERATIONS);
        if operations_omitted > 0 {
            drawn.select_nth_unstable_by(MAX_OPERATIONS - 1, busiest);
            drawn.truncate(MAX_OPERATIONS);
        }
        drawn.sort_by(busiest);
        // Per histogram family, the error index of its request family (built once).
        let mut indexes: HashMap<&str, Option<ErrorIndex>> = HashMap::new();
        let operations = drawn
            .into_iter()
            .map(|h| {
                let index = indexes.entry(h.desc.name()).or_insert_with(|| {
                    request_family(&fams, h.desc.label_names()).map(error_index)
                });
                let error_ratio = index
                    .as_ref()
                    .and_then(|i| i.get(&values_key(h.labels.iter(), usize::MAX)))
                    .and_then(|&(total, err)| (total > 0).then(|| err as f64 / total as f64));
                OperationRow {
                    metric: h.desc.name().to_owned(),
                    labels: pairs(h.desc.label_names(), &h.labels),
                    unit: h.desc.unit(),
                    rate: h.rate,
                    error_ratio,
                    count: h.count,
                    quantiles: h.quantiles,
                    max: h.max,
                    distribution: h.distribution.as_slice().to_vec(),
                }
            })
            .collect();

        StatusSnapshot {
            version: self.registry.version().to_owned(),
            uptime_seconds: now.duration_since(self.registry.started()).as_secs_f64(),
            window_seconds: secs,
            operations,
            operations_omitted,
            breakers: breakers(&fams),
            health: health(&fams),
            sla: sla(&fams),
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
fn request_family<'a>(fams: &'a HashMap<String, Fam>, names: &[String]) -> Option<&'a Fam> {
    let mut found = fams.values().filter(|f| {
        let d = &f.desc;
        d.kind() == MetricKind::Counter
            && d.label_names().len() == names.len() + 1
            && d.label_names().iter().any(|n| n == "status")
            && d.label_names()
                .iter()
                .filter(|n| *n != "status")
                .eq(names.iter())
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Per label values (without `status`): (calls, errors) since the previous render.
/// Keyed by an FNV hash already: the map's hasher only mixes it.
type ErrorIndex = HashMap<u64, (u64, u64), BuildHasherDefault<AddressHasher>>;

/// A 64-bit FNV-1a key of label values, skipping position `skip` (the `status` label), with a
/// separator between values: no allocation. (A collision would only mislabel one ratio.)
fn values_key<'a>(values: impl Iterator<Item = &'a String>, skip: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, v) in values.enumerate() {
        if i == skip {
            continue;
        }
        for &b in v.as_bytes().iter().chain(&[0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Indexes a request family's rates by its label values without `status`: one pass.
fn error_index(requests: &Fam) -> ErrorIndex {
    let mut index = ErrorIndex::with_capacity_and_hasher(requests.series.len(), Default::default());
    let Some(status_at) = requests
        .desc
        .label_names()
        .iter()
        .position(|n| n == "status")
    else {
        return index;
    };
    for (values, _, increase) in &requests.series {
        let e = index
            .entry(values_key(values.iter(), status_at))
            .or_insert((0, 0));
        e.0 += increase;
        if ERROR_STATUSES.contains(&values[status_at].as_str()) {
            e.1 += increase;
        }
    }
    index
}

fn label<'a>(f: &Fam, values: &'a [String], name: &str) -> Option<&'a str> {
    let i = f.desc.label_names().iter().position(|n| n == name)?;
    values.get(i).map(String::as_str)
}

fn per_circuit(
    fams: &HashMap<String, Fam>,
    metric: &str,
    into: &mut BTreeMap<String, BreakerRow>,
    set: impl Fn(&mut BreakerRow, f64),
) {
    let Some(f) = fams.get(metric) else {
        return;
    };
    for (values, value, _) in &f.series {
        let Some(circuit) = label(f, values, "circuit") else {
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
        set(row, *value);
    }
}

fn breakers(fams: &HashMap<String, Fam>) -> Vec<BreakerRow> {
    let mut rows = BTreeMap::new();
    per_circuit(fams, "dwcp_circuit_breaker_state", &mut rows, |r, v| {
        r.state = match v as i64 {
            0 => "closed",
            1 => "open",
            2 => "half_open",
            _ => "unknown",
        }
    });
    let rate = |v: f64| (v >= 0.0).then_some(v);
    per_circuit(
        fams,
        "dwcp_circuit_breaker_failure_rate",
        &mut rows,
        |r, v| r.failure_rate = rate(v),
    );
    per_circuit(
        fams,
        "dwcp_circuit_breaker_slow_call_rate",
        &mut rows,
        |r, v| r.slow_call_rate = rate(v),
    );
    // Counters may be registered with or without `_total` (both export `…_total`).
    for name in [
        "dwcp_circuit_breaker_trips",
        "dwcp_circuit_breaker_trips_total",
    ] {
        per_circuit(fams, name, &mut rows, |r, v| r.trips += v as u64);
    }
    for name in [
        "dwcp_circuit_breaker_resets",
        "dwcp_circuit_breaker_resets_total",
    ] {
        per_circuit(fams, name, &mut rows, |r, v| r.resets += v as u64);
    }
    rows.into_values().collect()
}

fn health(fams: &HashMap<String, Fam>) -> Vec<ComponentHealth> {
    let Some(f) = fams.get("dwcp_component_status") else {
        return Vec::new();
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (values, value, _) in &f.series {
        let (Some(c), Some(st)) = (label(f, values, "component"), label(f, values, "status"))
        else {
            continue;
        };
        if *value > 0.0 {
            out.insert(c.to_owned(), st.to_owned());
        } else {
            out.entry(c.to_owned()).or_insert_with(|| "unknown".into());
        }
    }
    out.into_iter()
        .map(|(component, status)| ComponentHealth { component, status })
        .collect()
}

fn single_gauge(fams: &HashMap<String, Fam>, name: &str) -> Option<f64> {
    fams.get(name)?.series.first().map(|s| s.1)
}

fn sla(fams: &HashMap<String, Fam>) -> SlaView {
    let mut rows = Vec::new();
    if let Some(f) = fams.get("dwcp_sla_compliance") {
        for (values, value, _) in &f.series {
            let (Some(sli), Some(window)) = (label(f, values, "sli"), label(f, values, "window"))
            else {
                continue;
            };
            rows.push(SlaRow {
                sli: sli.to_owned(),
                window: window.to_owned(),
                compliance: *value,
            });
        }
    }
    rows.sort_by(|a, b| (&a.sli, &a.window).cmp(&(&b.sli, &b.window)));
    SlaView {
        rows,
        error_budget_remaining: single_gauge(fams, "dwcp_sla_error_budget_remaining_ratio"),
        decision: single_gauge(fams, "dwcp_sla_decision").map(decision_name),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place read agrees with the copying snapshot on every series: quantiles, max,
    /// count, and a distribution that accounts for every value.
    #[test]
    fn in_place_read_matches_the_snapshot() {
        let reg = Registry::builder().build().unwrap();
        let fam = reg
            .histogram("op_seconds", "Op")
            .dynamic_labels(["series"])
            .register()
            .unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut handles = Vec::new();
        for s in 0..40u64 {
            let h = fam.with_labels_or_overflow(&[&s.to_string()]);
            // Series 0 stays empty; series 1 holds one value; the rest spread over decades.
            let n = match s {
                0 => 0,
                1 => 1,
                _ => 50 * s,
            };
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let decades = 1 + s % 7;
                h.record(1 + x % 10u64.pow(decades as u32 + 2));
            }
            handles.push(h);
        }
        let page = StatusPage::new(reg.clone(), Arc::new(Journal::new(1)));
        let snap = page.snapshot();
        assert_eq!(snap.operations.len(), 40);
        for row in &snap.operations {
            let s: usize = row.labels[0].1.parse().unwrap();
            let h = handles[s].snapshot();
            assert_eq!(row.count, h.count(), "series {s}");
            let want = [0.5, 0.9, 0.99, 0.999].map(|q| h.quantile(q) as f64 / 1e9);
            assert_eq!(row.quantiles, want, "series {s}");
            assert_eq!(row.max, h.max() as f64 / 1e9, "series {s}");
            let binned: u64 = row.distribution.iter().map(|b| b.1).sum();
            assert_eq!(binned, h.count(), "series {s}");
            if h.count() > 0 {
                assert!(row.distribution.len() <= DISTRIBUTION_BINS);
                let (first, last) = (row.distribution[0], *row.distribution.last().unwrap());
                assert!(first.1 > 0 && last.1 > 0, "series {s}: trimmed to the data");
                assert!(first.0 >= h.min() as f64 / 1e9);
                assert!(last.0 >= h.max() as f64 / 1e9);
                assert!(row.distribution.windows(2).all(|w| w[0].0 < w[1].0));
            } else {
                assert!(row.distribution.is_empty());
            }
        }
    }
}
