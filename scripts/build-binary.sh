#!/usr/bin/env bash
# Build the static release binary the container image holds, check that it is
# static, and stage it where the Dockerfile copies it from:
#
#   target/image/linux-<arch>/vmcp-normalizer      (<arch>: amd64 or arm64)
#
# The target is <machine>-unknown-linux-musl: musl links statically by default,
# so the binary needs no libc and runs on an empty base image. ring's C parts
# need a C compiler for musl (Debian/Ubuntu: apt-get install -y musl-tools).
# Paths of the build machine are remapped, so the binary does not depend on
# where the checkout or the cargo home is.
#
# The same command runs on developers' machines, in CI (.ci/image) and in the
# release workflow (once per architecture, on a native runner).
#
# Usage: scripts/build-binary.sh          (prints the staged path)
set -euo pipefail
cd "$(dirname "$0")/.."

case "$(uname -m)" in
    x86_64 | amd64) machine=x86_64 arch=amd64 ;;
    aarch64 | arm64) machine=aarch64 arch=arm64 ;;
    *) echo "error: no image architecture for $(uname -m)" >&2; exit 1 ;;
esac
triple="$machine-unknown-linux-musl"

rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple"
command -v musl-gcc >/dev/null || {
    echo "error: musl-gcc not found (ring needs a C compiler for $triple): apt-get install -y musl-tools" >&2
    exit 1
}

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# With --target, RUSTFLAGS reach only the target's crates, not build scripts:
# the host build cache stays valid.
RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$PWD=/src" \
    cargo build --release --locked --target "$triple" --bin vmcp-normalizer >&2
binary="target/$triple/release/vmcp-normalizer"

# No dynamic dependencies: no program interpreter (ld.so) and no DT_NEEDED
# entry. A static-pie binary still has a dynamic section (for its own
# relocations), so the check is on these two, not on "is it ET_EXEC".
headers="$(readelf --program-headers --wide "$binary")"
dynamic="$(readelf --dynamic --wide "$binary")"
if grep -q 'INTERP' <<<"$headers" || grep -q '(NEEDED)' <<<"$dynamic"; then
    echo "error: $binary is not static:" >&2
    grep -E 'INTERP|Requesting program interpreter' <<<"$headers" >&2 || true
    grep '(NEEDED)' <<<"$dynamic" >&2 || true
    exit 1
fi

stage="target/image/linux-$arch"
mkdir -p "$stage"
install -m 0755 "$binary" "$stage/vmcp-normalizer"
echo "$stage/vmcp-normalizer"
