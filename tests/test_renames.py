"""Where deferred renames go among pending messages (pure: no connection needed)."""

from __future__ import annotations

from tui_chat.renames import Rename, replay
from tui_chat.updates import Outgoing

A, B, C = Outgoing("a", "one"), Outgoing("b", "two"), Outgoing("c", "three")


def test_each_rename_goes_before_the_first_message_typed_after_it() -> None:
    """a, /nick bob, b, /nick carol, c: each line goes out under the name it was typed as,
    and each rename knows what was sent ahead of it."""
    renames = [Rename("bob", None, frozenset("a")), Rename("carol", "pw", frozenset("ab"))]
    assert replay([A, B, C], renames, "alice") == [
        A, Rename("bob", None, frozenset("a")), B, Rename("carol", "pw", frozenset("ab")), C]


def test_renames_after_every_pending_message_come_last() -> None:
    """Renames asked for once everything pending was typed go after all of it, in order."""
    renames = [Rename("bob", None, frozenset("ab")), Rename("carol", None, frozenset("ab"))]
    assert replay([A, B], renames, "alice") == [
        A, B, Rename("bob", None, frozenset("ab")), Rename("carol", None, frozenset("ab"))]


def test_a_rename_to_the_name_already_asked_for_is_left_out_but_a_change_of_case_is_not() -> None:
    """A rename to the current name exactly is no rename; Alice for alice is one."""
    same = [Rename("alice", None, frozenset())]
    assert replay([A], same, "alice") == [A]
    case = [Rename("Alice", None, frozenset())]
    assert replay([A], case, "alice") == [Rename("Alice", None, frozenset()), A]
