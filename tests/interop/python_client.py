#!/usr/bin/env python3
"""Interop check of a tinywss echo server with the Python `websockets` client.

Usage: python_client.py URL CA_PEM [--deflate]
       python_client.py URL --system-trust   (no extra CA: expect a certificate error)

With --deflate the client offers permessage-deflate, as websockets does by default,
checks that the server's 101 accepts it, and sends compressible messages (which
websockets then compresses, and the server compresses its echo).

Checks, against an echo server:
  1. a text message comes back unchanged;
  2. a 100 KiB binary message comes back unchanged;
  3. a ping with a payload is answered by a pong;
  4. close(1000, "bye") completes the close handshake: the server's close frame
     arrives, with code 1000, and the connection ends cleanly.

Prints one line per check; exits 0 when all pass, 1 when a check fails, 2 on usage
errors. Needs: pip install websockets (>= 13, the asyncio implementation).
"""

import asyncio
import os
import ssl
import sys

from websockets.asyncio.client import connect

TIMEOUT = 10.0  # seconds, for every single step


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


async def run(url, ssl_ctx, deflate):
    failures = []

    def check(ok, what):
        print(("ok:   " if ok else "FAIL: ") + what)
        if not ok:
            failures.append(what)

    try:
        ws = await asyncio.wait_for(
            connect(url, ssl=ssl_ctx, proxy=None, compression="deflate" if deflate else None,
                    max_size=4 * 1024 * 1024,
                    ping_interval=None, open_timeout=TIMEOUT, close_timeout=TIMEOUT),
            TIMEOUT)
    except Exception as e:  # the point is to show the client's own error
        fail(f"connect {url}: {type(e).__name__}: {e}")
    print(f"ok:   connected to {url}")
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
    if deflate:
        check(extensions is not None and extensions.startswith("permessage-deflate"),
              f"server accepted permessage-deflate (Sec-WebSocket-Extensions: {extensions})")
    else:
        check(extensions is None, f"no extension without an offer (got {extensions})")

    text = "hello from python websockets: ünïcødé ✓"
    if deflate:
        text = " ".join([text] * 20)
    await ws.send(text)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check(got == text, f"text echo ({len(text)} chars)")

    blob = bytes(range(256)) * 400 if deflate else os.urandom(100 * 1024)
    await ws.send(blob)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check(isinstance(got, bytes) and got == blob,
          f"binary echo ({len(blob) // 1024} KiB, got {type(got).__name__} of {len(got)} bytes)")

    pong_waiter = await ws.ping(b"ping-payload")
    try:
        latency = await asyncio.wait_for(pong_waiter, TIMEOUT)
        check(True, f"ping answered by pong ({latency * 1000:.1f} ms)")
    except asyncio.TimeoutError:
        check(False, "ping answered by pong (no pong within timeout)")

    await asyncio.wait_for(ws.close(code=1000, reason="bye"), TIMEOUT + 1)
    await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
    rcvd = ws.protocol.close_rcvd
    sent = ws.protocol.close_sent
    print(f"      close sent: {sent}; close received: {rcvd}; "
          f"close_code={ws.close_code!r} close_reason={ws.close_reason!r}")
    check(rcvd is not None, "server answered our close frame")
    check(ws.close_code == 1000, f"close code 1000 (got {ws.close_code!r})")
    check(ws.close_reason in ("bye", ""), f"close reason echoed or empty (got {ws.close_reason!r})")
    check(ws.protocol.close_rcvd_then_sent is False, "close handshake initiated by the client")

    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--deflate"]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    url, ca, deflate = sys.argv[1], sys.argv[2], sys.argv[3:] == ["--deflate"]
    if ca == "--system-trust":
        ssl_ctx = ssl.create_default_context()
    else:
        if not os.path.isfile(ca):
            print(f"no such CA file: {ca}", file=sys.stderr)
            sys.exit(2)
        ssl_ctx = ssl.create_default_context(cafile=ca)
    asyncio.run(run(url, ssl_ctx, deflate))


if __name__ == "__main__":
    main()
