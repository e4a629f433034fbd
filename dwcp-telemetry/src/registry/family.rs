//! A metric family: one name, fixed label names, and up to `limit` series (label sets).
//!
//! Lookups are lock-free: the series table sits behind an `ArcSwap` and is replaced
//! copy-on-write when a new series is added (rare; serialised by a writer mutex). Past the
//! cardinality limit, new label sets share one overflow series.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

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
    pub(crate) cell: Arc<C>,
}

#[derive(Debug)]
struct Table<C> {
    index: HashMap<u64, Vec<usize>>,
    entries: Vec<Arc<Series<C>>>,
}

impl<C> Default for Table<C> {
    fn default() -> Self {
        Table {
            index: HashMap::new(),
            entries: Vec::new(),
        }
    }
}

impl<C> Clone for Table<C> {
    fn clone(&self) -> Self {
        Table {
            index: self.index.clone(),
            entries: self.entries.clone(),
        }
    }
}

/// Counters the registry shares with its families.
#[derive(Debug)]
pub(crate) struct RegistryTallies {
    /// `with_labels` calls with the wrong number of values.
    pub(crate) label_errors: AtomicU64,
    /// Facade registrations that could not be honoured (kind conflicts).
    pub(crate) registration_errors: AtomicU64,
    /// Label values cut to `max_label_len` bytes.
    pub(crate) truncated_label_values: AtomicU64,
    /// Longest label value kept, in bytes (longer values are cut at a char boundary).
    pub(crate) max_label_len: usize,
}

impl RegistryTallies {
    pub(crate) fn new(max_label_len: usize) -> Self {
        RegistryTallies {
            label_errors: AtomicU64::new(0),
            registration_errors: AtomicU64::new(0),
            truncated_label_values: AtomicU64::new(0),
            max_label_len,
        }
    }
}

/// `value` cut to at most `max` bytes, at a char boundary.
fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[derive(Debug)]
pub(crate) struct FamilyCore<C> {
    pub(crate) desc: Arc<Descriptor>,
    limit: usize,
    hasher: RandomState,
    table: ArcCell<Table<C>>,
    overflow: ArcCell<Option<Arc<Series<C>>>>,
    /// Lookups of new label sets that were refused for the cardinality limit.
    pub(crate) overflowed_sets: AtomicU64,
    write: Mutex<()>,
    tallies: Arc<RegistryTallies>,
}

impl<C: Cell> FamilyCore<C> {
    pub(crate) fn new(desc: Arc<Descriptor>, limit: usize, tallies: Arc<RegistryTallies>) -> Self {
        FamilyCore {
            desc,
            limit,
            hasher: RandomState::new(),
            table: ArcCell::new(Table::default()),
            overflow: ArcCell::new(None),
            overflowed_sets: AtomicU64::new(0),
            write: Mutex::new(()),
            tallies,
        }
    }

    fn find(table: &Table<C>, hash: u64, values: &[&str]) -> Option<Arc<Series<C>>> {
        table.index.get(&hash)?.iter().find_map(|&i| {
            let s = &table.entries[i];
            (s.values.len() == values.len() && s.values.iter().zip(values).all(|(a, b)| a == b))
                .then(|| s.clone())
        })
    }

    /// The handle for a label set, creating the series if needed.
    pub(crate) fn try_get(&self, values: &[&str]) -> Result<C::Handle, LabelError> {
        let expected = self.desc.label_names().len();
        if values.len() != expected {
            return Err(LabelError::Arity {
                metric: self.desc.name().to_owned(),
                expected,
                got: values.len(),
            });
        }
        let max = self.tallies.max_label_len;
        let cut: Vec<&str>;
        let values = if values.iter().any(|v| v.len() > max) {
            let n = values.iter().filter(|v| v.len() > max).count() as u64;
            self.tallies
                .truncated_label_values
                .fetch_add(n, Ordering::Relaxed);
            cut = values.iter().map(|v| truncate(v, max)).collect();
            &cut[..]
        } else {
            values
        };
        let hash = self.hasher.hash_one(values);
        if let Some(s) = self.table.with(|t| Self::find(t, hash, values)) {
            return Ok(C::handle(&s.cell));
        }
        // Slow path: add the series under the writer lock (re-checking first).
        let guard = self
            .write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.table.load_full();
        if let Some(s) = Self::find(&current, hash, values) {
            return Ok(C::handle(&s.cell));
        }
        if current.entries.len() >= self.limit {
            drop(guard);
            self.overflowed_sets.fetch_add(1, Ordering::Relaxed);
            return Err(LabelError::CardinalityExceeded {
                metric: self.desc.name().to_owned(),
                limit: self.limit,
            });
        }
        let series = Arc::new(Series {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            cell: Arc::new(C::make(&self.desc, false)),
        });
        let mut next = Table::clone(&current);
        next.index.entry(hash).or_default().push(next.entries.len());
        next.entries.push(series.clone());
        self.table.store(Arc::new(next));
        Ok(C::handle(&series.cell))
    }

    /// The handle for a label set; wrong arity or a full family give the overflow series,
    /// and the event is counted.
    pub(crate) fn get(&self, values: &[&str]) -> C::Handle {
        match self.try_get(values) {
            Ok(h) => h,
            Err(e) => {
                if let LabelError::Arity { .. } = e {
                    self.tallies.label_errors.fetch_add(1, Ordering::Relaxed);
                }
                C::handle(&self.overflow_series().cell)
            }
        }
    }

    pub(crate) fn overflow_series(&self) -> Arc<Series<C>> {
        if let Some(s) = self.overflow.with(|o| o.clone()) {
            return s;
        }
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(s) = self.overflow.with(|o| o.clone()) {
            return s;
        }
        let series = Arc::new(Series {
            values: (0..self.desc.label_names().len())
                .map(|_| OVERFLOW_LABEL_VALUE.to_owned())
                .collect(),
            cell: Arc::new(C::make(&self.desc, true)),
        });
        self.overflow.store(Arc::new(Some(series.clone())));
        series
    }

    /// Every series in creation order, then the overflow series if it exists.
    pub(crate) fn series(&self) -> Vec<Arc<Series<C>>> {
        let mut out: Vec<_> = self.table.with(|t| t.entries.clone());
        if let Some(o) = self.overflow.with(|o| o.clone()) {
            out.push(o);
        }
        out
    }

    /// Number of distinct label sets (not counting the overflow series).
    pub(crate) fn len(&self) -> usize {
        self.table.with(|t| t.entries.len())
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}
