//! OTLP export (feature `otlp`).

pub mod metrics;
