//! Every supported form compiles without warnings (the test crate denies them).
#![deny(warnings, clippy::all)]

use std::future::Future;
use std::pin::Pin;

use dwcp_telemetry::{instrument_dwcp, Registry};

mod telemetry {
    pub use dwcp_telemetry::*;
}

#[derive(Debug)]
pub struct Oops;

fn expected(_: &Oops) -> bool {
    true
}

fn bad(v: &u8) -> bool {
    *v > 9
}

#[instrument_dwcp(component = "amst")]
pub fn minimal() {}

#[instrument_dwcp(component = "amst", operation = "renamed", crate = telemetry)]
pub fn with_crate_path(x: u8) -> Result<u8, Oops> {
    if x == 0 {
        return Err(Oops);
    }
    Ok(x)
}

#[instrument_dwcp(component = "amst", ok_if = expected, error_if = bad)]
pub fn overrides(x: u8) -> Result<u8, Oops> {
    Ok(x)
}

pub fn local() -> Registry {
    Registry::builder().build().unwrap()
}

#[instrument_dwcp(component = "amst", registry = local())]
pub async fn owned_registry(x: &str) -> Result<&str, Oops> {
    let n: u8 = x.len().try_into().map_err(|_| Oops)?;
    let _ = n;
    Ok(x)
}

#[instrument_dwcp(component = "amst", registry = dwcp_telemetry::global())]
pub fn returns_future() -> impl Future<Output = u8> + Send + 'static {
    async { 1 }
}

/// The error type is fixed only by the declared output.
#[instrument_dwcp(component = "amst")]
pub fn underconstrained() -> impl Future<Output = Result<u8, Oops>> {
    async { Ok(1) }
}

#[derive(Default)]
pub struct S;

/// Never returns: its calls are all `panic`.
#[instrument_dwcp(component = "amst")]
pub fn fatal(msg: &str) -> ! {
    panic!("{msg}")
}

pub trait T {
    fn boxed(&self) -> Pin<Box<dyn Future<Output = Result<(), Oops>> + Send + '_>>;
}

impl T for S {
    #[instrument_dwcp(component = "amst")]
    fn boxed(&self) -> Pin<Box<dyn Future<Output = Result<(), Oops>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

pub trait AsyncStore {
    fn get(&self, k: u8) -> impl Future<Output = Result<u8, Oops>> + Send;
    #[allow(async_fn_in_trait)]
    async fn put(&mut self, k: u8) -> Result<(), Oops>;
}

impl AsyncStore for S {
    #[instrument_dwcp(component = "amst")]
    fn get(&self, k: u8) -> impl Future<Output = Result<u8, Oops>> + Send {
        async move { Ok(k) }
    }

    #[instrument_dwcp(component = "amst")]
    async fn put(&mut self, k: u8) -> Result<(), Oops> {
        let _ = self.get(k).await?;
        Ok(())
    }
}

impl S {
    #[instrument_dwcp(component = "amst")]
    pub fn new() -> Self {
        Self
    }

    #[instrument_dwcp(component = "amst")]
    pub fn consume(mut self, (a, b): (u8, u8)) -> Self {
        let _ = self.iter().count();
        self = Self::new();
        let _ = a + b;
        self
    }

    #[instrument_dwcp(component = "amst")]
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        [1, 2].into_iter()
    }

    #[instrument_dwcp(component = "amst")]
    pub unsafe fn unsafe_method(&self, p: *const u8) -> u8 {
        *p
    }

    #[instrument_dwcp(component = "amst", r#operation = "raw")]
    pub fn r#match<U: Default>(&self) -> U {
        U::default()
    }
}

fn main() {
    if std::env::args().count() > 100 {
        fatal("never");
    }
    minimal();
    let _ = with_crate_path(1);
    let _ = overrides(1);
    let _ = owned_registry("x");
    let _ = returns_future();
    let _ = underconstrained();
    let _ = S.boxed();
    // SAFETY: points at a live byte.
    let _ = unsafe { S.unsafe_method(&1) };
    let _: u8 = S.r#match();
    let _ = S::new().consume((1, 2)).iter().count();
    let mut s = S;
    let _ = s.put(1);
}
