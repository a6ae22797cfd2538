#!/usr/bin/env bash
# Interop with clients we did not write: Python `websockets`, Node `ws` and headless
# Chromium each talk to examples/echo over wss:// (text, 100 KiB binary, ping/pong where
# the client can, and the close handshake). Prints "N passed, N failed".
#
# Needs python3 with pip, Node.js with npm, /usr/bin/chromium and certutil; the Python
# and npm packages are installed on first run (pip --user, and into target/interop).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT=$(realpath -m target/interop)
python3 -c "import websockets" 2> /dev/null || python3 -m pip install --quiet "websockets>=13" || exit 1
node_modules "$OUT" || exit 1
start_example echo "$OUT/echo" || exit 1
URL="wss://localhost:$PORT/"

passed=0
failed=0
check() {
    echo "== $1"
    shift
    if NODE_PATH="$OUT/node_modules" timeout 120 "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}
check "Python websockets" python3 tests/interop/python_client.py "$URL" "$CA"
check "Node ws" node tests/interop/node_client.js "$URL" "$CA"
check "Chromium" node tests/interop/chromium_client.js "$URL" "$CA"
if [ "$failed" -gt 0 ]; then
    echo "interop: server log:"
    tail -n 40 "$OUT/echo/server.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
