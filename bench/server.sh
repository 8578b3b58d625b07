#!/usr/bin/env bash
# Load benchmark of the webhook server over TLS (BENCHMARKS.md, "Server").
#
# Release build, dev certificate, the three AdmissionReview bodies of
# examples/bench-reviews.rs, and h2load (Debian: apt-get install -y nghttp2-client)
# on the same machine. HTTP/2 over TLS with keep-alive, as the apiserver calls.
#
#   bench/server.sh                 # everything
#   REQUESTS=20000 RATE_SECONDS=10 bench/server.sh   # quicker
#
# Prints, per case: max throughput (4 connections x 8 streams) with p50/p99,
# then a fixed 1,000 requests/s, evenly paced and in bursts, with p50/p99,
# and the server's resident memory at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-100000}
RATE_SECONDS=${RATE_SECONDS:-30}
PORT=${PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-18080}
OUT=${OUT:-$(mktemp -d)}

command -v h2load >/dev/null || { echo "h2load not found: apt-get install -y nghttp2-client" >&2; exit 1; }

cargo build --release --quiet --bin vmcp-normalizer --example dev-certs --example bench-reviews
target/release/examples/dev-certs "$OUT/certs" >/dev/null
target/release/examples/bench-reviews "$OUT" >/dev/null

target/release/vmcp-normalizer serve \
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
mkdir -p "$OUT/not-vmcp" "$OUT/canonical" "$OUT/buggy"

# What each body gets back: the buggy one must carry a patch.
for case in buggy canonical not-vmcp; do
    answer=$(curl -fsS --cacert "$OUT/certs/ca.crt" -H 'content-type: application/json' \
        --data-binary "@$OUT/$case.json" "$URL")
    case $case in
        buggy) grep -q '"patchType":"JSONPatch"' <<<"$answer" ;;
        *) ! grep -q '"patch"' <<<"$answer" ;;
    esac
done

# p50/p99/max (ms) from an h2load --log-file (start µs, status, duration µs);
# fails when any request did not get a 200.
percentiles() {
    python3 - "$1" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
bad = [r for r in rows if r[1] != "200"]
if bad:
    sys.exit(f"{len(bad)} of {len(rows)} requests did not get 200")
d = sorted(int(r[2]) for r in rows)
pick = lambda q: d[min(len(d) - 1, int(q * len(d)))] / 1000
print(f"n={len(d)} p50={pick(0.50):.3f}ms p99={pick(0.99):.3f}ms max={d[-1]/1000:.3f}ms")
PY
}

run() { # name, h2load args...
    local name=$1; shift
    h2load -t 1 -H 'content-type: application/json' --log-file "$OUT/$name.log" "$@" "$URL" >"$OUT/$name.txt"
    local rate
    rate=$(grep -o 'finished in [^,]*, [0-9.]* req/s' "$OUT/$name.txt")
    grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$OUT/$name.txt" \
        || { cat "$OUT/$name.txt"; exit 1; }
    printf '%-22s %-36s %s\n' "$name" "$rate" "$(percentiles "$OUT/$name.log")"
}

echo "== max throughput: $REQUESTS requests, 4 connections x 8 streams, h2 + TLS"
for case in not-vmcp canonical buggy; do
    h2load -t 1 -n 5000 -c 4 -m 8 -H 'content-type: application/json' -d "$OUT/$case.json" "$URL" >/dev/null
    run "$case/max" -n "$REQUESTS" -c 4 -m 8 -d "$OUT/$case.json"
done

# h2load paces each connection on its own timer, and all timers start together:
# one connection at 1000 req/s sends a request every millisecond, while ten
# connections at 100 req/s each send ten requests at once every 10 ms.
# (With -m above 1 on a single connection, h2load's rate mode adds about a
# millisecond of its own to every request, so the paced run keeps one in flight.)
echo "== fixed rate: 1000 req/s for ${RATE_SECONDS}s, one connection, evenly paced"
for case in not-vmcp canonical buggy; do
    run "$case/1000rps" -n $((1000 * RATE_SECONDS)) -c 1 -m 1 --rps 1000 -d "$OUT/$case.json"
done
echo "== fixed rate: 1000 req/s for ${RATE_SECONDS}s, bursts: 10 connections x 100 req/s firing together"
for case in not-vmcp canonical buggy; do
    run "$case/1000rps-burst" -n $((1000 * RATE_SECONDS)) -c 10 -m 1 --rps 100 -d "$OUT/$case.json"
done

echo "== server memory after the runs"
grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status"
echo "admission log lines: $(grep -c '"message":"admission"' "$OUT/server.log")"
echo "raw output in $OUT"
