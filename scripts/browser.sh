#!/usr/bin/env bash
# A real browser end to end: tests/interop/chat_page.js drives examples/chat in headless
# Chromium (playwright-core) as people would: two desktop tabs and a phone-sized one,
# messages, /nick, /join, refused and unknown commands, the member and room lists, a
# long word at 390 px, and a server restart the tabs must come back from with their
# names and rooms. It starts (and restarts) the server itself, with fresh certificates.
# Screenshots at desktop and phone widths are left in target/interop/ (not in the
# repository): chat-desktop.png, chat-phone.png, chat-offline.png, chat-reconnected.png.
#
# Needs /usr/bin/chromium and certutil (Debian: chromium, libnss3-tools) and Node.js;
# the npm packages are installed into target/interop on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

OUT=$(realpath -m target/interop)
node_modules "$OUT"
cargo build --quiet --example chat --example dev_certs
rm -rf "$OUT/chat"
mkdir -p "$OUT/chat"
"$EXAMPLES/dev_certs" "$OUT/chat/certs" > /dev/null
CERTS="$OUT/chat/certs"
NODE_PATH="$OUT/node_modules" timeout 300 node tests/interop/chat_page.js "$EXAMPLES/chat" \
    "$CERTS/server.pem" "$CERTS/server.key" "$CERTS/ca.pem" "$OUT" || {
    echo "browser: server log:" >&2
    tail -n 60 "$OUT/chat-server.log" >&2
    exit 1
}
