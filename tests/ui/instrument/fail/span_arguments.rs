use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst", skip(passwrd))]
fn a(password: &str) {}

#[instrument_dwcp(component = "amst", skip = password)]
fn b(password: &str) {}

#[instrument_dwcp(component = "amst", skip_all = true)]
fn c() {}

#[instrument_dwcp(component = "amst", skip(x), skip_all)]
fn d(x: u8) {}

#[instrument_dwcp(component = "amst", fields(vm))]
fn e() {}

#[instrument_dwcp(component = "amst", fields(vm = 1, dwcp.size = 2, vm = 3))]
fn f() {}

#[instrument_dwcp(component = "amst", level = "loud")]
fn g() {}

#[instrument_dwcp(component = "amst", level = 3)]
fn h() {}

#[instrument_dwcp(component = "amst", sample = 1.5)]
fn i() {}

#[instrument_dwcp(component = "amst", sample = sometimes)]
fn j() {}

#[instrument_dwcp(component = "amst", sample = "0.1")]
fn k() {}

#[instrument_dwcp(component = "amst", sample = 0.1, sample = 0.2)]
fn l() {}

#[instrument_dwcp(component = "amst", fields)]
fn n() {}

#[instrument_dwcp(component = "amst", fields(x = ))]
fn o() {}

fn main() {}
