// `LabelValue` derives only for enums of unit variants.
use dwcp_telemetry::LabelValue;

#[derive(LabelValue)]
struct Component {
    name: String,
}

fn main() {}
