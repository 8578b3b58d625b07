#!/usr/bin/env bash
# Build the container image without a daemon and write it as an OCI archive:
#
#   target/image/vmcp-normalizer-<version>.oci.tar        the image (one platform: this machine's)
#   target/image/vmcp-normalizer-<version>.oci.tar.digest its manifest digest (sha256:...)
#
# Steps: scripts/build-binary.sh (static musl binary, checked, staged), then
# buildah builds the top-level Dockerfile (FROM scratch + that file; no RUN, so
# no container runtime is needed) and writes the archive. Buildah keeps its
# storage under target/image/buildah/ and it is removed afterwards.
#
# Reproducible: every timestamp in the image (config, history, file times in
# the layer) is SOURCE_DATE_EPOCH, by default the time of the last commit. The
# same binary and the same epoch give the same digest.
#
# Load the archive (the image is named $IMAGE:<version> inside it):
#   kind load image-archive target/image/vmcp-normalizer-<version>.oci.tar
#   k3d image import target/image/vmcp-normalizer-<version>.oci.tar -c CLUSTER
#   ctr -n k8s.io images import target/image/vmcp-normalizer-<version>.oci.tar
#   skopeo copy oci-archive:target/image/vmcp-normalizer-<version>.oci.tar docker://REGISTRY/vmcp-normalizer:<version>
#
# Needs: buildah and skopeo (Debian/Ubuntu: apt-get install -y buildah skopeo),
# musl-tools and the Rust toolchain (for the binary).
# Env:   IMAGE              repository name inside the archive (default: the chart's image.repository)
#        SOURCE_URL         org.opencontainers.image.source (default: the placeholder repository)
#        REVISION           org.opencontainers.image.revision (default: git rev-parse HEAD)
#        SOURCE_DATE_EPOCH  every timestamp in the image (default: the last commit's time)
set -euo pipefail
cd "$(dirname "$0")/.."

# The placeholder owner; the release workflow sets IMAGE and SOURCE_URL from
# the repository it runs in (charts/vmcp-normalizer/values.yaml has the same default).
IMAGE="${IMAGE:-ghcr.io/vmcp-normalizer/vmcp-normalizer}"
SOURCE_URL="${SOURCE_URL:-https://github.com/vmcp-normalizer/vmcp-normalizer}"
if [ -z "${REVISION:-}" ] || [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    git rev-parse HEAD >/dev/null 2>&1 ||
        echo "warning: not a git checkout git can read: revision 'unknown', timestamps 0 (set REVISION and SOURCE_DATE_EPOCH)" >&2
fi
REVISION="${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH

for tool in buildah skopeo; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool not found: apt-get install -y buildah skopeo" >&2
        exit 1
    }
done

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
[ -n "$version" ] || { echo "error: no version in Cargo.toml" >&2; exit 1; }
# The revision the binary reports (--version, build_info) is the label's.
binary="$(VMCP_NORMALIZER_REVISION="$REVISION" scripts/build-binary.sh)"
arch="$(basename "$(dirname "$binary")")"
arch="${arch#linux-}"

out_dir="target/image"
archive="$out_dir/vmcp-normalizer-$version.oci.tar"
ref="$IMAGE:$version"
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

# A private, throw-away store: nothing left in /var/lib/containers, no state
# carried from one build into the next.
store="$PWD/$out_dir/buildah"
rm -rf "$store"
trap 'rm -rf "$store"' EXIT
buildah_() {
    buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"
}

buildah_ bud --quiet \
    --isolation chroot \
    --platform "linux/$arch" \
    --timestamp "$SOURCE_DATE_EPOCH" \
    --build-arg "VERSION=$version" \
    --build-arg "REVISION=$REVISION" \
    --build-arg "SOURCE=$SOURCE_URL" \
    --build-arg "CREATED=$created" \
    --file Dockerfile \
    --tag "$ref" \
    . >/dev/null

rm -f "$archive"
# The archive's index names the image by its full reference, which is what
# containerd (ctr, kind, k3d) takes as the image name when importing.
buildah_ push --quiet --format oci "$ref" "oci-archive:$archive:$ref"

digest="$(skopeo inspect --raw "oci-archive:$archive" | sha256sum | cut -d' ' -f1)"
echo "sha256:$digest" >"$archive.digest"
echo "$archive $ref sha256:$digest"
