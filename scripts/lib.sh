# Shared by the scripts in this folder: build an example, start it on a free port with
# fresh certificates, wait until it listens. Source it; it defines:
#
#   start_example NAME OUTDIR [ARGS...]  sets PORT, SERVER (pid), CA; logs to OUTDIR/server.log
#   node_modules OUTDIR                  installs tests/interop/package.json into OUTDIR once

# Where cargo puts the example binaries (CARGO_TARGET_DIR when set, as for cargo itself).
EXAMPLES="${CARGO_TARGET_DIR:-target}/debug/examples"

start_example() {
    local name=$1 out=$2
    shift 2
    # EXAMPLE_FEATURES: cargo features to build the example with (e.g. deflate).
    cargo build --quiet ${EXAMPLE_FEATURES:+--features "$EXAMPLE_FEATURES"} --example "$name" --example dev_certs
    rm -rf "$out/certs"
    mkdir -p "$out"
    "$EXAMPLES/dev_certs" "$out/certs" > /dev/null
    CA="$out/certs/ca.pem"
    "$EXAMPLES/$name" --bind 127.0.0.1:0 --cert "$out/certs/server.pem" \
        --key "$out/certs/server.key" "$@" > "$out/server.log" 2>&1 &
    SERVER=$!
    trap 'kill $SERVER 2>/dev/null || true' EXIT
    # The server logs its address once it listens; wait for that line (bounded: 10 s).
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out/server.log" | head -n 1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVER" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$out/server.log" >&2
    return 1
}

node_modules() {
    local out=$1
    mkdir -p "$out"
    if [ ! -d "$out/node_modules/ws" ] || [ ! -d "$out/node_modules/playwright-core" ]; then
        cp tests/interop/package.json "$out/package.json"
        npm install --silent --no-audit --no-fund --prefix "$out" > /dev/null
    fi
}
