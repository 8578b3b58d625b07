#!/usr/bin/env bash
# Load benchmark of the webhook server over TLS (BENCHMARKS.md, "Server").
#
# Release build, dev certificate, the three AdmissionReview bodies of
# examples/bench-reviews.rs, and h2load (Debian: apt-get install -y nghttp2-client)
# on the same machine. HTTP/2 over TLS with keep-alive, as the apiserver calls.
#
#   bench/server.sh                 # everything
#   REQUESTS=20000 RATE_SECONDS=10 ROUNDS=3 bench/server.sh   # quicker
#
# Prints, per case: max throughput (4 connections x 8 streams) with p50/p99;
# the (a)/(c) throughput ratio over interleaved rounds (the host's load moves
# more between minutes than between cases run back to back); then a fixed
# 1,000 requests/s, evenly paced and in bursts, with p50/p99; and the server's
# resident memory at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-100000}
RATE_SECONDS=${RATE_SECONDS:-30}
ROUNDS=${ROUNDS:-15}
ROUND_REQUESTS=${ROUND_REQUESTS:-40000}
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

source bench/h2load.sh

echo "== max throughput: $REQUESTS requests, 4 connections x 8 streams, h2 + TLS"
for case in not-vmcp canonical buggy; do
    h2load -t 1 -n 5000 -c 4 -m 8 -H 'content-type: application/json' -d "$OUT/$case.json" "$URL" >/dev/null
    run "$case/max" -n "$REQUESTS" -c 4 -m 8 -d "$OUT/$case.json"
done

# One round runs (c) and (a) back to back, so both see the same host load;
# the median of the rounds' ratios is the figure to quote.
# The server's own CPU per request (user + system, from /proc) is printed too:
# unlike the rates, it does not depend on how the two cores were shared.
echo "== (a)/(c) throughput: $ROUNDS rounds of $ROUND_REQUESTS requests each, (c) then (a)"
ticks=$(getconf CLK_TCK)
server_cpu() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
ratios=()
for round in $(seq "$ROUNDS"); do
    rates=()
    cpu=()
    for case in not-vmcp buggy; do
        before=$(server_cpu)
        h2load -t 1 -n "$ROUND_REQUESTS" -c 4 -m 8 -H 'content-type: application/json' \
            -d "$OUT/$case.json" "$URL" >"$OUT/round-$round-$case.txt"
        cpu+=("$(( ($(server_cpu) - before) * 1000000 / ticks / ROUND_REQUESTS ))")
        grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$OUT/round-$round-$case.txt" \
            || { cat "$OUT/round-$round-$case.txt"; exit 1; }
        rates+=("$(grep -o '[0-9.]* req/s' "$OUT/round-$round-$case.txt" | head -1 | cut -d' ' -f1)")
    done
    ratio=$(python3 -c "print(f'{${rates[1]} / ${rates[0]}:.3f}')")
    ratios+=("$ratio")
    printf 'round %d: (c) %s req/s, (a) %s req/s, (a)/(c) = %s; server CPU per request: (c) %s us, (a) %s us\n' \
        "$round" "${rates[0]}" "${rates[1]}" "$ratio" "${cpu[0]}" "${cpu[1]}"
done
python3 -c "import statistics, sys; print(f'median (a)/(c) = {statistics.median(map(float, sys.argv[1:])):.3f}')" "${ratios[@]}"

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
