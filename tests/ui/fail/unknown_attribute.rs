// Unknown or misplaced `#[label(..)]` keys are errors, not silently ignored.
use dwcp_telemetry::{LabelSet, LabelValue};

#[derive(LabelSet)]
#[label(rename_all = "kebab-case")]
struct Req {
    #[label(renam = "op")]
    operation: &'static str,
    #[label(crate = dwcp_telemetry)]
    shard: u16,
}

#[derive(LabelSet)]
#[label(rename = "x")]
struct Other {
    a: u8,
}

#[derive(LabelValue)]
#[label(rename = "x")]
enum Operation {
    #[label(skip)]
    Migrate,
}

fn main() {}
