"""The servers under test as processes pinned to their CPU, and rooms of lean clients
joined to them: what each fan-out measurement starts fresh."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.loadgen import LeanClient, Tally, count_only, open_clients

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SERVER_CPU, LOADGEN_CPU = 0, 1


@dataclass(frozen=True)
class ServerKind:
    name: str
    plain_join: bool  # speaks the plain dialect: a nickname first, senders skip their echo

    def command(self, port: int, workdir: Path) -> list[str]:
        python = sys.executable
        if self.name.startswith("tui-chat"):
            db = ":memory:" if "memory" in self.name else str(workdir / "history.db")
            loop = "asyncio" if "asyncio loop" in self.name else "auto"
            sync = "normal" if "sync normal" in self.name else "full"
            return [python, "-m", "tui_chat_server", "--port", str(port), "--db", db, "--rate", "0",
                    "--max-per-ip", "0", "--max-clients", "0", "--log-level", "warning",
                    "--event-loop", loop, "--sync", sync, "--ping-interval", "0"]
        if self.name == "websockets broadcast()":
            return [python, str(HERE / "servers" / "ws_broadcast.py"), str(port)]
        if self.name == "asyncio.wait tutorial":
            return [python, str(HERE / "servers" / "ws_wait.py"), str(port)]
        return ["node", str(HERE / "servers" / "node_ws" / "server.js"), str(port)]


SERVERS = [
    ServerKind("tui-chat", True),
    ServerKind("tui-chat :memory:", True),
    ServerKind("websockets broadcast()", False),
    ServerKind("asyncio.wait tutorial", False),
    ServerKind("Node ws", False),
]
# Variants for measuring one lever at a time (choose with --servers).
VARIANTS = [ServerKind("tui-chat asyncio loop", True), ServerKind("tui-chat --sync normal", True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RunningServer:
    """A server process pinned to SERVER_CPU, started fresh and stopped after one measurement."""

    def __init__(self, kind: ServerKind) -> None:
        self.kind = kind
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="tui-chat-bench-"))
        self.process: subprocess.Popen | None = None

    async def __aenter__(self) -> RunningServer:
        self.process = subprocess.Popen(
            self.kind.command(self.port, self.workdir), cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
        )
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            except OSError:
                await asyncio.sleep(0.02)
        raise RuntimeError(f"{self.kind.name} did not start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Room:
    """`count` lean clients joined to one room of a running server, the last one observing
    (it parses every frame; all but the sampling clients only count bytes). Closed on exit."""

    def __init__(self, kind: ServerKind, server: RunningServer, count: int,
                 args: argparse.Namespace) -> None:
        self.kind, self.server, self.count, self.args = kind, server, count, args
        self.tally = Tally()
        self.clients: list[LeanClient] = []
        self.baseline_kib = 0.0

    async def __aenter__(self) -> Room:
        await asyncio.sleep(0.2)
        self.baseline_kib = rss_kib(self.server.pid)
        self.clients = await open_clients(
            "127.0.0.1", self.server.port, "/bench", self.count, self.tally,
            plain_join=self.kind.plain_join, samples=self.args.samples)
        await asyncio.sleep(0.5)
        self.clients[-1].on_text = lambda _: None  # the observer keeps parsing
        count_only(self.clients)
        return self

    async def __aexit__(self, *_: object) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()
