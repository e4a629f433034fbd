//! The status page's cost against a scrape: rendering `/status` (HTML, and its JSON) for a
//! registry of 1,000 histogram series (1,000 samples each) and 50 circuit breakers, beside one
//! `/metrics` text render of the same registry, in the same run (see `docs/PERFORMANCE.md`,
//! "The status page"). The goal: the page costs no more than the scrape.
//!
//! `cargo bench --bench status`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dwcp_support::latency_table;
use dwcp_telemetry::export::prometheus::{Format, TextEncoder};
use dwcp_telemetry::export::status::{Journal, StatusPage};
use dwcp_telemetry::Registry;

const SERIES: usize = 1_000;
const SAMPLES: usize = 1_000;
const BREAKERS: usize = 50;

fn registry(table: &[u64]) -> Registry {
    let reg = Registry::builder().version("3.0.0").build().unwrap();
    let lat = reg
        .histogram("dwcp_request_duration_seconds", "Latency")
        .dynamic_labels(["component", "operation"])
        .cardinality_limit(SERIES + 1)
        .register()
        .unwrap();
    let req = reg
        .counter("dwcp_requests_total", "Requests")
        .dynamic_labels(["component", "operation", "status"])
        .cardinality_limit(2 * SERIES + 1)
        .register()
        .unwrap();
    for s in 0..SERIES {
        let op = format!("op{s}");
        let h = lat.with_labels_or_overflow(&["manager", &op]);
        for v in table.iter().cycle().skip(s * 7).take(SAMPLES) {
            h.record(*v);
        }
        req.with_labels_or_overflow(&["manager", &op, "ok"])
            .inc_by(990);
        req.with_labels_or_overflow(&["manager", &op, "error"])
            .inc_by(10);
    }
    let gauge = |name: &str| {
        reg.gauge(name, "Breaker")
            .dynamic_labels(["circuit"])
            .register()
            .unwrap()
    };
    let (state, failure, slow) = (
        gauge("dwcp_circuit_breaker_state"),
        gauge("dwcp_circuit_breaker_failure_rate"),
        gauge("dwcp_circuit_breaker_slow_call_rate"),
    );
    let trips = reg
        .counter("dwcp_circuit_breaker_trips_total", "Trips")
        .dynamic_labels(["circuit"])
        .register()
        .unwrap();
    let journal = Journal::global();
    for b in 0..BREAKERS {
        let c = format!("dep{b}");
        state.with_labels_or_overflow(&[&c]).set((b % 3) as f64);
        failure.with_labels_or_overflow(&[&c]).set(12.5);
        slow.with_labels_or_overflow(&[&c]).set(-1.0);
        trips.with_labels_or_overflow(&[&c]).inc_by(b as u64);
        journal.record_transition(&c, "closed", "open");
    }
    reg
}

fn status(c: &mut Criterion) {
    let table = latency_table(SAMPLES + SERIES * 7);
    let reg = registry(&table);
    let page = StatusPage::new(reg.clone(), Arc::clone(&Journal::global()));
    let mut g = c.benchmark_group("status_1000_series_50_breakers");
    let mut enc = TextEncoder::new(Format::Text);
    let mut out = String::new();
    g.bench_function("metrics_scrape_text", |b| {
        b.iter(|| {
            out.clear();
            enc.encode_registry(&reg, &mut out);
            out.len()
        })
    });
    g.bench_function("status_html", |b| b.iter(|| page.render_html("n").len()));
    g.bench_function("status_json", |b| b.iter(|| page.render_json().len()));
    // Paired: each iteration renders the page and then scrapes, timing each, so both see the
    // same machine at the same moment (a shared host's load swings between criterion's
    // separate runs by more than the difference measured). Criterion times the page; the
    // scrapes' total is kept beside it and the ratio of the two totals printed at the end.
    let mut paired = |name: &str, render: &dyn Fn() -> usize| {
        let mut totals = (Duration::ZERO, Duration::ZERO);
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                let mut page_time = Duration::ZERO;
                for _ in 0..n {
                    let t = Instant::now();
                    black_box(render());
                    let mid = Instant::now();
                    out.clear();
                    enc.encode_registry(&reg, &mut out);
                    black_box(out.len());
                    totals.1 += mid.elapsed();
                    page_time += mid - t;
                }
                totals.0 += page_time;
                page_time
            })
        });
        totals
    };
    let html = paired("paired_status_html", &|| page.render_html("n").len());
    let json = paired("paired_status_json", &|| page.render_json().len());
    g.finish();
    for (name, (page_total, scrape_total)) in [("status_html", html), ("status_json", json)] {
        println!(
            "paired: {name} / metrics_scrape_text = {:.3} ({:.3} s of page, {:.3} s of scrapes, interleaved)",
            page_total.as_secs_f64() / scrape_total.as_secs_f64(),
            page_total.as_secs_f64(),
            scrape_total.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = status
}
criterion_main!(benches);
