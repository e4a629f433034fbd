// Label sets need named fields: a field name is a label name.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Req(&'static str, u16);

fn main() {}
