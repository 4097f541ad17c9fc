"""Catch-up: a long history is written a page at a time as the client reads it, and what
the room says meanwhile follows it, whole and in order."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tui_chat.protocol import SUBPROTOCOL
from tui_chat_server.catchup import WATER
from tests.helpers import (
    BIG,
    LIMITS,
    JsonClient,
    eventually,
    say_big,
    server_side,
    stalled_reader,
)

pytestmark = pytest.mark.usefixtures("server_log")

async def receive_json(client, stop) -> list[dict]:
    """Events until `stop(event)` is true, that one included."""
    events = []
    while not events or not stop(events[-1]):
        events.append(json.loads(await asyncio.wait_for(client.recv(), 10)))
    return events


async def test_a_long_catch_up_arrives_whole_and_what_was_said_meanwhile_follows_it(
        start_server) -> None:
    """Messages, a rename and a join during a catch-up reach the late client after the last
    message of its catch-up, in the order they happened, each once."""
    server = await start_server(**LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 80)  # 4.8 MB
    late = await stalled_reader(server, writer.welcome["epoch"])
    await writer.expect("presence")
    for number in range(3):
        await writer.say(f"live {number}")
    await writer.send(type="nick", nick="scribe")
    await writer.expect("presence")
    bob = await JsonClient.connect(server.url, "bob")
    late.transport.resume_reading()
    events = await receive_json(late, lambda e: e.get("event") == "join")
    welcome, rest = events[0], events[1:]
    history = welcome["history"] + [e for e in rest if e["type"] == "message"][:80 - len(
        welcome["history"])]
    assert [m["text"].split()[0] for m in history] == [f"h{n}" for n in range(80)]
    after = rest[80 - len(welcome["history"]):]
    assert [(e["type"], e.get("text") or e.get("event")) for e in after] == [
        ("message", "live 0"), ("message", "live 1"), ("message", "live 2"),
        ("presence", "rename"), ("presence", "join")]
    assert all(m["id"] <= welcome["last_id"] for m in history)
    assert (await writer.say("and now"))["text"] == "and now"
    assert json.loads(await asyncio.wait_for(late.recv(), 5))["text"] == "and now"
    # Held to --max-pending again, not to the catch-up's lower mark.
    limits = server_side(server, "late").transport.get_write_buffer_limits()
    assert limits[1] == server.config.max_pending
    await late.close()
    await asyncio.gather(writer.close(), bob.close())


async def test_a_plain_client_gets_its_catch_up_then_the_welcome_then_what_came_meanwhile(
        start_server) -> None:
    """The plain dialect's history lines (the last --backlog) come first and the welcome line
    after all of them, then the lines said while they were being written."""
    server = await start_server(**LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 80)
    late = await stalled_reader(server, "", nick="raw", plain=True)
    await writer.expect("presence")
    await writer.say("live")
    late.transport.resume_reading()
    lines = [await asyncio.wait_for(late.recv(), 10) for _ in range(52)]
    assert [line.split()[1] for line in lines[:50]] == [f"h{n}" for n in range(30, 80)]
    assert lines[50].startswith("[Server]: Welcome to lobby, raw!")
    assert lines[51] == "[writer]: live"
    await late.close()
    await writer.close()


async def test_a_client_that_does_not_read_its_catch_up_holds_little_of_it_in_the_server(
        start_server) -> None:
    """However long the catch-up, what waits in the server for a client that does not read
    it is about WATER, not the whole history."""
    server = await start_server(**LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 120)  # 7.2 MB
    late = await stalled_reader(server, writer.welcome["epoch"])
    await writer.expect("presence")
    connection = server_side(server, "late")
    await eventually(lambda: connection.paused)  # it writes no more until the client reads
    await asyncio.sleep(0.05)  # (were it to go on regardless, it would show here)
    waiting = connection.transport.get_write_buffer_size()
    assert waiting <= WATER + BIG + 1024, waiting
    late.transport.abort()
    await writer.close()


async def test_retention_waits_while_a_catch_up_reads_the_room(start_server, tmp_path) -> None:
    """Messages the catch-up has yet to send are not trimmed, even when the room says more
    than --history meanwhile; once it is over, retention trims again."""
    db = str(tmp_path / "history.db")
    server = await start_server(db=db, history=100, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 100)  # 6 MB: the late client's catch-up cannot all be written at once
    late = await stalled_reader(server, writer.welcome["epoch"])
    await writer.expect("presence")
    await say_big(writer, 250, size=20, tag="n")  # past retention: trimmed, but for the catch-up
    late.transport.resume_reading()
    events = await receive_json(late, lambda e: e.get("text", "").startswith("n249"))
    texts = [m["text"].split()[0] for m in events[0]["history"]]
    texts += [e["text"].split()[0] for e in events[1:] if e["type"] == "message"]
    assert texts == [f"h{n}" for n in range(100)] + [f"n{n}" for n in range(250)]
    await say_big(writer, 200, size=20, tag="m")  # the catch-up is over: trimmed as usual
    with sqlite3.connect(db) as database:
        kept = database.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert kept <= 100 + 100, kept  # the limit, and at most one chunk not trimmed yet
    await late.close()
    await writer.close()


async def test_a_client_that_leaves_during_its_catch_up_lets_retention_go_on(
        start_server, tmp_path) -> None:
    """A catch-up cut short by its client leaving holds the room's retention no longer."""
    db = str(tmp_path / "history.db")
    server = await start_server(db=db, history=100, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 100)
    late = await stalled_reader(server, writer.welcome["epoch"])
    await writer.expect("presence")
    late.transport.abort()
    assert (await writer.expect("presence"))["event"] == "leave"
    await say_big(writer, 300, size=20, tag="n")
    with sqlite3.connect(db) as database:
        kept = database.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert kept <= 100 + 100, kept
    assert server.hub.rooms.find("lobby").users() == ("writer",)
    await writer.close()


async def test_a_client_that_never_reads_is_dropped_once_what_waits_behind_its_catch_up_passes_the_limit(
        start_server, caplog) -> None:
    """A catch-up may take as long as its client needs, but the room's messages held back
    behind it may not grow past --max-pending: then the client is a slow consumer."""
    server = await start_server(max_pending=64 * 1024, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 120)
    late = await stalled_reader(server, writer.welcome["epoch"], nick="frozen")
    await writer.expect("presence")
    for sent in range(100):  # ~400 KB held back: 6 times the limit
        await writer.send(type="say", text="x" * 3900, cid=f"x{sent}")
        event = await writer.recv()
        if event["type"] == "presence":
            assert (event["event"], event["nick"]) == ("leave", "frozen")
            break
    else:
        raise AssertionError("the client that never read was kept")
    assert any("catch-up" in r.getMessage() and "slow consumer" in r.getMessage()
               for r in caplog.records)
    late.transport.abort()
    await writer.close()


async def test_a_plain_welcome_that_fits_in_one_page_may_exceed_the_limit_while_it_drains(
        start_server) -> None:
    """History short enough to need no catch-up, but over --max-pending in a full socket:
    the welcome line after it is part of the greeting, not a slow consumer's output."""
    server = await start_server(max_pending=64 * 1024, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 4)  # 240K characters: one page
    raw = await stalled_reader(server, "", nick="raw", plain=True, server_sndbuf=16384)
    await writer.expect("presence")
    held = server_side(server, "raw").transport
    await eventually(lambda: held.get_write_buffer_size() > 64 * 1024)  # over --max-pending
    raw.transport.resume_reading()
    lines = [await asyncio.wait_for(raw.recv(), 10) for _ in range(5)]
    assert lines[4].startswith("[Server]: Welcome to lobby, raw!")
    assert server.hub.rooms.find("lobby").users() == ("raw", "writer")
    await raw.close()
    await writer.close()


async def test_answers_to_others_do_not_count_against_a_member_catching_up(
        start_server) -> None:
    """What waits for a held member is what it will be sent: answers to someone else's
    requests are nothing to it, however many."""
    server = await start_server(max_pending=64 * 1024, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 120)
    late = await stalled_reader(server, writer.welcome["epoch"])
    await writer.expect("presence")
    for _ in range(1500):  # ~100 KB of answers, to the writer alone
        await writer.send(type="who")
    for _ in range(1500):
        await writer.expect("users")
    late.transport.resume_reading()
    events = await receive_json(late, lambda e: e.get("type") == "message"
                                and e["text"].startswith("h119"))
    assert events[-1]["text"].startswith("h119")
    await late.close()
    await writer.close()


async def test_a_catch_up_that_fails_closes_its_connection(start_server, monkeypatch,
                                                           caplog) -> None:
    """Should reading a page fail, the client is disconnected (1011) rather than left held,
    never to be sent anything again, and the room hears it leave."""
    server = await start_server(**LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 10)

    first_page = server.hub.history.page  # the welcome's page is read; the next one fails

    def broken(*args, **kwargs):
        monkeypatch.setattr(server.hub.history, "page", failing)
        return first_page(*args, **kwargs)

    def failing(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.hub.history, "page", broken)
    async with connect(server.url, subprotocols=[SUBPROTOCOL], max_size=None) as late:
        await late.send(json.dumps({"type": "hello", "nick": "late", "since": 0,
                                    "epoch": writer.welcome["epoch"]}))
        assert json.loads(await late.recv())["type"] == "welcome"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(late.recv(), 5)
    assert closed.value.rcvd.code == 1011
    assert (await writer.expect("presence"))["event"] == "join"
    assert (await writer.expect("presence"))["event"] == "leave"
    assert any("catch-up failed" in r.getMessage() for r in caplog.records)
    await writer.close()


async def test_a_member_held_for_a_catch_up_that_never_started_is_forgotten_when_it_leaves(
        start_server) -> None:
    """Joining with more history than a welcome holds holds the member's live traffic for
    its catch-up; should it leave before the catch-up starts (its greeting failed), the room
    keeps nothing for it, so what the others were sent is not kept for a member gone."""
    from types import SimpleNamespace

    from websockets.protocol import State

    from tui_chat_server.rooms import Dialect

    server = await start_server(**LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 80)
    hub = server.hub
    class StandIn:  # a connection as the room sees one, whose greeting will never be sent
        protocol = SimpleNamespace(state=State.OPEN)
        transport = SimpleNamespace(write=lambda data: None)
        delivered, paused = 0, False

    stand_in = StandIn()
    room, member, greeting = hub.join("lobby", "ghost", Dialect.JSON, stand_in, "test", since=0)
    assert greeting.paged and stand_in in hub._streams["lobby"].holds
    hub.leave(room, member)
    await writer.say("after")
    assert hub._streams["lobby"].holds == {}
    await writer.close()
