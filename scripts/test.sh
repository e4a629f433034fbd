#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up, style, lints, tests, loom models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# In this script the real Prometheus / promtool tests must run, never skip.
export DWCP_REQUIRE_PROMETHEUS=1
# ... and no test may skip for a missing build artefact either.
export DWCP_CI=1

echo "== fmt";    cargo fmt --all -- --check
echo "== clippy"; cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== tests";  cargo test --workspace --all-features
echo "== loom";   RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
                    cargo test -p dwcp-telemetry --release --lib loom_
echo "== docs";   RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps
echo "== all green"
