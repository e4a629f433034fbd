//! `metrics::Recorder` for a [`Registry`]: `metrics::counter!`, `gauge!` and `histogram!` from
//! any crate land in the registry.
//!
//! **Install before use.** Like every `metrics` recorder, this one sees only calls made
//! after [`DwcpRecorder::install`]: a `counter!` before it goes to `metrics`' no-op recorder
//! and is lost. Install it first thing in `main`.
//!
//! Units follow the registry's rule ([`Unit::from_name`](crate::Unit::from_name)), or
//! `describe_histogram!`'s unit when the description comes before first use:
//! - a histogram named `*_seconds` (or described in a time unit) takes **seconds** (the
//!   `metrics` convention; milliseconds etc. if so described), stored as nanoseconds and
//!   exported as seconds;
//! - `*_bytes` (or described in bytes, KiB, …) takes bytes; `*_ratio` or `Percent` a ratio;
//! - anything else is stored and exported as given, to a millionth.
//!
//! A description that comes after first use can only supply a HELP text the family lacks (one
//! registered without help, or by the facade): the unit and storage of an existing family
//! never change, and a help given at registration is never overwritten (change them in the
//! description that runs first, or register the family through the registry).
//!
//! The facade cannot return errors, so every call is resolved by a rule and counted in
//! `dwcp_telemetry_facade_adjustments_total{reason}` (each time a thread resolves the key,
//! i.e. on its first call for it):
//! - names and label names that Prometheus would refuse are sanitised (invalid characters
//!   become `_`); a sanitised metric name is counted (`name_sanitized`), since two names
//!   that differ only there share one family;
//! - a label named `le` or `quantile` (written by exporters; promtool flags `le` on any
//!   kind), `version`, or a registry constant label is renamed with a trailing `_`
//!   (`reserved_label_renamed`);
//! - two label names equal after sanitising: the later one is dropped
//!   (`label_collision_dropped`);
//! - label order does not matter, also for a family registered through the registry with its
//!   own order; a name first used with one set of label names and later with another records
//!   the mismatching calls into the family's overflow series (`label_mismatch`);
//! - a name used as two kinds: the second kind records nowhere (`kind_conflict`);
//! - a family the registry refuses (its family cap, a reserved `dwcp_telemetry_` name, a
//!   name whose exposition collides with another family's) records nowhere
//!   (`family_refused`).
//!
//! Facade families get their name as HELP unless `describe_*!` gives one, and a later
//! registration through the registry may supply the real one.
//!
//! Cost: a call for a series this thread has used before is a thread-local cache hit keyed
//! by the `metrics::Key`'s precomputed hash (a direct-mapped slot, then a small map): no
//! allocation, no global lock, no sanitising.
//! Only a thread's first call for a key takes the recorder's lock. Each thread caches up to
//! 4,096 keys (past that, the oldest is evicted for each new one), so a flood of distinct keys
//! costs bounded memory; the recorder itself keeps no per-key state.
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

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::sync::{Arc, Mutex};

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString};

use crate::metric::{CounterCell, GaugeCell, HistogramCell};
use crate::registry::{
    sanitize_label_name, sanitize_metric_name, MetricKind, Registry, Unit, VERSION_LABEL,
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

/// The resolved handle of one facade key.
#[derive(Clone)]
enum Entry {
    Counter(metrics::Counter),
    Gauge(metrics::Gauge),
    Histogram(metrics::Histogram),
}

/// What the slow path keeps: the descriptions (bounded by the registry's family cap: a
/// description for a name that cannot be registered is not kept).
#[derive(Default)]
struct State {
    described: HashMap<String, (Option<metrics::Unit>, String)>,
}

/// Descriptions kept for names not yet registered (bounds a flood of `describe_*!` calls).
const FAMILY_DESCRIPTIONS_MAX: usize = crate::registry::DEFAULT_MAX_FAMILIES;

static NEXT_RECORDER_ID: StdAtomicU64 = StdAtomicU64::new(1);

/// Implements [`metrics::Recorder`] over a [`Registry`].
///
/// Install it process-wide with [`DwcpRecorder::install`] (or `metrics::set_global_recorder`),
/// or scope it with `metrics::with_local_recorder`.
pub struct DwcpRecorder {
    registry: Registry,
    id: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for DwcpRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DwcpRecorder")
            .field("registry", &self.registry)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Hashes a `(recorder id, key hash)` pair whose parts are already well mixed.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }
    fn write_u8(&mut self, n: u8) {
        self.0 = self.0.rotate_left(3) ^ u64::from(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Keys one thread keeps; past it, one cached key is evicted per new key.
const THREAD_CACHE_ENTRIES: usize = 4_096;

/// Slots of the per-thread direct-mapped first level.
const DIRECT_SLOTS: usize = 64;

/// `(recorder id, kind, key hash)`.
type Tag = (u64, u8, u64);

/// A resolved key, shared by the thread's map and its direct slot (an `Rc` clone, never a
/// key clone, moves it between them).
struct Cached {
    tag: Tag,
    key: Key,
    entry: Entry,
}

type CacheMap = HashMap<Tag, Vec<Rc<Cached>>, BuildHasherDefault<PreHashed>>;

/// Per-thread second level: the keys this thread resolved, up to the bound, the oldest
/// evicted first.
#[derive(Default)]
struct ThreadCache {
    map: CacheMap,
    order: VecDeque<Rc<Cached>>,
}

impl ThreadCache {
    fn find(&self, tag: &Tag, key: &Key) -> Option<Rc<Cached>> {
        self.map
            .get(tag)?
            .iter()
            .find(|c| same_key(&c.key, key))
            .cloned()
    }

    fn insert(&mut self, cached: Rc<Cached>) {
        if self.order.len() >= THREAD_CACHE_ENTRIES {
            // Evict the oldest key, not the whole cache: a thread cycling through more keys
            // than the bound still hits for the most recent ones.
            if let Some(old) = self.order.pop_front() {
                if let Some(v) = self.map.get_mut(&old.tag) {
                    v.retain(|c| !Rc::ptr_eq(c, &old));
                    if v.is_empty() {
                        self.map.remove(&old.tag);
                    }
                }
            }
        }
        self.map.entry(cached.tag).or_default().push(cached.clone());
        self.order.push_back(cached);
    }
}

thread_local! {
    static DIRECT: RefCell<[Option<Rc<Cached>>; DIRECT_SLOTS]> =
        const { RefCell::new([const { None }; DIRECT_SLOTS]) };
    static CACHE: RefCell<ThreadCache> = RefCell::new(ThreadCache::default());
}

/// The direct-mapped slot of a `(recorder, kind, key hash)` tag.
#[inline]
fn direct_slot((id, kind, hash): Tag) -> usize {
    let mixed = hash ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(kind).rotate_left(17);
    (mixed >> 7) as usize % DIRECT_SLOTS
}

/// Whether two strings are equal, deciding by address first: the macros' keys are built from
/// `static` names and labels, so a cached key and the caller's share their pointers and the
/// comparison costs no `memcmp`.
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// `a == b` for keys, with [`same_str`] for each part.
#[inline]
fn same_key(a: &Key, b: &Key) -> bool {
    same_str(a.name(), b.name())
        && a.labels().len() == b.labels().len()
        && a.labels()
            .zip(b.labels())
            .all(|(x, y)| same_str(x.key(), y.key()) && same_str(x.value(), y.value()))
}

fn kind_tag(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
    }
}

impl DwcpRecorder {
    /// A recorder writing into `registry`.
    #[must_use]
    pub fn new(registry: Registry) -> Self {
        DwcpRecorder {
            registry,
            id: NEXT_RECORDER_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
        }
    }

    /// The registry this recorder writes into.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Install as the global `metrics` recorder. Fails if one is already installed. Calls
    /// made before this are lost (they went to `metrics`' no-op recorder).
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Self>> {
        metrics::set_global_recorder(self)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn describe(&self, key: KeyName, unit: Option<metrics::Unit>, description: SharedString) {
        let name = sanitize_metric_name(key.as_str());
        let help = description.into_owned();
        // Under the lock that `create` holds, so a family being created now either sees this
        // description or is registered before it and gets its help here.
        let mut state = self.state();
        if let Some(desc) = self.registry.descriptor_of(&name) {
            // Only a default help (the name) is replaced: a help given at registration wins.
            desc.supply_help(&help);
        } else if state.described.len() >= FAMILY_DESCRIPTIONS_MAX
            && !state.described.contains_key(&name)
        {
            return;
        }
        state.described.insert(name, (unit, help));
    }

    /// The handle for `key`: the thread's cache, else the slow path.
    #[inline]
    fn entry(&self, kind: MetricKind, key: &Key) -> Entry {
        let tag = (self.id, kind_tag(kind), key.get_hash());
        let slot = direct_slot(tag);
        // First level: one direct-mapped slot, no hashing beyond the key's own hash.
        let hit = DIRECT.try_with(|d| match &d.borrow()[slot] {
            Some(c) if c.tag == tag && same_key(&c.key, key) => Some(c.entry.clone()),
            _ => None,
        });
        if let Ok(Some(e)) = hit {
            return e;
        }
        self.entry_slow(tag, slot, kind, key)
    }

    /// Second level: the thread's map, else the recorder's slow path; then the direct slot.
    #[inline(never)]
    fn entry_slow(&self, tag: Tag, slot: usize, kind: MetricKind, key: &Key) -> Entry {
        let cached = CACHE
            .try_with(|c| c.borrow().find(&tag, key))
            .ok()
            .flatten();
        let cached = match cached {
            Some(c) => c,
            None => {
                let c = Rc::new(Cached {
                    tag,
                    key: key.clone(),
                    entry: self.resolve(kind, key),
                });
                let _ = CACHE.try_with(|cache| cache.borrow_mut().insert(c.clone()));
                c
            }
        };
        let entry = cached.entry.clone();
        let _ = DIRECT.try_with(|d| d.borrow_mut()[slot] = Some(cached));
        entry
    }

    /// Slow path: under the recorder's lock, find or create the family and series.
    #[cold]
    fn resolve(&self, kind: MetricKind, key: &Key) -> Entry {
        let state = self.state();
        self.create(&state, kind, key)
    }

    fn count(&self, reason: &str) {
        if let Some(i) = crate::registry::FACADE_REASONS
            .iter()
            .position(|r| *r == reason)
        {
            self.registry.tallies().facade_refusal(i);
        }
    }

    /// Sanitised name, and labels sorted by sanitised name (so label order in the macro does
    /// not matter), reserved names renamed and collisions dropped (counted).
    fn split(&self, key: &Key) -> (String, Vec<String>, Vec<String>) {
        let consts = self.registry.const_labels();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for l in key.labels() {
            let mut name = sanitize_label_name(l.key());
            let reserved = name == VERSION_LABEL
                || name == "quantile"
                || name == "le"
                || consts.iter().any(|(c, _)| *c == name);
            if reserved {
                name.push('_');
                self.count("reserved_label_renamed");
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                self.count("label_collision_dropped");
                continue;
            }
            pairs.push((name, l.value().to_owned()));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, values) = pairs.into_iter().unzip();
        let name = sanitize_metric_name(key.name());
        if name != key.name() {
            // Two names that differ only in invalid characters share one family.
            self.count("name_sanitized");
        }
        (name, names, values)
    }

    fn create(&self, state: &State, kind: MetricKind, key: &Key) -> Entry {
        let noop = || match kind {
            MetricKind::Counter => Entry::Counter(metrics::Counter::noop()),
            MetricKind::Gauge => Entry::Gauge(metrics::Gauge::noop()),
            MetricKind::Histogram => Entry::Histogram(metrics::Histogram::noop()),
        };
        let (name, names, values) = self.split(key);
        let (described_unit, described_help) = state
            .described
            .get(&name)
            .cloned()
            .unwrap_or((None, String::new()));
        if let Some(existing) = self.registry.descriptor_of(&name) {
            if existing.kind() != kind {
                self.count("kind_conflict");
                return noop();
            }
        }
        // No description: an empty help, which the registry turns into the name and marks as
        // a default that a later registration or description may supply.
        let help = described_help;
        let (unit, factor) = facade_unit(kind, &name, described_unit);
        // The facade receives `f64`: a unitless histogram it creates keeps millionths, so
        // `histogram!("batch_size").record(12.5)` is 12.5, not 13 (the registry's own
        // unitless histograms take `u64` and store them as given).
        let fine = (kind == MetricKind::Histogram && unit == Unit::None).then_some(1e6);
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        // The family: the existing one, else a new one (or, if another thread registered the
        // name meanwhile, that one); `None` when the registry refuses it.
        macro_rules! bind {
            ($register:ident, $existing:ident) => {{
                let family = match self.registry.descriptor_of(&name) {
                    Some(_) => self.registry.$existing(&name),
                    None => self
                        .registry
                        .$register(name.clone(), help)
                        .unit(unit)
                        .storage_scale(fine)
                        .dynamic_labels(names.clone())
                        .register()
                        .ok()
                        .or_else(|| self.registry.$existing(&name)),
                };
                match family {
                    None => {
                        self.count("family_refused");
                        return noop();
                    }
                    Some(f) => match in_family_order(f.descriptor().label_names(), &names, &values)
                    {
                        Some(ordered) => f.with_labels_or_overflow(&ordered),
                        None => {
                            self.count("label_mismatch");
                            f.overflow()
                        }
                    },
                }
            }};
        }
        match kind {
            MetricKind::Counter => match bind!(counter, existing_counter).cell() {
                Some(c) => Entry::Counter(metrics::Counter::from_arc(c.clone())),
                None => noop(),
            },
            MetricKind::Gauge => match bind!(gauge, existing_gauge).cell() {
                Some(c) => Entry::Gauge(metrics::Gauge::from_arc(c.clone())),
                None => noop(),
            },
            MetricKind::Histogram => match bind!(histogram, existing_histogram).cell() {
                // The family may predate this call with another unit: scale into whatever it
                // stores.
                Some(c) => {
                    Entry::Histogram(metrics::Histogram::from_arc(Arc::new(ScaledHistogram {
                        cell: c.clone(),
                        scale: factor * c.scale,
                    })))
                }
                None => noop(),
            },
        }
    }
}

/// `values` (named by `names`) in the order of the family's `labels`, if both name the same
/// set: a family registered through the registry keeps its declaration order, while the facade
/// sorts names.
fn in_family_order<'v>(
    labels: &[String],
    names: &[String],
    values: &[&'v str],
) -> Option<Vec<&'v str>> {
    if labels.len() != names.len() {
        return None;
    }
    labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).map(|i| values[i]))
        .collect()
}

/// The unit a new facade family gets, and the factor from the facade's values to that unit
/// (e.g. milliseconds → seconds is 1e-3).
fn facade_unit(kind: MetricKind, name: &str, described: Option<metrics::Unit>) -> (Unit, f64) {
    use metrics::Unit as M;
    let by_name = || match kind {
        MetricKind::Histogram => Unit::from_name(name),
        _ => Unit::None,
    };
    match described {
        Some(M::Seconds) => (Unit::Seconds, 1.0),
        Some(M::Milliseconds) => (Unit::Seconds, 1e-3),
        Some(M::Microseconds) => (Unit::Seconds, 1e-6),
        Some(M::Nanoseconds) => (Unit::Seconds, 1e-9),
        Some(M::Bytes) => (Unit::Bytes, 1.0),
        Some(M::Kibibytes) => (Unit::Bytes, 1024.0),
        Some(M::Mebibytes) => (Unit::Bytes, 1024.0 * 1024.0),
        Some(M::Gibibytes) => (Unit::Bytes, 1024.0 * 1024.0 * 1024.0),
        Some(M::Tebibytes) => (Unit::Bytes, 1024.0f64.powi(4)),
        Some(M::Percent) => (Unit::Ratio, 0.01),
        Some(_) => (Unit::None, 1.0),
        None => (by_name(), 1.0),
    }
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
        match self.entry(MetricKind::Counter, key) {
            Entry::Counter(c) => c,
            _ => metrics::Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        match self.entry(MetricKind::Gauge, key) {
            Entry::Gauge(g) => g,
            _ => metrics::Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        match self.entry(MetricKind::Histogram, key) {
            Entry::Histogram(h) => h,
            _ => metrics::Histogram::noop(),
        }
    }
}
