"""Selecting text in the log with the mouse, and what Ctrl+C copies."""

from __future__ import annotations

from textual.app import App
from textual.pilot import Pilot

from tests.apptools import drawn_on, log_text, make_app, online, until
from tui_chat.render import system_line
from tui_chat.chat_log import ChatLog


async def select(pilot: Pilot, log: ChatLog, start: tuple[int, int], end: tuple[int, int]) -> str:
    """Drag over the log's rows from `start` to `end` (column, row; inclusive) and copy;
    what was copied ("" if nothing was: the clipboard is emptied first)."""
    pilot.app.copy_to_clipboard("")
    inset = log.scrollable_content_region.offset - log.region.offset
    await pilot.mouse_down(log, offset=(inset.x + start[0], inset.y + start[1]))
    await pilot.hover(log, offset=(inset.x + end[0], inset.y + end[1]))
    await pilot.mouse_up(log, offset=(inset.x + end[0], inset.y + end[1]))
    await pilot.press("ctrl+c")
    return pilot.app.clipboard


def drawn_selected(app: App) -> list[str]:
    """The text of each row on screen that is drawn in the selection's colours."""
    return drawn_on(app, app.screen.get_component_rich_style("screen--selection").bgcolor)


async def test_text_selected_with_the_mouse_is_drawn_selected_and_copied(url, join) -> None:
    """Dragging across a link in someone's line highlights exactly it, and Ctrl+C copies it
    (the input keeps the focus); a selection over two messages copies both, a line each,
    to the character under the mouse among wide ones."""
    app = make_app(url, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say("see https://example.org/release-notes for details")
        await bob.say("second 日本語 line")
        await until(pilot, lambda: "second" in log_text(app))
        log = app.query_one(ChatLog)
        rows = log_text(app).splitlines()
        row = next(index for index, text in enumerate(rows) if "release-notes" in text)
        start = rows[row].index("https://")
        link = "https://example.org/release-notes"
        assert await select(pilot, log, (start, row), (start + len(link) - 1, row)) == link
        assert drawn_selected(app) == [link]
        # to 本, after the two cells of 日, on the next message's row
        copied = await select(pilot, log, (start, row), (19, row + 1))
        assert copied == link + " for details\n" + rows[row + 1][:19]


async def test_a_wrapped_link_or_message_is_copied_as_it_was_written(url, join) -> None:
    """What the log adds is not copied: a link wrapped over rows comes back whole, a
    multi-line message without its indent, and a long notice without its breaks."""
    link = "https://example.org/" + "a-very-long-path/" * 6 + "end"
    app = make_app(url, "alice")
    async with app.run_test(size=(70, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say(f"read {link} now")
        await bob.say("first line\nsecond line")
        log = app.query_one(ChatLog)
        await until(pilot, lambda: "end now" in log_text(app) and "second" in log_text(app))
        log.write_lines([system_line("Others join with: tui-chat " + link)])
        await until(pilot, lambda: log_text(app).rstrip().endswith("end"))
        rows = log_text(app).splitlines()
        top = next(index for index, text in enumerate(rows) if "https://" in text)
        bottom = next(index for index, text in enumerate(rows) if "end now" in text)
        assert bottom > top + 1  # the link takes three rows
        start = rows[top].index("https://")
        assert await select(pilot, log, (start, top), (rows[bottom].index("end") + 2,
                                                       bottom)) == link
        first = next(index for index, text in enumerate(rows) if "first line" in text)
        assert await select(pilot, log, (rows[first].index("first"), first),
                            (len(rows[first + 1]) - 1, first + 1)) == "first line\nsecond line"
        notice = next(index for index, text in enumerate(rows) if "Others join" in text)
        copied = await select(pilot, log, (rows[notice].index("tui-chat"), notice),
                              (len(rows[-1]) - 1, len(rows) - 1))
        assert copied == "tui-chat " + link


async def test_a_selection_stays_on_its_text_while_the_scrollback_drops_rows(url, join) -> None:
    """At the scrollback limit every new line drops a row from the top: what was selected
    is still what is highlighted and copied."""
    app = make_app(url, "alice", scrollback=12)
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        for number in range(12):
            await bob.say(f"line {number}")
        await until(pilot, lambda: "line 11" in log_text(app))
        log = app.query_one(ChatLog)
        rows = log_text(app).splitlines()
        row = rows.index(next(text for text in rows if text.endswith("line 8")))
        assert await select(pilot, log, (0, row), (len(rows[row]) - 1, row)) == rows[row]
        for number in range(12, 15):
            await bob.say(f"line {number}")
        await until(pilot, lambda: "line 14" in log_text(app))
        assert app.screen.get_selected_text() == rows[row]
        assert drawn_selected(app) == [rows[row]]


async def test_clearing_or_resizing_the_log_drops_the_selection(url, join) -> None:
    """Ctrl+L, or a new width that wraps the log again, leaves nothing selected to copy."""
    app = make_app(url, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say("something worth copying")
        await until(pilot, lambda: "worth" in log_text(app))
        log = app.query_one(ChatLog)
        assert await select(pilot, log, (0, 0), (10, 1))
        await pilot.resize_terminal(80, 30)
        await pilot.pause()
        assert not app.screen.get_selected_text()
        assert await select(pilot, log, (0, 0), (10, 1))
        await pilot.press("ctrl+l")
        await bob.say("after the clear")
        await until(pilot, lambda: "after the clear" in log_text(app))
        assert not app.screen.get_selected_text()


async def test_a_multi_line_message_copies_without_the_indent_whatever_it_holds(url,
                                                                            join) -> None:
    """The indent of a message's later lines is left out also when a tab among non-ASCII
    text makes the log lay it out another way, and a line that starts with a long link
    copies as the link (no row of spaces before it)."""
    link = "https://example.org/" + "x" * 70
    app = make_app(url, "alice")
    async with app.run_test(size=(70, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say("café:\nx = 1\ty")
        await bob.say(f"look:\n{link}")
        await until(pilot, lambda: "xxxx" in log_text(app))
        log = app.query_one(ChatLog)
        rows = log_text(app).splitlines()
        assert all(text.strip() for text in rows)  # no row of spaces only
        cafe = next(index for index, text in enumerate(rows) if "café" in text)
        copied = await select(pilot, log, (rows[cafe].index("café"), cafe),
                              (len(rows[cafe + 1]) - 1, cafe + 1))
        first, second = copied.split("\n")  # the tab as the spaces it is drawn as
        assert first == "café:" and second.startswith("x = 1 ") and second.endswith(" y")
        look = next(index for index, text in enumerate(rows) if "look:" in text)
        copied = await select(pilot, log, (rows[look].index("look"), look),
                              (len(rows[-1]) - 1, len(rows) - 1))
        assert copied == f"look:\n{link}"
