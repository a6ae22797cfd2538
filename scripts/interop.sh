#!/usr/bin/env bash
# Interop with clients we did not write: Python `websockets`, Node `ws` and headless
# Chromium each talk to examples/echo over wss:// (text, 100 KiB binary, ping/pong where
# the client can, and the close handshake). Then the same with permessage-deflate
# (`echo --deflate`): Python and Node offer it, check the server's answer and exchange
# compressed text and binary, each checking the server's Sec-WebSocket-Extensions answer
# (Chromium offers it always: without --deflate it must see none). The server's frame
# log must show each client's compressed frames both ways. Prints "N passed, N failed".
#
# Needs python3 with pip, Node.js with npm, /usr/bin/chromium and certutil; the Python
# and npm packages are installed on first run (pip --user, and into target/interop).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT=$(realpath -m target/interop)
python3 -c "import websockets" 2> /dev/null || python3 -m pip install --quiet "websockets>=13" || exit 1
node_modules "$OUT" || exit 1
export EXAMPLE_FEATURES=deflate
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
kill "$SERVER" 2> /dev/null
wait "$SERVER" 2> /dev/null

# permessage-deflate, no context takeover. Each client must have compressed frames going
# both ways in the server's frame log: RSV=4 on the frames the server compressed, and a
# line for each message it inflated (text and binary: at least 2 of each).
RUST_LOG=info,tinywss::frames=trace start_example echo "$OUT/echo-deflate" --deflate || exit 1
URL="wss://localhost:$PORT/"
log="$OUT/echo-deflate/server.log"
check_deflate() {
    local name=$1 before sent inflated
    shift
    before=$(wc -l < "$log")
    check "$name, permessage-deflate" "$@"
    sent=$(tail -n +"$((before + 1))" "$log" | grep -c -- '-> \(text\|binary\) frame.*RSV=4')
    inflated=$(tail -n +"$((before + 1))" "$log" | grep -c -- '<- compressed message')
    check "$name: compressed frames both ways ($sent sent, $inflated inflated)" test "$sent" -ge 2 -a "$inflated" -ge 2
}
check_deflate "Python websockets" python3 tests/interop/python_client.py "$URL" "$CA" --deflate
check_deflate "Node ws" node tests/interop/node_client.js "$URL" "$CA" --deflate
check_deflate "Chromium" node tests/interop/chromium_client.js "$URL" "$CA" --deflate
if [ "$failed" -gt 0 ]; then
    echo "interop: server log:"
    tail -n 40 "$OUT/echo/server.log" "$OUT/echo-deflate/server.log" 2> /dev/null | grep -v 'frames.*frame (opcode' | tail -n 60
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
