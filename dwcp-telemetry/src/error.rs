//! Errors. Every message says what was wrong and what to do about it.

/// A histogram or registry configuration that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Significant digits outside 1..=5.
    #[error("histogram precision must be 1 to 5 significant digits, got {0}")]
    Precision(u8),
    /// The highest trackable value is too small for the precision.
    #[error("highest trackable value {max_value} is too small; use at least {minimum}")]
    MaxValue {
        /// What was asked for.
        max_value: u64,
        /// The smallest value accepted at this precision.
        minimum: u64,
    },
    /// A cardinality limit of zero would leave no room for any series.
    #[error("cardinality limit must be at least 1")]
    CardinalityLimit,
    /// Export buckets must be finite, non-empty and strictly ascending.
    #[error("histogram buckets must be a non-empty, strictly ascending list of finite numbers")]
    Buckets,
    /// `hdrhistogram` refused the conversion (should not happen for a valid layout).
    #[error("hdrhistogram conversion failed: {0}")]
    Hdr(String),
    /// Two snapshots with different layouts cannot be merged slot by slot.
    #[error("cannot merge snapshots with different layouts ({left} vs {right} significant digits/ranges); convert to hdrhistogram and add instead")]
    LayoutMismatch {
        /// Significant digits of the left side.
        left: u8,
        /// Significant digits of the right side.
        right: u8,
    },
}

/// Why a metric could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The metric name is not `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error(
        "invalid metric name {0:?}: use [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. \"dwcp_requests_total\""
    )]
    MetricName(String),
    /// A label name is not `[a-zA-Z_][a-zA-Z0-9_]*`, starts with `__`, or is reserved.
    #[error("invalid label name {name:?} on metric {metric:?}: {reason}")]
    LabelName {
        /// The metric being registered.
        metric: String,
        /// The offending label name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same label name appears twice.
    #[error("label {name:?} appears twice on metric {metric:?}")]
    DuplicateLabel {
        /// The metric being registered.
        metric: String,
        /// The repeated label name.
        name: String,
    },
    /// The name is taken by a metric of another kind or with other label names.
    #[error("metric {name:?} is already registered as a {existing} with labels {existing_labels:?}; register it once and share the family")]
    Conflict {
        /// The metric name.
        name: String,
        /// Kind and labels of the existing registration.
        existing: &'static str,
        /// Label names of the existing registration.
        existing_labels: Vec<String>,
    },
    /// A histogram option was invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a label set could not be bound to a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The number of label values differs from the family's label names.
    #[error("metric {metric:?} takes {expected} label values, got {got}")]
    Arity {
        /// The metric.
        metric: String,
        /// How many label names the family declares.
        expected: usize,
        /// How many values were given.
        got: usize,
    },
    /// The family already holds its cardinality limit of distinct label sets.
    #[error("metric {metric:?} reached its cardinality limit of {limit} label sets; further sets record into the overflow series")]
    CardinalityExceeded {
        /// The metric.
        metric: String,
        /// The configured limit.
        limit: usize,
    },
}
