//! The hot paths never allocate: a counting global allocator (per thread, so that tests
//! running in parallel do not disturb each other) around the steady-state calls.
//!
//! - histogram record once the value's region exists, counter and gauge updates;
//! - `Detector::observe` after `build()`, through warm-up, alerts, incidents, cooldowns,
//!   the seasonal channel and NaN/∞ input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dwcp_telemetry::anomaly::{DetectorConfig, Direction};
use dwcp_telemetry::Registry;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: never panics, even while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the only addition is a thread-local counter that
// itself never allocates (a const-initialised `Cell` with no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same layout as the caller gave us, which the caller guarantees is valid.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`, as the
        // caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    // The harness itself: a Vec allocates, so the test below could fail.
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(vec![1u8; 64]))),
        1
    );
}

#[test]
fn recording_does_not_allocate() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let family = registry
        .histogram("dwcp_request_duration_seconds", "Request duration")
        .dynamic_labels(["operation"])
        .register()
        .unwrap();
    let h = family.with_labels_or_overflow(&["migrate"]);
    let c = registry
        .counter("dwcp_requests_total", "Requests")
        .register()
        .unwrap()
        .with_labels_or_overflow(&[]);
    let g = registry
        .gauge("dwcp_circuit_breaker_state", "Breaker")
        .register()
        .unwrap()
        .with_labels_or_overflow(&[]);
    let values: Vec<u64> = dwcp_support::latency_table(4096);
    // The first pass installs the regions these values fall in (allocations expected),
    // including those of 0 and of the clamped maximum.
    for &v in &values {
        h.record(v);
    }
    h.record(0);
    h.record(u64::MAX);
    let n = allocations_in(|| {
        for _ in 0..25 {
            for &v in &values {
                h.record(v);
                c.inc();
                g.set(v as f64);
            }
        }
        // Bad input is counted, not allocated for.
        h.record(0);
        h.record(u64::MAX);
        let _ = h.record_secs(f64::NAN);
        let _ = h.record_secs(-1.0);
        let _ = h.record_secs(f64::INFINITY);
        g.add(1.0);
    });
    assert_eq!(n, 0, "allocations while recording");
    assert_eq!(h.snapshot().count(), 26 * 4096 + 5);
    assert_eq!(c.get(), 25 * 4096);
}

#[test]
fn detector_observe_does_not_allocate() {
    for (config, name) in [
        (DetectorConfig::default(), "defaults"),
        (
            DetectorConfig::default()
                .with_direction(Direction::Up)
                .with_baseline_clip(Some(4.0))
                .with_season(Some(48)),
            "one-sided, clipped, 48-sample season",
        ),
        (
            DetectorConfig::default()
                .with_surprise(0.0, 1, 1)
                .with_smoothing(1.0)
                .with_season(None)
                .with_recompute_every(Some(7)),
            "plain z-score",
        ),
    ] {
        let mut d = config.build().unwrap();
        let mut rng = dwcp_support::Rng::new(7);
        let mut alerts = 0;
        let n = allocations_in(|| {
            for i in 0..20_000usize {
                let daily = 10.0 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin();
                let x = match i {
                    // Spikes and a level shift: alerts, incidents and cooldowns happen.
                    5_000 | 9_000 => 500.0,
                    12_000..=12_400 => 200.0 + rng.unit(),
                    // Bad input, ignored and counted.
                    7_000 => f64::NAN,
                    7_001 => f64::INFINITY,
                    7_002 => f64::NEG_INFINITY,
                    _ => 100.0 + daily + rng.unit(),
                };
                alerts += usize::from(d.observe(x).is_some());
            }
            let _ = d.snapshot();
        });
        assert_eq!(n, 0, "{name}: allocations in observe");
        assert!(
            alerts >= 2,
            "{name}: the run must exercise alerts, got {alerts}"
        );
        assert_eq!(d.snapshot().invalid, 3, "{name}");
        // Reset keeps the allocation too.
        assert_eq!(allocations_in(|| d.reset()), 0, "{name}: reset");
    }
}
