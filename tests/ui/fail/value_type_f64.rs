// A field whose type is not a label value (f64 has no exact, stable text form) is an error
// on the field's type.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Req {
    component: &'static str,
    ratio: f64,
    tags: Vec<String>,
}

fn main() {}
