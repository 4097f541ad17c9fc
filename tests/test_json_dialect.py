"""The tui-chat.v1 JSON dialect against a real server: hello, say, me, nick, who, errors."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from tests.helpers import JsonClient


async def test_hello_gets_a_welcome_with_users_history_and_epoch(join, chat_server) -> None:
    """The welcome names you, the room, who is here, the recent history, the epoch and the
    id of the room's newest message (0 in an empty room)."""
    alice = await join("alice")
    assert alice.welcome["last_id"] == 0
    await alice.say("first")
    bob = await join("bob")
    welcome = bob.welcome
    assert welcome["nick"] == "bob"
    assert welcome["room"] == "lobby"
    assert welcome["users"] == ["alice", "bob"]
    assert welcome["epoch"] == chat_server.history.epoch
    assert [m["text"] for m in welcome["history"]] == ["first"]
    assert "cid" not in welcome["history"][0], "another user's cid is not shown"
    assert welcome["max_text"] == 4000
    assert welcome["last_id"] == welcome["history"][-1]["id"] == 1


async def test_others_see_a_join_presence_with_the_new_user_list(join) -> None:
    """Members already in the room get `presence` join with the users."""
    alice = await join("alice")
    await join("bob")
    presence = await alice.expect("presence")
    assert presence == {"type": "presence", "event": "join", "nick": "bob", "users": ["alice", "bob"]}


async def test_a_quiet_join_and_leave_update_user_lists_and_say_nothing(join, join_plain) -> None:
    """A `hello` with `quiet` (a script that posts and goes) is a presence marked quiet for
    JSON members, who update their user list, and nothing at all for plain ones; its
    messages reach everyone as any member's do."""
    alice = await join("alice")
    carol = await join_plain("carol")
    await alice.expect("presence")
    ci = await join("ci", quiet=True)
    assert ci.welcome["users"] == ["alice", "carol", "ci"]
    assert await alice.expect("presence") == {"type": "presence", "event": "join", "nick": "ci",
                                              "users": ["alice", "carol", "ci"], "quiet": True}
    await ci.say("deploy finished")
    await ci.close()
    assert await carol.recv() == "[ci]: deploy finished", "no join line before it"
    assert (await alice.expect("message"))["text"] == "deploy finished"
    assert await alice.expect("presence") == {"type": "presence", "event": "leave", "nick": "ci",
                                              "users": ["alice", "carol"], "quiet": True}
    await carol.send("/who")
    assert await carol.recv() == "[Server]: In lobby (2): alice, carol.", "no leave line before it"


async def test_a_quiet_member_holds_its_nickname_and_its_renames_are_announced(join) -> None:
    """Quiet is only about coming and going: the name is taken while it is here, and a
    rename is announced to everyone as anyone's is."""
    alice = await join("alice")
    ci = await join("ci", quiet=True)
    await alice.expect("presence")
    intruder = await join(None)
    await intruder.send(type="hello", nick="CI")
    assert (await intruder.expect("error"))["code"] == "nick_taken"
    await ci.send(type="nick", nick="deploys")
    presence = await alice.expect("presence")
    assert (presence["event"], presence["old"], presence.get("quiet")) == ("rename", "ci", None)


async def test_say_is_broadcast_and_acknowledged_with_the_cid(join) -> None:
    """The sender's echo carries its cid; others get the same message without it."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    ack = await alice.say("hello", cid="x1")
    assert ack["cid"] == "x1"
    assert ack["nick"] == "alice" and ack["text"] == "hello" and ack["kind"] == "chat"
    assert isinstance(ack["id"], int) and isinstance(ack["ts"], int)
    received = await bob.expect("message")
    assert received == {k: v for k, v in ack.items() if k != "cid"}


async def test_ids_strictly_increase_in_a_room(join) -> None:
    """Every message gets a larger id than the one before it."""
    alice = await join("alice")
    ids = [(await alice.say(f"m{n}"))["id"] for n in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


async def test_me_is_an_action(join) -> None:
    """`me` posts a message of kind action."""
    alice = await join("alice")
    await alice.send(type="me", text="waves", cid="m1")
    message = await alice.expect("message")
    assert (message["kind"], message["text"], message["cid"]) == ("action", "waves", "m1")


async def test_nick_renames_and_everyone_gets_presence(join) -> None:
    """A rename is announced to everyone, the renamed user included, with the new list."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    await bob.send(type="nick", nick="robert")
    for client in (alice, bob):
        presence = await client.expect("presence")
        assert presence["event"] == "rename"
        assert (presence["old"], presence["nick"]) == ("bob", "robert")
        assert presence["users"] == ["alice", "robert"]
    assert (await bob.say("hi"))["nick"] == "robert"


async def test_presence_in_a_big_room_carries_the_change_not_the_user_list(
        start_server, clients, run_client) -> None:
    """Past 100 members a presence event has no `users` (each would be sent to every member:
    the room's size squared), and a client keeps its list right from the changes."""
    server = await start_server()
    url = server.url + "/big"
    clients.extend([await JsonClient.connect(url, f"m{n:03}") for n in range(99)])
    client, seen = run_client(url, "watcher")
    await seen.until(lambda: len(client.users) == 100)
    hundred_and_first = await JsonClient.connect(url, "Zed")
    clients.append(hundred_and_first)
    joined = await clients[0].expect("presence")
    while joined["nick"] != "Zed":
        joined = await clients[0].expect("presence")
    assert (joined["event"], "users" in joined) == ("join", False)
    await hundred_and_first.send(type="nick", nick="ann")
    renamed = await clients[0].expect("presence")
    assert (renamed["event"], renamed["old"], "users" in renamed) == ("rename", "Zed", False)
    await clients[1].close()
    await seen.until(lambda: "m001" not in client.users)
    await seen.until(lambda: len(client.users) == 100)
    await client.stop()
    assert list(client.users) == sorted(
        ["ann", "watcher", "m000", *(f"m{n:03}" for n in range(2, 99))], key=str.casefold)
    for member in clients:  # (closing each in turn would wait for what it has not read)
        member.connection.transport.abort()


async def test_rename_to_a_taken_nickname_is_refused(join) -> None:
    """Renaming obeys the same rules as joining."""
    alice = await join("alice")
    await join("bob")
    await alice.expect("presence")
    for nick, code in [("BOB", "nick_taken"), ("system", "nick_reserved"), ("a b", "nick_invalid"),
                       ("alice", "nick_unchanged")]:
        await alice.send(type="nick", nick=nick)
        error = await alice.expect("error")
        assert error["code"] == code, nick


async def test_who_lists_the_users(join) -> None:
    """`who` is answered with the sorted user list."""
    await join("zed")
    alice = await join("alice")
    await alice.send(type="who")
    assert await alice.expect("users") == {"type": "users", "room": "lobby", "users": ["alice", "zed"]}


async def test_a_taken_nickname_can_be_retried_on_the_same_connection(join) -> None:
    """A refused hello leaves the connection open for another attempt."""
    await join("alice")
    second = await join(None)
    await second.send(type="hello", nick="Alice")
    error = await second.expect("error")
    assert error["code"] == "nick_taken" and "taken" in error["message"]
    await second.send(type="hello", nick="alice2")
    assert (await second.expect("welcome"))["nick"] == "alice2"


async def test_reserved_and_invalid_nicknames_are_refused(join) -> None:
    """`server`, `system`, `admin` (any case) and malformed names get clear errors."""
    client = await join(None)
    for nick, code in [("Server", "nick_reserved"), ("ADMIN", "nick_reserved"),
                       ("x" * 25, "nick_invalid"), ("", "nick_invalid")]:
        await client.send(type="hello", nick=nick)
        assert (await client.expect("error"))["code"] == code


async def test_a_nickname_with_control_or_invisible_characters_is_refused_not_cleaned(join
                                                                                   ) -> None:
    """As in the plain dialect, a JSON nickname holding a direction override or a control
    code is refused, saying which character (it used to be cleaned into another name and
    accepted), in a `hello` and in a `nick` alike."""
    client = await join(None)
    for nick, character in [("\u202eecila", "U+202E"), ("bo\x00b", "U+0000")]:
        await client.send(type="hello", nick=nick)
        error = await client.expect("error")
        assert error["code"] == "nick_invalid" and character in error["message"]
    alice = await join("alice")
    await alice.send(type="nick", nick="al\u200bice2")
    error = await alice.expect("error")
    assert error["code"] == "nick_invalid" and "U+200B" in error["message"]


async def test_say_before_hello_is_an_error_and_the_connection_stays(join) -> None:
    """Talking before joining gets not_joined with the cid; joining still works after."""
    client = await join(None)
    await client.send(type="say", text="hi", cid="early")
    error = await client.expect("error")
    assert (error["code"], error["cid"]) == ("not_joined", "early")
    await client.send(type="hello", nick="late")
    await client.expect("welcome")


async def test_a_second_hello_is_refused(join) -> None:
    """You join once per connection."""
    alice = await join("alice")
    await alice.send(type="hello", nick="other")
    assert (await alice.expect("error"))["code"] == "already_joined"


async def test_leaving_is_announced(join) -> None:
    """When a member disconnects, the others get presence leave with the new list."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    await bob.close()
    presence = await alice.expect("presence")
    assert (presence["event"], presence["nick"], presence["users"]) == ("leave", "bob", ["alice"])


async def test_since_in_the_same_epoch_replays_only_what_was_missed(join) -> None:
    """Reconnecting with since+epoch gets exactly the gap, marked recovered."""
    alice = await join("alice")
    seen = await alice.say("one")
    watcher = await join("bob")
    await watcher.close()
    assert [(await alice.expect("presence"))["event"] for _ in "jl"] == ["join", "leave"]
    await alice.say("two")
    await alice.say("three")
    back = await join("bob", since=seen["id"], epoch=alice.welcome["epoch"])
    assert [m["text"] for m in back.welcome["history"]] == ["two", "three"]
    assert back.welcome["recovered"] is True


async def test_since_from_an_old_epoch_is_flagged_not_recovered(join) -> None:
    """A stale epoch gets the recent backlog with recovered false."""
    alice = await join("alice")
    await alice.say("after restart")
    back = await join("bob", since=41, epoch="some-old-epoch")
    assert back.welcome["recovered"] is False
    assert [m["text"] for m in back.welcome["history"]] == ["after restart"]


async def test_since_past_every_id_of_the_epoch_is_flagged_not_recovered(join) -> None:
    """A `since` beyond the room's newest id (the server's database was restored from a
    backup and has had new messages since) gets the recent backlog with recovered false,
    not an empty catch-up that would skip those messages."""
    alice = await join("alice")
    await alice.say("after the restore")
    back = await join("bob", since=41, epoch=alice.welcome["epoch"])
    assert back.welcome["recovered"] is False
    assert [m["text"] for m in back.welcome["history"]] == ["after the restore"]


async def test_own_messages_in_the_backlog_keep_their_cid(join) -> None:
    """Your own replayed messages carry your cid, so a reconnecting client can match acks."""
    alice = await join("alice")
    await alice.say("mine", cid="k1")
    await alice.close()
    again = await join("alice", since=0, epoch=alice.welcome["epoch"])
    assert again.welcome["history"][0]["cid"] == "k1"


async def test_a_catch_up_larger_than_one_welcome_continues_as_messages(start_server) -> None:
    """A gap bigger than the welcome's budget arrives whole: the welcome, then messages."""
    server = await start_server(max_text=4000)
    writer = await JsonClient.connect(server.url, "writer")
    text = "y" * 3000
    for number in range(400):  # ~1.2 MB of history
        await writer.send(type="say", text=f"{number:04d} {text}", cid=f"w{number}")
    for _ in range(400):
        await writer.expect("message")
    reader = await JsonClient.connect(server.url, "reader", since=0, epoch=writer.welcome["epoch"])
    got = [m["text"][:4] for m in reader.welcome["history"]]
    assert 0 < len(got) < 400, "the welcome alone does not carry it all"
    assert reader.welcome["recovered"] is True
    while len(got) < 400:
        got.append((await reader.expect("message"))["text"][:4])
    assert got == [f"{n:04d}" for n in range(400)]
    await writer.close()
    await reader.close()


async def test_the_welcome_secret_takes_a_nickname_back_from_an_earlier_connection(join) -> None:
    """A hello with the `resume` secret of the member holding the nickname takes its place:
    the earlier connection is closed with 4000, the room sees it leave and the new one
    join, and the new one keeps the secret (should its welcome be lost, the client still
    holds it); a wrong secret, or none, still gets `nick_taken`."""
    bob = await join("bob")
    first = await join("alice")
    await bob.expect("presence")
    secret = first.welcome["resume"]
    assert secret
    impostor = await join(None)
    for wrong in ({"resume": "not-the-secret"}, {}, {"resume": bob.welcome["resume"]}):
        await impostor.send(type="hello", nick="alice", **wrong)
        assert (await impostor.expect("error"))["code"] == "nick_taken"
    second = await join("alice", resume=secret)
    assert second.welcome["nick"] == "alice" and second.welcome["resume"] == secret
    assert [(e["event"], e["nick"]) for e in (await bob.recv(), await bob.recv())] == [
        ("leave", "alice"), ("join", "alice")]
    with pytest.raises(ConnectionClosed):
        await first.recv()
    assert first.connection.close_code == 4000
    await second.send(type="who")
    assert (await second.expect("users"))["users"] == ["alice", "bob"]


async def test_answers_to_requests_come_in_the_order_the_requests_were_sent(join) -> None:
    """A `say`, a bad event, `who`, a bad event, a taken `nick` and `who` sent at once are
    answered in that order: the acknowledgement first, the refusals in turn."""
    await join("zed")
    alice = await join("alice")
    await alice.send(type="say", text="hello", cid="c1")
    await alice.send(type="frobnicate")
    await alice.send(type="who")
    await alice.send(type="frobnicate")
    await alice.send(type="nick", nick="zed")
    await alice.send(type="who")
    kinds = [(event["type"], event.get("code")) for event in
             [await alice.recv() for _ in range(6)]]
    assert kinds == [("message", None), ("error", "unknown_type"), ("users", None),
                     ("error", "unknown_type"), ("error", "nick_taken"), ("users", None)]
