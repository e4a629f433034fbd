// A label value is one fixed string per variant: variants cannot carry data.
use dwcp_telemetry::LabelValue;

#[derive(LabelValue)]
enum Operation {
    Migrate,
    ScaleUp(u32),
    Failover { node: String },
}

fn main() {}
