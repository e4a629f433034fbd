//! A metric family: one name, fixed label names, and up to `limit` series (label sets).
//!
//! Lookups are lock-free: an open-addressed index of write-once slots sits behind an
//! `ArcSwap`. A new series is written into a free slot under the family's writer mutex; the
//! index is rebuilt at twice the size only when it becomes half full, so adding `n` series
//! costs O(n) in all (amortised O(1) each), never a copy of the whole table per insert. Past
//! the cardinality limit, new label sets share one overflow series.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock};

use super::descriptor::Descriptor;
use crate::error::LabelError;
use crate::sync::{ArcCell, AtomicU64, Mutex, Ordering};

/// The label value every label of the overflow series carries.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// Something a family stores per series, and the handle it gives out.
pub(crate) trait Cell: Send + Sync + Sized + 'static {
    type Handle;
    fn make(desc: &Descriptor, overflow: bool) -> Self;
    fn handle(cell: &Arc<Self>) -> Self::Handle;
}

/// One series: its label values (in the family's label-name order) and its storage.
#[derive(Debug)]
pub(crate) struct Series<C> {
    pub(crate) values: Arc<[String]>,
    hash: u64,
    pub(crate) cell: Arc<C>,
}

/// Write-once slots, probed linearly from `hash & mask`; at most half full.
#[derive(Debug)]
struct Index<C> {
    slots: Box<[OnceLock<Arc<Series<C>>>]>,
    mask: usize,
}

impl<C> Index<C> {
    fn with_capacity(cap: usize) -> Self {
        let cap = cap.next_power_of_two().max(8);
        Index {
            slots: (0..cap).map(|_| OnceLock::new()).collect(),
            mask: cap - 1,
        }
    }

    #[inline]
    fn find(&self, hash: u64, values: &[&str]) -> Option<&Arc<Series<C>>> {
        let mut i = hash as usize & self.mask;
        // At most half the slots are used, so an empty slot ends every probe.
        for _ in 0..self.slots.len() {
            let s = self.slots[i].get()?;
            if s.hash == hash
                && s.values.len() == values.len()
                && s.values.iter().zip(values).all(|(a, b)| a == b)
            {
                return Some(s);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Put `series` in the first free slot of its probe sequence (writer lock held).
    fn insert(&self, series: Arc<Series<C>>) {
        let mut i = series.hash as usize & self.mask;
        let mut series = series;
        for _ in 0..self.slots.len() {
            match self.slots[i].set(series) {
                Ok(()) => return,
                Err(back) => series = back,
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Counters the registry shares with its families.
#[derive(Debug)]
pub(crate) struct RegistryTallies {
    /// Dynamic `with_labels_or_overflow` calls with the wrong number of values.
    pub(crate) label_errors: AtomicU64,
    /// Facade registrations that could not be honoured, by reason (see `FacadeRefusal`).
    pub(crate) facade: [AtomicU64; FACADE_REASONS.len()],
    /// Label values shortened to `max_label_len` bytes (with a hash suffix).
    pub(crate) truncated_label_values: AtomicU64,
    /// Families refused because the registry holds its family cap.
    pub(crate) families_refused: AtomicU64,
    /// Longest label value kept, in bytes.
    pub(crate) max_label_len: usize,
}

/// Why the `metrics` facade could not record as asked; the `reason` label of
/// `dwcp_telemetry_facade_adjustments_total`.
pub(crate) const FACADE_REASONS: [&str; 6] = [
    // The name is registered as another kind: the call records nowhere.
    "kind_conflict",
    // Called with other label names than the family was first registered with: the call
    // records into the family's overflow series.
    "label_mismatch",
    // A label named `le`/`quantile` (histograms) or `version`: renamed with a trailing `_`.
    "reserved_label_renamed",
    // Two label names equal after sanitising: the later pair is dropped.
    "label_collision_dropped",
    // The registry refused the family (family cap, reserved or colliding name): records nowhere.
    "family_refused",
    // The name had characters Prometheus refuses (replaced by `_`, so names that differ only
    // there share one family); recorded.
    "name_sanitized",
];

impl RegistryTallies {
    pub(crate) fn new(max_label_len: usize) -> Self {
        RegistryTallies {
            label_errors: AtomicU64::new(0),
            facade: std::array::from_fn(|_| AtomicU64::new(0)),
            truncated_label_values: AtomicU64::new(0),
            families_refused: AtomicU64::new(0),
            max_label_len,
        }
    }

    #[cfg(feature = "metrics-facade")]
    pub(crate) fn facade_refusal(&self, reason: usize) {
        if let Some(c) = self.facade.get(reason) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The series index's hasher: a word-at-a-time multiply-rotate hash (in the style of FxHash)
/// with a random seed per family. SipHash cost about half of a per-call `get` (measured in
/// `benches/lookup.rs`); hash flooding is moot here, since a family holds at most its
/// cardinality limit of series and its index probes at most twice that many slots.
#[derive(Debug, Clone, Copy)]
struct SeriesHasher {
    seed: u64,
}

impl SeriesHasher {
    fn new() -> Self {
        SeriesHasher {
            seed: RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl BuildHasher for SeriesHasher {
    type Hasher = WordHasher;
    #[inline]
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.seed)
    }
}

/// See [`SeriesHasher`].
struct WordHasher(u64);

const WORD_K: u64 = 0x517c_c1b7_2722_0a95;

impl WordHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(WORD_K);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.word(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.word(u64::from(n));
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.word(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Final avalanche (the index uses the low bits).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

/// A stable 64-bit FNV-1a hash (the same in every process), for truncation suffixes.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `value` shortened to at most `max` bytes (`max` ≥ 32): cut at a char boundary and suffixed
/// with `~` and 16 hex digits of a hash of the whole value, so two long values that share a
/// prefix stay two series.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    let mut end = max.saturating_sub(17);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{:016x}", &value[..end], fnv1a(value))
}

#[derive(Debug)]
pub(crate) struct FamilyCore<C> {
    pub(crate) desc: Arc<Descriptor>,
    limit: usize,
    hasher: SeriesHasher,
    index: ArcCell<Index<C>>,
    /// Every series in creation order; also the writer lock.
    list: Mutex<Vec<Arc<Series<C>>>>,
    len: AtomicU64,
    overflow: OnceLock<Arc<Series<C>>>,
    /// Lookups of new label sets that were refused for the cardinality limit.
    pub(crate) overflowed_sets: AtomicU64,
    tallies: Arc<RegistryTallies>,
}

impl<C: Cell> FamilyCore<C> {
    pub(crate) fn new(desc: Arc<Descriptor>, limit: usize, tallies: Arc<RegistryTallies>) -> Self {
        FamilyCore {
            desc,
            limit,
            hasher: SeriesHasher::new(),
            index: ArcCell::new(Index::with_capacity(8)),
            list: Mutex::new(Vec::new()),
            len: AtomicU64::new(0),
            overflow: OnceLock::new(),
            overflowed_sets: AtomicU64::new(0),
            tallies,
        }
    }

    /// The handle for a label set, creating the series if needed. Values longer than the
    /// registry's maximum are an error here (see [`FamilyCore::get_or_overflow`] for the
    /// infallible rule).
    pub(crate) fn try_get(&self, values: &[&str]) -> Result<C::Handle, LabelError> {
        self.lookup(values, false)
    }

    fn check_arity(&self, values: &[&str]) -> Result<(), LabelError> {
        let expected = self.desc.label_names().len();
        if values.len() != expected {
            return Err(LabelError::Arity {
                metric: self.desc.name().to_owned(),
                expected,
                got: values.len(),
            });
        }
        Ok(())
    }

    /// The hit path: arity, one hash, one probe. Nothing else is checked here because
    /// nothing else can match: stored label values never hold a CR, are never longer than the
    /// maximum, and are never all `__overflow__` (see [`FamilyCore::miss`]).
    #[inline]
    fn lookup(&self, values: &[&str], shorten_long: bool) -> Result<C::Handle, LabelError> {
        self.check_arity(values)?;
        let hash = self.hasher.hash_one(values);
        if let Some(h) = self
            .index
            .with(|ix| ix.find(hash, values).map(|s| C::handle(&s.cell)))
        {
            return Ok(h);
        }
        self.miss(hash, values, shorten_long)
    }

    /// A label set not stored as given: the overflow set, a value to rewrite (a CR is stored
    /// as a line feed, so `a\rb` and `a\nb` are one series, since the exposition has no
    /// escape for CR; an over-long value is shortened or refused), or a new series.
    #[cold]
    fn miss(
        &self,
        hash: u64,
        values: &[&str],
        shorten_long: bool,
    ) -> Result<C::Handle, LabelError> {
        // The label set the overflow series exports is the overflow series: a user set made
        // only of `__overflow__` values must not become a second series with those labels.
        if !values.is_empty() && values.iter().all(|v| *v == OVERFLOW_LABEL_VALUE) {
            return Ok(self.overflow_handle());
        }
        let max = self.tallies.max_label_len;
        if !values
            .iter()
            .any(|v| v.len() > max || v.as_bytes().contains(&b'\r'))
        {
            return self.insert(hash, values);
        }
        if let Some(i) = values.iter().position(|v| v.len() > max) {
            if !shorten_long {
                return Err(LabelError::ValueTooLong {
                    metric: self.desc.name().to_owned(),
                    label: self.desc.label_names()[i].clone(),
                    len: values[i].len(),
                    max,
                });
            }
            let n = values.iter().filter(|v| v.len() > max).count() as u64;
            self.tallies
                .truncated_label_values
                .fetch_add(n, Ordering::Relaxed);
        }
        let owned: Vec<String> = values
            .iter()
            .map(|v| {
                let v = v.replace('\r', "\n");
                if v.len() > max {
                    shorten(&v, max)
                } else {
                    v
                }
            })
            .collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        // The rewritten set is stored as is: look it up (or add it) directly.
        let hash = self.hasher.hash_one(&refs[..]);
        if let Some(h) = self
            .index
            .with(|ix| ix.find(hash, &refs).map(|s| C::handle(&s.cell)))
        {
            return Ok(h);
        }
        self.insert(hash, &refs)
    }

    /// Slow path: add the series under the writer lock (re-checking first).
    #[cold]
    fn insert(&self, hash: u64, values: &[&str]) -> Result<C::Handle, LabelError> {
        // A full family refuses new sets without taking the writer lock (a flood of new label
        // sets past the cap must not serialise on it).
        if self.len() >= self.limit {
            return Err(self.refuse_new_set());
        }
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let index = self.index.load_full();
        if let Some(s) = index.find(hash, values) {
            return Ok(C::handle(&s.cell));
        }
        if list.len() >= self.limit {
            drop(list);
            return Err(self.refuse_new_set());
        }
        let series = Arc::new(Series {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            hash,
            cell: Arc::new(C::make(&self.desc, false)),
        });
        if (list.len() + 1) * 2 > index.slots.len() {
            // Half full: rebuild at twice the size (amortised O(1) per series).
            let bigger = Index::with_capacity(index.slots.len() * 2);
            for s in list.iter() {
                bigger.insert(s.clone());
            }
            bigger.insert(series.clone());
            self.index.store(Arc::new(bigger));
        } else {
            index.insert(series.clone());
        }
        list.push(series.clone());
        self.len.store(list.len() as u64, Ordering::Release);
        Ok(C::handle(&series.cell))
    }

    #[cold]
    fn refuse_new_set(&self) -> LabelError {
        self.overflowed_sets.fetch_add(1, Ordering::Relaxed);
        LabelError::CardinalityExceeded {
            metric: self.desc.name().to_owned(),
            limit: self.limit,
        }
    }

    /// The handle records go to when they cannot go where asked: the overflow series (label
    /// values `__overflow__`), or, for a family without labels, its one series, since an
    /// overflow series without labels would export the same label set twice.
    pub(crate) fn overflow_handle(&self) -> C::Handle {
        if self.desc.label_names().is_empty() {
            if let Ok(h) = self.insert_or_find_unlabelled() {
                return h;
            }
        }
        C::handle(&self.overflow_series().cell)
    }

    fn insert_or_find_unlabelled(&self) -> Result<C::Handle, LabelError> {
        self.lookup(&[], false)
    }

    /// The handle for a label set. A wrong number of values or a full family give the
    /// overflow series (counted); values longer than the maximum are shortened (counted).
    pub(crate) fn get_or_overflow(&self, values: &[&str]) -> C::Handle {
        match self.lookup(values, true) {
            Ok(h) => h,
            Err(e) => {
                if let LabelError::Arity { .. } = e {
                    self.tallies.label_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.overflow_handle()
            }
        }
    }

    pub(crate) fn overflow_series(&self) -> &Arc<Series<C>> {
        self.overflow.get_or_init(|| {
            Arc::new(Series {
                values: (0..self.desc.label_names().len())
                    .map(|_| OVERFLOW_LABEL_VALUE.to_owned())
                    .collect(),
                hash: 0,
                cell: Arc::new(C::make(&self.desc, true)),
            })
        })
    }

    /// Every series in creation order, then the overflow series if it exists.
    pub(crate) fn series(&self) -> Vec<Arc<Series<C>>> {
        let mut out: Vec<_> = self.list.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(o) = self.overflow.get() {
            out.push(o.clone());
        }
        out
    }

    /// Number of distinct label sets (not counting the overflow series).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}
