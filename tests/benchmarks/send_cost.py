"""What one delivery costs the server's core: a small write to each of N loopback sockets.

    .venv/bin/python -m tests.benchmarks.send_cost

The writer runs on CPU 0 and the readers (one event loop, like the benchmark's load
generator) on CPU 1, as in the fan-out benchmark. On loopback the kernel does the
receiver's TCP work, and wakes the receiver, inside the sender's `write()`. No Python runs
between the writes but the loop itself: this is the floor under one pass over a room of N
members, whatever the server is written in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time

WRITER_CPU, READER_CPU = 0, 1


def reader(port: int, count: int) -> None:
    """Open `count` connections to `port` and read them with an event loop, discarding."""
    os.sched_setaffinity(0, {READER_CPU})
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run

    class Discard(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            await loop.create_connection(Discard, "127.0.0.1", port)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    run(main())


def measure(count: int, size: int, rounds: int) -> float:
    """Median microseconds per write over `rounds` passes of one write to every socket."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(count)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.send_cost", "--reader",
         str(listener.getsockname()[1]), str(count)],
        stdout=subprocess.PIPE, text=True)
    try:
        sockets = [listener.accept()[0] for _ in range(count)]
        assert child.stdout is not None
        child.stdout.readline()
        for sock in sockets:
            sock.setblocking(False)
        descriptors = [sock.fileno() for sock in sockets]
        data = b"x" * size
        write = os.write
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for descriptor in descriptors:
                write(descriptor, data)
            times.append(time.perf_counter() - start)
            time.sleep(0.01)  # a pause, as between two messages: the reader goes back to sleep
        return statistics.median(times) / count * 1e6
    finally:
        child.kill()
        child.wait()
        listener.close()


def main() -> None:
    if sys.argv[1:2] == ["--reader"]:
        reader(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    os.sched_setaffinity(0, {WRITER_CPU})
    print(f"{args.clients:,} loopback connections, one write to each per pass,"
          f" writer on CPU {WRITER_CPU}, readers on CPU {READER_CPU}")
    for size in (102, 2_400):
        cost = measure(args.clients, size, args.rounds)
        print(f"  {size:>5,} bytes: {cost:5.2f} us per write,"
              f" {cost * args.clients / 1000:5.2f} ms per pass")


if __name__ == "__main__":
    main()
