//! Bound metric handles: [`Counter`], [`Gauge`] and [`Histogram`].
//!
//! A handle is made once per label set by a family (see [`crate::Registry`]) and then records
//! with relaxed atomics only: no lookup, no hashing, no lock, no allocation. Handles are cheap
//! to clone (one reference count) and every kind has a `noop()` handle that records nothing.

mod counter;
mod gauge;
mod histogram;
mod interval;
pub(crate) mod thread_cells;

pub use counter::Counter;
pub(crate) use counter::CounterCell;
pub use gauge::Gauge;
pub(crate) use gauge::GaugeCell;
pub(crate) use histogram::HistogramCell;
pub use histogram::{Histogram, Timer};
pub use interval::Interval;
