//! OTLP export over gRPC and HTTP/protobuf (feature `otlp`).
//!
//! - [`config`]: the standard `OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_BSP_*` variables, or a builder.
//! - [`transport`]: signal-generic sending with the OTLP retry rules and self-metrics, used by
//!   the span exporter and the metrics push.
//! - [`traces`]: [`OtlpSpanExporter`], the batching span sink, and [`init_tracing_from_env`].
//! - [`metrics`]: `ExportMetricsServiceRequest`s built from a registry.
//!
//! See `docs/OTLP.md` for pointing a service at a collector.

pub mod config;
pub mod metrics;
pub mod traces;
pub mod transport;

pub use traces::{init_tracing_from_env, init_tracing_from_lookup, OtlpSpanExporter, TracingGuard};
