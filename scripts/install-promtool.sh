#!/usr/bin/env bash
# Install promtool (Prometheus' rule checker) into .tools/bin/promtool for the
# chart tests, from Debian's `prometheus` package: the .deb is downloaded with
# `apt-get download` (no root, no install, no service started) and only
# usr/bin/promtool is taken out of it. Idempotent: an .tools/bin/promtool that
# runs is kept.
#
# Elsewhere (macOS, other distributions): install Prometheus' promtool and
# put it on PATH or in PROMTOOL.
#
# Usage: scripts/install-promtool.sh     (prints the promtool version)
# Env:   PROMTOOL_TOOLS_DIR   install prefix (default: <repo>/.tools)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${PROMTOOL_TOOLS_DIR:-$repo_root/.tools}"
bin="$tools_dir/bin/promtool"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    echo "promtool already installed at $bin"
    "$bin" --version 2>&1 | head -n1
    exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "error: no apt-get/dpkg-deb here: install promtool and set PROMTOOL=/path/to/promtool" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download -q prometheus >/dev/null 2>&1); }
if ! download; then
    # A fresh machine may not have read its package lists yet.
    if [ "$(id -u)" = 0 ]; then
        apt-get update -q >/dev/null
        download
    else
        echo "error: apt-get download prometheus failed (run apt-get update, or set PROMTOOL)" >&2
        exit 1
    fi
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$tools_dir/bin"
install -m 0755 "$work/root/usr/bin/promtool" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "installed promtool at $bin"
"$bin" --version 2>&1 | head -n1
