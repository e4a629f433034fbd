//! When the span exporter's submitting side wakes its export thread: once per full batch, not
//! once per span (a wake-up is a syscall when the thread sleeps), and never lost.
//!
//! One atomic word holds the count of queued spans (times two) and an "armed" bit; every
//! decision is taken on the result of a read-modify-write of that word, so the protocol does
//! not depend on sequentially consistent plain loads (model-checked in `loom_tests.rs`,
//! `loom_batch_trigger_*`):
//! - submit: [`BatchTrigger::reserve`] (count first), then the queue's `try_send`; on failure
//!   [`BatchTrigger::cancel`]; on success [`BatchTrigger::sent`], and wake the export thread
//!   when it returns `true` (a stored permit, like `tokio::sync::Notify::notify_one`). Only the
//!   thread that sets the armed bit wakes, so there is at most one wake-up per disarm.
//! - export thread, on each wake-up: [`BatchTrigger::woke`] (disarm, and learn whether a full
//!   batch is counted), then take and send batches while [`BatchTrigger::taken`] says a full
//!   batch is still counted (or the queue is empty).
//!
//! The count never under-counts the queue (counted before the send, uncounted after the take),
//! so `taken` never wraps.

use crate::sync::{AtomicUsize, Ordering};

/// The armed bit.
const ARMED: usize = 1;
/// One queued span.
const ONE: usize = 2;

#[derive(Debug)]
pub(crate) struct BatchTrigger {
    state: AtomicUsize,
    batch: usize,
}

impl BatchTrigger {
    pub(crate) fn new(batch: usize) -> Self {
        Self {
            state: AtomicUsize::new(0),
            batch: batch.max(1),
        }
    }

    /// Counts one span about to be queued.
    #[inline]
    pub(crate) fn reserve(&self) {
        self.state.fetch_add(ONE, Ordering::SeqCst);
    }

    /// The queue refused the span reserved for.
    #[inline]
    pub(crate) fn cancel(&self) {
        self.state.fetch_sub(ONE, Ordering::SeqCst);
    }

    /// The span was queued: `true` when the caller must wake the export thread (it armed the
    /// trigger).
    #[inline]
    pub(crate) fn sent(&self) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        if s / ONE < self.batch || s & ARMED != 0 {
            return false;
        }
        self.state.fetch_or(ARMED, Ordering::SeqCst) & ARMED == 0
    }

    /// The export thread woke: disarms; `true` when a full batch is counted.
    pub(crate) fn woke(&self) -> bool {
        self.state.fetch_and(!ARMED, Ordering::SeqCst) / ONE >= self.batch
    }

    /// Spans counted (an upper bound on the queue while submits are in flight).
    pub(crate) fn pending(&self) -> usize {
        self.state.load(Ordering::SeqCst) / ONE
    }

    /// The export thread took `n` spans off the queue: `true` when a full batch is still
    /// counted.
    pub(crate) fn taken(&self, n: usize) -> bool {
        let before = self.state.fetch_sub(n * ONE, Ordering::SeqCst) / ONE;
        before.saturating_sub(n) >= self.batch
    }
}

#[cfg(all(test, loom))]
impl BatchTrigger {
    /// The raw state word (count × 2 | armed), for the models.
    pub(crate) fn raw(&self) -> usize {
        self.state.load(Ordering::SeqCst)
    }
}
