"""The app on a small terminal: the log and the input keep their place, the header its state."""

from __future__ import annotations

from tests.apptools import make_app, type_line, until
from tui_chat.chat_input import ChatInput
from tui_chat.chat_log import ChatLog
from tui_chat.widgets import Outbox


async def test_on_a_short_terminal_pending_messages_leave_room_for_the_log_and_the_input(
        unused_port) -> None:
    """Ten rows high, six messages waiting take one row between them, and the input and a
    row of the log stay on screen; on a tall terminal they are listed again."""
    app = make_app(f"ws://127.0.0.1:{unused_port}/lobby", "alice", keep_outbox=False)
    async with app.run_test(size=(60, 10)) as pilot:
        for number in range(6):
            await type_line(pilot, f"short {number}")
        outbox = app.query_one(Outbox)
        await until(pilot, lambda: len(app.client.outbox) == 6 and outbox.region.height == 1)
        assert str(outbox.render()) == "⧗ 6 messages waiting for the connection"
        chat_input, log = app.query_one(ChatInput), app.query_one(ChatLog)
        assert chat_input.region.bottom <= app.screen.region.bottom - 1  # above the footer
        assert chat_input.region.height == 3
        assert log.scrollable_content_region.height >= 1
        await pilot.resize_terminal(60, 30)
        await until(pilot, lambda: outbox.region.height == 5)
        rows = str(outbox.render()).splitlines()
        assert rows[0] == "⧗ waiting for the connection: short 0" and rows[-1] == "⧗ and 2 more"


async def test_on_a_narrow_terminal_a_long_room_name_gives_way_to_the_connection_state(
        unused_port) -> None:
    """The header shortens a long room name rather than cut off whether the app is online,
    and shows it whole again once there is room."""
    room = "abcdefghijklmnopqrstuvwxyz012345"
    app = make_app(f"ws://127.0.0.1:{unused_port}/{room}", "alice", keep_outbox=False)
    async with app.run_test(size=(40, 20)) as pilot:
        await until(pilot, lambda: app.sub_title.startswith("retrying"))
        state = app.sub_title.split(" · ")[0]
        header = str(app.format_title(app.title, app.sub_title))
        assert header.startswith("#abcd") and "…" in app.title
        assert len(f"{app.title} — {state}") <= 40 - 2, header  # (the title's padding)
        await pilot.resize_terminal(120, 20)
        await until(pilot, lambda: app.title == f"#{room}")
