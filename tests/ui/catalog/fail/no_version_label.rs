// `version` is the registry's, not a label set field.
use dwcp_telemetry::catalog::probft::{self, Peer};
use dwcp_telemetry::Registry;

fn main() {
    let reg = Registry::builder().build().unwrap();
    let p = probft::register(&reg).unwrap();
    p.network_latency_seconds
        .get(&Peer { peer: "n2".into(), version: "3.0.0".into() })
        .record_secs(0.01);
}
