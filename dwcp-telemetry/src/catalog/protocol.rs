//! The DWCP protocol (seed 004, "DWCP Protocol Metrics"): latency, packet loss, bandwidth,
//! compression ratio and streams. The seed gives no labels beyond the scrape's own.

use super::catalog;

catalog! {
    system: "protocol", "DWCP protocol";
    /// The protocol's families.
    pub struct Protocol {
        streams_active: gauge<()> = "dwcp_streams_active" {
            help: "Active DWCP streams",
            unit: "streams",
            seed: NovaCron,
        },
        streams_max: gauge<()> = "dwcp_streams_max" {
            help: "Most DWCP streams allowed",
            unit: "streams",
            seed: NovaCron,
            note: "Only named inside the seed's DWCPStreamOverflow expression; exported so that alert can work.",
        },
        bandwidth_allocated_bytes: gauge<()> = "dwcp_bandwidth_allocated_bytes" {
            help: "Bandwidth allocated to streams, in bytes per second",
            unit: "bytes/s",
            seed: NovaCron,
            note: "A rate in bytes per second under a `_bytes` name; kept (the seed's alert divides the two bandwidth gauges, so only their ratio matters).",
        },
        bandwidth_available_bytes: gauge<()> = "dwcp_bandwidth_available_bytes" {
            help: "Bandwidth available, in bytes per second",
            unit: "bytes/s",
            seed: NovaCron,
            note: "As `dwcp_bandwidth_allocated_bytes`.",
        },
        compression_ratio: gauge<()> = "dwcp_compression_ratio" {
            help: "Compression ratio achieved (uncompressed / compressed)",
            unit: "ratio (x:1)",
            seed: NovaCron,
        },
        packet_loss_rate: gauge<()> = "dwcp_packet_loss_rate" {
            help: "Fraction of packets lost (0..1)",
            unit: "ratio 0..1",
            seed: NovaCron,
            note: "`_rate` is a ratio of packets, not a per-second rate; kept.",
        },
        latency_milliseconds: gauge<()> = "dwcp_latency_milliseconds" {
            help: "Average DWCP protocol latency in milliseconds",
            unit: "milliseconds",
            seed: NovaCron,
            note: "Milliseconds, not the base unit (seconds); kept because the seed's alert threshold (100) and dashboards are in ms.",
        },
    }
}
