#!/usr/bin/env bash
# Set up a fresh Debian machine for dwcp-telemetry: the Rust toolchain is assumed present
# (rustup); this installs what tests need from Debian: the `prometheus` package (server and
# promtool). Idempotent.
set -euo pipefail

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
# Headless Chromium loads /status in tests/status_page.rs.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # --no-install-recommends keeps it to the server and promtool; the package's service is not
  # started by tests (they run their own instance on loopback).
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# amtool (from Alertmanager's package) checks the generated deploy/alertmanager/alertmanager.yml
# in tests/catalog_rules.rs; the package's service is not used.
if ! command -v amtool >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
fi
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus-client
# The Debian package may start a system service on :9090; tests do not rely on it.
prometheus --version 2>&1 | head -1
promtool --version 2>&1 | head -1
chromium --version 2>&1 | head -1
# fmt and clippy are part of the test command; add them if the toolchain lacks either.
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "${component}" >/dev/null 2>&1 || true
  fi
done
