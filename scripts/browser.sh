#!/usr/bin/env bash
# A real browser end to end: starts examples/chat on a free port with fresh
# certificates, then runs tests/interop/chat_page.js (headless Chromium through
# playwright-core): two tabs load the page over https://, connect over wss://, and a
# message typed in one must appear in the other. The screenshot is left in
# target/interop/chat.png (not in the repository).
#
# Needs /usr/bin/chromium and certutil (Debian: chromium, libnss3-tools) and Node.js;
# the npm packages are installed into target/interop on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT=$(realpath -m target/interop)
node_modules "$OUT"
start_example chat "$OUT/chat"
NODE_PATH="$OUT/node_modules" timeout 120 node tests/interop/chat_page.js "https://localhost:$PORT/" "$CA" \
    "$OUT/chat.png" || {
    echo "browser: server log:" >&2
    cat "$OUT/chat/server.log" >&2
    exit 1
}
