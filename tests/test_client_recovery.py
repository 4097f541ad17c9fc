"""The client through drops, refusals and renames: nothing stored twice or out of order,
never locked out of its own name, and a wait to reconnect that can be cut short."""

from __future__ import annotations

import asyncio
import sqlite3

from tui_chat_server import ChatServer, ServerConfig
from tests.helpers import SLOW, JsonClient, Relay, eventually, server_where_alice_said, stored
from tui_chat.updates import Backoff, Joined, NickRefused, Received, Refused, State



async def test_a_rename_while_offline_does_not_store_an_unacknowledged_message_twice(
        chat_server, run_client) -> None:
    """A message stored whose acknowledgement was lost in a drop, then /nick typed while
    reconnecting: the client rejoins under the old name, so its resend is recognised, and
    renames after it."""
    client, seen = run_client(chat_server.url + "/lobby", "alice",
                              backoff=Backoff(first=0.6, cap=0.6))
    await seen.until(lambda: client.state is State.ONLINE)
    client.say("first")
    await seen.until(lambda: seen.of(Received))
    connection = client._connection
    connection.transport.pause_reading()  # the acknowledgement of the next one is not read
    client.say("stored but unacknowledged")
    await eventually(lambda: len(stored(chat_server)) == 2)  # stored; its ack is not read
    connection.transport.abort()
    await seen.until(lambda: client.state is State.RECONNECTING and client._connection is None)
    assert client.rename("bob") is False  # "You will be bob when the connection is back."
    assert client.nick == "alice"  # until the server has made it so
    await seen.until(lambda: client.nick == "bob" and not client.outbox)
    await asyncio.sleep(0.2)
    assert stored(chat_server) == [("alice", "first"), ("alice", "stored but unacknowledged")]


async def test_what_is_typed_after_an_offline_rename_goes_out_under_the_new_name(
        chat_server, run_client) -> None:
    """Offline: a line, /nick bob, another line. Back online, the first is alice's and the
    second bob's, as typed."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    client._connection.transport.pause_reading()
    client._connection.transport.abort()
    await seen.until(lambda: client._connection is None)
    client.say("before")
    client.rename("bob")
    client.say("after")
    await seen.until(lambda: client.nick == "bob" and not client.outbox)
    assert stored(chat_server) == [("alice", "before"), ("bob", "after")]


async def test_a_refused_nick_password_does_not_lock_you_out_of_your_own_name(
        start_server, accounts_db, run_client) -> None:
    """alice (registered) asks for `/nick bob WRONG` and is refused: she is told she is still
    alice, and after a later drop she gets back in as alice with her own password."""
    server = await start_server(db=accounts_db)
    client, seen = run_client(server.url + "/lobby", "alice", password="correct horse")
    await seen.until(lambda: client.state is State.ONLINE)
    assert client.rename("bob", "wrong password")
    await seen.until(lambda: seen.of(NickRefused))
    assert seen.of(NickRefused)[0].kept == "alice" and client.nick == "alice"
    client._connection.transport.abort()
    await seen.until(lambda: len(seen.of(Joined)) == 2, timeout=10)
    assert client.state is State.ONLINE and client.nick == "alice"
    assert len(seen.of(NickRefused)) == 1


async def test_a_nick_typed_while_the_hello_is_answered_is_made_after_the_join(
        start_server, accounts_db, run_client) -> None:
    """/nick typed while the client is still joining (here: the server checks alice's
    password) ends with the new name, not with `already_joined`."""
    server = await start_server(db=accounts_db)
    client, seen = run_client(server.url + "/lobby", "alice", password="correct horse")
    await seen.until(lambda: client.state is State.JOINING)
    assert client.rename("carol")  # it will be made: the app says nothing more
    await seen.until(lambda: client.users == ("carol",) or seen.of(Refused))
    assert client.nick == "carol" and not seen.of(Refused) and not seen.of(NickRefused)


async def test_a_line_with_undecodable_bytes_does_not_stop_the_client(chat_server) -> None:
    """A script's undecodable input becomes a lone surrogate in the text, which cannot be
    encoded: the client sends it cleaned (U+FFFD), and everything after it too."""
    from tests.helpers import Recorder
    from tui_chat.client import ChatClient

    seen = Recorder()
    client = ChatClient(chat_server.url + "/lobby", "alice", seen)
    client.say("caf\udce9")  # what `printf 'caf\xe9\n' | tui-chat send` reads in a C locale
    client.say("next")
    runner = asyncio.create_task(client.run())
    try:
        await seen.until(lambda: len(seen.of(Received)) == 2 or runner.done())
        assert not runner.done(), runner.exception()
        assert [r.message.text for r in seen.of(Received)] == ["caf\ufffd", "next"]
    finally:
        await client.stop()
        await asyncio.wait_for(runner, 5)


async def test_a_reconnect_does_not_replay_what_was_said_before_the_first_join(
        start_server, run_client) -> None:
    """With `--backlog 0` a joining client is shown nothing old; after a drop it asks for
    what came after the room's last message when it joined (`welcome.last_id`), not for
    the room's whole history."""
    server = await start_server(backlog=0)
    url = server.url + "/lobby"
    bob = await JsonClient.connect(url, "bob")
    for number in range(3):
        await bob.say(f"before alice joined {number}")
    client, seen = run_client(url, "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    assert seen.of(Joined)[0].welcome.history == () and client.position.last_id == 3
    client._connection.transport.abort()
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    assert seen.of(Joined)[1].welcome.history == () and not seen.of(Received)
    await bob.close()


async def test_a_message_that_could_not_be_stored_keeps_its_place_in_the_order(
        start_server, run_client, tmp_path) -> None:
    """reliability.md: each sender's messages keep their order. A message the server could
    not store (`unavailable`) stays pending; the server disconnects the client rather than
    store what it sends next, and once storing works again everything is stored in the
    order typed."""
    db = str(tmp_path / "chat.db")
    server = await start_server(db=db)
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    fault = sqlite3.connect(db, isolation_level=None)  # the disk fails for one message
    fault.execute("CREATE TRIGGER fail BEFORE INSERT ON messages WHEN NEW.text = 'two'"
                  " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    client.say("one")
    await seen.until(lambda: len(seen.of(Received)) == 1)
    client.say("two")
    client.say("three")  # sent before the refusal of "two" arrives
    await seen.until(lambda: seen.of(Refused))
    assert seen.of(Refused)[0].retrying and seen.of(Refused)[0].error.code == "unavailable"
    client.say("four")  # typed after it
    await seen.until(lambda: len(seen.of(Joined)) >= 2)  # it reconnected, and tries again
    assert stored(server) == [("alice", "one")]
    fault.execute("DROP TRIGGER fail")  # the disk is fine again
    fault.close()
    await seen.until(lambda: not client.outbox, timeout=10)
    assert [text for _, text in stored(server)] == ["one", "two", "three", "four"]


async def test_a_welcome_lost_in_a_second_drop_does_not_lock_the_client_out_of_its_name(
        start_server, run_client) -> None:
    """Drop; the reconnect takes the dead connection's place, but its welcome is lost in a
    second drop. The client still holds the secret from the last welcome it saw, and a
    takeover keeps the secret, so the next reconnect takes the name back at once."""
    server = await start_server()
    relay = await Relay(server.port).start()
    try:
        client, seen = run_client(f"ws://127.0.0.1:{relay.port}/lobby", "alice")
        await seen.until(lambda: client.state is State.ONLINE)
        relay.lose_next_answers()
        relay.sever()
        await seen.until(lambda: len(seen.of(Joined)) == 2, timeout=10)
        assert client.state is State.ONLINE and client.nick == "alice"
        assert not seen.of(NickRefused)
    finally:
        await relay.close()


async def test_a_history_restored_from_a_backup_is_followed_not_waited_for(
        run_client, tmp_path) -> None:
    """The server comes back with its database from a backup: same epoch, fewer messages
    than the client saw. The client takes the server's word (`welcome.last_id`) and shows
    the new messages, though their ids are ones it has seen before."""
    db = tmp_path / "history.db"
    first, client, seen = await server_where_alice_said(run_client, str(db), "kept in the backup")
    port = first.port
    await first.stop()
    backup = {path.name: path.read_bytes() for path in tmp_path.glob("history.db*")}
    first = ChatServer(ServerConfig(port=port, db=str(db), rate=0))
    await first.start()
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    client.say("lost with the disk")
    await seen.until(lambda: len(seen.of(Received)) == 2)
    await first.stop()
    for name, data in backup.items():
        (tmp_path / name).write_bytes(data)
    second = ChatServer(ServerConfig(port=port, db=str(db), rate=0))
    await second.start()
    try:
        await seen.until(lambda: len(seen.of(Joined)) == 3)
        bob = await JsonClient.connect(second.url + "/lobby", "bob")
        await bob.say("after the restore")
        await seen.until(lambda: len(seen.of(Received)) == 3)
        assert seen.of(Received)[2].message.text == "after the restore"
        assert seen.of(Received)[2].message.id == 2  # an id the client had seen already
        await bob.close()
    finally:
        await client.stop()
        await second.stop()


async def offline(client, seen) -> None:
    """Cut an online client off, as a network drop would, and wait until it knows."""
    client._connection.transport.pause_reading()
    client._connection.transport.abort()
    await seen.until(lambda: client._connection is None)


async def alice_cut_off(server, run_client):
    """alice, joined to the server's lobby and then cut off: (client, recorder)."""
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    await offline(client, seen)
    return client, seen


async def test_lines_typed_between_offline_renames_go_out_under_the_names_they_were_typed_as(
        chat_server, run_client) -> None:
    """Offline: a line, /nick bob, a line, /nick carol, a line. Each line goes out under
    the name it was typed under: the renames are made in order, between them."""
    client, seen = await alice_cut_off(chat_server, run_client)
    client.say("before")
    client.rename("bob")
    client.say("middle")
    client.rename("carol")
    client.say("after")
    await seen.until(lambda: client.nick == "carol" and not client.outbox)
    assert stored(chat_server) == [("alice", "before"), ("bob", "middle"), ("carol", "after")]


async def test_a_change_of_case_typed_offline_is_made_once_back(chat_server, run_client) -> None:
    """/nick Alice while offline with a line pending: she is Alice once back."""
    client, seen = await alice_cut_off(chat_server, run_client)
    client.say("pending")
    assert client.rename("Alice") is False  # "You will be Alice when the connection is back."
    await seen.until(lambda: client.users == ("Alice",) and not client.outbox)
    assert client.nick == "Alice"


async def test_a_registered_name_taken_right_after_a_refused_rename_keeps_its_password(
        start_server, accounts_db, run_client) -> None:
    """/nick bob (taken), then before its refusal arrives /nick alice PASSWORD: she becomes
    alice, with alice's password, so a later drop does not lock her out."""
    server = await start_server(db=accounts_db)
    url = server.url + "/lobby"
    bob = await JsonClient.connect(url, "bob")
    try:
        client, seen = run_client(url, "zed")
        await seen.until(lambda: client.state is State.ONLINE)
        assert client.rename("bob")
        assert client.rename("alice", "correct horse")
        await seen.until(lambda: client.nick == "alice")
        assert [r.kept for r in seen.of(NickRefused)] == ["zed"]
        client._connection.transport.abort()
        await seen.until(lambda: len(seen.of(Joined)) == 2 or len(seen.of(NickRefused)) == 2,
                         timeout=10)
        assert client.state is State.ONLINE and client.nick == "alice"
    finally:
        await bob.close()


async def test_a_nick_lost_in_a_drop_is_made_again_after_the_line_typed_before_it(
        start_server, run_client) -> None:
    """Online: a line, then /nick bob, both lost in a drop. Once back the line goes out
    under the name it was typed under, and the rename is made after it."""
    server = await start_server()
    relay = await Relay(server.port).start()
    try:
        client, seen = run_client(f"ws://127.0.0.1:{relay.port}/lobby", "alice")
        await seen.until(lambda: client.state is State.ONLINE)
        relay.sever()  # nothing the client writes now reaches the server
        client.say("typed as alice")
        client.rename("bob")
        await seen.until(lambda: client.nick == "bob" and not client.outbox, timeout=10)
        assert stored(server) == [("alice", "typed as alice")]
    finally:
        await relay.close()


async def test_a_line_typed_after_an_offline_rename_is_not_stored_twice_after_a_second_drop(
        chat_server, run_client) -> None:
    """Offline: a line, /nick bob, a line. Back online, "a" goes as alice, the rename is
    made, "b" goes as bob, and all is stored, but the answers are lost in a second drop.
    Once back again, each is resent under the name it was stored as: nothing twice."""
    client, seen = await alice_cut_off(chat_server, run_client)
    client.say("a")
    client.rename("bob")
    client.say("b")
    deaf = []
    recorder = client.on_update

    def on_update(update) -> None:  # the answers to what the rejoin sends are not read
        recorder(update)
        if isinstance(update, Joined) and update.rejoined and not deaf:
            deaf.append(client._connection)
            client._connection.transport.pause_reading()

    client.on_update = on_update
    await seen.until(lambda: len(stored(chat_server)) == 2)
    assert stored(chat_server) == [("alice", "a"), ("bob", "b")]
    deaf[0].transport.abort()  # the second drop: no answer was read
    await seen.until(lambda: len(seen.of(Joined)) == 3)
    await seen.until(lambda: not client.outbox and client.nick == "bob")
    await asyncio.sleep(0.3)
    assert stored(chat_server) == [("alice", "a"), ("bob", "b")]


async def test_a_line_between_two_renames_lost_in_a_drop_is_not_stored_twice(
        chat_server, run_client) -> None:
    """Online: /nick bob, a line, /nick carol; the server makes both and stores the line as
    bob, but every answer is lost in a drop. Once back, the renames are made again in
    order around the line, so its resend (as bob) is recognised."""
    client, seen = run_client(chat_server.url + "/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    connection = client._connection
    connection.transport.pause_reading()  # no answer is read from now on
    client.rename("bob")
    client.say("x")
    client.rename("carol")
    room = chat_server.hub.rooms.find("lobby")
    await seen.until(lambda: stored(chat_server) == [("bob", "x")]
                     and room is not None and room.users() == ("carol",))
    connection.transport.abort()
    await seen.until(lambda: len(seen.of(Joined)) == 2)
    await seen.until(lambda: not client.outbox and client.nick == "carol")
    await asyncio.sleep(0.3)
    assert stored(chat_server) == [("bob", "x")]


async def test_a_rename_whose_answer_was_lost_is_made_again_without_a_ghost_in_the_way(
        start_server, run_client) -> None:
    """Online: /nick bob; the server makes it, but the answer is lost in a drop, and the
    server still holds the dead connection, now called bob. The client rejoins as alice
    with its secret, which takes the dead connection's place whatever it is called now, so
    bob is free for the rename made again."""
    server = await start_server()
    relay = await Relay(server.port).start()
    try:
        client, seen = run_client(f"ws://127.0.0.1:{relay.port}/lobby", "alice")
        await seen.until(lambda: client.state is State.ONLINE)
        client._connection.transport.pause_reading()  # the answer is never read
        client.rename("bob")
        room = server.hub.rooms.find("lobby")
        await seen.until(lambda: room is not None and room.users() == ("bob",))
        client._connection.transport.abort()  # the relay keeps the server's side open
        await seen.until(lambda: len(seen.of(Joined)) == 2)
        await seen.until(lambda: client.nick == "bob" or bool(seen.of(NickRefused)))
        assert not seen.of(NickRefused) and server.hub.rooms.find("lobby").users() == ("bob",)
    finally:
        await relay.close()


async def test_reconnect_now_ends_the_wait_for_the_next_attempt(
        start_server, unused_port, run_client) -> None:
    """A client that found no server waits a minute to try again; reconnect_now() once the
    server is up joins at once, and is refused (False) while online."""
    client, seen = run_client(f"ws://127.0.0.1:{unused_port}/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.RECONNECTING and client.backoff.attempts)
    await start_server(port=unused_port)
    assert client.reconnect_now() is True
    await seen.until(lambda: client.state is State.ONLINE, timeout=3)
    assert client.reconnect_now() is False


async def test_each_wait_can_be_cut_short(run_client, unused_port) -> None:
    """After every failed attempt there is a new wait, and reconnect_now() ends each one."""
    client, seen = run_client(f"ws://127.0.0.1:{unused_port}/lobby", "alice", backoff=SLOW)
    for attempts in (1, 2, 3):
        await seen.until(lambda attempts=attempts: client.backoff.attempts == attempts)
        await seen.until(client.reconnect_now, timeout=2)  # True once the wait has begun
    await seen.until(lambda: client.backoff.attempts == 4, timeout=2)


async def test_reconnect_now_is_refused_once_the_server_refused_for_good(start_server,
                                                                         run_client) -> None:
    """A server that wants a token the client does not have is not retried: nothing waits."""
    server = await start_server(token="s3cret-token-value")
    client, seen = run_client(server.url + "/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.OFFLINE)
    assert client.reconnect_now() is False
