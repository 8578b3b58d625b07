# Shared by the load benchmarks (source it; needs OUT and URL set).

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

# run NAME H2LOAD-ARGS...: one h2load run against $URL, its rate and
# percentiles on one line; stops the benchmark when any answer was not 2xx.
run() {
    local name=$1; shift
    h2load -t 1 -H 'content-type: application/json' --log-file "$OUT/$name.log" "$@" "$URL" >"$OUT/$name.txt"
    local rate
    rate=$(grep -o 'finished in [^,]*, [0-9.]* req/s' "$OUT/$name.txt")
    grep -q "status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" "$OUT/$name.txt" \
        || { cat "$OUT/$name.txt"; exit 1; }
    printf '%-26s %-36s %s\n' "$name" "$rate" "$(percentiles "$OUT/$name.log")"
}
