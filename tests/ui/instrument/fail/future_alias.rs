use std::future::Future;
use std::pin::Pin;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[dwcp_telemetry::instrument_dwcp(component = "amst")]
fn fetch(name: &str) -> BoxFuture<'_, usize> {
    Box::pin(async move { name.len() })
}

fn main() {}
