//! Histogram handles and timers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::interval::Interval;
use super::thread_cells::{Lined, ThreadCells};
use crate::clock;
use crate::histogram::{AtomicHistogram, Layout, Snapshot};

/// Aligned to 128 bytes so that, inside its `Arc`, the reference count (which an owned
/// [`Timer`] increments and decrements) sits on other cache lines than the fields every record
/// reads: timers on several threads do not slow each other's records through false sharing.
/// Stored integers per second in a duration histogram.
const NS_PER_SECOND: f64 = 1e9;

#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct HistogramCell {
    pub(crate) hist: AtomicHistogram,
    /// Set on a family's overflow series; its sample count is the number of overflowed records.
    pub(crate) overflow: bool,
    /// Stored integers per unit of the family ([`crate::Unit::storage_scale`]).
    pub(crate) scale: f64,
    /// Per-thread lines of `#[instrument_dwcp]` call sites timing into this series, each
    /// holding one duration not yet recorded: every read [`HistogramCell::flush`]es them first.
    pub(crate) threads: OnceLock<Arc<ThreadCells>>,
}

impl HistogramCell {
    pub(crate) fn new(hist: AtomicHistogram, overflow: bool, scale: f64) -> Self {
        HistogramCell {
            hist,
            overflow,
            scale,
            threads: OnceLock::new(),
        }
    }

    /// Record the durations left pending on per-thread lines: done before every read of the
    /// series, so a read counts every call that finished before it.
    #[inline]
    pub(crate) fn flush(&self) {
        if let Some(t) = self.threads.get() {
            t.flush(&self.hist);
        }
    }
}

/// A histogram bound to one label set. Values are `u64`; for latencies, integer nanoseconds.
///
/// ```
/// use dwcp_telemetry::Registry;
/// use std::time::Duration;
/// let reg = Registry::builder().version("3.0.0").build().unwrap();
/// let lat = reg
///     .histogram("dwcp_v3_component_latency_seconds", "Per-component latency")
///     .dynamic_labels(["component"])
///     .register()
///     .unwrap();
/// let amst = lat.with_labels_or_overflow(&["amst"]);
/// amst.record(250_000);                            // 250 µs in ns
/// amst.record_duration(Duration::from_millis(2));
/// amst.record_secs(0.001);                         // 1 ms
/// amst.record_secs(f64::NAN);                      // rejected and counted, never recorded
/// let s = amst.snapshot();
/// assert_eq!(s.count(), 3);
/// assert_eq!(s.bad_input().nan, 1);
/// assert_eq!(s.quantile(0.5), 1_003_519);          // 1 ms, to 2 significant digits
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Histogram {
    cell: Option<Arc<HistogramCell>>,
}

impl Histogram {
    pub(crate) fn from_cell(cell: Arc<HistogramCell>) -> Self {
        Histogram { cell: Some(cell) }
    }

    /// A stand-alone histogram of durations (`observe` takes seconds), not in any registry
    /// (useful in tests and tools).
    pub fn standalone(layout: Layout) -> Self {
        Histogram::from_cell(Arc::new(HistogramCell::new(
            AtomicHistogram::new(layout),
            false,
            NS_PER_SECOND,
        )))
    }

    #[cfg(feature = "metrics-facade")]
    pub(crate) fn cell(&self) -> Option<&Arc<HistogramCell>> {
        self.cell.as_ref()
    }

    /// A handle that records nothing.
    pub const fn noop() -> Self {
        Histogram { cell: None }
    }

    /// Record one value (nanoseconds for latencies). Above the maximum it is clamped and
    /// counted; zero is recorded and counted.
    #[inline]
    pub fn record(&self, value: u64) {
        if let Some(c) = &self.cell {
            c.hist.record(value);
        }
    }

    /// Record `count` copies of `value`.
    #[inline]
    pub fn record_n(&self, value: u64, count: u64) {
        if let Some(c) = &self.cell {
            c.hist.record_n(value, count);
        }
    }

    /// Record a [`Duration`] as nanoseconds (saturating at `u64::MAX`, then clamped): the
    /// storage of duration (`_seconds`) histograms. On a histogram of another unit it still
    /// records the nanosecond count (nothing is lost), as do [`Histogram::start_timer`],
    /// [`Histogram::time`] and [`Histogram::record_secs`], and counts each such call in
    /// `dwcp_telemetry_values_adjusted_total{reason="not_a_duration"}`: name duration
    /// histograms `*_seconds` or give them `.unit(Unit::Seconds)`.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        self.check_duration();
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// A duration is about to be recorded: count it if this is not a duration histogram
    /// (`not_a_duration` in `dwcp_telemetry_values_adjusted_total`), so a timer on a family
    /// named without `_seconds` is visible rather than silently exported as plain numbers.
    #[inline]
    fn check_duration(&self) {
        if let Some(c) = &self.cell {
            if c.scale != NS_PER_SECOND {
                c.hist.count_not_a_duration();
            }
        }
    }

    /// Record a value in the family's unit: seconds for durations (stored as ns), bytes,
    /// a ratio (stored as millionths), or a plain number (a registry histogram without a unit
    /// stores whole numbers: a fraction is rounded to nearest and counted as
    /// `reason="rounded"`; the facade's unitless histograms keep millionths). NaN and
    /// negative values are rejected and counted; returns whether the value was recorded.
    #[inline]
    pub fn observe(&self, value: f64) -> bool {
        match &self.cell {
            Some(c) => c.hist.record_f64(value, c.scale),
            None => false,
        }
    }

    /// Record seconds given as `f64` (for duration histograms; see [`Histogram::observe`]
    /// for other units). NaN and negative values are rejected and counted; returns whether
    /// the value was recorded.
    #[inline]
    pub fn record_secs(&self, seconds: f64) -> bool {
        match &self.cell {
            Some(c) => {
                if c.scale != NS_PER_SECOND {
                    c.hist.count_not_a_duration();
                }
                c.hist.record_secs(seconds)
            }
            None => false,
        }
    }

    /// Start a timer that records the elapsed nanoseconds into this series when dropped (or
    /// on [`Timer::stop`]). The timer owns a clone of the handle, so it works on a temporary
    /// (`family.get(&labels).start_timer()`) and across `.await` in a spawned task. It reads
    /// the TSC through `quanta`, not `Instant::now()`.
    #[inline]
    pub fn start_timer(&self) -> Timer {
        self.clone().into_timer()
    }

    /// Like [`Histogram::start_timer`], consuming the handle (saves the clone).
    #[inline]
    pub fn into_timer(self) -> Timer {
        self.check_duration();
        Timer {
            histogram: Target::Owned(self),
            start: clock::now_raw(),
        }
    }

    /// Like [`Histogram::start_timer`] for a handle that lives in a `static` (as
    /// `#[instrument_dwcp]`'s call sites keep theirs): the timer refers to it, with no clone
    /// and no reference count, and is still `Send + 'static`.
    #[inline]
    pub fn start_static_timer(&'static self) -> Timer {
        self.check_duration();
        Timer {
            histogram: Target::Static(self),
            start: clock::now_raw(),
        }
    }

    /// Run `f`, recording how long it took.
    #[inline]
    pub fn time<R>(&self, f: impl FnOnce() -> R) -> R {
        self.check_duration();
        let start = clock::now_raw();
        let out = f();
        self.record(clock::nanos_since(start));
        out
    }

    /// A snapshot of everything recorded so far (empty for a no-op handle).
    pub fn snapshot(&self) -> Snapshot {
        match &self.cell {
            Some(c) => {
                c.flush();
                c.hist.snapshot()
            }
            None => Snapshot::empty(Layout::default()),
        }
    }

    /// An [`Interval`] that yields what this histogram records from now on, window by window.
    pub fn interval(&self) -> Interval {
        Interval::new(self.clone(), self.snapshot())
    }

    /// Bytes this series holds (struct, region table and allocated regions).
    pub fn heap_bytes(&self) -> usize {
        self.cell.as_ref().map_or(0, |c| c.hist.heap_bytes())
    }

    /// The recorder itself (`None` for a no-op handle).
    #[inline]
    pub(crate) fn atomic(&self) -> Option<&AtomicHistogram> {
        self.cell.as_deref().map(|c| &c.hist)
    }
}

/// Records the time from [`Histogram::start_timer`] to its drop, in nanoseconds. Owns its
/// histogram handle: `Send + Sync + 'static`, so it can be held across `.await` in a spawned
/// task. A panic or cancellation that drops it still records; [`Timer::discard`] does not.
///
/// ```
/// use dwcp_telemetry::Registry;
/// let reg = Registry::builder().build().unwrap();
/// let fam = reg.histogram("job_seconds", "").dynamic_labels(["job"]).register().unwrap();
/// {
///     let _t = fam.with_labels_or_overflow(&["sync"]).start_timer(); // on a temporary
/// } // recorded here
/// fam.with_labels_or_overflow(&["sync"]).start_timer().discard(); // not recorded
/// assert_eq!(fam.with_labels_or_overflow(&["sync"]).snapshot().count(), 1);
/// ```
#[derive(Debug)]
#[must_use = "a timer records when dropped: bind it with `let _t = ..` (`let _ = ..` drops it at once)"]
pub struct Timer {
    histogram: Target,
    /// The start tick; [`DISARMED`] once stopped or discarded. (No separate flag: a byte
    /// written beside the tick and read back with it a few nanoseconds later stalls store
    /// forwarding on the hot path.)
    start: u64,
}

/// A stopped [`Timer`]'s start: no clock reading is `u64::MAX`.
const DISARMED: u64 = u64::MAX;

/// The histogram a [`Timer`] records into: its own handle, or one in a `static`.
#[derive(Debug)]
enum Target {
    Owned(Histogram),
    Static(&'static Histogram),
}

impl Target {
    #[inline]
    fn record(&self, ns: u64) {
        match self {
            Target::Owned(h) => h.record(ns),
            Target::Static(h) => h.record(ns),
        }
    }
}

impl Timer {
    /// Record now and return the elapsed nanoseconds.
    #[inline]
    pub fn stop(mut self) -> u64 {
        let start = std::mem::replace(&mut self.start, DISARMED);
        let ns = clock::nanos_since(start);
        self.histogram.record(ns);
        ns
    }

    /// Drop without recording.
    pub fn discard(mut self) {
        self.start = DISARMED;
    }

    /// Nanoseconds since the timer started (it keeps running).
    pub fn elapsed_ns(&self) -> u64 {
        clock::nanos_since(self.start)
    }
}

impl Drop for Timer {
    #[inline]
    fn drop(&mut self) {
        if self.start != DISARMED {
            self.record_on_drop();
        }
    }
}

impl Timer {
    #[inline(never)]
    fn record_on_drop(&mut self) {
        self.histogram.record(clock::nanos_since(self.start));
    }
}

impl Lined for Histogram {
    fn lines_slot(&self) -> Option<&OnceLock<Arc<ThreadCells>>> {
        self.cell
            .as_deref()
            .filter(|c| !c.overflow)
            .map(|c| &c.threads)
    }
}
