use dwcp_telemetry::instrument_dwcp;

#[instrument_dwcp(component = "amst")]
struct NotAFunction;

trait Store {
    #[instrument_dwcp(component = "amst")]
    fn no_body(&self);
}

fn main() {}
