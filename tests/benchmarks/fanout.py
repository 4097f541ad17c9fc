"""The fan-out benchmark: tui-chat-server against reference broadcast servers, side by side.

    .venv/bin/python -m tests.benchmarks.fanout            # the full run (docs/performance.md)
    .venv/bin/python -m tests.benchmarks.fanout --quick    # a smaller, faster run

Every server is started fresh for every measurement, pinned to CPU 0 while this load
generator runs on CPU 1, and the servers take turns (A B C D E, A B C D E, ...) so drift
hits them all alike. Reported: medians over the repetitions, and ratios to the references.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.benchmarks.loadgen import (
    LeanClient,
    Tally,
    message,
    percentile,
)
from tests.benchmarks.report import machine, report
from tests.benchmarks.running import (
    HERE,
    LOADGEN_CPU,
    ROOT,
    SERVERS,
    VARIANTS,
    Room,
    RunningServer,
    ServerKind,
    cpu_seconds,
    rss_kib,
)

OVERLOAD = 0.9  # latency is not measured at offered loads above this share of saturation


@dataclass
class Result:
    server: str
    clients: int
    repetition: int
    deliveries_per_s: float = 0.0
    messages_per_s: float = 0.0
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    rss_per_connection_kib: float = 0.0
    latency: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    errors: int = 0


async def drained(tally: Tally, quiet: float = 0.5, limit: float = 60.0) -> None:
    """Wait until nothing has arrived for `quiet` seconds, so one phase's backlog does not
    spill into the next (a server may still be delivering long after the senders stopped)."""
    deadline = time.monotonic() + limit
    last = -1
    while time.monotonic() < deadline and tally.frames != last:
        last = tally.frames
        await asyncio.sleep(quiet)


def senders_of(clients: list[LeanClient], count: int) -> list[LeanClient]:
    """The clients that send: never one that measures latency (plain-dialect senders do not
    get their own lines back) and never the observer (the last client)."""
    return [client for client in clients[:-1] if not client.sample][:count]


async def saturate(clients: list[LeanClient], tally: Tally, senders: int, window: int,
                   warmup: float, seconds: float, pid: int) -> tuple[float, float, float, float]:
    """Closed loop: keep `window` messages in flight (as seen by an observer that does not
    send). Returns deliveries/s, messages/s, server CPU and load-generator CPU (cores)."""
    observer = clients[-1]
    sending = senders_of(clients, senders)
    sent = observed = 0
    wake = asyncio.Event()

    def seen(_: int) -> None:
        nonlocal observed
        observed += 1
        if sent - observed < window:
            wake.set()

    observer.on_text = seen
    loop = asyncio.get_running_loop()
    start = loop.time()
    marks: dict[str, tuple] = {}
    while True:
        now = loop.time()
        if "start" not in marks and now >= start + warmup:
            marks["start"] = (now, tally.frames, observed, cpu_seconds(pid), time.process_time())
        if now >= start + warmup + seconds:
            marks["end"] = (now, tally.frames, observed, cpu_seconds(pid), time.process_time())
            break
        while sent - observed < window:
            sending[sent % len(sending)].send(message(sent, time.perf_counter_ns()))
            sent += 1
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), 1)
        except asyncio.TimeoutError:
            pass
    observer.on_text = None
    # The sampling clients timed every message of the run: millions of entries at tui-chat's
    # rates. Drop them now; freeing them later would stall the generator mid-measurement.
    tally.latencies_ns.clear()
    (t0, f0, o0, c0, g0), (t1, f1, o1, c1, g1) = marks["start"], marks["end"]
    wall = t1 - t0
    return (f1 - f0) / wall, (o1 - o0) / wall, (c1 - c0) / wall, (g1 - g0) / wall


async def open_loop(clients: list[LeanClient], tally: Tally, senders: int, rate: float,
                    warmup: float, seconds: float) -> dict[str, float]:
    """Open loop: send `rate` messages/s on a fixed schedule; latency is measured from each
    message's scheduled send time, so a server that falls behind is charged for it."""
    sending = senders_of(clients, senders)
    tally.latencies_ns.clear()
    interval_ns = int(1e9 / rate)
    begin = time.perf_counter_ns()
    measure_from = begin + int(warmup * 1e9)
    end = measure_from + int(seconds * 1e9)
    sequence = 0
    while True:
        due = begin + sequence * interval_ns
        if due >= end:
            break
        ahead = due - time.perf_counter_ns()
        if ahead > 0:
            await asyncio.sleep(ahead / 1e9)
        if due >= measure_from and due - interval_ns < measure_from:
            tally.latencies_ns.clear()  # only messages scheduled after the warm-up count
        sending[sequence % len(sending)].send(message(sequence, due))
        sequence += 1
    await drained(tally)  # late arrivals still count, against their scheduled time
    latencies = list(tally.latencies_ns)
    tally.latencies_ns.clear()
    return {"p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "p999_ms": percentile(latencies, 0.999), "samples": len(latencies)}


async def measure(kind: ServerKind, clients_count: int, repetition: int, loads: list[float],
                  args: argparse.Namespace) -> Result:
    """Memory and saturation on one fresh server; latency, if `loads`, on another: a server
    saturated with a window of messages in flight can take minutes to deliver them all (at
    10,000 clients, 1,024 messages are ten million deliveries), and waiting for that would
    only measure the same thing again."""
    result = Result(kind.name, clients_count, repetition)
    senders = min(args.senders, clients_count - 1)
    async with RunningServer(kind) as server, Room(kind, server, clients_count, args) as room:
        pid = server.pid
        result.rss_per_connection_kib = (rss_kib(pid) - room.baseline_kib) / clients_count
        if not args.memory_only:
            (result.deliveries_per_s, result.messages_per_s, result.server_cpu,
             result.loadgen_cpu) = await saturate(room.clients, room.tally, senders,
                                                  args.window, args.warmup, args.seconds, pid)
        result.errors = room.tally.errors
    carried = [load for load in loads if load <= OVERLOAD * result.messages_per_s]
    for load in loads:
        if load not in carried:  # it would only build a queue
            result.latency[f"{load:,.0f} msg/s"] = {"overloaded": True}
    if args.memory_only or not carried:
        return result
    async with RunningServer(kind) as server, Room(kind, server, clients_count, args) as room:
        for load in carried:
            result.latency[f"{load:,.0f} msg/s"] = await open_loop(
                room.clients, room.tally, senders, load, args.warmup, args.seconds)
        result.errors += room.tally.errors
    result.latency = {label: result.latency[label] for label in
                      (f"{load:,.0f} msg/s" for load in loads)}  # in the order of `loads`
    return result


async def calibrate(kind: ServerKind, size: int, args: argparse.Namespace) -> float:
    """A server's saturation rate in messages/s, to choose the offered loads for latency."""
    probe = argparse.Namespace(**{**vars(args), "seconds": 2.0, "memory_only": False})
    result = await measure(kind, size, -1, [], probe)
    return result.messages_per_s


async def offered_loads(size: int, servers: list[ServerKind], args: argparse.Namespace
                        ) -> list[float]:
    """Half of what the slowest reference server sustains (a load every server can carry,
    so all are compared at the same load), then 10% and 50% of tui-chat's saturation."""
    loads = []
    slowest = next((kind for kind in servers if kind.name == "asyncio.wait tutorial"), None)
    if slowest is not None:
        loads.append(max(1, round(await calibrate(slowest, size, args) / 2)))
    top = await calibrate(SERVERS[0], size, args)
    print(f"{size:,} clients: tui-chat saturates at {top:,.0f} messages/s", flush=True)
    return loads + [round(top / 10), round(top / 2)]


async def main_async(args: argparse.Namespace) -> tuple[list[Result], list[str]]:
    os.sched_setaffinity(0, {LOADGEN_CPU})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers = [kind for kind in SERVERS + VARIANTS if kind.name in args.servers]
    if any(kind.name == "Node ws" for kind in servers):
        node_dir = HERE / "servers" / "node_ws"
        if not (node_dir / "node_modules" / "ws").exists():
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"],
                           cwd=node_dir, check=True)
    results: list[Result] = []
    failures: list[str] = []
    for size in args.clients:
        memory_only = size > args.throughput_max
        loads: list[float] = []
        if not memory_only and args.loads:
            loads = args.loads
        elif not memory_only:
            loads = await offered_loads(size, servers, args)
            print(f"{size:,} clients: latency measured at"
                  f" {', '.join(f'{load:,.0f}' for load in loads)} messages/s", flush=True)
        for repetition in range(args.repetitions):
            for kind in servers:
                run_args = argparse.Namespace(**{**vars(args), "memory_only": memory_only})
                try:
                    result = await measure(kind, size, repetition, loads, run_args)
                except Exception as error:  # one server failing must not end the run
                    failures.append(f"{size:,} clients, {kind.name}: {error!r}")
                    print(f"  {kind.name}: failed: {error!r}", flush=True)
                    continue
                results.append(result)
                print(f"  {size:>6,} {kind.name:<24} rep {repetition}: "
                      f"{result.deliveries_per_s:>11,.0f} deliveries/s "
                      f"rss {result.rss_per_connection_kib:5.1f} KiB/conn "
                      f"{json.dumps(result.latency)}", flush=True)
    return results, failures


KNOWN = [kind.name for kind in SERVERS + VARIANTS]


def server_names(text: str) -> list[str]:
    """The --servers list, each name checked against the servers this benchmark knows."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in KNOWN]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown server {', '.join(map(repr, unknown)) or '(none given)'}"
            f"; choose from: {', '.join(KNOWN)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="100,1000,10000",
                        type=lambda text: [int(n) for n in text.split(",")])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--window", type=int, default=1024,
                        help="messages in flight (closed loop); see docs/performance.md")
    parser.add_argument("--samples", type=int, default=20, help="clients measuring latency")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--loads", type=lambda text: [float(n) for n in text.split(",")],
                        help="offered loads for latency in messages/s (default: half of the"
                        " slowest reference's saturation rate, then 10%% and 50%% of"
                        " tui-chat's, measured first)")
    parser.add_argument("--throughput-max", type=int, default=10_000,
                        help="above this many clients, measure memory only (default:"
                        " 10,000, so every default size is measured in full)")
    parser.add_argument("--servers", default=",".join(kind.name for kind in SERVERS),
                        type=server_names,
                        help="comma-separated, from: " + ", ".join(KNOWN))
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "benchmark-fanout.json")
    parser.add_argument("--quick", action="store_true",
                        help="1 repetition, 1,000 clients, shorter windows")
    args = parser.parse_args()
    if args.quick:
        args.repetitions, args.clients, args.seconds = 1, [1000], 2.0
    too_few = [size for size in args.clients
               if size <= args.throughput_max and size < 2 * args.samples + 2]
    if too_few:  # a room needs senders besides its sampling clients and its observer
        parser.error(f"--clients {too_few[0]} is too few for --samples {args.samples}:"
                     f" measuring throughput needs at least {2 * args.samples + 2} clients")
    try:
        import uvloop  # the generator is cheaper on uvloop; it is in the [speed] extra
    except ImportError:
        results, failures = asyncio.run(main_async(args))
    else:
        results, failures = uvloop.run(main_async(args))
    servers = [kind for kind in SERVERS + VARIANTS if kind.name in args.servers]
    table = report(results, args.clients, servers)
    info = machine()
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(table)
    args.json.write_text(json.dumps({"machine": info, "table": table,
                                     "results": [asdict(r) for r in results]}, indent=1))
    print(f"\nwrote {args.json}")
    if failures:
        sys.exit("measurements failed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
