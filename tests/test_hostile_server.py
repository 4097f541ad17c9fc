"""A deliberately hostile server cannot style, act, or reach the terminal through the app."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from websockets.asyncio.server import serve

from tests.apptools import SIZE, log_text, make_app, online, until, users_text
from tui_chat.app import ChatApp
from tui_chat.chat_log import ChatLog
from tui_chat.protocol import SUBPROTOCOL

MARKUP = "[@click=app.quit]x[/] [bold]y[/bold] [/]"
HOSTILE_FRAMES = [
    {"type": "welcome", "nick": "alice", "room": "lobby", "epoch": "e",
     "users": ["alice", "m\x1b[31mallory", "[b]x[/b]"],
     "history": [{"id": 1, "ts": 0, "nick": "mallory", "text": MARKUP}]},
    {"type": "message", "id": 2, "ts": 0, "nick": "m\x1b]0;pwned\x07allory",
     "text": "clip\x1b]52;c;ZXZpbA==\x07board \x1b[2J\x1b[Hwipe \x9b31mred\u202eevil"},
    "this is not json",
    {"type": "message", "id": 3, "ts": 0, "nick": "mallory", "text": 42},
    {"type": "nonsense"},
    {"type": "presence", "event": "join", "nick": "[red]eve[/red]", "users": ["alice", "[red]eve[/red]"]},
    {"type": "message", "id": 4, "ts": 0, "nick": "evil\n[Server]\r\u2028x", "text": "fake"},
    {"type": "message", "id": 5, "ts": 0, "nick": "mallory", "text": "still standing"},
]


@asynccontextmanager
async def app_served_by(handler) -> AsyncIterator[tuple[ChatApp, Pilot]]:
    """The app, as alice, connected to a fake server that runs `handler` per connection."""
    async with serve(handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        app = make_app(f"ws://127.0.0.1:{port}/lobby", "alice")
        async with app.run_test(size=SIZE) as pilot:
            yield app, pilot


async def hostile_handler(connection) -> None:
    await connection.recv()  # the hello
    for frame in HOSTILE_FRAMES:
        await connection.send(frame if isinstance(frame, str) else json.dumps(frame))
    await connection.wait_closed()


async def test_a_hostile_server_changes_nothing_but_its_own_lines() -> None:
    """Markup stays literal, escape codes never reach the screen, bad frames are skipped, and
    a nickname with line breaks stays on one line (it cannot start a row of its own)."""
    async with app_served_by(hostile_handler) as (app, pilot):
        await online(pilot)
        await until(pilot, lambda: "still standing" in log_text(app))
        shown = log_text(app)
        assert MARKUP in shown
        assert "mallory clipboard wipe redevil" in shown
        assert "[red]eve[/red] has joined the chat." in shown
        assert "[red]eve[/red]" in users_text(app)
        assert "evil [Server]  x fake" in shown
        segments = [seg.text for strip in app.query_one(ChatLog).lines for seg in strip]
        assert not any(ch in text for text in segments for ch in "\x1b\x07\x9b\u202e")
        assert all(seg.control is None for strip in app.query_one(ChatLog).lines for seg in strip)
        await pilot.click("ChatLog")
        assert app.is_running
        await app.client.stop()


HOSTILE_REASON = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred"


def welcome_with(**changes) -> str:
    """A welcome for alice in an empty lobby, with `changes`."""
    welcome = {"type": "welcome", "nick": "alice", "room": "lobby", "users": ["alice"],
               "epoch": "e", "history": []}
    return json.dumps({**welcome, **changes})


async def close_with_escapes(connection) -> None:
    """Welcome the client, then close with escape codes as the close frame's reason."""
    await connection.recv()  # the hello
    await connection.send(welcome_with())
    await connection.close(4001, HOSTILE_REASON)


async def test_a_close_reason_cannot_put_escape_codes_in_the_log() -> None:
    """The close frame's reason, shown in 'Disconnected: ...', is cleaned like every other
    string a server sends."""
    async with app_served_by(close_with_escapes) as (app, pilot):
        await until(pilot, lambda: "Disconnected" in log_text(app))
        segments = [seg.text for strip in app.query_one(ChatLog).lines for seg in strip]
        await app.client.stop()
        assert not any("\x1b" in text or "\x07" in text for text in segments)
        assert "(code 4001: red)" in log_text(app)


async def test_tail_does_not_write_a_servers_escape_codes_to_the_terminal() -> None:
    """`tui-chat tail` says on stderr (a terminal) why it reconnects: without the escape
    codes a server put in its close reason."""
    async with serve(close_with_escapes, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui_chat", "tail", f"ws://127.0.0.1:{port}/lobby",
            "--nick", "alice", stderr=asyncio.subprocess.PIPE)
        assert process.stderr is not None
        try:
            line = await asyncio.wait_for(process.stderr.readline(), 20)
        finally:
            process.kill()
            await process.wait()
        assert b"closed by the server (code 4001: red)" in line
        assert b"\x1b" not in line and b"\x07" not in line


async def test_a_welcome_with_a_message_it_cannot_read_still_joins() -> None:
    """History holding a message of a kind from a newer server, or a time out of range,
    leaves out that message, not the welcome: before, the app stayed 'joining' for ever."""
    async def handler(connection) -> None:
        await connection.recv()  # the hello
        await connection.send(welcome_with(history=[
            {"id": 1, "ts": 0, "nick": "bob", "text": "readable"},
            {"id": 2, "ts": 0, "nick": "bob", "text": "new kind", "kind": "poll"},
            {"id": 3, "ts": -5, "nick": "bob", "text": "bad time"}]))
        await connection.wait_closed()

    async with app_served_by(handler) as (app, pilot):
        await online(pilot)
        await until(pilot, lambda: "bob readable" in log_text(app))
        await app.client.stop()
        assert "new kind" not in log_text(app) and "bad time" not in log_text(app)


async def test_a_welcome_it_cannot_read_at_all_is_said_not_waited_for() -> None:
    """A welcome missing what this app needs ends the connection with a reason, instead of
    being skipped while the app waits for a welcome for ever."""
    async def handler(connection) -> None:
        await connection.recv()  # the hello
        await connection.send(welcome_with(room=7))
        await connection.wait_closed()

    async with app_served_by(handler) as (app, pilot):
        await until(pilot, lambda: "welcome could not be read" in log_text(app))
        await app.client.stop()
        text = " ".join(log_text(app).split())
        assert "the server's welcome could not be read (In 'welcome', 'room' must be a string.):" \
               " is the server a newer tui-chat?" in text
