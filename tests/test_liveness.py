"""Dead and slow peers: keepalive reaps them, and they never hold up anyone else."""

from __future__ import annotations

import asyncio

from tests.helpers import JsonClient, sender_reader_stalled


async def test_keepalive_reaps_a_peer_that_stopped_answering(start_server) -> None:
    """A client that no longer answers pings is dropped and its departure announced."""
    server = await start_server(ping_interval=0.2, ping_timeout=0.2)
    alice = await JsonClient.connect(server.url, "alice")
    ghost = await JsonClient.connect(server.url, "ghost")
    await alice.expect("presence")
    ghost.connection.transport.pause_reading()  # frozen process: pings go unanswered
    presence = await alice.expect("presence", timeout=3)
    assert (presence["event"], presence["nick"]) == ("leave", "ghost")
    ghost.connection.transport.abort()
    await alice.close()


async def test_a_stalled_reader_does_not_delay_the_others(start_server) -> None:
    """With one member not reading at all, 2,000 messages still reach an active member."""
    server = await start_server(backlog=0)
    sender, reader, stalled = await sender_reader_stalled(server.url)
    count = 2000
    for number in range(count):
        await sender.send(type="say", text=f"{number:05d} " + "x" * 200, cid=str(number))
    received = 0
    while received < count:
        # a fan-out that waited on the stalled member would stop here and time out
        if (await reader.recv(timeout=5))["type"] == "message":
            received += 1
    stalled.connection.transport.abort()
    await asyncio.gather(sender.close(), reader.close())


async def test_rooms_are_forgotten_when_everyone_has_left(chat_server, join, join_plain) -> None:
    """After all clients leave, no room, member or recipient is kept."""
    clients = [await join("a"), await join("b", path="/two"), await join_plain("c", path="/three")]
    assert len(chat_server.hub.rooms) == 3
    for client in clients:
        await client.close()
    for _ in range(50):
        if len(chat_server.hub.rooms) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(chat_server.hub.rooms) == 0
