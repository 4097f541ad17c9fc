"""How the log and the outbox are laid out on screen: tabs, wrapping, resizing, following."""

from __future__ import annotations

from tui_chat_server import ChatServer, ServerConfig
from tests.apptools import (
    fill_backlog, log_text, make_app, online, outbox, type_line, until, user_rows_in_view,
)
from tui_chat.chat_input import ChatInput
from tui_chat.app import ChatApp
from tui_chat.chat_log import ChatLog
from tui_chat.render import system_line
from tui_chat.widgets import Outbox, UserList

WORDS = " ".join(f"word{number:02}" for number in range(30))


def log_of(app: ChatApp) -> ChatLog:
    return app.query_one(ChatLog)


def shown_rows(app: ChatApp) -> list[str]:
    """The log's rows as the screen draws them (only what is in view)."""
    log = log_of(app)
    return [log.render_line(y).text for y in range(log.scrollable_content_region.height)]


def assert_rows_fit(app: ChatApp) -> None:
    """Every row of the log fits its width: nothing is cut off or drawn past the border."""
    log = log_of(app)
    width = log.scrollable_content_region.width
    for strip in log.lines:
        assert "\t" not in strip.text, f"a raw tab is drawn: {strip.text!r}"
        assert strip.cell_length <= width, f"{strip.cell_length} > {width}: {strip.text!r}"
    assert not log.show_horizontal_scrollbar
    assert log.virtual_size.width <= width


async def test_tabs_are_shown_as_spaces_and_wrap_inside_the_log(url, join) -> None:
    """A message with tabs is shown with tabs expanded to spaces, every letter inside the log."""
    app = make_app(url, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        mallory = await join("mallory")
        letters = "abcdefghijklmn"
        await mallory.say("\t".join(letters))
        await mallory.say("short\ttab")
        await until(pilot, lambda: "short" in log_text(app))
        assert_rows_fit(app)
        text = log_text(app)
        assert all(f" {letter}" in text for letter in letters[1:]), text
        assert "mallory short     tab" in text  # "HH:MM mallory short" + a tab: 24 columns


async def test_rows_a_long_message_wraps_onto_are_indented_under_its_nickname(
        url, join) -> None:
    """A message that wraps cannot pass for a notice (or someone else's line): every row it
    wraps onto starts under the nickname, in ASCII and in wide characters alike."""
    app = make_app(url, "alice")
    async with app.run_test(size=(80, 30)) as pilot:
        await online(pilot)
        mallory = await join("mallory")
        fake = "12:00 — alice has left the chat."
        await mallory.say("x" * 50 + " " + fake)
        await mallory.say("名前" * 20 + " " + fake)
        await until(pilot, lambda: log_text(app).count("has left") == 2)
        wrapped = [row for row in log_text(app).splitlines() if "has left" in row]
        assert len(wrapped) == 2 and all(row.startswith(" " * 6) for row in wrapped), wrapped
        assert_rows_fit(app)


async def test_the_log_rewraps_when_the_terminal_is_resized(url, join) -> None:
    """Narrowing and widening the terminal re-wraps every line; no word is ever hidden."""
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say(WORDS)
        await bob.say("é" * 60 + " 漢字" * 40)
        await until(pilot, lambda: "漢字" in log_text(app))
        wide_rows = len(log_of(app).lines)
        for width in (70, 45, 120):
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.1)
            assert_rows_fit(app)
            assert "".join(log_text(app).split()).count("漢字") == 40  # may break between them
            assert all(word in log_text(app).split() for word in WORDS.split())
            assert all(word in " ".join(shown_rows(app)).split() for word in WORDS.split())
            if width == 70:
                assert len(log_of(app).lines) > wide_rows
        assert len(log_of(app).lines) == wide_rows


async def test_scrolled_up_a_resize_keeps_the_line_at_the_top_of_the_view(url, join) -> None:
    """Reading further up, narrowing or widening the terminal keeps the line at the top of
    the view there (lines above it wrap onto more or fewer rows, which would move it)."""
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 30)) as pilot:
        await online(pilot)
        bob = await join("bob")
        for number in range(80):
            await bob.say(f"line {number:02} " + WORDS[: 40 + number * 3 % 150])
        await until(pilot, lambda: "line 79" in log_text(app))
        log = log_of(app)
        await pilot.pause(0.1)
        y = log.max_scroll_y // 2
        while True:  # up to a row that starts a line
            log.scroll_to(y=y, animate=False, immediate=True)
            await pilot.pause(0.05)
            top = shown_rows(app)[0]
            if " bob line " in top:
                break
            y -= 1
        assert " bob line " in top, top
        line = top.split(" bob ")[1][:7]  # "line NN"
        for width in (70, 45, 100, 120):
            await pilot.resize_terminal(width, 30)
            await pilot.pause(0.1)
            assert f" bob {line} " in shown_rows(app)[0], (width, shown_rows(app)[:2])
            assert not log.following
        log._width += 1  # lines arrive before the log has seen a new width: it wraps anew
        log.write_lines([system_line(f"meanwhile {number}") for number in range(5)])
        await pilot.pause(0.1)
        assert f" bob {line} " in shown_rows(app)[0], shown_rows(app)[:2]


async def test_the_backlog_follows_the_end_and_uses_the_width_beside_the_scrollbar(url) -> None:
    """After joining a full backlog the newest lines are in view, and the rows written before
    the scrollbar appeared keep their last column (ASCII, accented and CJK alike)."""
    texts = [f"backlog {number} " + ("x" * 100 if number % 3 == 0 else
                                       "é" * 95 if number % 3 == 1 else "漢" * 50)
             for number in range(60)]
    await fill_backlog(url, texts)
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 35)) as pilot:
        await online(pilot)
        await pilot.pause(0.2)
        log = log_of(app)
        assert log.max_scroll_y > 0
        assert log.scroll_y == log.max_scroll_y == log.vertical_scrollbar.position
        assert "You joined lobby as alice" in shown_rows(app)[-1]
        assert_rows_fit(app)
        for number in range(10, 60):  # every character of every backlog line is in the log
            assert texts[number].split()[-1] in log_text(app).replace("\n      ", "")


async def test_the_log_keeps_following_new_lines_after_the_backlog(url, join) -> None:
    """After a full backlog the view follows what arrives, and stays put once scrolled up."""
    await fill_backlog(url, [f"old {number}" for number in range(50)])
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 35)) as pilot:
        await online(pilot)
        carol = await join("carol")
        await carol.say("fresh one")
        await until(pilot, lambda: "fresh one" in log_text(app))
        await pilot.pause(0.1)
        log = log_of(app)
        assert log.scroll_y == log.max_scroll_y
        assert "carol fresh one" in shown_rows(app)[-1]
        await pilot.press("pageup")
        await pilot.pause(0.1)
        held = log.scroll_y
        await carol.say("fresh two")
        await until(pilot, lambda: "fresh two" in log_text(app))
        await pilot.pause(0.1)
        assert log.scroll_y == held < log.max_scroll_y


async def test_scrolled_up_the_border_counts_new_lines_and_sending_returns_to_the_end(
        url, join) -> None:
    """While scrolled up the log's border counts the lines that arrived below; sending a
    message shows the end again, and the count goes."""
    await fill_backlog(url, [f"old {number}" for number in range(50)])
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 35)) as pilot:
        await online(pilot)
        carol = await join("carol")
        log = log_of(app)
        await until(pilot, lambda: "carol has joined" in log_text(app))
        assert log.border_subtitle == ""
        await pilot.press("pageup")
        await pilot.pause(0.1)
        await carol.say("below one")
        await carol.say("below two")
        await until(pilot, lambda: "below two" in log_text(app))
        assert log.border_subtitle == "↓ 2 new lines · Ctrl+End"
        assert log.scroll_y < log.max_scroll_y
        await type_line(pilot, "my answer")
        await until(pilot, lambda: "alice my answer" in log_text(app))
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y
        assert "alice my answer" in shown_rows(app)[-1]
        assert log.border_subtitle == ""


async def test_a_taller_terminal_that_shows_the_end_follows_it_again(url, join) -> None:
    """Scrolled to the top, a terminal grown until the whole log fits shows the end: the
    count of new lines goes, and what arrives next is followed."""
    await fill_backlog(url, [f"old {number}" for number in range(40)])
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 35)) as pilot:
        await online(pilot)
        log = log_of(app)
        await pilot.press("pageup", "pageup", "pageup")
        await pilot.pause(0.1)
        carol = await join("carol")
        await until(pilot, lambda: "carol has joined" in log_text(app))
        assert log.scroll_y == 0 and log.unseen == 1
        await pilot.resize_terminal(120, 80)
        await pilot.pause(0.2)
        assert log.following and log.border_subtitle == ""
        for number in range(40):
            await carol.say(f"new {number}")
        await until(pilot, lambda: "new 39" in log_text(app))
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y > 0 and log.unseen == 0


async def test_ctrl_end_returns_to_the_newest_line(url, join) -> None:
    """Ctrl+End, typed in the input, brings the log back to its end and follows again."""
    await fill_backlog(url, [f"old {number}" for number in range(50)])
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 35)) as pilot:
        await online(pilot)
        log = log_of(app)
        await pilot.press("pageup", "pageup")
        await pilot.pause(0.1)
        assert log.scroll_y < log.max_scroll_y and not log.following
        carol = await join("carol")
        await until(pilot, lambda: "carol has joined" in log_text(app))
        assert log.border_subtitle == "↓ 1 new line · Ctrl+End"
        await pilot.press("ctrl+end")
        await pilot.pause(0.1)
        assert log.scroll_y == log.max_scroll_y and log.following
        assert log.border_subtitle == ""
        await carol.say("seen at once")
        await until(pilot, lambda: "seen at once" in log_text(app))
        await pilot.pause(0.1)
        assert "carol seen at once" in shown_rows(app)[-1]


async def test_a_narrow_terminal_leaves_the_log_room(url) -> None:
    """At 40 columns the user list is hidden so the log has the width; it is back on a wide
    terminal."""
    app = make_app(url, "alice")
    async with app.run_test(size=(40, 20)) as pilot:
        await online(pilot)
        await type_line(pilot, WORDS)
        await until(pilot, lambda: "word29" in log_text(app))
        assert not app.query_one(UserList).display
        assert log_of(app).scrollable_content_region.width >= 30
        assert_rows_fit(app)
        await pilot.resize_terminal(110, 20)
        await pilot.pause(0.1)
        assert app.query_one(UserList).region.width == 26


async def test_a_user_list_longer_than_the_screen_scrolls_to_everyone(url, join) -> None:
    """With more people in the room than rows, the user list scrolls down to the last of
    them, and the input keeps the focus."""
    app = make_app(url, "alice")
    async with app.run_test(size=(100, 20)) as pilot:
        await online(pilot)
        for number in range(30):
            await join(f"user{number:02d}")
        users = app.query_one(UserList)
        await until(pilot, lambda: len(users.users) == 31)
        await pilot.pause(0.1)
        assert users.max_scroll_y == 31 - users.size.height > 0
        assert user_rows_in_view(app)[0].startswith("● alice")
        users.scroll_end(animate=False)
        await pilot.pause(0.1)
        assert user_rows_in_view(app)[-1] == "user29"
        assert isinstance(app.focused, ChatInput)


async def test_every_pending_message_is_shown_without_a_resize(start_server) -> None:
    """Four messages typed while the server is away appear as four rows under the log, whose
    last row stays in view above them."""
    first = await start_server()
    port = first.port
    await fill_backlog(f"{first.url}/lobby", [f"old {number}" for number in range(50)])
    app = make_app(f"ws://127.0.0.1:{port}/lobby", "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        await first.stop()
        await until(pilot, lambda: "reconnecting" in app.sub_title)
        pending = app.query_one(Outbox)
        for number in range(4):
            await type_line(pilot, f"pending {number}\twith a tab")
            await until(pilot, lambda: len(outbox(app)) == number + 1)
            await pilot.pause(0.05)
            assert pending.region.height == number + 1
        log = log_of(app)
        assert log.scroll_y == log.max_scroll_y > 0, "the log's last row stays above it"
        shown = [pending.render_line(y).text for y in range(pending.region.height)]
        assert [row.count("pending") for row in shown] == [1, 1, 1, 1]
        assert all("\t" not in row and "with a tab" in row for row in shown), shown
        for number in range(4, 8):  # more than fit: the last row counts the rest
            await type_line(pilot, f"pending {number} " + "long " * 40)
        await pilot.pause(0.05)
        shown = [pending.render_line(y).text for y in range(pending.region.height)]
        assert len(shown) == 5 and "and 4 more" in shown[-1], shown
        assert all(row.rstrip().endswith(("…", "tab", "more")) for row in shown), shown
        second = ChatServer(ServerConfig(port=port, db=":memory:", rate=0))
        await second.start()
        try:
            await until(pilot, lambda: outbox(app) == ())
            await pilot.pause(0.05)
            assert not pending.display
        finally:
            await app.client.stop()
            await second.stop()


async def test_a_change_of_theme_redraws_the_log_in_its_colours(url, join) -> None:
    """The log's rows (and its empty rows) take the new theme's background at once: the
    rows drawn before the change are not reused."""
    app = make_app(url, "alice")
    async with app.run_test(size=(80, 20)) as pilot:
        await online(pilot)
        await type_line(pilot, "before the change")
        await until(pilot, lambda: "alice before the change" in log_text(app))
        log = log_of(app)

        def backgrounds() -> set:
            return {segment.style.bgcolor for y in range(log.scrollable_content_region.height)
                    for segment in log.render_line(y) if segment.style is not None}

        dark = backgrounds()
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        light = backgrounds()
        assert light == {log.rich_style.bgcolor} and not light & dark


async def test_a_long_notice_wraps_under_its_text_too(url) -> None:
    """The app's own lines (here /help, on a narrow screen) wrap like messages: every row
    either starts with a time or is indented, so none can pass for a line of its own."""
    import re

    app = make_app(url, "alice")
    async with app.run_test(size=(50, 30)) as pilot:
        await online(pilot)
        await type_line(pilot, "/help")
        await until(pilot, lambda: "/quit" in log_text(app))
        rows = log_text(app).splitlines()
        assert len(rows) > 8  # the help wrapped
        assert all(re.match(r"\d\d:\d\d |      \S", row) for row in rows), rows


async def test_a_long_nickname_takes_one_row_of_the_user_list_cut_with_an_ellipsis(
        url, join) -> None:
    """A 23-letter name does not continue on the next row, where its tail would pass for
    another person: each person is one row, a name too long for it ends in '…'."""
    app = make_app(url, "alice")
    async with app.run_test(size=(120, 30)) as pilot:
        await online(pilot)
        await join("zzzzzzzzzzzzzzzzzzzzbob")
        users = app.query_one(UserList)
        await until(pilot, lambda: len(users.users) == 2)
        await pilot.pause(0.1)
        rows = [users.render_line(y).text.strip() for y in range(3)]
        assert rows[0].startswith("● alice") and rows[1].startswith("zzzz"), rows
        assert rows[1].endswith("…") and rows[2] == "", rows
