"""Dead and slow peers: keepalive reaps them, and they never hold up anyone else."""

from __future__ import annotations

import asyncio

from tests.helpers import JsonClient, PlainClient, eventually, sender_reader_stalled


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


async def test_a_connection_that_does_not_join_in_time_is_told_and_closed(start_server) -> None:
    """Within --join-timeout of connecting a client must join: one that has not (a raw client
    that never sends its nickname, a JSON one that never says hello) is told why, closed
    with 1008, and its connection no longer counts against its address."""
    server = await start_server(join_timeout=0.3)
    raw = await PlainClient.connect(server.url)
    quiet = await JsonClient.connect(server.url)
    assert await raw.recv(timeout=3) == ("[Server]: No nickname within 0.3 s: closing. Connect"
                                         " again to join.")
    assert await quiet.recv(timeout=3) == {
        "type": "error", "code": "not_joined",
        "message": "No hello within 0.3 s: closing. Connect again to join."}
    for client in (raw, quiet):
        await client.connection.wait_closed()
        assert client.connection.close_code == 1008
    await eventually(lambda: server.counter.count == 0)


async def test_a_client_that_asked_to_join_in_time_may_take_its_time(start_server) -> None:
    """The join timeout ends once a client has asked to join, in either dialect: one whose
    name was refused (its user choosing another) stays, and so does one that joined."""
    server = await start_server(join_timeout=1)
    alice = await JsonClient.connect(server.url, "alice")
    refused = await JsonClient.connect(server.url)
    await refused.send(type="hello", nick="alice")
    assert (await refused.expect("error"))["code"] == "nick_taken"
    raw = await PlainClient.connect(server.url)
    await raw.send("ALICE")  # taken
    assert "Send your nickname again" in await raw.recv()
    await asyncio.sleep(1.2)
    assert await refused.silent() and await raw.silent()
    await raw.send("bob")
    await raw.lines_until("[Server]: Welcome")
    assert (await alice.expect("presence"))["nick"] == "bob"
    await asyncio.sleep(1.2)
    await raw.send("still here")
    assert (await alice.expect("message"))["text"] == "still here"
    assert raw.connection.close_code is None and refused.connection.close_code is None
    await asyncio.gather(alice.close(), raw.close(), refused.close())
