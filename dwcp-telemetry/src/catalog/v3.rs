//! DWCP v3 (seeds 002 and 003): the components AMST, HDE, PBA, ACP, ASS and ITP, migrations,
//! throughput, rollout and the inputs of the SLA recording rules.
//!
//! Where seeds 002/003 describe a quantity without naming it (seed 003's `migrationLatency`,
//! `throughput`, `componentHealth`, `resourceUtilization`, `rolloutProgress`), the catalog
//! names it (seed `Catalog` in the tables). The anomaly metrics
//! (`dwcp_anomaly_detections_total{metric, severity}`, `dwcp_anomaly_zscore{metric}`) are
//! registered by [`crate::anomaly`] and listed in [`ANOMALY_METRICS`].

use super::{catalog, MetricDef, Seed, Text};
use crate::{LabelSet, LabelValue, MetricKind};

/// The six v3 components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, LabelValue)]
#[label(crate = crate)]
pub enum V3Component {
    /// `amst`: adaptive multi-stream transport.
    Amst,
    /// `hde`: hierarchical delta encoding.
    Hde,
    /// `pba`: predictive bandwidth allocation.
    Pba,
    /// `acp`: adaptive consensus protocol.
    Acp,
    /// `ass`: adaptive state synchronization.
    Ass,
    /// `itp`: intelligent task placement.
    Itp,
}

impl V3Component {
    /// All six, in the seeds' order.
    pub const ALL: [V3Component; 6] = [
        V3Component::Amst,
        V3Component::Hde,
        V3Component::Pba,
        V3Component::Acp,
        V3Component::Ass,
        V3Component::Itp,
    ];
}

/// `{component}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Component {
    /// The component.
    pub component: V3Component,
}

/// `{component, direction}` of `dwcp_v3_bytes_transferred_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Transfer {
    /// The component.
    pub component: V3Component,
    /// `tx` or `rx`.
    pub direction: Text,
}

/// `{component, direction, transport}` of `dwcp_v3_throughput_bytes_per_second`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Throughput {
    /// The component.
    pub component: V3Component,
    /// `tx` or `rx`.
    pub direction: Text,
    /// `rdma`, `tcp`, …
    pub transport: Text,
}

/// Network mode of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, LabelValue)]
#[label(crate = crate)]
pub enum Mode {
    /// `datacenter` (RDMA).
    Datacenter,
    /// `internet` (TCP with compression).
    Internet,
    /// `hybrid`.
    Hybrid,
}

/// `{source, destination, vm_size, mode}` of `dwcp_v3_migration_latency_seconds` (seed 003's
/// `RecordMigrationLatency(duration, source, dest, size, mode)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Migration {
    /// Source host or region.
    pub source: Text,
    /// Destination host or region.
    pub destination: Text,
    /// A size class (`4GB`, …): keep it to a few values.
    pub vm_size: Text,
    /// The network mode.
    pub mode: Mode,
}

/// Outcome of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, LabelValue)]
#[label(crate = crate)]
pub enum Outcome {
    /// `success`.
    Success,
    /// `failure`.
    Failure,
}

/// `{mode, status}` of `dwcp_v3_migrations_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct MigrationOutcome {
    /// The network mode.
    pub mode: Mode,
    /// Success or failure.
    pub status: Outcome,
}

/// `{node}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Node {
    /// The node.
    pub node: Text,
}

/// `{resource}` of `dwcp_v3_resource_utilization`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Resource {
    /// `cpu`, `memory`, `network`, `disk`.
    pub resource: Text,
}

/// `{stage, region}` of `dwcp_v3_rollout_progress_ratio`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Rollout {
    /// The rollout stage (`canary`, `10pct`, `50pct`, `100pct`).
    pub stage: Text,
    /// The region.
    pub region: Text,
}

/// Buckets of component latency: dense around the SLA's 100 ms P99 and the seeds' 80 ms,
/// 300 ms and 500 ms thresholds.
pub const COMPONENT_LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.08, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0,
];

/// Buckets of VM migration latency (0.5 s to 10 min).
pub const MIGRATION_BUCKETS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

catalog! {
    system: "v3", "DWCP v3 (components, migrations, rollout, SLA inputs)";
    /// DWCP v3's families.
    pub struct V3 {
        component_operations_total: counter<Component> = "dwcp_v3_component_operations_total" {
            help: "DWCP v3 component operations",
            unit: "operations",
            seed: V3Operations,
        },
        component_errors_total: counter<Component> = "dwcp_v3_component_errors_total" {
            help: "DWCP v3 component errors",
            unit: "errors",
            seed: V3Operations,
            note: "Also stands for seed 003's `errorCounter` (its error type and severity labels are not kept: the seeds' queries group errors by component only).",
        },
        component_latency_seconds: histogram<Component> = "dwcp_v3_component_latency_seconds" {
            help: "DWCP v3 component latency",
            unit: "seconds",
            seed: V3Operations,
            buckets: COMPONENT_LATENCY_BUCKETS,
        },
        bytes_transferred_total: counter<Transfer> = "dwcp_v3_bytes_transferred_total" {
            help: "Bytes transferred by DWCP v3",
            unit: "bytes",
            seed: V3Operations,
        },
        acp_byzantine_detections_total: counter<Node> = "dwcp_v3_acp_byzantine_detections_total" {
            help: "Byzantine nodes detected by ACP",
            unit: "detections",
            seed: V3Operations,
            note: "The seed gives no labels; `node` names the offender (seed 002's runbook isolates it).",
        },
        active_streams: gauge<()> = "dwcp_v3_active_streams" {
            help: "Active AMST streams",
            unit: "streams",
            seed: V3Operations,
        },
        stream_limit: gauge<()> = "dwcp_v3_stream_limit" {
            help: "Most AMST streams allowed",
            unit: "streams",
            seed: Catalog,
            note: "Needed by seed 003's \"AMST stream saturation\" alert, which the seed names but does not define.",
        },
        prediction_accuracy: gauge<()> = "dwcp_v3_prediction_accuracy" {
            help: "PBA bandwidth prediction accuracy (0..1)",
            unit: "ratio 0..1",
            seed: V3Operations,
        },
        hde_compression_ratio: gauge<()> = "dwcp_v3_hde_compression_ratio" {
            help: "HDE compression ratio (uncompressed / compressed)",
            unit: "ratio (x:1)",
            seed: Catalog,
            note: "Seed 003 tracks the HDE compression ratio (alert \"HDE compression ratio low\") without naming it.",
        },
        migration_latency_seconds: histogram<Migration> = "dwcp_v3_migration_latency_seconds" {
            help: "VM migration duration in seconds",
            unit: "seconds",
            seed: Catalog,
            buckets: MIGRATION_BUCKETS,
            note: "Seed 003's `migrationLatency` HistogramVec, unnamed there; its recording rules are `dwcp_v3:migration_latency_p50|p95|p99:5m`.",
        },
        migrations_total: counter<MigrationOutcome> = "dwcp_v3_migrations_total" {
            help: "VM migrations finished, by mode and outcome",
            unit: "migrations",
            seed: Catalog,
            note: "Seed 002 defines availability as successful / total migrations without naming the counter; `sla:availability:5m` is computed from it.",
        },
        throughput_bytes_per_second: gauge<Throughput> = "dwcp_v3_throughput_bytes_per_second" {
            help: "Current throughput in bytes per second",
            unit: "bytes/s",
            seed: Catalog,
            note: "Seed 003's `throughput` GaugeVec (`RecordThroughput(bytes/s, component, direction, transport)`), unnamed there.",
        },
        component_health: gauge<Component> = "dwcp_v3_component_health" {
            help: "Component health (1 up, 0 down)",
            unit: "0 or 1",
            seed: Catalog,
            note: "Seed 003's `componentHealth` (alert DWCPv3ComponentDown: health = 0), unnamed there.",
        },
        resource_utilization: gauge<Resource> = "dwcp_v3_resource_utilization" {
            help: "Resource utilization (0..1)",
            unit: "ratio 0..1",
            seed: Catalog,
            note: "Seed 003's `resourceUtilization` (alert \"High CPU usage (>80%)\"), unnamed there.",
        },
        rollout_progress_ratio: gauge<Rollout> = "dwcp_v3_rollout_progress_ratio" {
            help: "Fraction of nodes running v3 (0..1)",
            unit: "ratio 0..1",
            seed: Catalog,
            note: "Seed 003's `rolloutProgress` (10% -> 50% -> 100%), unnamed there; a ratio, so named `_ratio`.",
        },
    }
}

/// The anomaly families (seed 003's `anomalyDetections`), registered by
/// [`crate::anomaly::RegistryObserver`], not by [`register`].
pub const ANOMALY_METRICS: &[MetricDef] = &[
    MetricDef {
        name: crate::anomaly::DETECTIONS_METRIC,
        kind: MetricKind::Counter,
        labels: &["metric", "severity"],
        unit: "detections",
        help: "Anomalies detected, by watched signal and severity",
        buckets: None,
        seed: Seed::V3Phase6,
        note: "Registered by the anomaly module (docs/ANOMALY.md); named there.",
    },
    MetricDef {
        name: crate::anomaly::ZSCORE_METRIC,
        kind: MetricKind::Gauge,
        labels: &["metric"],
        unit: "standard deviations",
        help: "Latest z-score of each watched signal",
        buckets: None,
        seed: Seed::V3Phase6,
        note: "Registered by the anomaly module; named there.",
    },
];
