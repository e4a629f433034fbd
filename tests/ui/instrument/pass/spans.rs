//! The span arguments and the shapes they must work on: `#[async_trait]` (on the impl and
//! on the trait, `Send` and `?Send`), trait impls, generic functions, `impl Future` and
//! `Result` returns.
use std::future::Future;

use dwcp_telemetry::instrument_dwcp;

#[derive(Debug)]
pub struct Refused;

#[instrument_dwcp(
    component = "amst",
    skip(password),
    fields(user.id = id, peer = %addr, raw = ?addr, r#type = "x"),
    level = "debug",
    sample = 0.25
)]
fn login(id: u64, password: &str, addr: std::net::Ipv4Addr) -> Result<(), Refused> {
    let _ = password;
    Ok(())
}

#[instrument_dwcp(component = "amst", skip_all, level = WARN, sample = critical)]
fn secret(token: String) -> usize {
    token.len()
}

#[instrument_dwcp(component = "amst", level = tracing::Level::TRACE, sample = background)]
fn traced() {}

#[instrument_dwcp(component = "amst", sample = 1, level = "error")]
fn one() {}

#[instrument_dwcp(component = "amst", sample = standard)]
fn generic<T: std::fmt::Display + Send, U>(t: T, u: U) -> impl Future<Output = Result<String, Refused>> {
    let _ = u;
    async move { Ok(t.to_string()) }
}

#[async_trait::async_trait]
pub trait Store {
    async fn put(&self, key: u32, value: Vec<u8>) -> Result<(), Refused>;

    #[instrument_dwcp(component = "store", fields(key = key))]
    async fn get(&self, key: u32) -> Option<Vec<u8>> {
        let _ = key;
        None
    }
}

pub struct Mem;

#[async_trait::async_trait]
impl Store for Mem {
    #[instrument_dwcp(component = "store", skip(value), fields(len = value.len()))]
    async fn put(&self, key: u32, value: Vec<u8>) -> Result<(), Refused> {
        let _ = (key, value);
        self.get(key).await.map(|_| ()).ok_or(Refused)
    }
}

#[async_trait::async_trait(?Send)]
pub trait Local {
    async fn run(&self) -> u8;
}

#[async_trait::async_trait(?Send)]
impl Local for Mem {
    #[instrument_dwcp(component = "store")]
    async fn run(&self) -> u8 {
        1
    }
}

pub trait Sync2 {
    fn call(&self, x: u8) -> u8;
}

impl Sync2 for Mem {
    #[instrument_dwcp(component = "store", fields(self_ptr = ?(self as *const Self)))]
    fn call(&self, x: u8) -> u8 {
        x
    }
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    let _ = login(1, "pw", std::net::Ipv4Addr::LOCALHOST);
    let _ = secret(String::new());
    traced();
    one();
    let f = generic(1u8, ());
    assert_send(&f);
    let p = Mem.put(1, vec![]);
    assert_send(&p);
    drop(p);
    let _ = Mem.call(1);
}
