// A `u32` given where the label set declares `&'static str` does not compile.
use dwcp_telemetry::{LabelSet, Registry};

#[derive(LabelSet)]
struct Req {
    component: &'static str,
    shard: u16,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder().version("3.0.0").build()?;
    let fam = registry
        .gauge("dwcp_queue_depth", "Queue depth")
        .labels::<Req>()
        .register()?;
    let shard: u32 = 7;
    let g = fam.get(&Req {
        component: shard,
        shard: 7,
    });
    g.set(1.0);
    Ok(())
}
