// `LabelSet` is for structs; enums of values derive `LabelValue`.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
enum Operation {
    Migrate,
}

fn main() {}
