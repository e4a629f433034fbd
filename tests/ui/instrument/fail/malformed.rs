use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component)]
fn f() {}

#[instrument_dwcp(component = "amst", ok_if = |e| true)]
fn g() -> Result<(), ()> { Ok(()) }

#[instrument_dwcp(component = "amst", ok_if = accept)]
fn h() -> u8 { 1 }

#[instrument_dwcp(component = "amst" operation = "x")]
fn i() {}

#[instrument_dwcp(component = "amst")]
const fn j() {}

fn accept(_: &()) -> bool { true }

fn main() {}
