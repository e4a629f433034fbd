//! The finished-span record handed from the instrumentation to an exporter.

use std::borrow::Cow;

use crate::propagation::{SpanId, TraceFlags, TraceId};

/// One finished, sampled span. Times are Unix-epoch nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    /// The trace the span belongs to.
    pub trace_id: TraceId,
    /// The span's own id.
    pub span_id: SpanId,
    /// The parent span, local or remote; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The span's trace flags (sampled is set: only sampled spans are recorded).
    pub flags: TraceFlags,
    /// The W3C `tracestate` header value carried by the span's context (empty when none).
    pub trace_state: String,
    /// The span name: the operation (`dwcp.operation`).
    pub name: Cow<'static, str>,
    /// The span kind.
    pub kind: SpanKind,
    /// Start time, Unix-epoch nanoseconds.
    pub start_unix_nanos: u64,
    /// End time, Unix-epoch nanoseconds (≥ start).
    pub end_unix_nanos: u64,
    /// Outcome.
    pub status: SpanStatus,
    /// Attributes such as `code.function`, `code.namespace`, `dwcp.component`,
    /// `dwcp.operation` and the user's `fields(..)`.
    pub attributes: Vec<(Cow<'static, str>, AttrValue)>,
    /// Events, such as the `exception` event of a failed call.
    pub events: Vec<SpanEvent>,
}

/// OTel's span kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpanKind {
    /// An operation inside the process (the default).
    #[default]
    Internal,
    /// The server side of a remote call.
    Server,
    /// The client side of a remote call.
    Client,
    /// The sender of an asynchronous message.
    Producer,
    /// The receiver of an asynchronous message.
    Consumer,
}

/// A span's outcome, as OTel's status.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SpanStatus {
    /// Not set (the call succeeded and nothing says more).
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with a description.
    Error {
        /// What went wrong (bounded in length by the producer).
        message: Cow<'static, str>,
    },
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AttrValue {
    /// A string.
    Str(Cow<'static, str>),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

/// A timestamped event inside a span, such as `exception`.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanEvent {
    /// The event name (`exception` for a failure).
    pub name: Cow<'static, str>,
    /// When, Unix-epoch nanoseconds.
    pub time_unix_nanos: u64,
    /// The event's attributes (`exception.type`, `exception.message`, ...).
    pub attributes: Vec<(Cow<'static, str>, AttrValue)>,
}

/// Where finished spans go. Implementations must not block the caller: a full queue drops
/// the span and counts the drop.
pub trait SpanSink: Send + Sync + std::fmt::Debug + 'static {
    /// Takes one finished span. Never blocks.
    fn submit(&self, span: SpanRecord);
    /// Best effort: hands everything queued so far to the exporter and waits at most `timeout`
    /// for it to be sent. Returns whether everything queued was sent.
    fn flush(&self, timeout: std::time::Duration) -> bool;
}
