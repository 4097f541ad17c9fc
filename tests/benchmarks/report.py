"""The fan-out benchmark's table: medians over repetitions, ratios, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.benchmarks.fanout import Result
    from tests.benchmarks.running import ServerKind


def median_of(results: list[Result], server: str, clients: int, pick) -> float:
    values = [pick(r) for r in results if r.server == server and r.clients == clients]
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def latency_labels(results: list[Result], server: str, clients: int) -> list[str]:
    for result in results:
        if result.server == server and result.clients == clients and result.latency:
            return list(result.latency)
    return []


def ratio(rate: float, reference: float) -> str:
    """`rate` as a multiple of `reference`, or "-" when the reference was not run."""
    return f"{rate / reference:.2f}x" if reference == reference and reference > 0 else "-"


def report(results: list[Result], sizes: list[int], servers: list[ServerKind]) -> str:
    lines = ["| clients | server | deliveries/s | vs Node ws | vs websockets broadcast() |"
             " server CPU | load generator CPU | RSS/connection | latency p50 / p99 / p99.9 |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for size in sizes:
        node = median_of(results, "Node ws", size, lambda r: r.deliveries_per_s)
        ws = median_of(results, "websockets broadcast()", size, lambda r: r.deliveries_per_s)
        for kind in servers:
            rate = median_of(results, kind.name, size, lambda r: r.deliveries_per_s)
            rss = median_of(results, kind.name, size, lambda r: r.rss_per_connection_kib)
            cpu = median_of(results, kind.name, size, lambda r: r.server_cpu)
            gen = median_of(results, kind.name, size, lambda r: r.loadgen_cpu)
            lat = []
            for label in latency_labels(results, kind.name, size):
                figures = [median_of(results, kind.name, size,
                                     lambda r, k=k, label=label: r.latency[label].get(k, float("nan")))
                           for k in ("p50_ms", "p99_ms", "p999_ms")]
                if figures[0] != figures[0]:  # NaN: overloaded in every repetition
                    lat.append(f"overloaded at {label}")
                else:
                    lat.append("/".join(f"{value:.1f}" for value in figures) + f" ms at {label}")
            lat = "<br>".join(lat) or "-"
            if rate > 0:
                vs = (f"{rate:,.0f} | {ratio(rate, node)} | {ratio(rate, ws)} | {cpu:.0%}"
                      f" | {gen:.0%}")
            else:  # a memory-only size
                vs = "- | - | - | - | -"
            lines.append(f"| {size:,} | {kind.name} | {vs} | {rss:.1f} KiB | {lat} |")
    return "\n".join(lines)


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    try:
        import uvloop
        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio"
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except FileNotFoundError:
        node = "not installed"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "node": node, "tui-chat loop": loop, "kernel": platform.release()}
