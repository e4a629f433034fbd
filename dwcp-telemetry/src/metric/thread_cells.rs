//! Per-thread counting lines for `#[instrument_dwcp]`'s hot path.
//!
//! A thread that records takes a *slot* on first use and gives it back when it exits. Every
//! [`ThreadCells`] has one cache line per slot, so a thread counts with a plain load and store
//! on a line that no other thread writes: no locked instruction, no contended line. A reader
//! sums the lines. Threads beyond [`SLOTS`] (or a thread whose slot is already gone, while its
//! thread-local destructors run) share one fallback line and count with atomic adds.
//!
//! Why this is sound:
//!
//! - only the slot's owner writes its line, so its load-then-store loses no update;
//! - a slot passes from an exiting thread to a new one through the pool's mutex, so the new
//!   owner's first load sees the old owner's last store (the unlock happens before the lock);
//! - readers load each line atomically: a sum may miss a count in progress, never tear one.
//!
//! The in-flight line is signed: an async call may start on one thread and finish on another,
//! so one line can go below zero while the sum stays exact.
//!
//! ## The pending duration
//!
//! Each line also holds one *pending* duration. A finished call swaps its duration in and
//! records the one it took out (the thread's previous call's) into the series' histogram.
//! The slot a record increments depends on the value, so recording a call's own duration
//! makes that locked add's address depend on the clock reading just taken, and on the AMD
//! EPYC hosts of `docs/PERFORMANCE.md` the next `rdtsc` then waits for it: about 10 ns a
//! call, a third of the macro's cost (`docs/INSTRUMENT.md`). The previous duration's slot
//! does not depend on that reading.
//!
//! Nothing is lost or counted twice, and a reader never sees a bucket go down:
//!
//! - a pending duration leaves the line only by an atomic swap, so exactly one party takes
//!   it out and records it: the next call finishing on the line, or a reader;
//! - every reader of the histogram first [`flush`es](ThreadCells::flush) the lines (swaps
//!   [`EMPTY`] in and records what it took), so a snapshot counts every call that finished
//!   before it began; the histogram's slots only ever grow.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use crate::histogram::AtomicHistogram;
use crate::sync::{AtomicI64, AtomicU64, Mutex, Ordering};

/// Threads that get a line of their own; later ones share the fallback line.
#[cfg(not(loom))]
pub(crate) const SLOTS: usize = 64;
/// Two under loom: enough for the models' threads, and few enough lines for loom to
/// explore every read of them.
#[cfg(loom)]
pub(crate) const SLOTS: usize = 2;

/// A line's pending duration when it has none (a duration never reaches it: they are
/// capped one below).
pub(crate) const EMPTY: u64 = u64::MAX;

/// One thread's counts, alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Line {
    in_flight: AtomicI64,
    ok: AtomicU64,
    /// A finished call's duration (ns) not yet in the histogram, or [`EMPTY`].
    pending: AtomicU64,
}

impl Line {
    fn new() -> Self {
        Line {
            in_flight: AtomicI64::new(0),
            ok: AtomicU64::new(0),
            pending: AtomicU64::new(EMPTY),
        }
    }

    /// Leave `ns` pending: swap it in and record into `hist` the duration it replaces.
    #[inline(always)]
    fn leave(&self, (hist, ns): (&AtomicHistogram, u64)) {
        let before = self.pending.swap(ns.min(EMPTY - 1), Ordering::Relaxed);
        if before != EMPTY {
            hist.record(before);
        }
    }
}

/// A call site's in-flight and `ok` counts, one line per slot plus the fallback line.
#[derive(Debug)]
pub(crate) struct ThreadCells {
    /// Indexed by slot; `lines[SLOTS]` is the fallback line.
    lines: Box<[Line; SLOTS + 1]>,
}

impl Default for ThreadCells {
    fn default() -> Self {
        Self::new()
    }
}

impl ThreadCells {
    /// Zero counts.
    pub(crate) fn new() -> Self {
        ThreadCells {
            lines: Box::new(std::array::from_fn(|_| Line::new())),
        }
    }

    /// A call started: counted in flight on this thread's line. Returns that line (a slot, or
    /// [`SLOTS`] for the fallback line), where a call that finishes on the same thread
    /// finishes ([`ThreadCells::finish_on`]) without looking its line up again.
    #[inline]
    pub(crate) fn start(&self) -> usize {
        match slot() {
            Some(i) => {
                own_add_i(&self.lines[i].in_flight, 1);
                i
            }
            None => {
                self.lines[SLOTS].in_flight.fetch_add(1, Ordering::Relaxed);
                SLOTS
            }
        }
    }

    /// A call finished on this thread (`ok`, or with another status, counted elsewhere): its
    /// line, where the caller may leave its duration ([`Finished::leave`]) once it has read
    /// the clock.
    #[inline]
    pub(crate) fn finish(&self, ok: bool) -> Finished<'_> {
        self.finish_on(slot().unwrap_or(SLOTS), ok)
    }

    /// [`ThreadCells::finish`] on `line`, which [`ThreadCells::start`] returned on this same
    /// thread (a synchronous call): the thread still owns that slot, since a slot is only
    /// given back when its thread exits.
    #[inline]
    pub(crate) fn finish_on(&self, line: usize, ok: bool) -> Finished<'_> {
        if line < SLOTS {
            let line = &self.lines[line];
            own_add_i(&line.in_flight, -1);
            if ok {
                let n = line.ok.load(Ordering::Relaxed);
                line.ok.store(n.wrapping_add(1), Ordering::Relaxed);
            }
            Finished { line }
        } else {
            let line = &self.lines[SLOTS];
            line.in_flight.fetch_sub(1, Ordering::Relaxed);
            if ok {
                line.ok.fetch_add(1, Ordering::Relaxed);
            }
            Finished { line }
        }
    }

    /// Record every pending duration into `hist` (the histogram whose durations these lines
    /// hold): what a reader does before it reads `hist`.
    pub(crate) fn flush(&self, hist: &AtomicHistogram) {
        for line in self.lines.iter() {
            // Most lines are empty: a load keeps them shared instead of taking each one.
            if line.pending.load(Ordering::Relaxed) != EMPTY {
                let ns = line.pending.swap(EMPTY, Ordering::Relaxed);
                if ns != EMPTY {
                    hist.record(ns);
                }
            }
        }
    }

    /// `(in flight, ok)` now: the sums of every line (in flight is never below 0).
    pub(crate) fn read(&self) -> (u64, u64) {
        let (mut in_flight, mut ok) = (0i64, 0u64);
        for line in self.lines.iter() {
            in_flight = in_flight.wrapping_add(line.in_flight.load(Ordering::Relaxed));
            ok = ok.wrapping_add(line.ok.load(Ordering::Relaxed));
        }
        (u64::try_from(in_flight).unwrap_or(0), ok)
    }
}

/// A handle whose series can carry per-thread lines (the `ok` counter, the in-flight gauge
/// and the duration histogram of `#[instrument_dwcp]` call sites): the lines' counts, or
/// pending durations, are part of the series' value.
pub(crate) trait Lined {
    /// Where the series keeps its lines: `None` for a no-op handle or an overflow series.
    fn lines_slot(&self) -> Option<&OnceLock<Arc<ThreadCells>>>;

    /// The series' lines, made by `init` if it has none yet.
    fn thread_cells(&self, init: impl FnOnce() -> Arc<ThreadCells>) -> Option<Arc<ThreadCells>> {
        self.lines_slot().map(|s| s.get_or_init(init).clone())
    }
}

/// A finished call's line, where its duration is left.
pub(crate) struct Finished<'a> {
    line: &'a Line,
}

impl Finished<'_> {
    /// Leave the call's duration pending: `(histogram, ns)`, where that histogram
    /// [`ThreadCells::flush`]es these lines before every read (see the module docs).
    #[inline(always)]
    pub(crate) fn leave(self, timed: (&AtomicHistogram, u64)) {
        self.line.leave(timed);
    }
}

/// Adds `d` to a line only this thread writes: a load and a store, no locked instruction.
#[inline]
fn own_add_i(cell: &AtomicI64, d: i64) {
    let v = cell.load(Ordering::Relaxed);
    cell.store(v.wrapping_add(d), Ordering::Relaxed);
}

/// The free slots; `None` until first used (then `0..SLOTS`, handed out lowest first).
#[cfg(not(loom))]
static POOL: Mutex<Option<Vec<usize>>> = Mutex::new(None);
#[cfg(loom)]
loom::lazy_static! {
    static ref POOL: Mutex<Option<Vec<usize>>> = Mutex::new(None);
}

/// This thread's slot, given back to the pool when the thread exits.
struct Slot(Cell<Option<usize>>);

impl Slot {
    fn take() -> Slot {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        let free = pool.get_or_insert_with(|| (0..SLOTS).rev().collect());
        Slot(Cell::new(free.pop()))
    }

    fn give_back(&self) {
        if let Some(i) = self.0.take() {
            let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
            pool.get_or_insert_with(Vec::new).push(i);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Under loom, thread-local destructors may not touch loom's primitives: the models
        // give the slot back with `exit_thread` at the end of each thread instead.
        #[cfg(not(loom))]
        {
            // Calls made by later destructors count on the fallback line.
            LINE.set(SLOTS);
            self.give_back();
        }
    }
}

/// What a thread's exit does to its slot (for the loom models).
#[cfg(loom)]
pub(crate) fn exit_thread() {
    SLOT.with(Slot::give_back);
}

/// [`LINE`] before the thread's first call.
#[cfg(not(loom))]
const UNSET: usize = usize::MAX;

#[cfg(not(loom))]
std::thread_local! {
    static SLOT: Slot = Slot::take();
    /// The thread's line: its slot, [`SLOTS`] for the fallback line, or [`UNSET`].
    /// Const-initialised and without a destructor, so reading it is a single load with no
    /// state check, and it stays readable while the thread's other locals are destroyed.
    static LINE: std::cell::Cell<usize> = const { std::cell::Cell::new(UNSET) };
}
#[cfg(loom)]
loom::thread_local! {
    static SLOT: Slot = Slot::take();
}

/// This thread's slot (below [`SLOTS`]): `None` past [`SLOTS`] threads, or once the thread's
/// slot is given back.
#[cfg(not(loom))]
#[inline]
fn slot() -> Option<usize> {
    match LINE.get() {
        i if i < SLOTS => Some(i),
        SLOTS => None,
        _ => first_use(),
    }
}

/// The thread's first call: take a slot (its owner, `SLOT`, gives it back at thread exit).
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn first_use() -> Option<usize> {
    let slot = SLOT.try_with(|s| s.0.get()).ok().flatten();
    LINE.set(slot.unwrap_or(SLOTS));
    slot
}

#[cfg(loom)]
#[inline]
fn slot() -> Option<usize> {
    SLOT.try_with(|s| s.0.get()).ok().flatten()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_are_exact_across_threads_and_slot_reuse() {
        let cells = Arc::new(ThreadCells::new());
        // More threads than slots, in waves, so slots are taken, given back and reused, and
        // some threads count on the fallback line.
        for _wave in 0..3 {
            let threads: Vec<_> = (0..SLOTS + 8)
                .map(|_| {
                    let c = Arc::clone(&cells);
                    std::thread::spawn(move || {
                        for _ in 0..1_000 {
                            c.start();
                            let _ = c.finish(true);
                        }
                        c.start();
                        c.start();
                        let _ = c.finish(false);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        let threads = 3 * (SLOTS as u64 + 8);
        assert_eq!(cells.read(), (threads, threads * 1_000));
    }

    #[test]
    fn a_call_may_finish_on_another_thread() {
        let cells = Arc::new(ThreadCells::new());
        cells.start();
        let c = Arc::clone(&cells);
        std::thread::spawn(move || {
            let _ = c.finish(true);
        })
        .join()
        .unwrap();
        assert_eq!(cells.read(), (0, 1));
        let c = Arc::clone(&cells);
        std::thread::spawn(move || c.start()).join().unwrap();
        assert_eq!(cells.read(), (1, 1));
        let _ = cells.finish(false);
        assert_eq!(cells.read(), (0, 1));
    }
}
