//! HDR log-linear histograms: the layout, the lock-free recorder, and snapshots.

mod atomic;
mod interval;
mod layout;
mod snapshot;

pub use atomic::{AtomicHistogram, BadInputCounts};
pub use interval::Interval;
pub use layout::{Layout, DEFAULT_SIGFIG, ONE_HOUR_NS};
pub use snapshot::Snapshot;
