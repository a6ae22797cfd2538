#!/usr/bin/env bash
# Benchmarks tinywss against tokio-tungstenite, a thread-per-client tungstenite + rustls
# server (the synchronous peer) and a plain rustls echo (the TLS floor), and, when
# Node.js/npm and Python/pip are there, against Node `ws` and Python `websockets` echo
# servers (bench/peers/, packages installed from npm and PyPI on first run), and writes
# BENCHMARKS.md at the repository root. Loopback only; every server and client stops by
# itself. About 20-25 minutes on 2 cores.
#
# Knobs (environment): ROUNDS (3), DURATION (5, seconds counted per throughput run),
# IDLE_CONNS (1000), IDLE_10K (10000; 0 skips), SKIP_BUILD_TIME=1 (skip the clean build
# timing and the release-small echo build), OTHER_PEERS=0 (skip Node and Python),
# OUT (target/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
IDLE_CONNS=${IDLE_CONNS:-1000}
IDLE_10K=${IDLE_10K:-10000}
OUT=${OUT:-target/bench}
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
META=$OUT/meta.txt
: >"$RESULTS"
: >"$META"
: >"$OUT/servers.log"
meta() { echo "$1=$2" >>"$META"; }

echo "== building the benchmark binaries (release)"
cargo build --release -p tinywss-bench
# Where cargo put them: CARGO_TARGET_DIR when set (relative to the repository root, as
# for cargo here), target/ otherwise.
TARGET=${CARGO_TARGET_DIR:-target}
B=$TARGET/release
"$B/certgen" "$OUT/certs" >/dev/null
CA=$OUT/certs/ca.pem
CERT=$OUT/certs/server.pem
KEY=$OUT/certs/server.key

SERVERS=(tinywss tinywss-handler tokio-tungstenite sync-tungstenite rustls-floor)
if [ "${OTHER_PEERS:-1}" != 0 ]; then
    # shellcheck source=../scripts/lib.sh
    source scripts/lib.sh
    if command -v npm >/dev/null && node_modules "$OUT/node"; then
        SERVERS+=(node-ws)
        meta node_version "Node $(node --version), ws $(node -p "require('$ROOT/$OUT/node/node_modules/ws/package.json').version")"
    else
        echo "no Node.js/npm: the Node ws peer is left out" >&2
    fi
    if python3 -c "import websockets" 2>/dev/null || python3 -m pip install --quiet "websockets>=13"; then
        SERVERS+=(python-websockets)
        meta python_version "Python $(python3 --version | cut -d' ' -f2), websockets $(python3 -c 'import websockets; print(websockets.__version__)')"
    else
        echo "no Python websockets: that peer is left out" >&2
    fi
fi

SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# start_server NAME CPUS [flags...]: starts a fresh server, pinned to CPUS ("all" = not
# pinned), and waits (at most 10 s) for its "listening" line.
start_server() {
    local name=$1 cpus=$2
    shift 2
    local cmd port
    case $name in
    tinywss) cmd=("$B/tinywss_server" --mode events) port=9101 ;;
    tokio-tungstenite) cmd=("$B/tokio_ws_server") port=9102 ;;
    rustls-floor) cmd=("$B/tls_echo_server") port=9103 ;;
    sync-tungstenite) cmd=("$B/sync_ws_server") port=9106 ;;
    tinywss-handler) cmd=("$B/tinywss_server" --mode handler) port=9107 ;;
    tinywss-queued) cmd=("$B/tinywss_server" --mode events --write-through off) port=9108 ;;
    node-ws) cmd=(env "NODE_PATH=$OUT/node/node_modules" node bench/peers/node_echo.js) port=9104 ;;
    python-websockets) cmd=(python3 bench/peers/python_echo.py) port=9105 ;;
    esac
    local pin=()
    [ "$cpus" = all ] || pin=(taskset -c "$cpus")
    # Emptied here, not by the redirection below: that one runs in the background job, and
    # the wait loop could otherwise still see the previous server's "listening" line.
    rm -f "$OUT/server.out" "$OUT/server.err"
    "${pin[@]}" "${cmd[@]}" --cert "$CERT" --key "$KEY" --bind "127.0.0.1:$port" --lifetime 600 "$@" \
        >"$OUT/server.out" 2>"$OUT/server.err" &
    SERVER_PID=$!
    SERVER_ADDR=127.0.0.1:$port
    SERVER_TAG="$name $*"
    for _ in $(seq 100); do
        grep -q listening "$OUT/server.out" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server $name did not start:" >&2
    cat "$OUT/server.err" >&2
    exit 1
}

# Stops the server and keeps its stderr (close reasons, push summaries) in servers.log.
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    { echo "-- $SERVER_TAG"; grep -v 'development certificate' "$OUT/server.err" || true; } >>"$OUT/servers.log"
}

proto_of() { if [ "$1" = rustls-floor ]; then echo tls; else echo ws; fi; }

# measure TEST ROUND SERVER SERVER_CPUS CLIENT_CPUS [loadgen flags...]
measure() {
    local test=$1 round=$2 server=$3 scpus=$4 ccpus=$5
    shift 5
    start_server "$server" "$scpus"
    local pin=()
    [ "$ccpus" = all ] || pin=(taskset -c "$ccpus")
    "${pin[@]}" "$B/loadgen" --ca "$CA" --addr "$SERVER_ADDR" --proto "$(proto_of "$server")" \
        --label "$server" --test "$test" --round "$round" --pid "$SERVER_PID" --timeout 120 "$@" \
        | tee -a "$RESULTS" || echo "loadgen failed: $test $server round $round" >&2
    stop_server
    sleep 0.5
}

# rotate ROUND: the servers, starting at a different one each round.
rotate() {
    local n=${#SERVERS[@]} i
    for ((i = 0; i < n; i++)); do echo "${SERVERS[$(((i + $1) % n))]}"; done
}

echo "== matrix: $ROUNDS rounds, $DURATION s per throughput run"
for round in $(seq "$ROUNDS"); do
    for server in $(rotate "$round"); do
        measure pingpong "$round" "$server" 0 0 --mode echo --conns 1 --size 64 --duration "$DURATION"
    done
    for server in $(rotate "$round"); do
        measure pipeline "$round" "$server" 0 1 --mode pipeline --conns 50 --inflight 32 --size 64 \
            --duration "$DURATION"
    done
    for server in $(rotate "$round"); do
        measure pipeline1 "$round" "$server" 0 1 --mode pipeline --conns 1 --inflight 32 --size 64 \
            --duration "$DURATION"
    done
    for server in $(rotate "$round"); do
        measure handshake "$round" "$server" 0 1 --mode handshake --conns 8 --duration "$DURATION"
    done
    for server in $(rotate "$round"); do
        measure idle "$round" "$server" all all --mode idle --conns "$IDLE_CONNS" --settle 1 --hold 10
    done
done

echo "== push latency (tinywss with and without write-through, and the tokio-tungstenite peer)"
for round in $(seq "$ROUNDS"); do
    for server in tinywss tinywss-queued tokio-tungstenite; do
        for scenario in "push-send-1 1 send 10000 2000" "push-send-100 100 send 10000 2000" \
            "push-broadcast-100 100 broadcast 1000 100" "push-broadcast-1000 1000 broadcast 500 50"; do
            read -r test conns mode count rate <<<"$scenario"
            start_server "$server" all --push-rate "$rate" --push-count "$count" --push-mode "$mode"
            "$B/loadgen" --ca "$CA" --addr "$SERVER_ADDR" --mode push --conns "$conns" --label "$server" --pid "$SERVER_PID" \
                --test "$test" --round "$round" --timeout 120 | tee -a "$RESULTS" ||
                echo "loadgen failed: $test $server round $round" >&2
            stop_server
            sleep 0.5
        done
    done
done

if [ "$IDLE_10K" -gt 0 ]; then
    # Each tinywss connection holds two descriptors (socket + eventfd waker), so the
    # server needs RLIMIT_NOFILE >= 2 x connections + a few; the hard limit caps it.
    hard=$(ulimit -Hn)
    n=$IDLE_10K
    if [ "$hard" != unlimited ] && [ $((2 * n + 64)) -gt "$hard" ]; then
        n=$(((hard - 64) / 2))
        meta idle_10k_note "$n connections, not $IDLE_10K: the hard RLIMIT_NOFILE here is $hard and \
each connection needs 2 descriptors in the server (socket + eventfd); raising the hard limit needs \
CAP_SYS_RESOURCE"
    else
        meta idle_10k_note "$n connections opened"
    fi
    meta idle_10k_conns "$n"
    echo "== idle: $n connections to tinywss"
    (
        ulimit -n "$hard"
        measure idle-10k 1 tinywss all all --mode idle --conns "$n" --settle 2 --hold 30 --timeout 300
    )
fi

if [ "${SKIP_BUILD_TIME:-0}" != 1 ]; then
    echo "== clean build time of the library (release, empty target dir)"
    rm -rf "$OUT/clean-target"
    t0=$(date +%s.%N)
    CARGO_TARGET_DIR=$OUT/clean-target cargo build --release --lib -p tinywss --quiet
    t1=$(date +%s.%N)
    meta build_release_s "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")"
    rm -rf "$OUT/clean-target"

    echo "== examples/echo with --profile release-small"
    cargo build --profile release-small --example echo --quiet
    size=$(stat -c %s "$TARGET/release-small/examples/echo")
    meta echo_size "$size"
    meta echo_size_kib "$((size / 1024))"
    # DT_RELR packs the relocation table of a position-independent executable (one
    # 24-byte entry per pointer in read-only data) into a bitmap. Passed to the final link
    # only, so the dependencies are not rebuilt; the result needs glibc >= 2.36 to start.
    cargo rustc --profile release-small --example echo --quiet -- -C link-arg=-Wl,-z,pack-relative-relocs
    size=$(stat -c %s "$TARGET/release-small/examples/echo")
    meta echo_size_relr "$size"
    meta echo_size_relr_kib "$((size / 1024))"
    # Leave the plain build behind for anyone who runs the binary on an older system.
    cargo build --profile release-small --example echo --quiet
fi

# Distinct name@version pairs in the library's normal (non-dev, non-build) dependency
# tree for this host, the library itself included; then the same without procedural
# macros and their own dependencies (they run in the compiler, not in the binary).
meta dep_count "$(cargo tree -p tinywss -e normal --prefix none | awk '{print $1"@"$2}' | sort -u | wc -l)"
meta dep_linked "$(cargo tree -p tinywss -e normal,no-proc-macro --prefix none | awk '{print $1"@"$2}' | sort -u | wc -l)"
meta dep_method "distinct name@version in cargo tree -p tinywss -e normal --prefix none, tinywss included"

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
meta nproc "$(nproc)"
meta kernel "$(uname -r)"
meta memory "$(free -g | awk '/^Mem:/{print $2" GiB"}')"
meta rustc "$(rustc --version)"
meta rounds "$ROUNDS"
meta idle_conns "$IDLE_CONNS"
meta duration "$DURATION"
meta load_before "$LOAD_BEFORE"
meta load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
meta run_seconds "$(($(date +%s) - START))"

"$B/report" --results "$RESULTS" --meta "$META" --notes "$ROOT/bench/NOTES.md" --out "$ROOT/BENCHMARKS.md"
echo "== wrote BENCHMARKS.md ($(($(date +%s) - START)) s)"
