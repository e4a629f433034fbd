//! Writes the ops artifacts generated from the metric catalog: `deploy/prometheus/*`
//! (alerting and recording rules, promtool unit tests), `deploy/grafana/*.json`,
//! `deploy/alertmanager/alertmanager.yml` and `docs/catalog.md`.
//!
//! ```text
//! cargo run --example gen_ops            # (re)write the files
//! cargo run --example gen_ops -- --check # exit 1 if a committed file differs
//! ```
//!
//! The committed files use the seeds' `for:` durations and rule interval, and the default
//! SLA targets (`OpsConfig::default()`). `tests/catalog_rules.rs` fails when they drift.

use std::path::PathBuf;
use std::process::ExitCode;

use dwcp_telemetry::catalog::ops::{generate, OpsConfig};

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = match generate(&OpsConfig::default()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gen_ops: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = 0;
    for a in &files {
        let path = root.join(a.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == a.contents {
            continue;
        }
        if check {
            eprintln!("gen_ops: {} is out of date", a.path);
            stale += 1;
            continue;
        }
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("gen_ops: create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        if let Err(e) = std::fs::write(&path, &a.contents) {
            eprintln!("gen_ops: write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("gen_ops: wrote {}", a.path);
    }
    if stale > 0 {
        eprintln!("gen_ops: {stale} file(s) out of date: run `cargo run --example gen_ops`");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
