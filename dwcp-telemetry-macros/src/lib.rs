//! Procedural macros for `dwcp-telemetry`.
//!
//! The `#[instrument_dwcp]` attribute lands in a later issue; this crate exists now so the
//! workspace layout and the exact version pin are in place from the start.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
