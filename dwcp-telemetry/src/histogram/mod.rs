//! HDR log-linear histograms: the layout, the lock-free recorder, and snapshots.

mod atomic;
mod layout;
mod snapshot;

pub use atomic::{AtomicHistogram, BadInputCounts};
pub use layout::{Layout, DEFAULT_SIGFIG, ONE_HOUR_NS};
pub use snapshot::Snapshot;
