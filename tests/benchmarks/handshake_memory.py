"""The handshake memory benchmark: what unfinished handshakes leave in the server once closed.

    .venv/bin/python -m tests.benchmarks.handshake_memory [--rounds 8] [--connections 100]

Each round opens `--connections` connections at once that send a request line and nearly
all the headers websockets allows (110 of 8,000 bytes each) but never the blank line that
ends them, so the server closes them at its handshake timeout (1 s here). Reported is the
server's RSS after each round: what the closed handshakes still hold. Each round's own
headers are in memory while it runs (about 86 MB for 100 connections), so a flat figure
near that means nothing is kept.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.benchmarks.running import SERVERS, RunningServer, ServerKind, rss_kib

HEADERS, HEADER_BYTES = 110, 8000


class ShortHandshakes(ServerKind):
    """tui-chat with a handshake timeout of 1 s (and no limit per address)."""

    def command(self, port: int, workdir):  # type: ignore[no-untyped-def]
        return [*super().command(port, workdir), "--handshake-timeout", "1"]


async def unfinished_handshake(port: int) -> None:
    """Send all but the end of a request's headers, then wait to be closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /lobby HTTP/1.1\r\nHost: bench\r\n")
    for number in range(HEADERS):
        writer.write(b"X-Pad-%d: %s\r\n" % (number, b"a" * HEADER_BYTES))
    await writer.drain()
    await reader.read()  # until the server closes it
    writer.close()


async def measure(rounds: int, connections: int) -> list[int]:
    """The server's RSS in KiB at the start and after each round."""
    kind = ShortHandshakes(SERVERS[1].name, True)  # tui-chat :memory:
    async with RunningServer(kind) as server:
        figures = [rss_kib(server.pid)]
        for _ in range(rounds):
            await asyncio.gather(*(unfinished_handshake(server.port) for _ in range(connections)))
            await asyncio.sleep(0.2)
            figures.append(rss_kib(server.pid))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=100)
    options = parser.parse_args()
    figures = asyncio.run(measure(options.rounds, options.connections))
    print(f"server RSS at start: {figures[0] / 1024:.0f} MB")
    for number, kib in enumerate(figures[1:], 1):
        print(f"after round {number} ({number * options.connections} closed): {kib / 1024:.0f} MB")


if __name__ == "__main__":
    main()
