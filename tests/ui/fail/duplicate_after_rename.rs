// Two fields cannot end up with the same label name.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Req {
    component: &'static str,
    #[label(rename = "component")]
    subsystem: &'static str,
}

fn main() {}
