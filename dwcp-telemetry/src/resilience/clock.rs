//! The time source of breakers and SLA trackers: the crate's TSC clock, or a manual clock
//! that tests advance by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// A clock a test advances by hand (it starts at zero and never moves by itself).
///
/// ```
/// use dwcp_telemetry::resilience::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let manual = ManualClock::new();
/// let clock = Clock::manual(manual.clone());
/// manual.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now_nanos(), 1_500_000_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock::default())
    }

    /// Move the clock forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(add))
            });
    }

    /// Set the clock to `nanos` since its zero (it may go backwards: only tests do this).
    pub fn set_nanos(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::Release);
    }

    /// Nanoseconds since its zero.
    pub fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

/// A monotonic time source: [`Clock::Monotonic`] (the crate's calibrated TSC clock) or a
/// [`ManualClock`] for tests.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The crate's monotonic clock ([`crate::clock`]).
    #[default]
    Monotonic,
    /// A clock advanced by hand.
    Manual(Arc<ManualClock>),
}

static EPOCH: LazyLock<u64> = LazyLock::new(crate::clock::now_raw);

impl Clock {
    /// A manual clock.
    pub fn manual(clock: Arc<ManualClock>) -> Self {
        Clock::Manual(clock)
    }

    /// Nanoseconds since the process's first use of the clock (or the manual clock's zero).
    pub fn now_nanos(&self) -> u64 {
        match self {
            Clock::Monotonic => {
                let epoch = *EPOCH;
                crate::clock::nanos_between(epoch, crate::clock::now_raw())
            }
            Clock::Manual(m) => m.now_nanos(),
        }
    }

    /// A raw reading for timing one call: only meaningful to [`Clock::elapsed_nanos`].
    #[inline]
    pub(crate) fn raw(&self) -> u64 {
        match self {
            Clock::Monotonic => crate::clock::now_raw(),
            Clock::Manual(m) => m.now_nanos(),
        }
    }

    /// Nanoseconds from the raw reading `start` to now.
    #[inline]
    pub(crate) fn elapsed_nanos(&self, start: u64) -> u64 {
        match self {
            Clock::Monotonic => crate::clock::nanos_between(start, crate::clock::now_raw()),
            Clock::Manual(m) => m.now_nanos().saturating_sub(start),
        }
    }
}
