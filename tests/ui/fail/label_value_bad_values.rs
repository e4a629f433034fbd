// Label values must be non-empty and unique; `rename_all` takes a known rule.
use dwcp_telemetry::LabelValue;

#[derive(LabelValue)]
enum Operation {
    ScaleUp,
    #[label(rename = "scale_up")]
    Grow,
    #[label(rename = "")]
    Nothing,
}

#[derive(LabelValue)]
#[label(rename_all = "camelCase")]
enum Style {
    ScaleUp,
}

fn main() {}
