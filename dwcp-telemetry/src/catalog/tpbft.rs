//! T-PBFT consensus (seed 000 "T-PBFT Consensus Metrics", and seed 001's names).

use super::{catalog, Text};
use crate::LabelSet;

/// `{node}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Node {
    /// The node.
    pub node: Text,
}

/// Which way a trust score moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, crate::LabelValue)]
#[label(crate = crate)]
pub enum Direction {
    /// `up`.
    Up,
    /// `down`.
    Down,
}

/// `{node, direction}` of `tpbft_trust_score_changes`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct TrustChange {
    /// The node.
    pub node: Text,
    /// Up or down.
    pub direction: Direction,
}

/// Buckets of T-PBFT consensus latency (seed 001: under 60 ms).
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0];

catalog! {
    system: "tpbft", "T-PBFT consensus";
    /// T-PBFT's families.
    pub struct Tpbft {
        node_trust_score: gauge<Node> = "tpbft_node_trust_score" {
            help: "Trust score of each node (0..1)",
            unit: "score 0..1",
            seed: MonitoringAlerting,
        },
        trust_score_changes: counter<TrustChange> = "tpbft_trust_score_changes" {
            help: "Trust score changes, by node and direction",
            unit: "changes",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `tpbft_trust_score_changes_total`.",
        },
        trust_anomalies_detected: counter<Node> = "tpbft_trust_anomalies_detected" {
            help: "Trust anomalies detected, by node",
            unit: "anomalies",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `tpbft_trust_anomalies_detected_total`.",
        },
        message_reduction_percentage: gauge<()> = "tpbft_message_reduction_percentage" {
            help: "Messages saved against PBFT, in percent (0..100)",
            unit: "percent 0..100",
            seed: MonitoringAlerting,
        },
        consensus_rounds_per_second: gauge<()> = "tpbft_consensus_rounds_per_second" {
            help: "Consensus rounds per second",
            unit: "rounds/s",
            seed: MonitoringAlerting,
        },
        performance_improvement: gauge<()> = "tpbft_performance_improvement" {
            help: "Throughput improvement over PBFT as a ratio (0.3 = 30 % faster)",
            unit: "ratio",
            seed: MonitoringAlerting,
        },
        messages_saved_total: counter<()> = "tpbft_messages_saved_total" {
            help: "Messages saved against PBFT",
            unit: "messages",
            seed: MonitoringAlerting,
        },
        bandwidth_saved_bytes: counter<()> = "tpbft_bandwidth_saved_bytes" {
            help: "Bytes saved against PBFT",
            unit: "bytes",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `tpbft_bandwidth_saved_bytes_total`.",
        },
        consensus_latency_seconds: histogram<()> = "tpbft_consensus_latency_seconds" {
            help: "Consensus latency in seconds",
            unit: "seconds",
            seed: SetupGuide,
            buckets: LATENCY_BUCKETS,
            note: "Seed 001's dashboard queried the histogram's bare name; the generated dashboard uses `histogram_quantile`.",
        },
        transactions_committed_total: counter<()> = "tpbft_transactions_committed_total" {
            help: "Transactions committed",
            unit: "transactions",
            seed: SetupGuide,
        },
    }
}
