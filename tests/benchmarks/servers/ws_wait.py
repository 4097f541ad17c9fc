"""Reference: the tutorial broadcast server that awaits asyncio.wait over one send per client."""

import asyncio
import sys

from websockets.asyncio.server import serve

CLIENTS = set()


async def handler(websocket):
    CLIENTS.add(websocket)
    try:
        async for message in websocket:
            await asyncio.wait([asyncio.create_task(client.send(message)) for client in CLIENTS])
    finally:
        CLIENTS.discard(websocket)


async def main(port):
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16) as server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
