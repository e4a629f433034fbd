// The typed family API: `.labels::<L>()` on histogram, counter and gauge builders, then
// `get(&L)` for a handle.
use dwcp_telemetry::{LabelSet, LabelValue, Registry};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, LabelValue)]
enum Operation {
    Migrate,
    #[label(rename = "scale-up")]
    ScaleUp,
}

#[derive(Debug, LabelSet)]
struct Req {
    operation: Operation,
    component: &'static str,
    shard: u16,
}

#[derive(Debug, LabelSet)]
struct Node {
    node: String,
    healthy: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = Registry::builder().version("3.0.0").build()?;

    let latency = registry
        .histogram("dwcp_request_duration_seconds", "Request latency")
        .labels::<Req>()
        .register()?;
    let h = latency.get(&Req {
        operation: Operation::ScaleUp,
        component: "amst",
        shard: 7,
    });
    h.record(1);
    assert_eq!(
        latency.descriptor().label_names(),
        ["operation", "component", "shard"]
    );

    let requests = registry
        .counter("dwcp_requests_total", "Requests")
        .labels::<Req>()
        .register()?;
    let c = requests.get(&Req {
        operation: Operation::Migrate,
        component: "amst",
        shard: 1,
    });
    c.inc();

    let up = registry
        .gauge("dwcp_node_up", "Node health")
        .labels::<Node>()
        .register()?;
    let g = up.get(&Node {
        node: "node-1".to_owned(),
        healthy: true,
    });
    g.set(1.0);

    let families = registry.collect();
    let values = |name: &str| -> Vec<String> {
        let family = families.iter().find(|f| f.descriptor.name() == name);
        let series = family.map(|f| &f.series[0]);
        series.map_or_else(Vec::new, |s| {
            s.label_values.iter().map(|v| v.to_string()).collect()
        })
    };
    assert_eq!(
        values("dwcp_request_duration_seconds"),
        ["scale-up", "amst", "7"]
    );
    assert_eq!(values("dwcp_requests_total"), ["migrate", "amst", "1"]);
    assert_eq!(values("dwcp_node_up"), ["node-1", "true"]);
    Ok(())
}
