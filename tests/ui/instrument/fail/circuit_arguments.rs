use dwcp_telemetry::instrument_dwcp;
use dwcp_telemetry::resilience::NotPermitted;

#[derive(Debug)]
struct DbError;

impl From<NotPermitted> for DbError {
    fn from(_: NotPermitted) -> Self {
        DbError
    }
}

// Not a `Result`: a rejected call would have nothing to return.
#[instrument_dwcp(component = "amst", circuit = "payments")]
fn a() -> u32 {
    1
}

#[instrument_dwcp(component = "amst", circuit = "payments")]
async fn b() {}

#[instrument_dwcp(component = "amst", circuit = payments)]
fn c() -> Result<u32, DbError> {
    Ok(1)
}

#[instrument_dwcp(component = "amst", circuit = "")]
fn d() -> Result<u32, DbError> {
    Ok(1)
}

#[instrument_dwcp(component = "amst", circuit = "a", circuit = "b")]
fn e() -> Result<u32, DbError> {
    Ok(1)
}

#[instrument_dwcp(component = "amst", circuit)]
fn f() -> Result<u32, DbError> {
    Ok(1)
}

#[derive(Debug)]
struct Plain;

// The error type cannot hold a rejection.
#[instrument_dwcp(component = "amst", circuit = "payments")]
fn g() -> Result<u32, Plain> {
    Ok(1)
}

fn main() {}
