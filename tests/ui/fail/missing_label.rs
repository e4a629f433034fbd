// Leaving a label out of the label set does not compile.
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
        .counter("dwcp_requests_total", "Requests")
        .labels::<Req>()
        .register()?;
    let c = fam.get(&Req {
        operation: Operation::Migrate,
    });
    c.inc();
    Ok(())
}
