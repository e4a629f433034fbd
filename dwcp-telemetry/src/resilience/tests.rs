//! resilience4j's documented behaviours as tables, SLA windows against hand-computed
//! values, and configuration errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::Registry;

fn registry() -> Registry {
    Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()
        .unwrap()
}

/// One step of a scenario.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// A call that succeeds (taking `ms` on the manual clock).
    Pass(u64),
    /// A call that fails.
    Fail,
    /// A call whose error is ignored.
    Ignore,
    /// A call that must be rejected.
    Rejected,
    /// Take a permit and keep it (must be granted).
    Hold,
    /// Advance the clock.
    Wait(u64),
    /// Move by hand.
    Force(State),
    /// Expect a state.
    Is(State),
}

#[derive(Debug, PartialEq)]
enum TestError {
    Down,
    Gone,
}

struct Case {
    name: &'static str,
    config: fn(BreakerConfigBuilder) -> BreakerConfigBuilder,
    steps: &'static [Step],
    /// successful, failed, ignored, not_permitted; trips; resets.
    calls: [u64; 4],
    trips: u64,
    resets: u64,
    failure_rate: f64,
}

fn run(case: &Case) {
    let reg = registry();
    let clock = ManualClock::new();
    let config = (case.config)(
        BreakerConfig::builder()
            .clock(Clock::manual(clock.clone()))
            .classify(|e: &TestError| match e {
                TestError::Down => Outcome::Failure,
                TestError::Gone => Outcome::Ignore,
            }),
    )
    .build()
    .unwrap();
    let b = CircuitBreaker::new(&reg, "database", config).unwrap();
    let mut held = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let at = format!("{}: step {i} {step:?}", case.name);
        match *step {
            Step::Pass(ms) => {
                let r = b.call(|| {
                    clock.advance(Duration::from_millis(ms));
                    Ok::<_, TestError>(())
                });
                assert!(r.is_ok(), "{at}: {r:?}");
            }
            Step::Fail => {
                let r = b.call(|| Err::<(), _>(TestError::Down));
                assert_eq!(r, Err(CallError::Failed(TestError::Down)), "{at}");
            }
            Step::Ignore => {
                let r = b.call(|| Err::<(), _>(TestError::Gone));
                assert_eq!(r, Err(CallError::Failed(TestError::Gone)), "{at}");
            }
            Step::Rejected => {
                let r = b.call(|| Ok::<_, TestError>(()));
                assert!(matches!(r, Err(CallError::NotPermitted(_))), "{at}: {r:?}");
            }
            Step::Hold => held.push(b.try_acquire().unwrap_or_else(|e| panic!("{at}: {e}"))),
            Step::Wait(ms) => clock.advance(Duration::from_millis(ms)),
            Step::Force(s) => b.transition_to(s).unwrap(),
            Step::Is(s) => assert_eq!(b.state(), s, "{at}"),
        }
    }
    for p in held.drain(..) {
        p.ignore();
    }
    b.refresh_rates();
    let m = b.metrics();
    let calls = [
        CallKind::Successful,
        CallKind::Failed,
        CallKind::Ignored,
        CallKind::NotPermitted,
    ]
    .map(|k| m.calls(k));
    assert_eq!(calls, case.calls, "{}: calls by kind", case.name);
    assert_eq!(m.trips(), case.trips, "{}: trips", case.name);
    assert_eq!(m.resets(), case.resets, "{}: resets", case.name);
    assert_eq!(
        m.failure_rate(),
        case.failure_rate,
        "{}: failure rate",
        case.name
    );
    assert_eq!(m.state(), b.state(), "{}: state gauge", case.name);
}

use Step::*;

fn w10(b: BreakerConfigBuilder) -> BreakerConfigBuilder {
    b.count_window(10)
        .minimum_calls(10)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(60))
        .permitted_calls_in_half_open(3)
}

fn w4(b: BreakerConfigBuilder) -> BreakerConfigBuilder {
    b.count_window(4)
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(60))
        .permitted_calls_in_half_open(3)
}

const TRIP4: [Step; 5] = [Fail, Fail, Fail, Fail, Is(State::Open)];

#[test]
fn resilience4j_behaviours() {
    let cases = [
        Case {
            name: "failure rate exactly at the threshold opens",
            config: w10,
            steps: &[
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Fail,
                Fail,
                Fail,
                Fail,
                Is(State::Closed),
                Fail,
                Is(State::Open),
                Rejected,
            ],
            calls: [5, 5, 0, 1],
            trips: 1,
            resets: 0,
            failure_rate: 50.0,
        },
        Case {
            name: "just below the threshold stays closed",
            config: w10,
            steps: &[
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Fail,
                Fail,
                Fail,
                Fail,
                Is(State::Closed),
            ],
            calls: [6, 4, 0, 0],
            trips: 0,
            resets: 0,
            failure_rate: 40.0,
        },
        Case {
            name: "below the minimum calls it never opens",
            config: w10,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Is(State::Closed),
            ],
            calls: [0, 9, 0, 0],
            trips: 0,
            resets: 0,
            failure_rate: -1.0,
        },
        Case {
            name: "ignored errors are not in the window",
            config: w4,
            steps: &[
                Ignore,
                Ignore,
                Ignore,
                Fail,
                Fail,
                Fail,
                Is(State::Closed),
                Pass(0),
                Is(State::Open),
            ],
            calls: [1, 3, 3, 0],
            trips: 1,
            resets: 0,
            failure_rate: 75.0,
        },
        Case {
            name: "the window slides: old failures leave it",
            config: w4,
            steps: &[
                Fail,
                Pass(0),
                Pass(0),
                Pass(0),
                Pass(0),
                Fail,
                Pass(0),
                Pass(0),
                Pass(0),
                Fail,
                Is(State::Closed),
            ],
            calls: [7, 3, 0, 0],
            trips: 0,
            resets: 0,
            failure_rate: 25.0,
        },
        Case {
            name: "open rejects until the wait ends, then half-open",
            config: w4,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(59_999),
                Rejected,
                Is(State::Open),
                Wait(1),
                Is(State::Open),
                Hold,
                Is(State::HalfOpen),
            ],
            calls: [0, 4, 1, 1],
            trips: 1,
            resets: 0,
            failure_rate: 100.0,
        },
        Case {
            name: "half-open with 3 permits rejects the 4th",
            config: w4,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(60_000),
                Hold,
                Hold,
                Hold,
                Rejected,
                Rejected,
                Is(State::HalfOpen),
            ],
            calls: [0, 4, 3, 2],
            trips: 1,
            resets: 0,
            failure_rate: 100.0,
        },
        Case {
            name: "half-open: 3 successes close it (a reset, with an empty window)",
            config: w4,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(60_000),
                Pass(0),
                Pass(0),
                Is(State::HalfOpen),
                Pass(0),
                Is(State::Closed),
                Fail,
                Fail,
                Fail,
                Is(State::Closed),
            ],
            calls: [3, 7, 0, 0],
            trips: 1,
            resets: 1,
            failure_rate: -1.0,
        },
        Case {
            name: "half-open: 2 failures of 3 reopen it",
            config: w4,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(60_000),
                Pass(0),
                Fail,
                Fail,
                Is(State::Open),
                Rejected,
            ],
            calls: [1, 6, 0, 1],
            trips: 2,
            resets: 0,
            // The exported rate covers the last 4 calls counted, trials included.
            failure_rate: 75.0,
        },
        Case {
            name: "half-open: an ignored call hands its permit back",
            config: w4,
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(60_000),
                Ignore,
                Ignore,
                Ignore,
                Ignore,
                Pass(0),
                Pass(0),
                Pass(0),
                Is(State::Closed),
            ],
            calls: [3, 4, 4, 0],
            trips: 1,
            resets: 1,
            failure_rate: -1.0,
        },
        Case {
            name: "forced open rejects everything and records not_permitted",
            config: w4,
            steps: &[
                Force(State::ForcedOpen),
                Rejected,
                Rejected,
                Wait(3_600_000),
                Rejected,
                Is(State::ForcedOpen),
                Force(State::Closed),
                Pass(0),
            ],
            calls: [1, 0, 0, 3],
            trips: 0,
            resets: 1,
            failure_rate: -1.0,
        },
        Case {
            name: "disabled lets everything through and never opens",
            config: w4,
            steps: &[
                Force(State::Disabled),
                Fail,
                Fail,
                Fail,
                Fail,
                Fail,
                Is(State::Disabled),
                Pass(0),
            ],
            calls: [1, 5, 0, 0],
            trips: 0,
            resets: 0,
            failure_rate: -1.0,
        },
        Case {
            name: "metrics-only records rates and never opens",
            config: w4,
            steps: &[
                Force(State::MetricsOnly),
                Fail,
                Fail,
                Fail,
                Fail,
                Is(State::MetricsOnly),
                Pass(0),
            ],
            calls: [1, 4, 0, 0],
            trips: 0,
            resets: 0,
            failure_rate: 75.0,
        },
        Case {
            name: "slow calls at the slow-call threshold open",
            config: |b| w4(b).slow_calls(50.0, Duration::from_millis(100)),
            steps: &[
                Pass(100),
                Pass(5),
                Pass(250),
                Is(State::Closed),
                Pass(1),
                Is(State::Open),
            ],
            calls: [4, 0, 0, 0],
            trips: 1,
            resets: 0,
            failure_rate: 0.0,
        },
        Case {
            name: "backoff: the second trip waits longer",
            config: |b| {
                w4(b)
                    .backoff(|n| Duration::from_secs(10 * n as u64))
                    .permitted_calls_in_half_open(1)
            },
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(10_000),
                Fail,
                Is(State::Open),
                Wait(10_000),
                Rejected,
                Wait(10_000),
                Pass(0),
                Is(State::Closed),
            ],
            calls: [1, 5, 0, 1],
            trips: 2,
            resets: 1,
            failure_rate: -1.0,
        },
        Case {
            name: "max wait in half-open reopens",
            config: |b| w4(b).max_wait_in_half_open(Duration::from_secs(5)),
            steps: &[
                Fail,
                Fail,
                Fail,
                Fail,
                Wait(60_000),
                Hold,
                Wait(5_000),
                Rejected,
                Is(State::Open),
            ],
            calls: [0, 4, 1, 1],
            trips: 2,
            resets: 0,
            failure_rate: 100.0,
        },
    ];
    for case in &cases {
        run(case);
    }
    let _ = TRIP4;
}

#[test]
fn a_permit_issued_before_a_trip_stays_out_of_the_next_window() {
    let reg = registry();
    let clock = ManualClock::new();
    let b = CircuitBreaker::new(
        &reg,
        "api",
        w4(BreakerConfig::builder().clock(Clock::manual(clock.clone())))
            .permitted_calls_in_half_open(1)
            .build()
            .unwrap(),
    )
    .unwrap();
    let late = b.try_acquire().unwrap();
    for _ in 0..4 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(60));
    b.call(|| Ok::<_, ()>(())).unwrap();
    assert_eq!(b.state(), State::Closed);
    late.failure(); // from the first closed period: counted, but not in this window
    assert_eq!(b.metrics().calls(CallKind::Failed), 5);
    assert_eq!(b.failure_rate(), None);
}

#[test]
fn a_dropped_permit_counts_as_the_default() {
    let reg = registry();
    let b = CircuitBreaker::new(&reg, "api", BreakerConfig::default()).unwrap();
    drop(b.try_acquire().unwrap());
    assert_eq!(b.metrics().calls(CallKind::Failed), 1);
    let c = CircuitBreaker::new(
        &reg,
        "cache",
        BreakerConfig::builder()
            .dropped_permit(Outcome::Ignore)
            .build()
            .unwrap(),
    )
    .unwrap();
    drop(c.try_acquire().unwrap());
    assert_eq!(c.metrics().calls(CallKind::Ignored), 1);
}

#[test]
fn a_time_window_forgets_old_seconds() {
    let reg = registry();
    let clock = ManualClock::new();
    let b = CircuitBreaker::new(
        &reg,
        "api",
        BreakerConfig::builder()
            .time_window(10)
            .minimum_calls(4)
            .clock(Clock::manual(clock.clone()))
            .build()
            .unwrap(),
    )
    .unwrap();
    for _ in 0..3 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    clock.advance(Duration::from_secs(10)); // those three are now out of the window
    for _ in 0..3 {
        b.call(|| Ok::<_, ()>(())).unwrap();
    }
    let _ = b.call(|| Err::<(), _>("down"));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.failure_rate(), Some(25.0));
    for _ in 0..2 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    assert_eq!(b.state(), State::Open); // 3 of 6
}

#[test]
fn automatic_transition_moves_to_half_open_without_a_call() {
    let reg = registry();
    let b = CircuitBreaker::new(
        &reg,
        "api",
        w4(BreakerConfig::builder())
            .wait_in_open(Duration::from_millis(20))
            .automatic_transition(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    for _ in 0..4 {
        let _ = b.call(|| Err::<(), _>("down"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while b.state() != State::HalfOpen {
        assert!(
            std::time::Instant::now() < deadline,
            "still {:?}",
            b.state()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(b.metrics().state(), State::HalfOpen);
}

#[test]
fn call_async_and_dropped_futures() {
    let reg = registry();
    let b = CircuitBreaker::new(&reg, "api", BreakerConfig::default()).unwrap();
    let fut = b.call_async(async { Ok::<_, ()>(7) });
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = std::task::Waker::from(Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    assert_eq!(
        fut.as_mut().poll(&mut cx),
        std::task::Poll::Ready(Result::Ok(7))
    );
    // A future that never completes, dropped after its first poll: a failure by default.
    let mut stuck = Box::pin(b.call_async(std::future::pending::<Result<(), ()>>()));
    assert!(stuck.as_mut().poll(&mut cx).is_pending());
    drop(stuck);
    assert_eq!(b.metrics().calls(CallKind::Successful), 1);
    assert_eq!(b.metrics().calls(CallKind::Failed), 1);
}

use std::future::Future;

#[test]
fn invalid_configuration_is_a_clear_error() {
    let t = |v: f64| {
        BreakerConfig::builder()
            .failure_rate_threshold(v)
            .build()
            .unwrap_err()
    };
    for v in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
        let e = t(v);
        assert!(
            matches!(
                e,
                ConfigurationError::Threshold {
                    name: "failure_rate_threshold",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("must be a percentage in (0, 100]"),
            "{e}"
        );
    }
    assert!(BreakerConfig::builder()
        .failure_rate_threshold(100.0)
        .build()
        .is_ok());
    let e = BreakerConfig::builder()
        .slow_calls(0.0, Duration::from_secs(1))
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "slow_call_rate_threshold must be a percentage in (0, 100], got 0"
    );
    let e = BreakerConfig::builder()
        .count_window(0)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the sliding window must hold 1 to 65536 calls, got 0"
    );
    let e = BreakerConfig::builder().time_window(0).build().unwrap_err();
    assert_eq!(
        e.to_string(),
        "the sliding window must hold 1 to 3600 seconds, got 0"
    );
    let e = BreakerConfig::builder()
        .permitted_calls_in_half_open(0)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "permitted_calls_in_half_open must be 1 to 1023, got 0"
    );
    let e = BreakerConfig::builder()
        .minimum_calls(0)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "minimum_calls must be at least 1");
    let e = BreakerConfig::builder()
        .slow_calls(50.0, Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "slow_call_duration must be longer than zero");
    let e = CircuitBreaker::new(&registry(), "", BreakerConfig::default()).unwrap_err();
    assert!(e.to_string().contains("non-empty name"), "{e}");
    let inputs = SlaInputs::new(Selector::new("dwcp_requests_total"));
    let e = SlaConfig::builder(inputs.clone())
        .windows([Duration::ZERO])
        .build()
        .unwrap_err();
    assert_eq!(e.to_string(), "an SLA window must be longer than zero");
    let e = SlaConfig::builder(inputs.clone())
        .availability_percent(100.1)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "availability target must be a percentage in (0, 100], got 100.1"
    );
    let e = SlaConfig::builder(inputs)
        .error_rate_percent(0.0)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error rate target must be a percentage in (0, 100], got 0"
    );
}

#[test]
fn illegal_transitions_are_refused() {
    let b = CircuitBreaker::new(&registry(), "api", BreakerConfig::default()).unwrap();
    let e = b.transition_to(State::HalfOpen).unwrap_err();
    assert_eq!((e.from, e.to), (State::Closed, State::HalfOpen));
    assert!(b.transition_to(State::Closed).is_err()); // to itself
    b.transition_to(State::Open).unwrap();
    b.transition_to(State::HalfOpen).unwrap();
    assert_eq!(b.metrics().trips(), 1);
}

#[test]
fn recovery_guard_records_and_abandoned_guards_fail() {
    let reg = registry();
    let clock = ManualClock::new();
    let r = Recovery::with_clock(&reg, "amst", Clock::manual(clock.clone())).unwrap();
    let g = r.start();
    clock.advance(Duration::from_millis(400));
    g.success();
    let g = r.start();
    clock.advance(Duration::from_secs(3));
    drop(g);
    assert_eq!((r.succeeded(), r.failed()), (1, 1));
    assert_eq!(r.success_rate(), 0.5);
    let h = reg
        .existing_histogram("dwcp_recovery_duration_seconds")
        .unwrap()
        .with_labels_or_overflow(&["amst"])
        .snapshot();
    assert_eq!(h.count(), 2);
    assert_eq!(h.count_le(1_000_000_000), 1);
}

#[test]
fn health_aggregates_and_times_out() {
    let reg = registry();
    let h = HealthChecker::new(&reg).unwrap();
    assert_eq!(h.check_blocking().status, HealthStatus::Healthy);
    h.add_check("database", true, Duration::from_secs(5), || {
        CheckResult::Healthy
    });
    h.add_check("cache", false, Duration::from_secs(5), || {
        CheckResult::Unhealthy("refused".into())
    });
    let r = h.check_blocking();
    assert_eq!(r.status, HealthStatus::Degraded);
    assert_eq!(r.components[1].message.as_deref(), Some("refused"));
    h.add_async_check("disk", false, Duration::from_secs(5), || async {
        CheckResult::Degraded("80% full".into())
    });
    assert_eq!(h.check_blocking().status, HealthStatus::Degraded);
    // A critical check that hangs past its timeout makes the service unhealthy.
    let release = Arc::new(Mutex::new(()));
    let held = release.lock().unwrap();
    let r2 = release.clone();
    h.add_check("database", true, Duration::from_millis(50), move || {
        let _g = r2.lock();
        CheckResult::Healthy
    });
    let r = h.check_blocking();
    assert_eq!(r.status, HealthStatus::Unhealthy);
    assert_eq!(
        r.components[0].message.as_deref(),
        Some("timed out after 50ms")
    );
    // Still running: not started again, reported unhealthy at once.
    let r = h.check_blocking();
    assert!(r.components[0]
        .message
        .as_deref()
        .unwrap()
        .contains("still running"));
    drop(held);
    let total = reg.existing_counter("dwcp_health_check_total").unwrap();
    let ok = total.with_labels_or_overflow(&["success"]).get();
    let failed = total.with_labels_or_overflow(&["failure"]).get();
    // Rounds: 0 + 2 + 3 + 3 + 3 checks; failures: cache (4x), database (2x).
    assert_eq!((ok, failed), (5, 6));
    let status = reg.existing_gauge("dwcp_component_status").unwrap();
    assert_eq!(
        status
            .with_labels_or_overflow(&["database", "unhealthy"])
            .get(),
        1.0
    );
    assert_eq!(
        status
            .with_labels_or_overflow(&["database", "healthy"])
            .get(),
        0.0
    );
    assert_eq!(
        status.with_labels_or_overflow(&["disk", "degraded"]).get(),
        1.0
    );
}

/// The SLA windows against values computed by hand.
#[test]
fn sla_windows_match_hand_computed_values() {
    let reg = registry();
    let requests = reg
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["status"])
        .register()
        .unwrap();
    let latency = reg
        .histogram("dwcp_request_duration_seconds", "Latency")
        .register()
        .unwrap()
        .handle();
    let bytes = reg
        .counter("dwcp_v3_bytes_transferred_total", "Bytes")
        .register()
        .unwrap()
        .handle();
    let ok = requests.with_labels_or_overflow(&["success"]);
    let err = requests.with_labels_or_overflow(&["error"]);
    let clock = ManualClock::new();
    let inputs = SlaInputs::new(Selector::new("dwcp_requests_total"))
        .with_errors(Selector::new("dwcp_requests_total").with_label("status", "error"))
        .with_latency(Selector::new("dwcp_request_duration_seconds"))
        .with_bytes(Selector::new("dwcp_v3_bytes_transferred_total"));
    let config = SlaConfig::builder(inputs)
        .windows([Duration::from_secs(10), Duration::from_secs(60)])
        .decision_window(Duration::from_secs(10))
        .resolution(10)
        .clock(Clock::manual(clock.clone()))
        .build()
        .unwrap();
    let sla = SlaTracker::new(&reg, config).unwrap();
    let tick = |secs: u64| {
        clock.advance(Duration::from_secs(secs));
        sla.tick()
    };
    let r = tick(0);
    assert_eq!(r.decision, Decision::Go); // no traffic: vacuously met
                                          // 10 s of good traffic: 1000 requests/s, none failed, 10 ms each, 3 GB/s.
    for _ in 0..10 {
        ok.inc_by(1000);
        latency.record_n(10_000_000, 1000);
        bytes.inc_by(3_000_000_000);
        tick(1);
    }
    let r = sla.last_report().unwrap();
    assert_eq!(r.decision, Decision::Go);
    let w10 = &r.windows[0];
    assert_eq!((w10.label.as_str(), w10.requests), ("10s", 10_000));
    assert_eq!(w10.sli(Sli::Availability).unwrap().value, Some(1.0));
    assert_eq!(w10.sli(Sli::ErrorRate).unwrap().value, Some(0.0));
    assert_eq!(w10.sli(Sli::Throughput).unwrap().value, Some(3e9));
    // P99 10 ms: the smallest ladder step holding 99 % is 0.1 × target.
    assert_eq!(w10.sli(Sli::LatencyP99).unwrap().value, Some(0.1 * 0.1));
    assert_eq!(w10.error_budget_remaining, 1.0);
    // Then 5 s at 2 % errors: the 10 s window holds 5 good seconds and 5 bad ones.
    for _ in 0..5 {
        ok.inc_by(980);
        err.inc_by(20);
        latency.record_n(10_000_000, 1000);
        bytes.inc_by(3_000_000_000);
        tick(1);
    }
    let r = sla.last_report().unwrap();
    let w10 = &r.windows[0];
    assert_eq!(w10.requests, 10_000);
    assert_eq!(
        w10.sli(Sli::ErrorRate).unwrap().value,
        Some(100.0 / 10_000.0)
    );
    assert_eq!(
        w10.sli(Sli::Availability).unwrap().value,
        Some(9_900.0 / 10_000.0)
    );
    assert_eq!(r.decision, Decision::NoGo); // 99 % availability < 99.9 %
    assert!((w10.burn_rate - 1.0).abs() < 1e-12);
    assert_eq!(w10.error_budget_remaining, 0.0);
    // The 60 s window holds everything so far (15 s): 15 000 requests, 100 errors.
    let w60 = &r.windows[1];
    assert_eq!((w60.label.as_str(), w60.requests), ("1m", 15_000));
    assert_eq!(w60.covered, Duration::from_secs(15));
    assert_eq!(
        w60.sli(Sli::ErrorRate).unwrap().value,
        Some(100.0 / 15_000.0)
    );
    // Slow and clean: 10 s at 150 ms. P99 misses 100 ms: NO-GO on latency alone.
    for _ in 0..10 {
        ok.inc_by(1000);
        latency.record_n(150_000_000, 1000);
        bytes.inc_by(3_000_000_000);
        tick(1);
    }
    let r = sla.last_report().unwrap();
    let w10 = &r.windows[0];
    assert!(!w10.sli(Sli::LatencyP99).unwrap().compliant);
    let p99 = w10.sli(Sli::LatencyP99).unwrap().value.unwrap();
    assert!((p99 - 0.15).abs() < 1e-12, "{p99}"); // the 1.5 × target step
    assert!(w10.sli(Sli::Availability).unwrap().compliant);
    assert_eq!(r.decision, Decision::NoGo);
    // Recovery: 10 s at 90 ms with 0.06 % errors: every target met, but the P99 is over the
    // 80 ms warning threshold.
    for _ in 0..10 {
        ok.inc_by(9994);
        err.inc_by(6);
        latency.record_n(90_000_000, 10_000);
        tick(1);
    }
    let r = sla.last_report().unwrap();
    let w10 = &r.windows[0];
    assert!((w10.error_budget_remaining - 0.94).abs() < 1e-9, "{w10:?}");
    assert!(w10.sli(Sli::LatencyP99).unwrap().compliant);
    assert!(!w10.sli(Sli::Throughput).unwrap().compliant); // no bytes moved
    assert_eq!(r.decision, Decision::Caution);
    // The exported series agree.
    let g = reg.existing_gauge("dwcp_sla_decision").unwrap().handle();
    assert_eq!(g.get(), 1.0);
    let c = reg.existing_gauge("dwcp_sla_compliance").unwrap();
    assert_eq!(c.with_labels_or_overflow(&["throughput", "10s"]).get(), 0.0);
    assert_eq!(c.with_labels_or_overflow(&["error_rate", "10s"]).get(), 1.0);
    // Memory: never more than resolution + 1 samples per window.
    for _ in 0..1000 {
        tick(1);
    }
    let windows = sla.inner_sample_counts();
    assert!(windows.iter().all(|&n| n <= 11), "{windows:?}");
}

#[test]
fn concurrent_rounds_share_one_run_of_a_slow_check() {
    let reg = registry();
    let h = Arc::new(HealthChecker::new(&reg).unwrap());
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let (r, g) = (runs.clone(), gate.clone());
    h.add_check("database", true, Duration::from_secs(60), move || {
        r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = started_tx.lock().unwrap().send(());
        let _g = g.lock();
        CheckResult::Healthy
    });
    // Two probes at once: the second starts while the first's run is in progress.
    let probe = |h: &Arc<HealthChecker>| {
        let h = h.clone();
        std::thread::spawn(move || h.check_blocking())
    };
    let first = probe(&h);
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the check started");
    let second = probe(&h);
    // The run is released only once the second round is waiting for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.rounds_waiting("database") < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second round never joined"
        );
        std::thread::yield_now();
    }
    drop(held);
    for report in [first.join().unwrap(), second.join().unwrap()] {
        assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
        assert_eq!(report.components[0].message, None);
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Once it is done, the next round runs it again.
    assert_eq!(h.check_blocking().status, HealthStatus::Healthy);
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
}
