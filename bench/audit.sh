#!/usr/bin/env bash
# `audit` over a large cluster (BENCHMARKS.md, "audit"): the API stand-in
# (examples/audit-standin.rs) holds VMCPS vMCP ConfigMaps and Deployments,
# one per namespace, half of them out of canonical form, plus as many other
# ConfigMaps; the release binary audits all namespaces at several page
# sizes, under /usr/bin/time (wall time, peak RSS).
#
#   bench/audit.sh                      # 10,000 vMCPs; pages of 50, 500, 5000
#   VMCPS=1000 CHUNKS="100 1000" bench/audit.sh
#   AUDIT_ARGS=--no-history bench/audit.sh   # without the rollout history
set -euo pipefail
cd "$(dirname "$0")/.."

VMCPS=${VMCPS:-10000}
CHUNKS=${CHUNKS:-50 500 5000}
AUDIT_ARGS=${AUDIT_ARGS:-}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install -y time" >&2; exit 1; }
cargo build --release --quiet --bin vmcp-normalizer --example audit-standin

target/release/examples/audit-standin "$OUT" "$VMCPS" > "$OUT/standin.log" &
standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT
until grep -q kubeconfig "$OUT/standin.log" 2>/dev/null; do
    kill -0 $standin || { cat "$OUT/standin.log" >&2; exit 1; }
    sleep 0.2
done

for chunk in $CHUNKS; do
    status=0
    /usr/bin/time -q -f "  audit -A --chunk-size $chunk $AUDIT_ARGS: %e s wall, %U + %S s CPU, %M KB peak RSS" \
        target/release/vmcp-normalizer audit --kubeconfig "$OUT/kubeconfig" -A \
        --chunk-size "$chunk" -o json $AUDIT_ARGS > "$OUT/audit-$chunk.json" || status=$?
    findings=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['scanned'], len(r['findings']), 'findings')" "$OUT/audit-$chunk.json")
    echo "    exit $status, $findings"
done
echo "files in $OUT"
