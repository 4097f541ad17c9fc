"""Reference: the 20-line websockets broadcast() server (every message to every client)."""

import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(websocket):
    CLIENTS.add(websocket)
    try:
        async for message in websocket:
            broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(websocket)


async def main(port):
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16) as server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
