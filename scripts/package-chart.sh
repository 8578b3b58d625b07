#!/usr/bin/env bash
# Package the Helm chart for a release: a copy of charts/vmcp-normalizer with
# the chart version and appVersion set to VERSION and the default image set to
# REPOSITORY@DIGEST (the published multi-platform image), linted, packaged to
# OUT_DIR/vmcp-normalizer-VERSION.tgz, and rendered once to check that the
# Deployment runs exactly that image.
#
# The release workflow runs it with the pushed image's digest; CI (.ci/image)
# runs it with the digest of the image it built, so the command is tested.
#
# Usage: scripts/package-chart.sh VERSION REPOSITORY DIGEST [OUT_DIR]
#   e.g. scripts/package-chart.sh 0.2.0 ghcr.io/acme/vmcp-normalizer sha256:... target/chart
# Env:   HELM  the helm binary (default: .tools/bin/helm, installed by scripts/install-helm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 3 ] || { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
version="$1" repository="$2" digest="$3" out="${4:-target/chart}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "error: VERSION '$version' is not semver" >&2; exit 2; }
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "error: DIGEST '$digest' is not sha256:<64 hex>" >&2; exit 2; }
[[ "$repository" =~ ^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?$ ]] || { echo "error: REPOSITORY '$repository' is not a lower-case image name" >&2; exit 2; }

if [ -z "${HELM:-}" ]; then
    scripts/install-helm.sh >/dev/null
    HELM="$PWD/.tools/bin/helm"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r charts/vmcp-normalizer "$work/vmcp-normalizer"
python3 - "$work/vmcp-normalizer" "$version" "$repository" "$digest" <<'PY'
import re, sys
chart, version, repository, digest = sys.argv[1:5]

def edit(path, replacements):
    text = open(path).read()
    for pattern, value in replacements:
        text, n = re.subn(pattern, lambda m: m.group(1) + value, text, flags=re.M)
        if n != 1:
            sys.exit(f"error: {path}: expected one line matching {pattern!r}, found {n}")
    open(path, "w").write(text)

edit(f"{chart}/Chart.yaml", [
    (r'^(version: ).*$', version),
    (r'^(appVersion: ).*$', f'"{version}"'),
])
# The two keys under `image:` (two-space indent, the only ones of that name there).
edit(f"{chart}/values.yaml", [
    (r'^(  repository: ).*$', repository),
    (r'^(  digest: ).*$', f'"{digest}"'),
])
PY

"$HELM" lint --strict "$work/vmcp-normalizer" >/dev/null
mkdir -p "$out"
"$HELM" package "$work/vmcp-normalizer" --destination "$out" >/dev/null
package="$out/vmcp-normalizer-$version.tgz"

image="$("$HELM" template check "$package" --namespace check |
    sed -n 's/^ *image: "\(.*\)"$/\1/p' | sort -u)"
[ "$image" = "$repository@$digest" ] ||
    { echo "error: the packaged chart runs '$image', not $repository@$digest" >&2; exit 1; }
echo "$package $image"
