#!/usr/bin/env bash
# RFC 6455 conformance: runs the Autobahn|Testsuite fuzzingclient against examples/echo
# over wss:// and prints "N passed, N failed". Exits non-zero on any failed case.
#
# Sections 12 and 13 (permessage-deflate) are excluded: tinywss does not negotiate
# compression. Sections 9.* send messages up to 16 MiB, far beyond the small-device
# defaults (1 MiB), so the echo server runs here with --max-message/--max-frame raised
# to 16 MiB; every other case runs with default settings.
#
# The suite needs Python 2.7 (autobahntestsuite has no Python 3 release); it is
# installed once into $AUTOBAHN_VENV (default: ~/.cache/tinywss/autobahn-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${AUTOBAHN_VENV:-$HOME/.cache/tinywss/autobahn-venv}
PY27=${PY27:-$HOME/.pyenv/versions/2.7.18/bin/python}
OUT=$(realpath -m "${AUTOBAHN_OUT:-target/autobahn}")

install_suite() {
    if [ -x "$VENV/bin/wstest" ]; then
        return
    fi
    echo "autobahn: installing the test suite into $VENV"
    if [ ! -x "$PY27" ]; then
        echo "autobahn: Python 2.7 not found at $PY27 (set PY27)" >&2
        exit 1
    fi
    python3 -m pip install --quiet "virtualenv==20.21.1"
    python3 -m virtualenv --quiet -p "$PY27" "$VENV"
    "$VENV/bin/pip" install --quiet "autobahntestsuite==25.10.1"
}

install_suite
cargo build --quiet --example echo
rm -rf "$OUT" && mkdir -p "$OUT"
cargo run --quiet --example dev_certs -- "$OUT/certs" > /dev/null

LIMIT=$((16 * 1024 * 1024))
target/debug/examples/echo --bind 127.0.0.1:0 --cert "$OUT/certs/server.pem" --key "$OUT/certs/server.key" \
    --max-message "$LIMIT" --max-frame "$LIMIT" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT

# The server logs its address once it listens; wait for that line (bounded).
PORT=""
for _ in $(seq 1 100); do
    PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$OUT/server.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 $SERVER 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "autobahn: server did not start" >&2; cat "$OUT/server.log" >&2; exit 1; }

cat > "$OUT/spec.json" <<SPEC
{
  "outdir": "$OUT/reports",
  "servers": [{"agent": "tinywss", "url": "wss://127.0.0.1:$PORT", "hostname": "localhost"}],
  "cases": ["*"],
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
SPEC
(cd "$OUT" && SSL_CERT_FILE="$PWD/certs/ca.pem" "$VENV/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || {
    echo "autobahn: wstest failed" >&2
    tail -n 30 "$OUT/wstest.log" >&2
    exit 1
}

python3 - "$OUT/reports/index.json" <<'PY'
import json, sys, collections
results = json.load(open(sys.argv[1]))["tinywss"]
counts = collections.Counter()
failed = []
for case, r in sorted(results.items()):
    ok = r["behavior"] in ("OK", "NON-STRICT", "INFORMATIONAL") and \
         r["behaviorClose"] in ("OK", "INFORMATIONAL")
    counts[r["behavior"]] += 1
    if not ok:
        failed.append((case, r["behavior"], r["behaviorClose"]))
for case, b, bc in failed:
    print(f"autobahn: case {case} failed: behavior {b}, close {bc}")
print("autobahn: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
PY
