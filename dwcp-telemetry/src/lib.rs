//! # dwcp-telemetry
//!
//! In-process telemetry for DWCP services: lock-free HDR histograms, counters and gauges,
//! labelled the DWCP way (every metric carries `version`), with a bounded memory footprint,
//! a cardinality cap, and the `metrics` facade.
//!
//! Recording goes through a handle bound once to a label set: one relaxed atomic add, no
//! lock, no hashing, no allocation (after a histogram region's first touch).
//!
//! ```
//! use dwcp_telemetry::{Registry, Value};
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let latency = registry
//!     .histogram("dwcp_request_duration_seconds", "Request latency")
//!     .labels(["component"])
//!     .register()?;
//! let amst = latency.with_labels(&["amst"]); // bind once
//! for us in [120, 250, 900] {
//!     amst.record(us * 1_000); // nanoseconds
//! }
//! let snap = amst.snapshot();
//! assert_eq!(snap.count(), 3);
//! assert_eq!(snap.quantile(0.5), 250_879); // 250 µs to 2 significant digits (≤ 0.78 %)
//!
//! let families = registry.collect();
//! assert_eq!(families[0].descriptor.name(), "dwcp_request_duration_seconds");
//! assert!(matches!(&families[0].series[0].value, Value::Histogram(s) if s.count() == 3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Bad input
//!
//! Nothing panics on user data. Histogram values above the trackable maximum are clamped to
//! it; NaN and negative `f64` seconds are rejected; zero is recorded. All of these are counted
//! in `dwcp_telemetry_values_adjusted_total{metric, reason}`. Invalid metric or label names are
//! a [`RegistrationError`] at registration. Label sets past a metric's cardinality limit
//! (default 2,000) record into one overflow series (label values `__overflow__`), counted in
//! `dwcp_telemetry_cardinality_overflow_records_total`.
//!
//! ## Features
//!
//! - `metrics-facade` (default): [`facade::DwcpRecorder`] implements `metrics::Recorder`.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod anomaly;
pub mod clock;
pub mod error;
#[cfg(feature = "metrics-facade")]
pub mod facade;
pub mod histogram;
pub mod metric;
pub mod registry;
mod sync;

pub use error::{ConfigError, LabelError, RegistrationError};
pub use histogram::{Interval, Layout, Snapshot};
pub use metric::{Counter, Gauge, Histogram, Timer};
pub use registry::{
    global, set_global, CounterFamily, Descriptor, FamilySnapshot, GaugeFamily, HistogramFamily,
    MetricKind, Registry, RegistryBuilder, SeriesSnapshot, Unit, Value,
};

#[cfg(all(test, loom))]
mod loom_tests;
