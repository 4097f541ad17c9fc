"""What one delivery costs the server's core: a small write to each of N loopback sockets.

    .venv/bin/python -m tests.benchmarks.send_cost

The readers (one event loop, like the benchmark's load generator) run on CPU 1. The writer
runs on CPU 0, as every server does in the fan-out benchmark; a second variant splits the
writes between two threads allowed both cores, to see whether a second writer thread could
shorten a pass. On loopback the kernel does the receiver's TCP work, and wakes the
receiver, inside the sender's `write()`. No Python runs between the writes but the loop
itself: this is the floor under one pass over a room of N members, whatever the server is
written in, and a message's latency to the member a pass reaches last is one pass.

Where a C compiler and liburing's headers are installed (Debian: `apt install gcc
liburing-dev`), the same passes are also made by `send_floor.c`: a C loop of `write()`
calls, and io_uring sends submitted all at once, one system call per pass instead of N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WRITER_CPU, READER_CPU = 0, 1
SIZES = (102, 8_000)  # one message; about what a write carries at half of saturation


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
    child = start_reader(listener.getsockname()[1], count)
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


def start_reader(port: int, count: int) -> subprocess.Popen[str]:
    """The reader process, connecting `count` times to `port`."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.benchmarks.send_cost", "--reader", str(port), str(count)],
        stdout=subprocess.PIPE, text=True)


def build_floor(directory: str) -> str | None:
    """Compile send_floor.c into `directory`; None (saying why) if this machine cannot."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("C floor: skipped, no C compiler (cc)")
        return None
    binary = os.path.join(directory, "send_floor")
    source = Path(__file__).with_name("send_floor.c")
    built = subprocess.run([compiler, "-O2", "-o", binary, str(source), "-luring"],
                           capture_output=True, text=True)
    if built.returncode != 0:
        print("C floor: skipped, send_floor.c does not build here (it needs liburing's"
              " headers: apt install liburing-dev)")
        return None
    return binary


def measure_floor(binary: str, count: int, size: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per pass of each of send_floor's variants, by name."""
    writer = subprocess.Popen([binary, str(count), str(rounds), str(size)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    child = None
    try:
        child = start_reader(int(writer.stdout.readline().split()[1]), count)
        passes = {}
        for line in writer.stdout:
            fields = line.split()
            first_time = next(i for i, field in enumerate(fields) if field[0].isdigit())
            passes[" ".join(fields[:first_time])] = [float(f) for f in fields[first_time:]]
        if writer.wait() != 0:
            raise RuntimeError(f"send_floor exited with status {writer.returncode}")
        return passes
    finally:
        writer.kill()
        writer.wait()
        if child is not None:
            child.kill()
            child.wait()


def report(label: str, clients: int, times: list[float]) -> None:
    """One line: the median cost of a write, and the median and p99 of a pass."""
    ordered = sorted(times)
    median, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99)]
    print(f"  {label}: {median / clients * 1e6:5.2f} us per write,"
          f" pass median {median * 1e3:5.2f} ms, p99 {p99 * 1e3:5.2f} ms")


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
        for size, times in measure(args.clients, SIZES, args.rounds, threads, cpus).items():
            report(f"{size:>5,} bytes", args.clients, times)
    with tempfile.TemporaryDirectory() as directory:
        binary = build_floor(directory)
        if binary is None:
            return
        print(f"C (send_floor.c) on CPU {WRITER_CPU}:")
        for size in SIZES:
            for name, times in measure_floor(binary, args.clients, size, args.rounds).items():
                report(f"{size:>5,} bytes, {name:<10}", args.clients, times)


if __name__ == "__main__":
    main()
