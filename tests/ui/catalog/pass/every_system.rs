// Each system's families take their own typed label sets.
use dwcp_telemetry::catalog::{bullshark, compression, maddpg, manager, probft, protocol, tpbft, v3};
use dwcp_telemetry::Registry;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reg = Registry::builder().version("3.0.0").build()?;
    let (m, r) = manager::register_all(&reg)?;
    m.errors_total.get(&manager::ErrorType { r#type: "timeout".into() }).inc();
    r.circuit_breaker_state.get(&manager::Circuit { circuit: "api".into() }).set(1.0);
    r.recovery_attempts_total
        .get(&manager::RecoveryAttempt { component: "amst".into(), success: true })
        .inc();
    let c = compression::register(&reg)?;
    c.model_predictions_total
        .get(&compression::Prediction {
            prediction: "zstd".into(),
            confidence: "high".into(),
            model_version: "v2".into(),
        })
        .inc();
    c.overhead_percentage.handle().set(3.0);
    let p = probft::register(&reg)?;
    p.consensus_duration_seconds.handle().record_secs(0.2);
    let b = bullshark::register(&reg)?;
    b.mempool_usage_percentage.handle().set(42.0);
    let t = tpbft::register(&reg)?;
    t.trust_score_changes
        .get(&tpbft::TrustChange { node: "n1".into(), direction: tpbft::Direction::Down })
        .inc();
    let a = maddpg::register(&reg)?;
    a.resource_starvation_events.get(&maddpg::Service { service: "api".into() }).inc();
    let n = protocol::register(&reg)?;
    n.streams_active.handle().set(10.0);
    let v = v3::register(&reg)?;
    v.migrations_total
        .get(&v3::MigrationOutcome { mode: v3::Mode::Datacenter, status: v3::Outcome::Success })
        .inc();
    Ok(())
}
