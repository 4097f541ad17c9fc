"""SIGKILL the server again and again while clients send: nothing acknowledged is lost, nothing
typed is stored twice, and every client's messages stay in order.

`TUI_CHAT_KILLS=200 python -m pytest tests/test_fault_injection.py -s` runs a longer campaign
and prints its figures (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
import time

import pytest

from tests.helpers import JsonClient
from tui_chat.client import ChatClient
from tui_chat.updates import Backoff, Received

KILLS = int(os.environ.get("TUI_CHAT_KILLS", "8"))
WRITERS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_server(port: int, db: str, log, sync: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat_server", "--port", str(port), "--db", db, "--history", "100000",
        "--rate", "0", "--sync", sync,
        stderr=log,
    )


@pytest.mark.parametrize("sync", ["full", "normal"])
async def test_sigkill_at_any_moment_loses_no_acknowledged_message(tmp_path, sync: str) -> None:
    """After many SIGKILLs, every acknowledged message is stored once, in order, with its id,
    and every message typed was eventually delivered exactly once (with either --sync: both
    survive a crash of the server process)."""
    rng = random.Random(1234)
    port, db = free_port(), str(tmp_path / "history.db")
    url = f"ws://127.0.0.1:{port}/lobby"
    log = open(tmp_path / "server.log", "wb")
    acked: dict[str, int] = {}  # text -> id the server acknowledged
    typed: dict[int, list[str]] = {writer: [] for writer in range(WRITERS)}

    def recorder(update) -> None:
        if isinstance(update, Received) and update.mine:
            message = update.message
            assert acked.setdefault(message.text, message.id) == message.id, "acked twice differently"

    clients = [ChatClient(url, f"writer{n}", recorder, backoff=Backoff(0.02, 0.1, rng))
               for n in range(WRITERS)]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    server = await start_server(port, db, log, sync)
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            deadline = time.monotonic() + rng.uniform(0.05, 0.4)
            while time.monotonic() < deadline:
                for number, client in enumerate(clients):
                    text = f"w{number}-{len(typed[number])}"
                    typed[number].append(text)
                    client.say(text)
                await asyncio.sleep(rng.uniform(0, 0.01))
            server.send_signal(signal.SIGKILL)
            await server.wait()
            server = await start_server(port, db, log, sync)

        async def drained() -> None:
            while any(client.outbox for client in clients):
                await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(drained(), 60)
        except asyncio.TimeoutError:
            raise AssertionError((tmp_path / "server.log").read_text()[-3000:]) from None

        probe = None
        for _ in range(200):  # the last restart may still be starting up
            try:
                probe = await JsonClient.connect(url, "probe", since=0, epoch=clients[0].position.epoch)
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert probe is not None, (tmp_path / "server.log").read_text()
        history = [m for m in probe.welcome["history"]]
        while len(history) < sum(map(len, typed.values())):
            event = await probe.recv(10)
            if event["type"] == "message":
                history.append(event)
        await probe.close()
    finally:
        for client in clients:
            await client.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
            await server.wait()
        log.close()

    ids = [message["id"] for message in history]
    assert ids == sorted(set(ids)), "ids strictly increase, none repeated"
    texts = [message["text"] for message in history]
    assert len(texts) == len(set(texts)), "no message stored twice"
    for number, sent in typed.items():
        assert [t for t in texts if t.startswith(f"w{number}-")] == sent, "all delivered, in order"
    by_text = {message["text"]: message["id"] for message in history}
    for text, message_id in acked.items():
        assert by_text.get(text) == message_id, "an acknowledged message is kept under its id"
    total = sum(map(len, typed.values()))
    print(f"\nfault injection (--sync {sync}): {KILLS} SIGKILLs survived, {total} messages typed, "
          f"{len(acked)} acknowledged and checked, {time.monotonic() - started:.1f} s")
