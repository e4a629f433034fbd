//! The status page's recent-events journal: anomaly detections, circuit-breaker transitions and
//! sampled spans, each in a bounded ring so that memory stays fixed however busy the service is.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::anomaly::{Anomaly, AnomalyObserver};
use crate::trace::{SpanRecord, SpanSink, SpanStatus};

/// How many events of each kind the journal keeps by default.
pub const DEFAULT_CAPACITY: usize = 50;
/// How many operations keep recent spans, and how many spans each keeps.
pub const DEFAULT_SPAN_OPERATIONS: usize = 32;
/// Spans kept per operation.
pub const DEFAULT_SPANS_PER_OPERATION: usize = 5;

/// One anomaly detection, as shown on the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyEvent {
    /// Unix time of the detection, seconds.
    pub at_unix: f64,
    /// The watched signal's name.
    pub metric: String,
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// The signed z-score.
    pub z: f64,
    /// The observed value.
    pub value: f64,
}

/// One circuit-breaker state change.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionEvent {
    /// Unix time of the transition, seconds.
    pub at_unix: f64,
    /// The breaker's name (its `circuit` label).
    pub circuit: String,
    /// The state left (`closed`, `open`, `half_open`, ...).
    pub from: Cow<'static, str>,
    /// The state entered.
    pub to: Cow<'static, str>,
}

/// One recent sampled span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEntry {
    /// Unix time the span started, seconds.
    pub start_unix: f64,
    /// Duration, seconds.
    pub duration_seconds: f64,
    /// The trace id, lower-case hex.
    pub trace_id: String,
    /// `ok`, or the error message's first line.
    pub status: String,
    /// Whether the span failed.
    pub error: bool,
}

/// Recent spans of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationSpans {
    /// The span name (the operation).
    pub operation: String,
    /// Newest last.
    pub spans: Vec<SpanEntry>,
}

/// A bounded store of recent events for the status page. Cheap to share (`Arc`); every list is
/// a ring: the oldest entry goes when a new one arrives at capacity. Writers take a short mutex,
/// so feed it only with rare events (detections, transitions, sampled spans), never per call.
#[derive(Debug)]
pub struct Journal {
    capacity: usize,
    span_operations: usize,
    spans_per_operation: usize,
    anomalies: Mutex<VecDeque<AnomalyEvent>>,
    transitions: Mutex<VecDeque<TransitionEvent>>,
    spans: Mutex<VecDeque<OperationSpans>>,
}

impl Default for Journal {
    fn default() -> Self {
        Journal::new(DEFAULT_CAPACITY)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

fn push_bounded<T>(ring: &mut VecDeque<T>, cap: usize, item: T) {
    if cap == 0 {
        return;
    }
    while ring.len() >= cap {
        ring.pop_front();
    }
    ring.push_back(item);
}

impl Journal {
    /// A journal keeping `capacity` anomalies and `capacity` transitions (at least 1 each), and
    /// the default number of recent spans.
    pub fn new(capacity: usize) -> Self {
        Journal {
            capacity: capacity.max(1),
            span_operations: DEFAULT_SPAN_OPERATIONS,
            spans_per_operation: DEFAULT_SPANS_PER_OPERATION,
            anomalies: Mutex::new(VecDeque::new()),
            transitions: Mutex::new(VecDeque::new()),
            spans: Mutex::new(VecDeque::new()),
        }
    }

    /// The process-wide journal that [`StatusPage`](super::StatusPage) reads by default.
    pub fn global() -> Arc<Journal> {
        static GLOBAL: OnceLock<Arc<Journal>> = OnceLock::new();
        GLOBAL.get_or_init(|| Arc::new(Journal::default())).clone()
    }

    /// Records an anomaly detection now.
    pub fn record_anomaly(&self, metric: &str, anomaly: &Anomaly) {
        let e = AnomalyEvent {
            at_unix: unix_now(),
            metric: metric.to_owned(),
            severity: anomaly.severity.as_str(),
            z: anomaly.z,
            value: anomaly.value,
        };
        push_bounded(&mut lock(&self.anomalies), self.capacity, e);
    }

    /// Records a circuit-breaker transition now.
    pub fn record_transition(
        &self,
        circuit: &str,
        from: impl Into<Cow<'static, str>>,
        to: impl Into<Cow<'static, str>>,
    ) {
        let e = TransitionEvent {
            at_unix: unix_now(),
            circuit: circuit.to_owned(),
            from: from.into(),
            to: to.into(),
        };
        push_bounded(&mut lock(&self.transitions), self.capacity, e);
    }

    /// Records a finished sampled span under its operation (its name).
    pub fn record_span(&self, span: &SpanRecord) {
        let (status, error) = match &span.status {
            SpanStatus::Error { message } => {
                (message.lines().next().unwrap_or("error").to_owned(), true)
            }
            _ => ("ok".to_owned(), false),
        };
        let entry = SpanEntry {
            start_unix: span.start_unix_nanos as f64 / 1e9,
            duration_seconds: span.end_unix_nanos.saturating_sub(span.start_unix_nanos) as f64
                / 1e9,
            trace_id: span.trace_id.to_string(),
            status,
            error,
        };
        let mut ops = lock(&self.spans);
        if let Some(i) = ops.iter().position(|o| o.operation == span.name) {
            // Most recently active operation last, so the least recent is evicted first.
            if let Some(mut op) = ops.remove(i) {
                if op.spans.len() >= self.spans_per_operation {
                    op.spans.remove(0);
                }
                op.spans.push(entry);
                ops.push_back(op);
            }
        } else {
            let op = OperationSpans {
                operation: span.name.to_string(),
                spans: vec![entry],
            };
            push_bounded(&mut ops, self.span_operations, op);
        }
    }

    /// Recent anomalies, newest first.
    pub fn anomalies(&self) -> Vec<AnomalyEvent> {
        lock(&self.anomalies).iter().rev().cloned().collect()
    }

    /// Recent transitions, newest first.
    pub fn transitions(&self) -> Vec<TransitionEvent> {
        lock(&self.transitions).iter().rev().cloned().collect()
    }

    /// Recent spans per operation, sorted by operation name.
    pub fn spans(&self) -> Vec<OperationSpans> {
        let mut v: Vec<_> = lock(&self.spans).iter().cloned().collect();
        v.sort_by(|a, b| a.operation.cmp(&b.operation));
        v
    }

    /// An anomaly observer that records into this journal (wire it beside any other observer).
    pub fn observer(self: &Arc<Self>) -> JournalObserver {
        JournalObserver(self.clone())
    }

    /// A span sink that records every span into this journal and then hands it to `inner`
    /// (the exporter), if any. Install it with [`trace::install_sink`](crate::trace::install_sink).
    pub fn span_sink(self: &Arc<Self>, inner: Option<Arc<dyn SpanSink>>) -> Arc<dyn SpanSink> {
        Arc::new(JournalSpanSink {
            journal: self.clone(),
            inner,
        })
    }
}

/// An [`AnomalyObserver`] that records detections into a [`Journal`].
#[derive(Debug, Clone)]
pub struct JournalObserver(Arc<Journal>);

impl AnomalyObserver for JournalObserver {
    fn on_anomaly(&self, metric: &str, anomaly: &Anomaly) {
        self.0.record_anomaly(metric, anomaly);
    }
}

#[derive(Debug)]
struct JournalSpanSink {
    journal: Arc<Journal>,
    inner: Option<Arc<dyn SpanSink>>,
}

impl SpanSink for JournalSpanSink {
    fn submit(&self, span: SpanRecord) {
        self.journal.record_span(&span);
        if let Some(inner) = &self.inner {
            inner.submit(span);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.inner.as_ref().map_or(true, |i| i.flush(timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::propagation::{SpanId, TraceFlags, TraceId};
    use crate::trace::SpanKind;

    fn span(name: &'static str, start: u64, error: bool) -> SpanRecord {
        SpanRecord {
            trace_id: TraceId::from_bytes([1; 16]).unwrap(),
            span_id: SpanId::from_bytes([2; 8]).unwrap(),
            parent_span_id: None,
            flags: TraceFlags::SAMPLED,
            trace_state: String::new(),
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nanos: start,
            end_unix_nanos: start + 1_500_000,
            status: if error {
                SpanStatus::Error {
                    message: "boom\nsecond line".into(),
                }
            } else {
                SpanStatus::Unset
            },
            attributes: Vec::new(),
            events: Vec::new(),
        }
    }

    #[test]
    fn rings_stay_bounded_and_keep_the_newest() {
        let j = Journal::new(3);
        for i in 0..10 {
            j.record_transition(&format!("c{i}"), "closed", "open");
        }
        let t = j.transitions();
        assert_eq!(
            t.iter().map(|t| t.circuit.as_str()).collect::<Vec<_>>(),
            ["c9", "c8", "c7"]
        );
        for i in 0..100u64 {
            j.record_span(&span(
                if i % 2 == 0 { "a" } else { "b" },
                i * 1_000_000_000,
                i == 99,
            ));
        }
        let spans = j.spans();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[1].operation, "b");
        assert_eq!(spans[1].spans.len(), DEFAULT_SPANS_PER_OPERATION);
        let last = spans[1].spans.last().unwrap();
        assert_eq!(last.start_unix, 99.0);
        assert_eq!(last.duration_seconds, 0.0015);
        assert_eq!(last.status, "boom");
        assert!(last.error);
        assert_eq!(last.trace_id, "01010101010101010101010101010101");
        // Many operations: only the most recently active are kept.
        let names: Vec<&'static str> = (0..100)
            .map(|i| &*Box::leak(format!("op{i:03}").into_boxed_str()))
            .collect();
        for n in &names {
            j.record_span(&span(n, 0, false));
        }
        let spans = j.spans();
        assert_eq!(spans.len(), DEFAULT_SPAN_OPERATIONS);
        assert_eq!(spans[0].operation, "op068");
    }
}
