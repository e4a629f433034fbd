//! Support code shared by the workspace's integration tests, examples and benches.
#![allow(missing_docs)]

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
