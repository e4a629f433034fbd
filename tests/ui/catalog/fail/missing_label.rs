// Leaving a label out: dwcp_recovery_attempts_total needs `component` and `success`.
use dwcp_telemetry::catalog::manager::{self, RecoveryAttempt};
use dwcp_telemetry::Registry;

fn main() {
    let reg = Registry::builder().build().unwrap();
    let r = manager::register_resilience(&reg).unwrap();
    r.recovery_attempts_total
        .get(&RecoveryAttempt { component: "amst".into() })
        .inc();
}
