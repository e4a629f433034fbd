//! Bullshark consensus (seed 000 "Bullshark Consensus Metrics", and seed 001's names).

use super::{catalog, Text};
use crate::LabelSet;

/// `{type}` of `bullshark_dag_validation_errors`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct ErrorType {
    /// The validation error (`missing_parent`, `bad_signature`, …).
    pub r#type: Text,
}

/// `{reason}` of `bullshark_transactions_rejected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Reason {
    /// Why (`mempool_full`, `invalid`, …).
    pub reason: Text,
}

/// `{percentile}` of `bullshark_confirmation_latency_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Percentile {
    /// `p50`, `p95`, `p99`.
    pub percentile: Text,
}

/// Buckets of confirmation and batch durations (10 ms to 10 s).
pub const CONFIRMATION_BUCKETS: [f64; 10] =
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

catalog! {
    system: "bullshark", "Bullshark consensus";
    /// Bullshark's families.
    pub struct Bullshark {
        transactions_per_second: gauge<()> = "bullshark_transactions_per_second" {
            help: "Transactions per second, as measured by the node",
            unit: "transactions/s",
            seed: MonitoringAlerting,
        },
        transactions_processed_total: counter<()> = "bullshark_transactions_processed_total" {
            help: "Transactions processed",
            unit: "transactions",
            seed: MonitoringAlerting,
        },
        transaction_confirmation_duration_seconds: histogram<()> = "bullshark_transaction_confirmation_duration_seconds" {
            help: "Time from submission to confirmation in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            buckets: CONFIRMATION_BUCKETS,
        },
        dag_depth: gauge<()> = "bullshark_dag_depth" {
            help: "Current DAG depth (rounds)",
            unit: "rounds",
            seed: MonitoringAlerting,
        },
        dag_width: gauge<()> = "bullshark_dag_width" {
            help: "Current DAG width (vertices per round)",
            unit: "vertices",
            seed: MonitoringAlerting,
        },
        dag_vertices_total: counter<()> = "bullshark_dag_vertices_total" {
            help: "DAG vertices created",
            unit: "vertices",
            seed: MonitoringAlerting,
        },
        dag_validation_errors: counter<ErrorType> = "bullshark_dag_validation_errors" {
            help: "DAG validation errors, by type",
            unit: "errors",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `bullshark_dag_validation_errors_total`.",
        },
        mempool_size: gauge<()> = "bullshark_mempool_size" {
            help: "Transactions waiting in the mempool",
            unit: "transactions",
            seed: MonitoringAlerting,
        },
        mempool_usage_percentage: gauge<()> = "bullshark_mempool_usage_percentage" {
            help: "Mempool fill level as a percentage of its capacity (0..100)",
            unit: "percent 0..100",
            seed: MonitoringAlerting,
            note: "Holds a percentage 0..100 as its name says; the seed's BullsharkMempoolFull compared it with 0.95 (fixed: `> 95`).",
        },
        transactions_rejected: counter<Reason> = "bullshark_transactions_rejected" {
            help: "Transactions rejected, by reason",
            unit: "transactions",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `bullshark_transactions_rejected_total`.",
        },
        batch_processing_duration_seconds: histogram<()> = "bullshark_batch_processing_duration_seconds" {
            help: "Batch processing time in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            buckets: CONFIRMATION_BUCKETS,
        },
        confirmation_latency_seconds: gauge<Percentile> = "bullshark_confirmation_latency_seconds" {
            help: "Confirmation latency percentiles computed by the node, in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            note: "Pre-computed percentiles in a `percentile` label (a summary in gauge form) cannot be aggregated across nodes; prefer `histogram_quantile` over `bullshark_transaction_confirmation_duration_seconds`. Kept as the seed defines it.",
        },
        round_duration_seconds: histogram<()> = "bullshark_round_duration_seconds" {
            help: "DAG round duration in seconds",
            unit: "seconds",
            seed: SetupGuide,
            buckets: CONFIRMATION_BUCKETS,
            note: "Seed 001's dashboard queried the histogram's bare name; the generated dashboard uses `histogram_quantile`.",
        },
        throughput_tx_per_second: gauge<()> = "bullshark_throughput_tx_per_second" {
            help: "Throughput in transactions per second (seed 001's name)",
            unit: "transactions/s",
            seed: SetupGuide,
            note: "The same quantity as seed 000's `bullshark_transactions_per_second`; both are kept because each seed's dashboard queries its own.",
        },
    }
}
