use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst", operation = "a", operation = "b")]
fn f() {}

fn main() {}
