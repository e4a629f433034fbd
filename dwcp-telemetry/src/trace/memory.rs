//! A bounded in-process span sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{SpanRecord, SpanSink};

/// A [`SpanSink`] that keeps up to `capacity` finished spans in memory, oldest first, and
/// drops (and counts) what arrives while it is full. For tests, benches and debugging
/// endpoints; an exporter is the production sink.
///
/// ```
/// use std::sync::Arc;
/// use dwcp_telemetry::trace::{self, MemorySink};
///
/// let sink = Arc::new(MemorySink::new(1024));
/// trace::install_sink(sink.clone());
/// // ... instrumented calls ...
/// let spans = sink.take();
/// # let _ = spans;
/// trace::uninstall_sink();
/// ```
#[derive(Debug)]
pub struct MemorySink {
    capacity: usize,
    spans: Mutex<VecDeque<SpanRecord>>,
    dropped: AtomicU64,
}

impl MemorySink {
    /// A sink holding at most `capacity` spans.
    pub fn new(capacity: usize) -> Self {
        MemorySink {
            capacity,
            spans: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SpanRecord>> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes and returns every span held, oldest first.
    pub fn take(&self) -> Vec<SpanRecord> {
        self.lock().drain(..).collect()
    }

    /// A copy of every span held, oldest first (they stay held).
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().iter().cloned().collect()
    }

    /// Removes every span held and returns how many there were.
    pub fn clear(&self) -> usize {
        let mut g = self.lock();
        let n = g.len();
        g.clear();
        n
    }

    /// The number of spans held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no span is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spans refused because the sink was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl SpanSink for MemorySink {
    fn submit(&self, span: SpanRecord) {
        let mut g = self.lock();
        if g.len() < self.capacity {
            g.push_back(span);
        } else {
            drop(g);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Nothing is in flight: everything submitted is already held.
    fn flush(&self, _timeout: Duration) -> bool {
        true
    }
}
