"""Helpers for driving the real ChatApp with Pilot: wait for conditions, read the screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from tui_chat.app import ChatApp
from tui_chat.chat_input import ChatInput
from tui_chat.updates import Backoff, State
from tui_chat.chat_log import ChatLog
from tui_chat.widgets import Outbox, UserList
from tests.helpers import JsonClient

SIZE = (100, 30)


def make_app(url: str, nick: str, **options) -> ChatApp:
    """A ChatApp that retries fast, as tests need."""
    options.setdefault("backoff", Backoff(first=0.05, cap=0.2))
    return ChatApp(url, nick, **options)


def log_text(app: ChatApp) -> str:
    """Everything the message log shows, as plain text."""
    return app.query_one(ChatLog).text()


def drawn_on(app: ChatApp, background) -> list[str]:
    """The text the log draws on `background` (a Rich colour), one entry per row on screen
    that has any."""
    log = app.query_one(ChatLog)
    rows = ["".join(segment.text for segment in log.render_line(y)
                    if segment.style and segment.style.bgcolor == background)
            for y in range(log.scrollable_content_region.height)]
    return [row for row in rows if row]


def users_text(app: ChatApp) -> str:
    return str(app.query_one(UserList).names())


def user_rows_in_view(app: ChatApp) -> list[str]:
    """The rows of the user list that are on screen, as it is scrolled."""
    users = app.query_one(UserList)
    return [users.render_line(y).text.strip() for y in range(users.size.height)]


async def until(pilot: Pilot, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until `predicate()` holds."""
    async def wait() -> None:
        while not predicate():
            await pilot.pause(0.02)
    try:
        await asyncio.wait_for(wait(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out; log was:\n{log_text(pilot.app)}") from None


async def online(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.state is State.ONLINE)


async def type_line(pilot: Pilot, text: str) -> None:
    """Type `text` into the input and press Enter."""
    chat_input = pilot.app.query_one(ChatInput)
    chat_input.focus()
    chat_input.value = text
    chat_input.cursor_position = len(text)
    await pilot.press("enter")


def outbox(app: ChatApp) -> tuple:
    return app.query_one(Outbox).pending


def farewells(app: ChatApp) -> list[str]:
    """A list that will hold the message the app exits with (what the terminal shows after
    it), once it exits."""
    said: list[str] = []
    quit_saying = app.quit_saying

    def recorded(text: str | None, return_code: int = 0) -> None:
        said.append(str(text))
        quit_saying(text, return_code)

    app.quit_saying = recorded  # type: ignore[method-assign]
    return said


async def fill_backlog(url: str, texts: list[str]) -> None:
    """Say each text in the room as bob, who then leaves (the room keeps the backlog)."""
    bob = await JsonClient.connect(url, "bob")
    for number, text in enumerate(texts):
        await bob.say(text, cid=f"fill{number}")
    await bob.close()
