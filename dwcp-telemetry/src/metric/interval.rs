//! Interval (delta-since-last) snapshots, for windows such as "p99 of the last 10 s".

use super::histogram::Histogram;
use crate::histogram::Snapshot;

/// Yields what a histogram recorded since the previous call. Each `Interval` keeps its own
/// baseline, so several consumers (an anomaly detector, an SLA window) can window the same
/// histogram independently without resetting it.
///
/// ```
/// use dwcp_telemetry::Registry;
/// let reg = Registry::builder().version("3.0.0").build().unwrap();
/// let h = reg.histogram("dwcp_request_duration_seconds", "Request latency").register().unwrap().handle();
/// let mut window = h.interval();
/// h.record(1_000);
/// assert_eq!(window.next_delta().count(), 1);
/// h.record(2_000);
/// h.record(3_000);
/// assert_eq!(window.next_delta().count(), 2);
/// assert_eq!(window.next_delta().count(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Interval {
    histogram: Histogram,
    last: Snapshot,
}

impl Interval {
    pub(crate) fn new(histogram: Histogram, last: Snapshot) -> Self {
        Interval { histogram, last }
    }

    /// What was recorded since the previous call (or since this `Interval` was made).
    pub fn next_delta(&mut self) -> Snapshot {
        let now = self.histogram.snapshot();
        let delta = now.delta(&self.last);
        self.last = now;
        delta
    }

    /// The cumulative snapshot taken at the last call.
    pub fn last_cumulative(&self) -> &Snapshot {
        &self.last
    }
}
