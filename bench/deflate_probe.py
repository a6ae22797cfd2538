#!/usr/bin/env python3
"""permessage-deflate figures for bench/NOTES.md: a JSON ticker stream through
examples/echo (release build, `--features deflate`) with compression off, without
context takeover and with it.

Usage: deflate_probe.py ECHO_BINARY CERT_DIR [MESSAGES] [IDLE_CONNECTIONS]

For each mode it starts the echo server, then
  1. one Python `websockets` client (offering permessage-deflate as it does by
     default, or not at all for "off") sends MESSAGES ticker messages one at a time
     and reads each echo; the server's bytes written (/proc/PID/io wchar: TLS records,
     plus the 8-byte eventfd wake-up of each message in events mode) and its CPU time
     (/proc/PID/stat: inflating the client's message, compressing the echo, TLS) are
     divided by MESSAGES. (rchar cannot count what the server reads: std reads
     sockets with recv(2), which it leaves out.)
  2. IDLE_CONNECTIONS clients each exchange one ticker message and stay open; the
     server's RSS growth divided by their number is the idle cost per connection.
The client runs in this process, so nothing of it is counted against the server.
"""

import asyncio
import os
import re
import ssl
import subprocess
import sys
import time

from websockets.asyncio.client import connect

MODES = [("off", []), ("no context takeover", ["--deflate"]), ("context takeover, 15 bits", ["--deflate-takeover", "15"]),
         ("context takeover, 10 bits", ["--deflate-takeover", "10"])]
TICKS = os.sysconf("SC_CLK_TCK")


def ticker(i):
    return ('{"type":"ticker","symbol":"BTC-USD","price":"%d.%02d","best_bid":"%d.%02d","best_ask":"%d.%02d",'
            '"volume_24h":"%d","sequence":%d,"time":"2026-11-29T19:20:%02d.%06dZ"}'
            % (43000 + i % 500, i % 100, 42999 + i % 500, (i * 7) % 100, 43001 + i % 500, (i * 3) % 100,
               1000 + i * 7, 100000 + i, i % 60, (i * 7919) % 1000000))


def io_of(pid):
    fields = dict(line.split(": ") for line in open(f"/proc/{pid}/io").read().splitlines())
    return int(fields["rchar"]), int(fields["wchar"])


def cpu_of(pid):
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / TICKS


def rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


async def stream(url, ctx, compression, messages):
    async with connect(url, ssl=ctx, compression=compression, ping_interval=None, max_size=None) as ws:
        for i in range(messages):
            text = ticker(i)
            await ws.send(text)
            assert await ws.recv() == text


async def idle(url, ctx, compression, count, pid):
    before = rss_kib(pid)
    clients = []
    for i in range(count):
        ws = await connect(url, ssl=ctx, compression=compression, ping_interval=None)
        await ws.send(ticker(i))
        await ws.recv()
        clients.append(ws)
    await asyncio.sleep(1)
    grown = rss_kib(pid) - before
    for ws in clients:
        await ws.close()
    return grown / count


def main():
    echo, certs = sys.argv[1], sys.argv[2]
    messages = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    print(f"| mode | bytes written per message | server CPU per message | idle KiB per connection ({count}) |")
    print("|---|---:|---:|---:|")
    log = os.path.join(certs, "server.log")
    for name, flags in MODES:
        server = subprocess.Popen(
            [echo, "--bind", "127.0.0.1:0", "--cert", os.path.join(certs, "server.pem"), "--key",
             os.path.join(certs, "server.key"), "--max-connections", str(count + 10), "--max-connections-per-ip",
             "none", *flags], stderr=open(log, "w"))
        port = None
        for _ in range(100):  # bounded: 10 s
            m = re.search(r"listening on 127.0.0.1:(\d+)", open(log).read())
            if m:
                port = m.group(1)
                break
            time.sleep(0.1)
        url = f"wss://localhost:{port}/"
        compression = None if name == "off" else "deflate"
        asyncio.run(stream(url, ctx, compression, 100))  # warm up
        (r0, w0), c0 = io_of(server.pid), cpu_of(server.pid)
        started = time.time()
        asyncio.run(stream(url, ctx, compression, messages))
        (r1, w1), c1 = io_of(server.pid), cpu_of(server.pid)
        per_conn = asyncio.run(idle(url, ctx, compression, count, server.pid))
        server.terminate()
        server.wait()
        print(f"| {name} | {(w1 - w0) / messages:.1f} | "
              f"{(c1 - c0) / messages * 1e6:.1f} µs | {per_conn:.1f} |", flush=True)
        print(f"  ({messages} messages in {time.time() - started:.1f} s; ticker JSON of {len(ticker(0))} bytes)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
