#!/usr/bin/env bash
# Abuse benchmark of the webhook server (BENCHMARKS.md, "Abuse").
#
# The release server with its default limits, a fresh process per scenario
# (so VmHWM is that scenario's peak resident memory), the abusive clients of
# bench/abuse.py, and legitimate reviews from h2load at the same time
# (Debian: apt-get install -y nghttp2-client). Loopback only.
#
#   bench/abuse.sh                          # every scenario (about 6 minutes)
#   bench/abuse.sh stalled-h1 burst         # some of them
#   SERVER_ENV="X=1" bench/abuse.sh burst   # without the chart's allocator setting
#
# Scenarios: baseline stalled-h1 stalled-h2 idle-tls idle-h2 sigterm burst
# in-flight slowloris slow-body.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18443}
ADMIN_PORT=${ADMIN_PORT:-18080}
OUT=${OUT:-$(mktemp -d)}
# What the chart sets for the container (charts/vmcp-normalizer/values.yaml, env).
SERVER_ENV=${SERVER_ENV:-MALLOC_ARENA_MAX=2}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(baseline stalled-h1 stalled-h2 idle-tls idle-h2 sigterm burst in-flight slowloris slow-body)

command -v h2load >/dev/null || { echo "h2load not found: apt-get install -y nghttp2-client" >&2; exit 1; }

cargo build --release --quiet --bin vmcp-normalizer --example bench-reviews
target/release/vmcp-normalizer dev-certificates "$OUT/certs" >/dev/null
target/release/examples/bench-reviews "$OUT" >/dev/null
CA=$OUT/certs/ca.crt
URL="https://127.0.0.1:$PORT/mutate?timeout=10s"
ABUSE=(python3 bench/abuse.py)
source bench/h2load.sh

SERVER=
start_server() {
    # shellcheck disable=SC2086 # SERVER_ENV is a list of NAME=VALUE words
    env $SERVER_ENV target/release/vmcp-normalizer serve \
        --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
        --tls-cert "$OUT/certs/tls.crt" --tls-key "$OUT/certs/tls.key" \
        --log-format json "$@" >>"$OUT/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null
    # Warm up: the TLS session and the allocator, as after any first review.
    h2load -t 1 -n 200 -c 1 -H 'content-type: application/json' -d "$OUT/buggy.json" "$URL" >/dev/null
}
stop_server() {
    if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
        kill -TERM "$SERVER"
        wait "$SERVER" || true
    fi
    SERVER=
}
trap 'stop_server' EXIT

memory() {
    awk '/VmRSS|VmHWM/ {printf "%s %.1f MiB  ", $1, $2 / 1024} END {print ""}' "/proc/$SERVER/status"
}
shed() {
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | grep -E '^vmcp_normalizer_(requests_shed|http_rejections)_total' | tr '\n' ' '
    echo
}
# Legitimate reviews at 200/s on one HTTP/2 connection for $1 seconds: every
# one must get a 200 (run stops the benchmark otherwise).
legit() {
    mkdir -p "$OUT/$(dirname "$1")"
    rm -f "$OUT/$1.log"
    run "$1" -n $((200 * $2)) -c 1 -m 1 --rps 200 -d "$OUT/buggy.json"
}

for scenario in "${SCENARIOS[@]}"; do
    echo "== $scenario"
    case $scenario in
    baseline)
        start_server
        echo "  after start and 200 reviews: $(memory)"
        legit baseline/legit 10
        echo "  $(memory)"
        ;;
    stalled-h1 | stalled-h2)
        # The attack starts; a second later legitimate reviews run for 8 s,
        # while the admitted uploads hold their bytes (they are cut at 9 s).
        start_server
        mkdir -p "$OUT/$scenario"
        "${ABUSE[@]}" "$scenario" --ca "$CA" --port "$PORT" --hold 15 >"$OUT/$scenario/attack.txt" &
        attack=$!
        sleep 1
        legit "$scenario/legit" 8
        wait "$attack"
        sed 's/^/ /' "$OUT/$scenario/attack.txt"
        echo "  $(memory)"
        echo "  $(shed)"
        ;;
    idle-tls | idle-h2)
        start_server
        "${ABUSE[@]}" idle --kind "${scenario#idle-}" --ca "$CA" --port "$PORT" --pid "$SERVER" --limit 120
        legit "$scenario/legit-after" 2
        echo "  $(memory)"
        ;;
    sigterm)
        start_server
        "${ABUSE[@]}" sigterm --ca "$CA" --port "$PORT" --pid "$SERVER"
        wait "$SERVER" && echo "  exit status 0" || echo "  exit status $?"
        SERVER=
        ;;
    burst)
        [ -f "$OUT/large.json" ] || "${ABUSE[@]}" large-review --from "$OUT/buggy.json" --size 3000000 --out "$OUT/large.json"
        start_server
        echo "  before: $(memory)"
        h2load -t 1 -n 16 -c 16 -m 1 -H 'content-type: application/json' -d "$OUT/large.json" "$URL" >"$OUT/burst.txt"
        grep -E 'status codes|finished in' "$OUT/burst.txt" | sed 's/^/  /'
        echo "  right after: $(memory)"
        "${ABUSE[@]}" rss --pid "$SERVER" --seconds 60 --every 10
        echo "  $(shed)"
        ;;
    in-flight)
        # 64 reviews of about 63 KB at once (the in-flight limit, each just
        # under the size that takes bytes from the budget).
        [ -f "$OUT/small.json" ] || "${ABUSE[@]}" large-review --from "$OUT/buggy.json" --size 63000 --config 30000 --out "$OUT/small.json"
        start_server
        echo "  before: $(memory)"
        h2load -t 1 -n 6400 -c 4 -m 16 -H 'content-type: application/json' -d "$OUT/small.json" "$URL" >"$OUT/in-flight.txt"
        grep -E 'status codes|finished in' "$OUT/in-flight.txt" | sed 's/^/  /'
        echo "  after: $(memory)"
        ;;
    slowloris)
        start_server
        "${ABUSE[@]}" slowloris --port "$ADMIN_PORT" --pid "$SERVER" --count "${SLOWLORIS:-200}" --limit 60
        curl -fsS "http://127.0.0.1:$ADMIN_PORT/livez" >/dev/null && echo "  /livez still answers"
        ;;
    slow-body)
        start_server
        "${ABUSE[@]}" slow-body --ca "$CA" --port "$PORT" --rate 1024 --length 100000 --limit 60
        ;;
    *)
        echo "unknown scenario $scenario" >&2
        exit 2
        ;;
    esac
    stop_server
done
echo "server log and raw output in $OUT"
