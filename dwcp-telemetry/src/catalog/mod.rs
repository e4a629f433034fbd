//! The DWCP metric catalog: every metric the seeds define, typed.
//!
//! One module per system. Each has typed label sets (`#[derive(LabelSet)]` structs, so a
//! label the metric does not have, or a missing one, does not compile), one `register`
//! call that puts the system's families on a [`Registry`](crate::Registry) and returns a struct of typed
//! families, and a table of [`MetricDef`]s (name, kind, labels, unit, buckets, source seed,
//! deviation notes) from which `docs/catalog.md` and the ops artifacts under `deploy/`
//! (alert and recording rules, dashboards) are generated ([`ops`]).
//!
//! | module | system | seed |
//! |---|---|---|
//! | [`manager`] | DWCP manager: health, recovery, circuit breaker, performance, resources | 000 |
//! | [`compression`] | compression selector, incl. its ML model | 000, 001 |
//! | [`probft`], [`bullshark`], [`tpbft`] | consensus | 000, 001 |
//! | [`maddpg`] | MADDPG resource allocator | 000, 001 |
//! | [`protocol`] | DWCP protocol: latency, packet loss, bandwidth, compression, streams | 004 |
//! | [`v3`] | v3 components AMST, HDE, PBA, ACP, ASS, ITP; rollout, SLA, anomaly | 002, 003 |
//!
//! Every metric also carries the registry's `version` label (not part of the label sets).
//!
//! ```
//! use dwcp_telemetry::catalog::manager::{self, Circuit};
//! use dwcp_telemetry::Registry;
//!
//! let registry = Registry::builder().version("3.0.0").build()?;
//! let m = manager::register_resilience(&registry)?;
//! m.circuit_breaker_trips_total.get(&Circuit { circuit: "database".into() }).inc();
//! assert_eq!(
//!     m.circuit_breaker_trips_total.get(&Circuit { circuit: "database".into() }).get(),
//!     1
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use crate::registry::MetricKind;

pub mod bullshark;
pub mod compression;
pub mod maddpg;
pub mod manager;
pub mod ops;
pub mod probft;
pub mod protocol;
pub mod resources;
pub mod tpbft;
pub mod v3;

/// An open-ended label value: a literal (`"database".into()`) or a run-time `String`.
pub type Text = Cow<'static, str>;

/// The seed documents (`../shared/seeds/`) metrics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Seed {
    /// `000`: "Production Monitoring & Alerting - DWCP Systems".
    MonitoringAlerting,
    /// `001`: "DWCP Systems - Monitoring Setup Guide".
    SetupGuide,
    /// `002`: "DWCP v3 Phase 5: Production Monitoring Operations Guide".
    V3Operations,
    /// `003`: "DWCP v3 Phase 6: Monitoring Implementation Summary".
    V3Phase6,
    /// `004`: "NovaCron Monitoring & Alerting Strategy".
    NovaCron,
    /// Not named by any seed: defined by this catalog where a seed describes a quantity
    /// (or a rule needs one) without giving it a name. Listed in `docs/catalog.md`.
    Catalog,
}

impl Seed {
    /// A short reference, e.g. `"000 monitoring & alerting"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Seed::MonitoringAlerting => "000 monitoring & alerting",
            Seed::SetupGuide => "001 setup guide",
            Seed::V3Operations => "002 v3 operations guide",
            Seed::V3Phase6 => "003 v3 phase 6 summary",
            Seed::NovaCron => "004 NovaCron strategy",
            Seed::Catalog => "catalog (no seed name)",
        }
    }
}

/// One metric of the catalog, as documented and as the ops generator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The family name as registered (a counter's samples are exported as `<name>_total`
    /// when the name lacks it; see [`MetricDef::sample_name`]).
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// The label names, `version` excluded (every series has it).
    pub labels: &'static [&'static str],
    /// The unit of the exported values, in words (`"seconds"`, `"bytes"`, `"ratio 0..1"`…).
    pub unit: &'static str,
    /// The HELP text.
    pub help: &'static str,
    /// Export-time histogram buckets, if the catalog fixes them.
    pub buckets: Option<&'static [f64]>,
    /// Where the name comes from.
    pub seed: Seed,
    /// Deviation from the seed or from Prometheus conventions, if any (empty otherwise).
    pub note: &'static str,
}

impl MetricDef {
    /// The sample name PromQL uses: `<name>_total` for a counter whose name lacks `_total`
    /// (this crate's exposition always writes counters with the suffix), else the name.
    pub fn sample_name(&self) -> Cow<'static, str> {
        if self.kind == MetricKind::Counter && !self.name.ends_with("_total") {
            Cow::Owned(format!("{}_total", self.name))
        } else {
            Cow::Borrowed(self.name)
        }
    }
}

/// A system of the catalog: its module's name and metric table.
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// The module name (`"manager"`, `"probft"`, …).
    pub name: &'static str,
    /// A title for documentation.
    pub title: &'static str,
    /// The metrics.
    pub metrics: &'static [MetricDef],
}

/// Every system of the catalog, in documentation order.
pub fn systems() -> [System; 9] {
    [
        manager::SYSTEM,
        manager::RESILIENCE_SYSTEM,
        compression::SYSTEM,
        probft::SYSTEM,
        bullshark::SYSTEM,
        tpbft::SYSTEM,
        maddpg::SYSTEM,
        protocol::SYSTEM,
        v3::SYSTEM,
    ]
}

/// The catalog entry for `name` (family name, or a counter's `_total` sample name).
pub fn find(name: &str) -> Option<MetricDef> {
    systems()
        .into_iter()
        .flat_map(|s| s.metrics.iter().copied())
        .find(|m| m.name == name || m.sample_name() == name)
}

/// Declares a system's families: the struct of typed families, its `register` function and
/// its `METRICS` table, from one list.
macro_rules! catalog {
    (
        system: $sys:literal, $title:literal;
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident: $kind:ident<$labels:ty> = $metric:literal {
                    help: $help:literal,
                    unit: $unit:literal,
                    seed: $seed:ident
                    $(, buckets: $buckets:expr)?
                    $(, as_unit: $as_unit:ident)?
                    $(, note: $note:literal)?
                    $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(
                #[doc = concat!("`", $metric, "` (", stringify!($kind), ", labels `",
                    stringify!($labels), "` + `version`; unit: ", $unit, "; seed: ",
                    stringify!($seed), "). ", $help, ".")]
                $(#[doc = ""] #[doc = concat!("**Deviation:** ", $note)])?
                $(#[$fmeta])*
                pub $field: catalog!(@family $kind, $labels),
            )*
        }

        /// This system's metrics, in declaration order.
        pub const METRICS: &[$crate::catalog::MetricDef] = &[
            $(
                $crate::catalog::MetricDef {
                    name: $metric,
                    kind: catalog!(@kind $kind),
                    labels: <$labels as $crate::labels::LabelSet>::NAMES,
                    unit: $unit,
                    help: $help,
                    buckets: catalog!(@buckets $($buckets)?),
                    seed: $crate::catalog::Seed::$seed,
                    note: catalog!(@note $($note)?),
                },
            )*
        ];

        /// This system, for [`crate::catalog::systems`].
        pub const SYSTEM: $crate::catalog::System = $crate::catalog::System {
            name: $sys,
            title: $title,
            metrics: METRICS,
        };

        /// Registers every family of this system on `registry` (or fetches the identical
        /// ones already there) and returns them typed.
        pub fn register(
            registry: &$crate::Registry,
        ) -> Result<$name, $crate::RegistrationError> {
            Ok($name {
                $(
                    $field: {
                        let b = registry.$kind($metric, $help).labels::<$labels>();
                        $(let b = b.buckets($buckets.to_vec());)?
                        $(let b = b.unit($crate::Unit::$as_unit);)?
                        b.register()?
                    },
                )*
            })
        }
    };
    (@family counter, $l:ty) => { $crate::CounterFamily<$l> };
    (@family gauge, $l:ty) => { $crate::GaugeFamily<$l> };
    (@family histogram, $l:ty) => { $crate::HistogramFamily<$l> };
    (@kind counter) => { $crate::MetricKind::Counter };
    (@kind gauge) => { $crate::MetricKind::Gauge };
    (@kind histogram) => { $crate::MetricKind::Histogram };
    (@buckets) => { None };
    (@buckets $b:expr) => { Some(&$b) };
    (@note) => { "" };
    (@note $n:literal) => { $n };
}
pub(crate) use catalog;
