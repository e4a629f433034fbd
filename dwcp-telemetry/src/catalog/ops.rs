//! Ops artifacts generated from the catalog: Prometheus alerting and recording rules,
//! multi-window multi-burn-rate SLO alerts, `promtool test rules` unit tests for every
//! alert, Grafana dashboards, an Alertmanager routing example and `docs/catalog.md`.
//!
//! The committed copies live under `deploy/` (and `docs/catalog.md`); regenerate them with
//! `cargo run --example gen_ops` (see `deploy/README.md`). Every alert of the seeds for the
//! catalog's systems is here, with each seed defect fixed and the fix recorded
//! ([`Alert::fix`], listed in `docs/catalog.md`).
//!
//! ```
//! use dwcp_telemetry::catalog::ops::{generate, OpsConfig};
//!
//! let files = generate(&OpsConfig::default())?;
//! let alerts = files.iter().find(|a| a.path == "deploy/prometheus/dwcp-alerts.rules.yml").unwrap();
//! assert!(alerts.contents.contains("alert: DWCPCircuitBreakerStorm"));
//! // Short `for:` and evaluation interval, for a test against a real Prometheus:
//! let fast = OpsConfig { for_override: Some("5s".into()), rule_interval: "1s".into(), ..OpsConfig::default() };
//! let files = generate(&fast)?;
//! # Ok::<(), dwcp_telemetry::catalog::ops::OpsError>(())
//! ```

use std::fmt::Write as _;

use super::v3::COMPONENT_LATENCY_BUCKETS;
use super::{systems, MetricDef};
use crate::MetricKind;

/// The SLA targets (seed 002; the defaults of the resilience runtime's SLA tracker).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaTargets {
    /// Availability objective, a ratio (default 0.999).
    pub availability: f64,
    /// P99 latency objective in seconds (default 0.1). It must be one of the bucket bounds
    /// of `dwcp_v3_component_latency_seconds`, because the latency SLO counts operations
    /// under it from that bucket.
    pub latency_p99_seconds: f64,
    /// Error-rate objective, a ratio (default 0.01).
    pub error_rate: f64,
    /// Throughput objective in bytes per second (default 2.4e9, seed 002's 2.4 GB/s).
    pub throughput_bytes_per_second: f64,
}

impl Default for SlaTargets {
    fn default() -> Self {
        SlaTargets {
            availability: 0.999,
            latency_p99_seconds: 0.1,
            error_rate: 0.01,
            throughput_bytes_per_second: 2.4e9,
        }
    }
}

/// What the generator writes.
#[derive(Debug, Clone, PartialEq)]
pub struct OpsConfig {
    /// SLA targets for the SLA alerts, recording rules and burn-rate alerts.
    pub sla: SlaTargets,
    /// Every rule group's `interval:` (the seeds' `30s`).
    pub rule_interval: String,
    /// Replace every alert's non-zero `for:` with this (e.g. `"5s"` in a test); `None`
    /// keeps the seeds' durations.
    pub for_override: Option<String>,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            sla: SlaTargets::default(),
            rule_interval: "30s".to_owned(),
            for_override: None,
        }
    }
}

/// A configuration the generator refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// An SLA target is out of range.
    #[error("SLA target {name} = {value} is out of range ({expected})")]
    Target {
        /// Which target.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The valid range.
        expected: &'static str,
    },
    /// The latency target is not a bucket bound of `dwcp_v3_component_latency_seconds`.
    #[error(
        "latency target {0} s is not a bucket bound of dwcp_v3_component_latency_seconds ({1:?})"
    )]
    LatencyBucket(f64, &'static [f64]),
    /// A duration is not a Prometheus duration (`30s`, `5m`, `1h`, …).
    #[error("{0:?} is not a Prometheus duration like 30s, 5m or 1h")]
    Duration(String),
}

/// One generated file: its path relative to the repository root, and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// E.g. `deploy/prometheus/dwcp-alerts.rules.yml`.
    pub path: &'static str,
    /// The file's contents.
    pub contents: String,
}

/// One alerting rule, with where it comes from, what was fixed and its unit-test fixture.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Rule group.
    pub group: &'static str,
    /// `alert:` name (the seed's).
    pub name: String,
    /// The seed it comes from (`"000"`, … or `"generated"` for the SLO alerts).
    pub seed: &'static str,
    /// PromQL.
    pub expr: String,
    /// `for:` (empty for none).
    pub for_: String,
    /// Labels (severity first).
    pub labels: Vec<(&'static str, String)>,
    /// Annotations (`summary`, `description`, …).
    pub annotations: Vec<(&'static str, String)>,
    /// What was wrong in the seed and how it was fixed (empty if taken as is).
    pub fix: &'static str,
    test: Fixture,
}

/// A unit test of one alert: input series with a firing and a silent set of values, when to
/// evaluate, the labels the expression outputs and the `$value` at that time.
#[derive(Debug, Clone)]
struct Fixture {
    series: Vec<(String, String, String)>,
    at_minutes: u32,
    out_labels: Vec<(&'static str, &'static str)>,
    value: f64,
}

/// One recording rule.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Rule group.
    pub group: &'static str,
    /// `record:` name.
    pub record: String,
    /// PromQL.
    pub expr: String,
    /// Where the name comes from.
    pub source: &'static str,
}

/// One dashboard query.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelQuery {
    /// The dashboard's file.
    pub dashboard: &'static str,
    /// The panel's title.
    pub panel: String,
    /// PromQL as in the dashboard (may use `$component`, `$region`, `$interval`).
    pub expr: String,
}

// ---------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------

/// A number as PromQL / YAML text: rounded to 12 significant digits, shortest form.
fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    let scale = 10f64.powi(11 - mag);
    let r = (x * scale).round() / scale;
    let s = format!("{r}");
    if r.abs() >= 1e6 && r.fract() == 0.0 {
        // 2400000000 → 2.4e+09, as people write it in PromQL.
        let e = format!("{r:e}");
        let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
        return format!("{mant}e+{:02}", exp.parse::<u32>().unwrap_or(0));
    }
    s
}

fn pct(x: f64) -> String {
    format!("{}%", num(x * 100.0))
}

/// `s` as a YAML single-quoted scalar.
fn yq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn check_duration(d: &str) -> Result<(), OpsError> {
    let ok = !d.is_empty()
        && d.chars().last().is_some_and(|c| "smhdwy".contains(c))
        && d[..d.len() - 1].chars().all(|c| c.is_ascii_digit())
        && d.len() > 1;
    if ok {
        Ok(())
    } else {
        Err(OpsError::Duration(d.to_owned()))
    }
}

/// Go's `%.4g`, as Prometheus' `humanize*` functions print.
fn g4(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let e = format!("{v:.3e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..4).contains(&exp) {
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Prometheus' `humanize`.
fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let prefixes = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
        let mut i = 0;
        while v.abs() >= 1000.0 && i + 1 < prefixes.len() {
            v /= 1000.0;
            i += 1;
        }
        format!("{}{}", g4(v), prefixes[i])
    } else {
        let prefixes = ["", "m", "u", "n", "p", "f", "a", "z", "y"];
        let mut i = 0;
        while v.abs() < 1.0 && i + 1 < prefixes.len() {
            v *= 1000.0;
            i += 1;
        }
        format!("{}{}", g4(v), prefixes[i])
    }
}

/// Prometheus' `humanize1024`.
fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return g4(v);
    }
    let prefixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < prefixes.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", g4(v), prefixes[i])
}

/// Expands the template forms the generated annotations use, as Prometheus would.
fn render(template: &str, labels: &[(&str, String)], value: f64) -> String {
    let mut out = template
        .replace(
            "{{ $value | humanizePercentage }}",
            &format!("{}%", g4(value * 100.0)),
        )
        .replace("{{ $value | humanize1024 }}", &humanize1024(value))
        .replace("{{ $value | humanize }}", &humanize(value));
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out
}

fn ramp(per_minute: f64, n: u32) -> String {
    format!("0+{}x{n}", num(per_minute))
}

fn flat(v: f64, n: u32) -> String {
    format!("{}x{n}", num(v))
}

// ---------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------

struct AlertBuilder {
    alert: Alert,
}

#[allow(clippy::too_many_arguments)]
fn alert(
    group: &'static str,
    name: impl Into<String>,
    seed: &'static str,
    expr: impl Into<String>,
    for_: &str,
    severity: &str,
    component: Option<&str>,
    summary: impl Into<String>,
) -> AlertBuilder {
    let mut labels = vec![("severity", severity.to_owned())];
    if let Some(c) = component {
        labels.push(("component", c.to_owned()));
    }
    AlertBuilder {
        alert: Alert {
            group,
            name: name.into(),
            seed,
            expr: expr.into(),
            for_: for_.to_owned(),
            labels,
            annotations: vec![("summary", summary.into())],
            fix: "",
            test: Fixture {
                series: Vec::new(),
                at_minutes: 10,
                out_labels: Vec::new(),
                value: 0.0,
            },
        },
    }
}

impl AlertBuilder {
    fn desc(mut self, d: impl Into<String>) -> Self {
        self.alert.annotations.push(("description", d.into()));
        self
    }
    fn annotation(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.alert.annotations.push((k, v.into()));
        self
    }
    fn label(mut self, k: &'static str, v: &str) -> Self {
        self.alert.labels.push((k, v.to_owned()));
        self
    }
    fn fix(mut self, f: &'static str) -> Self {
        self.alert.fix = f;
        self
    }
    /// One input series: its selector, its values when the alert must fire, and when not.
    fn series(
        mut self,
        s: impl Into<String>,
        fire: impl Into<String>,
        quiet: impl Into<String>,
    ) -> Self {
        self.alert
            .test
            .series
            .push((s.into(), fire.into(), quiet.into()));
        self
    }
    fn at(mut self, minutes: u32, value: f64, out: &[(&'static str, &'static str)]) -> Alert {
        self.alert.test.at_minutes = minutes;
        self.alert.test.value = value;
        self.alert.test.out_labels = out.to_vec();
        self.alert
    }
}

/// Every alert, in file order, with the seeds' `for:` durations.
pub fn alerts(cfg: &OpsConfig) -> Vec<Alert> {
    let sla = cfg.sla;
    let avail = num(sla.availability);
    let lat = num(sla.latency_p99_seconds);
    let err = num(sla.error_rate);
    let tput = num(sla.throughput_bytes_per_second);
    let lat_ms = num(sla.latency_p99_seconds * 1000.0);
    let tput_text = format!("{}B/s", humanize(sla.throughput_bytes_per_second));
    let n = 20;
    let mut v = Vec::new();

    // --- seed 000: canary health, on the manager's request metrics ------------------------
    let req = |status: &str, version: &str| {
        format!(
            r#"dwcp_requests_total{{operation="migrate",status="{status}",version="{version}"}}"#
        )
    };
    let dur = |le: &str, version: &str| {
        format!(
            r#"dwcp_request_duration_seconds_bucket{{le="{le}",operation="migrate",version="{version}"}}"#
        )
    };
    let err_ratio = |version: &str| {
        format!(
            r#"sum(rate(dwcp_requests_total{{status=~"5..|error",version="{version}"}}[5m])) / sum(rate(dwcp_requests_total{{version="{version}"}}[5m]))"#
        )
    };
    let p99 = |version: &str| {
        format!(
            r#"histogram_quantile(0.99, sum by (le) (rate(dwcp_request_duration_seconds_bucket{{version="{version}"}}[5m])))"#
        )
    };
    let canary_fix = "Counted on `dwcp_requests_total{status, version}` / `dwcp_request_duration_seconds` (the seed's `http_requests_total` is not a DWCP metric; `status` \"error\" or an HTTP 5xx code is an error); `{{ $value }}%` printed a 0..1 ratio as a percentage: now `humanizePercentage`.";
    v.push(
        alert("canary-health", "CanaryErrorRateHigh", "000",
            format!("{} > {} * 1.5", err_ratio("canary"), err_ratio("baseline")),
            "5m", "critical", Some("canary"),
            "Canary error rate 50% higher than baseline")
        .desc("Canary error rate {{ $value | humanizePercentage }} is significantly higher than baseline")
        .annotation("runbook", "https://docs/runbooks/canary-rollback")
        .fix(canary_fix)
        .series(req("ok", "canary"), ramp(900.0, n), ramp(990.0, n))
        .series(req("error", "canary"), ramp(100.0, n), ramp(10.0, n))
        .series(req("ok", "baseline"), ramp(990.0, n), ramp(990.0, n))
        .series(req("error", "baseline"), ramp(10.0, n), ramp(10.0, n))
        .at(12, 0.1, &[]),
    );
    v.push(
        alert("canary-health", "CanaryLatencyHigh", "000",
            format!("{} > {} * 2", p99("canary"), p99("baseline")),
            "5m", "critical", Some("canary"),
            "Canary P99 latency 2x higher than baseline")
        .desc("Canary P99 latency {{ $value | humanize }}s is 2x baseline")
        .fix("The seed's `sum(rate(...)) by (le)` over `http_request_duration_seconds`: the same on `dwcp_request_duration_seconds`.")
        .series(dur("0.1", "canary"), flat(0.0, n), ramp(100.0, n))
        .series(dur("0.2", "canary"), flat(0.0, n), ramp(100.0, n))
        .series(dur("0.5", "canary"), ramp(100.0, n), ramp(100.0, n))
        .series(dur("+Inf", "canary"), ramp(100.0, n), ramp(100.0, n))
        .series(dur("0.1", "baseline"), ramp(100.0, n), ramp(100.0, n))
        .series(dur("0.2", "baseline"), ramp(100.0, n), ramp(100.0, n))
        .series(dur("0.5", "baseline"), ramp(100.0, n), ramp(100.0, n))
        .series(dur("+Inf", "baseline"), ramp(100.0, n), ramp(100.0, n))
        .at(12, 0.2 + 0.3 * 0.99, &[]),
    );
    v.push(
        alert("canary-health", "CanarySuccessRateLow", "000",
            r#"sum(rate(dwcp_requests_total{status!~"5..|error",version="canary"}[5m])) / sum(rate(dwcp_requests_total{version="canary"}[5m])) < 0.95"#,
            "3m", "critical", Some("canary"),
            "Canary success rate below 95%")
        .desc("Canary success rate {{ $value | humanizePercentage }} is critically low")
        .fix(canary_fix)
        .series(req("ok", "canary"), ramp(900.0, n), ramp(990.0, n))
        .series(req("error", "canary"), ramp(100.0, n), ramp(10.0, n))
        .at(10, 0.9, &[]),
    );

    // --- seed 000: dwcp-manager -------------------------------------------------------
    v.push(
        alert(
            "dwcp-manager",
            "DWCPHealthCheckFailure",
            "000",
            r#"sum(rate(dwcp_health_check_total{status="failure"}[5m])) > 0"#,
            "2m",
            "warning",
            Some("dwcp-manager"),
            "DWCP Manager health check failures detected",
        )
        .desc("{{ $value | humanize }} failed health checks per second over the last 5 minutes")
        .fix("No description in the seed: added one.")
        .series(
            r#"dwcp_health_check_total{status="failure"}"#,
            ramp(60.0, n),
            flat(0.0, n),
        )
        .at(10, 1.0, &[]),
    );
    v.push(
        alert("dwcp-manager", "DWCPCircuitBreakerStorm", "000",
            "sum(rate(dwcp_circuit_breaker_trips_total[5m])) > 10",
            "5m", "critical", Some("dwcp-manager"),
            "Circuit breaker trip storm detected")
        .desc("{{ $value | humanize }} circuit breaker trips per second over the last 5 minutes (threshold 10/s)")
        .fix("The description called the per-second rate \"trips in 5 minutes\": it now says trips per second.")
        .series(r#"dwcp_circuit_breaker_trips_total{circuit="database"}"#, ramp(900.0, n), ramp(300.0, n))
        .at(12, 15.0, &[]),
    );
    v.push(
        alert("dwcp-manager", "DWCPMemoryLeak", "000",
            r#"dwcp_memory_usage_bytes{type="heap"} > 8 * 1024 * 1024 * 1024 and deriv(dwcp_memory_usage_bytes{type="heap"}[1h]) > 0"#,
            "4h", "warning", Some("dwcp-manager"),
            "Potential memory leak detected")
        .desc("Heap usage {{ $value | humanize1024 }}B, above 8 GiB and still increasing")
        .fix("`rate()` of a gauge (every drop read as a counter reset) replaced by `deriv()`; the operands of `and` swapped so `$value` is the heap size in bytes, as the description says, not the growth rate; the inline `# 8GB` comment dropped.")
        .series(r#"dwcp_memory_usage_bytes{type="heap"}"#,
            format!("9663676416+1048576x{}", 320), format!("9663676416x{}", 320))
        .at(310, 9663676416.0 + 310.0 * 1048576.0, &[("type", "heap")]),
    );
    v.push(
        alert("dwcp-manager", "DWCPRecoveryLoop", "000",
            "sum(rate(dwcp_recovery_attempts_total[1m])) * 60 > 50",
            "2m", "critical", Some("dwcp-manager"),
            "Recovery loop detected")
        .desc("{{ $value | humanize }} recovery attempts per minute")
        .fix("`rate()` is per second but the seed called it \"attempts per minute\" (so the threshold meant 50/s, 3,000 a minute): the rate is now multiplied by 60, so threshold and description are both per minute.")
        .series(r#"dwcp_recovery_attempts_total{component="amst",success="false"}"#, ramp(120.0, n), ramp(30.0, n))
        .at(8, 120.0, &[]),
    );
    // --- seed 001: availability and latency of the services -----------------------------
    v.push(
        alert(
            "dwcp-manager",
            "DWCPManagerDown",
            "001",
            r#"up{job="dwcp-manager"} == 0"#,
            "30s",
            "critical",
            Some("dwcp-manager"),
            "DWCP Manager down on {{ $labels.instance }}",
        )
        .series(
            r#"up{job="dwcp-manager",instance="dwcp-manager-01:8080"}"#,
            flat(0.0, n),
            flat(1.0, n),
        )
        .at(
            3,
            0.0,
            &[
                ("instance", "dwcp-manager-01:8080"),
                ("job", "dwcp-manager"),
            ],
        ),
    );
    v.push(
        alert("dwcp-manager", "HighLatency", "001",
            "histogram_quantile(0.99, sum by (job, le) (rate(dwcp_request_duration_seconds_bucket[5m]))) > 0.2",
            "5m", "warning", Some("dwcp-manager"),
            "High P99 latency: {{ $value | humanize }}s")
        .fix("`histogram_quantile` was applied to the raw cumulative buckets (the distribution since each process started, per series): now over a 5-minute `rate()` summed by `le` (and job).")
        .series(r#"dwcp_request_duration_seconds_bucket{job="dwcp-manager",le="0.2"}"#, flat(0.0, n), ramp(100.0, n))
        .series(r#"dwcp_request_duration_seconds_bucket{job="dwcp-manager",le="0.5"}"#, ramp(100.0, n), ramp(100.0, n))
        .series(r#"dwcp_request_duration_seconds_bucket{job="dwcp-manager",le="+Inf"}"#, ramp(100.0, n), ramp(100.0, n))
        .at(12, 0.2 + 0.3 * 0.99, &[("job", "dwcp-manager")]),
    );

    // --- seed 000: compression (and seed 001's model alert) ----------------------------
    v.push(
        alert(
            "compression",
            "CompressionAccuracyLow",
            "000",
            "avg(compression_accuracy) < 0.99",
            "1h",
            "warning",
            Some("compression"),
            "Compression accuracy below target",
        )
        .desc("Compression accuracy {{ $value | humanizePercentage }} < 99%")
        .fix("The description printed the 0..1 ratio next to \"99%\": now `humanizePercentage`.")
        .series(
            r#"compression_accuracy{algorithm="zstd"}"#,
            flat(0.95, 80),
            flat(0.995, 80),
        )
        .at(65, 0.95, &[]),
    );
    v.push(
        alert("compression", "CompressionOverheadHigh", "000",
            "avg(compression_overhead_percentage) > 5",
            "30m", "warning", Some("compression"),
            "Compression overhead exceeds 5%")
        .desc("Overhead {{ $value | humanize }}% is too high")
        .fix("A `_percentage` metric was compared with 0.05 while the summary says 5%: the metric holds 0..100, so the threshold is 5.")
        .series("compression_overhead_percentage", flat(8.0, 50), flat(3.0, 50))
        .at(35, 8.0, &[]),
    );
    v.push(
        alert("compression", "ModelAccuracyDrop", "001",
            "compression_selector_accuracy < 0.95",
            "1h", "warning", Some("compression"),
            "Compression selector accuracy dropped to {{ $value | humanizePercentage }}")
        .fix("`{{ $value }}` printed the 0..1 ratio: now `humanizePercentage`; `component` label added for routing.")
        .series("compression_selector_accuracy", flat(0.9, 80), flat(0.97, 80))
        .at(65, 0.9, &[]),
    );

    // --- seed 000 / 001: consensus -------------------------------------------------------
    let once = "0 0 0 1x20";
    v.push(
        alert("consensus", "ByzantineNodeDetected", "000",
            "increase(probft_byzantine_events_detected_total[5m]) > 0",
            "1m", "critical", Some("probft"),
            "Byzantine node detected!")
        .desc("Byzantine event: {{ $labels.type }}")
        .fix("The counter `probft_byzantine_events_detected` is exported as `probft_byzantine_events_detected_total` (a counter's samples always end in `_total`).")
        .series(r#"probft_byzantine_events_detected_total{type="equivocation"}"#, once, flat(0.0, n))
        .at(5, 1.0, &[("type", "equivocation")]),
    );
    v.push(
        alert(
            "consensus",
            "ConsensusFailure",
            "000",
            "increase(probft_consensus_failures_total[5m]) > 0",
            "1m",
            "critical",
            Some("probft"),
            "ProBFT consensus failure",
        )
        .desc("Consensus failed: {{ $labels.reason }}")
        .series(
            r#"probft_consensus_failures_total{reason="timeout"}"#,
            once,
            flat(0.0, n),
        )
        .at(5, 1.0, &[("reason", "timeout")]),
    );
    v.push(
        alert("consensus", "QuorumNotAchieved", "001",
            "increase(probft_quorum_achieved_total[5m]) == 0",
            "5m", "critical", Some("probft"),
            "ProBFT quorum not achieved for 5 minutes")
        .fix("`probft_quorum_achieved_total == 0` tested a counter, true only before the first quorum ever: now no increase over 5 minutes. `component` label added.")
        .series("probft_quorum_achieved_total", flat(5.0, n), ramp(10.0, n))
        .at(12, 0.0, &[]),
    );
    v.push(
        alert(
            "consensus",
            "ConsensusDown",
            "001",
            r#"up{job=~".*-consensus"} == 0"#,
            "1m",
            "critical",
            Some("consensus"),
            "Consensus node down: {{ $labels.instance }}",
        )
        .series(
            r#"up{job="probft-consensus",instance="probft-node-01:8080"}"#,
            flat(0.0, n),
            flat(1.0, n),
        )
        .at(
            3,
            0.0,
            &[
                ("instance", "probft-node-01:8080"),
                ("job", "probft-consensus"),
            ],
        ),
    );
    v.push(
        alert(
            "consensus",
            "BullsharkThroughputLow",
            "000",
            "sum(rate(bullshark_transactions_processed_total[1m])) < 250000",
            "10m",
            "warning",
            Some("bullshark"),
            "Bullshark throughput below target",
        )
        .desc("Throughput {{ $value | humanize }} tx/s < 250K tx/s")
        .series(
            "bullshark_transactions_processed_total",
            ramp(6_000_000.0, n),
            ramp(18_000_000.0, n),
        )
        .at(15, 100_000.0, &[]),
    );
    v.push(
        alert("consensus", "BullsharkMempoolFull", "000",
            "avg(bullshark_mempool_usage_percentage) > 95",
            "5m", "critical", Some("bullshark"),
            "Bullshark mempool critically full")
        .desc("Mempool usage {{ $value | humanize }}%")
        .fix("A `_percentage` metric (0..100) was compared with 0.95, so it fired at 0.95% full: the threshold is 95.")
        .series("bullshark_mempool_usage_percentage", flat(97.0, n), flat(90.0, n))
        .at(8, 97.0, &[]),
    );

    // --- seed 000: resource allocation ---------------------------------------------------
    v.push(
        alert("resource-allocation", "ResourceStarvation", "000",
            "increase(maddpg_resource_starvation_events_total[5m]) > 0",
            "1m", "critical", Some("maddpg"),
            "Resource starvation detected")
        .desc("Service {{ $labels.service }} starved of resources")
        .fix("The counter `maddpg_resource_starvation_events` is exported as `maddpg_resource_starvation_events_total`.")
        .series(r#"maddpg_resource_starvation_events_total{service="api"}"#, once, flat(0.0, n))
        .at(5, 1.0, &[("service", "api")]),
    );
    v.push(
        alert(
            "resource-allocation",
            "AllocationEfficiencyLow",
            "000",
            "avg(maddpg_allocation_efficiency) < 0.85",
            "1h",
            "warning",
            Some("maddpg"),
            "Allocation efficiency below baseline",
        )
        .desc("Efficiency {{ $value | humanizePercentage }} < 85%")
        .fix("The description printed the 0..1 ratio next to \"85%\": now `humanizePercentage`.")
        .series("maddpg_allocation_efficiency", flat(0.8, 80), flat(0.9, 80))
        .at(65, 0.8, &[]),
    );

    // --- seed 004: DWCP protocol ---------------------------------------------------------
    let rb = |s: &str| format!("https://docs.novacron.local/runbooks/{s}");
    v.push(
        alert(
            "dwcp-protocol",
            "DWCPHighLatency",
            "004",
            "dwcp_latency_milliseconds > 100",
            "5m",
            "warning",
            Some("dwcp"),
            "DWCP protocol experiencing high latency",
        )
        .desc("Average DWCP latency is {{ $value | humanize }}ms (threshold: 100ms)")
        .annotation("runbook_url", rb("dwcp-latency"))
        .series("dwcp_latency_milliseconds", flat(150.0, n), flat(50.0, n))
        .at(8, 150.0, &[]),
    );
    v.push(
        alert(
            "dwcp-protocol",
            "DWCPPacketLoss",
            "004",
            "dwcp_packet_loss_rate > 0.01",
            "2m",
            "warning",
            Some("dwcp"),
            "DWCP packet loss detected",
        )
        .desc("Packet loss rate is {{ $value | humanizePercentage }}")
        .annotation("runbook_url", rb("dwcp-packet-loss"))
        .series("dwcp_packet_loss_rate", flat(0.05, n), flat(0.001, n))
        .at(5, 0.05, &[]),
    );
    v.push(
        alert("dwcp-protocol", "DWCPBandwidthExhausted", "004",
            "dwcp_bandwidth_allocated_bytes / dwcp_bandwidth_available_bytes > 0.90 and dwcp_bandwidth_available_bytes > 0",
            "5m", "warning", Some("dwcp"),
            "DWCP bandwidth nearly exhausted")
        .desc("Bandwidth utilization at {{ $value | humanizePercentage }}")
        .annotation("runbook_url", rb("dwcp-bandwidth"))
        .fix("With no bandwidth available the ratio is +Inf (or NaN) and the alert fired on a division by zero: guarded with `and dwcp_bandwidth_available_bytes > 0`.")
        .series("dwcp_bandwidth_allocated_bytes", flat(95.0, n), flat(50.0, n))
        .series("dwcp_bandwidth_available_bytes", flat(100.0, n), flat(100.0, n))
        .at(8, 0.95, &[]),
    );
    v.push(
        alert(
            "dwcp-protocol",
            "DWCPLowCompressionRatio",
            "004",
            "dwcp_compression_ratio < 1.5",
            "10m",
            "info",
            Some("dwcp"),
            "DWCP compression ratio is low",
        )
        .desc("Compression ratio is {{ $value | humanize }} (expected: > 1.5)")
        .annotation("runbook_url", rb("dwcp-compression"))
        .series("dwcp_compression_ratio", flat(1.2, n), flat(2.5, n))
        .at(13, 1.2, &[]),
    );
    v.push(
        alert("dwcp-protocol", "DWCPStreamOverflow", "004",
            "dwcp_streams_active / dwcp_streams_max > 0.9",
            "5m", "warning", Some("dwcp"),
            "DWCP stream count approaching limit")
        .desc("Active streams at {{ $value | humanizePercentage }} of dwcp_streams_max")
        .annotation("runbook_url", rb("dwcp-streams"))
        .fix("The description used `{{ dwcp_streams_max }}`, which is not a template (Prometheus refuses the rule file): the expression now yields the fill ratio and the description prints it as a percentage of `dwcp_streams_max`.")
        .series("dwcp_streams_active", flat(95.0, n), flat(50.0, n))
        .series("dwcp_streams_max", flat(100.0, n), flat(100.0, n))
        .at(8, 0.95, &[]),
    );

    // --- seed 002: v3 SLA (critical and warning) -----------------------------------------
    let mig_ok = r#"dwcp_v3_migrations_total{mode="datacenter",status="success"}"#;
    let mig_fail = r#"dwcp_v3_migrations_total{mode="datacenter",status="failure"}"#;
    let lat_b = |le: &str| {
        format!(r#"dwcp_v3_component_latency_seconds_bucket{{component="amst",le="{le}"}}"#)
    };
    v.push(
        alert(
            "dwcp-v3-sla",
            "SLAAvailabilityViolation",
            "002",
            format!("sla:availability:5m < {avail}"),
            "5m",
            "critical",
            Some("dwcp-v3"),
            format!("DWCP v3 availability below {}", pct(sla.availability)),
        )
        .desc(format!(
            "Availability {{{{ $value | humanizePercentage }}}} over the last 5 minutes (SLA: {})",
            pct(sla.availability)
        ))
        .annotation("runbook", "docs: SLAAvailabilityViolation (seed 002)")
        .series(mig_ok, ramp(990.0, n), ramp(1000.0, n))
        .series(mig_fail, ramp(10.0, n), flat(0.0, n))
        .at(12, 0.99, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-sla",
            "SLALatencyViolation",
            "002",
            format!("sla:latency_p99:5m > {lat}"),
            "3m",
            "critical",
            Some("dwcp-v3"),
            format!("DWCP v3 P99 latency above {lat_ms}ms"),
        )
        .desc(format!(
            "P99 latency {{{{ $value | humanize }}}}s over the last 5 minutes (SLA: {lat_ms}ms)"
        ))
        .annotation("runbook", "docs: SLALatencyViolation (seed 002)")
        .series(lat_b("0.1"), flat(0.0, n), ramp(100.0, n))
        .series(lat_b("0.25"), ramp(100.0, n), ramp(100.0, n))
        .series(lat_b("+Inf"), ramp(100.0, n), ramp(100.0, n))
        .at(12, 0.1 + 0.15 * 0.99, &[]),
    );
    v.push(
        alert("dwcp-v3-sla", "ByzantineNodeDetected", "002",
            "increase(dwcp_v3_acp_byzantine_detections_total[5m]) > 0",
            "", "critical", Some("acp"),
            "Byzantine behaviour detected by ACP on {{ $labels.node }}")
        .desc("ACP flagged node {{ $labels.node }} as Byzantine in the last 5 minutes: isolate it (seed 002 runbook)")
        .series(r#"dwcp_v3_acp_byzantine_detections_total{node="node-7"}"#, once, flat(0.0, n))
        .at(4, 1.0, &[("node", "node-7")]),
    );
    v.push(
        alert("dwcp-v3-sla", "DWCPv3AllReplicasDown", "002",
            r#"sum by (job) (up{job="dwcp-v3"}) == 0"#,
            "1m", "critical", Some("dwcp-v3"),
            "All DWCP v3 replicas are down")
        .desc("No target of job {{ $labels.job }} answers its scrape: roll back to v1 (seed 002 emergency runbook)")
        .label("escalation", "emergency")
        .fix("The seed names the alert (severity EMERGENCY) without an expression: all targets of the v3 job down; `severity: critical` plus `escalation: emergency`, since the routing knows no EMERGENCY severity.")
        .series(r#"up{job="dwcp-v3",instance="dwcp-v3-0:8080"}"#, flat(0.0, n), flat(0.0, n))
        .series(r#"up{job="dwcp-v3",instance="dwcp-v3-1:8080"}"#, flat(0.0, n), flat(1.0, n))
        .at(4, 0.0, &[("job", "dwcp-v3")]),
    );
    v.push(
        alert("dwcp-v3-sla", "HighLatencyWarning", "002",
            format!("sla:latency_p99:5m > {}", num(sla.latency_p99_seconds * 0.8)),
            "10m", "warning", Some("dwcp-v3"),
            format!("DWCP v3 P99 latency above {}ms", num(sla.latency_p99_seconds * 800.0)))
        .desc("P99 latency {{ $value | humanize }}s over the last 5 minutes: watch for escalation to SLALatencyViolation")
        .series(lat_b("0.05"), flat(0.0, n), ramp(100.0, n))
        .series(lat_b("0.1"), ramp(100.0, n), ramp(100.0, n))
        .series(lat_b("+Inf"), ramp(100.0, n), ramp(100.0, n))
        .at(17, 0.05 + 0.05 * 0.99, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-sla",
            "ThroughputDegradation",
            "002",
            format!("dwcp_v3:throughput_avg:5m < {tput}"),
            "10m",
            "warning",
            Some("dwcp-v3"),
            format!("DWCP v3 throughput below {tput_text}"),
        )
        .desc("Throughput {{ $value | humanize }}B/s averaged over 5 minutes")
        .series(
            r#"dwcp_v3_bytes_transferred_total{component="amst",direction="tx"}"#,
            ramp(120e9, n),
            ramp(180e9, n),
        )
        .at(16, 2e9, &[]),
    );

    // --- seed 003: v3 critical -------------------------------------------------------------
    let ops = r#"dwcp_v3_component_operations_total{component="amst"}"#;
    let errs = r#"dwcp_v3_component_errors_total{component="amst"}"#;
    v.push(
        alert("dwcp-v3-critical", "DWCPv3RolloutNoGo", "003",
            "dwcp_v3:go_no_go:5m == 0",
            "1m", "critical", Some("dwcp-v3"),
            "DWCP v3 rollout NO-GO: an SLA is violated")
        .desc(format!("Availability (>= {}), P99 latency (<= {lat_ms}ms) or error rate (<= {}) is out of its SLA: halt the rollout", pct(sla.availability), pct(sla.error_rate)))
        .fix("Seed 002's GO/NO-GO query joins three filters with `and`, which returns nothing (not NO-GO) when an SLA fails: the recording rule `dwcp_v3:go_no_go:5m` multiplies `bool` comparisons (1 GO, 0 NO-GO) and this alert fires on 0.")
        .series(mig_ok, ramp(990.0, n), ramp(1000.0, n))
        .series(mig_fail, ramp(10.0, n), flat(0.0, n))
        .series(lat_b("0.05"), ramp(100.0, n), ramp(100.0, n))
        .series(lat_b("+Inf"), ramp(100.0, n), ramp(100.0, n))
        .series(ops, ramp(600.0, n), ramp(600.0, n))
        .series(errs, flat(0.0, n), flat(0.0, n))
        .at(8, 0.0, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-critical",
            "DWCPv3LatencyP99Critical",
            "003",
            "sla:latency_p99:5m > 0.5",
            "2m",
            "critical",
            Some("dwcp-v3"),
            "DWCP v3 P99 latency above 500ms",
        )
        .desc("P99 latency {{ $value | humanize }}s for 2 minutes")
        .series(lat_b("0.5"), flat(0.0, n), ramp(100.0, n))
        .series(lat_b("1"), ramp(100.0, n), ramp(100.0, n))
        .series(lat_b("+Inf"), ramp(100.0, n), ramp(100.0, n))
        .at(10, 0.5 + 0.5 * 0.99, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-critical",
            "DWCPv3ThroughputCriticalLow",
            "003",
            "dwcp_v3:throughput_avg:5m < 2e+09",
            "3m",
            "critical",
            Some("dwcp-v3"),
            "DWCP v3 throughput below 2GB/s",
        )
        .desc("Throughput {{ $value | humanize }}B/s averaged over 5 minutes")
        .series(
            r#"dwcp_v3_bytes_transferred_total{component="amst",direction="tx"}"#,
            ramp(90e9, n),
            ramp(180e9, n),
        )
        .at(10, 1.5e9, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-critical",
            "DWCPv3ErrorRateCritical",
            "003",
            "dwcp_v3:error_rate:5m > 10",
            "1m",
            "critical",
            Some("dwcp-v3"),
            "DWCP v3 error rate above 10 errors/s",
        )
        .desc("{{ $value | humanize }} errors per second over the last 5 minutes")
        .series(errs, ramp(900.0, n), ramp(120.0, n))
        .at(8, 15.0, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-critical",
            "DWCPv3ComponentDown",
            "003",
            "dwcp_v3_component_health == 0",
            "1m",
            "critical",
            None,
            "DWCP v3 component {{ $labels.component }} is down",
        )
        .series(
            r#"dwcp_v3_component_health{component="hde"}"#,
            flat(0.0, n),
            flat(1.0, n),
        )
        .at(4, 0.0, &[("component", "hde")]),
    );
    v.push(
        alert(
            "dwcp-v3-critical",
            "DWCPv3ConsensusFailure",
            "003",
            r#"increase(dwcp_v3_component_errors_total{component="acp"}[5m]) > 0"#,
            "1m",
            "critical",
            Some("acp"),
            "ACP consensus failures",
        )
        .desc("{{ $value | humanize }} ACP errors in the last 5 minutes")
        .series(
            r#"dwcp_v3_component_errors_total{component="acp"}"#,
            once,
            flat(0.0, n),
        )
        .at(5, 1.0, &[("component", "acp")]),
    );
    v.push(
        alert("dwcp-v3-critical", "DWCPv3MemoryLeakSuspected", "003",
            r#"dwcp_memory_usage_bytes{type="heap"} > 1.05 * (dwcp_memory_usage_bytes{type="heap"} offset 30m)"#,
            "10m", "critical", Some("dwcp-v3"),
            "DWCP v3 heap grew more than 5% in 30 minutes")
        .desc("Heap usage {{ $value | humanize1024 }}B, more than 5% above its level 30 minutes ago")
        .series(r#"dwcp_memory_usage_bytes{type="heap"}"#, "1000000000+10000000x60", "1000000000x60")
        .at(45, 1.45e9, &[("type", "heap")]),
    );

    // --- seed 003: v3 warning ----------------------------------------------------------------
    v.push(
        alert("dwcp-v3-warning", "DWCPv3LatencyP95Elevated", "003",
            "histogram_quantile(0.95, sum by (le) (rate(dwcp_v3_component_latency_seconds_bucket[5m]))) > 0.3",
            "5m", "warning", Some("dwcp-v3"),
            "DWCP v3 P95 latency above 300ms")
        .desc("P95 latency {{ $value | humanize }}s over the last 5 minutes")
        .series(lat_b("0.3"), flat(0.0, n), ramp(100.0, n))
        .series(lat_b("0.5"), ramp(100.0, n), ramp(100.0, n))
        .series(lat_b("+Inf"), ramp(100.0, n), ramp(100.0, n))
        .at(12, 0.3 + 0.2 * 0.95, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-warning",
            "DWCPv3ThroughputSuboptimal",
            "003",
            "dwcp_v3:throughput_avg:5m < 2.2e+09",
            "10m",
            "warning",
            Some("dwcp-v3"),
            "DWCP v3 throughput below 2.2GB/s",
        )
        .desc("Throughput {{ $value | humanize }}B/s averaged over 5 minutes")
        .series(
            r#"dwcp_v3_bytes_transferred_total{component="amst",direction="tx"}"#,
            ramp(126e9, n),
            ramp(180e9, n),
        )
        .at(16, 2.1e9, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-warning",
            "DWCPv3ErrorRateElevated",
            "003",
            "dwcp_v3:error_rate:5m > 1",
            "5m",
            "warning",
            Some("dwcp-v3"),
            "DWCP v3 error rate above 1 error/s",
        )
        .desc("{{ $value | humanize }} errors per second over the last 5 minutes")
        .series(errs, ramp(120.0, n), ramp(30.0, n))
        .at(12, 2.0, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-warning",
            "DWCPv3HighCPUUsage",
            "003",
            r#"dwcp_v3_resource_utilization{resource="cpu"} > 0.8"#,
            "10m",
            "warning",
            Some("dwcp-v3"),
            "DWCP v3 CPU usage above 80%",
        )
        .desc("CPU at {{ $value | humanizePercentage }}")
        .series(
            r#"dwcp_v3_resource_utilization{resource="cpu"}"#,
            flat(0.9, n),
            flat(0.5, n),
        )
        .at(13, 0.9, &[("resource", "cpu")]),
    );
    v.push(
        alert("dwcp-v3-warning", "DWCPv3RolloutStalled", "003",
            "dwcp_v3_rollout_progress_ratio > 0 < 1 and delta(dwcp_v3_rollout_progress_ratio[1h]) <= 0",
            "30m", "warning", Some("dwcp-v3"),
            "DWCP v3 rollout stalled in {{ $labels.region }}")
        .desc("Rollout stage {{ $labels.stage }} has been at {{ $value | humanizePercentage }} for an hour")
        .series(r#"dwcp_v3_rollout_progress_ratio{region="eu-west",stage="50pct"}"#, "0.5x60", "0.1+0.01x60")
        .at(40, 0.5, &[("region", "eu-west"), ("stage", "50pct")]),
    );

    // --- seed 003: SLA -------------------------------------------------------------------------
    v.push(
        alert(
            "dwcp-v3-sla-compliance",
            "SLAThroughputViolation",
            "003",
            format!("dwcp_v3:throughput_avg:5m < {tput}"),
            "5m",
            "critical",
            Some("dwcp-v3"),
            format!("DWCP v3 throughput SLA violated (< {tput_text})"),
        )
        .desc("Throughput {{ $value | humanize }}B/s averaged over 5 minutes")
        .series(
            r#"dwcp_v3_bytes_transferred_total{component="amst",direction="tx"}"#,
            ramp(120e9, n),
            ramp(180e9, n),
        )
        .at(12, 2e9, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-sla-compliance",
            "SLAErrorRateViolation",
            "003",
            format!("sla:error_rate:5m > {err}"),
            "5m",
            "critical",
            Some("dwcp-v3"),
            format!(
                "DWCP v3 error rate SLA violated (> {})",
                pct(sla.error_rate)
            ),
        )
        .desc("{{ $value | humanizePercentage }} of operations failed over the last 5 minutes")
        .series(ops, ramp(600.0, n), ramp(600.0, n))
        .series(errs, ramp(12.0, n), ramp(3.0, n))
        .at(12, 0.02, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-sla-compliance",
            "SLAComplianceLow",
            "003",
            "dwcp_v3:sla_compliance_overall:5m < 0.95",
            "5m",
            "warning",
            Some("dwcp-v3"),
            "Overall DWCP v3 SLA compliance below 95%",
        )
        .desc("{{ $value | humanizePercentage }} of the SLIs meet their targets")
        .series(
            r#"dwcp_sla_compliance{sli="availability",window="5m"}"#,
            flat(1.0, n),
            flat(1.0, n),
        )
        .series(
            r#"dwcp_sla_compliance{sli="latency_p99",window="5m"}"#,
            flat(0.0, n),
            flat(1.0, n),
        )
        .at(8, 0.5, &[]),
    );

    // --- seed 003: components --------------------------------------------------------------------
    v.push(
        alert(
            "dwcp-v3-components",
            "DWCPv3AMSTStreamSaturation",
            "003",
            "dwcp_v3_active_streams / dwcp_v3_stream_limit > 0.9",
            "5m",
            "warning",
            Some("amst"),
            "AMST streams near their limit",
        )
        .desc("Active streams at {{ $value | humanizePercentage }} of dwcp_v3_stream_limit")
        .series("dwcp_v3_active_streams", flat(95.0, n), flat(40.0, n))
        .series("dwcp_v3_stream_limit", flat(100.0, n), flat(100.0, n))
        .at(8, 0.95, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-components",
            "DWCPv3HDECompressionRatioLow",
            "003",
            "dwcp_v3_hde_compression_ratio < 1.5",
            "10m",
            "warning",
            Some("hde"),
            "HDE compression ratio low",
        )
        .desc("HDE compression ratio {{ $value | humanize }} (expected: > 1.5)")
        .series("dwcp_v3_hde_compression_ratio", flat(1.1, n), flat(3.0, n))
        .at(13, 1.1, &[]),
    );
    v.push(
        alert(
            "dwcp-v3-components",
            "DWCPv3PBAPredictionAccuracyLow",
            "003",
            "dwcp_v3_prediction_accuracy < 0.85",
            "10m",
            "warning",
            Some("pba"),
            "PBA bandwidth prediction accuracy low",
        )
        .desc("Prediction accuracy {{ $value | humanizePercentage }} (expected: > 85%)")
        .series("dwcp_v3_prediction_accuracy", flat(0.7, n), flat(0.95, n))
        .at(13, 0.7, &[]),
    );
    v.push(
        alert("dwcp-v3-components", "DWCPv3ACPConsensusLatencyHigh", "003",
            r#"histogram_quantile(0.99, sum by (le) (rate(dwcp_v3_component_latency_seconds_bucket{component="acp"}[5m]))) > 0.08"#,
            "5m", "warning", Some("acp"),
            "ACP consensus P99 latency above 80ms")
        .desc("ACP P99 latency {{ $value | humanize }}s over the last 5 minutes")
        .series(r#"dwcp_v3_component_latency_seconds_bucket{component="acp",le="0.05"}"#, flat(0.0, n), ramp(100.0, n))
        .series(r#"dwcp_v3_component_latency_seconds_bucket{component="acp",le="0.1"}"#, ramp(100.0, n), ramp(100.0, n))
        .series(r#"dwcp_v3_component_latency_seconds_bucket{component="acp",le="+Inf"}"#, ramp(100.0, n), ramp(100.0, n))
        .at(12, 0.05 + 0.05 * 0.99, &[]),
    );

    // --- seed 003: anomaly (the same rules as docs/rules/dwcp-anomaly.rules.yml) -------------------
    v.push(
        alert("dwcp-v3-anomaly", "DWCPLatencyAnomaly", "003",
            r#"increase(dwcp_anomaly_detections_total{metric=~".*(_seconds|latency).*"}[5m]) > 0"#,
            "", "", None,
            "Latency anomaly on {{ $labels.metric }} ({{ $labels.severity }})")
        .desc("The z-score detector watching {{ $labels.metric }} on {{ $labels.instance }} raised {{ $value | humanize }} alert(s) in the last 5 minutes. Current z-score: dwcp_anomaly_zscore{metric=\"{{ $labels.metric }}\"}.")
        .label("category", "anomaly")
        .series(r#"dwcp_anomaly_detections_total{instance="a:9898",metric="dwcp_request_duration_seconds:p99:migrate",severity="critical"}"#, once, flat(0.0, n))
        .at(4, 1.0, &[("instance", "a:9898"), ("metric", "dwcp_request_duration_seconds:p99:migrate"), ("severity", "critical")]),
    );
    v.push(
        alert("dwcp-v3-anomaly", "DWCPThroughputAnomaly", "003",
            r#"increase(dwcp_anomaly_detections_total{metric=~".*throughput.*"}[5m]) > 0"#,
            "", "", None,
            "Throughput anomaly on {{ $labels.metric }} ({{ $labels.severity }})")
        .desc("The z-score detector watching {{ $labels.metric }} on {{ $labels.instance }} raised {{ $value | humanize }} alert(s) in the last 5 minutes.")
        .label("category", "anomaly")
        .series(r#"dwcp_anomaly_detections_total{instance="b:9898",metric="dwcp_throughput_bytes_per_second:mean",severity="warning"}"#, once, flat(0.0, n))
        .at(4, 1.0, &[("instance", "b:9898"), ("metric", "dwcp_throughput_bytes_per_second:mean"), ("severity", "warning")]),
    );
    v.push(
        alert("dwcp-v3-anomaly", "DWCPMultipleAnomalies", "003",
            "sum by (job, instance) (increase(dwcp_anomaly_detections_total[10m])) >= 3",
            "", "critical", None,
            "{{ $value | humanize }} anomalies on {{ $labels.instance }} in 10 minutes: the system looks unstable")
        .desc("Several detectors on {{ $labels.instance }} ({{ $labels.job }}) alerted within 10 minutes. Look at dwcp_anomaly_detections_total by metric.")
        .label("category", "anomaly")
        .series(r#"dwcp_anomaly_detections_total{job="dwcp-manager",instance="b:9898",metric="m1",severity="warning"}"#, "0 0 0 1 2 3x20", "0 0 0 1 2x20")
        .at(6, 3.0, &[("instance", "b:9898"), ("job", "dwcp-manager")]),
    );

    // --- seed 003: meta ----------------------------------------------------------------------------
    v.push(
        alert("dwcp-v3-meta", "DWCPv3ScrapeFailures", "003",
            "avg by (job) (up) < 0.9",
            "10m", "warning", Some("monitoring"),
            "Scrapes of {{ $labels.job }} failing")
        .desc("Only {{ $value | humanizePercentage }} of the {{ $labels.job }} targets answer their scrapes")
        .series(r#"up{job="bullshark-consensus",instance="a:8080"}"#, flat(0.0, n), flat(1.0, n))
        .series(r#"up{job="bullshark-consensus",instance="b:8080"}"#, flat(1.0, n), flat(1.0, n))
        .at(13, 0.5, &[("job", "bullshark-consensus")]),
    );
    v.push(
        alert(
            "dwcp-v3-meta",
            "DWCPv3MetricsCollectionLatencyHigh",
            "003",
            "max by (job) (scrape_duration_seconds) > 1",
            "10m",
            "warning",
            Some("monitoring"),
            "Scrapes of {{ $labels.job }} take over a second",
        )
        .desc("The slowest {{ $labels.job }} scrape took {{ $value | humanize }}s")
        .series(
            r#"scrape_duration_seconds{job="dwcp-manager",instance="a:8080"}"#,
            flat(2.0, n),
            flat(0.01, n),
        )
        .at(13, 2.0, &[("job", "dwcp-manager")]),
    );
    v.push(
        alert(
            "dwcp-v3-meta",
            "DWCPv3AlertmanagerDown",
            "003",
            r#"up{job="alertmanager"} == 0"#,
            "5m",
            "critical",
            Some("monitoring"),
            "Alertmanager {{ $labels.instance }} is down",
        )
        .desc("Alerts are not being delivered while Alertmanager is down")
        .series(
            r#"up{job="alertmanager",instance="alertmanager:9093"}"#,
            flat(0.0, n),
            flat(1.0, n),
        )
        .at(
            8,
            0.0,
            &[("instance", "alertmanager:9093"), ("job", "alertmanager")],
        ),
    );

    // --- generated: multi-window multi-burn-rate SLO alerts ---------------------------------------
    v.extend(slo_alerts(cfg));

    if let Some(f) = &cfg.for_override {
        for a in &mut v {
            if !a.for_.is_empty() {
                a.for_ = f.clone();
            }
        }
    }
    v
}

/// The SLO error-budget burn windows: (alert suffix, severity, for, [(long, short, factor)]).
/// One burn-rate condition: long window, short window, burn factor.
type BurnWindow = (&'static str, &'static str, f64);

const BURNS: [(&str, &str, &str, [BurnWindow; 2]); 2] = [
    (
        "Fast",
        "critical",
        "2m",
        [("1h", "5m", 14.4), ("6h", "30m", 6.0)],
    ),
    (
        "Slow",
        "warning",
        "15m",
        [("1d", "2h", 3.0), ("3d", "6h", 1.0)],
    ),
];

/// The windows the SLO ratio rules are recorded for.
const SLO_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

fn slo_alerts(cfg: &OpsConfig) -> Vec<Alert> {
    let avail_budget = 1.0 - cfg.sla.availability;
    let lat_budget = 0.01; // P99 target: 99 % of operations under the latency target
    let mut v = Vec::new();
    for (sli, record, budget, name, what) in [
        (
            "availability",
            "sla:migration_errors",
            avail_budget,
            "DWCPAvailabilityBudgetBurn",
            "failed migrations",
        ),
        (
            "latency",
            "sla:latency_slow",
            lat_budget,
            "DWCPLatencyBudgetBurn",
            "operations slower than the P99 target",
        ),
    ] {
        for (speed, severity, for_, pairs) in BURNS {
            let expr = pairs
                .iter()
                .map(|(long, short, f)| {
                    let thr = num(f * budget);
                    format!("({record}:ratio_rate{long} > {thr} and {record}:ratio_rate{short} > {thr})")
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let name = format!("{name}{speed}");
            let windows = pairs
                .iter()
                .map(|(l, s, f)| format!("{}x over {l} and {s}", num(*f)))
                .collect::<Vec<_>>()
                .join(", or ");
            let (ok, bad) = if sli == "availability" {
                (
                    r#"dwcp_v3_migrations_total{mode="datacenter",status="success"}"#.to_owned(),
                    r#"dwcp_v3_migrations_total{mode="datacenter",status="failure"}"#.to_owned(),
                )
            } else {
                let le = num(cfg.sla.latency_p99_seconds);
                (
                    format!(
                        r#"dwcp_v3_component_latency_seconds_bucket{{component="amst",le="{le}"}}"#
                    ),
                    r#"dwcp_v3_component_latency_seconds_count{component="amst"}"#.to_owned(),
                )
            };
            let mut b = alert(
                "dwcp-slo",
                name,
                "generated",
                expr,
                for_,
                severity,
                Some("dwcp-v3"),
                format!(
                    "DWCP v3 {sli} error budget burning {}",
                    speed.to_lowercase()
                ),
            )
            .desc(format!(
                "{{{{ $value | humanizePercentage }}}} of {what} (budget {}): {windows}",
                pct(budget)
            ))
            .label("slo", sli);
            b = if sli == "availability" {
                // 10 % of migrations fail (fires); 0.05 % fail (stays silent).
                b.series(ok, ramp(900.0, 200), ramp(1999.0, 200)).series(
                    bad,
                    ramp(100.0, 200),
                    ramp(1.0, 200),
                )
            } else {
                // 20 % of operations over the target (fires); 0.1 % (stays silent).
                b.series(ok, ramp(800.0, 200), ramp(999.0, 200)).series(
                    bad,
                    ramp(1000.0, 200),
                    ramp(1000.0, 200),
                )
            };
            let at = if speed == "Fast" { 10 } else { 25 };
            let value = if sli == "availability" { 0.1 } else { 0.2 };
            v.push(b.at(at, value, &[]));
        }
    }
    v
}

fn le_matcher(target: f64) -> String {
    if target.fract() == 0.0 {
        // Text format writes `le="1"`, OpenMetrics `le="1.0"`.
        format!(r#"le=~"{0}|{0}.0""#, num(target))
    } else {
        format!(r#"le="{}""#, num(target))
    }
}

// ---------------------------------------------------------------------------------------
// Recording rules
// ---------------------------------------------------------------------------------------

/// Every recording rule, in file order.
pub fn recording_rules(cfg: &OpsConfig) -> Vec<Recording> {
    let sla = cfg.sla;
    let mut v = Vec::new();
    let mut r = |group, record: &str, expr: String, source| {
        v.push(Recording {
            group,
            record: record.to_owned(),
            expr,
            source,
        });
    };
    r("dwcp-sla", "sla:availability:5m",
        r#"sum(rate(dwcp_v3_migrations_total{status="success"}[5m])) / sum(rate(dwcp_v3_migrations_total[5m]))"#.into(),
        "seed 002 (successful / total migrations)");
    r("dwcp-sla", "sla:latency_p99:5m",
        "histogram_quantile(0.99, sum by (le) (rate(dwcp_v3_component_latency_seconds_bucket[5m])))".into(),
        "seed 002 (P99 of all operation latencies)");
    r("dwcp-sla", "sla:error_rate:5m",
        "sum(rate(dwcp_v3_component_errors_total[5m])) / sum(rate(dwcp_v3_component_operations_total[5m]))".into(),
        "seed 002 (errors / total operations)");
    r("dwcp-sla", "sla:error_budget_remaining:30d",
        format!("1 - (sum(increase(dwcp_v3_component_errors_total[30d])) / sum(increase(dwcp_v3_component_operations_total[30d]))) / {}", num(sla.error_rate)),
        "seed 002's error budget, fixed: from the errors of the whole 30-day window, not the current rate");
    r(
        "dwcp-sla",
        "sla:availability_budget_remaining:30d",
        format!(
            r#"1 - (sum(increase(dwcp_v3_migrations_total{{status="failure"}}[30d])) / sum(increase(dwcp_v3_migrations_total[30d]))) / {}"#,
            num(1.0 - sla.availability)
        ),
        "catalog (the availability budget of seed 000's 43.2 minutes/month, over 30 days)",
    );
    r("dwcp-sla", "dwcp_v3:go_no_go:5m",
        format!("(sla:availability:5m >= bool {}) * (sla:latency_p99:5m <= bool {}) * (sla:error_rate:5m <= bool {})",
            num(sla.availability), num(sla.latency_p99_seconds), num(sla.error_rate)),
        "seed 002's GO/NO-GO query, fixed: 1 GO, 0 NO-GO (the seed's `and` of filters returns nothing on NO-GO)");
    for (q, name) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        r("dwcp-v3-aggregations", &format!("dwcp_v3:migration_latency_{name}:5m"),
            format!("histogram_quantile({q}, sum by (le) (rate(dwcp_v3_migration_latency_seconds_bucket[5m])))"),
            "seed 003");
    }
    r(
        "dwcp-v3-aggregations",
        "dwcp_v3:throughput_avg:5m",
        "sum(rate(dwcp_v3_bytes_transferred_total[5m]))".into(),
        "seed 003 (bytes/s averaged over 5 minutes)",
    );
    r(
        "dwcp-v3-aggregations",
        "dwcp_v3:error_rate:5m",
        "sum(rate(dwcp_v3_component_errors_total[5m]))".into(),
        "seed 003 (errors/s: its alerts say \">10 errors/sec\")",
    );
    r(
        "dwcp-v3-aggregations",
        "dwcp_v3:sla_compliance_overall:5m",
        r#"avg(dwcp_sla_compliance{window="5m"})"#.into(),
        "seed 003 (fraction of SLIs in compliance)",
    );
    let le = le_matcher(sla.latency_p99_seconds);
    for w in SLO_WINDOWS {
        r(
            "dwcp-slo-ratios",
            &format!("sla:migration_errors:ratio_rate{w}"),
            format!(
                r#"sum(rate(dwcp_v3_migrations_total{{status="failure"}}[{w}])) / sum(rate(dwcp_v3_migrations_total[{w}]))"#
            ),
            "generated (availability SLO, SRE workbook)",
        );
    }
    for w in SLO_WINDOWS {
        r("dwcp-slo-ratios", &format!("sla:latency_slow:ratio_rate{w}"),
            format!("1 - sum(rate(dwcp_v3_component_latency_seconds_bucket{{{le}}}[{w}])) / sum(rate(dwcp_v3_component_latency_seconds_count[{w}]))"),
            "generated (latency SLO, SRE workbook)");
    }
    v
}

// ---------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------

const HEADER: &str = "# Generated by `cargo run --example gen_ops` from dwcp_telemetry::catalog::ops; do not edit.\n";

fn groups_in_order<T>(items: &[T], group: impl Fn(&T) -> &'static str) -> Vec<&'static str> {
    let mut gs: Vec<&'static str> = Vec::new();
    for i in items {
        let g = group(i);
        if !gs.contains(&g) {
            gs.push(g);
        }
    }
    gs
}

fn alert_rules_yaml(cfg: &OpsConfig, alerts: &[Alert]) -> String {
    let mut s = String::from(HEADER);
    s.push_str("# Alerting rules for the DWCP systems (seeds 000-004; fixes listed in docs/catalog.md).\ngroups:\n");
    for g in groups_in_order(alerts, |a| a.group) {
        let _ = writeln!(
            s,
            "  - name: {g}\n    interval: {}\n    rules:",
            cfg.rule_interval
        );
        for a in alerts.iter().filter(|a| a.group == g) {
            if a.seed == "generated" {
                s.push_str(
                    "      # generated from the SLA targets (SRE workbook: multi-window, multi-burn-rate)\n",
                );
            } else {
                let fixed = if a.fix.is_empty() {
                    ""
                } else {
                    "; fixed, see docs/catalog.md"
                };
                let _ = writeln!(s, "      # seed {}{fixed}", a.seed);
            }
            let _ = writeln!(
                s,
                "      - alert: {}\n        expr: {}",
                a.name,
                yq(&a.expr)
            );
            if !a.for_.is_empty() {
                let _ = writeln!(s, "        for: {}", a.for_);
            }
            let labels: Vec<_> = a.labels.iter().filter(|(_, v)| !v.is_empty()).collect();
            if !labels.is_empty() {
                s.push_str("        labels:\n");
                for (k, v) in labels {
                    let _ = writeln!(s, "          {k}: {}", yq(v));
                }
            }
            s.push_str("        annotations:\n");
            for (k, v) in &a.annotations {
                let _ = writeln!(s, "          {k}: {}", yq(v));
            }
        }
    }
    s
}

fn recording_rules_yaml(cfg: &OpsConfig, rules: &[Recording]) -> String {
    let mut s = String::from(HEADER);
    s.push_str("# Recording rules: the seeds' SLA and dwcp_v3: aggregations, and the SLO ratio windows.\ngroups:\n");
    for g in groups_in_order(rules, |r| r.group) {
        let _ = writeln!(
            s,
            "  - name: {g}\n    interval: {}\n    rules:",
            cfg.rule_interval
        );
        for r in rules.iter().filter(|r| r.group == g) {
            let _ = writeln!(s, "      # {}", r.source);
            let _ = writeln!(
                s,
                "      - record: {}\n        expr: {}",
                r.record,
                yq(&r.expr)
            );
        }
    }
    s
}

fn unit_tests_yaml(alerts: &[Alert]) -> String {
    let mut s = String::from(HEADER);
    s.push_str("# `promtool test rules dwcp-alerts.test.yml`: for every alert, one input that fires it\n# (exact labels and annotations) and one that leaves it silent.\n");
    s.push_str("rule_files:\n  - dwcp-alerts.rules.yml\n  - dwcp-recording.rules.yml\nevaluation_interval: 1m\ntests:\n");
    for a in alerts {
        for firing in [true, false] {
            let t = &a.test;
            let _ = writeln!(
                s,
                "  # {} {}",
                a.name,
                if firing { "fires" } else { "stays silent" }
            );
            s.push_str("  - interval: 1m\n    input_series:\n");
            for (series, fire, quiet) in &t.series {
                let _ = writeln!(
                    s,
                    "      - series: {}\n        values: {}",
                    yq(series),
                    yq(if firing { fire } else { quiet })
                );
            }
            let _ = writeln!(
                s,
                "    alert_rule_test:\n      - eval_time: {}m\n        alertname: {}",
                t.at_minutes, a.name
            );
            if !firing {
                s.push_str("        exp_alerts: []\n");
                continue;
            }
            let mut labels: Vec<(&str, String)> = t
                .out_labels
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect();
            for (k, v) in &a.labels {
                if !v.is_empty() {
                    labels.retain(|(l, _)| l != k);
                    labels.push((k, v.clone()));
                }
            }
            labels.sort();
            s.push_str("        exp_alerts:\n          - exp_labels:\n");
            for (k, v) in &labels {
                let _ = writeln!(s, "              {k}: {}", yq(v));
            }
            // Templates see the expression's labels, before the rule's own are applied.
            let expr_labels: Vec<(&str, String)> = t
                .out_labels
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect();
            s.push_str("            exp_annotations:\n");
            for (k, v) in &a.annotations {
                let _ = writeln!(
                    s,
                    "              {k}: {}",
                    yq(&render(v, &expr_labels, t.value))
                );
            }
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// JSON (dashboards)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

fn s(x: impl Into<String>) -> J {
    J::Str(x.into())
}

impl J {
    fn write(&self, out: &mut String, indent: usize) {
        let pad = |n: usize| "  ".repeat(n);
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&num(*n)),
            J::Str(t) => {
                out.push('"');
                for c in t.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::Arr(items) if items.is_empty() => out.push_str("[]"),
            J::Arr(items) => {
                out.push_str("[\n");
                for (i, it) in items.iter().enumerate() {
                    out.push_str(&pad(indent + 1));
                    it.write(out, indent + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push(']');
            }
            J::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            J::Obj(fields) => {
                out.push_str("{\n");
                for (i, (k, v)) in fields.iter().enumerate() {
                    let _ = write!(out, "{}\"{k}\": ", pad(indent + 1));
                    v.write(out, indent + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(indent));
                out.push('}');
            }
        }
    }
}

/// A panel: type, title, unit, targets `(expr, legend)`, thresholds `(from, color)` and
/// value mappings `(value, text, color)`.
struct Panel {
    kind: &'static str,
    title: String,
    unit: &'static str,
    targets: Vec<(String, String)>,
    thresholds: Vec<(Option<f64>, &'static str)>,
    mappings: Vec<(&'static str, &'static str, &'static str)>,
    width: u32,
}

fn panel(kind: &'static str, title: &str, unit: &'static str) -> Panel {
    Panel {
        kind,
        title: title.to_owned(),
        unit,
        targets: Vec::new(),
        thresholds: Vec::new(),
        mappings: Vec::new(),
        width: if matches!(kind, "stat" | "gauge") {
            6
        } else {
            12
        },
    }
}

impl Panel {
    fn q(mut self, expr: impl Into<String>, legend: &str) -> Self {
        self.targets.push((expr.into(), legend.to_owned()));
        self
    }
    fn th(mut self, from: Option<f64>, color: &'static str) -> Self {
        self.thresholds.push((from, color));
        self
    }
    fn map(mut self, value: &'static str, text: &'static str, color: &'static str) -> Self {
        self.mappings.push((value, text, color));
        self
    }
    fn wide(mut self) -> Self {
        self.width = 24;
        self
    }
}

struct Dashboard {
    file: &'static str,
    uid: &'static str,
    title: &'static str,
    refresh: &'static str,
    time_from: &'static str,
    variables: Vec<J>,
    rows: Vec<(&'static str, Vec<Panel>)>,
}

fn datasource() -> J {
    J::Obj(vec![("type", s("prometheus")), ("uid", s("${datasource}"))])
}

fn custom_var(name: &'static str, label: &'static str, values: &[&str], multi: bool) -> J {
    let options: Vec<J> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            J::Obj(vec![
                ("selected", J::Bool(i == 0 && !multi)),
                ("text", s(*v)),
                ("value", s(*v)),
            ])
        })
        .collect();
    let current = if multi {
        J::Obj(vec![
            ("text", J::Arr(vec![s("All")])),
            ("value", J::Arr(vec![s("$__all")])),
        ])
    } else {
        J::Obj(vec![("text", s(values[0])), ("value", s(values[0]))])
    };
    J::Obj(vec![
        ("name", s(name)),
        ("label", s(label)),
        (
            "type",
            s(if name == "interval" {
                "interval"
            } else {
                "custom"
            }),
        ),
        ("query", s(values.join(","))),
        ("multi", J::Bool(multi)),
        ("includeAll", J::Bool(multi)),
        ("allValue", if multi { s(".*") } else { J::Null }),
        ("current", current),
        ("options", J::Arr(options)),
    ])
}

fn query_var(name: &'static str, label: &'static str, query: &str) -> J {
    J::Obj(vec![
        ("name", s(name)),
        ("label", s(label)),
        ("type", s("query")),
        ("datasource", datasource()),
        ("definition", s(query)),
        (
            "query",
            J::Obj(vec![
                ("query", s(query)),
                ("refId", s("PrometheusVariableQueryEditor-VariableQuery")),
            ]),
        ),
        ("refresh", J::Num(2.0)),
        ("multi", J::Bool(true)),
        ("includeAll", J::Bool(true)),
        ("allValue", s(".*")),
        (
            "current",
            J::Obj(vec![
                ("text", J::Arr(vec![s("All")])),
                ("value", J::Arr(vec![s("$__all")])),
            ]),
        ),
    ])
}

fn datasource_var() -> J {
    J::Obj(vec![
        ("name", s("datasource")),
        ("label", s("Data source")),
        ("type", s("datasource")),
        ("query", s("prometheus")),
        ("current", J::Obj(vec![])),
    ])
}

impl Dashboard {
    fn to_json(&self) -> J {
        let mut panels = Vec::new();
        let mut id = 1.0;
        let mut y = 0u32;
        for (row, ps) in &self.rows {
            panels.push(J::Obj(vec![
                ("type", s("row")),
                ("title", s(*row)),
                ("id", J::Num(id)),
                ("collapsed", J::Bool(false)),
                (
                    "gridPos",
                    J::Obj(vec![
                        ("h", J::Num(1.0)),
                        ("w", J::Num(24.0)),
                        ("x", J::Num(0.0)),
                        ("y", J::Num(y as f64)),
                    ]),
                ),
                ("panels", J::Arr(vec![])),
            ]));
            id += 1.0;
            y += 1;
            let mut x = 0u32;
            for p in ps {
                if x + p.width > 24 {
                    x = 0;
                    y += 8;
                }
                let targets = p
                    .targets
                    .iter()
                    .enumerate()
                    .map(|(i, (e, l))| {
                        let mut t = vec![
                            ("datasource", datasource()),
                            ("expr", s(e.clone())),
                            (
                                "legendFormat",
                                s(if l.is_empty() { "__auto" } else { l.as_str() }),
                            ),
                            ("refId", s(((b'A' + i as u8) as char).to_string())),
                        ];
                        if p.kind == "heatmap" {
                            t.push(("format", s("heatmap")));
                        }
                        if p.kind == "table" {
                            t.push(("format", s("table")));
                            t.push(("instant", J::Bool(true)));
                        }
                        J::Obj(t)
                    })
                    .collect();
                let steps = p
                    .thresholds
                    .iter()
                    .map(|(v, c)| {
                        J::Obj(vec![("color", s(*c)), ("value", v.map_or(J::Null, J::Num))])
                    })
                    .collect();
                let mappings = if p.mappings.is_empty() {
                    J::Arr(vec![])
                } else {
                    let opts = p
                        .mappings
                        .iter()
                        .map(|(v, t, c)| (*v, J::Obj(vec![("color", s(*c)), ("text", s(*t))])))
                        .collect();
                    J::Arr(vec![J::Obj(vec![
                        ("type", s("value")),
                        ("options", J::Obj(opts)),
                    ])])
                };
                panels.push(J::Obj(vec![
                    ("type", s(p.kind)),
                    ("title", s(p.title.clone())),
                    ("id", J::Num(id)),
                    ("datasource", datasource()),
                    (
                        "gridPos",
                        J::Obj(vec![
                            ("h", J::Num(8.0)),
                            ("w", J::Num(p.width as f64)),
                            ("x", J::Num(x as f64)),
                            ("y", J::Num(y as f64)),
                        ]),
                    ),
                    (
                        "fieldConfig",
                        J::Obj(vec![
                            (
                                "defaults",
                                J::Obj(vec![
                                    ("unit", s(p.unit)),
                                    ("mappings", mappings),
                                    (
                                        "thresholds",
                                        J::Obj(vec![
                                            ("mode", s("absolute")),
                                            ("steps", J::Arr(steps)),
                                        ]),
                                    ),
                                ]),
                            ),
                            ("overrides", J::Arr(vec![])),
                        ]),
                    ),
                    ("targets", J::Arr(targets)),
                ]));
                id += 1.0;
                x += p.width;
            }
            y += 8;
        }
        let mut vars = vec![datasource_var()];
        vars.extend(self.variables.iter().cloned());
        J::Obj(vec![
            ("uid", s(self.uid)),
            ("title", s(self.title)),
            ("tags", J::Arr(vec![s("dwcp"), s("generated")])),
            ("schemaVersion", J::Num(39.0)),
            ("version", J::Num(1.0)),
            ("editable", J::Bool(true)),
            ("refresh", s(self.refresh)),
            (
                "time",
                J::Obj(vec![("from", s(self.time_from)), ("to", s("now"))]),
            ),
            ("templating", J::Obj(vec![("list", J::Arr(vars))])),
            ("annotations", J::Obj(vec![("list", J::Arr(vec![]))])),
            ("panels", J::Arr(panels)),
        ])
    }
}

fn dashboards(cfg: &OpsConfig) -> Vec<Dashboard> {
    let sla = cfg.sla;
    let hq =
        |q: f64, m: &str| format!("histogram_quantile({q}, sum by (le) (rate({m}_bucket[5m])))");
    let manager = Dashboard {
        file: "deploy/grafana/dwcp-manager.json",
        uid: "dwcp-manager",
        title: "DWCP Manager",
        refresh: "30s",
        time_from: "now-6h",
        variables: vec![],
        rows: vec![
            ("Health & Availability", vec![
                panel("stat", "Health Check Success Rate (24h)", "percentunit")
                    .q(r#"sum(rate(dwcp_health_check_total{status="success"}[24h])) / sum(rate(dwcp_health_check_total[24h]))"#, "")
                    .th(None, "red").th(Some(0.999), "green"),
                panel("stat", "Service Health", "none")
                    .q(r#"up{job=~"dwcp.*|.*-consensus|.*-api|.*-allocator"}"#, "{{job}} {{instance}}")
                    .map("0", "DOWN", "red").map("1", "UP", "green"),
                panel("timeseries", "Health Check Duration", "s")
                    .q("histogram_quantile(0.99, sum(rate(dwcp_health_check_duration_seconds_bucket[5m])) by (le))", "P99 Latency"),
                panel("table", "Component Status", "none")
                    .q("dwcp_component_status == 1", "{{component}}: {{status}}"),
            ]),
            ("Recovery Operations", vec![
                panel("timeseries", "Recovery Attempts (Success vs Failure)", "ops")
                    .q(r#"sum(rate(dwcp_recovery_attempts_total{success="true"}[5m]))"#, "Successful Recoveries")
                    .q(r#"sum(rate(dwcp_recovery_attempts_total{success="false"}[5m]))"#, "Failed Recoveries"),
                panel("heatmap", "Recovery Duration Heatmap", "s")
                    .q("sum(rate(dwcp_recovery_duration_seconds_bucket[5m])) by (le)", "{{le}}"),
                panel("timeseries", "Recovery Success Rate", "percentunit")
                    .q("dwcp_recovery_success_rate", "{{component}}"),
            ]),
            ("Circuit Breakers", vec![
                panel("timeseries", "Circuit Breaker States", "none")
                    .q(r#"dwcp_circuit_breaker_state{circuit="database"}"#, "Database Circuit")
                    .q(r#"dwcp_circuit_breaker_state{circuit="api"}"#, "API Circuit")
                    .map("0", "closed", "green").map("1", "open", "red").map("2", "half-open", "yellow"),
                panel("stat", "Circuit Breaker Trips (1h)", "none")
                    .q("sum(increase(dwcp_circuit_breaker_trips_total[1h]))", "")
                    .th(None, "green").th(Some(5.0), "yellow").th(Some(10.0), "red"),
                panel("stat", "Circuit Breaker Resets (1h)", "none")
                    .q("sum(increase(dwcp_circuit_breaker_resets_total[1h]))", ""),
            ]),
            ("Requests", vec![
                panel("timeseries", "Request Rate", "reqps")
                    .q("sum by (operation, status) (rate(dwcp_requests_total[5m]))", "{{operation}} {{status}}"),
                panel("timeseries", "P99 Latency", "s")
                    .q(hq(0.99, "dwcp_request_duration_seconds"), "P99"),
                panel("timeseries", "Error Rate", "ops")
                    .q("sum by (type) (rate(dwcp_errors_total[5m]))", "{{type}}"),
            ]),
            ("Resource Usage", vec![
                panel("timeseries", "Memory Usage", "decmbytes")
                    .q(r#"dwcp_memory_usage_bytes{type="heap"} / 1024 / 1024"#, "Heap (MB)")
                    .q(r#"dwcp_memory_usage_bytes{type="stack"} / 1024 / 1024"#, "Stack (MB)"),
                panel("timeseries", "Goroutines (OS threads)", "none")
                    .q("dwcp_goroutines", "Goroutines"),
                panel("timeseries", "CPU", "none")
                    .q("rate(dwcp_cpu_usage_seconds[5m])", "CPU cores used"),
            ]),
        ],
    };
    let consensus = Dashboard {
        file: "deploy/grafana/dwcp-consensus.json",
        uid: "dwcp-consensus",
        title: "DWCP Consensus Performance",
        refresh: "30s",
        time_from: "now-6h",
        variables: vec![],
        rows: vec![
            ("ProBFT Consensus", vec![
                panel("timeseries", "Consensus Round Duration", "s")
                    .q("histogram_quantile(0.95, sum(rate(probft_consensus_duration_seconds_bucket[5m])) by (le))", "P95 Consensus Time"),
                panel("stat", "Byzantine Events Detected (24h)", "none")
                    .q("sum(increase(probft_byzantine_events_detected_total[24h]))", "")
                    .th(None, "green").th(Some(1.0), "red"),
                panel("stat", "Quorum Achievement", "percentunit")
                    .q("probft_quorum_achievement_rate", "")
                    .th(None, "red").th(Some(0.99), "green"),
            ]),
            ("Bullshark Consensus", vec![
                panel("timeseries", "Transaction Throughput", "none")
                    .q("sum(rate(bullshark_transactions_processed_total[1m]))", "Transactions/sec")
                    .th(None, "red").th(Some(250000.0), "green"),
                panel("timeseries", "DAG Depth & Width", "none")
                    .q("bullshark_dag_depth", "DAG Depth")
                    .q("bullshark_dag_width", "DAG Width"),
            ]),
            ("T-PBFT Trust", vec![
                panel("heatmap", "Node Trust Scores", "none")
                    .q("tpbft_node_trust_score", "{{node}}"),
                panel("stat", "Message Reduction (%)", "percent")
                    .q("avg(tpbft_message_reduction_percentage)", ""),
            ]),
            ("Finalization & Throughput (seed 001)", vec![
                panel("timeseries", "Block Finalization Time", "s")
                    .q(hq(0.99, "probft_finalization_duration_seconds"), "ProBFT P99")
                    .q(hq(0.99, "bullshark_round_duration_seconds"), "Bullshark round P99")
                    .q(hq(0.99, "tpbft_consensus_latency_seconds"), "T-PBFT P99"),
                panel("timeseries", "Throughput", "none")
                    .q("rate(probft_blocks_finalized_total[1m])", "ProBFT blocks/s")
                    .q("bullshark_throughput_tx_per_second", "Bullshark tx/s")
                    .q("rate(tpbft_transactions_committed_total[1m])", "T-PBFT tx/s"),
            ]),
        ],
    };
    let comp = r#"component=~"$component""#;
    let v3 = Dashboard {
        file: "deploy/grafana/dwcp-v3-rollout-sla.json",
        uid: "dwcp-v3-rollout-sla",
        title: "DWCP v3 Production Rollout & SLA",
        refresh: "5s",
        time_from: "now-1h",
        variables: vec![
            custom_var("component", "Component", &["amst", "hde", "pba", "acp", "ass", "itp"], true),
            query_var("region", "Region", "label_values(dwcp_v3_rollout_progress_ratio, region)"),
            custom_var("interval", "Interval", &["5s", "10s", "30s", "1m", "5m"], false),
        ],
        rows: vec![
            ("Rollout", vec![
                panel("stat", "GO / NO-GO", "none")
                    .q("dwcp_v3:go_no_go:5m", "")
                    .map("1", "GO", "green").map("0", "NO-GO", "red")
                    .th(None, "red").th(Some(1.0), "green"),
                panel("gauge", "Rollout Progress", "percentunit")
                    .q(r#"dwcp_v3_rollout_progress_ratio{region=~"$region"}"#, "{{stage}} {{region}}")
                    .th(None, "blue").th(Some(0.5), "yellow").th(Some(1.0), "green"),
                panel("stat", "Byzantine Events (5m)", "none")
                    .q("sum(increase(dwcp_v3_acp_byzantine_detections_total[5m]))", "")
                    .th(None, "green").th(Some(1.0), "yellow").th(Some(5.0), "red"),
                panel("stat", "Active Streams", "none")
                    .q("dwcp_v3_active_streams", ""),
                panel("timeseries", "Error Rate (V3 vs V1)", "percentunit")
                    .q(format!("sum by (version) (rate(dwcp_v3_component_errors_total{{{comp}}}[$interval])) / sum by (version) (rate(dwcp_v3_component_operations_total{{{comp}}}[$interval]))"), "{{version}}")
                    .th(None, "green").th(Some(sla.error_rate), "red"),
                panel("timeseries", "Latency P99 (V3 vs V1)", "s")
                    .q(format!("histogram_quantile(0.99, sum by (version, le) (rate(dwcp_v3_component_latency_seconds_bucket{{{comp}}}[$interval])))"), "{{version}}")
                    .th(None, "green").th(Some(sla.latency_p99_seconds), "red"),
                panel("timeseries", "Throughput (V3 vs V1)", "Bps")
                    .q("sum by (version) (rate(dwcp_v3_bytes_transferred_total[$interval]))", "{{version}}")
                    .th(None, "red").th(Some(sla.throughput_bytes_per_second), "green"),
                panel("table", "Node Health", "none")
                    .q(r#"up{job=~"dwcp.*"}"#, "")
                    .map("0", "DOWN", "red").map("1", "UP", "green"),
            ]),
            ("SLA Compliance", vec![
                panel("gauge", "Availability", "percentunit")
                    .q("sla:availability:5m", "")
                    .th(None, "red").th(Some(0.995), "yellow").th(Some(sla.availability), "green"),
                panel("gauge", "P99 Latency", "s")
                    .q("sla:latency_p99:5m", "")
                    .th(None, "green").th(Some(sla.latency_p99_seconds * 0.8), "yellow").th(Some(sla.latency_p99_seconds), "red"),
                panel("gauge", "Error Rate", "percentunit")
                    .q("sla:error_rate:5m", "")
                    .th(None, "green").th(Some(sla.error_rate / 2.0), "yellow").th(Some(sla.error_rate), "red"),
                panel("gauge", "Throughput", "Bps")
                    .q("dwcp_v3:throughput_avg:5m", "")
                    .th(None, "red").th(Some(sla.throughput_bytes_per_second), "green"),
                panel("timeseries", "Availability SLI Tracking", "percentunit")
                    .q("sla:availability:5m", "Availability")
                    .th(None, "red").th(Some(sla.availability), "green"),
                panel("stat", "Error Budget Remaining (30d)", "percentunit")
                    .q("sla:error_budget_remaining:30d", "Error-rate budget")
                    .q("sla:availability_budget_remaining:30d", "Availability budget")
                    .th(None, "red").th(Some(0.25), "yellow").th(Some(0.5), "green"),
                panel("table", "Uptime by Time Window", "percentunit")
                    .q("avg_over_time(sla:availability:5m[1h])", "1 Hour")
                    .q("avg_over_time(sla:availability:5m[24h])", "24 Hours")
                    .q("avg_over_time(sla:availability:5m[7d])", "7 Days")
                    .q("avg_over_time(sla:availability:5m[30d])", "30 Days"),
                panel("table", "Total Downtime by Window", "s")
                    .q("3600 * (1 - avg_over_time(sla:availability:5m[1h]))", "1 Hour")
                    .q("86400 * (1 - avg_over_time(sla:availability:5m[24h]))", "24 Hours")
                    .q("604800 * (1 - avg_over_time(sla:availability:5m[7d]))", "7 Days")
                    .q("2592000 * (1 - avg_over_time(sla:availability:5m[30d]))", "30 Days"),
                panel("table", "SLA Compliance Status", "none")
                    .q(format!("sla:availability:5m >= bool {}", num(sla.availability)), "Availability")
                    .q(format!("sla:latency_p99:5m <= bool {}", num(sla.latency_p99_seconds)), "Latency")
                    .q(format!("sla:error_rate:5m <= bool {}", num(sla.error_rate)), "Error Rate")
                    .q(format!("dwcp_v3:throughput_avg:5m >= bool {}", num(sla.throughput_bytes_per_second)), "Throughput")
                    .map("1", "✓ COMPLIANT", "green").map("0", "✗ VIOLATION", "red")
                    .wide(),
            ]),
            ("Performance & Health", vec![
                panel("timeseries", "Migration Latency", "s")
                    .q("dwcp_v3:migration_latency_p50:5m", "P50")
                    .q("dwcp_v3:migration_latency_p95:5m", "P95")
                    .q("dwcp_v3:migration_latency_p99:5m", "P99"),
                panel("heatmap", "Component Latency Heatmap", "s")
                    .q(format!("sum by (le) (rate(dwcp_v3_component_latency_seconds_bucket{{{comp}}}[$interval]))"), "{{le}}"),
                panel("timeseries", "Component Health Matrix", "none")
                    .q(format!("dwcp_v3_component_health{{{comp}}}"), "{{component}}"),
                panel("timeseries", "Resource Utilization", "percentunit")
                    .q("dwcp_v3_resource_utilization", "{{resource}}"),
                panel("piechart", "Error Distribution", "none")
                    .q(format!("sum by (component) (rate(dwcp_v3_component_errors_total{{{comp}}}[5m]))"), "{{component}}"),
                panel("timeseries", "Live Throughput by Transport", "Bps")
                    .q("sum by (transport) (dwcp_v3_throughput_bytes_per_second)", "{{transport}}"),
                panel("timeseries", "SLA Compliance (overall)", "percentunit")
                    .q("dwcp_v3:sla_compliance_overall:5m", "overall")
                    .th(None, "red").th(Some(0.95), "green"),
                panel("bargauge", "Anomaly Timeline", "none")
                    .q("sum by (severity) (increase(dwcp_anomaly_detections_total[5m]))", "{{severity}}"),
            ]),
        ],
    };
    let ml = Dashboard {
        file: "deploy/grafana/dwcp-allocation-ml.json",
        uid: "dwcp-allocation-ml",
        title: "DWCP Resource Allocation & ML Systems",
        refresh: "30s",
        time_from: "now-6h",
        variables: vec![],
        rows: vec![
            ("Allocation Efficiency", vec![
                panel("timeseries", "Resource Utilization by Service", "percentunit")
                    .q(r#"maddpg_resource_utilization{service=~".*",resource_type="cpu"}"#, "{{service}} CPU")
                    .q(r#"maddpg_resource_utilization{service=~".*",resource_type="memory"}"#, "{{service}} Memory"),
                panel("stat", "Overall Allocation Efficiency", "percentunit")
                    .q("avg(maddpg_allocation_efficiency)", "")
                    .th(None, "red").th(Some(0.8), "red").th(Some(0.9), "yellow").th(Some(0.95), "green"),
                panel("stat", "Allocation Success Rate", "percentunit")
                    .q("sum(rate(maddpg_successful_allocations_total[5m])) / sum(rate(maddpg_total_allocations_total[5m]))", ""),
                panel("stat", "MADDPG Optimization", "percent")
                    .q("maddpg_resource_optimization_percentage", ""),
            ]),
            ("RL Model Performance", vec![
                panel("timeseries", "Reward Score Trend", "none")
                    .q("avg(maddpg_reward_score)", "Average Reward"),
                panel("timeseries", "Allocation Quality vs Baseline", "none")
                    .q("maddpg_allocation_quality", "MADDPG")
                    .q("baseline_allocation_quality", "Baseline"),
                panel("timeseries", "Training", "none")
                    .q("rate(maddpg_model_training_episodes_total[5m])", "episodes/s")
                    .q("maddpg_model_convergence", "convergence")
                    .q("maddpg_exploration_rate", "exploration rate"),
            ]),
            ("Safety Metrics", vec![
                panel("stat", "Constraint Violations (1h)", "none")
                    .q("sum(increase(maddpg_constraint_violations_total[1h]))", "")
                    .th(None, "green").th(Some(1.0), "red"),
                panel("stat", "Resource Starvation Events (1h)", "none")
                    .q("sum(increase(maddpg_resource_starvation_events_total[1h]))", "")
                    .th(None, "green").th(Some(1.0), "red"),
            ]),
            ("Compression Selector", vec![
                panel("timeseries", "Compression Selector Accuracy", "percentunit")
                    .q("compression_selector_accuracy", "selector")
                    .q("model_accuracy_rolling_7d", "model {{model_version}} (7d)")
                    .q("avg(compression_accuracy)", "selection accuracy")
                    .th(None, "red").th(Some(0.95), "green"),
                panel("timeseries", "Prediction Latency", "s")
                    .q(hq(0.99, "compression_selector_prediction_duration"), "prediction P99")
                    .q(hq(0.99, "model_inference_duration_seconds"), "inference P99")
                    .q(hq(0.99, "compression_selection_duration_seconds"), "selection P99"),
                panel("timeseries", "Algorithms Selected", "ops")
                    .q("sum by (algorithm) (rate(compression_algorithm_selected_total[5m]))", "{{algorithm}}"),
                panel("timeseries", "Compression Ratio (Actual vs Expected)", "none")
                    .q("compression_ratio_actual", "{{algorithm}} actual")
                    .q("compression_ratio_expected", "{{algorithm}} expected"),
                panel("timeseries", "Overhead and Fallbacks", "none")
                    .q("avg(compression_overhead_percentage)", "overhead %")
                    .q("sum(rate(compression_fallback_total[5m]))", "fallbacks/s"),
                panel("timeseries", "Model Drift", "none")
                    .q("model_drift_score", "{{model_version}}"),
            ]),
        ],
    };
    vec![manager, consensus, v3, ml]
}

/// Every PromQL query of the generated dashboards, as written there (Grafana variables
/// `$component`, `$region`, `$interval` unexpanded).
pub fn dashboard_queries(cfg: &OpsConfig) -> Vec<PanelQuery> {
    let mut v = Vec::new();
    for d in dashboards(cfg) {
        for (_, ps) in &d.rows {
            for p in ps {
                for (e, _) in &p.targets {
                    v.push(PanelQuery {
                        dashboard: d.file,
                        panel: p.title.clone(),
                        expr: e.clone(),
                    });
                }
            }
        }
    }
    v
}

// ---------------------------------------------------------------------------------------
// Alertmanager
// ---------------------------------------------------------------------------------------

fn alertmanager_yaml() -> String {
    let mut s = String::from(HEADER);
    s.push_str(r#"# Example Alertmanager routing for the generated alerts (seeds 000, 001 and 004 merged).
# Replace the receivers' URLs and keys. Fixes against the seeds are listed in docs/catalog.md.
global:
  resolve_timeout: 5m

route:
  receiver: 'default'
  group_by: ['alertname', 'cluster', 'service']
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 12h
  routes:
    # Team routes first, with `continue`, so severity routing still applies after them.
    - matchers: ['component="canary"']
      receiver: 'canary-team'
      group_wait: 10s
      repeat_interval: 5m
      continue: true
    - matchers: ['component=~"dwcp|dwcp-v3|amst|hde|pba|acp"']
      receiver: 'slack-dwcp'
      continue: true
    # Critical alerts page immediately, and go to #incidents.
    - matchers: ['severity="critical"']
      receiver: 'pagerduty-critical'
      continue: true
    - matchers: ['severity="critical"']
      receiver: 'slack-incidents'
    - matchers: ['severity="warning"']
      receiver: 'slack-warnings'
    - matchers: ['severity="info"']
      receiver: 'slack-monitoring'

inhibit_rules:
  # A critical alert silences the warning and info alerts of the same name and place.
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity=~"warning|info"']
    equal: ['alertname', 'cluster', 'service']
  # When every v3 replica is down, the per-SLA alerts add nothing.
  - source_matchers: ['alertname="DWCPv3AllReplicasDown"']
    target_matchers: ['component="dwcp-v3"', 'alertname!="DWCPv3AllReplicasDown"']
    equal: ['cluster']

receivers:
  - name: 'default'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#production-alerts'
        title: '{{ .CommonAnnotations.summary }}'
        text: '{{ .CommonAnnotations.description }}'

  - name: 'pagerduty-critical'
    pagerduty_configs:
      - routing_key: 'PAGERDUTY_ROUTING_KEY'
        description: '{{ .CommonAnnotations.summary }}'

  - name: 'slack-incidents'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#incidents'
        color: 'danger'
        title: 'CRITICAL: {{ .GroupLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }} {{ end }}'

  - name: 'slack-warnings'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#production-warnings'
        title: 'WARNING: {{ .CommonAnnotations.summary }}'
        text: '{{ .CommonAnnotations.description }}'

  - name: 'slack-monitoring'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#monitoring'
        title: 'INFO: {{ .GroupLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.description }} {{ end }}'

  - name: 'slack-dwcp'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#dwcp-protocol'
        title: 'DWCP Alert: {{ .GroupLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }} {{ end }}'

  - name: 'canary-team'
    slack_configs:
      - api_url: 'https://hooks.slack.com/services/XXX'
        channel: '#canary-rollout'
        title: 'CANARY ALERT: {{ .CommonAnnotations.summary }}'
        text: '{{ .CommonAnnotations.description }} Runbook: {{ .CommonAnnotations.runbook }}'
"#);
    s
}

/// Fixes to the seeds' dashboards and routing (the alerts' fixes are in [`Alert::fix`]).
pub const OTHER_FIXES: &[(&str, &str)] = &[
    ("Dashboard \"DWCP Manager\" (seed 000): Health Check Success Rate",
     "`format: percent` on a 0..1 ratio would show 0.999 as 0.999 %: the unit is `percentunit`."),
    ("Dashboard \"DWCP Systems Overview\" (seed 001): P99 Latency",
     "`histogram_quantile(0.99, dwcp_request_duration_seconds_bucket)` over raw cumulative buckets: now over a 5-minute `rate()` summed by `le`."),
    ("Dashboard \"DWCP Systems Overview\" (seed 001): Request Rate, Error Rate",
     "One line per series of `rate(...)`: now summed by operation/status and by type."),
    ("Dashboard \"Consensus Health\" (seed 001): Block Finalization Time",
     "Queried three histograms by their bare names, which have no samples: now `histogram_quantile(0.99, ...)` over their buckets."),
    ("Dashboard \"Consensus Performance\" (seed 000): Byzantine Events Detected",
     "The counter is exported as `probft_byzantine_events_detected_total`."),
    ("Dashboard \"Production Rollout\" (seed 002): GO/NO-GO",
     "`(a >= x) and (b <= y) and (c <= z)` returns no data on NO-GO (the panel shows \"No data\", not red): the recording rule `dwcp_v3:go_no_go:5m` multiplies `bool` comparisons, 1 GO, 0 NO-GO."),
    ("Dashboard \"SLA Compliance\" (seed 002): Error Budget Remaining",
     "`((1% - current_error_rate) / 1%)` is a snapshot of the current rate, not a budget: `sla:error_budget_remaining:30d` uses the errors of the whole 30-day window (and `sla:availability_budget_remaining:30d` does the same for availability)."),
    ("Dashboards \"ML Systems\" (seed 001) and \"Resource Allocation\" (seed 000)",
     "Seed 001's prediction latency took `histogram_quantile` of the raw cumulative buckets: now over a 5-minute `rate()` summed by `le`; the allocation success rate divides the sums of both rates; `format: percent` on the 0..1 efficiency is `percentunit`; the counters `maddpg_constraint_violations` and `maddpg_resource_starvation_events` are queried as `_total`."),
    ("Dashboard \"Goroutines\" (seed 000)",
     "A Rust process has no goroutines: the panel shows `dwcp_goroutines`, the OS thread count."),
    ("Alertmanager routing (seeds 000 and 004)",
     "The `component: canary` and `component: dwcp` routes came after severity routes without `continue`, so every canary warning and every DWCP alert stopped at the severity route and never reached its team: team routes now come first, with `continue: true`."),
    ("Alertmanager routing (seeds 000, 001, 004)",
     "`match:`/`source_match:` are deprecated: `matchers:`; PagerDuty `service_key` (Events API v1) with the v2 URL of seed 000: `routing_key`; the seeds' three routing files merged into one (info route, inhibit rules from seed 004)."),
    ("Alert rules (seed 001)",
     "Seed 001's alerts had no `component` label, so component routes could not see them: added."),
];

// ---------------------------------------------------------------------------------------
// docs/catalog.md
// ---------------------------------------------------------------------------------------

fn kind_str(k: MetricKind) -> &'static str {
    k.as_str()
}

fn catalog_md(cfg: &OpsConfig, alerts: &[Alert], rules: &[Recording]) -> String {
    let mut s = String::new();
    s.push_str("<!-- Generated by `cargo run --example gen_ops` from dwcp_telemetry::catalog; do not edit. -->\n");
    s.push_str("# The DWCP metric catalog\n\n");
    s.push_str("Every metric the seeds (`../shared/seeds/`, numbered 000-004 below) define for the DWCP systems, as\n\
        `dwcp_telemetry::catalog` registers it: one module per system, typed label sets, one `register` call per\n\
        system. Every series also carries `version` (the registry's). A counter's samples are named\n\
        `<name>_total` when its name lacks the suffix (this crate always writes counters that way, as OpenMetrics\n\
        requires). Generated ops artifacts: `deploy/` (see `deploy/README.md`).\n\n");
    s.push_str("Conventions the seeds break, kept where operators' queries depend on the name:\n\n\
        - `_percentage` metrics hold a percentage 0..100, as their names say (the seeds compared two of them with\n  ratios; those alerts are fixed);\n\
        - `_rate` gauges that are ratios (`dwcp_recovery_success_rate`, `dwcp_packet_loss_rate`, ...) are kept;\n\
        - counters without `_total` are exported with it, and the generated rules use the exported name;\n\
        - units in names other than base units (`dwcp_latency_milliseconds`) are kept;\n\
        - names the seeds only describe are defined by the catalog (seed `catalog`).\n\n");
    for sys in systems() {
        let _ = writeln!(
            s,
            "## {} (`catalog::{}`)\n",
            sys.title,
            sys.name.trim_end_matches("_resilience")
        );
        s.push_str("| sample name | type | labels | unit | buckets | seed | deviation |\n|---|---|---|---|---|---|---|\n");
        for m in sys.metrics {
            md_row(&mut s, m);
        }
        if sys.name == "v3" {
            for m in super::v3::ANOMALY_METRICS {
                md_row(&mut s, m);
            }
        }
        s.push('\n');
    }
    s.push_str("## Deviations\n\n");
    for sys in systems() {
        for m in sys.metrics.iter().chain(if sys.name == "v3" {
            super::v3::ANOMALY_METRICS
        } else {
            &[]
        }) {
            if !m.note.is_empty() {
                let _ = writeln!(s, "- `{}` ({}): {}", m.name, m.seed.as_str(), m.note);
            }
        }
    }
    s.push_str("\n## Alerts\n\n");
    let _ = writeln!(s, "{} alerting rules in `deploy/prometheus/dwcp-alerts.rules.yml`, each with a `promtool test rules` case that fires it and one that leaves it silent (`deploy/prometheus/dwcp-alerts.test.yml`). SLA targets: availability {}, P99 {} s, error rate {}, throughput {} B/s.\n",
        alerts.len(), num(cfg.sla.availability), num(cfg.sla.latency_p99_seconds), num(cfg.sla.error_rate), num(cfg.sla.throughput_bytes_per_second));
    s.push_str("| alert | group | seed | severity | for |\n|---|---|---|---|---|\n");
    for a in alerts {
        let sev = a
            .labels
            .iter()
            .find(|(k, _)| *k == "severity")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            a.name,
            a.group,
            a.seed,
            if sev.is_empty() { "(from series)" } else { sev },
            if a.for_.is_empty() { "-" } else { &a.for_ }
        );
    }
    s.push_str("\nNot generated: seed 004's NovaCron API, database and cache alerts (`ServiceDown`, `HighErrorRate`, `HighResponseTime`, `HighMemoryUsage`, `HighCPUUsage`, `PodRestartingFrequently`, `Database*`, `Cache*`) watch the NovaCron API's `http_requests_total`, cAdvisor, kube-state-metrics, `pg_*` and `redis_*` exporters, none of them a DWCP system of the catalog. Seed 000's `Canary*` alerts are generated on the manager's `dwcp_requests_total` / `dwcp_request_duration_seconds` (canary and baseline told apart by `version`).\n");
    s.push_str("\n## Recording rules\n\n| record | source |\n|---|---|\n");
    for r in rules {
        let _ = writeln!(s, "| `{}` | {} |", r.record, r.source);
    }
    s.push_str("\n## Seed defects fixed\n\n");
    for a in alerts.iter().filter(|a| !a.fix.is_empty()) {
        let _ = writeln!(s, "- **{}** (seed {}): {}", a.name, a.seed, a.fix);
    }
    for (what, fix) in OTHER_FIXES {
        let _ = writeln!(s, "- **{what}**: {fix}");
    }
    s
}

fn md_row(s: &mut String, m: &MetricDef) {
    let labels = if m.labels.is_empty() {
        "-".to_owned()
    } else {
        m.labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let buckets = match m.buckets {
        Some(b) => b.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", "),
        None if m.kind == MetricKind::Histogram => "unit default".to_owned(),
        None => "-".to_owned(),
    };
    let _ = writeln!(
        s,
        "| `{}` | {} | {} | {} | {} | {} | {} |",
        m.sample_name(),
        kind_str(m.kind),
        labels,
        m.unit,
        buckets,
        m.seed.as_str(),
        if m.note.is_empty() { "" } else { "yes" }
    );
}

// ---------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------

fn validate(cfg: &OpsConfig) -> Result<(), OpsError> {
    let sla = cfg.sla;
    let ratio = |name, v: f64| {
        if v > 0.0 && v < 1.0 {
            Ok(())
        } else {
            Err(OpsError::Target {
                name,
                value: v,
                expected: "0 < x < 1",
            })
        }
    };
    ratio("availability", sla.availability)?;
    ratio("error_rate", sla.error_rate)?;
    for (name, v) in [
        ("latency_p99_seconds", sla.latency_p99_seconds),
        (
            "throughput_bytes_per_second",
            sla.throughput_bytes_per_second,
        ),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(OpsError::Target {
                name,
                value: v,
                expected: "finite, > 0",
            });
        }
    }
    if !COMPONENT_LATENCY_BUCKETS.contains(&sla.latency_p99_seconds) {
        return Err(OpsError::LatencyBucket(
            sla.latency_p99_seconds,
            &COMPONENT_LATENCY_BUCKETS,
        ));
    }
    check_duration(&cfg.rule_interval)?;
    if let Some(f) = &cfg.for_override {
        check_duration(f)?;
    }
    Ok(())
}

/// Generates every artifact. Paths are relative to the repository root.
pub fn generate(cfg: &OpsConfig) -> Result<Vec<Artifact>, OpsError> {
    validate(cfg)?;
    let alerts = alerts(cfg);
    let rules = recording_rules(cfg);
    let mut out = vec![
        Artifact {
            path: "deploy/prometheus/dwcp-alerts.rules.yml",
            contents: alert_rules_yaml(cfg, &alerts),
        },
        Artifact {
            path: "deploy/prometheus/dwcp-recording.rules.yml",
            contents: recording_rules_yaml(cfg, &rules),
        },
        Artifact {
            path: "deploy/prometheus/dwcp-alerts.test.yml",
            contents: unit_tests_yaml(&alerts),
        },
        Artifact {
            path: "deploy/alertmanager/alertmanager.yml",
            contents: alertmanager_yaml(),
        },
    ];
    for d in dashboards(cfg) {
        let mut text = String::new();
        d.to_json().write(&mut text, 0);
        text.push('\n');
        out.push(Artifact {
            path: d.file,
            contents: text,
        });
    }
    out.push(Artifact {
        path: "docs/catalog.md",
        contents: catalog_md(cfg, &alerts, &rules),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formatting() {
        assert_eq!(g4(95.0), "95");
        assert_eq!(g4(248.5), "248.5");
        assert_eq!(g4(99.99999999), "100");
        assert_eq!(g4(1.44), "1.44");
        assert_eq!(g4(12345.0), "1.234e+04");
        assert_eq!(humanize(0.2485), "248.5m");
        assert_eq!(humanize(2e9), "2G");
        assert_eq!(humanize(100_000.0), "100k");
        assert_eq!(humanize(15.0), "15");
        assert_eq!(humanize1024(9.0 * 1024.0 * 1024.0 * 1024.0), "9Gi");
        assert_eq!(num(0.999), "0.999");
        assert_eq!(num(1.0 - 0.999), "0.001");
        assert_eq!(num(14.4 * 0.001), "0.0144");
        assert_eq!(num(2.4e9), "2.4e+09");
    }

    #[test]
    fn bad_config_is_an_error() {
        let mut cfg = OpsConfig::default();
        cfg.sla.availability = 1.5;
        assert!(matches!(
            generate(&cfg),
            Err(OpsError::Target {
                name: "availability",
                ..
            })
        ));
        let mut cfg = OpsConfig::default();
        cfg.sla.latency_p99_seconds = 0.123;
        assert!(matches!(generate(&cfg), Err(OpsError::LatencyBucket(..))));
        let cfg = OpsConfig {
            for_override: Some("5 minutes".into()),
            ..OpsConfig::default()
        };
        assert!(matches!(generate(&cfg), Err(OpsError::Duration(_))));
    }
}
