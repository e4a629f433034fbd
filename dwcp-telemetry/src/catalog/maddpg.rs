//! The MADDPG resource allocator (seed 000 "MADDPG Resource Allocator Metrics", and seed
//! 001's names).

use super::{catalog, Text};
use crate::LabelSet;

/// `{service}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Service {
    /// The service allocated to.
    pub service: Text,
}

/// `{service, resource_type}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct ServiceResource {
    /// The service.
    pub service: Text,
    /// `cpu`, `memory`, `network`, …
    pub resource_type: Text,
}

/// `{type}` of `maddpg_constraint_violations`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Violation {
    /// The constraint violated.
    pub r#type: Text,
}

catalog! {
    system: "maddpg", "MADDPG resource allocator";
    /// MADDPG's families.
    pub struct Maddpg {
        resource_allocation: gauge<ServiceResource> = "maddpg_resource_allocation" {
            help: "Resources allocated to each service, in the resource's own unit",
            unit: "resource units",
            seed: MonitoringAlerting,
        },
        allocation_efficiency: gauge<()> = "maddpg_allocation_efficiency" {
            help: "Allocation efficiency (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
        },
        allocation_changes_total: counter<Service> = "maddpg_allocation_changes_total" {
            help: "Allocation changes, by service",
            unit: "changes",
            seed: MonitoringAlerting,
        },
        reward_score: gauge<()> = "maddpg_reward_score" {
            help: "Latest reward of the agents",
            unit: "score",
            seed: MonitoringAlerting,
        },
        allocation_quality: gauge<()> = "maddpg_allocation_quality" {
            help: "Allocation quality score",
            unit: "score",
            seed: MonitoringAlerting,
        },
        baseline_allocation_quality: gauge<()> = "baseline_allocation_quality" {
            help: "Allocation quality of the baseline allocator, for comparison",
            unit: "score",
            seed: MonitoringAlerting,
            note: "Only in seed 000's resource-allocation dashboard; no `maddpg_` prefix (it measures the baseline), kept.",
        },
        resource_utilization: gauge<ServiceResource> = "maddpg_resource_utilization" {
            help: "Utilization of allocated resources (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
        },
        model_training_episodes: counter<()> = "maddpg_model_training_episodes" {
            help: "Training episodes run",
            unit: "episodes",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `maddpg_model_training_episodes_total`.",
        },
        model_convergence: gauge<()> = "maddpg_model_convergence" {
            help: "Model convergence (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
        },
        exploration_rate: gauge<()> = "maddpg_exploration_rate" {
            help: "Exploration rate epsilon (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
            note: "`_rate` is epsilon (a probability), not a per-second rate; kept.",
        },
        constraint_violations: counter<Violation> = "maddpg_constraint_violations" {
            help: "Constraint violations, by type",
            unit: "violations",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `maddpg_constraint_violations_total`.",
        },
        resource_starvation_events: counter<Service> = "maddpg_resource_starvation_events" {
            help: "Resource starvation events, by service",
            unit: "events",
            seed: MonitoringAlerting,
            note: "A counter without `_total`: exported as `maddpg_resource_starvation_events_total`.",
        },
        resource_optimization_percentage: gauge<()> = "maddpg_resource_optimization_percentage" {
            help: "Resources saved against the baseline, in percent (0..100)",
            unit: "percent 0..100",
            seed: SetupGuide,
        },
        successful_allocations_total: counter<()> = "maddpg_successful_allocations_total" {
            help: "Allocations that succeeded",
            unit: "allocations",
            seed: SetupGuide,
        },
        total_allocations_total: counter<()> = "maddpg_total_allocations_total" {
            help: "Allocations attempted",
            unit: "allocations",
            seed: SetupGuide,
            note: "`_total_total` is seed 001's name (its ML dashboard divides by it), kept.",
        },
    }
}
