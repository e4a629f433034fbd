//! Prometheus exposition: text format 0.0.4 and OpenMetrics 1.0 ([`text`]), and with feature
//! `http` an HTTP server for `/metrics`, `/health` and `/metrics/summary` ([`http`]).
//!
//! What is exported:
//!
//! - every series carries the registry's constant labels first (`version="…"`, then any
//!   [`RegistryBuilder::const_label`](crate::RegistryBuilder::const_label)s);
//! - counters get `_total` on their samples (registered with or without it); in OpenMetrics the
//!   family name has no `_total`, in text 0.0.4 the family is named like its samples;
//! - histograms are cumulative `_bucket{le="…"}` lines, `+Inf` last, then `_sum` and `_count`,
//!   in the metric's base unit (seconds for durations: stored nanoseconds × 1e-9). The `le`
//!   bounds are chosen per metric at export time ([`Descriptor::buckets`](crate::Descriptor::buckets)),
//!   so denser bounds can be configured later without losing recorded data. A bound counts
//!   every recorded value whose storage slot starts at or below it: exact for values on the
//!   bound, within the histogram's precision (0.78 % at 2 significant digits) otherwise;
//! - gauges may be `NaN`, `+Inf` or `-Inf`;
//! - OpenMetrics adds `# UNIT` when the family name ends in `_<unit>`, and `# EOF`.
//!
//! Invalid metric and label names never reach the exposition: registration rejects them with
//! a [`RegistrationError`](crate::RegistrationError) (the `metrics` facade sanitises instead).

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "protobuf")]
pub mod protobuf;
pub mod text;

#[cfg(feature = "http")]
pub use http::{BackgroundServer, PrometheusServer, ServerBuilder, ServerError, ServerHandle};
pub use text::{render, Format, TextEncoder, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
