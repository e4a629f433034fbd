//! Trace spans: what `#[instrument_dwcp]` produces for a sampled call, and where it goes.
//!
//! The instrumentation builds a [`SpanRecord`] only for a call that was sampled, once the call
//! has finished, and hands it to the installed [`SpanSink`]. With no sink installed, spans are
//! off: nothing is built. An exporter (such as the OTLP one, feature `otlp`) is a sink.
//!
//! The contract of [`SpanSink::submit`]: it never blocks and never grows memory without bound.
//! A sink that cannot take a span drops it and counts the drop.

mod record;

pub use record::{AttrValue, SpanEvent, SpanKind, SpanRecord, SpanSink, SpanStatus};

use std::sync::{Arc, OnceLock, RwLock};

static SINK: OnceLock<RwLock<Option<Arc<dyn SpanSink>>>> = OnceLock::new();

fn slot() -> &'static RwLock<Option<Arc<dyn SpanSink>>> {
    SINK.get_or_init(|| RwLock::new(None))
}

/// Installs the process-wide span sink and returns the one it replaces. Spans are on from now.
pub fn install_sink(sink: Arc<dyn SpanSink>) -> Option<Arc<dyn SpanSink>> {
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    guard.replace(sink)
}

/// Removes the process-wide span sink (spans are off again) and returns it, for example to
/// flush it on shutdown.
pub fn uninstall_sink() -> Option<Arc<dyn SpanSink>> {
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    guard.take()
}

/// The installed span sink, if any.
pub fn sink() -> Option<Arc<dyn SpanSink>> {
    slot().read().unwrap_or_else(|e| e.into_inner()).clone()
}
