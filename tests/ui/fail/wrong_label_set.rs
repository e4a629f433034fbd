// A family typed on one label set does not take another.
use dwcp_telemetry::{LabelSet, Registry};

#[derive(LabelSet)]
struct Req {
    component: &'static str,
}

#[derive(LabelSet)]
struct Node {
    component: &'static str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder().version("3.0.0").build()?;
    let fam = registry
        .histogram("dwcp_request_duration_seconds", "Latency")
        .labels::<Req>()
        .register()?;
    let h = fam.get(&Node { component: "amst" });
    h.record(1);
    Ok(())
}
