// `version` is set once on the registry; a label set cannot carry it.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Req {
    component: &'static str,
    version: &'static str,
}

fn main() {}
