"""Where a client is in a room's history, as a pure object: what a welcome means for it."""

from __future__ import annotations

from tui_chat.position import Position
from tui_chat.protocol import Message, Welcome


def message(number: int) -> Message:
    return Message(number, 0, "bob", f"m{number}", "chat")


def welcome(*ids: int, epoch: str = "e1", last_id: int | None = None,
            recovered: bool | None = None) -> Welcome:
    return Welcome("alice", "lobby", ("alice",), epoch, tuple(message(n) for n in ids),
                   recovered, last_id=last_id if last_id is not None else max(ids, default=0))


def test_a_rejoin_asks_for_what_came_after_the_last_message_seen() -> None:
    """A first join asks for the recent history; after messages, for what came after them."""
    position = Position()
    assert position.since() == (None, None)
    assert position.welcome(welcome(1, 2)) == ((message(1), message(2)), False)
    assert position.seen(message(3)) and not position.seen(message(3))
    assert position.since() == (3, "e1")


def test_a_welcome_with_no_history_still_says_where_the_room_is() -> None:
    """Shown nothing (--backlog 0), the client still knows the room was at message 7."""
    position = Position()
    assert position.welcome(welcome(last_id=7)) == ((), False)
    assert position.since() == (7, "e1")


def test_a_new_epoch_without_recovery_is_a_gap_and_starts_afresh() -> None:
    """Another epoch: ids from before mean nothing; the history is all new, and a gap."""
    position = Position()
    position.welcome(welcome(5, 6))
    assert position.welcome(welcome(1, epoch="e2")) == ((message(1),), True)
    assert position.since() == (1, "e2")


def test_a_history_that_went_back_is_followed() -> None:
    """Same epoch, but the room's last id is below the one seen (a restored backup): the
    client takes what it is sent, and new messages with old ids are new again."""
    position = Position()
    position.welcome(welcome(1, 2, 3))
    history, gap = position.welcome(welcome(1, last_id=1, recovered=True))
    assert (history, gap) == ((message(1),), False)
    assert position.seen(message(2))


def test_catch_up_messages_after_a_long_welcome_are_history() -> None:
    """Messages up to the welcome's last id that follow it are the rest of its history."""
    position = Position()
    position.welcome(welcome(1, 2, last_id=5))
    assert position.is_backlog(message(5)) and not position.is_backlog(message(6))
