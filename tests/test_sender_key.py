"""A client's `cid`s are its own under any nickname: the `sender_key`, from hello to disk."""

from __future__ import annotations

import asyncio
import json
import stat

import pytest
from websockets.asyncio.server import serve

from tui_chat_server.rooms import sender_scope
from tests.helpers import SLOW, JsonClient, Recorder, stored
from tui_chat.client import ChatClient
from tui_chat.outbox import OutboxStore
from tui_chat.protocol import SUBPROTOCOL
from tui_chat.updates import Backoff, NickRefused, Outgoing, State

KEY = "alice-secret-key-0123"


# -- the server ------------------------------------------------------------------------------


async def test_a_sender_key_makes_a_cid_yours_under_any_nickname(join, chat_server) -> None:
    """Sent with a `sender_key`, a message is recognised under another nickname: the new
    name's welcome shows its cid, and sending the cid again gets the original back."""
    alice = await join("alice", sender_key=KEY)
    assert alice.welcome["keyed"] is True
    original = await alice.say("said as alice", cid="k1")
    await alice.close()
    again = await join("alice2", sender_key=KEY, since=0, epoch=alice.welcome["epoch"])
    assert [(m["nick"], m.get("cid")) for m in again.welcome["history"]] == [("alice", "k1")]
    answer = await again.say("said as alice", cid="k1")
    assert (answer["id"], answer["nick"]) == (original["id"], "alice")
    assert stored(chat_server) == [("alice", "said as alice")]


async def test_a_cid_is_another_senders_under_another_key_even_with_the_same_name(join) -> None:
    """Two clients that each used the name carol with their own keys: the second neither
    sees the first's cid in its welcome nor has its own message taken for the first's;
    a client without a key does not see it either, and says it was not keyed."""
    first = await join("carol", sender_key="first-carol-key-000")
    original = await first.say("first", cid="x")
    await first.close()
    second = await join("carol", sender_key="second-carol-key-00", since=0,
                        epoch=first.welcome["epoch"])
    assert "cid" not in second.welcome["history"][0]
    answer = await second.say("second", cid="x")
    assert answer["id"] > original["id"] and answer["text"] == "second"
    await second.close()
    keyless = await join("carol", since=0, epoch=first.welcome["epoch"])
    assert all("cid" not in m for m in keyless.welcome["history"])
    assert "keyed" not in keyless.welcome


async def test_a_cid_reused_for_other_text_is_refused_not_swallowed(join, chat_server) -> None:
    """A bot without a key, run again under the same name with its cid counter back at 1,
    is told its cid is taken instead of being answered with its first run's message (its
    new text would be lost); a real resend, same text, still gets the original."""
    first = await join("bot")
    original = await first.say("first run", cid="1")
    await first.close()
    second = await join("bot")
    await second.send(type="say", text="second run", cid="1")
    refusal = await second.expect("error")
    assert (refusal["code"], refusal["cid"]) == ("cid_reused", "1")
    assert f"id {original['id']}" in refusal["message"]
    assert (await second.say("first run", cid="1"))["id"] == original["id"]
    await second.send(type="me", text="first run", cid="1")  # an action is other text
    assert (await second.expect("error"))["code"] == "cid_reused"
    assert (await second.say("second run", cid="2"))["text"] == "second run"
    assert stored(chat_server) == [("bot", "first run"), ("bot", "second run")]


@pytest.mark.parametrize("key", ["short", "k" * 65, "sixteen-chars-\x07x", 12, " " * 16,
                                 "k" * 15 + "\n", "\u200b" + "k" * 16, "clé-à-seize-lettres"])
async def test_a_malformed_sender_key_is_refused_and_the_client_may_try_again(join, key) -> None:
    """A `sender_key` that is not 16 to 64 printable ASCII characters without spaces (so
    that no two clients share one by accident, and none hides a character) gets
    `bad_event`; the connection stays open for another hello."""
    client = await join(None)
    await client.send(type="hello", nick="alice", sender_key=key)
    error = await client.expect("error")
    assert error["code"] == "bad_event" and "sender_key" in error["message"]
    await client.send(type="hello", nick="alice", sender_key="k" * 16)
    assert (await client.expect("welcome"))["nick"] == "alice"


# -- the client and its outbox ---------------------------------------------------------------


async def test_a_restarted_client_resends_with_the_key_it_sent_with_under_a_new_name(
        chat_server, run_client, tmp_path) -> None:
    """The outbox keeps the sender key with what is pending: the next client for the room
    sends with it, so a message stored but unacknowledged is recognised even when that
    client must come back under another name (alice was taken meanwhile)."""
    url = chat_server.url + "/lobby"
    before = await JsonClient.connect(url, "alice", sender_key=KEY)
    await before.say("said once", cid="persisted-1")
    await before.close()
    other = await JsonClient.connect(url, "alice")
    store = OutboxStore(url, "alice", tmp_path)
    store.sender_key = KEY
    store.save([Outgoing("persisted-1", "said once")])
    client, seen = run_client(url, "alice", backoff=Backoff(0.02, 0.1))
    client.attach_store(OutboxStore(url, "alice", tmp_path))
    try:
        assert client.sender_key == KEY
        await seen.until(lambda: seen.of(NickRefused))
        client.rename("alice2")
        await seen.until(lambda: client.state is State.ONLINE and not client.outbox)
        assert stored(chat_server) == [("alice", "said once")]
    finally:
        await other.close()


async def alice_unacknowledged(server, run_client, **options):
    """alice's "stored, unacknowledged" is stored, but the drop that follows loses its
    acknowledgement; while she is away, someone else takes the name alice: (client, seen,
    the other alice)."""
    client, seen = run_client(server.url + "/lobby", "alice", backoff=SLOW,
                              **options)
    await seen.until(lambda: client.state is State.ONLINE)
    connection = client._connection
    connection.transport.pause_reading()  # its acknowledgement is never read
    client.say("stored, unacknowledged")
    await seen.until(lambda: stored(server) == [("alice", "stored, unacknowledged")])
    connection.transport.abort()
    await seen.until(lambda: client._connection is None)
    other = await JsonClient.connect(server.url + "/lobby", "alice")
    return client, seen, other


async def test_a_message_resent_under_a_new_name_after_a_refused_rejoin_is_not_stored_twice(
        chat_server, run_client) -> None:
    """alice's rejoin is refused (someone else took the name while she was away) and she
    picks alice2: her message, stored but unacknowledged, is recognised, not stored again."""
    client, seen, other = await alice_unacknowledged(chat_server, run_client)
    try:
        await seen.until(client.reconnect_now)  # back only once the other alice is in
        await seen.until(lambda: seen.of(NickRefused))
        client.rename("alice2")
        await seen.until(lambda: client.state is State.ONLINE)
        client.say("after")
        await seen.until(lambda: not client.outbox)
        assert stored(chat_server) == [("alice", "stored, unacknowledged"), ("alice2", "after")]
    finally:
        await other.close()


async def test_a_message_resent_under_a_rename_asked_for_offline_after_a_refused_rejoin_is_not_stored_twice(
        chat_server, run_client) -> None:
    """Offline, alice asks for /nick bob; her rejoin as alice is refused (the name was taken
    meanwhile), so she joins as bob: her stored but unacknowledged message is not stored
    again under bob."""
    client, seen, other = await alice_unacknowledged(chat_server, run_client)
    try:
        client.rename("bob")
        await seen.until(client.reconnect_now)  # back only once the other alice is in
        await seen.until(lambda: client.nick == "bob" and client.state is State.ONLINE)
        await seen.until(lambda: not client.outbox)
        await asyncio.sleep(0.2)
        assert stored(chat_server) == [("alice", "stored, unacknowledged")]
    finally:
        await other.close()


def test_the_store_keeps_the_key_with_the_pending_messages_for_the_user_alone(tmp_path) -> None:
    """The key is saved and loaded with what is pending, in a file only its user can read,
    and moves with it to a new nickname; a file without one (or a malformed one) loads as
    no key."""
    store = OutboxStore("ws://h/lobby", "alice", tmp_path)
    store.sender_key = "s" * 20
    store.save([Outgoing("a-1", "hello")])
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    loaded = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert loaded.load() == [Outgoing("a-1", "hello")] and loaded.sender_key == "s" * 20
    assert store.claim() and store.follow("bob", [Outgoing("a-1", "hello")])
    moved = OutboxStore("ws://h/lobby", "bob", tmp_path)
    assert moved.load() and moved.sender_key == "s" * 20 and store.nick == "bob"
    store.release()
    for malformed in (None, "short", 5, "s" * 19 + "\x07"):
        moved.path.write_text(json.dumps({"sender_key": malformed, "pending": [
            {"cid": "a-1", "text": "hello"}]}))
        assert moved.load() and moved.sender_key is None, malformed


def test_a_store_does_not_follow_onto_messages_left_by_an_earlier_run(tmp_path) -> None:
    """Renamed to bob, whose file still holds what an earlier run as bob left (sent with
    that run's key): bob's file is kept as it is, for a later run as bob, and ours stay
    under alice, even when nothing of ours is pending."""
    left = OutboxStore("ws://h/lobby", "bob", tmp_path)
    left.sender_key = "b" * 16
    left.save([Outgoing("b-1", "left by bob")])
    for pending in ([Outgoing("a-1", "typed as alice")], []):
        store = OutboxStore("ws://h/lobby", "alice", tmp_path)
        assert store.claim()
        store.sender_key = "a" * 16
        store.save(pending)
        assert not store.follow("bob", pending)
        assert store.nick == "alice" and OutboxStore("ws://h/lobby", "alice", tmp_path).load() == pending
        kept = OutboxStore("ws://h/lobby", "bob", tmp_path)
        assert kept.load() == [Outgoing("b-1", "left by bob")] and kept.sender_key == "b" * 16
        store.release()


async def test_a_client_keeps_the_key_of_what_it_loaded_and_its_own_otherwise(tmp_path) -> None:
    """Pending messages from a file without a key were sent as the nickname's: the client
    takes no key for them. With nothing loaded it keeps its own, even with a line typed
    before the store was attached."""
    legacy = OutboxStore("ws://h/lobby", "alice", tmp_path)
    legacy.save([Outgoing("a-1", "hello")])
    client = ChatClient("ws://h/lobby", "alice", lambda update: None)
    client.attach_store(OutboxStore("ws://h/lobby", "alice", tmp_path))
    assert client.sender_key is None
    fresh = ChatClient("ws://h/lobby", "carol", lambda update: None)
    own = fresh.sender_key
    fresh.say("typed before the store was attached")
    store = OutboxStore("ws://h/lobby", "carol", tmp_path)
    fresh.attach_store(store)
    assert own and len(own) >= 16 and fresh.sender_key == store.sender_key == own


async def test_once_what_was_sent_without_a_key_is_delivered_the_client_takes_one(
        chat_server, run_client, tmp_path) -> None:
    """A file from before keys: its messages go out without a key, and once they are
    delivered the next hello carries a key of the client's own (kept with the outbox)."""
    url = chat_server.url + "/lobby"
    legacy = OutboxStore(url, "alice", tmp_path)
    legacy.save([Outgoing("a-1", "from before keys")])
    client, seen = run_client(url, "alice")
    store = OutboxStore(url, "alice", tmp_path)
    client.attach_store(store)
    await seen.until(lambda: client.state is State.ONLINE and not client.outbox)
    assert client.sender_key is None

    def alice():
        room = chat_server.hub.rooms.find("lobby")
        return room.members.get("alice") if room else None

    first = alice()
    assert first.scope == ""
    client._connection.transport.abort()  # a drop: the next hello has nothing keyless left
    await seen.until(lambda: alice() not in (None, first))
    assert client.sender_key and store.sender_key == client.sender_key
    assert alice().scope == sender_scope(client.sender_key)


async def test_against_a_server_without_keys_the_client_resends_as_its_nickname() -> None:
    """A server that does not confirm the key (`keyed`) files messages under the nickname:
    what the client sent it goes out again without a key, so that the server, upgraded or
    not, recognises it by the nickname."""
    hellos: list[dict] = []

    async def old_server(connection) -> None:
        hellos.append(json.loads(await connection.recv()))
        await connection.send(json.dumps({"type": "welcome", "nick": "alice", "room": "lobby",
                                          "users": ["alice"], "epoch": "e", "history": []}))
        if len(hellos) == 1:
            await connection.recv()  # the message: its acknowledgement is lost in the drop
            await connection.close(1011)
        await connection.wait_closed()

    async with serve(old_server, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        seen = Recorder()
        client = ChatClient(f"ws://127.0.0.1:{port}/lobby", "alice", seen,
                            backoff=Backoff(0.02, 0.1))
        task = asyncio.create_task(client.run())
        try:
            await seen.until(lambda: client.state is State.ONLINE)
            client.say("sent to a server without keys")
            await seen.until(lambda: len(hellos) == 2)
        finally:
            await client.stop()
            await task
    assert "sender_key" in hellos[0] and "sender_key" not in hellos[1]
    assert client.sender_key is None and client.outbox
