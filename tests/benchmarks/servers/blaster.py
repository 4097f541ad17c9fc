"""A message source for the client benchmark: after `hello`, streams `message` events to the
client at a fixed rate (or flat out), pre-encoded, so the source is never the bottleneck.

    python tests/benchmarks/servers/blaster.py PORT COUNT RATE
"""

import asyncio
import json
import sys

from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode

COUNT, RATE = int(sys.argv[2]), float(sys.argv[3])
BATCH = 100  # frames per write


def frame(number: int) -> bytes:
    event = {"type": "message", "id": number, "ts": 1763717400000 + number, "nick": f"user{number % 50}",
             "text": f"message {number:07d} " + "lorem ipsum dolor sit amet " * 3, "kind": "chat"}
    return Frame(Opcode.TEXT, json.dumps(event).encode()).serialize(mask=False)


FRAMES = [frame(n) for n in range(1, COUNT + 1)]


async def handler(websocket):
    hello = json.loads(await websocket.recv())
    await websocket.send(json.dumps({"type": "welcome", "nick": hello["nick"], "room": "bench",
                                     "users": [hello["nick"]] + [f"user{n}" for n in range(50)],
                                     "epoch": "bench", "history": [], "max_text": 4000}))
    await websocket.recv()  # the benchmark says "go" (a chat line) when it is ready
    loop = asyncio.get_running_loop()
    start = loop.time()
    for first in range(0, COUNT, BATCH):
        if RATE > 0:
            delay = start + first / RATE - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        websocket.transport.write(b"".join(FRAMES[first:first + BATCH]))
        await websocket.drain() if hasattr(websocket, "drain") else None
    await websocket.wait_closed()


async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), subprotocols=["tui-chat.v1"],
                     compression=None, max_size=None, ping_interval=None) as server:
        await server.serve_forever()


asyncio.run(main())
