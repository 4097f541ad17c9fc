"""A real conversation for snapshots and README screenshots: a server, several participants
of both dialects, a join, an action, a rename, and the app under test as `alice`."""

from __future__ import annotations

import os
import socket
import time

from textual.pilot import Pilot

import tui_chat_server.history
import tui_chat.render
from tui_chat_server import ChatServer, ServerConfig
from tests.apptools import log_text, make_app, online, type_line, until
from tests.helpers import JsonClient, PlainClient
from tui_chat.chat_input import ChatInput
from tui_chat.app import ChatApp

SHOWN_ADDRESS = "127.0.0.1:8765"
START_MS = 1_763_717_400_000  # 09:30 UTC: every timestamp on screen is the same on every run
SIZE = (110, 30)


def freeze_clock(patch) -> None:
    """Make every timestamp deterministic: UTC, and a wall clock stopped at START_MS for the
    server and the app alike. `patch(module, name, value)` sets an attribute."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    patch(tui_chat_server.history, "now_ms", lambda: START_MS)
    patch(tui_chat.render, "now_ms", lambda: START_MS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def conversation_app(port: int) -> ChatApp:
    return make_app(f"ws://127.0.0.1:{port}/lobby", "alice", address=SHOWN_ADDRESS, keep_outbox=False)


async def play_conversation(pilot: Pilot, port: int, *, outage: bool = False) -> None:
    """Start the server in the app's loop and hold a conversation; with `outage`, end with the
    server gone and a message waiting to be delivered."""
    chat_server = ChatServer(ServerConfig(port=port, db=":memory:"))
    await chat_server.start()
    app = pilot.app
    app.query_one(ChatInput).cursor_blink = False  # else the cursor is caught on or off
    await online(pilot)
    lobby = chat_server.url + "/lobby"
    bob = await JsonClient.connect(lobby, "bob")
    await bob.say("morning! did the deploy go out?")
    await type_line(pilot, "yes, 10 minutes ago: [all green] *so far*")
    await until(pilot, lambda: "[all green]" in log_text(app))
    carol = await PlainClient.connect(lobby, "carol")
    await carol.send("nice work 🎉 (I'm on wscat)")
    await until(pilot, lambda: "nice work" in log_text(app))
    await type_line(pilot, "/me raises a coffee ☕")
    await until(pilot, lambda: "raises a coffee" in log_text(app))
    dave = await JsonClient.connect(lobby, "dave")
    await dave.send(type="nick", nick="dave_ops")
    await until(pilot, lambda: "dave is now known as dave_ops." in log_text(app))
    await bob.send(type="say", text="alice: I'll write the release notes", cid="notes")
    await until(pilot, lambda: "release notes" in log_text(app))
    if outage:
        await chat_server.stop()
        await until(pilot, lambda: "Reconnecting" in log_text(app))
        await type_line(pilot, "is the server restarting?")
        await pilot.pause(0.2)
    await pilot.pause(0.1)
