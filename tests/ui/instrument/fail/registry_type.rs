use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst", registry = 42)]
fn f() {}

fn main() {}
