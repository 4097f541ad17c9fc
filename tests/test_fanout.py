"""Fan-out: prepared frames, one write per member per tick, and what each sender gets."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosedError

from server.fanout import Delivery, coalesce, text_frame


def test_a_text_frame_is_a_complete_unmasked_frame() -> None:
    """Small and 16-bit lengths are encoded as RFC 6455 says."""
    assert text_frame("hi") == b"\x81\x02hi"
    long = text_frame("x" * 300)
    assert long[:4] == b"\x81\x7e\x01\x2c" and len(long) == 304


def test_coalescing_gives_every_member_the_same_bytes_except_subjects() -> None:
    """Everyone gets the tick's frames joined; a subject gets its own version in place."""
    alice, bob = object(), object()
    batch = [
        Delivery(b"J1", b"P1", alice, True, b"J1+cid"),  # alice's message: her ack has a cid
        Delivery(b"J2", b"P2", bob, False, b""),  # bob (plain) does not get his own line
        Delivery(b"J3", b"P3"),
    ]
    json_all, plain_all, special = coalesce(batch)
    assert (json_all, plain_all) == (b"J1J2J3", b"P1P2P3")
    assert special == {alice: b"J1+cidJ2J3", bob: b"P1P3"}


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
