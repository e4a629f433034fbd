//! Circular-buffer z-score anomaly detection.
