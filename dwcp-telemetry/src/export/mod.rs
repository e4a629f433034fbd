//! Exporters. Each consumes [`Registry::collect`](crate::Registry::collect) snapshots and sits
//! behind its own cargo feature; the recording core knows nothing about them.
//!
//! - [`prometheus`] (feature `prometheus`): Prometheus text 0.0.4 and OpenMetrics 1.0, and
//!   with feature `http` the `/metrics`, `/health` and `/metrics/summary` server; with feature
//!   `protobuf` also the protobuf exposition with native histograms.
//! - [`summary`] (feature `prometheus`): the `/metrics/summary` JSON (counts, rates,
//!   quantiles, error rates).
//! - [`status`] (feature `prometheus`): the `/status` page and `/status.json`.
//! - [`exponential`]: HDR slots re-binned into base-2 exponential buckets, for OTLP
//!   `ExponentialHistogram`s and Prometheus native histograms.
//! - [`otlp`] (feature `otlp`): OTLP push over gRPC and HTTP/protobuf (trace spans and
//!   metrics; one shared transport).

pub mod exponential;
#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "prometheus")]
pub mod status;
#[cfg(feature = "prometheus")]
pub mod summary;

pub(crate) mod json;
