//! The manager's resource gauges are read from `/proc/self` at scrape time (a
//! `Registry::on_collect` hook): thread count, memory and CPU time follow the process between
//! two collections. One test in its own binary, so no other test's threads come and go.
#![cfg(target_os = "linux")]

mod prom_support;

use std::sync::Arc;

use dwcp_telemetry::catalog::manager;
use dwcp_telemetry::catalog::resources::ProcessSample;
use dwcp_telemetry::{Registry, Value};

fn registry() -> Registry {
    Registry::builder().version("3.0.0").build().unwrap()
}

#[test]
fn resource_gauges_are_read_from_proc_at_scrape_time() {
    let reg = registry();
    manager::register_all(&reg).unwrap();
    let gauge = |name: &str, ty: Option<&str>| -> f64 {
        let families = reg.collect();
        let f = families
            .iter()
            .find(|f| f.descriptor.name() == name)
            .unwrap();
        let s = f
            .series
            .iter()
            .find(|s| match ty {
                None => true,
                Some(t) => s.label_values.iter().any(|v| v == t),
            })
            .unwrap();
        match s.value {
            Value::Gauge(v) => v,
            _ => panic!("not a gauge"),
        }
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(status.contains("Threads:"));
    let threads_before = gauge("dwcp_goroutines", None);
    assert!(threads_before >= 1.0);
    // Four more threads, parked until the scrape has seen them.
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                b.wait();
            })
        })
        .collect();
    barrier.wait();
    let threads_during = gauge("dwcp_goroutines", None);
    assert!(
        threads_during >= threads_before + 4.0,
        "{threads_before} -> {threads_during}"
    );
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    assert!(gauge("dwcp_memory_usage_bytes", Some("rss")) > 1e6);
    assert!(gauge("dwcp_memory_usage_bytes", Some("heap")) > 0.0);
    assert!(gauge("dwcp_memory_usage_bytes", Some("stack")) > 0.0);
    // CPU time used between two scrapes shows in the second: spin until /proc says 50 ms
    // more were used (however busy the machine), then scrape.
    let cpu_before = gauge("dwcp_cpu_usage_seconds", None);
    let mut x = 0u64;
    prom_support::wait_until(
        "50 ms of CPU time",
        std::time::Duration::from_secs(120),
        || {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            ProcessSample::read().cpu_seconds.unwrap() >= cpu_before + 0.05
        },
    );
    let cpu_after = gauge("dwcp_cpu_usage_seconds", None);
    assert!(
        cpu_after >= cpu_before + 0.05,
        "{cpu_before} -> {cpu_after}"
    );
}
