// A label the metric does not have: dwcp_circuit_breaker_trips_total has only `circuit`.
use dwcp_telemetry::catalog::manager::{self, Circuit};
use dwcp_telemetry::Registry;

fn main() {
    let reg = Registry::builder().build().unwrap();
    let r = manager::register_resilience(&reg).unwrap();
    r.circuit_breaker_trips_total
        .get(&Circuit { circuit: "database".into(), component: "amst".into() })
        .inc();
}
