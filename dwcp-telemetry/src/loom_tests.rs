//! Loom models of every lock-free path. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p dwcp-telemetry --release --lib loom_`.

use loom::thread;
use std::sync::Arc;

use crate::histogram::{AtomicHistogram, Layout};
use crate::metric::{CounterCell, GaugeCell};
use crate::registry::Registry;

/// A small layout (16 slots per region) keeps the models fast.
fn small() -> Layout {
    Layout::new(1, 1 << 20).unwrap()
}

#[test]
fn loom_region_install_race_loses_nothing() {
    loom::model(|| {
        let h = Arc::new(AtomicHistogram::new(small()));
        // Both threads touch the same, not yet allocated, region.
        let t = {
            let h = h.clone();
            thread::spawn(move || h.record(100))
        };
        h.record(101);
        t.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert_eq!(s.iter().map(|(_, _, c)| c).sum::<u64>(), 2);
    });
}

#[test]
fn loom_same_slot_concurrent_adds_are_exact() {
    loom::model(|| {
        let h = Arc::new(AtomicHistogram::with_options(small(), true));
        h.record(7); // region exists
        let t = {
            let h = h.clone();
            thread::spawn(move || h.record(7))
        };
        h.record(7);
        t.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum(), 21);
    });
}

#[test]
fn loom_snapshot_during_recording_sees_a_prefix() {
    loom::model(|| {
        let h = Arc::new(AtomicHistogram::new(small()));
        let t = {
            let h = h.clone();
            thread::spawn(move || {
                h.record(3);
                h.record(50_000);
            })
        };
        let mid = h.snapshot();
        // Each value is one add, so a concurrent snapshot sees 0, 1 or 2 of them, never junk.
        assert!(mid.count() <= 2);
        for (lo, _, c) in mid.iter() {
            assert!(lo == 3 || lo == small().lowest_of(small().index_of(50_000)));
            assert_eq!(c, 1);
        }
        t.join().unwrap();
        assert_eq!(h.snapshot().count(), 2);
    });
}

#[test]
fn loom_counter_and_gauge_are_exact() {
    loom::model(|| {
        let c = Arc::new(CounterCell::new(false));
        let g = Arc::new(GaugeCell::new(false));
        let t = {
            let (c, g) = (c.clone(), g.clone());
            thread::spawn(move || {
                c.inc_by(2);
                g.add(1.5);
            })
        };
        c.inc_by(3);
        g.add(2.25);
        t.join().unwrap();
        assert_eq!(c.value.load(crate::sync::Ordering::Relaxed), 5);
        assert_eq!(g.get(), 3.75);
    });
}

/// The in-flight gauges of `#[instrument_dwcp]`: whole-number adds on two threads (a call
/// starting and finishing on each) end at exactly the base value, and a concurrent read sees
/// the base plus 0, 1 or 2 calls in flight, never anything else.
#[test]
fn loom_gauge_int_adds_are_exact() {
    loom::model(|| {
        let g = Arc::new(GaugeCell::new(false));
        g.set(0.5);
        let t = {
            let g = g.clone();
            thread::spawn(move || {
                g.add_int(1);
                g.add_int(-1);
            })
        };
        g.add_int(1);
        let mid = g.get();
        assert!(mid == 1.5 || mid == 2.5, "{mid}");
        g.add_int(-1);
        t.join().unwrap();
        assert_eq!(g.get(), 0.5);
    });
}

#[test]
fn loom_thread_cells_pass_a_slot_on_without_losing_counts() {
    use crate::metric::thread_cells::{exit_thread, ThreadCells};
    loom::model(|| {
        let cells = Arc::new(ThreadCells::new());
        // The first thread takes slot 0, counts, exits and gives the slot back ...
        let c = cells.clone();
        thread::spawn(move || {
            c.start();
            let _ = c.finish(true);
            exit_thread();
        })
        .join()
        .unwrap();
        // ... then two threads race for it (one reuses it, one takes slot 1) while this one
        // reads: a read never sees more than happened, and the end is exact.
        let spawn = |c: Arc<ThreadCells>| {
            thread::spawn(move || {
                c.start();
                let _ = c.finish(true);
                exit_thread();
            })
        };
        let (a, b) = (spawn(cells.clone()), spawn(cells.clone()));
        let (in_flight, ok) = cells.read();
        assert!(in_flight <= 2 && (1..=3).contains(&ok));
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(cells.read(), (0, 3));
    });
}

#[test]
fn loom_pending_durations_are_recorded_once_and_reads_never_go_down() {
    use crate::metric::thread_cells::{exit_thread, ThreadCells};
    loom::model(|| {
        let hist = Arc::new(AtomicHistogram::new(small()));
        let cells = Arc::new(ThreadCells::new());
        // A thread finishes two timed calls: each leaves its duration pending on the line
        // and records the one before it.
        let writer = {
            let (h, c) = (hist.clone(), cells.clone());
            thread::spawn(move || {
                for ns in [100, 5_000] {
                    c.start();
                    c.finish(true).leave((&h, ns));
                }
                exit_thread();
            })
        };
        // A reader flushes and reads twice meanwhile: no duration is counted twice, and no
        // slot's count goes down between reads (Prometheus would take it for a reset).
        let read = || {
            cells.flush(&hist);
            let s = hist.snapshot();
            (s.count_le(100), s.count())
        };
        let (low1, n1) = read();
        let (low2, n2) = read();
        assert!(n1 <= 2 && n2 <= 2 && low1 <= 1, "{n1} {n2} {low1}");
        assert!(low2 >= low1 && n2 >= n1, "{low1}->{low2} {n1}->{n2}");
        writer.join().unwrap();
        // After the writer is done, a read counts both, each once.
        cells.flush(&hist);
        let s = hist.snapshot();
        assert_eq!((s.count_le(100), s.count()), (1, 2));
        assert_eq!(cells.read(), (0, 2));
    });
}

#[test]
fn loom_new_series_race_creates_one_series() {
    loom::model(|| {
        let reg = Registry::builder().build().unwrap();
        let fam = reg
            .counter("c_total", "")
            .dynamic_labels(["k"])
            .register()
            .unwrap();
        let t = {
            let fam = fam.clone();
            thread::spawn(move || fam.with_labels_or_overflow(&["a"]).inc())
        };
        fam.with_labels_or_overflow(&["a"]).inc();
        t.join().unwrap();
        assert_eq!(fam.series_count(), 1);
        assert_eq!(fam.with_labels_or_overflow(&["a"]).get(), 2);
    });
}

#[test]
fn loom_cardinality_cap_holds_under_races() {
    loom::model(|| {
        let reg = Registry::builder().cardinality_limit(1).build().unwrap();
        let fam = reg
            .counter("c_total", "")
            .dynamic_labels(["k"])
            .register()
            .unwrap();
        let t = {
            let fam = fam.clone();
            thread::spawn(move || fam.with_labels_or_overflow(&["a"]).inc())
        };
        fam.with_labels_or_overflow(&["b"]).inc();
        t.join().unwrap();
        // Exactly one label set got the slot; the other went to the overflow series.
        assert_eq!(fam.series_count(), 1);
        assert_eq!(fam.overflow().get(), 1);
        let a = fam.try_with_labels(&["a"]).map(|c| c.get()).unwrap_or(0);
        let b = fam.try_with_labels(&["b"]).map(|c| c.get()).unwrap_or(0);
        assert_eq!(a + b, 1);
    });
}

#[test]
fn loom_concurrent_registration_of_one_name() {
    loom::model(|| {
        let reg = Registry::builder().build().unwrap();
        let t = {
            let reg = reg.clone();
            thread::spawn(move || reg.gauge("g", "").register().unwrap().handle().set(1.0))
        };
        reg.gauge("g", "").register().unwrap().handle().add(1.0);
        t.join().unwrap();
        assert_eq!(reg.family_count(), 1);
        let v = reg.existing_gauge("g").unwrap().handle().get();
        assert!(v == 1.0 || v == 2.0, "{v}");
    });
}

mod breaker {
    use std::sync::Arc;
    use std::time::Duration;

    use loom::thread;

    use crate::registry::Registry;
    use crate::resilience::{BreakerConfig, CallKind, CircuitBreaker, Clock, ManualClock, State};

    fn breaker(clock: &Arc<ManualClock>, window: u32, permits: u32) -> CircuitBreaker {
        let registry = Registry::builder().build().unwrap();
        let config = BreakerConfig::builder()
            .count_window(window)
            .minimum_calls(window)
            .failure_rate_threshold(50.0)
            .permitted_calls_in_half_open(permits)
            .wait_in_open(Duration::from_secs(1))
            .clock(Clock::manual(clock.clone()))
            .build()
            .unwrap();
        CircuitBreaker::new(&registry, "db", config).unwrap()
    }

    /// A success and a failure race into a two-call window: whatever the interleaving,
    /// the window holds both, one failed (50 %, under a 100 % threshold: no trip).
    #[test]
    fn loom_window_counts_racing_outcomes_exactly() {
        loom::model(|| {
            let registry = Registry::builder().build().unwrap();
            let config = BreakerConfig::builder()
                .count_window(2)
                .minimum_calls(2)
                .failure_rate_threshold(100.0)
                .clock(Clock::manual(ManualClock::new()))
                .build()
                .unwrap();
            let b = CircuitBreaker::new(&registry, "db", config).unwrap();
            let t = {
                let b = b.clone();
                thread::spawn(move || b.call(|| Ok::<_, ()>(())).is_ok())
            };
            let _ = b.call(|| Err::<(), _>(()));
            assert!(t.join().unwrap());
            assert_eq!(b.failure_rate(), Some(50.0));
            assert_eq!(b.state(), State::Closed);
        });
    }

    /// Two failing calls race to fill the window: the breaker trips exactly once, and the
    /// gauge shows open.
    #[test]
    fn loom_concurrent_failures_trip_once() {
        loom::model(|| {
            let clock = ManualClock::new();
            let b = breaker(&clock, 2, 1);
            let t = {
                let b = b.clone();
                thread::spawn(move || {
                    let _ = b.call(|| Err::<(), _>(()));
                })
            };
            let _ = b.call(|| Err::<(), _>(()));
            t.join().unwrap();
            assert_eq!(b.state(), State::Open);
            assert_eq!(b.metrics().trips(), 1);
            assert_eq!(b.metrics().calls(CallKind::Failed), 2);
            assert_eq!(b.metrics().state(), State::Open);
        });
    }

    /// Half-open with one permit: two callers race for it; exactly one runs, the other is
    /// rejected, and the success closes the breaker once (one reset, gauge closed).
    #[test]
    fn loom_half_open_grants_exactly_the_permits() {
        loom::model(|| {
            let clock = ManualClock::new();
            let b = breaker(&clock, 1, 1);
            let _ = b.call(|| Err::<(), _>(()));
            assert_eq!(b.state(), State::Open);
            clock.advance(Duration::from_secs(1));
            let t = {
                let b = b.clone();
                thread::spawn(move || b.call(|| Ok::<_, ()>(())).is_ok())
            };
            let mine = b.call(|| Ok::<_, ()>(())).is_ok();
            let theirs = t.join().unwrap();
            let m = b.metrics();
            assert_eq!(
                m.calls(CallKind::Successful) + m.calls(CallKind::NotPermitted),
                2
            );
            // One of them may arrive after the close and run too; never zero run.
            assert!(mine || theirs);
            assert_eq!(
                b.state(),
                State::Closed,
                "mine={mine} theirs={theirs} ok={} np={} trips={} resets={}",
                m.calls(CallKind::Successful),
                m.calls(CallKind::NotPermitted),
                m.trips(),
                m.resets()
            );
            assert_eq!(m.resets(), 1);
            assert_eq!(m.state(), State::Closed, "{:?}", b.words());
            assert_eq!(m.trips(), 1);
        });
    }

    /// A trip and a late outcome from before it race with a manual reset: the final
    /// gauge always shows the final state, and every transition is counted once.
    #[test]
    fn loom_transition_race_leaves_no_stale_state() {
        loom::model(|| {
            let clock = ManualClock::new();
            let b = breaker(&clock, 1, 1);
            let t = {
                let b = b.clone();
                thread::spawn(move || {
                    let _ = b.call(|| Err::<(), _>(()));
                })
            };
            let _ = b.transition_to(State::ForcedOpen);
            t.join().unwrap();
            let m = b.metrics();
            assert_eq!(m.state(), b.state());
            // The failure tripped the breaker only if it was recorded while closed.
            assert!(m.trips() <= 1);
            assert_eq!(
                m.calls(CallKind::Failed) + m.calls(CallKind::NotPermitted),
                1
            );
        });
    }
}

/// The OTLP span exporter's wake-up protocol (`batch_trigger`): submitters count, queue into a
/// bounded queue (modelled as a counter with a CAS), and wake the export thread through a
/// stored permit (modelled as a flag, like `tokio::sync::Notify`); the export thread, holding a
/// permit, disarms and takes full batches. Once everything is quiescent: the count equals the
/// queue exactly, and a full batch left in the queue always has a permit waiting (no lost
/// wake-up).
fn batch_trigger_model(submitters: usize, cap: usize, preemption_bound: Option<usize>) {
    use crate::batch_trigger::BatchTrigger;
    use crate::sync::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    // (`AtomicBool` models the stored permit.)
    const BATCH: usize = 2;
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    builder.check(move || {
        let trig = Arc::new(BatchTrigger::new(BATCH));
        let queue = Arc::new(AtomicUsize::new(0));
        let permit = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..submitters)
            .map(|_| {
                let (trig, queue, permit, dropped) =
                    (trig.clone(), queue.clone(), permit.clone(), dropped.clone());
                thread::spawn(move || {
                    trig.reserve();
                    let mut cur = queue.load(SeqCst);
                    loop {
                        if cur >= cap {
                            trig.cancel();
                            dropped.fetch_add(1, SeqCst);
                            return;
                        }
                        match queue.compare_exchange(cur, cur + 1, SeqCst, SeqCst) {
                            Ok(_) => break,
                            Err(now) => cur = now,
                        }
                    }
                    if trig.sent() {
                        permit.store(true, SeqCst);
                    }
                })
            })
            .collect();
        let mut taken = 0;
        // One pass of the export thread, at any point of the submits.
        {
            if permit
                .compare_exchange(true, false, SeqCst, SeqCst)
                .is_ok()
            {
                let mut full = trig.woke();
                while full {
                    let mut cur = queue.load(SeqCst);
                    let n = loop {
                        let n = cur.min(BATCH);
                        match queue.compare_exchange(cur, cur - n, SeqCst, SeqCst) {
                            Ok(_) => break n,
                            Err(now) => cur = now,
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    full = trig.taken(n);
                    taken += n;
                }
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        let left = queue.load(SeqCst);
        assert_eq!(trig.pending(), left, "the count equals the queue");
        if left >= BATCH {
            assert!(
                permit.load(SeqCst),
                "a full batch is queued with no wake-up pending: left {left} taken {taken} dropped {} pending {}",
                dropped.load(SeqCst),
                trig.raw()
            );
        }
        assert_eq!(taken + left + dropped.load(SeqCst), submitters);
    });
}

#[test]
fn loom_batch_trigger_never_loses_a_full_batch() {
    batch_trigger_model(2, 4, None);
}

#[test]
fn loom_batch_trigger_with_a_full_queue_counts_exactly() {
    // Three submitters into a queue of two (one is refused); bounded preemptions keep the
    // exploration to seconds.
    batch_trigger_model(3, 2, Some(2));
}
