//! A circuit breaker's `call` on the success path: what it adds to a call, for
//! `dwcp_telemetry::resilience::CircuitBreaker` (without and with slow-call tracking) beside
//! failsafe 1.3 and recloser 1.4 on the same workload, in one run, on 1 and 2 threads
//! (issue 11: "≤ 15 ns added per call on one thread without slow-call tracking; with
//! slow-call tracking ≤ two clock reads + 15 ns; faster than both peers in every case").
//!
//! The workload is one small `#[inline(never)]` function returning `Ok` (a few `black_box`ed
//! integer operations). Cases:
//! - `baseline`: the function called directly;
//! - `dwcp`: `breaker.call(|| work(i))`, default configuration (count window of 100 calls),
//!   registered on a registry, so each call also counts `dwcp_circuit_breaker_calls_total`;
//! - `dwcp_slow_calls`: the same with slow-call tracking (`slow_calls(100.0, 1 s)`): two
//!   reads of the crate's clock per call;
//! - `failsafe`: `failsafe::Config::new().build()` (its defaults), `CircuitBreaker::call`;
//! - `recloser`: `Recloser::custom().closed_len(100).build()`, `call`;
//! - `clock_reads` (one thread): two `dwcp_telemetry::clock::now_raw()` reads and a
//!   `nanos_between`, the cost the slow-call goal allows for.
//!
//! Two-thread cases run the same loop on two threads against one shared breaker and report
//! wall time per call per thread (contention included). Single-thread cases use the thread's
//! CPU time (`DWCP_BENCH_WALL=1` for wall-clock).
//!
//! After the run, the dwcp breaker's `dwcp_circuit_breaker_calls_total{kind="successful"}`
//! must equal the calls made (a figure from a no-op would fail here).
//!
//! Run: `cargo bench --bench breaker -- --warm-up-time 1 --measurement-time 3`. After
//! criterion's output the bench prints the medians, the ns added per call, the ratios to the
//! peers and the goal checks.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use dwcp_support::bench::{criterion_dir, median_ns, Stopwatch};
use dwcp_telemetry::resilience::{BreakerConfig, CallKind, CircuitBreaker};
use dwcp_telemetry::Registry;
use failsafe::CircuitBreaker as _;

const GROUP_1T: &str = "breaker_call_1t";
const GROUP_2T: &str = "breaker_call_2t";
const GOAL_NS: f64 = 15.0;

#[inline(never)]
fn work(x: u64) -> Result<u64, ()> {
    let x = black_box(x);
    if x == u64::MAX {
        return Err(());
    }
    Ok(black_box(
        x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ x,
    ))
}

struct Breakers {
    dwcp: CircuitBreaker,
    dwcp_slow: CircuitBreaker,
    failsafe: failsafe::StateMachine<
        failsafe::failure_policy::OrElse<
            failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
            failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
        >,
        (),
    >,
    recloser: recloser::Recloser,
}

/// One case: the loop body, given the call index.
type Case = (&'static str, fn(&Breakers, u64));

const CASES: [Case; 5] = [
    ("baseline", |_, i| {
        let _ = black_box(work(i));
    }),
    ("dwcp", |b, i| {
        let _ = black_box(b.dwcp.call(|| work(i)));
    }),
    ("dwcp_slow_calls", |b, i| {
        let _ = black_box(b.dwcp_slow.call(|| work(i)));
    }),
    ("failsafe", |b, i| {
        let _ = black_box(b.failsafe.call(|| work(i)));
    }),
    ("recloser", |b, i| {
        let _ = black_box(b.recloser.call(|| work(i)));
    }),
];

fn run_1t(sw: Stopwatch, b: &Breakers, f: fn(&Breakers, u64), iters: u64) -> Duration {
    let start = sw.start();
    for i in 0..iters {
        f(b, i);
    }
    sw.elapsed(start)
}

/// Two threads, `iters` calls each, on the shared breakers: wall time from the common start
/// until both are done.
fn run_2t(b: &Breakers, f: fn(&Breakers, u64), iters: u64) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                barrier.wait();
                for i in 0..iters {
                    f(b, i);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins both threads before returning.
        start
    })
    .elapsed()
}

fn main() {
    let since = SystemTime::now();
    let sw = Stopwatch::from_env();
    eprintln!("single-thread cases timed with {}", sw.label());
    let registry = Registry::builder()
        .version("3.0.0")
        .build()
        .expect("registry");
    let b = Breakers {
        dwcp: CircuitBreaker::new(&registry, "bench", BreakerConfig::default()).expect("dwcp"),
        dwcp_slow: CircuitBreaker::new(
            &registry,
            "bench_slow",
            BreakerConfig::builder()
                .slow_calls(100.0, Duration::from_secs(1))
                .build()
                .expect("config"),
        )
        .expect("dwcp"),
        failsafe: failsafe::Config::new().build(),
        recloser: recloser::Recloser::custom().closed_len(100).build(),
    };
    dwcp_telemetry::clock::calibrate();
    let mut calls = [0u64; 2]; // dwcp, dwcp_slow
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group(GROUP_1T);
        for (id, f) in CASES {
            g.bench_function(id, |bench| {
                bench.iter_custom(|n| {
                    match id {
                        "dwcp" => calls[0] += n,
                        "dwcp_slow_calls" => calls[1] += n,
                        _ => {}
                    }
                    run_1t(sw, &b, f, n)
                })
            });
        }
        g.bench_function("clock_reads", |bench| {
            bench.iter_custom(|n| {
                let start = sw.start();
                for _ in 0..n {
                    let t0 = dwcp_telemetry::clock::now_raw();
                    let t1 = dwcp_telemetry::clock::now_raw();
                    black_box(dwcp_telemetry::clock::nanos_between(t0, t1));
                }
                sw.elapsed(start)
            })
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group(GROUP_2T);
        for (id, f) in CASES {
            g.bench_function(id, |bench| {
                bench.iter_custom(|n| {
                    match id {
                        "dwcp" => calls[0] += 2 * n,
                        "dwcp_slow_calls" => calls[1] += 2 * n,
                        _ => {}
                    }
                    run_2t(&b, f, n)
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    for (breaker, made) in [(&b.dwcp, calls[0]), (&b.dwcp_slow, calls[1])] {
        if made > 0 {
            let ok = breaker.metrics().calls(CallKind::Successful);
            assert_eq!(
                ok,
                made,
                "{}: successful calls counted == calls made",
                breaker.name()
            );
            eprintln!(
                "check: {} counted {ok} successful calls = calls made",
                breaker.name()
            );
        }
    }
    summary(since);
}

fn summary(since: SystemTime) {
    let dir = criterion_dir();
    let clock = median_ns(&dir, GROUP_1T, "clock_reads", since);
    for group in [GROUP_1T, GROUP_2T] {
        let get = |id| median_ns(&dir, group, id, since);
        let base = get("baseline");
        eprintln!("\n== {group}: medians of this run ({}) ==", dir.display());
        let added = |id| base.zip(get(id)).map(|(b, m)| m - b);
        for (id, _) in CASES {
            let Some(m) = get(id) else { continue };
            let mut line = format!("  {id:<16} {m:>8.2} ns");
            if let Some(a) = added(id).filter(|_| id != "baseline") {
                line += &format!("  added {a:>7.2} ns");
            }
            if id.starts_with("dwcp") {
                for peer in ["failsafe", "recloser"] {
                    if let (Some(ours), Some(theirs)) = (added(id), added(peer)) {
                        line += &format!("  {:.2}x {peer}'s added", ours / theirs);
                    }
                }
            }
            eprintln!("{line}");
        }
        let ok = |cond: bool| if cond { "PASS" } else { "FAIL" };
        if let (Some(d), Some(ds), Some(f), Some(r)) = (
            added("dwcp"),
            added("dwcp_slow_calls"),
            added("failsafe"),
            added("recloser"),
        ) {
            if group == GROUP_1T {
                eprintln!(
                    "  goal dwcp added <= {GOAL_NS} ns: {d:.2} ns {}",
                    ok(d <= GOAL_NS)
                );
                if let Some(c) = clock {
                    eprintln!(
                        "  goal dwcp_slow_calls added <= clock reads ({c:.2} ns) + {GOAL_NS} ns: {ds:.2} ns {}",
                        ok(ds <= c + GOAL_NS)
                    );
                }
            }
            eprintln!(
                "  goal faster than both peers: dwcp {} , dwcp_slow_calls {}",
                ok(d < f && d < r),
                ok(ds < f && ds < r)
            );
        }
    }
}
