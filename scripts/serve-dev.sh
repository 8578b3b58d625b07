#!/usr/bin/env bash
# Run the webhook locally: make a development CA and localhost certificate in
# certs/out/ (once), then serve HTTPS on 127.0.0.1:8443 and the admin
# endpoints on 127.0.0.1:8080 until Ctrl-C.
#
# Try it from another terminal:
#   curl --cacert certs/out/ca.crt -H 'content-type: application/json' \
#        --data-binary @tests/fixtures/vmcp-configmap.review.json \
#        https://localhost:8443/mutate
#   curl http://127.0.0.1:8080/metrics
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f certs/out/tls.crt || ! -f certs/out/tls.key ]]; then
    cargo run --quiet --release --example dev-certs -- certs/out
fi
exec cargo run --quiet --release -- serve \
    --tls-cert certs/out/tls.crt --tls-key certs/out/tls.key \
    --listen "${LISTEN:-127.0.0.1:8443}" --admin-listen "${ADMIN_LISTEN:-127.0.0.1:8080}" \
    "$@"
