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
//!     .dynamic_labels(["component"])
//!     .register()?;
//! let amst = latency.with_labels_or_overflow(&["amst"]); // bind once
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
//! ## Exporting
//!
//! With the `prometheus` feature, the registry renders as Prometheus text (or OpenMetrics).
//! Bucket bounds are chosen per metric at export time, from the metric's builder, a registry
//! policy ([`RegistryBuilder::policy`]) or its unit's defaults; `dwcp_defaults()` installs the
//! seeds' 0.1 … 30 s bounds for recovery durations:
//!
#![cfg_attr(feature = "prometheus", doc = "```")]
#![cfg_attr(not(feature = "prometheus"), doc = "```ignore")]
//! use dwcp_telemetry::export::prometheus::{render, Format};
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").dwcp_defaults().build()?;
//! let recovery = registry
//!     .histogram("dwcp_recovery_duration_seconds", "Time to recover")
//!     .dynamic_labels(["component"])
//!     .exact_sum(true)
//!     .register()?;
//! let amst = recovery.with_labels_or_overflow(&["amst"]);
//! amst.record(400_000_000); // 0.4 s
//! amst.record(3_000_000_000); // 3 s
//! let text = render(&registry, Format::Text);
//! assert!(text.starts_with(concat!(
//!     "# HELP dwcp_recovery_duration_seconds Time to recover\n",
//!     "# TYPE dwcp_recovery_duration_seconds histogram\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"0.1\"} 0\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"0.5\"} 1\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"1\"} 1\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"2\"} 1\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"5\"} 2\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"10\"} 2\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"30\"} 2\n",
//!     "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"+Inf\"} 2\n",
//!     "dwcp_recovery_duration_seconds_sum{version=\"3.0.0\",component=\"amst\"} 3.4\n",
//!     "dwcp_recovery_duration_seconds_count{version=\"3.0.0\",component=\"amst\"} 2\n",
//! )));
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
//! - `prometheus`: `export::prometheus` renders Prometheus text 0.0.4 and OpenMetrics 1.0;
//!   `export::summary` builds the `/metrics/summary` JSON. No extra dependencies but `itoa`.
//! - `http` (implies `prometheus`): `export::prometheus::http`, a hyper 1 + tokio server for
//!   `/metrics`, `/health` and `/metrics/summary`, with limits and optional bearer auth.
//! - `otlp`: `export::otlp`, OTLP push over gRPC (tonic) and HTTP/protobuf (hyper): the
//!   batching span exporter and `init_tracing_from_env()` (see `docs/OTLP.md`).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod anomaly;
#[cfg(any(feature = "otlp", all(test, loom)))]
mod batch_trigger;
pub mod catalog;
pub mod clock;
pub mod error;
#[cfg(any(feature = "prometheus", feature = "otlp"))]
pub mod export;
#[cfg(feature = "metrics-facade")]
pub mod facade;
pub mod histogram;
pub mod instrument;
pub mod labels;
pub mod metric;
pub mod propagation;
pub mod registry;
pub mod resilience;
mod sync;
pub mod trace;

/// Instruments a handler: request, error and in-flight metrics and its latency histogram,
/// bound once per call site, and a trace span for a sampled call (see [`trace`] and
/// `docs/INSTRUMENT.md`).
pub use dwcp_telemetry_macros::instrument_dwcp;
/// Derives [`LabelSet`](trait@LabelSet) for a struct with named fields (see [`labels`]).
pub use dwcp_telemetry_macros::LabelSet;
/// Derives [`LabelValue`](trait@LabelValue) for an enum of unit variants (see [`labels`]).
pub use dwcp_telemetry_macros::LabelValue;
pub use error::{ConfigError, LabelError, RegistrationError};
pub use histogram::{Layout, Snapshot};
pub use labels::{DynamicLabels, LabelSet, LabelValue};
pub use metric::{Counter, Gauge, Histogram, Interval, Timer};
pub use registry::{
    global, set_global, CounterFamily, Descriptor, FamilySnapshot, GaugeFamily, HistogramFamily,
    HistogramView, MetricKind, MetricPolicy, NameMatch, RegionCounts, Registry, RegistryBuilder,
    SeriesSnapshot, Unit, Value, Visitor,
};

#[cfg(all(test, loom))]
mod loom_tests;

/// The Rust examples of the README and the guides in `docs/`, run as doctests so that what
/// a user copies from them compiles and does what the text says (they use the exporters
/// and tokio, so they run with the features CI runs with: `--all-features`).
#[cfg(all(
    doctest,
    feature = "http",
    feature = "otlp",
    feature = "metrics-facade"
))]
mod guide_doctests {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/ANOMALY.md")]
    struct Anomaly;
    #[doc = include_str!("../../docs/EXPORT.md")]
    struct Export;
    #[doc = include_str!("../../docs/INSTRUMENT.md")]
    struct Instrument;
    #[doc = include_str!("../../docs/OTLP.md")]
    struct Otlp;
    #[doc = include_str!("../../docs/RESILIENCE.md")]
    struct Resilience;
    #[doc = include_str!("../../docs/SCRAPING.md")]
    struct Scraping;
    #[doc = include_str!("../../docs/STATUS.md")]
    struct Status;
}
