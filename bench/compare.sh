#!/usr/bin/env bash
# Compare server builds on the (a)/(c) throughput ratio (BENCHMARKS.md,
# "Comparing two builds").
#
#   bench/compare.sh OLD_BINARY NEW_BINARY [MORE_BINARIES...]
#   ROUNDS=14 REQUESTS=15000 bench/compare.sh /tmp/before target/release/vmcp-normalizer
#
# The host's load moves the ratio by more than most code changes do, so two
# separate bench/server.sh runs cannot tell builds apart. Here every build
# serves at once on its own port, and each round runs (c) then (a) against
# each build in turn, a few seconds apart: all builds see the same moments of
# the host. Prints per build the median and mean ratio over the rounds, the
# server's CPU per request for (c) and (a), and the median rates.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
ROUNDS=${ROUNDS:-10}
REQUESTS=${REQUESTS:-15000}
BASE_PORT=${BASE_PORT:-19500}
OUT=${OUT:-$(mktemp -d)}

command -v h2load >/dev/null || { echo "h2load not found: apt-get install -y nghttp2-client" >&2; exit 1; }

cargo build --release --quiet --example dev-certs --example bench-reviews
target/release/examples/dev-certs "$OUT/certs" >/dev/null
target/release/examples/bench-reviews "$OUT" >/dev/null

binaries=("$@")
servers=()
ports=()
trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
for index in "${!binaries[@]}"; do
    binary=${binaries[$index]}
    port=$((BASE_PORT + 10 * index))
    "$binary" serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" \
        --tls-cert "$OUT/certs/tls.crt" --tls-key "$OUT/certs/tls.key" \
        --log-format json >"$OUT/server-$index.log" 2>&1 &
    servers+=($!)
    ports+=("$port")
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$((port + 1))/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
done

ticks=$(getconf CLK_TCK)
load() { # load PORT CASE COUNT: prints the rate
    h2load -t 1 -n "$3" -c 4 -m 8 -H 'content-type: application/json' \
        -d "$OUT/$2.json" "https://127.0.0.1:$1/mutate?timeout=10s" >"$OUT/h2load.txt"
    grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$OUT/h2load.txt" \
        || { cat "$OUT/h2load.txt" >&2; exit 1; }
    grep -o '[0-9.]* req/s' "$OUT/h2load.txt" | head -1 | cut -d' ' -f1
}
for port in "${ports[@]}"; do
    load "$port" not-vmcp 3000 >/dev/null
    load "$port" buggy 3000 >/dev/null
done

: >"$OUT/rounds.txt"
for round in $(seq "$ROUNDS"); do
    for index in "${!ports[@]}"; do
        line="$index"
        for case in not-vmcp buggy; do
            before=$(awk '{print $14 + $15}' "/proc/${servers[$index]}/stat")
            rate=$(load "${ports[$index]}" "$case" "$REQUESTS")
            after=$(awk '{print $14 + $15}' "/proc/${servers[$index]}/stat")
            line="$line $rate $(((after - before) * 1000000 / ticks / REQUESTS))"
        done
        echo "$line" >>"$OUT/rounds.txt"
    done
    echo "round $round of $ROUNDS done" >&2
done

python3 - "$OUT/rounds.txt" "$@" <<'PY'
import collections, statistics, sys
rounds = collections.defaultdict(list)
for line in open(sys.argv[1]):
    index, rate_c, cpu_c, rate_a, cpu_a = line.split()
    rounds[int(index)].append((float(rate_c), int(cpu_c), float(rate_a), int(cpu_a)))
for index, binary in enumerate(sys.argv[2:]):
    rows = rounds[index]
    ratios = [a / c for c, _, a, _ in rows]
    median = lambda column: statistics.median(row[column] for row in rows)
    print(f"{binary}: (a)/(c) median {statistics.median(ratios):.3f} mean {statistics.mean(ratios):.3f}"
          f" over {len(rows)} rounds; server CPU per request (c) {median(1):.1f} us, (a) {median(3):.1f} us;"
          f" rates (c) {median(0):.0f}, (a) {median(2):.0f} req/s")
PY
echo "raw rounds in $OUT/rounds.txt"
