//! The catalog's manager families and the resilience runtime (breakers, recovery, health, SLA)
//! name the same metrics; on one registry, in either order, they must agree: registering both
//! is no conflict, and what the runtime records is what the catalog's handles read.

use dwcp_telemetry::catalog::manager;
use dwcp_telemetry::resilience::{
    BreakerConfig, CircuitBreaker, HealthChecker, Recovery, Selector, SlaConfig, SlaInputs,
    SlaTracker,
};
use dwcp_telemetry::Registry;

fn runtime(reg: &Registry) {
    let breaker = CircuitBreaker::new(reg, "database", BreakerConfig::builder().build().unwrap())
        .expect("breaker families agree with the catalog");
    breaker.call(|| Ok::<_, std::io::Error>(())).unwrap();
    Recovery::new(reg, "database")
        .expect("recovery families agree with the catalog")
        .start()
        .success();
    HealthChecker::new(reg).expect("health families agree with the catalog");
    SlaTracker::new(
        reg,
        SlaConfig::builder(SlaInputs::new(Selector::new("dwcp_requests_total")))
            .build()
            .unwrap(),
    )
    .expect("SLA families agree with the catalog");
}

#[test]
fn catalog_first_then_runtime() {
    let reg = Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()
        .unwrap();
    manager::register_all(&reg).unwrap();
    runtime(&reg);
}

#[test]
fn runtime_first_then_catalog() {
    let reg = Registry::builder()
        .version("3.0.0")
        .dwcp_defaults()
        .build()
        .unwrap();
    runtime(&reg);
    manager::register_all(&reg).expect("the catalog agrees with the runtime's families");
}
