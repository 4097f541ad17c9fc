"""How the log tells days apart: a line where each day starts, and, while the top of the
view is on another day than today, that day's name in the log's border."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

import tui_chat.render
from tests.apptools import fill_backlog, log_text, make_app, online, type_line, until
from tests.helpers import JsonClient
from tui_chat.chat_log import ChatLog
from tui_chat_server import ChatServer

DAY_MS = 86_400_000
# Longer than any test here takes: one that starts this close to midnight (UTC) waits for it.
CLEAR_OF_MIDNIGHT = 60


@pytest.fixture(autouse=True)
async def same_day() -> None:
    """Each test runs within one day (UTC): what it names as today stays today."""
    to_midnight = 86_400 - time.time() % 86_400
    if to_midnight < CLEAR_OF_MIDNIGHT:
        await asyncio.sleep(to_midnight + 1)


async def room_with_days(start_server, tmp_path, days_ago: dict[int, list[str]]) -> ChatServer:
    """A server whose lobby holds the backlog `days_ago` (texts said that many days ago, in
    order of the days given), said by bob."""
    db = str(tmp_path / "history.db")
    server = await start_server(db=db)
    await fill_backlog(server.url + "/lobby", [text for texts in days_ago.values() for text in texts])
    await server.stop()
    with sqlite3.connect(db) as connection:
        for days, texts in days_ago.items():
            connection.executemany("UPDATE messages SET ts = ts - ? WHERE text = ?",
                                   [(days * DAY_MS, text) for text in texts])
    return await start_server(db=db)


def day_of(days_ago: int) -> str:
    """`Friday 20 November 2026`, `days_ago` days before today (UTC)."""
    return time.strftime("%A %-d %B %Y", time.gmtime(time.time() - days_ago * 86_400))


async def test_a_backlog_from_earlier_days_is_headed_by_its_days(start_server, tmp_path,
                                                                   zone) -> None:
    """Joining a room whose backlog reaches back days shows a line naming each day where it
    starts, then today's, before what is said today."""
    zone("UTC")
    server = await room_with_days(start_server, tmp_path,
                                  {2: ["long ago", "also long ago"], 1: ["yesterday"]})
    app = make_app(server.url + "/lobby", "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        text = log_text(app)
        order = [f"── {day_of(2)} ──", "bob long ago", "bob also long ago",
                 f"── {day_of(1)} ──", "bob yesterday", f"── {day_of(0)} ──", "You joined lobby"]
        positions = [text.find(piece) for piece in order]
        assert -1 not in positions and positions == sorted(positions), text
        assert text.count("──") == 6
        assert app.query_one(ChatLog).border_title == ""  # the top row is a day line


async def test_the_border_names_the_day_at_the_top_of_the_view_unless_it_is_today(
        start_server, tmp_path, zone) -> None:
    """Scrolled up into yesterday, the border names yesterday, unless yesterday's own day
    line is the top row; at the end, among today's lines, it names no day."""
    zone("UTC")
    server = await room_with_days(start_server, tmp_path,
                                  {1: [f"yesterday {number}" for number in range(20)]})
    app = make_app(server.url + "/lobby", "alice")
    async with app.run_test(size=(100, 14)) as pilot:
        await online(pilot)
        log = app.query_one(ChatLog)
        assert log.border_title == day_of(1)  # the last of yesterday's lines are on top
        bob = await JsonClient.connect(server.url + "/lobby", "bob")
        for number in range(20):
            await bob.say(f"today {number}", cid=f"t{number}")
        await until(pilot, lambda: "today 19" in log_text(app))
        await until(pilot, lambda: log.scroll_y == log.max_scroll_y and log.border_title == "")
        log.scroll_to(y=1, animate=False, immediate=True)
        await pilot.pause()
        assert log.render_line(0).text.rstrip().endswith("bob yesterday 0")
        assert log.border_title == day_of(1)
        log.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        assert log.render_line(0).text.rstrip() == f"── {day_of(1)} ──" and log.border_title == ""
        await bob.close()


async def test_the_day_of_lines_whose_day_line_the_scrollback_dropped_is_still_named(
        start_server, tmp_path, zone) -> None:
    """When the scrollback drops a day's line but keeps some of that day's messages, the
    border names their day, and still does after the log is wrapped again to a new width."""
    zone("UTC")
    server = await room_with_days(start_server, tmp_path, {
        2: [f"long ago {number}" for number in range(4)], 1: ["yesterday"]})
    app = make_app(server.url + "/lobby", "alice", scrollback=6)
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        log = app.query_one(ChatLog)
        rows = log_text(app).splitlines()
        assert len(rows) == 6 and rows[0].endswith("bob long ago 2"), rows
        assert log.border_title == day_of(2)
        await pilot.resize_terminal(90, 30)
        await until(pilot, lambda: log.scrollable_content_region.width < 90)
        assert log_text(app).splitlines()[0].endswith("bob long ago 2")
        assert log.border_title == day_of(2)


async def test_a_log_that_ran_past_midnight_names_the_day_its_first_lines_are_from(
        url, zone, monkeypatch) -> None:
    """A log that started today has no day line for its first day; after midnight, its
    lines from before are the day before, and the border says which day that was."""
    zone("UTC")
    app = make_app(url, "alice")
    async with app.run_test(size=(100, 30)) as pilot:
        await online(pilot)
        log = app.query_one(ChatLog)
        assert log.border_title == ""
        tomorrow = time.time() * 1000 + DAY_MS
        monkeypatch.setattr(tui_chat.render, "now_ms", lambda: int(tomorrow))
        await type_line(pilot, "/who")
        await until(pilot, lambda: "──" in log_text(app))
        assert log.border_title == day_of(0)
        await type_line(pilot, "/clear")
        await until(pilot, lambda: log_text(app) == "")
        assert log.border_title == ""
