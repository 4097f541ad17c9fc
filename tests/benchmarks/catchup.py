"""What a long catch-up costs the server: memory held for clients that ask for the whole
history and never read it, and how fast one that does read gets all of it.

Starts `tui-chat-server` (durable history, pinned to CPU 0), fills a room with --messages
messages of --chars characters, then (1) connects --stalled clients that ask for everything
(`since` 0) and read nothing, and reports the server's RSS growth per client; (2) times one
client that reads its whole catch-up, from its `hello` to the last message.

    .venv/bin/python -m tests.benchmarks.catchup [--messages 10000] [--chars 3900] [--stalled 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time

from websockets.asyncio.client import connect

from tui_chat.protocol import SUBPROTOCOL
from tests.benchmarks.running import LOADGEN_CPU, RunningServer, ServerKind, rss_kib


async def fill(url: str, messages: int, chars: int) -> str:
    """Post the history, 64 messages in flight; returns the history's epoch."""
    async with connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as writer:
        await writer.send(json.dumps({"type": "hello", "nick": "writer"}))
        epoch = json.loads(await writer.recv())["epoch"]
        text = "x" * chars
        sent = acked = 0
        while acked < messages:
            while sent < messages and sent - acked < 64:
                await writer.send(json.dumps({"type": "say", "text": text, "cid": str(sent)}))
                sent += 1
            if json.loads(await writer.recv()).get("type") == "message":
                acked += 1
    return epoch


async def stalled(port: int, url: str, epoch: str, number: int):
    """A client that asks for the whole history and reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    client = await connect(url, sock=sock, subprotocols=[SUBPROTOCOL], max_size=None)
    await client.send(json.dumps({"type": "hello", "nick": f"stalled{number}", "since": 0,
                                  "epoch": epoch}))
    client.transport.pause_reading()
    return client


async def read_all(url: str, epoch: str, messages: int) -> tuple[float, int]:
    """Seconds from hello to the last message of the catch-up, and the bytes received."""
    async with connect(url, subprotocols=[SUBPROTOCOL], max_size=None) as reader:
        start = time.perf_counter()
        await reader.send(json.dumps({"type": "hello", "nick": "reader", "since": 0,
                                      "epoch": epoch}))
        welcome = json.loads(await reader.recv())
        received, size = len(welcome["history"]), 0
        while received < messages:
            frame = await reader.recv()
            size += len(frame)
            received += frame.startswith('{"type":"message"')
        return time.perf_counter() - start, size


async def measure(args: argparse.Namespace) -> None:
    async with RunningServer(ServerKind("tui-chat", True)) as server:
        url = f"ws://127.0.0.1:{server.port}/bench"
        epoch = await fill(url, args.messages, args.chars)
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        clients = [await stalled(server.port, url, epoch, n) for n in range(args.stalled)]
        await asyncio.sleep(2)
        after = rss_kib(server.pid)
        seconds, size = await read_all(url, epoch, args.messages)
        for client in clients:
            client.transport.abort()
    history_mb = args.messages * args.chars / 1e6
    print(f"history: {args.messages:,} messages of {args.chars:,} characters"
          f" ({history_mb:.1f} MB)")
    print(f"{args.stalled} clients asking for all of it and reading nothing:"
          f" server RSS {before / 1024:.1f} -> {after / 1024:.1f} MB"
          f" ({(after - before) / 1024 / max(args.stalled, 1):.2f} MB per client)")
    print(f"one client reading all of it: {seconds:.2f} s ({size / 1e6 / seconds:.0f} MB/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--chars", type=int, default=3_900)
    parser.add_argument("--stalled", type=int, default=20)
    args = parser.parse_args()
    os.sched_setaffinity(0, {LOADGEN_CPU})
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
