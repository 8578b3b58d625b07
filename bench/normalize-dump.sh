#!/usr/bin/env bash
# `normalize` over a cluster dump (BENCHMARKS.md, "normalize over a
# 10,000-object dump").
#
# Generates what `kubectl get cm,deploy,svc -A -o yaml` prints for a cluster
# of 10,000 objects: 100 vMCP ConfigMaps in buggy backend order with their 100
# vMCP Deployments (from tests/fixtures, renamed per namespace), and 9,800
# other ConfigMaps, Services and Deployments. As one `kind: List` YAML
# document (`kubectl get -o yaml`), as a stream of 10,000 `---` documents,
# and as one JSON List (`kubectl get -o json`). Then times the release
# binary on each, writing (`normalize FILE > out`) and checking
# (`normalize --check FILE`), with wall time and peak RSS from
# /usr/bin/time, and checks that all 200 vMCP objects were changed and
# the output is canonical.
#
#   bench/normalize-dump.sh                 # 10,000 objects, 3 runs each
#   OBJECTS=50000 RUNS=1 bench/normalize-dump.sh
#   BIN=/tmp/old-vmcp-normalizer bench/normalize-dump.sh   # another build, not rebuilt
set -euo pipefail
cd "$(dirname "$0")/.."

OBJECTS=${OBJECTS:-10000}
VMCP=${VMCP:-100}
RUNS=${RUNS:-3}
OUT=${OUT:-$(mktemp -d)}

[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install -y time" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin vmcp-normalizer
    BIN=target/release/vmcp-normalizer
fi

python3 - "$OUT" "$OBJECTS" "$VMCP" <<'PY'
import sys
out, objects, vmcp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def body(path):
    return "".join(l for l in open(path) if not l.startswith("#"))

configmap = body("tests/fixtures/vmcp-configmap.yaml")
deployment = body("tests/fixtures/vmcp-deployment.yaml")
plain_deployment = (deployment
    .replace("app.kubernetes.io/name: virtualmcpserver", "app.kubernetes.io/name: web")
    .replace("        toolhive.stacklok.dev/runconfig-checksum:", "        example.com/rev:"))
plain_configmap = """apiVersion: v1
data:
  FEATURE_X: "yes"
  COUNTRY: "NO"
  when: "2026-01-01"
  settings.json: |
    {"replicas": 3, "mode": "fast", "regions": ["eu-west-1", "us-east-1"]}
kind: ConfigMap
metadata:
  annotations:
    enabled: "on"
  creationTimestamp: "2026-01-26T18:02:11Z"
  labels:
    app: web
  name: demo-vmcp-vmcp-config
  namespace: toolhive-system
  resourceVersion: "48213"
  uid: 0e9a7c55-3b21-4d8e-a6f4-91c2b7d8e604
"""
service = """apiVersion: v1
kind: Service
metadata:
  creationTimestamp: "2026-01-26T18:02:11Z"
  labels:
    app: web
  name: demo-vmcp
  namespace: toolhive-system
  resourceVersion: "48213"
  uid: 0e9a7c55-3b21-4d8e-a6f4-91c2b7d8e604
spec:
  clusterIP: 10.96.12.7
  clusterIPs:
  - 10.96.12.7
  internalTrafficPolicy: Cluster
  ipFamilies:
  - IPv4
  ipFamilyPolicy: SingleStack
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
  selector:
    app: web
  sessionAffinity: None
  type: ClusterIP
status:
  loadBalancer: {}
"""

def named(text, i):
    return (text.replace("toolhive-system", f"ns-{i:05d}")
                .replace("demo-vmcp", f"app-{i:05d}"))

items = []
for i in range(vmcp):
    items.append(named(configmap, i))
    items.append(named(deployment, i))
others = [plain_configmap, service, plain_deployment]
for i in range(objects - len(items)):
    items.append(named(others[i % 3], vmcp + i))

def as_item(text):
    lines = text.splitlines(keepends=True)
    return "".join(("- " if k == 0 else ("  " if l.strip() else "")) + l for k, l in enumerate(lines))

with open(f"{out}/list.yaml", "w") as f:
    f.write("apiVersion: v1\nitems:\n")
    f.writelines(as_item(t) for t in items)
    f.write('kind: List\nmetadata:\n  resourceVersion: ""\n')
with open(f"{out}/stream.yaml", "w") as f:
    f.write("---\n".join(items))

import json, yaml  # PyYAML: every ambiguous scalar above is quoted
with open(f"{out}/list.json", "w") as f:
    json.dump({"apiVersion": "v1", "items": [yaml.safe_load(t) for t in items],
               "kind": "List", "metadata": {"resourceVersion": ""}}, f, indent=4)
    f.write("\n")
PY

for file in list.yaml stream.yaml list.json; do
    path="$OUT/$file"
    size=$(du -m "$path" | cut -f1)
    changed=$("$BIN" normalize --check "$path" | wc -l || true)
    echo "$file: $OBJECTS objects, ${size} MB, $changed objects would change"
    for run in $(seq "$RUNS"); do
        /usr/bin/time -q -f "  normalize:         %e s wall, %U + %S s CPU, %M KB peak RSS" \
            "$BIN" normalize "$path" > "$OUT/$file.out"
    done
    for run in $(seq "$RUNS"); do
        /usr/bin/time -q -f "  normalize --check: %e s wall, %U + %S s CPU, %M KB peak RSS" \
            "$BIN" normalize --check "$path" > /dev/null || true
    done
    cmp -s "$path" "$OUT/$file.out" && { echo "  output unchanged?" >&2; exit 1; }
    "$BIN" normalize --check "$OUT/$file.out" > /dev/null || { echo "  output not canonical" >&2; exit 1; }
done
echo "files in $OUT"
