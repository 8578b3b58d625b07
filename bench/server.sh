#!/usr/bin/env bash
# Load benchmark of the webhook server over TLS (BENCHMARKS.md, "Server"): a
# patched review at 1,000 requests/s (budget: p99 under 2 ms) and resident
# memory at rest (budget: under 30 MiB).
#
# Release build, dev certificate, the AdmissionReview bodies of
# examples/bench-reviews.rs, and h2load (Debian: apt-get install -y nghttp2-client)
# on the same machine. HTTP/2 over TLS with keep-alive, as the apiserver calls.
#
#   bench/server.sh                             # build and measure this tree
#   BINARY=/tmp/before bench/server.sh          # measure another build
#   RATE_SECONDS=10 bench/server.sh             # quicker
#
# Prints the server's resident memory once ready; the patched review's maximum
# throughput (4 connections x 8 streams), for headroom; a fixed 1,000
# requests/s of patched reviews, evenly paced and in bursts, with p50/p99; and
# the resident memory again, at rest after all of it. RssFile is the binary's
# code as mapped from the page cache, which moves by a MiB with the cache's
# state; RssAnon is the server's own memory.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-50000}
RATE_SECONDS=${RATE_SECONDS:-30}
PORT=${PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-18080}
OUT=${OUT:-$(mktemp -d)}

command -v h2load >/dev/null || { echo "h2load not found: apt-get install -y nghttp2-client" >&2; exit 1; }

if [ -z "${BINARY:-}" ]; then
    cargo build --release --quiet --bin vmcp-normalizer
    BINARY=target/release/vmcp-normalizer
fi
# This checkout's binary makes the certificate: another BINARY may predate
# its dev-certificates command.
cargo build --release --quiet --bin vmcp-normalizer --example bench-reviews
target/release/vmcp-normalizer dev-certificates "$OUT/certs" >/dev/null
target/release/examples/bench-reviews "$OUT" >/dev/null

"$BINARY" serve \
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --tls-cert "$OUT/certs/tls.crt" --tls-key "$OUT/certs/tls.key" \
    --log-format json >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null

URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
mkdir -p "$OUT/buggy"

memory() {
    sleep 1
    echo "== resident memory at rest, $1"
    grep -E 'VmHWM|VmRSS|RssAnon|RssFile' "/proc/$SERVER/status"
}
memory "once ready"

# What each body gets back: only the buggy one carries a patch.
for case in buggy canonical not-vmcp; do
    answer=$(curl -fsS --cacert "$OUT/certs/ca.crt" -H 'content-type: application/json' \
        --data-binary "@$OUT/$case.json" "$URL")
    case $case in
        buggy) grep -q '"patchType":"JSONPatch"' <<<"$answer" ;;
        *) ! grep -q '"patch"' <<<"$answer" ;;
    esac
done

source bench/h2load.sh

echo "== patched reviews, max throughput: $REQUESTS requests, 4 connections x 8 streams"
h2load -t 1 -n 5000 -c 4 -m 8 -H 'content-type: application/json' -d "$OUT/buggy.json" "$URL" >/dev/null
run buggy/max -n "$REQUESTS" -c 4 -m 8 -d "$OUT/buggy.json"

# h2load paces each connection on its own timer, and all timers start together:
# one connection at 1000 req/s sends a request every millisecond, while ten
# connections at 100 req/s each send ten requests at once every 10 ms.
# (With -m above 1 on a single connection, h2load's rate mode adds about a
# millisecond of its own to every request, so the paced run keeps one in flight.)
# The server's CPU time per review (user + system, from /proc) moves less with
# the host's load than the latencies do, so it tells two builds apart better.
server_cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
echo "== patched reviews at 1000 req/s for ${RATE_SECONDS}s"
before=$(server_cpu)
run buggy/1000rps -n $((1000 * RATE_SECONDS)) -c 1 -m 1 --rps 1000 -d "$OUT/buggy.json"
echo "server CPU per review, evenly paced: $(( ($(server_cpu) - before) * 1000000 / $(getconf CLK_TCK) / (1000 * RATE_SECONDS) )) us"
run buggy/1000rps-burst -n $((1000 * RATE_SECONDS)) -c 10 -m 1 --rps 100 -d "$OUT/buggy.json"

memory "after $(grep -c '"message":"admission"' "$OUT/server.log") reviews"
echo "raw output in $OUT"
