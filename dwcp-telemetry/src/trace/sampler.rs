//! How an instrumented call is sampled: decided first, before anything is built.
//!
//! A call is sampled or not from, in order:
//!
//! 1. the process's [`Sampler`] ([`set_sampler`]; initially from `OTEL_TRACES_SAMPLER` and
//!    `OTEL_TRACES_SAMPLER_ARG`, else [`Sampler::ParentBasedSiteRatio`]);
//! 2. for a parent-based sampler, the parent's `sampled` flag: the current local span (an
//!    enclosing instrumented call on this thread or in this task) or a remote parent set
//!    with [`with_parent`](super::with_parent);
//! 3. for a root (no parent), or a sampler that ignores parents, the ratio: the sampler's own
//!    (`traceidratio`), or the call site's `sample = ..`, else its component's ratio
//!    ([`set_component_ratio`]; the seeds give `dwcp-manager` 10 % and `probft-consensus`
//!    100 %), else [`DEFAULT_RATIO`] (10 %).
//!
//! The ratio decision is a comparison on the trace id (its low 8 bytes, shifted right once,
//! against `ratio × 2⁶³`), the same rule as OpenTelemetry's `TraceIdRatioBased`: every
//! service sampling a trace id at the same ratio agrees, and a child with the same ratio as
//! its parent makes the same decision.
//!
//! Each call site caches its resolved decision rule in two atomics and re-resolves it only
//! when the configuration changes (a generation counter), so a call reads no map and takes no
//! lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};

/// The ratio for a component without one (the seeds' "standard paths" and production 10 %).
pub const DEFAULT_RATIO: f64 = 0.1;

/// Per-component default ratios from the seeds' Jaeger sampling strategies.
pub const SEED_COMPONENT_RATIOS: [(&str, f64); 2] =
    [("dwcp-manager", 0.1), ("probft-consensus", 1.0)];

/// The environment variable naming the sampler.
pub const ENV_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The environment variable holding the sampler's argument (a ratio).
pub const ENV_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

/// The seeds' path classes (`sample = critical | standard | background`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// Critical paths: 100 %.
    Critical,
    /// Standard paths: 10 %.
    Standard,
    /// Background jobs: 1 %.
    Background,
}

impl PathClass {
    /// The class's ratio.
    pub const fn ratio(self) -> f64 {
        match self {
            PathClass::Critical => 1.0,
            PathClass::Standard => 0.1,
            PathClass::Background => 0.01,
        }
    }
}

/// The process-wide sampling rule.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// The default: follow the parent's flag; a root is sampled at its call site's ratio
    /// (`sample = ..`, else its component's, else [`DEFAULT_RATIO`]).
    ParentBasedSiteRatio,
    /// Sample every call (`always_on`).
    AlwaysOn,
    /// Sample no call (`always_off`).
    AlwaysOff,
    /// Sample by trace id at this ratio, whatever the parent says (`traceidratio`).
    TraceIdRatio(f64),
    /// Follow the parent; sample every root (`parentbased_always_on`).
    ParentBasedAlwaysOn,
    /// Follow the parent; sample no root (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// Follow the parent; sample roots by trace id at this ratio (`parentbased_traceidratio`).
    ParentBasedTraceIdRatio(f64),
}

/// A sampler name or ratio that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplerError {
    /// `OTEL_TRACES_SAMPLER` names a sampler this crate does not implement.
    #[error("unknown sampler {0:?}: expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio")]
    UnknownSampler(String),
    /// A ratio that is not a number in `[0, 1]`.
    #[error("sampling ratio {0:?} is not a number in [0, 1]")]
    InvalidRatio(String),
}

fn check_ratio(r: f64) -> Result<f64, SamplerError> {
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(SamplerError::InvalidRatio(r.to_string()))
    }
}

impl Sampler {
    /// The sampler named as in `OTEL_TRACES_SAMPLER`, with `OTEL_TRACES_SAMPLER_ARG` as `arg`.
    /// Names are matched case-insensitively, surrounding whitespace ignored. A ratio sampler
    /// without an argument uses 1.0 (the OpenTelemetry default); an argument that is not a
    /// number in `[0, 1]` is an error.
    ///
    /// ```
    /// use dwcp_telemetry::trace::sampler::Sampler;
    /// assert_eq!(Sampler::parse("traceidratio", Some("0.25")), Ok(Sampler::TraceIdRatio(0.25)));
    /// assert_eq!(Sampler::parse("parentbased_always_off", None), Ok(Sampler::ParentBasedAlwaysOff));
    /// assert!(Sampler::parse("traceidratio", Some("2")).is_err());
    /// assert!(Sampler::parse("jaeger_remote", None).is_err());
    /// ```
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Sampler, SamplerError> {
        let ratio = || -> Result<f64, SamplerError> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(a) => a
                    .parse::<f64>()
                    .map_err(|_| SamplerError::InvalidRatio(a.to_owned()))
                    .and_then(|r| {
                        check_ratio(r).map_err(|_| SamplerError::InvalidRatio(a.to_owned()))
                    }),
            }
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "always_on" => Ok(Sampler::AlwaysOn),
            "always_off" => Ok(Sampler::AlwaysOff),
            "traceidratio" => Ok(Sampler::TraceIdRatio(ratio()?)),
            "parentbased_always_on" => Ok(Sampler::ParentBasedAlwaysOn),
            "parentbased_always_off" => Ok(Sampler::ParentBasedAlwaysOff),
            "parentbased_traceidratio" => Ok(Sampler::ParentBasedTraceIdRatio(ratio()?)),
            _ => Err(SamplerError::UnknownSampler(name.to_owned())),
        }
    }

    /// The sampler the environment asks for: `Ok(None)` if `OTEL_TRACES_SAMPLER` is unset
    /// or empty.
    pub fn from_env() -> Result<Option<Sampler>, SamplerError> {
        let name = std::env::var(ENV_SAMPLER).unwrap_or_default();
        if name.trim().is_empty() {
            return Ok(None);
        }
        let arg = std::env::var(ENV_SAMPLER_ARG).ok();
        Sampler::parse(&name, arg.as_deref()).map(Some)
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::ParentBasedSiteRatio => f.write_str("parentbased_siteratio"),
            Sampler::AlwaysOn => f.write_str("always_on"),
            Sampler::AlwaysOff => f.write_str("always_off"),
            Sampler::TraceIdRatio(r) => write!(f, "traceidratio({r})"),
            Sampler::ParentBasedAlwaysOn => f.write_str("parentbased_always_on"),
            Sampler::ParentBasedAlwaysOff => f.write_str("parentbased_always_off"),
            Sampler::ParentBasedTraceIdRatio(r) => write!(f, "parentbased_traceidratio({r})"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[derive(Debug)]
struct Config {
    sampler: Sampler,
    env_error: Option<SamplerError>,
    default_ratio: f64,
    components: HashMap<String, f64>,
}

static CONFIG: OnceLock<RwLock<Config>> = OnceLock::new();
/// Bumped on every change; call sites re-resolve when theirs differs. Starts at 1 (a call
/// site's cache starts at 0: resolve on first use).
static GENERATION: AtomicU64 = AtomicU64::new(1);

fn config() -> &'static RwLock<Config> {
    CONFIG.get_or_init(|| {
        let (sampler, env_error) = match Sampler::from_env() {
            Ok(s) => (s.unwrap_or(Sampler::ParentBasedSiteRatio), None),
            Err(e) => (Sampler::ParentBasedSiteRatio, Some(e)),
        };
        RwLock::new(Config {
            sampler,
            env_error,
            default_ratio: DEFAULT_RATIO,
            components: SEED_COMPONENT_RATIOS
                .iter()
                .map(|(c, r)| ((*c).to_owned(), *r))
                .collect(),
        })
    })
}

fn update(f: impl FnOnce(&mut Config)) {
    let mut c = config().write().unwrap_or_else(|e| e.into_inner());
    f(&mut c);
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Sets the process-wide sampler (replacing the one from the environment).
pub fn set_sampler(sampler: Sampler) -> Result<(), SamplerError> {
    match sampler {
        Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r) => {
            check_ratio(r)?;
        }
        _ => {}
    }
    update(|c| c.sampler = sampler);
    Ok(())
}

/// The process-wide sampler.
pub fn sampler() -> Sampler {
    config().read().unwrap_or_else(|e| e.into_inner()).sampler
}

/// Why `OTEL_TRACES_SAMPLER` / `_ARG` were ignored (the default sampler is used instead),
/// if they were.
pub fn env_error() -> Option<SamplerError> {
    config()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .env_error
        .clone()
}

/// Sets the root sampling ratio of `component`'s call sites that have no `sample = ..`.
pub fn set_component_ratio(component: &str, ratio: f64) -> Result<(), SamplerError> {
    let r = check_ratio(ratio)?;
    update(|c| {
        c.components.insert(component.to_owned(), r);
    });
    Ok(())
}

/// The root sampling ratio of `component` (its own, else the default).
pub fn component_ratio(component: &str) -> f64 {
    let c = config().read().unwrap_or_else(|e| e.into_inner());
    c.components
        .get(component)
        .copied()
        .unwrap_or(c.default_ratio)
}

/// Sets the ratio of components that have none of their own (initially [`DEFAULT_RATIO`]).
pub fn set_default_ratio(ratio: f64) -> Result<(), SamplerError> {
    let r = check_ratio(ratio)?;
    update(|c| c.default_ratio = r);
    Ok(())
}

/// Back to the start: the environment's sampler (re-read), the seeds' component ratios, the
/// default ratio.
pub fn reset() {
    let (sampler, env_error) = match Sampler::from_env() {
        Ok(s) => (s.unwrap_or(Sampler::ParentBasedSiteRatio), None),
        Err(e) => (Sampler::ParentBasedSiteRatio, Some(e)),
    };
    update(|c| {
        c.sampler = sampler;
        c.env_error = env_error;
        c.default_ratio = DEFAULT_RATIO;
        c.components = SEED_COMPONENT_RATIOS
            .iter()
            .map(|(c, r)| ((*c).to_owned(), *r))
            .collect();
    });
}

// ---------------------------------------------------------------------------------------------
// The decision.

/// `ratio × 2⁶³`, the threshold a trace id's low 63 bits are compared with; `2⁶³` samples
/// everything, 0 nothing (NaN counts as 0).
pub(crate) fn threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        0
    } else if ratio >= 1.0 {
        1 << 63
    } else {
        // Exact: ratio × 2⁶³ < 2⁶³ fits in u64, and the cast truncates.
        (ratio * 9_223_372_036_854_775_808.0) as u64
    }
}

/// Whether the trace id's low 8 bytes fall under the threshold.
#[inline]
pub(crate) fn by_ratio(trace_low: u64, threshold: u64) -> bool {
    (trace_low >> 1) < threshold
}

/// A call site's cached rule: re-resolved when the configuration generation changes.
#[derive(Debug)]
pub(crate) struct SiteRule {
    /// `generation << 1 | parent_based`.
    generation: AtomicU64,
    threshold: AtomicU64,
}

impl SiteRule {
    pub(crate) const fn new() -> Self {
        SiteRule {
            generation: AtomicU64::new(0),
            threshold: AtomicU64::new(0),
        }
    }

    /// `(threshold, parent_based)`. `site` gives the call site's component and `sample = ..`
    /// ratio, read only when the configuration changed since the last call.
    #[inline]
    pub(crate) fn get<'a>(&self, site: impl FnOnce() -> (&'a str, Option<f64>)) -> (u64, bool) {
        let current = GENERATION.load(Ordering::Relaxed);
        let cached = self.generation.load(Ordering::Acquire);
        if cached >> 1 == current {
            (self.threshold.load(Ordering::Relaxed), cached & 1 == 1)
        } else {
            let (component, sample) = site();
            self.resolve(component, sample)
        }
    }

    #[cold]
    #[inline(never)]
    fn resolve(&self, component: &str, sample: Option<f64>) -> (u64, bool) {
        let generation = GENERATION.load(Ordering::Acquire);
        let c = config().read().unwrap_or_else(|e| e.into_inner());
        let site = || {
            sample.unwrap_or_else(|| {
                c.components
                    .get(component)
                    .copied()
                    .unwrap_or(c.default_ratio)
            })
        };
        let (t, pb) = match c.sampler {
            Sampler::ParentBasedSiteRatio => (threshold(site()), true),
            Sampler::AlwaysOn => (threshold(1.0), false),
            Sampler::AlwaysOff => (0, false),
            Sampler::TraceIdRatio(r) => (threshold(r), false),
            Sampler::ParentBasedAlwaysOn => (threshold(1.0), true),
            Sampler::ParentBasedAlwaysOff => (0, true),
            Sampler::ParentBasedTraceIdRatio(r) => (threshold(r), true),
        };
        drop(c);
        self.threshold.store(t, Ordering::Relaxed);
        self.generation
            .store(generation << 1 | u64::from(pb), Ordering::Release);
        (t, pb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(f64::NAN), 0);
        assert_eq!(threshold(1.0), 1 << 63);
        assert_eq!(threshold(0.5), 1 << 62);
        assert!(by_ratio(u64::MAX, threshold(1.0)));
        assert!(!by_ratio(0, threshold(0.0)));
        assert!(by_ratio(0, threshold(0.01)));
        assert!(!by_ratio(u64::MAX, threshold(0.99)));
    }

    #[test]
    fn parse_names_and_ratios() {
        assert_eq!(Sampler::parse(" Always_On ", None), Ok(Sampler::AlwaysOn));
        assert_eq!(
            Sampler::parse("always_off", Some("x")),
            Ok(Sampler::AlwaysOff)
        );
        assert_eq!(
            Sampler::parse("traceidratio", None),
            Ok(Sampler::TraceIdRatio(1.0))
        );
        assert_eq!(
            Sampler::parse("parentbased_traceidratio", Some(" 0.5 ")),
            Ok(Sampler::ParentBasedTraceIdRatio(0.5))
        );
        assert_eq!(
            Sampler::parse("traceidratio", Some("NaN")),
            Err(SamplerError::InvalidRatio("NaN".into()))
        );
        assert_eq!(
            Sampler::parse("traceidratio", Some("-0.1")),
            Err(SamplerError::InvalidRatio("-0.1".into()))
        );
        assert_eq!(
            Sampler::parse("traceidratio", Some("ten")),
            Err(SamplerError::InvalidRatio("ten".into()))
        );
        assert!(matches!(
            Sampler::parse("xray", None),
            Err(SamplerError::UnknownSampler(_))
        ));
        assert_eq!(PathClass::Background.ratio(), 0.01);
    }
}
