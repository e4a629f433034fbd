use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(operation = "migrate")]
fn f() {}

fn main() {}
