#!/usr/bin/env bash
# The main job: the example DWCP manager service, instrumented, serving its endpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release --example dwcp_manager -- "$@"
