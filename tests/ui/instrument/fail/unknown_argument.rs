use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst", opration = "migrate")]
fn f() {}

fn main() {}
