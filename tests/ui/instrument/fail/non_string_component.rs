use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = amst)]
fn f() {}

#[instrument_dwcp(component = 42)]
fn g() {}

#[instrument_dwcp(component = "")]
fn h() {}

fn main() {}
