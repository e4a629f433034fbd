//! Per-name configuration: bucket, unit and other settings chosen by exact name, prefix or
//! suffix on the registry builder, instead of rules hard-wired to metric names.

use super::descriptor::Unit;
use crate::error::{ConfigError, RegistrationError};
use crate::histogram::Layout;

/// Which metric names a [`MetricPolicy`] applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameMatch {
    /// Exactly this name.
    Exact(String),
    /// Names starting with this.
    Prefix(String),
    /// Names ending with this.
    Suffix(String),
}

impl NameMatch {
    /// Exactly `name`.
    pub fn exact(name: impl Into<String>) -> Self {
        NameMatch::Exact(name.into())
    }

    /// Names starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        NameMatch::Prefix(prefix.into())
    }

    /// Names ending with `suffix`.
    pub fn suffix(suffix: impl Into<String>) -> Self {
        NameMatch::Suffix(suffix.into())
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Exact(n) => name == n,
            NameMatch::Prefix(p) => name.starts_with(p.as_str()),
            NameMatch::Suffix(s) => name.ends_with(s.as_str()),
        }
    }

    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, NameMatch::Exact(_))
    }
}

/// Settings for the metrics a [`NameMatch`] selects; each applies only where the metric's
/// own builder leaves it unset. Installed with `RegistryBuilder::policy`.
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct MetricPolicy {
    pub(crate) buckets: Option<Vec<f64>>,
    pub(crate) unit: Option<Unit>,
    pub(crate) sigfig: Option<u8>,
    pub(crate) max_value: Option<u64>,
    pub(crate) exact_sum: Option<bool>,
    pub(crate) cardinality_limit: Option<usize>,
    pub(crate) error_ratio_of: Option<Vec<String>>,
    pub(crate) native_histogram: Option<bool>,
}

impl MetricPolicy {
    /// A policy that sets nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Export-time `le` bounds for histograms, in the exported unit.
    pub fn buckets(mut self, bounds: impl Into<Vec<f64>>) -> Self {
        self.buckets = Some(bounds.into());
        self
    }

    /// The unit (for histograms, also how values are stored).
    pub fn unit(mut self, unit: Unit) -> Self {
        self.unit = Some(unit);
        self
    }

    /// Histogram precision, 1 to 5 significant digits.
    pub fn significant_digits(mut self, sigfig: u8) -> Self {
        self.sigfig = Some(sigfig);
        self
    }

    /// Highest trackable stored histogram value.
    pub fn max_value(mut self, max_value: u64) -> Self {
        self.max_value = Some(max_value);
        self
    }

    /// Keep exact sums in histograms.
    pub fn exact_sum(mut self, on: bool) -> Self {
        self.exact_sum = Some(on);
        self
    }

    /// Cap on label sets per metric.
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = Some(limit);
        self
    }

    /// For error counters: the request counters the `/metrics/summary` error ratio divides
    /// them by (instead of the `P_errors_total` ÷ `P_requests_total` naming convention).
    pub fn error_ratio_of<I, S>(mut self, request_counters: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.error_ratio_of = Some(request_counters.into_iter().map(Into::into).collect());
        self
    }

    /// Whether histograms are also exported as exponential buckets: Prometheus native
    /// histograms in the protobuf exposition (default on; `false` leaves only the classic
    /// `le` buckets there). OTLP's histogram form is chosen by the OTLP exporter.
    pub fn native_histogram(mut self, on: bool) -> Self {
        self.native_histogram = Some(on);
        self
    }

    /// Each setting of `self`, else `other`'s.
    pub(crate) fn or(&self, other: Option<&MetricPolicy>) -> MetricPolicy {
        let Some(o) = other else {
            return self.clone();
        };
        MetricPolicy {
            buckets: self.buckets.clone().or_else(|| o.buckets.clone()),
            unit: self.unit.or(o.unit),
            sigfig: self.sigfig.or(o.sigfig),
            max_value: self.max_value.or(o.max_value),
            exact_sum: self.exact_sum.or(o.exact_sum),
            cardinality_limit: self.cardinality_limit.or(o.cardinality_limit),
            error_ratio_of: self
                .error_ratio_of
                .clone()
                .or_else(|| o.error_ratio_of.clone()),
            native_histogram: self.native_histogram.or(o.native_histogram),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RegistrationError> {
        if let Some(b) = &self.buckets {
            check_buckets(b)?;
        }
        if let Some(s) = self.sigfig {
            Layout::new(s, self.max_value.unwrap_or(u64::MAX))?;
        }
        if self.cardinality_limit == Some(0) {
            return Err(ConfigError::CardinalityLimit.into());
        }
        Ok(())
    }
}

/// Buckets must be non-empty, finite, non-negative and strictly ascending.
pub(crate) fn check_buckets(b: &[f64]) -> Result<(), ConfigError> {
    if b.is_empty()
        || b.iter().any(|x| !x.is_finite() || *x < 0.0)
        || b.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(ConfigError::Buckets);
    }
    Ok(())
}
