#!/usr/bin/env bash
# Load benchmark of Deployment reviews with the live ConfigMap lookup
# (BENCHMARKS.md, "Deployment reviews with the live ConfigMap lookup").
#
# Release build, dev certificate, the Kubernetes API stand-in of the tests as
# a process (examples/apiserver-standin.rs) holding the fixture ConfigMap in
# buggy order, the server pointed at it with --kubeconfig, and h2load (Debian:
# apt-get install -y nghttp2-client) on the same machine, HTTP/2 over TLS with
# keep-alive. Every review costs one GET to the stand-in (HTTPS, pooled), a
# normalization of the ConfigMap, and a patch of the pod-template checksum.
#
#   bench/deployments.sh                     # 200 req/s for 30 s, then max
#   RATE_SECONDS=10 bench/deployments.sh     # quicker
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-200}
RATE_SECONDS=${RATE_SECONDS:-30}
REQUESTS=${REQUESTS:-20000}
PORT=${PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-18080}
API_PORT=${API_PORT:-16443}
OUT=${OUT:-$(mktemp -d)}

command -v h2load >/dev/null || { echo "h2load not found: apt-get install -y nghttp2-client" >&2; exit 1; }

cargo build --release --quiet --bin vmcp-normalizer \
    --example bench-reviews --example apiserver-standin
target/release/vmcp-normalizer dev-certificates "$OUT/certs" >/dev/null
target/release/examples/bench-reviews "$OUT" >/dev/null

target/release/examples/apiserver-standin "$OUT" "$API_PORT" >"$OUT/standin.log" 2>&1 &
STANDIN=$!
trap 'kill "$SERVER" "$STANDIN" 2>/dev/null || true' EXIT
SERVER=
for _ in $(seq 100); do [ -s "$OUT/kubeconfig" ] && break; sleep 0.1; done

target/release/vmcp-normalizer serve \
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --tls-cert "$OUT/certs/tls.crt" --tls-key "$OUT/certs/tls.key" \
    --kubeconfig "$OUT/kubeconfig" --log-format json >"$OUT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null

URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
mkdir -p "$OUT/deployment"

# The answer must carry the checksum patch (so the lookup really happened).
answer=$(curl -fsS --cacert "$OUT/certs/ca.crt" -H 'content-type: application/json' \
    --data-binary "@$OUT/deployment.json" "$URL")
grep -q '"patchType":"JSONPatch"' <<<"$answer" || { echo "no patch: $answer" >&2; exit 1; }

source bench/h2load.sh

# Warm-up: TLS to the stand-in, the client pool, page faults.
h2load -t 1 -n 2000 -c 1 -m 4 -H 'content-type: application/json' -d "$OUT/deployment.json" "$URL" >/dev/null

# h2load paces each connection on its own timer, all started together. With -m
# above 1 on one connection its rate mode adds about a millisecond of its own
# to every request, so the evenly paced run keeps one request in flight.
echo "== fixed rate: $RATE req/s for ${RATE_SECONDS}s, one connection, evenly paced"
run "deployment/${RATE}rps" -n $((RATE * RATE_SECONDS)) -c 1 -m 1 --rps "$RATE" -d "$OUT/deployment.json"
echo "== fixed rate: $RATE req/s for ${RATE_SECONDS}s, bursts: 10 connections x $((RATE / 10)) req/s firing together"
run "deployment/${RATE}rps-burst" -n $((RATE * RATE_SECONDS)) -c 10 -m 1 --rps $((RATE / 10)) -d "$OUT/deployment.json"
echo "== max throughput: $REQUESTS requests, 4 connections x 8 streams"
run "deployment/max" -n "$REQUESTS" -c 4 -m 8 -d "$OUT/deployment.json"

echo "== lookups (server /metrics)"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^vmcp_normalizer_(configmap_lookups_total|configmap_lookup_duration_seconds_(sum|count)|admission_requests_total\{kind="Deployment")'
echo "== server memory after the runs"
grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status"
echo "raw output in $OUT"
