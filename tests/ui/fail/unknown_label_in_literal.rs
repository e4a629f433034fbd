// A misspelt label name in the label set passed to a family does not compile.
use dwcp_telemetry::{LabelSet, LabelValue, Registry};

#[derive(Clone, Copy, LabelValue)]
enum Operation {
    Migrate,
}

#[derive(LabelSet)]
struct Req {
    operation: Operation,
    component: &'static str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder().version("3.0.0").build()?;
    let fam = registry
        .histogram("dwcp_request_duration_seconds", "Latency")
        .labels::<Req>()
        .register()?;
    let h = fam.get(&Req {
        operaton: Operation::Migrate,
        component: "amst",
    });
    h.record(1);
    Ok(())
}
