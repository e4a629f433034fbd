//! `f64` gauges stored as bits in an `AtomicU64`.

use std::sync::{Arc, OnceLock};

use super::thread_cells::{Lined, ThreadCells};
use crate::sync::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    pub(crate) bits: AtomicU64,
    pub(crate) overflow: bool,
    pub(crate) overflow_records: AtomicU64,
    /// NaN writes refused (a gauge keeps its last good value).
    pub(crate) rejected_nan: AtomicU64,
    /// Whole-number adds (`add_int`, the in-flight gauges of `#[instrument_dwcp]`), as a
    /// wrapping two's-complement `i64`: one `fetch_add` instead of an `f64` compare-and-swap
    /// loop. The gauge's value is `bits + level`; `set` resets it.
    pub(crate) level: AtomicU64,
    /// Per-thread in-flight counts of `#[instrument_dwcp]` call sites recording into this
    /// series: part of the value.
    pub(crate) threads: OnceLock<Arc<ThreadCells>>,
}

impl GaugeCell {
    pub(crate) fn new(overflow: bool) -> Self {
        GaugeCell {
            overflow,
            bits: AtomicU64::new(0f64.to_bits()),
            ..Default::default()
        }
    }

    #[inline]
    fn tally(&self) {
        if self.overflow {
            self.overflow_records.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn set(&self, v: f64) {
        if v.is_nan() {
            self.rejected_nan.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.bits.store(v.to_bits(), Ordering::Relaxed);
        // A concurrent `add_int` lands before or after the set; a gauge that is both set
        // and counted in whole steps (nothing in this crate does) may lose one step.
        self.level.store(0, Ordering::Relaxed);
        self.tally();
    }

    /// Add a whole number: one relaxed `fetch_add`.
    #[inline]
    pub(crate) fn add_int(&self, d: i64) {
        self.level.fetch_add(d as u64, Ordering::Relaxed);
        self.tally();
    }

    /// Add with a compare-and-swap loop: an `f64` add has no single atomic instruction.
    /// Gauges are for levels, not rates, so this is off every latency hot path.
    #[inline]
    pub(crate) fn add(&self, d: f64) {
        if d.is_nan() {
            self.rejected_nan.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut cur = self.bits.load(Ordering::Relaxed);
        loop {
            let sum = f64::from_bits(cur) + d;
            if sum.is_nan() {
                // +∞ + −∞: refuse the addition, keep the value, count it as a NaN write.
                self.rejected_nan.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let next = sum.to_bits();
            match self
                .bits
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.tally();
    }

    pub(crate) fn get(&self) -> f64 {
        let f = f64::from_bits(self.bits.load(Ordering::Relaxed));
        let f = match self.level.load(Ordering::Relaxed) as i64 {
            0 => f,
            l => f + l as f64,
        };
        match self.threads.get() {
            None => f,
            Some(t) => f + t.read().0 as f64,
        }
    }
}

/// A gauge bound to one label set: a value that goes up and down.
///
/// NaN writes are refused and counted (`dwcp_telemetry_values_adjusted_total{reason="nan"}`);
/// ±∞ are stored, since Prometheus represents them (`+Inf`/`-Inf`). An addition whose result
/// would be NaN (adding −∞ to +∞) is refused the same way: the gauge keeps its value, so it
/// never exports NaN.
///
/// ```
/// use dwcp_telemetry::Registry;
/// let reg = Registry::builder().build().unwrap();
/// let g = reg.gauge("dwcp_streams_active", "Open streams").register().unwrap().handle();
/// g.set(3.0);
/// g.add(2.5);
/// g.sub(1.0);
/// g.set(f64::NAN); // refused
/// assert_eq!(g.get(), 4.5);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Gauge {
    cell: Option<Arc<GaugeCell>>,
}

impl Gauge {
    pub(crate) fn from_cell(cell: Arc<GaugeCell>) -> Self {
        Gauge { cell: Some(cell) }
    }

    #[cfg(feature = "metrics-facade")]
    pub(crate) fn cell(&self) -> Option<&Arc<GaugeCell>> {
        self.cell.as_ref()
    }

    /// A handle that records nothing.
    pub const fn noop() -> Self {
        Gauge { cell: None }
    }

    /// Set the value.
    #[inline]
    pub fn set(&self, v: f64) {
        if let Some(c) = &self.cell {
            c.set(v);
        }
    }

    /// Add `d` (may be negative).
    #[inline]
    pub fn add(&self, d: f64) {
        if let Some(c) = &self.cell {
            c.add(d);
        }
    }

    /// Add a whole number `d` (may be negative) with one atomic add, no compare-and-swap.
    #[inline]
    pub(crate) fn add_int(&self, d: i64) {
        if let Some(c) = &self.cell {
            c.add_int(d);
        }
    }

    /// Subtract `d`.
    #[inline]
    pub fn sub(&self, d: f64) {
        self.add(-d);
    }

    /// The current value (0 for a no-op handle).
    pub fn get(&self) -> f64 {
        self.cell.as_ref().map_or(0.0, |c| c.get())
    }
}

impl Lined for Gauge {
    fn lines_slot(&self) -> Option<&OnceLock<Arc<ThreadCells>>> {
        self.cell
            .as_deref()
            .filter(|c| !c.overflow)
            .map(|c| &c.threads)
    }
}
