"""Servers that take a connection and then say nothing: the client gives up on them, and says why."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import serve

from tests.helpers import eventually
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
