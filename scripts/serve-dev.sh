#!/usr/bin/env bash
# Run the webhook locally: build the binary (once; later runs start in
# seconds), make a development CA and a localhost certificate in certs/out/
# with it (once), then serve HTTPS on 127.0.0.1:8443 and the admin endpoints
# on 127.0.0.1:8080 until Ctrl-C. Arguments go to `serve` (see `serve --help`).
#
# Env: LISTEN        the HTTPS address (else VMCP_NORMALIZER_LISTEN, else 127.0.0.1:8443)
#      ADMIN_LISTEN  the admin address (else VMCP_NORMALIZER_ADMIN_LISTEN, else 127.0.0.1:8080)
#      PROFILE       cargo profile: dev (default: quickest first build) or release
#
# Try it from another terminal:
#   curl --cacert certs/out/ca.crt -H 'content-type: application/json' \
#        --data-binary @tests/fixtures/vmcp-configmap.review.json \
#        https://localhost:8443/mutate
#   curl http://127.0.0.1:8080/metrics
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${LISTEN:-${VMCP_NORMALIZER_LISTEN:-127.0.0.1:8443}}"
admin_listen="${ADMIN_LISTEN:-${VMCP_NORMALIZER_ADMIN_LISTEN:-127.0.0.1:8080}}"
profile="${PROFILE:-dev}"
case "$profile" in
    dev) profile_dir=debug ;;
    *) profile_dir="$profile" ;;
esac
binary="${CARGO_TARGET_DIR:-target}/$profile_dir/vmcp-normalizer"

command -v cargo >/dev/null || {
    echo "error: cargo not found: install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
}
if [[ ! -x "$binary" ]]; then
    # Measured on a fresh clone, see BENCHMARKS.md ("First run").
    echo "==> first build: about 200 crates, about 3 minutes on 2 cores (8 when other builds share them; a line at least every 20 s); later runs start in seconds"
fi

# Cargo's own lines as they come, and a line of our own after 20 s without
# one: a single large crate (k8s-openapi, the final link) can take minutes.
progress() {
    local started=$SECONDS status
    while true; do
        if IFS= read -r -t 20 line; then
            printf '%s\n' "$line"
        else
            status=$?
            ((status > 128)) || break # end of cargo's output
            printf '    ... still building (%dm%02ds so far)\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
        fi
    done
}
echo "==> cargo build --profile $profile --bin vmcp-normalizer"
cargo build --locked --profile "$profile" --bin vmcp-normalizer 2>&1 | progress

if [[ ! -f certs/out/tls.crt || ! -f certs/out/tls.key ]]; then
    "$binary" dev-certificates certs/out
fi
echo "==> serving on https://$listen (admin: http://$admin_listen); Ctrl-C stops"
exec "$binary" serve \
    --tls-cert certs/out/tls.crt --tls-key certs/out/tls.key \
    --listen "$listen" --admin-listen "$admin_listen" \
    --log-format text \
    "$@"
