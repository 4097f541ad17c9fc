"""Fan-out: prepared frames, rounds of one write per member, and what each sender gets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.protocol import State

import tui_chat_server.hub as server_hub
from tui_chat_server.fanout import Delivery, Stream, text_frame
from tests.helpers import JsonClient, PlainClient, eventually


def test_a_text_frame_is_a_complete_unmasked_frame() -> None:
    """Small and 16-bit lengths are encoded as RFC 6455 says."""
    assert text_frame("hi") == b"\x81\x02hi"
    long = text_frame("x" * 300)
    assert long[:4] == b"\x81\x7e\x01\x2c" and len(long) == 304


class Member:
    """A stand-in for a connection as the stream sees one: a state, a transport, a mark."""

    def __init__(self, name: str, stream: Stream, state: State = State.OPEN) -> None:
        self.name = name
        self.protocol = SimpleNamespace(state=state)
        self.transport = self  # what is written is kept, in order
        self.writes: list[bytes] = []
        self.delivered = stream.head
        self.paused = False  # as a connection whose output is within its limit
        self.dropped = ""  # what it had waiting when it was dropped as a slow consumer

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def too_slow(self, waiting: str) -> None:
        self.dropped = waiting


def run_round(stream: Stream, json: list, plain: list, count: int = 2) -> int:
    """Step until the stream is done; how many steps it took."""
    steps = 1
    while stream.step(json, plain, count):
        steps += 1
    return steps


def test_every_member_gets_what_it_lacks_in_one_write_subjects_their_own_version() -> None:
    """Each member gets the pending frames joined; a subject gets its own version in place."""
    stream = Stream()
    alice, carol = Member("alice", stream), Member("carol", stream)
    bob, dave = Member("bob", stream), Member("dave", stream)
    assert stream.add(Delivery(b"J1", b"P1", alice, b"J1+cid"))  # alice's ack has a cid
    assert not stream.add(Delivery(b"J2", b"P2", bob, b""))  # plain bob: not his own line
    stream.add(Delivery(b"J3", b"P3"))
    run_round(stream, [alice, carol], [bob, dave])
    assert alice.writes == [b"J1+cidJ2J3"] and carol.writes == [b"J1J2J3"]
    assert bob.writes == [b"P1P3"] and dave.writes == [b"P1P2P3"]
    assert stream.deliveries == [] and not stream.active and stream.head == 3


def test_a_delivery_added_mid_round_reaches_everyone_once_and_in_order() -> None:
    """Members the round has not reached get it in their next write; those it has passed
    get it in the next round; nobody gets anything twice."""
    stream = Stream()
    members = [Member(f"m{n}", stream) for n in range(6)]
    stream.add(Delivery(b"A", b"a"))
    assert stream.step(members, [], 2)  # m0 and m1 have A
    stream.add(Delivery(b"B", b"b"))
    run_round(stream, members, [])
    assert [m.writes for m in members[:2]] == [[b"A", b"B"]] * 2
    assert [m.writes for m in members[2:]] == [[b"AB"]] * 4
    assert stream.deliveries == [] and not stream.active


def test_a_member_joining_mid_round_gets_only_what_comes_after() -> None:
    """A joiner starts at the head: earlier deliveries are its backlog's business."""
    stream = Stream()
    members = [Member(f"m{n}", stream) for n in range(4)]
    stream.add(Delivery(b"A", b"a"))
    stream.step(members, [], 2)
    joiner = Member("joiner", stream)
    stream.add(Delivery(b"B", b"b"))
    members = members + [joiner]  # the room's recipient list is rebuilt on a join
    run_round(stream, members, [])
    assert joiner.writes == [b"B"]
    assert [m.writes for m in members[:2]] == [[b"A", b"B"]] * 2
    assert [m.writes for m in members[2:4]] == [[b"AB"]] * 2


def test_a_member_leaving_mid_round_does_not_make_another_miss_a_delivery() -> None:
    """When the recipient list shifts under the round, the stream goes round once more."""
    stream = Stream()
    members = [Member(f"m{n}", stream) for n in range(6)]
    stream.add(Delivery(b"A", b"a"))
    stream.step(members, [], 3)  # m0, m1, m2 done; m3 is next
    shifted = members[1:]  # m0 left: m3 is now where the round has already been
    run_round(stream, shifted, [])
    assert [m.writes for m in members] == [[b"A"]] * 6
    assert not stream.active


def test_under_steady_churn_the_stream_is_trimmed_and_goes_idle() -> None:
    """A join or leave in every round must not keep every delivery, nor keep the stream
    going round once nothing is left to send."""
    stream = Stream()
    members = [Member(f"m{n}", stream) for n in range(64)]  # four steps of 16
    kept = []
    for step in range(2000):
        stream.add(Delivery(b"x" * 100, b"y" * 100))
        if step % 4 == 2:
            members = list(members)  # the room rebuilds its lists on a join or leave
        stream.step(members, [], 16)
        kept.append(len(stream.deliveries))
    assert max(kept[-100:]) < 16
    steps = 0
    while stream.step(members, [], 16):
        steps += 1
        if steps % 4 == 2:
            members = list(members)
    assert steps < 20 and not stream.active and stream.deliveries == []
    assert all(m.delivered == stream.head for m in members)


def test_a_held_member_is_passed_by_then_sent_all_it_lacks_in_one_write() -> None:
    """While a member's catch-up is written, rounds pass it by; released, it gets what came
    meanwhile in one write, in order, its own version in place; then the stream is empty."""
    stream = Stream()
    alice, late = Member("alice", stream), Member("late", stream)
    stream.hold(late, is_json=True)
    stream.add(Delivery(b"J1", b"P1", late, b""))  # its own join: not for itself
    stream.add(Delivery(b"J2", b"P2"))
    run_round(stream, [alice, late], [])
    assert alice.writes == [b"J1J2"] and late.writes == []
    assert len(stream.deliveries) == 2 and not stream.active  # kept for it, and idle
    stream.add(Delivery(b"J3", b"P3"))
    run_round(stream, [alice, late], [])
    stream.release(late)
    assert late.writes == [b"J2J3"] and late.delivered == stream.head
    assert stream.deliveries == []
    stream.add(Delivery(b"J4", b"P4"))
    run_round(stream, [alice, late], [])
    assert late.writes == [b"J2J3", b"J4"] and alice.writes == [b"J1J2", b"J3", b"J4"]


def test_a_held_member_that_leaves_keeps_nothing_in_the_stream() -> None:
    """What was kept for a held member is dropped once it is gone."""
    stream = Stream()
    alice, late = Member("alice", stream), Member("late", stream)
    stream.hold(late, is_json=True)
    stream.add(Delivery(b"J1", b"P1"))
    run_round(stream, [alice, late], [])
    assert len(stream.deliveries) == 1
    stream.unhold(late)
    assert stream.deliveries == [] and late.writes == []


def test_a_held_member_more_than_the_hold_limit_behind_is_dropped() -> None:
    """What is kept for a held member is bounded: past `hold_limit` bytes it is a slow
    consumer, and the stream keeps nothing more for it."""
    stream = Stream(hold_limit=1000)
    alice, late = Member("alice", stream), Member("late", stream)
    stream.hold(late, is_json=True)
    for _ in range(9):
        stream.add(Delivery(b"x" * 100, b"y" * 90))
        run_round(stream, [alice, late], [])
    assert not late.dropped and len(stream.deliveries) == 9
    stream.add(Delivery(b"x" * 200, b"y" * 190))
    assert "over 1000 bytes" in late.dropped
    run_round(stream, [alice, late], [])
    assert stream.deliveries == [] and late.writes == []


def test_nothing_is_written_to_a_connection_that_is_not_open() -> None:
    """A closing connection gets no more frames (nothing may follow a close frame)."""
    stream = Stream()
    open_member, closing = Member("open", stream), Member("closing", stream, State.CLOSING)
    stream.add(Delivery(b"A", b"a"))
    run_round(stream, [open_member, closing], [])
    assert open_member.writes == [b"A"] and closing.writes == []


async def test_fragmented_messages_are_reassembled(join) -> None:
    """A message sent in several frames arrives whole."""
    alice = await join("alice")
    await alice.connection.send(['{"type":"say","text":"hel', 'lo","cid":"f1"}'])
    message = await alice.expect("message")
    assert (message["text"], message["cid"]) == ("hello", "f1")


async def test_invalid_utf8_split_across_fragments_closes_with_1007(join_plain) -> None:
    """UTF-8 is checked on the whole message: a character split across fragments is fine,
    invalid bytes close the connection with 1007."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()  # bob's join
    await alice.connection.send([b"ok \xe2\x82", b"\xac end"], text=True)  # a euro sign, split
    assert await bob.recv() == "[alice]: ok \u20ac end"
    await alice.connection.send([b"bad \xe2", b"\x28 end"], text=True)
    with pytest.raises(ConnectionClosedError):
        await alice.recv()
    assert alice.connection.close_code == 1007
    assert await bob.recv() == "[Server]: alice has left the chat."


async def test_every_member_gets_a_burst_in_order_whatever_the_batching(join, join_plain) -> None:
    """Messages coalesced into one write arrive as separate messages, in order."""
    sender = await join("sender")
    listener = await join_plain("listener")
    await sender.expect("presence")
    for number in range(300):
        await sender.send(type="say", text=f"n{number}", cid=f"b{number}")
    lines = [await listener.recv() for _ in range(300)]
    assert lines == [f"[sender]: n{number}" for number in range(300)]
    acks = [(await sender.expect("message"))["cid"] for _ in range(300)]
    assert acks == [f"b{number}" for number in range(300)]


async def test_a_clients_messages_share_commits_instead_of_waiting_for_each_other(
        start_server, tmp_path, clients) -> None:
    """Messages from one client are numbered in order at once and committed together: a
    burst of 100 takes far fewer than 100 commits (each of which syncs the disk)."""
    server = await start_server(db=str(tmp_path / "history.db"))
    sender = await JsonClient.connect(server.url + "/lobby", "sender")
    clients.append(sender)
    before = server.history.commits
    for number in range(100):
        await sender.send(type="say", text=f"n{number}", cid=f"p{number}")
    acks = [await sender.expect("message") for _ in range(100)]
    assert [ack["cid"] for ack in acks] == [f"p{n}" for n in range(100)]
    assert [ack["id"] for ack in acks] == list(range(acks[0]["id"], acks[0]["id"] + 100))
    assert server.history.commits - before < 50


async def test_a_rename_comes_after_the_messages_sent_before_it(join, join_plain) -> None:
    """Messages are not held back for their commit, but a rename (or /who) waits for them,
    so everyone sees the lines, then the rename, in the order they were sent."""
    listener = await join("listener")
    writer = await join_plain("writer")
    await listener.expect("presence")
    for number in range(20):
        await writer.send(f"line {number}")
    await writer.send("/nick scribe")
    events = [await listener.recv() for _ in range(21)]
    assert [e.get("text") for e in events[:20]] == [f"line {n}" for n in range(20)]
    assert all(e["nick"] == "writer" for e in events[:20])
    assert (events[20]["type"], events[20]["nick"]) == ("presence", "scribe")


async def test_a_leave_comes_after_the_messages_sent_before_it(start_server, tmp_path,
                                                               clients) -> None:
    """A raw client that says its last lines and hangs up (as `websocat` does at the end of
    its input) is seen to say them, then to leave: its leave waits for their commit."""
    server = await start_server(db=str(tmp_path / "history.db"))
    listener = await JsonClient.connect(server.url + "/lobby", "listener")
    clients.append(listener)
    for round_ in range(5):
        writer = await PlainClient.connect(server.url + "/lobby", f"w{round_}")
        assert (await listener.expect("presence"))["event"] == "join"
        for number in range(3):
            await writer.send(f"last {number}")
        await writer.connection.close()
        events = [await listener.recv() for _ in range(4)]
        assert [(e["type"], e.get("text")) for e in events] == [
            ("message", "last 0"), ("message", "last 1"), ("message", "last 2"),
            ("presence", None)], events


async def test_a_message_committed_after_everyone_left_goes_nowhere_and_the_room_recovers(
        start_server, tmp_path, clients) -> None:
    """A message whose sender (the last member) left before its commit is stored, sent to
    nobody, and a room of the same name started later works normally."""
    server = await start_server(db=str(tmp_path / "history.db"))
    url = server.url + "/lobby"
    alone = await JsonClient.connect(url, "alone")
    await alone.send(type="say", text="last words", cid="w1")
    await alone.connection.close()
    await eventually(lambda: server.hub.rooms.find("lobby") is None)
    first = await JsonClient.connect(url, "first")
    second = await JsonClient.connect(url, "second")
    clients.extend([first, second])
    assert [m["text"] for m in first.welcome["history"]] == ["last words"]
    assert (await first.say("hello again"))["text"] == "hello again"  # skips second's join
    assert (await second.expect("message"))["text"] == "hello again"


async def test_a_repeated_cid_is_answered_after_the_messages_before_it(start_server,
                                                                       clients) -> None:
    """The answer to a repeated cid goes through the room's stream to the sender alone, so
    it never overtakes messages with smaller ids still on their way (a client that drops
    ids it has passed would lose them)."""
    server = await start_server(presence_limit=1)
    url = server.url + "/lobby"
    room = [await JsonClient.connect(url, f"l{n}") for n in range(20)]  # a round of 2 steps
    talker = await JsonClient.connect(url, "talker")
    late = await JsonClient.connect(url, "late")  # reached by a later step of the round
    clients.extend([*room, talker, late])
    for trial in range(10):
        said = talker.send(type="say", text=f"M{trial}", cid=f"m{trial}")
        again = [late.send(type="say", text=f"A{trial}", cid=f"a{trial}") for _ in range(2)]
        await asyncio.gather(said, *again)
        seen = [await late.recv() for _ in range(3)]  # M, A (its ack), A (the answer)
        assert [event["id"] for event in seen] == sorted(event["id"] for event in seen)
        assert sum(event.get("cid") == f"a{trial}" for event in seen) == 2
        for client in (*room, talker):
            for _ in range(2):
                await client.recv()


async def test_a_failure_after_the_commit_is_reported_and_the_message_kept_once(
        join, monkeypatch) -> None:
    """Should sending a stored message fail (a bug), the sender hears `unavailable` for that
    cid and is disconnected with 1013 rather than left waiting; what it sent after is
    refused, not stored ahead of it, and its resends after reconnecting get the stored
    message once, then the next one stored after it."""
    alice = await join("alice")
    real_plain_line = server_hub.plain_line
    failures = iter([RuntimeError("boom")])

    def failing_once(message):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_plain_line(message)

    monkeypatch.setattr(server_hub, "plain_line", failing_once)
    await alice.send(type="say", text="first", cid="f1")
    error = await alice.expect("error")
    assert (error["code"], error["cid"]) == ("unavailable", "f1")
    with pytest.raises(ConnectionClosed):
        await alice.send(type="say", text="second", cid="f2")
        await alice.recv()
    assert alice.connection.close_code == 1013
    again = await join("alice")
    first, second = await again.say("first", "f1"), await again.say("second", "f2")
    assert first["id"] < second["id"] and (first["cid"], second["cid"]) == ("f1", "f2")
    carol = await join("carol")
    assert [m["text"] for m in carol.welcome["history"]] == ["first", "second"]


async def test_a_who_answer_comes_after_the_acknowledgements_before_it(start_server,
                                                                       clients) -> None:
    """`who` goes through the room's stream like everything else, so a client late in the
    room gets the answer after the acknowledgements of the messages it sent before."""
    server = await start_server(presence_limit=1)
    url = server.url + "/lobby"
    room = [await JsonClient.connect(url, f"l{n}") for n in range(80)]  # rounds of 6 steps
    late = await JsonClient.connect(url, "late")
    clients.extend([*room, late])
    for number in range(5):
        await late.send(type="say", text=f"m{number}", cid=f"w{number}")
    await late.send(type="who")
    events = [await late.recv() for _ in range(6)]
    assert [event["type"] for event in events] == ["message"] * 5 + ["users"]
    assert len(events[5]["users"]) == 81
