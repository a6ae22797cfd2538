#!/usr/bin/env python3
"""The client of docs/PROTOCOL.md: one short session with the echo example.

Start the server first, from the repository root:

    RUST_LOG=tinywss=trace cargo run --example echo -- --bind 127.0.0.1:8443

then, in another terminal, from the repository root:

    python3 docs/client.py                      # wss://localhost:8443/
    python3 docs/client.py --idle 35            # stay quiet 35 s first: watch a keepalive ping

It sends a text message, a second text message in three fragments, a ping, and closes
with 1000 and a reason. The `websockets` library logs every frame it sends (">") and
receives ("<") to stderr, payloads included: this is the client's side of the session.
Needs Python 3.9 or later and `pip install websockets` (version 15 or later).
"""

import argparse
import logging
import ssl
import time

from websockets.sync.client import connect

parser = argparse.ArgumentParser(description="One short WebSocket session with the echo example.")
parser.add_argument("url", nargs="?", default="wss://localhost:8443/")
parser.add_argument("--idle", type=float, default=0, metavar="SECONDS", help="wait this long before closing")
args = parser.parse_args()

logging.basicConfig(format="client: %(message)s", level=logging.DEBUG)

# Trust the development CA that signed the server's certificate (certs/README.md). The
# default context also checks that the certificate names the host ("localhost").
context = ssl.create_default_context(cafile="certs/ca.pem")
# Offer ALPN "http/1.1", as browsers do; Python offers nothing unless told.
context.set_alpn_protocols(["http/1.1"])

# ping_interval=None: no keepalive pings of the client's own, so the pings in the log
# are ours and the server's. proxy=None: connect directly even if https_proxy is set.
with connect(args.url, ssl=context, ping_interval=None, proxy=None) as ws:
    ws.send("Hello, tinywss")
    print("echo:", ws.recv())

    # An iterable sends one message as several frames: text (FIN=0), then continuation
    # frames, the last with FIN=1. The server reassembles it and echoes it whole.
    ws.send(["fragmented ", "in three ", "frames"])
    print("echo:", ws.recv())

    pong = ws.ping(b"are you there?")
    print("pong received:", pong.wait(timeout=5))

    # While we sleep, the library answers the server's keepalive pings by itself.
    time.sleep(args.idle)

    ws.close(code=1000, reason="done, thank you")
