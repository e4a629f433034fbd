//! ProBFT consensus (seed 000 "ProBFT Consensus Metrics", and seed 001's names).

use super::{catalog, Text};
use crate::LabelSet;

/// `{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Reason {
    /// Why (a failure or view-change reason).
    pub reason: Text,
}

/// `{type}` of `probft_byzantine_events_detected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct ByzantineEvent {
    /// The kind of Byzantine behaviour (`equivocation`, `invalid_signature`, …).
    pub r#type: Text,
}

/// `{status}` of `probft_byzantine_nodes_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct NodeStatus {
    /// `suspected`, `confirmed`, `isolated`, …
    pub status: Text,
}

/// `{message_type}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct MessageType {
    /// `prepare`, `commit`, `view_change`, …
    pub message_type: Text,
}

/// `{peer}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Peer {
    /// The peer node.
    pub peer: Text,
}

/// `{node, status}` of `probft_node_health`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct NodeHealth {
    /// The node.
    pub node: Text,
    /// Its status (`healthy`, `degraded`, `down`).
    pub status: Text,
}

/// Buckets of the consensus and finalization durations (seed 001: finalization under 1 s).
pub const CONSENSUS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of messages per round (7 nodes exchange O(n²) messages).
pub const MESSAGE_BUCKETS: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

catalog! {
    system: "probft", "ProBFT consensus";
    /// ProBFT's families.
    pub struct Probft {
        consensus_rounds_total: counter<()> = "probft_consensus_rounds_total" {
            help: "Consensus rounds completed",
            unit: "rounds",
            seed: MonitoringAlerting,
        },
        consensus_duration_seconds: histogram<()> = "probft_consensus_duration_seconds" {
            help: "Consensus round duration in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            buckets: CONSENSUS_BUCKETS,
        },
        consensus_failures_total: counter<Reason> = "probft_consensus_failures_total" {
            help: "Consensus rounds that failed, by reason",
            unit: "failures",
            seed: MonitoringAlerting,
        },
        byzantine_events_detected: counter<ByzantineEvent> = "probft_byzantine_events_detected" {
            help: "Byzantine events detected, by type",
            unit: "events",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported (and queried by the generated rules) as `probft_byzantine_events_detected_total`, as every counter of this crate and every OpenMetrics counter is.",
        },
        byzantine_nodes_total: gauge<NodeStatus> = "probft_byzantine_nodes_total" {
            help: "Nodes currently flagged Byzantine, by status",
            unit: "nodes",
            seed: MonitoringAlerting,
            note: "A gauge (a current count that goes down when a node is cleared) despite `_total`, which conventionally marks counters; the seed's name is kept.",
        },
        signature_verification_failures: counter<()> = "probft_signature_verification_failures" {
            help: "Signature verifications that failed",
            unit: "failures",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `probft_signature_verification_failures_total`.",
        },
        message_count_per_round: histogram<MessageType> = "probft_message_count_per_round" {
            help: "Messages exchanged per consensus round, by message type",
            unit: "messages",
            seed: MonitoringAlerting,
            buckets: MESSAGE_BUCKETS,
        },
        network_latency_seconds: histogram<Peer> = "probft_network_latency_seconds" {
            help: "Network latency to each peer in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
        },
        throughput_transactions_per_second: gauge<()> = "probft_throughput_transactions_per_second" {
            help: "Transactions finalized per second",
            unit: "transactions/s",
            seed: MonitoringAlerting,
        },
        view_changes_total: counter<Reason> = "probft_view_changes_total" {
            help: "View changes, by reason",
            unit: "view changes",
            seed: MonitoringAlerting,
        },
        quorum_availability: gauge<()> = "probft_quorum_availability" {
            help: "Fraction of time a quorum was reachable (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
        },
        node_health: gauge<NodeHealth> = "probft_node_health" {
            help: "Node health (1 for the node's current status, 0 otherwise)",
            unit: "0 or 1",
            seed: MonitoringAlerting,
        },
        quorum_achieved_total: counter<()> = "probft_quorum_achieved_total" {
            help: "Rounds in which a quorum was achieved",
            unit: "rounds",
            seed: SetupGuide,
            note: "Seed 001's QuorumNotAchieved tested the counter `== 0`, true only before the first quorum ever; fixed to `increase(...[5m]) == 0`.",
        },
        finalization_duration_seconds: histogram<()> = "probft_finalization_duration_seconds" {
            help: "Block finalization time in seconds",
            unit: "seconds",
            seed: SetupGuide,
            buckets: CONSENSUS_BUCKETS,
            note: "Seed 001's dashboard queried the histogram's bare name (no such series); the generated dashboard uses `histogram_quantile` over its buckets.",
        },
        blocks_finalized_total: counter<()> = "probft_blocks_finalized_total" {
            help: "Blocks finalized",
            unit: "blocks",
            seed: SetupGuide,
        },
        quorum_achievement_rate: gauge<()> = "probft_quorum_achievement_rate" {
            help: "Fraction of rounds that achieved a quorum (0..1)",
            unit: "ratio 0..1",
            seed: SetupGuide,
            note: "`_rate` is a ratio of rounds, not a per-second rate; kept.",
        },
    }
}
