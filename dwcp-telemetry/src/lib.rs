//! dwcp-telemetry: lock-free HDR-histogram telemetry for DWCP services.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod anomaly;
