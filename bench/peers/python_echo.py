"""An echo server on Python's `websockets` (asyncio) and the standard `ssl` module: what a
Python user would run. Optional peer of bench/run.sh (which installs `websockets` from PyPI).

Usage: python3 python_echo.py --cert PEM --key PEM [--bind HOST:PORT] [--lifetime SECS]
Prints "listening HOST:PORT" once it accepts; exits by itself after --lifetime seconds.
"""

import argparse
import asyncio
import ssl

from websockets.asyncio.server import serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bind", default="127.0.0.1:9105")
    parser.add_argument("--lifetime", type=float, default=900)
    args = parser.parse_args()
    host, port = args.bind.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    # No compression, as for every other server in the benchmarks.
    async with serve(echo, host, int(port), ssl=context, compression=None):
        print(f"listening {host}:{port}", flush=True)
        await asyncio.sleep(args.lifetime)


asyncio.run(main())
