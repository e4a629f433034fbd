//! SLA compliance over rolling windows of the registry's own counters and histograms.
//!
//! A tracker samples the cumulative values its [`SlaInputs`] select, each
//! [`SlaTracker::tick`]. Each window keeps at most `resolution + 1` samples (default 60 per
//! window, whatever the request rate), spaced `window / resolution` apart; a window's value
//! is the newest sample minus the oldest one at least a window old (or the oldest there is,
//! while the tracker is younger than the window).
//!
//! SLIs over a window (Δ = increase over the window):
//!
//! - **availability** = Δsuccesses ÷ Δrequests (successes default to requests − errors);
//! - **error rate** = Δerrors ÷ Δrequests (errors default to requests − successes);
//! - **latency P99**: met when at least 99 % of the window's latency samples are at most the
//!   target (`Snapshot::count_le` at the target, so to the histogram's precision); the P99
//!   itself is estimated as the smallest of a ladder of multiples of the target holding
//!   99 % of the samples;
//! - **throughput** = Δbytes ÷ window seconds.
//!
//! With no requests (no latency samples) in a window, the SLI has no value and counts as
//! met. The error budget is the target error rate: the burn rate is error rate ÷ target,
//! and the budget remaining is `1 − burn rate` clamped to [0, 1] (the seeds'
//! `((1% − error_rate) / 1%)`).
//!
//! The decision, on the decision window (default 5 m, the seeds' `sla:…:5m` rules):
//! **NO-GO** when availability, P99 or error rate misses its target; otherwise **CAUTION**
//! when the error budget remaining is below 50 % (the seeds' yellow band) or the P99 is over
//! 80 % of its target (the seeds' 80 ms warning threshold); otherwise **GO**. Throughput is
//! reported and exported but not part of the decision (as in the seeds' GO query).

use super::catalog_help;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::clock::Clock;
use super::config::{check_percent, ConfigurationError};
use crate::registry::{Descriptor, HistogramView, MetricKind, Visitor};
use crate::{Gauge, LabelSet, Registry};

/// A service level indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sli {
    /// Successful ÷ all requests.
    Availability,
    /// The 99th percentile of request latency.
    LatencyP99,
    /// Errors ÷ requests.
    ErrorRate,
    /// Bytes per second.
    Throughput,
}

impl Sli {
    /// The `sli` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Sli::Availability => "availability",
            Sli::LatencyP99 => "latency_p99",
            Sli::ErrorRate => "error_rate",
            Sli::Throughput => "throughput",
        }
    }
}

/// The rollout decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    /// Every SLA met with budget to spare: continue (`dwcp_sla_decision` 0).
    Go,
    /// Met, but close to a limit: slow down (1).
    Caution,
    /// An SLA violated: halt or roll back (2).
    NoGo,
}

impl Decision {
    /// `GO`, `CAUTION` or `NO-GO`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Go => "GO",
            Decision::Caution => "CAUTION",
            Decision::NoGo => "NO-GO",
        }
    }

    /// The value of `dwcp_sla_decision`.
    pub fn gauge_value(self) -> f64 {
        self as u8 as f64
    }
}

/// The SLA targets (defaults: the seeds').
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaTargets {
    /// Minimum availability, a ratio (0.999).
    pub availability: f64,
    /// Maximum P99 latency (100 ms).
    pub latency_p99: Duration,
    /// Maximum error rate, a ratio (0.01).
    pub error_rate: f64,
    /// Minimum throughput in bytes per second (2.4e9).
    pub throughput_bytes_per_second: f64,
}

impl Default for SlaTargets {
    fn default() -> Self {
        SlaTargets {
            availability: 0.999,
            latency_p99: Duration::from_millis(100),
            error_rate: 0.01,
            throughput_bytes_per_second: 2.4e9,
        }
    }
}

/// A set of series: a metric and label values they must carry (others are summed over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    metric: String,
    labels: Vec<(String, String)>,
}

impl Selector {
    /// Every series of `metric` (summed).
    pub fn new(metric: impl Into<String>) -> Self {
        Selector {
            metric: metric.into(),
            labels: Vec::new(),
        }
    }

    /// Only series whose label `name` is `value`.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }

    fn matches(&self, d: &Descriptor, values: &[String]) -> bool {
        self.labels.iter().all(|(n, v)| {
            d.label_names()
                .iter()
                .position(|l| l == n)
                .is_some_and(|i| values.get(i) == Some(v))
        })
    }
}

/// Which series feed the SLIs. Counters for requests, successes, errors and bytes; a
/// histogram (in seconds) for latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaInputs {
    /// All requests.
    pub requests: Selector,
    /// Successful requests (default: requests − errors).
    pub successes: Option<Selector>,
    /// Failed requests (default: requests − successes).
    pub errors: Option<Selector>,
    /// Request latency histogram.
    pub latency: Option<Selector>,
    /// Bytes transferred.
    pub bytes: Option<Selector>,
}

impl SlaInputs {
    /// Requests from `requests`; set the others with the `with_*` methods.
    pub fn new(requests: Selector) -> Self {
        SlaInputs {
            requests,
            successes: None,
            errors: None,
            latency: None,
            bytes: None,
        }
    }

    /// Successful requests.
    pub fn with_successes(mut self, s: Selector) -> Self {
        self.successes = Some(s);
        self
    }

    /// Failed requests.
    pub fn with_errors(mut self, s: Selector) -> Self {
        self.errors = Some(s);
        self
    }

    /// The latency histogram.
    pub fn with_latency(mut self, s: Selector) -> Self {
        self.latency = Some(s);
        self
    }

    /// The bytes-transferred counter.
    pub fn with_bytes(mut self, s: Selector) -> Self {
        self.bytes = Some(s);
        self
    }
}

/// A validated SLA configuration; build it with [`SlaConfig::builder`].
#[derive(Debug, Clone)]
pub struct SlaConfig {
    targets: SlaTargets,
    inputs: SlaInputs,
    windows: Vec<Duration>,
    decision_window: Duration,
    resolution: u32,
    clock: Clock,
}

/// Builds an [`SlaConfig`]; [`SlaConfigBuilder::build`] validates.
#[derive(Debug, Clone)]
#[must_use]
pub struct SlaConfigBuilder {
    config: SlaConfig,
    availability_percent: f64,
    error_rate_percent: f64,
}

impl SlaConfig {
    /// The seeds' targets and windows (5m, 1h, 24h, 7d, 30d; decisions on 5m) over `inputs`.
    pub fn builder(inputs: SlaInputs) -> SlaConfigBuilder {
        SlaConfigBuilder {
            config: SlaConfig {
                targets: SlaTargets::default(),
                inputs,
                windows: [300, 3_600, 86_400, 7 * 86_400, 30 * 86_400]
                    .map(Duration::from_secs)
                    .to_vec(),
                decision_window: Duration::from_secs(300),
                resolution: 60,
                clock: Clock::Monotonic,
            },
            availability_percent: 99.9,
            error_rate_percent: 1.0,
        }
    }

    /// The targets.
    pub fn targets(&self) -> SlaTargets {
        self.targets
    }
}

impl SlaConfigBuilder {
    /// Minimum availability in percent, in (0, 100].
    pub fn availability_percent(mut self, p: f64) -> Self {
        self.availability_percent = p;
        self
    }

    /// Maximum P99 latency.
    pub fn latency_p99(mut self, d: Duration) -> Self {
        self.config.targets.latency_p99 = d;
        self
    }

    /// Maximum error rate in percent, in (0, 100].
    pub fn error_rate_percent(mut self, p: f64) -> Self {
        self.error_rate_percent = p;
        self
    }

    /// Minimum throughput in bytes per second.
    pub fn throughput_bytes_per_second(mut self, b: f64) -> Self {
        self.config.targets.throughput_bytes_per_second = b;
        self
    }

    /// The rolling windows (replacing the defaults).
    pub fn windows(mut self, windows: impl IntoIterator<Item = Duration>) -> Self {
        self.config.windows = windows.into_iter().collect();
        self
    }

    /// The window the decision is made on (added to the windows if missing).
    pub fn decision_window(mut self, d: Duration) -> Self {
        self.config.decision_window = d;
        self
    }

    /// Samples kept per window (2 ..= 10,000; default 60).
    pub fn resolution(mut self, n: u32) -> Self {
        self.config.resolution = n;
        self
    }

    /// The time source (tests use a manual clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Validate.
    pub fn build(self) -> Result<SlaConfig, ConfigurationError> {
        let mut c = self.config;
        check_percent("availability target", self.availability_percent)?;
        check_percent("error rate target", self.error_rate_percent)?;
        c.targets.availability = self.availability_percent / 100.0;
        c.targets.error_rate = self.error_rate_percent / 100.0;
        if c.targets.latency_p99.is_zero() {
            return Err(ConfigurationError::ZeroDuration("the P99 latency target"));
        }
        let t = c.targets.throughput_bytes_per_second;
        if !(t.is_finite() && t > 0.0) {
            return Err(ConfigurationError::Invalid(format!(
                "the throughput target must be a positive number of bytes per second, got {t}"
            )));
        }
        if c.windows.is_empty() {
            return Err(ConfigurationError::Invalid(
                "an SLA tracker needs at least one window".into(),
            ));
        }
        if c.windows.iter().any(|w| w.is_zero()) || c.decision_window.is_zero() {
            return Err(ConfigurationError::ZeroDuration("an SLA window"));
        }
        if !(2..=10_000).contains(&c.resolution) {
            return Err(ConfigurationError::Invalid(format!(
                "the SLA resolution must be 2 to 10000 samples per window, got {}",
                c.resolution
            )));
        }
        if !c.windows.contains(&c.decision_window) {
            c.windows.push(c.decision_window);
        }
        c.windows.sort();
        c.windows.dedup();
        Ok(c)
    }
}

/// Multiples of the P99 target whose sample counts are kept.
const LADDER: [f64; 20] = [
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0,
    50.0, 100.0,
];
const TARGET_STEP: usize = 10;
const WARNING_STEP: usize = 8;

/// Cumulative totals at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    at_ns: u64,
    requests: u64,
    successes: u64,
    errors: u64,
    bytes: u64,
    latency_count: u64,
    latency_le: [u64; LADDER.len()],
}

/// The SLIs of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliReport {
    /// The SLI.
    pub sli: Sli,
    /// Its value (a ratio, seconds for latency, bytes per second for throughput); `None`
    /// without data in the window (or, for P99, when above the highest estimate step).
    pub value: Option<f64>,
    /// Whether it meets its target (no data counts as met).
    pub compliant: bool,
}

/// One window's report.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    /// The window's length.
    pub window: Duration,
    /// Its label (`5m`, `1h`, …).
    pub label: String,
    /// The time the values cover (shorter than the window while the tracker is young).
    pub covered: Duration,
    /// Requests in the window.
    pub requests: u64,
    /// Availability, latency P99, error rate and (when configured) throughput.
    pub slis: Vec<SliReport>,
    /// Error rate ÷ target error rate.
    pub burn_rate: f64,
    /// `1 − burn rate`, in [0, 1].
    pub error_budget_remaining: f64,
}

impl WindowReport {
    /// The report of `sli`, if tracked.
    pub fn sli(&self, sli: Sli) -> Option<&SliReport> {
        self.slis.iter().find(|s| s.sli == sli)
    }
}

/// A tracker's report: every window and the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaReport {
    /// The decision (on the decision window).
    pub decision: Decision,
    /// The decision window's label.
    pub decision_window: String,
    /// Each window, shortest first.
    pub windows: Vec<WindowReport>,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct ComplianceLabels {
    sli: &'static str,
    window: String,
}

#[derive(LabelSet)]
#[label(crate = crate)]
struct WindowLabels {
    window: String,
}

struct WindowState {
    length: Duration,
    label: String,
    samples: VecDeque<Sample>,
    compliance: Vec<(Sli, Gauge)>,
    remaining: Gauge,
    burn: Gauge,
}

struct Inner {
    registry: Registry,
    config: SlaConfig,
    windows: Mutex<Vec<WindowState>>,
    last: Mutex<Option<SlaReport>>,
    decision: Gauge,
}

/// Tracks SLA compliance; cheap to clone. The lock inside is taken by [`SlaTracker::tick`]
/// and readers only, never by recording threads.
///
/// ```
/// use dwcp_telemetry::resilience::{Clock, Decision, ManualClock, Selector, SlaConfig, SlaInputs, SlaTracker};
/// use dwcp_telemetry::Registry;
/// use std::time::Duration;
///
/// let registry = Registry::builder().version("3.0.0").build()?;
/// let requests = registry.counter("dwcp_requests_total", "Requests").dynamic_labels(["status"]).register()?;
/// let clock = ManualClock::new();
/// let inputs = SlaInputs::new(Selector::new("dwcp_requests_total"))
///     .with_errors(Selector::new("dwcp_requests_total").with_label("status", "error"));
/// let config = SlaConfig::builder(inputs)
///     .windows([Duration::from_secs(60)])
///     .decision_window(Duration::from_secs(60))
///     .clock(Clock::manual(clock.clone()))
///     .build()?;
/// let sla = SlaTracker::new(&registry, config)?;
/// sla.tick();
/// requests.with_labels_or_overflow(&["success"]).inc_by(990);
/// requests.with_labels_or_overflow(&["error"]).inc_by(10);
/// clock.advance(Duration::from_secs(10));
/// let report = sla.tick();
/// // 1 % errors: exactly at the error-rate target, but 99 % availability misses 99.9 %.
/// assert_eq!(report.decision, Decision::NoGo);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SlaTracker {
    inner: Arc<Inner>,
}

impl fmt::Debug for SlaTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlaTracker")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Formats a window: `30s`, `5m`, `1h`, `7d`.
pub(crate) fn window_label(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        format!("{}ms", d.as_millis())
    } else if s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s % 3_600 == 0 {
        format!("{}h", s / 3_600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl SlaTracker {
    /// A tracker over `registry`'s series, exporting `dwcp_sla_*` on it.
    pub fn new(registry: &Registry, config: SlaConfig) -> Result<Self, ConfigurationError> {
        let compliance = registry
            .gauge("dwcp_sla_compliance", catalog_help("dwcp_sla_compliance"))
            .labels::<ComplianceLabels>()
            .register()?;
        let remaining = registry
            .gauge(
                "dwcp_sla_error_budget_remaining_ratio",
                catalog_help("dwcp_sla_error_budget_remaining_ratio"),
            )
            .labels::<WindowLabels>()
            .register()?;
        let burn = registry
            .gauge(
                "dwcp_sla_error_budget_burn_rate",
                catalog_help("dwcp_sla_error_budget_burn_rate"),
            )
            .labels::<WindowLabels>()
            .register()?;
        let decision = registry
            .gauge("dwcp_sla_decision", catalog_help("dwcp_sla_decision"))
            .register()?
            .handle();
        let mut slis = vec![Sli::Availability, Sli::LatencyP99, Sli::ErrorRate];
        if config.inputs.bytes.is_some() {
            slis.push(Sli::Throughput);
        }
        if config.inputs.latency.is_none() {
            slis.retain(|s| *s != Sli::LatencyP99);
        }
        let windows = config
            .windows
            .iter()
            .map(|&length| {
                let label = window_label(length);
                let w = || WindowLabels {
                    window: label.clone(),
                };
                WindowState {
                    length,
                    samples: VecDeque::with_capacity(config.resolution as usize + 2),
                    compliance: slis
                        .iter()
                        .map(|&sli| {
                            let g = compliance.get(&ComplianceLabels {
                                sli: sli.as_str(),
                                window: label.clone(),
                            });
                            g.set(1.0);
                            (sli, g)
                        })
                        .collect(),
                    remaining: {
                        let g = remaining.get(&w());
                        g.set(1.0);
                        g
                    },
                    burn: burn.get(&w()),
                    label,
                }
            })
            .collect();
        Ok(SlaTracker {
            inner: Arc::new(Inner {
                registry: registry.clone(),
                config,
                windows: Mutex::new(windows),
                last: Mutex::new(None),
                decision,
            }),
        })
    }

    /// Sample the registry now, update every window and the metrics, and return the report.
    pub fn tick(&self) -> SlaReport {
        let inner = &self.inner;
        let now = self.sample();
        let mut windows = inner.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut reports = Vec::with_capacity(windows.len());
        for w in windows.iter_mut() {
            let length = u64::try_from(w.length.as_nanos()).unwrap_or(u64::MAX);
            let spacing = (length / inner.config.resolution as u64).max(1);
            if w.samples
                .back()
                .map_or(true, |b| now.at_ns.saturating_sub(b.at_ns) >= spacing)
            {
                w.samples.push_back(now);
            }
            let start = now.at_ns.saturating_sub(length);
            while w.samples.len() >= 2 && w.samples[1].at_ns <= start {
                w.samples.pop_front();
            }
            let base = w.samples.front().copied().unwrap_or(now);
            let report = self.window_report(w, &base, &now);
            for (sli, g) in &w.compliance {
                let ok = report.sli(*sli).map_or(true, |s| s.compliant);
                g.set(if ok { 1.0 } else { 0.0 });
            }
            w.remaining.set(report.error_budget_remaining);
            w.burn.set(report.burn_rate);
            reports.push(report);
        }
        drop(windows);
        let decision_label = window_label(inner.config.decision_window);
        let decision = reports
            .iter()
            .find(|r| r.label == decision_label)
            .map_or(Decision::Go, |r| self.decide(r));
        inner.decision.set(decision.gauge_value());
        let report = SlaReport {
            decision,
            decision_window: decision_label,
            windows: reports,
        };
        *inner.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
        report
    }

    /// The report of the last [`SlaTracker::tick`].
    pub fn last_report(&self) -> Option<SlaReport> {
        self.inner
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tick every `interval` on a background thread until the returned handle is dropped.
    pub fn spawn(&self, interval: Duration) -> std::io::Result<SlaTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (self.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("dwcp-sla".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    me.tick();
                    std::thread::park_timeout(interval);
                }
            })?;
        Ok(SlaTicker {
            stop,
            thread: Some(thread),
        })
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn inner_sample_counts(&self) -> Vec<usize> {
        let w = self.inner.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.iter().map(|w| w.samples.len()).collect()
    }

    fn decide(&self, r: &WindowReport) -> Decision {
        let met = |sli| r.sli(sli).map_or(true, |s| s.compliant);
        if !(met(Sli::Availability) && met(Sli::LatencyP99) && met(Sli::ErrorRate)) {
            return Decision::NoGo;
        }
        let p99_warning = r
            .sli(Sli::LatencyP99)
            .and_then(|s| s.value)
            .is_some_and(|v| {
                v > LADDER[WARNING_STEP] * self.inner.config.targets.latency_p99.as_secs_f64()
            });
        if r.error_budget_remaining < 0.5 || p99_warning {
            Decision::Caution
        } else {
            Decision::Go
        }
    }

    fn window_report(&self, w: &WindowState, base: &Sample, now: &Sample) -> WindowReport {
        let t = &self.inner.config.targets;
        let inputs = &self.inner.config.inputs;
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let requests = d(now.requests, base.requests);
        let errors_d = d(now.errors, base.errors);
        let successes_d = d(now.successes, base.successes);
        let (successes, errors) = match (&inputs.successes, &inputs.errors) {
            (Some(_), Some(_)) => (successes_d, errors_d),
            (Some(_), None) => (successes_d, requests.saturating_sub(successes_d)),
            (None, Some(_)) => (requests.saturating_sub(errors_d), errors_d),
            (None, None) => (requests, 0),
        };
        let ratio = |n: u64| (requests > 0).then(|| n as f64 / requests as f64);
        let covered = Duration::from_nanos(now.at_ns.saturating_sub(base.at_ns));
        let mut slis = Vec::with_capacity(4);
        let availability = ratio(successes);
        slis.push(SliReport {
            sli: Sli::Availability,
            value: availability,
            compliant: availability.map_or(true, |a| a >= t.availability),
        });
        if inputs.latency.is_some() {
            let total = d(now.latency_count, base.latency_count);
            let le = |i: usize| d(now.latency_le[i], base.latency_le[i]);
            let enough = |n: u64| n as f64 >= 0.99 * total as f64;
            let target = t.latency_p99.as_secs_f64();
            let value = (total > 0)
                .then(|| {
                    (0..LADDER.len())
                        .find(|&i| enough(le(i)))
                        .map(|i| LADDER[i] * target)
                })
                .flatten();
            slis.push(SliReport {
                sli: Sli::LatencyP99,
                value: if total > 0 {
                    value.or(Some(f64::INFINITY))
                } else {
                    None
                },
                compliant: total == 0 || enough(le(TARGET_STEP)),
            });
        }
        let error_rate = ratio(errors);
        slis.push(SliReport {
            sli: Sli::ErrorRate,
            value: error_rate,
            compliant: error_rate.map_or(true, |e| e <= t.error_rate),
        });
        if inputs.bytes.is_some() {
            let secs = covered.as_secs_f64();
            let tp = (secs > 0.0).then(|| d(now.bytes, base.bytes) as f64 / secs);
            slis.push(SliReport {
                sli: Sli::Throughput,
                value: tp,
                compliant: tp.map_or(true, |v| v >= t.throughput_bytes_per_second),
            });
        }
        let burn_rate = error_rate.unwrap_or(0.0) / t.error_rate;
        WindowReport {
            window: w.length,
            label: w.label.clone(),
            covered,
            requests,
            slis,
            burn_rate,
            error_budget_remaining: (1.0 - burn_rate).clamp(0.0, 1.0),
        }
    }

    fn sample(&self) -> Sample {
        let inner = &self.inner;
        let mut v = SampleVisitor {
            inputs: &inner.config.inputs,
            sample: Sample {
                at_ns: inner.config.clock.now_nanos(),
                ..Sample::default()
            },
            target: inner.config.targets.latency_p99.as_secs_f64(),
            scale: 1.0,
        };
        inner.registry.visit(&mut v);
        v.sample
    }
}

/// Stops a [`SlaTracker::spawn`] thread when dropped.
#[derive(Debug)]
pub struct SlaTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SlaTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

struct SampleVisitor<'a> {
    inputs: &'a SlaInputs,
    sample: Sample,
    target: f64,
    scale: f64,
}

impl SampleVisitor<'_> {
    fn wanted(&self, name: &str) -> bool {
        let i = self.inputs;
        i.requests.metric == name
            || [&i.successes, &i.errors, &i.latency, &i.bytes]
                .iter()
                .any(|s| s.as_ref().is_some_and(|s| s.metric == name))
    }
}

impl Visitor for SampleVisitor<'_> {
    fn family(&mut self, d: &Arc<Descriptor>) -> bool {
        self.scale = d.storage_scale();
        self.wanted(d.name())
    }

    fn counter(&mut self, d: &Descriptor, labels: &Arc<[String]>, value: u64) {
        if d.kind() != MetricKind::Counter {
            return;
        }
        let i = self.inputs;
        let add = |sel: &Selector, to: &mut u64| {
            if sel.metric == d.name() && sel.matches(d, labels) {
                *to = to.saturating_add(value);
            }
        };
        add(&i.requests, &mut self.sample.requests);
        if let Some(s) = &i.successes {
            add(s, &mut self.sample.successes);
        }
        if let Some(s) = &i.errors {
            add(s, &mut self.sample.errors);
        }
        if let Some(s) = &i.bytes {
            add(s, &mut self.sample.bytes);
        }
    }

    fn gauge(&mut self, _: &Descriptor, _: &Arc<[String]>, _: f64) {}

    fn histogram(&mut self, d: &Descriptor, labels: &Arc<[String]>, h: HistogramView<'_>) {
        let Some(sel) = &self.inputs.latency else {
            return;
        };
        if sel.metric != d.name() || !sel.matches(d, labels) {
            return;
        }
        let snap = h.snapshot();
        let bounds: Vec<u64> = LADDER
            .iter()
            .map(|m| (m * self.target * self.scale).round() as u64)
            .collect();
        for (acc, n) in self
            .sample
            .latency_le
            .iter_mut()
            .zip(snap.cumulative(&bounds))
        {
            *acc = acc.saturating_add(n);
        }
        self.sample.latency_count = self.sample.latency_count.saturating_add(snap.count());
    }
}

#[cfg(feature = "prometheus")]
impl SlaReport {
    /// The report as JSON (the `"sla"` of `/metrics/summary`):
    /// `{"decision":"GO","decision_window":"5m","windows":[{"window":"5m",
    /// "covered_seconds":300,"requests":12000,"burn_rate":0.2,"error_budget_remaining":0.8,
    /// "slis":{"availability":{"value":0.998,"compliant":true},…}},…]}`. A value without
    /// data is `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + 256 * self.windows.len());
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        use crate::export::json;
        out.push('{');
        json::key(out, "decision", true);
        json::string(out, self.decision.as_str());
        json::key(out, "decision_window", false);
        json::string(out, &self.decision_window);
        json::key(out, "windows", false);
        out.push('[');
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json::key(out, "window", true);
            json::string(out, &w.label);
            json::key(out, "covered_seconds", false);
            json::number(out, w.covered.as_secs_f64());
            json::key(out, "requests", false);
            json::number(out, w.requests as f64);
            json::key(out, "burn_rate", false);
            json::number(out, w.burn_rate);
            json::key(out, "error_budget_remaining", false);
            json::number(out, w.error_budget_remaining);
            json::key(out, "slis", false);
            out.push('{');
            for (j, s) in w.slis.iter().enumerate() {
                json::key(out, s.sli.as_str(), j == 0);
                out.push('{');
                json::key(out, "value", true);
                match s.value {
                    Some(v) => json::number(out, v),
                    None => out.push_str("null"),
                }
                json::key(out, "compliant", false);
                out.push_str(if s.compliant { "true" } else { "false" });
                out.push('}');
            }
            out.push_str("}}");
        }
        out.push_str("]}");
    }
}
