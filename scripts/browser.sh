#!/usr/bin/env bash
# A real browser end to end: starts examples/chat on a free port with fresh
# certificates, then runs tests/browser/chat.js (headless Chromium through
# playwright-core): two tabs load the page over https://, connect over wss://, and a
# message typed in one must appear in the other. The screenshot is left in
# target/browser/chat.png (not in the repository).
#
# Needs /usr/bin/chromium and certutil (Debian: chromium, libnss3-tools) and Node.js;
# playwright-core is installed from npm into target/browser on first run.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=$(realpath -m target/browser)
mkdir -p "$OUT"
if [ ! -d "$OUT/node_modules/playwright-core" ]; then
    npm install --silent --no-audit --no-fund --prefix "$OUT" playwright-core@1 > /dev/null
fi

cargo build --quiet --example chat --example dev_certs
rm -rf "$OUT/certs"
target/debug/examples/dev_certs "$OUT/certs" > /dev/null
target/debug/examples/chat --bind 127.0.0.1:0 --cert "$OUT/certs/server.pem" --key "$OUT/certs/server.key" \
    > "$OUT/server.log" 2>&1 &
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
[ -n "$PORT" ] || { echo "browser: chat server did not start" >&2; exit 1; }

NODE_PATH="$OUT/node_modules" node tests/browser/chat.js "https://localhost:$PORT/" "$OUT/certs/ca.pem" "$OUT/chat.png" || {
    echo "browser: server log:" >&2
    cat "$OUT/server.log" >&2
    exit 1
}
