//! How `#[instrument_dwcp]` decides whether a call is sampled: spans off until a sink is
//! installed; the call site's `sample = ..` ratio, the seeds' per-component ratios and their
//! runtime changes; the process-wide sampler (`set_sampler`, `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG`, re-read by `sampler::reset`) against local and remote parents.
//!
//! The sampler and the environment are process-wide, so this binary has one test that runs
//! the steps in order.

use std::sync::Arc;

use dwcp_telemetry::propagation::{SpanContext, TraceFlags, TraceId};
use dwcp_telemetry::trace::sampler::{self, Sampler, SamplerError};
use dwcp_telemetry::trace::{self, AttrValue, MemorySink};
use dwcp_telemetry::{instrument_dwcp, Registry};

static REG: std::sync::LazyLock<Registry> =
    std::sync::LazyLock::new(|| Registry::builder().build().unwrap());

#[instrument_dwcp(component = "ratio-site", registry = &*REG, sample = 0.5)]
fn half() -> bool {
    trace::current().is_some()
}

#[instrument_dwcp(component = "ratio-site", registry = &*REG, sample = critical)]
fn critical() {}

#[instrument_dwcp(component = "ratio-site", registry = &*REG, sample = background)]
fn background() {}

#[instrument_dwcp(component = "dwcp-manager", registry = &*REG)]
fn manager() {}

#[instrument_dwcp(component = "probft-consensus", registry = &*REG)]
fn consensus() {}

#[instrument_dwcp(component = "no-seed", registry = &*REG)]
fn unseeded() {}

fn count(sink: &MemorySink, operation: &str) -> usize {
    sink.take().iter().filter(|s| s.name == operation).count()
}

fn calls(n: usize, f: fn()) {
    for _ in 0..n {
        f();
    }
}

fn parent(sampled: bool, low: u64) -> SpanContext {
    let mut bytes = [0x11u8; 16];
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    SpanContext {
        trace_id: TraceId::from_bytes(bytes).unwrap(),
        flags: TraceFlags::NOT_SAMPLED.with_sampled(sampled),
        ..SpanContext::new_root(sampled)
    }
}

fn under(p: &SpanContext, f: impl FnOnce()) {
    trace::with_parent(p, f);
}

#[test]
fn sampling_decisions() {
    // --- Spans are off until a sink is installed (no tracing subscriber in this binary).
    assert!(trace::uninstall_sink().is_none());
    assert!(!trace::sink_installed());
    for _ in 0..100 {
        assert!(!half(), "spans off: no context is set");
    }
    let sink = Arc::new(MemorySink::new(100_000));
    trace::install_sink(sink.clone());
    assert!(trace::sink_installed());

    // --- The default sampler: parent-based, roots at the site's ratio. Binomial bounds at
    // more than 6 standard deviations.
    std::env::remove_var(sampler::ENV_SAMPLER);
    sampler::reset();
    assert_eq!(sampler::sampler(), Sampler::ParentBasedSiteRatio);
    let mut sampled_ctx = 0;
    for _ in 0..4000 {
        if half() {
            sampled_ctx += 1; // spans on: every call has a context, sampled or not
        }
    }
    assert_eq!(sampled_ctx, 4000);
    let n = count(&sink, "half");
    assert!((1800..=2200).contains(&n), "sample = 0.5: {n} of 4000");
    calls(500, critical);
    assert_eq!(count(&sink, "critical"), 500);
    calls(20_000, background);
    let n = count(&sink, "background");
    assert!((110..=290).contains(&n), "background (1%): {n} of 20000");

    // --- Per-component defaults from the seeds, then changed at runtime.
    assert_eq!(sampler::component_ratio("dwcp-manager"), 0.1);
    assert_eq!(sampler::component_ratio("probft-consensus"), 1.0);
    assert_eq!(sampler::component_ratio("no-seed"), sampler::DEFAULT_RATIO);
    calls(300, consensus);
    assert_eq!(count(&sink, "consensus"), 300);
    calls(4000, manager);
    let n = count(&sink, "manager");
    assert!((280..=520).contains(&n), "dwcp-manager (10%): {n} of 4000");
    calls(4000, unseeded);
    let n = count(&sink, "unseeded");
    assert!((280..=520).contains(&n), "default (10%): {n} of 4000");
    sampler::set_component_ratio("dwcp-manager", 1.0).unwrap();
    calls(300, manager);
    assert_eq!(count(&sink, "manager"), 300);
    sampler::set_component_ratio("dwcp-manager", 0.0).unwrap();
    calls(300, manager);
    assert_eq!(count(&sink, "manager"), 0);
    sampler::set_default_ratio(1.0).unwrap();
    calls(50, unseeded);
    assert_eq!(count(&sink, "unseeded"), 50);
    assert_eq!(
        sampler::set_component_ratio("dwcp-manager", 1.5),
        Err(SamplerError::InvalidRatio("1.5".into()))
    );
    assert!(sampler::set_default_ratio(f64::NAN).is_err());

    // --- Parents: a parent-based sampler follows the flag whatever the site's ratio.
    let low = 0; // under every non-zero ratio threshold
    let high = u64::MAX; // above every threshold below 1
    under(&parent(true, high), || calls(10, background));
    assert_eq!(count(&sink, "background"), 10);
    under(&parent(false, low), || calls(10, critical));
    assert_eq!(count(&sink, "critical"), 0);

    // --- Process-wide samplers.
    sampler::set_sampler(Sampler::AlwaysOff).unwrap();
    calls(100, critical);
    under(&parent(true, low), || calls(10, critical));
    assert_eq!(count(&sink, "critical"), 0);

    sampler::set_sampler(Sampler::AlwaysOn).unwrap();
    calls(100, background);
    under(&parent(false, high), || calls(10, background));
    assert_eq!(count(&sink, "background"), 110);

    sampler::set_sampler(Sampler::ParentBasedAlwaysOff).unwrap();
    calls(100, critical);
    under(&parent(true, high), || calls(10, critical));
    assert_eq!(count(&sink, "critical"), 10);

    sampler::set_sampler(Sampler::ParentBasedAlwaysOn).unwrap();
    calls(100, background);
    under(&parent(false, low), || calls(10, background));
    assert_eq!(count(&sink, "background"), 100);

    // A trace-id ratio ignores the parent's flag and decides on the trace id.
    sampler::set_sampler(Sampler::TraceIdRatio(0.5)).unwrap();
    under(&parent(false, low), || calls(10, background));
    under(&parent(true, high), || calls(10, background));
    assert_eq!(count(&sink, "background"), 10);
    calls(4000, background);
    let n = count(&sink, "background");
    assert!((1800..=2200).contains(&n), "traceidratio 0.5: {n} of 4000");

    sampler::set_sampler(Sampler::ParentBasedTraceIdRatio(0.0)).unwrap();
    calls(100, critical);
    under(&parent(true, high), || calls(10, critical));
    assert_eq!(count(&sink, "critical"), 10);
    assert_eq!(
        sampler::set_sampler(Sampler::TraceIdRatio(-1.0)),
        Err(SamplerError::InvalidRatio("-1".into()))
    );

    // --- The environment, re-read by `reset`.
    std::env::set_var(sampler::ENV_SAMPLER, "always_off");
    sampler::reset();
    assert_eq!(sampler::sampler(), Sampler::AlwaysOff);
    assert_eq!(sampler::component_ratio("dwcp-manager"), 0.1, "seeds back");
    calls(50, critical);
    assert_eq!(count(&sink, "critical"), 0);

    std::env::set_var(sampler::ENV_SAMPLER, "parentbased_traceidratio");
    std::env::set_var(sampler::ENV_SAMPLER_ARG, "1");
    sampler::reset();
    assert_eq!(sampler::sampler(), Sampler::ParentBasedTraceIdRatio(1.0));
    calls(50, background);
    assert_eq!(count(&sink, "background"), 50);

    std::env::set_var(sampler::ENV_SAMPLER, "traceidratio");
    std::env::set_var(sampler::ENV_SAMPLER_ARG, "lots");
    sampler::reset();
    assert_eq!(sampler::sampler(), Sampler::ParentBasedSiteRatio);
    assert_eq!(
        sampler::env_error(),
        Some(SamplerError::InvalidRatio("lots".into()))
    );
    std::env::set_var(sampler::ENV_SAMPLER, "xray");
    sampler::reset();
    assert!(matches!(
        sampler::env_error(),
        Some(SamplerError::UnknownSampler(_))
    ));
    std::env::remove_var(sampler::ENV_SAMPLER);
    std::env::remove_var(sampler::ENV_SAMPLER_ARG);
    sampler::reset();
    assert_eq!(sampler::env_error(), None);
    assert_eq!(sampler::sampler(), Sampler::ParentBasedSiteRatio);

    // --- A sampled span's attributes are the call site's.
    calls(1, critical);
    let spans = sink.take();
    assert_eq!(spans.len(), 1);
    assert!(spans[0]
        .attributes
        .contains(&("dwcp.component".into(), AttrValue::Str("ratio-site".into()))));

    // --- Spans off again.
    trace::uninstall_sink();
    calls(10, critical);
    assert!(!half());
    assert!(sink.is_empty());
}
