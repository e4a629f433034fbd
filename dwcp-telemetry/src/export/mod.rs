//! Exporters. Each consumes [`Registry::collect`](crate::Registry::collect) snapshots and sits
//! behind its own cargo feature; the recording core knows nothing about them.
//!
//! - [`prometheus`] (feature `prometheus`): Prometheus text 0.0.4 and OpenMetrics 1.0, and
//!   with feature `http` the `/metrics`, `/health` and `/metrics/summary` server.
//! - [`summary`] (feature `prometheus`): the `/metrics/summary` JSON (counts, rates,
//!   quantiles, error rates).
//! - [`status`] (feature `prometheus`): the `/status` page and `/status.json`.
//! - [`otlp`] (feature `otlp`): OTLP push over gRPC and HTTP/protobuf (trace spans; the
//!   transport is shared with the metrics push).

#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "prometheus")]
pub mod prometheus;
#[cfg(feature = "prometheus")]
pub mod status;
#[cfg(feature = "prometheus")]
pub mod summary;

pub(crate) mod json;
