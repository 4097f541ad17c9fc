"""Servers that take a connection and then say nothing: the client gives up on them, and says why."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest

from websockets.asyncio.server import serve

from tests.helpers import Recorder, eventually
from tui_chat.client import ChatClient
from tui_chat.protocol import SUBPROTOCOL
from tui_chat.updates import State, StateChanged


async def test_stopping_gives_up_a_handshake_a_silent_server_never_answers(run_client) -> None:
    """A client stopped while its opening handshake waits on a server that never answers
    ends at once, not when the handshake would have timed out."""
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # until the client goes
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    client, seen = run_client(f"ws://127.0.0.1:{port}/lobby", "alice", open_timeout=3600)
    await asyncio.wait_for(accepted.wait(), 5)
    await asyncio.wait_for(client.stop(), 5)
    await seen.until(lambda: client.state is State.OFFLINE)
    listener.close()


async def test_a_server_that_never_answers_the_hello_is_given_up_and_tried_again(
        run_client) -> None:
    """A server that completes the handshake but never answers the hello is given up after
    the open timeout, with that reason, and connected to again: the client does not sit
    joining for ever."""
    hellos: list[str] = []

    async def mute(connection) -> None:
        hellos.append(await connection.recv())
        await connection.wait_closed()

    async with serve(mute, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        client, seen = run_client(f"ws://127.0.0.1:{port}/lobby", "alice", open_timeout=0.3)
        await eventually(lambda: len(hellos) >= 2)
        reasons = [update.reason for update in seen.of(StateChanged)
                   if update.state is State.RECONNECTING and update.retry_at is not None]
        assert reasons[0] == "the server did not answer in 0.3 s", reasons
        await client.stop()


async def test_a_welcome_that_takes_longer_than_the_open_timeout_to_arrive_is_waited_for(
        run_client) -> None:
    """Bytes still coming are not silence: a long welcome over a slow link, trickling in for
    longer than the open timeout, is received and the client joins."""
    users = [f"user{number:05}" for number in range(8000)]
    welcome = json.dumps({"type": "welcome", "nick": "alice", "room": "lobby", "epoch": "e",
                          "users": ["alice", *users], "history": []}).encode()
    frame = b"\x81\x7f" + struct.pack("!Q", len(welcome)) + welcome  # one text frame, unmasked

    began: list[float] = []

    async def slow_link(connection) -> None:
        await connection.recv()  # the hello
        began.append(time.monotonic())
        piece = len(frame) // 30 + 1
        for start in range(0, len(frame), piece):
            connection.transport.write(frame[start:start + piece])
            # 1.5 s in all against an open timeout of 1 s; each gap far inside it, so a
            # stalled test process (the server stalls with it) still sends within the timeout
            await asyncio.sleep(0.05)
        await connection.wait_closed()

    async with serve(slow_link, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        client, seen = run_client(f"ws://127.0.0.1:{port}/lobby", "alice", open_timeout=1)
        await seen.until(lambda: client.state is State.ONLINE)
        assert time.monotonic() - began[0] > client.open_timeout  # it took longer than that
        assert len(client.users) == 8001
        assert not [update for update in seen.of(StateChanged) if update.state is State.RECONNECTING]
        await client.stop()


async def test_cancelling_the_client_while_frames_pour_in_before_the_welcome_ends_it() -> None:
    """A client cancelled while it waits for its welcome amid other frames ends, cancelled:
    the wait on each frame never swallows the cancellation."""
    async def chatty(connection) -> None:
        await connection.recv()  # the hello, never answered
        while True:
            await connection.send('{"type": "nonsense"}')
            await asyncio.sleep(0)

    async with serve(chatty, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            client = ChatClient(f"ws://127.0.0.1:{port}/lobby", "alice", Recorder())
            running = asyncio.create_task(client.run())
            await eventually(lambda: client.state is State.JOINING)
            await asyncio.sleep(0.05)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(running, 5)
