// Another metric's label set: dwcp_circuit_breaker_trips_total takes `Circuit`, not
// `Component` (the labels of dwcp_recovery_duration_seconds).
use dwcp_telemetry::catalog::manager::{self, Component};
use dwcp_telemetry::Registry;

fn main() {
    let reg = Registry::builder().build().unwrap();
    let r = manager::register_resilience(&reg).unwrap();
    r.circuit_breaker_trips_total
        .get(&Component { component: "amst".into() })
        .inc();
}
