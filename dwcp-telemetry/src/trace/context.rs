//! The current span context: a thread-local, set while an instrumented call runs (for an
//! `async` call, during each poll of its future) and while a handler runs under
//! [`with_parent`] / [`with_parent_async`].

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::num::NonZeroU64;
use std::sync::Arc;

use crate::propagation::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// A span context without its `tracestate` (kept apart, see [`STATE`]): `Copy`, word-aligned
/// (ids as integers, so setting and restoring it is a few aligned moves), never allocating.
/// Ids are never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ctx {
    /// The trace id's first 8 bytes, big-endian.
    pub(crate) trace_hi: u64,
    /// The trace id's last 8 bytes, big-endian: what the ratio decision reads.
    pub(crate) trace_lo: u64,
    pub(crate) span: NonZeroU64,
    /// The trace flags (low byte) and, in bit 8, whether the context is remote: one word,
    /// so that the context is four aligned words with no padding (copies stay aligned moves).
    pub(crate) bits: u64,
}

const REMOTE: u64 = 1 << 8;

impl Ctx {
    /// A copy of `*self` read a word at a time. Copying a context the caller stored a word at
    /// a time (as a guard's fields are) with the compiler's 16-byte loads makes each load
    /// wait until both stores it spans reach the cache (a failed store-to-load forward).
    #[inline(always)]
    pub(crate) fn read_by_words(&self) -> Ctx {
        // SAFETY: each pointer comes from a reference to a field of `*self`, so it is valid,
        // aligned and points to an initialised `u64` (a `NonZeroU64` for `span`) that nothing
        // writes while `&self` lives.
        unsafe {
            Ctx {
                trace_hi: std::ptr::read_volatile(&self.trace_hi),
                trace_lo: std::ptr::read_volatile(&self.trace_lo),
                span: std::ptr::read_volatile(&self.span),
                bits: std::ptr::read_volatile(&self.bits),
            }
        }
    }

    #[inline]
    pub(crate) fn bits(flags: TraceFlags, remote: bool) -> u64 {
        u64::from(flags.bits()) | if remote { REMOTE } else { 0 }
    }

    #[inline]
    pub(crate) fn flags(&self) -> TraceFlags {
        TraceFlags::new(self.bits.to_le_bytes()[0])
    }

    #[inline]
    pub(crate) fn remote(&self) -> bool {
        self.bits & REMOTE != 0
    }

    #[inline]
    pub(crate) fn sampled(&self) -> bool {
        self.bits & u64::from(TraceFlags::SAMPLED.bits()) != 0
    }

    pub(crate) fn trace_id(&self) -> TraceId {
        let mut b = [0u8; 16];
        for (o, i) in b.iter_mut().zip(
            self.trace_hi
                .to_be_bytes()
                .into_iter()
                .chain(self.trace_lo.to_be_bytes()),
        ) {
            *o = i;
        }
        TraceId::from_bytes(b).unwrap_or_else(TraceId::random)
    }

    pub(crate) fn span_id(&self) -> SpanId {
        SpanId::from_bytes(self.span.get().to_be_bytes()).unwrap_or_else(SpanId::random)
    }

    pub(crate) fn from_parts(
        trace_id: TraceId,
        span_id: SpanId,
        flags: TraceFlags,
        remote: bool,
    ) -> Self {
        let t = trace_id.to_bytes();
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        for (o, i) in hi.iter_mut().chain(lo.iter_mut()).zip(t) {
            *o = i;
        }
        Ctx {
            trace_hi: u64::from_be_bytes(hi),
            trace_lo: u64::from_be_bytes(lo),
            span: NonZeroU64::new(u64::from_be_bytes(span_id.to_bytes()))
                .unwrap_or(NonZeroU64::MIN),
            bits: Ctx::bits(flags, remote),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ids: a Weyl sequence per thread mixed as wyrand does (const-initialised: no lazy-init
// check, no destructor), seeded on first use from the process's random hasher keys, a global
// counter and the clock.

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

#[cold]
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    SEEDS
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .hash(&mut h);
    crate::clock::now_raw().hash(&mut h);
    h.finish() | 1
}

/// wyrand's mix: the two halves of a 128-bit product folded together (two multiplies'
/// worth of work in one `mul`).
#[inline(always)]
fn mix(a: u64) -> u64 {
    let t = u128::from(a) * u128::from(a ^ 0xe703_7ed1_a0b4_28db);
    (t >> 64) as u64 ^ t as u64
}

/// A random non-zero id from the thread's generator.
#[inline]
pub(crate) fn random_id() -> NonZeroU64 {
    let [x] = random_ids::<1>();
    NonZeroU64::new(x).unwrap_or(NonZeroU64::MIN)
}

/// `N` random ids, with one read and one write of the thread's generator state (a
/// Weyl sequence, each step mixed as wyrand does).
#[inline(always)]
pub(crate) fn random_ids<const N: usize>() -> [u64; N] {
    let mut v = RNG.try_with(Cell::get).unwrap_or(0);
    if v == 0 {
        v = seed();
    }
    let ids = std::array::from_fn(|i| mix(v.wrapping_add(GOLDEN.wrapping_mul(i as u64 + 1))));
    let next = v.wrapping_add(GOLDEN.wrapping_mul(N as u64));
    // 0 means "not seeded yet".
    let _ = RNG.try_with(|s| s.set(if next == 0 { GOLDEN } else { next }));
    ids
}

/// The current context, one word a cell: `span == 0` means none (the next call is a root).
/// Read and written a word at a time, so that a read of a context just restored is forwarded
/// from the stores that restored it (a wider load across two narrower stores stalls until
/// they reach the cache).
struct Current {
    trace_hi: Cell<u64>,
    trace_lo: Cell<u64>,
    span: Cell<u64>,
    bits: Cell<u64>,
}

impl Current {
    #[inline(always)]
    fn get(&self) -> Option<Ctx> {
        Some(Ctx {
            span: NonZeroU64::new(self.span.get())?,
            trace_hi: self.trace_hi.get(),
            trace_lo: self.trace_lo.get(),
            bits: self.bits.get(),
        })
    }

    #[inline(always)]
    fn set(&self, ctx: Option<Ctx>) {
        match ctx {
            Some(c) => {
                self.trace_hi.set(c.trace_hi);
                self.trace_lo.set(c.trace_lo);
                self.span.set(c.span.get());
                self.bits.set(c.bits);
            }
            None => self.span.set(0),
        }
    }
}

thread_local! {
    static CURRENT: Current = const {
        Current {
            trace_hi: Cell::new(0),
            trace_lo: Cell::new(0),
            span: Cell::new(0),
            bits: Cell::new(0),
        }
    };
    /// The `tracestate` of the trace a `with_parent` scope runs in (`None` when empty).
    static STATE: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The current context, or `None` (also during thread teardown).
#[inline]
pub(crate) fn get() -> Option<Ctx> {
    CURRENT.try_with(Current::get).ok().flatten()
}

/// Replaces the current context and returns the previous one.
#[inline]
fn replace(ctx: Option<Ctx>) -> Option<Ctx> {
    CURRENT
        .try_with(|c| {
            let prev = c.get();
            c.set(ctx);
            prev
        })
        .ok()
        .flatten()
}

/// The `tracestate` in effect, as the header value (empty when none).
pub(crate) fn state_string() -> String {
    STATE
        .try_with(|s| s.borrow().as_deref().map(str::to_owned))
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn replace_state(state: Option<Arc<str>>) -> Option<Arc<str>> {
    STATE.try_with(|s| s.replace(state)).ok().flatten()
}

/// Sets a context for as long as it lives, then restores the previous one (also when the
/// scope unwinds).
#[derive(Debug)]
#[must_use]
pub(crate) struct CtxScope {
    prev: Option<Ctx>,
}

impl CtxScope {
    #[inline]
    pub(crate) fn enter(ctx: Ctx) -> Self {
        CtxScope {
            prev: replace(Some(ctx)),
        }
    }
}

impl Drop for CtxScope {
    #[inline]
    fn drop(&mut self) {
        replace(self.prev);
    }
}

/// A parent scope: the context and its `tracestate`.
struct ParentScope {
    _ctx: CtxScope,
    prev_state: Option<Option<Arc<str>>>,
}

impl ParentScope {
    fn enter(ctx: Ctx, state: &Option<Arc<str>>) -> Self {
        ParentScope {
            _ctx: CtxScope::enter(ctx),
            prev_state: Some(replace_state(state.clone())),
        }
    }
}

impl Drop for ParentScope {
    fn drop(&mut self) {
        if let Some(prev) = self.prev_state.take() {
            replace_state(prev);
        }
    }
}

fn split(parent: &SpanContext) -> (Ctx, Option<Arc<str>>) {
    let ctx = Ctx::from_parts(parent.trace_id, parent.span_id, parent.flags, parent.remote);
    let state = (!parent.state.is_empty()).then(|| Arc::from(parent.state.to_string()));
    (ctx, state)
}

/// Runs `f` with `parent` as the current span context: instrumented calls inside are its
/// children (sampled if it is, for a parent-based sampler) and carry its trace id and
/// `tracestate`. Use it for a handler of a message whose metadata held a `traceparent`:
///
/// ```
/// use std::collections::HashMap;
/// use dwcp_telemetry::{propagation, trace};
///
/// let mut metadata = HashMap::new();
/// metadata.insert(
///     "traceparent".to_string(),
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
/// );
/// if let Ok(Some(remote)) = propagation::extract(&metadata) {
///     trace::with_parent(&remote, || {
///         let here = trace::current().expect("inside the scope");
///         assert_eq!(here.trace_id, remote.trace_id);
///     });
/// }
/// assert!(trace::current().is_none());
/// ```
pub fn with_parent<R>(parent: &SpanContext, f: impl FnOnce() -> R) -> R {
    let (ctx, state) = split(parent);
    let _scope = ParentScope::enter(ctx, &state);
    f()
}

/// The future of `fut` run with `parent` as the current span context during each of its
/// polls (see [`with_parent`]).
pub async fn with_parent_async<F: Future>(parent: SpanContext, fut: F) -> F::Output {
    let (ctx, state) = split(&parent);
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        let _scope = ParentScope::enter(ctx, &state);
        fut.as_mut().poll(cx)
    })
    .await
}

/// The current span context: the innermost instrumented call running on this thread (or
/// task poll), else the parent set by [`with_parent`]; `None` outside both. Inject it into
/// an outgoing message's metadata to continue the trace in the callee
/// ([`propagation::inject`](crate::propagation::inject)). Spans must be on (a sink
/// installed or a `tracing` subscriber) for instrumented calls to set it.
pub fn current() -> Option<SpanContext> {
    let ctx = get()?;
    let state = STATE
        .try_with(|s| {
            s.borrow()
                .as_deref()
                .and_then(|s| s.parse::<TraceState>().ok())
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    Some(SpanContext {
        trace_id: ctx.trace_id(),
        span_id: ctx.span_id(),
        flags: ctx.flags(),
        state,
        remote: ctx.remote(),
    })
}
