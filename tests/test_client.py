"""The headless ChatClient against a real server: join, acks, reconnect, exactly-once resend."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode

from tui_chat_server import ChatServer, ServerConfig
from tests.helpers import SLOW, JsonClient, Recorder, Relay, eventually, server_where_alice_said, stored
from tui_chat.client import FRAMES_PER_TURN, ChatClient
from tui_chat.protocol import SUBPROTOCOL, Presence
from tui_chat.updates import (
    comings_and_goings,
    Backoff,
    Joined,
    NickRefused,
    Received,
    Refused,
    State,
    StateChanged,
    users_after,
)



def test_comings_and_goings_compare_names_as_the_server_does_and_leave_you_out() -> None:
    """Who arrived and who left between two user lists, in their order, case-blind, never
    counting either of your own names (before and after a rename)."""
    before = ("alice", "Bob", "carol", "eve")
    after = ("ALICE2", "bob", "dave", "eve", "Frank")
    assert comings_and_goings(before, after, ("alice", "ALICE2")) == (("dave", "Frank"),
                                                                      ("carol",))
    assert comings_and_goings(after, after, ("x",)) == ((), ())


async def test_the_client_joins_and_its_message_is_acknowledged(chat_server, run_client) -> None:
    """say() is sent once joined; the echo with its cid marks it delivered."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    outgoing = client.say("hello")
    assert client.outbox == {outgoing.cid: outgoing}
    await seen.until(lambda: seen.of(Received))
    received = seen.of(Received)[0]
    assert received.mine and received.message.cid == outgoing.cid
    assert client.outbox == {}


async def test_each_message_carries_the_nickname_the_client_had_when_it_came(
        chat_server, run_client, join) -> None:
    """A message is stamped with who we were when it arrived, so that a rename reported in
    the same batch does not change whether it names us."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    bob = await join("bob")
    await bob.say("before")
    await seen.until(lambda: any(u.message.text == "before" for u in seen.of(Received)))
    client.rename("carol")
    await seen.until(lambda: client.nick == "carol")
    await bob.say("after")
    await seen.until(lambda: any(u.message.text == "after" for u in seen.of(Received)))
    assert [(u.message.text, u.me) for u in seen.of(Received)] == [
        ("before", "alice"), ("after", "carol")]


async def test_messages_typed_before_joining_are_sent_after_the_welcome(chat_server, run_client) -> None:
    """Nothing typed early is lost: the outbox is flushed in order once joined."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    for text in ("one", "two", "three"):
        client.say(text)
    await seen.until(lambda: len(seen.of(Received)) == 3)
    assert [r.message.text for r in seen.of(Received)] == ["one", "two", "three"]


async def test_a_taken_nickname_is_reported_and_a_new_one_joins(chat_server, run_client, join) -> None:
    """NickRefused is reported; rename() sends a new hello on the same connection."""
    await join("alice")
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: seen.of(NickRefused))
    assert seen.of(NickRefused)[0].error.code == "nick_taken"
    assert client.rename("alice2")
    await seen.until(lambda: client.state is State.ONLINE)
    assert client.nick == "alice2"


async def test_a_refused_message_leaves_the_outbox_with_its_error(start_server, run_client) -> None:
    """An error answering a cid drops that message from the outbox and says why."""
    server = await start_server(max_text=5)
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    outgoing = client.say("far too long")
    await seen.until(lambda: seen.of(Refused))
    refused = seen.of(Refused)[0]
    assert refused.outgoing == outgoing and refused.error.code == "too_long"
    assert client.outbox == {}


async def test_an_invalid_room_is_final(chat_server, run_client) -> None:
    """A bad room name ends in OFFLINE with the server's reason, without retrying."""
    client, seen = run_client(chat_server.url + "/bad!", "alice")
    await seen.until(lambda: client.state is State.OFFLINE)
    assert "letters a-z" in seen.of(StateChanged)[-1].reason


@pytest.mark.parametrize("durable", [True, False], ids=["sqlite-file", "memory"])
async def test_restart_reconnects_and_delivers_what_was_typed_exactly_once(
    run_client, tmp_path, durable: bool
) -> None:
    """Server stops; messages typed meanwhile are delivered once after it is back. With a
    database file nothing is missing; with history in memory the client is told of the gap."""
    db = str(tmp_path / "history.db") if durable else ":memory:"
    first, client, seen = await server_where_alice_said(run_client, db, "before")
    port = first.port
    await JsonClient.connect(first.url + "/lobby", "bob")  # dropped by the stop, not back
    await seen.until(lambda: "bob" in client.users)
    await first.stop()
    await seen.until(lambda: client.state is State.RECONNECTING)
    client.say("during 1")
    client.say("during 2")
    second = ChatServer(ServerConfig(port=port, db=db, rate=0))
    await second.start()
    try:
        await seen.until(lambda: len(seen.of(Received)) == 3)
        await asyncio.sleep(0.2)
        texts = [r.message.text for r in seen.of(Received)]
        assert texts == ["before", "during 1", "during 2"]
        assert client.outbox == {}
        joins = seen.of(Joined)
        assert len(joins) == 2 and joins[1].rejoined
        assert joins[1].gap is not durable  # a new in-memory history is a new epoch
        assert joins[1].departed == ()  # bob was dropped by the restart, not gone: not said
        watcher = await JsonClient.connect(second.url + "/lobby", "watcher")
        kept = ["before"] if durable else []
        assert [m["text"] for m in watcher.welcome["history"]] == kept + ["during 1", "during 2"]
        await watcher.close()
    finally:
        await client.stop()
        await second.stop()


async def test_reconnect_in_the_same_epoch_gets_exactly_the_gap(chat_server, run_client, join) -> None:
    """After a dropped connection the client asks `since` and shows each message once."""
    client, seen = run_client(chat_server.url + "/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.ONLINE)
    other = await join("bob")
    await other.say("one")
    await seen.until(lambda: len(seen.of(Received)) == 1)
    client._connection.transport.abort()  # the network drops; the server keeps its history
    await seen.until(lambda: client.state is State.RECONNECTING)
    await other.say("two")
    await seen.until(client.reconnect_now)
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    rejoin = seen.of(Joined)[1]
    assert not rejoin.gap
    assert [m.text for m in rejoin.welcome.history] == ["two"]
    await other.say("three")
    await seen.until(lambda: len(seen.of(Received)) == 2)
    assert [r.message.text for r in seen.of(Received)] == ["one", "three"]


async def test_an_ack_lost_in_a_disconnect_is_matched_not_resent(chat_server, run_client) -> None:
    """A message stored before the drop is recognised by its cid in the replay: no duplicate."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    client.say("first")
    await seen.until(lambda: seen.of(Received))
    connection = client._connection
    connection.transport.pause_reading()  # the ack for the next message will not be read
    client.say("stored but unacknowledged")
    await eventually(lambda: len(stored(chat_server)) == 2)  # stored; its ack is not read
    connection.transport.abort()
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    await asyncio.sleep(0.2)
    assert client.outbox == {}
    history = [m.text for m in seen.of(Joined)[1].welcome.history]
    assert history == ["stored but unacknowledged"]
    probe = await JsonClient.connect(chat_server.url + "/lobby", "probe")
    assert [m["text"] for m in probe.welcome["history"]] == ["first", "stored but unacknowledged"]
    await probe.close()


def test_a_presence_without_a_user_list_is_applied_to_the_list_one_has() -> None:
    """A join adds, a leave removes, a rename replaces (in any letter case), sorted as the
    server sorts; a presence with its own list is taken as it is."""
    users = ("alice", "Bob")
    users = users_after(users, Presence("join", "carol"))
    assert users == ("alice", "Bob", "carol")
    users = users_after(users, Presence("rename", "Aaron", old="BOB"))
    assert users == ("Aaron", "alice", "carol")
    users = users_after(users, Presence("leave", "ALICE"))
    assert users == ("Aaron", "carol")
    assert users_after(users, Presence("join", "carol")) == users
    assert users_after(users, Presence("join", "x", ("x", "y"))) == ("x", "y")


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    """Delays grow 1, 2, 4, ... seconds (each jittered to 50-100%) and never pass 30 s."""
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(30, 2**n) for n in range(10)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings))
    backoff.reset()
    assert backoff.next_delay() <= 1


async def test_stop_during_the_handshake_ends_the_client(chat_server) -> None:
    """stop() while the connection is still opening still ends run() promptly."""
    client = ChatClient(chat_server.url + "/lobby", "alice", Recorder())
    task = asyncio.create_task(client.run())
    await asyncio.sleep(0)  # run() has started connecting, nothing is open yet
    await client.stop()
    await asyncio.wait_for(task, 5)
    assert client.state is State.OFFLINE


async def test_a_gap_older_than_retention_is_reported(start_server, run_client, join) -> None:
    """If the server no longer keeps all it missed, the client reports a gap (the marker)."""
    server = await start_server(history=3)
    client, seen = run_client(server.url + "/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.ONLINE)
    other = await JsonClient.connect(server.url + "/lobby", "bob")
    await other.say("seen")
    await seen.until(lambda: len(seen.of(Received)) == 1)
    client._connection.transport.abort()
    await seen.until(lambda: client.state is State.RECONNECTING)
    for number in range(10):
        await other.say(f"missed {number}")
    await seen.until(client.reconnect_now)
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    rejoin = seen.of(Joined)[1]
    assert rejoin.gap
    assert [m.text for m in rejoin.welcome.history] == ["missed 7", "missed 8", "missed 9"]
    await other.close()


async def test_after_a_network_drop_the_client_takes_its_nickname_back_at_once(
        chat_server, run_client, join) -> None:
    """When the connection dies without the server noticing, the reconnecting client takes
    its place from the dead connection (no `nick_taken`), and what it resends is stored once."""
    relay = await Relay(chat_server.port).start()
    try:
        bob = await join("bob")
        client, seen = run_client(f"ws://127.0.0.1:{relay.port}/lobby", "alice")
        await seen.until(lambda: client.state is State.ONLINE)
        await bob.expect("presence")
        client.say("before the drop")
        await seen.until(lambda: len(seen.of(Received)) == 1)
        relay.sever()
        pending = client.say("typed while cut off")
        await seen.until(lambda: pending.cid not in client.outbox)
        assert client.state is State.ONLINE and client.nick == "alice"
        assert not seen.of(NickRefused)
        texts = []
        while len(texts) < 2:
            event = await bob.recv()
            if event["type"] == "message":
                texts.append(event["text"])
            else:
                assert (event["event"], event["nick"]) in {("leave", "alice"), ("join", "alice")}
        assert texts == ["before the drop", "typed while cut off"]
        assert await bob.silent(), "stored and sent once"
        assert chat_server.hub.rooms.find("lobby").users() == ("alice", "bob")
    finally:
        await relay.close()


async def test_a_message_too_large_for_the_server_is_refused_not_sent(start_server,
                                                                      run_client) -> None:
    """Even with no text limit, a message bigger than the server's frame limit would only get
    the connection closed (1009) on every reconnect: the client refuses it itself, once the
    welcome has said the limit, also when it was typed before joining."""
    server = await start_server(max_text=0)
    client, seen = run_client(server.url + "/lobby", "alice")
    huge = client.say("x" * 70_000)  # typed before the welcome
    fine = client.say("still here")
    await seen.until(lambda: seen.of(Received))
    assert client.max_frame == 65_536 and client.refusal("y" * 70_000)
    refused = seen.of(Refused)
    assert [(r.error.code, r.outgoing) for r in refused] == [("too_long", huge)]
    assert "bytes once sent" in refused[0].error.message
    assert [r.message.text for r in seen.of(Received)] == ["still here"] and fine.cid
    assert client.outbox == {} and client.state is State.ONLINE
    assert len([u for u in seen.of(StateChanged) if u.state is State.ONLINE]) == 1


async def test_a_nickname_chosen_offline_and_refused_falls_back_to_the_last_one(
        start_server, run_client) -> None:
    """A rename made while offline that the server refuses on reconnect is reported, and the
    client joins under the nickname it had instead of waiting for another."""
    server = await start_server()
    port = server.port
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    await server.stop()
    await seen.until(lambda: client.state is State.RECONNECTING)
    assert client.rename("admin") is False  # reserved: refused whoever asks
    again = ChatServer(ServerConfig(port=port, db=":memory:"))
    await again.start()
    try:
        await seen.until(lambda: seen.of(NickRefused) and client.state is State.ONLINE)
        refused = seen.of(NickRefused)[0]
        assert client.nick == "alice" and refused.error.code == "nick_reserved"
        assert refused.kept == "alice"
        assert again.hub.rooms.find("lobby").users() == ("alice",)
    finally:
        await client.stop()
        await again.stop()


async def test_a_repeat_answered_with_an_old_message_still_clears_the_outbox(
        start_server, run_client, tmp_path) -> None:
    """The answer to a resent cid is the message stored the first time, often older than
    anything since: it is ours all the same, so it leaves the outbox (and is shown)."""
    from tui_chat.outbox import OutboxStore
    from tui_chat.updates import Outgoing

    server = await start_server(backlog=5)
    url = server.url + "/lobby"
    before = await JsonClient.connect(url, "alice")
    await before.send(type="say", text="said once", cid="x-1")
    await before.expect("message")
    await before.close()
    bob = await JsonClient.connect(url, "bob")
    for number in range(10):  # the original falls out of the 5-message backlog
        await bob.say(f"later {number}")
    store = OutboxStore(url, "alice", tmp_path)
    store.save([Outgoing("x-1", "said once")])
    client, seen = run_client(url, "alice")
    client.attach_store(store)
    await seen.until(lambda: not client.outbox and client.state is State.ONLINE)
    mine = [r for r in seen.of(Received) if r.mine]
    assert [(r.message.id, r.message.text) for r in mine] == [(1, "said once")]
    stored = server.history.backlog("lobby", 0, server.history.epoch, 50).messages
    assert [m.text for m in stored].count("said once") == 1
    await bob.close()


async def test_control_characters_are_cleaned_before_they_are_measured_or_sent(
        start_server, run_client) -> None:
    """JSON spells a control character in six bytes, so typed as they are, 3,000 of them
    would exceed the frame limit; the client cleans them away first, as the server would,
    and sends what remains."""
    server = await start_server(max_frame=16_384)
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    assert client.refusal("x" + "\x07" * 3000) is None
    client.say("x" + "\x07" * 3000)
    await seen.until(lambda: seen.of(Received))
    assert seen.of(Received)[0].message.text == "x" and not seen.of(Refused)
    assert client.outbox == {} and client.state is State.ONLINE

def burst_handler(count: int):
    """A server that welcomes alice, then writes `count` messages at once, so that each
    read brings hundreds of frames."""

    async def handler(connection) -> None:
        await connection.recv()  # the hello
        await connection.send(json.dumps({"type": "welcome", "nick": "alice", "room": "lobby",
                                          "users": ["alice"], "epoch": "e", "history": []}))
        frames = (json.dumps({"type": "message", "id": n, "ts": 0, "nick": "bob",
                              "text": f"line {n}"}).encode() for n in range(1, count + 1))
        connection.transport.write(
            b"".join(Frame(Opcode.TEXT, frame).serialize(mask=False) for frame in frames))
        await connection.wait_closed()

    return handler


async def test_a_burst_gives_other_tasks_a_turn_every_few_frames(run_client) -> None:
    """However many frames one read brings, other tasks on the loop (the screen, a key
    press) run after at most FRAMES_PER_TURN of them, and every frame is still handled."""
    burst = 3000
    async with serve(burst_handler(burst), "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        client, seen = run_client(f"ws://127.0.0.1:{port}/lobby", "alice")
        progress = []  # the last id received, at each turn this task gets
        while not progress or progress[-1] < burst:
            progress.append(client.position.last_id or 0)
            await asyncio.sleep(0)
        steps = [later - earlier for earlier, later in zip(progress, progress[1:])]
        assert max(steps) <= FRAMES_PER_TURN
        assert [r.message.id for r in seen.of(Received)] == list(range(1, burst + 1))


async def test_nothing_is_reported_after_stop_even_in_a_burst(run_client) -> None:
    """stop() in the middle of a burst: the frames still queued are read but not reported
    (the app is closing), and the closing handshake is not left to time out."""
    async with serve(burst_handler(3000), "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        client, seen = run_client(f"ws://127.0.0.1:{port}/lobby", "alice")
        await seen.until(lambda: seen.of(Received))
        await asyncio.wait_for(client.stop(), 1.5)  # under the 2 s close timeout
        reported = len(seen.of(Received))
        await asyncio.sleep(0.2)
        assert len(seen.of(Received)) == reported < 3000
        assert client.state is State.OFFLINE


def test_a_refused_handshake_reads_as_one_sentence() -> None:
    """The server's own full stop does not end up inside the brackets before the app's."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    from tui_chat.reasons import refused_status

    response = Response(429, "Too Many Requests", Headers(),
                        b"Too many connections from your address.\n")
    reason, final = refused_status(response)
    assert reason == ("the server refused the connection"
                      " (HTTP 429: Too many connections from your address)")
    assert not final
