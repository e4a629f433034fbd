//! Support code shared by the workspace's integration tests, examples and benches.
#![allow(missing_docs)]

pub mod alloc;
pub mod nab;

/// Latency-like samples from about 10 µs to 10 ms (ns), cycled from a fixed table, as in
/// `../shared/design/PEERS.md`. Deterministic (xorshift with a fixed seed, log-uniform).
pub fn latency_table(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            // log-uniform between 1e4 and 1e7 ns
            (1e4 * 1e3f64.powf(u)) as u64
        })
        .collect()
}

/// A tiny deterministic PRNG (xorshift64*), so tests and benches need no extra crates.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
pub mod bench;
