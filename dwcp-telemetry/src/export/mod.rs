//! Exporters. Each consumes [`Registry::collect`](crate::Registry::collect) snapshots and sits
//! behind its own cargo feature; the recording core knows nothing about them.
//!
//! - [`prometheus`] (feature `prometheus`): Prometheus text 0.0.4 and OpenMetrics 1.0, and
//!   with feature `http` the `/metrics`, `/health` and `/metrics/summary` server.
//! - [`summary`] (feature `prometheus`): the `/metrics/summary` JSON (counts, rates,
//!   quantiles, error rates).

pub mod prometheus;
pub mod summary;

pub(crate) mod json;
