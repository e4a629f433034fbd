//! Errors. Every message says what was wrong and what to do about it.

/// A histogram or registry configuration that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// Export buckets must be finite, non-negative, non-empty and strictly ascending.
    #[error("histogram buckets must be a non-empty, strictly ascending list of finite, non-negative numbers (stored values are never negative)")]
    Buckets,
    /// A fully populated series of this layout would need more memory than the registry's
    /// per-series cap.
    #[error("a histogram series at {sigfig} significant digits up to {max_value} needs up to {asked} bytes, over the cap of {limit}; lower the precision or the maximum, or raise RegistryBuilder::max_series_bytes")]
    SeriesMemory {
        /// Significant digits asked for.
        sigfig: u8,
        /// Highest trackable value asked for.
        max_value: u64,
        /// Bytes a fully populated series would take.
        asked: usize,
        /// The cap.
        limit: usize,
    },
    /// A registry must be allowed at least one metric family.
    #[error("max_families must be at least 1")]
    MaxFamilies,
    /// The longest label value must leave room for a shortened value and its hash suffix.
    #[error("max_label_value_len must be at least 32 bytes, got {0}")]
    LabelValueLen(usize),
    /// `hdrhistogram` refused the conversion (should not happen for a valid layout).
    #[error("hdrhistogram conversion failed: {0}")]
    Hdr(String),
    /// An exponential-histogram export configuration out of range.
    #[error("exponential histograms need a maximum scale from -4 to 8 and at least 2 buckets, got scale {max_scale} and {max_buckets} buckets")]
    Exponential {
        /// The maximum scale asked for.
        max_scale: i32,
        /// The bucket limit asked for.
        max_buckets: u32,
    },
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
#[non_exhaustive]
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
    /// The name is registered already with another definition.
    #[error("metric {name:?} is already registered with another {differs} (existing: a {existing_kind}); register it once and share the family")]
    Conflict {
        /// The metric name.
        name: String,
        /// What differs: `kind`, `label names`, `help`, `unit`, `buckets`, …
        differs: &'static str,
        /// The kind of the existing registration.
        existing_kind: &'static str,
    },
    /// A metric label repeats one of the registry's constant labels.
    #[error("label {label:?} of metric {metric:?} is already a constant label of the registry (RegistryBuilder::const_label); a series would carry it twice")]
    ConstLabelClash {
        /// The metric being registered.
        metric: String,
        /// The label name both use.
        label: String,
    },
    /// The name is in the prefix reserved for the library's self-metrics.
    #[error("metric name {0:?} uses the prefix `dwcp_telemetry_`, reserved for the library's own metrics; choose another name")]
    ReservedName(String),
    /// The family would write a sample or metadata name another family already writes.
    #[error("metric {name:?} would export {exported:?}, which metric {existing:?} already exports (counters export `<base>_total`, histograms `_bucket`, `_sum`, `_count`); rename one of them")]
    NameCollision {
        /// The metric being registered.
        name: String,
        /// The exposition name both would write.
        exported: String,
        /// The family registered first.
        existing: String,
    },
    /// The registry holds its maximum number of families.
    #[error("the registry holds its maximum of {limit} metric families; raise RegistryBuilder::max_families or reuse families")]
    TooManyFamilies {
        /// The configured cap.
        limit: usize,
    },
    /// A histogram option was invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a label set could not be bound to a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A label name given to `try_with_named` that the family does not declare.
    #[error("metric {metric:?} has no label {label:?}; its labels are {expected:?}")]
    UnknownLabel {
        /// The metric.
        metric: String,
        /// The name given.
        label: String,
        /// The family's label names.
        expected: Vec<String>,
    },
    /// A label of the family given no value (or given two) in `try_with_named`.
    #[error("metric {metric:?} needs exactly one value for label {label:?}")]
    MissingLabel {
        /// The metric.
        metric: String,
        /// The label without exactly one value.
        label: String,
    },
    /// A label value is longer than the registry's maximum label value length.
    #[error("label {label:?} of metric {metric:?} has a {len}-byte value, over the maximum of {max}; with_labels_or_overflow would shorten it (with a hash suffix)")]
    ValueTooLong {
        /// The metric.
        metric: String,
        /// The label.
        label: String,
        /// The value's length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
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
