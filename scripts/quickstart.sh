#!/usr/bin/env bash
# The README's quick start, as a new user meets it: `cargo new` outside this repository,
# the README's dependency lines and program pasted in unchanged (tinywss's path pointed
# at this clone), built offline (the dependency tree is the library's own: nothing to
# download), and run in an empty folder. It must make its development certificate
# (the key with mode 0600), serve wss:// on both loopback addresses to a client that
# trusts the CA it made (examples/check), print the error's message, not its Debug
# form, when the port is taken, and end with status 0 on SIGTERM.
#
# The program listens on port 8443, as written; the script runs it in a network
# namespace of its own when it can (unshare -n), so that port may be in use outside.
# Prints "quickstart: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR

# A fenced block of the README's "## Use it" section: the first whose info string starts
# with $1.
readme_block() {
    awk -v fence="^\`\`\`$1" '
        /^## / { section = ($0 ~ /^## Use it/) }
        section && !inside && $0 ~ fence { inside = 1; next }
        inside && /^```/ { exit }
        inside { print }' README.md
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && cargo new --quiet --vcs none hello-wss)
DEPS=$(readme_block toml)
CODE=$(readme_block rust)
if [ -z "$DEPS" ] || [ -z "$CODE" ]; then
    echo "quickstart: README.md has no \`\`\`toml and \`\`\`rust block under \"## Use it\"" >&2
    exit 1
fi
printf '%s\n' "$DEPS" | sed "s|^tinywss = { path = \"[^\"]*\"|tinywss = { path = \"$ROOT\"|" >> "$WORK/hello-wss/Cargo.toml"
grep -q "path = \"$ROOT\"" "$WORK/hello-wss/Cargo.toml" || {
    echo "quickstart: the README's dependencies have no \`tinywss = { path = \"...\" }\` line" >&2
    exit 1
}
printf '%s\n' "$CODE" > "$WORK/hello-wss/src/main.rs"
# The library's lock file: the same versions, all in the local registry already.
cp Cargo.lock "$WORK/hello-wss/"
echo "== cargo build --offline (a new crate with the README's quick start)"
(cd "$WORK/hello-wss" && cargo build --offline --quiet)
cargo build --quiet --example check
export HELLO="$CARGO_TARGET_DIR/debug/hello-wss" CHECK="$CARGO_TARGET_DIR/debug/examples/check" RUN="$WORK/run"
mkdir -p "$RUN"

# Runs the program and checks it; prints one line per check and "PASSED"/"FAILED" counts.
exercise() {
    set +e
    local passed=0 failed=0
    check() {
        if [ "$2" = 0 ]; then passed=$((passed + 1)); echo " ok  $1"; else failed=$((failed + 1)); echo "FAIL $1"; fi
    }
    cd "$RUN"
    "$HELLO" > server.log 2>&1 &
    local server=$! listening=1
    for _ in $(seq 1 100); do
        grep -q "listening on 127.0.0.1:8443" server.log && { listening=0; break; }
        kill -0 "$server" 2> /dev/null || break
        sleep 0.1
    done
    check "it starts, with no certificate of its own, and says where it listens" $listening
    grep -q "development certificate for localhost, 127.0.0.1, ::1, never in production; clients must trust its CA, certs/ca.pem" server.log
    check "one warning says it is a development certificate and where ca.pem is" $?
    [ "$(grep -c 'WARN' server.log)" = 1 ]
    check "and it is the only warning" $?
    [ "$(stat -c %a certs/server.key 2> /dev/null)" = 600 ]
    check "the key is readable by its owner only" $?
    "$CHECK" wss://localhost:8443/ --ca certs/ca.pem > check.log 2>&1
    check "a wss:// client that trusts certs/ca.pem passes every step of examples/check" $?
    if grep -q "listening on \[::1\]:8443" server.log; then
        "$CHECK" "wss://[::1]:8443/" --ca certs/ca.pem >> check.log 2>&1
        check "over IPv6 too" $?
    fi
    "$HELLO" > second.log 2>&1
    [ $? = 1 ] && grep -q "cannot listen on 127.0.0.1:8443: Address" second.log && ! grep -q "Bind {" second.log
    check "a second copy prints the error's message (not its Debug form) and exits with 1" $?
    python3 -c "$CLIENT" > client.log 2>&1 &
    local client=$!
    for _ in $(seq 1 100); do
        grep -q "^open" client.log && break
        sleep 0.1
    done
    kill -TERM "$server"
    wait "$server"
    check "SIGTERM ends it with status 0" $?
    wait "$client"
    grep -q "^close 1001" client.log
    check "after a Close frame with 1001 to the client still connected" $?
    if [ "$failed" -gt 0 ]; then
        echo "-- the program's log:"; cat server.log
        echo "-- the second copy's output:"; cat second.log
        echo "-- the client's report:"; cat check.log
    fi
    echo "quickstart: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}
export -f exercise

# A client that stays connected (Python's standard library only): prints "open" after
# the 101, then "close CODE" for the server's Close frame.
export CLIENT='
import base64, os, socket, ssl, struct
context = ssl.create_default_context(cafile="certs/ca.pem")
tls = context.wrap_socket(socket.create_connection(("localhost", 8443), timeout=20), server_hostname="localhost")
key = base64.b64encode(os.urandom(16)).decode()
tls.sendall(f"GET / HTTP/1.1\r\nHost: localhost:8443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    head += tls.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head
print("open", flush=True)
first, length = tls.recv(2)
payload = b""
while len(payload) < (length & 0x7F):
    payload += tls.recv((length & 0x7F) - len(payload))
print("close" if first & 0x0F == 8 else "frame", struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else "")
'

echo "== run it in an empty folder"
if command -v ip > /dev/null && unshare -n true 2> /dev/null; then
    unshare -n bash -c 'ip link set lo up && exercise'
else
    exercise
fi
