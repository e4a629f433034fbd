//! Circuit breakers, health and SLA from the outside: many threads on one breaker with exact
//! counts and a legal transition log, `/health` answering 503 over real HTTP, the SLA in
//! `/metrics/summary`, and the exposition of every resilience family passing promtool.

mod prom_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dwcp_telemetry::export::prometheus::{render, Format, PrometheusServer};
use dwcp_telemetry::resilience::{
    BreakerConfig, CallError, CallKind, CheckResult, CircuitBreaker, Clock, HealthChecker,
    ManualClock, Outcome, Recovery, Selector, SlaConfig, SlaInputs, SlaTracker, State, Transition,
};
use dwcp_telemetry::Registry;
use prom_support::{get, have, promtool_check, wait_until};

/// Threads hammer one breaker whose dependency fails in bursts, moving a manual clock on: every call is accounted for by kind, exactly, and the transitions, ordered by
/// generation, form a legal chain that the trip and reset counters and the gauge agree with.
#[test]
fn many_threads_on_one_breaker_count_exactly_and_transition_legally() {
    const THREADS: usize = 4;
    const CALLS: usize = 20_000;
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let clock = ManualClock::new();
    let log: Arc<Mutex<Vec<Transition>>> = Arc::default();
    let config = BreakerConfig::builder()
        .count_window(20)
        .minimum_calls(10)
        .failure_rate_threshold(50.0)
        .slow_calls(80.0, Duration::from_millis(5))
        .wait_in_open(Duration::from_millis(2))
        .permitted_calls_in_half_open(3)
        .max_wait_in_half_open(Duration::from_millis(50))
        .clock(Clock::manual(clock.clone()))
        .classify(|e: &&str| {
            if *e == "ignored" {
                Outcome::Ignore
            } else {
                Outcome::Failure
            }
        })
        .on_transition({
            let log = log.clone();
            move |t| log.lock().unwrap().push(t.clone())
        })
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(&registry, "database", config).unwrap();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, clock) = (breaker.clone(), clock.clone());
            std::thread::spawn(move || {
                // successful, failed, ignored, not_permitted
                let mut tally = [0u64; 4];
                for i in 0..CALLS {
                    // Failure bursts: 30 of every 100 calls fail, in a run, shifted per thread.
                    let fail = (i + t * 25) % 100 < 30;
                    let ignore = i % 97 == 0;
                    // Time moves with the calls, so the breaker's waits end whatever the
                    // scheduling; one call in 50 is slow (6 ms, over the 5 ms limit).
                    clock.advance(Duration::from_micros(250));
                    let r = b.call(|| {
                        if i % 50 == 0 {
                            clock.advance(Duration::from_millis(6));
                        }
                        match (fail, ignore) {
                            (_, true) => Err("ignored"),
                            (true, _) => Err("down"),
                            _ => Ok(()),
                        }
                    });
                    match r {
                        Ok(()) => tally[0] += 1,
                        Err(CallError::Failed("ignored")) => tally[2] += 1,
                        Err(CallError::Failed(_)) => tally[1] += 1,
                        Err(CallError::NotPermitted(_)) => tally[3] += 1,
                    }
                    if i % 7 == 0 {
                        // The permit API, dropped half the time (counts as a failure).
                        match b.try_acquire() {
                            Ok(p) if i % 14 == 0 => {
                                drop(p);
                                tally[1] += 1;
                            }
                            Ok(p) => {
                                p.success();
                                tally[0] += 1;
                            }
                            Err(_) => tally[3] += 1,
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = [0u64; 4];
    for w in workers {
        for (t, n) in total.iter_mut().zip(w.join().unwrap()) {
            *t += n;
        }
    }
    let m = breaker.metrics();
    let kinds = [
        CallKind::Successful,
        CallKind::Failed,
        CallKind::Ignored,
        CallKind::NotPermitted,
    ];
    let counted = kinds.map(|k| m.calls(k));
    assert_eq!(counted, total, "calls by kind");
    assert!(total.iter().all(|&n| n > 0), "every kind occurs: {total:?}");
    let per_thread = (CALLS + CALLS.div_ceil(7)) as u64;
    assert_eq!(counted.iter().sum::<u64>(), THREADS as u64 * per_thread);

    let mut log = log.lock().unwrap().clone();
    log.sort_by_key(|t| t.generation);
    assert!(
        log.len() >= 4,
        "the breaker should trip and recover: {log:?}"
    );
    let mut state = State::Closed;
    for (i, t) in log.iter().enumerate() {
        assert_eq!(
            t.generation,
            i as u64 + 1,
            "a generation missing or repeated: {log:?}"
        );
        assert_eq!(
            t.from, state,
            "transition {i} does not start where the last ended"
        );
        let legal = matches!(
            (t.from, t.to),
            (State::Closed, State::Open)
                | (State::Open, State::HalfOpen)
                | (State::HalfOpen, State::Closed)
                | (State::HalfOpen, State::Open)
        );
        assert!(legal, "illegal transition {:?} -> {:?}", t.from, t.to);
        state = t.to;
    }
    let count = |s: State| log.iter().filter(|t| t.to == s).count() as u64;
    assert_eq!(m.trips(), count(State::Open));
    assert_eq!(m.resets(), count(State::Closed));
    assert_eq!(breaker.state(), state);
    assert_eq!(m.state(), state);
    let text = render(&registry, Format::Text);
    let gauge = format!(
        "dwcp_circuit_breaker_state{{version=\"3.0.0\",circuit=\"database\"}} {}",
        state.gauge_value()
    );
    assert!(text.contains(&gauge), "{gauge} not in\n{text}");
}

#[test]
fn health_answers_503_when_a_critical_check_fails() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let health = HealthChecker::new(&registry).unwrap();
    let db_up = Arc::new(AtomicBool::new(true));
    {
        let up = db_up.clone();
        health.add_check("database", true, Duration::from_secs(5), move || {
            if up.load(Ordering::Relaxed) {
                CheckResult::Healthy
            } else {
                CheckResult::Unhealthy("connection refused".into())
            }
        });
    }
    health.add_async_check("cache", false, Duration::from_millis(100), || async {
        // An async check that never answers: it times out, and only degrades.
        std::future::pending::<CheckResult>().await
    });
    let server = PrometheusServer::builder(registry.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .health(health.clone())
        .start_background()
        .unwrap();
    let addr = server.local_addr();
    let r = get(addr, "/health");
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["version"], "3.0.0");
    assert_eq!(v["components"][0]["name"], "database");
    assert_eq!(v["components"][0]["status"], "healthy");
    assert_eq!(v["components"][1]["status"], "unhealthy");
    assert_eq!(v["components"][1]["critical"], false);
    assert_eq!(v["components"][1]["message"], "timed out after 100ms");
    db_up.store(false, Ordering::Relaxed);
    let r = get(addr, "/health");
    assert_eq!(r.status, 503, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["components"][0]["message"], "connection refused");
    // HEAD gets the status too, without a body.
    let r = prom_support::request(addr, "HEAD", "/health", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "");
    db_up.store(true, Ordering::Relaxed);
    assert_eq!(get(addr, "/health").status, 200);
    // Four rounds (HEAD runs the checks too) of two checks: the cache failed in each, the
    // database in two.
    let text = get(addr, "/metrics").body;
    for line in [
        "dwcp_health_check_total{version=\"3.0.0\",status=\"success\"} 2",
        "dwcp_health_check_total{version=\"3.0.0\",status=\"failure\"} 6",
        "dwcp_component_status{version=\"3.0.0\",component=\"database\",status=\"healthy\"} 1",
        "dwcp_component_status{version=\"3.0.0\",component=\"database\",status=\"unhealthy\"} 0",
        "dwcp_component_status{version=\"3.0.0\",component=\"cache\",status=\"unhealthy\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    server.shutdown();
}

#[test]
fn summary_carries_the_sla_and_the_exposition_passes_promtool() {
    let registry = Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()
        .unwrap();
    let requests = registry
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["status"])
        .register()
        .unwrap();
    let clock = ManualClock::new();
    let inputs = SlaInputs::new(Selector::new("dwcp_requests_total"))
        .with_errors(Selector::new("dwcp_requests_total").with_label("status", "error"));
    let sla = SlaTracker::new(
        &registry,
        SlaConfig::builder(inputs)
            .clock(Clock::manual(clock.clone()))
            .build()
            .unwrap(),
    )
    .unwrap();
    sla.tick();
    requests.with_labels_or_overflow(&["success"]).inc_by(950);
    requests.with_labels_or_overflow(&["error"]).inc_by(50);
    clock.advance(Duration::from_secs(30));
    let breaker = CircuitBreaker::new(&registry, "api", BreakerConfig::default()).unwrap();
    let _ = breaker.call(|| Ok::<_, ()>(()));
    let recovery = Recovery::new(&registry, "amst").unwrap();
    recovery.start().success();
    let health = HealthChecker::new(&registry).unwrap();
    health.add_check("api", true, Duration::from_secs(1), || CheckResult::Healthy);
    health.check_blocking();
    let server = PrometheusServer::builder(registry.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .sla(sla)
        .start_background()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&get(server.local_addr(), "/metrics/summary").body).unwrap();
    assert_eq!(v["sla"]["decision"], "NO-GO");
    assert_eq!(v["sla"]["decision_window"], "5m");
    let windows: Vec<&str> = v["sla"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["window"].as_str().unwrap())
        .collect();
    assert_eq!(windows, ["5m", "1h", "1d", "7d", "30d"]);
    assert_eq!(v["sla"]["windows"][0]["slis"]["error_rate"]["value"], 0.05);
    assert_eq!(v["sla"]["windows"][0]["error_budget_remaining"], 0);
    let text = get(server.local_addr(), "/metrics").body;
    let mut seen: HashMap<&str, bool> = HashMap::new();
    for family in [
        "dwcp_circuit_breaker_state",
        "dwcp_circuit_breaker_trips_total",
        "dwcp_circuit_breaker_resets_total",
        "dwcp_circuit_breaker_calls_total",
        "dwcp_circuit_breaker_failure_rate",
        "dwcp_circuit_breaker_slow_call_rate",
        "dwcp_recovery_attempts_total",
        "dwcp_recovery_duration_seconds",
        "dwcp_recovery_success_rate",
        "dwcp_health_check_total",
        "dwcp_health_check_duration_seconds",
        "dwcp_component_status",
        "dwcp_sla_compliance",
        "dwcp_sla_error_budget_remaining_ratio",
        "dwcp_sla_decision",
    ] {
        seen.insert(family, text.contains(&format!("# HELP {family} ")));
    }
    assert!(seen.values().all(|&s| s), "{seen:?}\n{text}");
    assert!(
        text.contains("dwcp_sla_compliance{version=\"3.0.0\",sli=\"error_rate\",window=\"5m\"} 0")
    );
    assert!(text.contains("dwcp_sla_decision{version=\"3.0.0\"} 2"));
    assert!(text.contains(
        "dwcp_recovery_duration_seconds_bucket{version=\"3.0.0\",component=\"amst\",le=\"30\"} 1"
    ));
    if have("promtool") {
        let (code, out) = promtool_check(&text);
        assert_eq!((code, out.as_str()), (0, ""), "{text}");
    }
    server.shutdown();
}

#[test]
fn automatic_transition_is_observable_on_the_endpoint() {
    let registry = Registry::builder().version("3.0.0").build().unwrap();
    let breaker = CircuitBreaker::new(
        &registry,
        "api",
        BreakerConfig::builder()
            .count_window(2)
            .minimum_calls(2)
            .wait_in_open(Duration::from_millis(50))
            .automatic_transition(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let server = PrometheusServer::builder(registry.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .start_background()
        .unwrap();
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), _>("down"));
    }
    let line =
        |v: u8| format!("dwcp_circuit_breaker_state{{version=\"3.0.0\",circuit=\"api\"}} {v}");
    wait_until("half-open on /metrics", Duration::from_secs(30), || {
        get(server.local_addr(), "/metrics").body.contains(&line(2))
    });
    server.shutdown();
}
