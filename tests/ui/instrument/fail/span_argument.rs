use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst", skip(password))]
fn f(password: &str) {}

#[instrument_dwcp(component = "amst", level = "debug")]
fn g() {}

#[instrument_dwcp(skip_all, component = "amst")]
fn h() {}

fn main() {}
