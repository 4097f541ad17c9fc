"""What one delivery costs the server's core: a small write to each of N loopback sockets.

    .venv/bin/python -m tests.benchmarks.send_cost

The readers (one event loop, like the benchmark's load generator) run on CPU 1. The writer
runs on CPU 0, as every server does in the fan-out benchmark; a second variant splits the
writes between two threads allowed both cores, to see whether a second writer thread could
shorten a pass. On loopback the kernel does the receiver's TCP work, and wakes the
receiver, inside the sender's `write()`. No Python runs between the writes but the loop
itself: this is the floor under one pass over a room of N members, whatever the server is
written in, and a message's latency to the member a pass reaches last is one pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
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


class Writers:
    """`threads` threads that each write `data` to their share of `descriptors`, together."""

    def __init__(self, descriptors: list[int], threads: int) -> None:
        self.shares = [descriptors[index::threads] for index in range(threads)]
        self.start = [threading.Event() for _ in self.shares[1:]]
        self.done = [threading.Event() for _ in self.shares[1:]]
        self.data = b""
        for index in range(1, threads):
            threading.Thread(target=self._helper, args=(index,), daemon=True).start()

    def _helper(self, index: int) -> None:
        while True:
            self.start[index - 1].wait()
            self.start[index - 1].clear()
            self._write(self.shares[index])
            self.done[index - 1].set()

    def _write(self, descriptors: list[int]) -> None:
        write, data = os.write, self.data
        for descriptor in descriptors:
            write(descriptor, data)

    def pass_(self, data: bytes) -> None:
        """One write of `data` to every descriptor; returns when all are written."""
        self.data = data
        for event in self.start:
            event.set()
        self._write(self.shares[0])
        for event in self.done:
            event.wait()
            event.clear()


def measure(count: int, sizes: tuple[int, ...], rounds: int, threads: int,
            cpus: set[int]) -> dict[int, list[float]]:
    """Seconds per pass, `rounds` passes of one write to every socket, for each size."""
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
        os.sched_setaffinity(0, cpus)
        writers = Writers([sock.fileno() for sock in sockets], threads)
        passes: dict[int, list[float]] = {}
        for size in sizes:
            data = b"x" * size
            times = passes[size] = []
            for _ in range(rounds):
                start = time.perf_counter()
                writers.pass_(data)
                times.append(time.perf_counter() - start)
                time.sleep(0.01)  # a pause, as between two messages: the reader goes back to sleep
        return passes
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
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.clients:,} loopback connections, one write to each per pass,"
          f" readers on CPU {READER_CPU}")
    for label, threads, cpus in (
        (f"one writer on CPU {WRITER_CPU}", 1, {WRITER_CPU}),
        ("two writer threads on both CPUs", 2, {0, 1}),
    ):
        print(f"{label}:")
        for size, times in measure(args.clients, (102, 8_000), args.rounds, threads, cpus).items():
            ordered = sorted(times)
            median, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99)]
            print(f"  {size:>5,} bytes: {median / args.clients * 1e6:5.2f} us per write,"
                  f" pass median {median * 1e3:5.2f} ms, p99 {p99 * 1e3:5.2f} ms")


if __name__ == "__main__":
    main()
