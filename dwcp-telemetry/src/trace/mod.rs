//! Trace spans: what `#[instrument_dwcp]` produces for a sampled call, and where it goes.
//!
//! The instrumentation builds a [`SpanRecord`] only for a call that was sampled, once the call
//! has finished, and hands it to the installed [`SpanSink`]. With no sink installed, spans are
//! off: nothing is built. An exporter (such as the OTLP one, feature `otlp`) is a sink.
//!
//! The contract of [`SpanSink::submit`]: it never blocks and never grows memory without bound.
//! A sink that cannot take a span drops it and counts the drop.
//!
//! Around the sink:
//! - [`sampler`]: how a call is sampled (decided before anything is built: the parent's
//!   sampled flag, then a trace-id ratio per call site / component, `OTEL_TRACES_SAMPLER`);
//! - [`with_parent`] / [`with_parent_async`]: run a handler under a parent context, such as
//!   one [`extract`](crate::propagation::extract)ed from a message; [`current`] is the
//!   context to [`inject`](crate::propagation::inject) into an outgoing one;
//! - [`MemorySink`]: a bounded in-process sink that keeps the records (tests, benches,
//!   debugging endpoints).

pub(crate) mod context;
mod memory;
mod record;
pub mod sampler;

pub use context::{current, with_parent, with_parent_async};
pub use memory::MemorySink;
pub use record::{AttrValue, SpanEvent, SpanKind, SpanRecord, SpanSink, SpanStatus};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

static SINK: OnceLock<RwLock<Option<Arc<dyn SpanSink>>>> = OnceLock::new();
/// Whether a sink is installed: the one relaxed load an unsampled or spans-off call makes.
static SINK_ON: AtomicBool = AtomicBool::new(false);

/// Whether a span sink is installed (one relaxed atomic load).
#[inline]
pub fn sink_installed() -> bool {
    SINK_ON.load(Ordering::Relaxed)
}

fn slot() -> &'static RwLock<Option<Arc<dyn SpanSink>>> {
    SINK.get_or_init(|| RwLock::new(None))
}

/// Installs the process-wide span sink and returns the one it replaces. Spans are on from now.
pub fn install_sink(sink: Arc<dyn SpanSink>) -> Option<Arc<dyn SpanSink>> {
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    let old = guard.replace(sink);
    SINK_ON.store(true, Ordering::Relaxed);
    old
}

/// Removes the process-wide span sink (spans are off again) and returns it, for example to
/// flush it on shutdown.
pub fn uninstall_sink() -> Option<Arc<dyn SpanSink>> {
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    SINK_ON.store(false, Ordering::Relaxed);
    guard.take()
}

/// The installed span sink, if any.
pub fn sink() -> Option<Arc<dyn SpanSink>> {
    slot().read().unwrap_or_else(|e| e.into_inner()).clone()
}
