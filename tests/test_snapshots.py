"""SVG snapshots of the main screen in a real conversation (pytest-textual-snapshot)."""

from __future__ import annotations

from tests.conversation import SIZE, conversation_app, free_port, freeze_clock, play_conversation


def test_main_screen_in_a_conversation(snap_compare, monkeypatch) -> None:
    """Header, log with joins, actions, own and system lines, and the user list."""
    freeze_clock(monkeypatch.setattr)
    port = free_port()
    assert snap_compare(conversation_app(port), terminal_size=SIZE,
                        run_before=lambda pilot: play_conversation(pilot, port))


def test_screen_while_the_server_is_away(snap_compare, monkeypatch) -> None:
    """The header counts down to the next attempt and the typed line waits in the outbox."""
    freeze_clock(monkeypatch.setattr)
    port = free_port()
    assert snap_compare(conversation_app(port), terminal_size=SIZE,
                        run_before=lambda pilot: play_conversation(pilot, port, outage=True))
