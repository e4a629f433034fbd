//! W3C Trace Context propagation for DWCP message metadata.
//!
//! A trace crosses a service call when the caller [`inject`]s its [`SpanContext`] into the
//! message metadata as the two [W3C Trace Context Level 1](https://www.w3.org/TR/trace-context/)
//! headers, `traceparent` and `tracestate`, and the callee [`extract`]s it again. The metadata is
//! any carrier implementing [`Injector`] / [`Extractor`]; both are implemented for
//! `HashMap<String, String>` and `BTreeMap<String, String>`.
//!
//! ```
//! use std::collections::HashMap;
//! use dwcp_telemetry::propagation::{extract, inject, SpanContext, TraceParent};
//!
//! // Caller: start (or continue) a trace and put it in the message metadata.
//! let mut root = SpanContext::new_root(true);
//! root.state.insert("dwcp", "amst")?;
//! let mut metadata: HashMap<String, String> = HashMap::new();
//! inject(&root, &mut metadata);
//! assert_eq!(metadata["traceparent"].len(), 55);
//! assert_eq!(metadata["tracestate"], "dwcp=amst");
//!
//! // Callee: continue the caller's trace.
//! let remote = extract(&metadata)?.expect("a traceparent was injected");
//! assert!(remote.remote && remote.flags.is_sampled());
//! assert_eq!(remote.trace_id, root.trace_id);
//! let span = remote.child(); // same trace, new span id
//! assert_eq!(span.trace_id, root.trace_id);
//! assert_ne!(span.span_id, remote.span_id);
//!
//! // Headers are parsed strictly; invalid ones are errors, never panics.
//! let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
//! assert!(tp.flags().is_sampled());
//! assert!("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"
//!     .parse::<TraceParent>()
//!     .is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Rules applied
//!
//! - `traceparent` version `00` must be exactly `00-<32 hex>-<16 hex>-<2 hex>` (55 characters,
//!   lowercase hex only); version `ff`, an all-zero trace id and an all-zero parent (span) id
//!   are invalid. A higher version is parsed leniently, as the spec asks: its first 55
//!   characters are read as version 00 if it is exactly 55 long or followed by `-`.
//! - Optional whitespace (space, tab) around a header value is ignored, as HTTP does.
//! - An invalid `traceparent` is an error and its `tracestate` is ignored; an invalid
//!   `tracestate` with a valid `traceparent` is dropped (the context is kept, with an empty
//!   state).
//! - [`inject`] always writes version `00`, zeroes the flags this version does not define, and
//!   truncates `tracestate` to [`TraceState::MAX_HEADER_LEN`] bytes as the spec recommends.
//! - Extraction matches header names exactly first, then ASCII-case-insensitively.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";

/// Length of a version-00 `traceparent` value.
const TRACEPARENT_LEN: usize = 55;

// ---------------------------------------------------------------------------------------------
// Errors.

/// Why a `traceparent`, `tracestate`, id, or `tracestate` entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceContextError {
    /// The `traceparent` value is empty (or only whitespace).
    #[error("traceparent is empty")]
    EmptyTraceParent,
    /// A value has the wrong length.
    #[error("{field} must be {expected} characters long, got {found}")]
    InvalidLength {
        /// What was being parsed (`traceparent`, `trace-id`, `parent-id`, `trace-flags`).
        field: &'static str,
        /// The length required (the minimum, for a `traceparent` of a future version).
        expected: usize,
        /// The length found, in bytes.
        found: usize,
    },
    /// A field holds something other than hex digits.
    #[error("{field} must be lowercase hex digits (0-9, a-f)")]
    InvalidHex {
        /// The field (`version`, `trace-id`, `parent-id`, `trace-flags`).
        field: &'static str,
    },
    /// A field holds upper-case hex digits, which the spec forbids.
    #[error("{field} contains uppercase hex digits; only lowercase (0-9, a-f) is allowed")]
    UppercaseHex {
        /// The field (`version`, `trace-id`, `parent-id`, `trace-flags`).
        field: &'static str,
    },
    /// A `-` separator is missing.
    #[error("traceparent needs '-' at byte {position}")]
    MissingDelimiter {
        /// Byte offset (0-based) where the `-` was expected.
        position: usize,
    },
    /// Version `ff` is forbidden.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// The trace id is all zeroes.
    #[error("trace-id must not be all zeroes")]
    ZeroTraceId,
    /// The parent (span) id is all zeroes.
    #[error("parent-id (span id) must not be all zeroes")]
    ZeroSpanId,
    /// `tracestate` holds more than [`TraceState::MAX_MEMBERS`] list members.
    #[error("tracestate has {count} list members; at most 32 are allowed")]
    TooManyMembers {
        /// Number of non-empty list members found.
        count: usize,
    },
    /// A `tracestate` list member has no `=`.
    #[error("tracestate list member {member} is not key=value")]
    MissingEquals {
        /// 0-based index of the list member (empty members not counted).
        member: usize,
    },
    /// A `tracestate` key does not follow the spec: `[a-z][a-z0-9_\-*/]{0,255}`, or
    /// `tenant@system` with `[a-z0-9][a-z0-9_\-*/]{0,240}` `@` `[a-z][a-z0-9_\-*/]{0,13}`.
    #[error("tracestate list member {member} has an invalid key: use [a-z][a-z0-9_-*/]{{0,255}} or tenant@system")]
    InvalidKey {
        /// 0-based index of the list member (`TraceState::insert` reports 0: the front).
        member: usize,
    },
    /// A `tracestate` value is empty, longer than 256 characters, ends with a space, or holds a
    /// character outside printable ASCII (0x20-0x7E) or a `,` or `=`.
    #[error("tracestate list member {member} has an invalid value: use 1 to 256 printable ASCII characters except ',' and '=', not ending with a space")]
    InvalidValue {
        /// 0-based index of the list member (`TraceState::insert` reports 0: the front).
        member: usize,
    },
    /// A `tracestate` key appears more than once.
    #[error("tracestate key {key:?} appears more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Hex helpers (no indexing: everything goes through iterators and `get`).

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_digit(b: u8, field: &'static str) -> Result<u8, TraceContextError> {
    match b {
        b'0'..=b'9' => Ok(b - b'0'),
        b'a'..=b'f' => Ok(b - b'a' + 10),
        b'A'..=b'F' => Err(TraceContextError::UppercaseHex { field }),
        _ => Err(TraceContextError::InvalidHex { field }),
    }
}

/// Decode exactly `2 * N` lowercase hex digits into `N` bytes.
fn decode_hex<const N: usize>(
    src: &[u8],
    field: &'static str,
) -> Result<[u8; N], TraceContextError> {
    if src.len() != 2 * N {
        return Err(TraceContextError::InvalidLength {
            field,
            expected: 2 * N,
            found: src.len(),
        });
    }
    // Report non-hex before uppercase: "4BxZ" is not hex at all.
    if let Some(&b) = src.iter().find(|b| !b.is_ascii_hexdigit()) {
        hex_digit(b, field)?;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let mut v = 0u8;
        for &b in pair {
            v = (v << 4) | hex_digit(b, field)?;
        }
        *o = v;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    use fmt::Write as _;
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            let c = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            f.write_char(char::from(c))?;
        }
    }
    Ok(())
}

/// Trim the HTTP optional whitespace (space, horizontal tab) around a value.
fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

// ---------------------------------------------------------------------------------------------
// Ids and flags.

/// A 16-byte trace id; never all zeroes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

impl TraceId {
    /// The id from its bytes (big-endian, as written in hex), or `None` if they are all zero.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// The id's bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// A new random id (non-cryptographic, see [`SpanContext::new_root`]).
    pub fn random() -> Self {
        loop {
            let hi = next_random().to_be_bytes();
            let lo = next_random().to_be_bytes();
            let mut bytes = [0u8; 16];
            for (o, b) in bytes.iter_mut().zip(hi.iter().chain(lo.iter())) {
                *o = *b;
            }
            if let Some(id) = Self::from_bytes(bytes) {
                return id;
            }
        }
    }
}

impl fmt::Display for TraceId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl FromStr for TraceId {
    type Err = TraceContextError;

    /// Exactly 32 lowercase hex digits, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex::<16>(s.as_bytes(), "trace-id")?;
        Self::from_bytes(bytes).ok_or(TraceContextError::ZeroTraceId)
    }
}

/// An 8-byte span (parent) id; never all zeroes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

impl SpanId {
    /// The id from its bytes (big-endian, as written in hex), or `None` if they are all zero.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        (bytes != [0; 8]).then_some(Self(bytes))
    }

    /// The id's bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// A new random id (non-cryptographic, see [`SpanContext::new_root`]).
    pub fn random() -> Self {
        loop {
            if let Some(id) = Self::from_bytes(next_random().to_be_bytes()) {
                return id;
            }
        }
    }
}

impl fmt::Display for SpanId {
    /// 16 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for SpanId {
    type Err = TraceContextError;

    /// Exactly 16 lowercase hex digits, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex::<8>(s.as_bytes(), "parent-id")?;
        Self::from_bytes(bytes).ok_or(TraceContextError::ZeroSpanId)
    }
}

/// The `trace-flags` byte. Level 1 defines one flag, `sampled` (bit 0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// No flag set: not sampled.
    pub const NOT_SAMPLED: Self = Self(0);
    /// The `sampled` flag.
    pub const SAMPLED: Self = Self(1);

    /// Flags from their byte, keeping every bit.
    pub const fn new(bits: u8) -> Self {
        Self(bits)
    }

    /// The flags byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether the `sampled` flag is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// These flags with `sampled` set or cleared.
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            Self(self.0 | Self::SAMPLED.0)
        } else {
            Self(self.0 & !Self::SAMPLED.0)
        }
    }

    /// Only the flags Level 1 defines (`sampled`); the others must be sent as zero.
    pub const fn known(self) -> Self {
        Self(self.0 & Self::SAMPLED.0)
    }
}

impl fmt::Display for TraceFlags {
    /// 2 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &[self.0])
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFlags({self})")
    }
}

impl FromStr for TraceFlags {
    type Err = TraceContextError;

    /// Exactly 2 lowercase hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let [b] = decode_hex::<1>(s.as_bytes(), "trace-flags")?;
        Ok(Self(b))
    }
}

// ---------------------------------------------------------------------------------------------
// traceparent.

/// A parsed `traceparent` header: `version-traceid-parentid-flags`.
///
/// Display writes the parsed version and the four version-00 fields (a future version's
/// extra fields are not kept), which parses back to the same value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TraceParent {
    version: u8,
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
}

impl TraceParent {
    /// A version-00 `traceparent`.
    pub fn new(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> Self {
        Self {
            version: 0,
            trace_id,
            span_id,
            flags,
        }
    }

    /// The version the header was written with (`0` for one built by [`TraceParent::new`]).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The parent (caller's span) id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The trace flags, every bit as received.
    pub fn flags(&self) -> TraceFlags {
        self.flags
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &[self.version])?;
        write!(f, "-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

impl FromStr for TraceParent {
    type Err = TraceContextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = trim_ows(s).as_bytes();
        if b.is_empty() {
            return Err(TraceContextError::EmptyTraceParent);
        }
        let too_short = TraceContextError::InvalidLength {
            field: "traceparent",
            expected: TRACEPARENT_LEN,
            found: b.len(),
        };
        let [version] = decode_hex::<1>(b.get(..2).ok_or_else(|| too_short.clone())?, "version")?;
        if version == 0xff {
            return Err(TraceContextError::InvalidVersion);
        }
        if b.len() < TRACEPARENT_LEN || (version == 0 && b.len() != TRACEPARENT_LEN) {
            return Err(too_short);
        }
        // A future version may append fields, but only after a '-'.
        for position in [2, 35, 52, TRACEPARENT_LEN] {
            match b.get(position) {
                Some(b'-') => {}
                None if position == TRACEPARENT_LEN => {}
                _ => return Err(TraceContextError::MissingDelimiter { position }),
            }
        }
        let field = |from: usize, to: usize| b.get(from..to).unwrap_or_default();
        let trace_id = decode_hex::<16>(field(3, 35), "trace-id")?;
        let span_id = decode_hex::<8>(field(36, 52), "parent-id")?;
        let [flags] = decode_hex::<1>(field(53, 55), "trace-flags")?;
        Ok(Self {
            version,
            trace_id: TraceId::from_bytes(trace_id).ok_or(TraceContextError::ZeroTraceId)?,
            span_id: SpanId::from_bytes(span_id).ok_or(TraceContextError::ZeroSpanId)?,
            flags: TraceFlags(flags),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// tracestate.

/// A `tracestate` header: up to 32 vendor `key=value` entries, most recently updated first.
///
/// Parsing rejects the whole header if any member is invalid, a key repeats, or there are
/// more than 32 members; empty members (`a=1,,b=2`, whitespace around members) are skipped.
/// Display writes every entry, joined by `,`; [`inject`] writes at most
/// [`MAX_HEADER_LEN`](Self::MAX_HEADER_LEN) bytes (see [`TraceState::truncate`]).
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub struct TraceState {
    entries: Vec<(String, String)>,
}

impl TraceState {
    /// Most list members a `tracestate` may hold.
    pub const MAX_MEMBERS: usize = 32;
    /// Longest `tracestate` header [`inject`] writes (the spec's minimum to propagate).
    pub const MAX_HEADER_LEN: usize = 512;
    /// Entries longer than this are the first dropped when truncating.
    pub const LARGE_ENTRY_LEN: usize = 128;

    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The entries, front (most recent) first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Add or update `key`, moving it to the front as the spec requires. If that makes 33
    /// entries, the last one is dropped. An invalid key or value is an error and changes
    /// nothing.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceContextError> {
        if !valid_key(key.as_bytes()) {
            return Err(TraceContextError::InvalidKey { member: 0 });
        }
        if !valid_value(value.as_bytes()) {
            return Err(TraceContextError::InvalidValue { member: 0 });
        }
        self.entries.retain(|(k, _)| k != key);
        self.entries.insert(0, (key.to_owned(), value.to_owned()));
        self.entries.truncate(Self::MAX_MEMBERS);
        Ok(())
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// Length of the serialised header, in bytes.
    pub fn header_len(&self) -> usize {
        let members: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum();
        members + self.entries.len().saturating_sub(1)
    }

    /// Drop entries until the header is at most `max_len` bytes, as the spec recommends:
    /// entries longer than [`LARGE_ENTRY_LEN`](Self::LARGE_ENTRY_LEN) first (last one first),
    /// then from the end.
    pub fn truncate(&mut self, max_len: usize) {
        while self.header_len() > max_len {
            let large = self
                .entries
                .iter()
                .rposition(|(k, v)| k.len() + 1 + v.len() > Self::LARGE_ENTRY_LEN);
            match large {
                Some(pos) => {
                    self.entries.remove(pos);
                }
                None => {
                    self.entries.pop();
                }
            }
        }
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl FromStr for TraceState {
    type Err = TraceContextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let members = s.split(',').map(trim_ows).filter(|m| !m.is_empty());
        for (member, m) in members.enumerate() {
            if member >= Self::MAX_MEMBERS {
                let count = s.split(',').filter(|m| !trim_ows(m).is_empty()).count();
                return Err(TraceContextError::TooManyMembers { count });
            }
            let (key, value) = m
                .split_once('=')
                .ok_or(TraceContextError::MissingEquals { member })?;
            if !valid_key(key.as_bytes()) {
                return Err(TraceContextError::InvalidKey { member });
            }
            if !valid_value(value.as_bytes()) {
                return Err(TraceContextError::InvalidValue { member });
            }
            if entries.iter().any(|(k, _)| k == key) {
                return Err(TraceContextError::DuplicateKey {
                    key: key.to_owned(),
                });
            }
            entries.push((key.to_owned(), value.to_owned()));
        }
        Ok(Self { entries })
    }
}

fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// `[a-z][a-z0-9_\-*/]{0,255}` or `[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}`.
fn valid_key(key: &[u8]) -> bool {
    let mut parts = key.splitn(2, |&b| b == b'@');
    let first = parts.next().unwrap_or_default();
    let rest_ok = |s: &[u8]| s.iter().skip(1).all(|&b| is_key_char(b));
    match parts.next() {
        None => {
            (1..=256).contains(&first.len())
                && first.first().is_some_and(u8::is_ascii_lowercase)
                && rest_ok(first)
        }
        Some(system) => {
            (1..=241).contains(&first.len())
                && first
                    .first()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && rest_ok(first)
                && (1..=14).contains(&system.len())
                && system.first().is_some_and(u8::is_ascii_lowercase)
                && rest_ok(system)
        }
    }
}

/// 1 to 256 of 0x20-0x7E except `,` and `=`, not ending with a space.
fn valid_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

// ---------------------------------------------------------------------------------------------
// Span context.

/// What crosses a service call: the trace, the caller's span, the flags and vendor state.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SpanContext {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span (or, once extracted, the remote caller's span).
    pub span_id: SpanId,
    /// Trace flags (`sampled`).
    pub flags: TraceFlags,
    /// Vendor state, carried along unchanged unless a vendor edits it.
    pub state: TraceState,
    /// Whether this context was extracted from a carrier (a remote parent).
    pub remote: bool,
}

impl SpanContext {
    /// A local context with the given ids and flags and an empty state.
    pub fn new(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> Self {
        Self {
            trace_id,
            span_id,
            flags,
            state: TraceState::new(),
            remote: false,
        }
    }

    /// The first span of a new trace: random ids (from a fast per-thread PRNG, not a
    /// cryptographic one; never all zero), `sampled` as given, empty state.
    pub fn new_root(sampled: bool) -> Self {
        Self::new(
            TraceId::random(),
            SpanId::random(),
            TraceFlags::NOT_SAMPLED.with_sampled(sampled),
        )
    }

    /// A local child span: same trace, flags and state, a new random span id.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            flags: self.flags,
            state: self.state.clone(),
            remote: false,
        }
    }

    /// The `traceparent` to send: version 00, flags this version does not define zeroed.
    pub fn traceparent(&self) -> TraceParent {
        TraceParent::new(self.trace_id, self.span_id, self.flags.known())
    }

    /// A remote context from header values (see [`extract`] for the rules).
    pub fn from_headers(
        traceparent: &str,
        tracestate: Option<&str>,
    ) -> Result<Self, TraceContextError> {
        let tp: TraceParent = traceparent.parse()?;
        let state = tracestate
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        Ok(Self {
            trace_id: tp.trace_id,
            span_id: tp.span_id,
            flags: tp.flags,
            state,
            remote: true,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Carriers.

/// Somewhere to write headers (message metadata).
pub trait Injector {
    /// Set `key` to `value`, replacing any previous value.
    fn set(&mut self, key: &str, value: String);

    /// Remove `key`, so that a stale value does not outlive an injection. The default does
    /// nothing.
    fn remove(&mut self, key: &str) {
        let _ = key;
    }
}

/// Somewhere to read headers (message metadata) from.
pub trait Extractor {
    /// The value of `key`. Map implementations match the exact key first, then any key equal
    /// to it ignoring ASCII case.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> Injector for HashMap<String, String, S> {
    /// Replaces any key equal to `key` ignoring ASCII case.
    fn set(&mut self, key: &str, value: String) {
        Injector::remove(self, key);
        self.insert(key.to_owned(), value);
    }

    /// Removes every key equal to `key` ignoring ASCII case.
    fn remove(&mut self, key: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
    }
}

impl<S: BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

impl Injector for BTreeMap<String, String> {
    /// Replaces any key equal to `key` ignoring ASCII case.
    fn set(&mut self, key: &str, value: String) {
        Injector::remove(self, key);
        self.insert(key.to_owned(), value);
    }

    /// Removes every key equal to `key` ignoring ASCII case.
    fn remove(&mut self, key: &str) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
    }
}

impl Extractor for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key)
            .or_else(|| {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })
            .map(String::as_str)
    }
}

impl<T: Injector + ?Sized> Injector for &mut T {
    fn set(&mut self, key: &str, value: String) {
        (**self).set(key, value);
    }

    fn remove(&mut self, key: &str) {
        (**self).remove(key);
    }
}

impl<T: Extractor + ?Sized> Extractor for &T {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

/// Write `cx` into `carrier` as `traceparent` (version 00) and `tracestate`.
///
/// Flags Level 1 does not define are sent as zero. The state is truncated to
/// [`TraceState::MAX_HEADER_LEN`] bytes (see [`TraceState::truncate`]); an empty state
/// removes any `tracestate` already in the carrier.
pub fn inject<I: Injector + ?Sized>(cx: &SpanContext, carrier: &mut I) {
    carrier.set(TRACEPARENT, cx.traceparent().to_string());
    let state = if cx.state.header_len() > TraceState::MAX_HEADER_LEN {
        let mut state = cx.state.clone();
        state.truncate(TraceState::MAX_HEADER_LEN);
        state.to_string()
    } else {
        cx.state.to_string()
    };
    if state.is_empty() {
        carrier.remove(TRACESTATE);
    } else {
        carrier.set(TRACESTATE, state);
    }
}

/// Read a remote [`SpanContext`] from `carrier`.
///
/// - No `traceparent`: `Ok(None)` (start a new trace).
/// - An invalid `traceparent`: the error (start a new trace; its `tracestate` is ignored).
/// - A valid `traceparent`: `Ok(Some(cx))` with `cx.remote == true`; a missing or invalid
///   `tracestate` gives an empty [`TraceState`].
pub fn extract<E: Extractor + ?Sized>(
    carrier: &E,
) -> Result<Option<SpanContext>, TraceContextError> {
    match carrier.get(TRACEPARENT) {
        None => Ok(None),
        Some(tp) => SpanContext::from_headers(tp, carrier.get(TRACESTATE)).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------
// Id generation: splitmix64 per thread, seeded from the process's random hasher keys, the
// clock, a stack address and a global counter. Fast and well spread; not cryptographic.

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG_STATE: Cell<u64> = Cell::new(seed());
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    // The counter alone makes every seed distinct; the stack address tells threads apart
    // (no `thread::current()`, which is not always available during thread teardown).
    SEED_COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut h);
    let here = 0u8;
    std::ptr::addr_of!(here).hash(&mut h);
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        d.as_nanos().hash(&mut h);
    }
    h.finish()
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn next_random() -> u64 {
    RNG_STATE
        .try_with(|s| {
            let x = s.get().wrapping_add(GOLDEN);
            s.set(x);
            mix(x)
        })
        // During thread-local destruction: a fresh seed each call.
        .unwrap_or_else(|_| mix(seed()))
}
