//! The compression selector (seed 000, "Compression Selector Metrics"; seed 001's names
//! for the same model quantities are listed in `docs/catalog.md`).

use super::{catalog, Text};
use crate::LabelSet;

/// `{algorithm}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Algorithm {
    /// The compression algorithm (`zstd`, `lz4`, …).
    pub algorithm: Text,
}

/// `{model_version}` of the model metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Model {
    /// The selector model's version.
    pub model_version: Text,
}

/// `{prediction, confidence, model_version}` of `model_predictions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Prediction {
    /// The predicted algorithm.
    pub prediction: Text,
    /// A confidence band (`high`, `medium`, `low`): keep it to a few values.
    pub confidence: Text,
    /// The model's version.
    pub model_version: Text,
}

/// `{reason}` of `compression_fallback_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, LabelSet)]
#[label(crate = crate)]
pub struct Reason {
    /// Why the selector fell back.
    pub reason: Text,
}

/// Buckets of the selector's and the model's latencies: 0.1 ms to 100 ms (seed 001: P99
/// prediction latency under 10 ms).
pub const SELECTION_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

catalog! {
    system: "compression", "Compression selector";
    /// The compression selector's families.
    pub struct Compression {
        algorithm_selected_total: counter<Algorithm> = "compression_algorithm_selected_total" {
            help: "Times each algorithm was selected",
            unit: "selections",
            seed: MonitoringAlerting,
        },
        accuracy: gauge<Algorithm> = "compression_accuracy" {
            help: "Selection accuracy per algorithm (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
            note: "Seed 001 names the selector's overall accuracy `compression_selector_accuracy` (kept too, for its alert and dashboard).",
        },
        ratio_actual: gauge<Algorithm> = "compression_ratio_actual" {
            help: "Compression ratio achieved (uncompressed / compressed)",
            unit: "ratio (x:1)",
            seed: MonitoringAlerting,
        },
        ratio_expected: gauge<Algorithm> = "compression_ratio_expected" {
            help: "Compression ratio the selector predicted",
            unit: "ratio (x:1)",
            seed: MonitoringAlerting,
        },
        selection_duration_seconds: histogram<()> = "compression_selection_duration_seconds" {
            help: "Time to select an algorithm in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            buckets: SELECTION_BUCKETS,
        },
        overhead_percentage: gauge<()> = "compression_overhead_percentage" {
            help: "Selection overhead as a percentage of transfer time (0..100)",
            unit: "percent 0..100",
            seed: MonitoringAlerting,
            note: "Holds a percentage 0..100 as its name says; the seed's CompressionOverheadHigh compared it with 0.05 while saying 5% (fixed: `> 5`).",
        },
        throughput_bytes_per_second: gauge<()> = "compression_throughput_bytes_per_second" {
            help: "Compression throughput in bytes per second",
            unit: "bytes/s",
            seed: MonitoringAlerting,
        },
        model_inference_duration_seconds: histogram<Model> = "model_inference_duration_seconds" {
            help: "Selector model inference time in seconds",
            unit: "seconds",
            seed: MonitoringAlerting,
            buckets: SELECTION_BUCKETS,
            note: "Seed 001's ML dashboard times the selector's predictions as `compression_selector_prediction_duration` (kept too).",
        },
        model_predictions_total: counter<Prediction> = "model_predictions_total" {
            help: "Predictions made by the selector model",
            unit: "predictions",
            seed: MonitoringAlerting,
        },
        model_accuracy_rolling_7d: gauge<Model> = "model_accuracy_rolling_7d" {
            help: "Model accuracy over the last 7 days (0..1)",
            unit: "ratio 0..1",
            seed: MonitoringAlerting,
            note: "The window in the name is part of the seed's name, kept.",
        },
        model_drift_score: gauge<Model> = "model_drift_score" {
            help: "Model input drift score",
            unit: "score",
            seed: MonitoringAlerting,
        },
        fallback_total: counter<Reason> = "compression_fallback_total" {
            help: "Fallbacks to the default algorithm, by reason",
            unit: "fallbacks",
            seed: MonitoringAlerting,
        },
        selector_accuracy: gauge<()> = "compression_selector_accuracy" {
            help: "Overall accuracy of the compression selector (0..1)",
            unit: "ratio 0..1",
            seed: SetupGuide,
            note: "Seed 001's name for the selector's accuracy (seed 000 has `compression_accuracy{algorithm}` per algorithm); kept because seed 001's ModelAccuracyDrop alert and ML dashboard query it.",
        },
        selector_prediction_duration: histogram<()> = "compression_selector_prediction_duration" {
            help: "Time the selector takes to predict an algorithm, in seconds",
            unit: "seconds",
            seed: SetupGuide,
            buckets: SELECTION_BUCKETS,
            as_unit: Seconds,
            note: "No unit suffix (convention: `_seconds`); kept because seed 001's dashboard queries `compression_selector_prediction_duration_bucket`. Values are seconds (stored as nanoseconds: record with `record_secs` or a timer).",
        },
        default_algorithm_used: gauge<()> = "compression_default_algorithm_used" {
            help: "1 while the selector uses the default algorithm, else 0",
            unit: "0 or 1",
            seed: MonitoringAlerting,
            note: "The seed gives no type; a 0/1 gauge (the count of fallbacks is `compression_fallback_total`).",
        },
    }
}
