"""The pure room core: membership and nickname rules without any socket."""

from __future__ import annotations

import pytest

from tui_chat_server.rooms import Dialect, Member, Room, Rooms
from tui_chat.protocol import ProtocolError


def member(nick: str, dialect: Dialect = Dialect.JSON) -> Member:
    return Member(nick, dialect, connection=object())


def test_nicknames_are_unique_per_room_after_folding() -> None:
    """A second 'ALICE' is refused once 'alice' is in the room."""
    room = Room("lobby")
    room.join(member(room.vet_nick("alice")))
    with pytest.raises(ProtocolError) as caught:
        room.vet_nick("ALICE")
    assert caught.value.code == "nick_taken"


def test_the_same_nickname_can_be_used_in_another_room() -> None:
    """Uniqueness is per room."""
    rooms = Rooms()
    rooms.get("a").join(member("alice"))
    rooms.get("b").join(member(rooms.get("b").vet_nick("alice")))
    assert rooms.get("b").users() == ("alice",)


def test_leave_of_a_non_member_changes_nothing() -> None:
    """Leaving twice, or leaving without joining, is harmless and reported as False."""
    room = Room("lobby")
    alice, stranger = member("alice"), member("alice")
    room.join(alice)
    assert room.leave(stranger) is False
    assert room.users() == ("alice",)
    assert room.leave(alice) is True
    assert room.leave(alice) is False


def test_rename_follows_the_nickname_rules() -> None:
    """A rename may change case, but not take another's name or an invalid one."""
    room = Room("lobby")
    alice, bob = member("alice"), member("bob")
    room.join(alice)
    room.join(bob)
    assert room.rename(alice, "Alice") == "alice"
    assert room.users() == ("Alice", "bob")
    for taken in ("BOB", "admin", "a b", " Alice "):
        with pytest.raises(ProtocolError):
            room.rename(alice, taken)
    assert alice.nick == "Alice"


def test_users_are_sorted_case_insensitively() -> None:
    """The user list is sorted without regard to case."""
    room = Room("lobby")
    for nick in ("carol", "Bob", "alice"):
        room.join(member(nick))
    assert room.users() == ("alice", "Bob", "carol")


def test_recipients_are_split_by_dialect_and_follow_membership() -> None:
    """Recipient lists per dialect are rebuilt after joins and leaves."""
    room = Room("lobby")
    alice, bob = member("alice"), member("bob", Dialect.PLAIN)
    room.join(alice)
    room.join(bob)
    assert room.recipients(Dialect.JSON) == [alice.connection]
    assert room.recipients(Dialect.PLAIN) == [bob.connection]
    room.leave(bob)
    assert room.recipients(Dialect.PLAIN) == []


def test_empty_rooms_are_forgotten() -> None:
    """A room with no members is dropped, so rooms do not leak."""
    rooms = Rooms()
    room = rooms.get("tmp")
    alice = member("alice")
    room.join(alice)
    room.leave(alice)
    rooms.discard_if_empty(room)
    assert len(rooms) == 0
