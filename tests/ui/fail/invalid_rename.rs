// A renamed label must still be a valid Prometheus label name, given as a string literal.
use dwcp_telemetry::LabelSet;

#[derive(LabelSet)]
struct Req {
    #[label(rename = "shard-id")]
    shard: u16,
    #[label(rename = "__internal")]
    internal: bool,
    #[label(rename = "9lives")]
    lives: u8,
    #[label(rename = component)]
    component: &'static str,
    __hidden: u8,
}

fn main() {}
