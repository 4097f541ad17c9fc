"""Shared fixtures: real servers on free ports, clients that connect to them, a time zone."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tui_chat_server import ChatServer, ServerConfig
from tui_chat_server.accounts import Accounts
from tests.helpers import JsonClient, PlainClient, Recorder
from tui_chat.client import ChatClient
from tui_chat.updates import Backoff

FAST = dict(first=0.05, cap=0.2)  # reconnect delays for tests


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory, monkeypatch) -> None:
    """Keep every test's history database and client outbox out of the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def zone():
    """Set the process's time zone for one test (`zone("Europe/Berlin")`), then put it back."""
    saved = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Awaitable[ChatServer]]]:
    """Start real servers on port 0 with any config overrides; all are stopped afterwards.
    Unless a test says otherwise: history in memory, and no rate or per-address limit (tests
    send bursts from one address; the limits have tests of their own)."""
    servers: list[ChatServer] = []

    async def start(**overrides: object) -> ChatServer:
        for name, value in (("db", ":memory:"), ("rate", 0), ("max_per_ip", 0)):
            overrides.setdefault(name, value)
        server = ChatServer(ServerConfig(**{"port": 0, **overrides}))  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def chat_server(start_server) -> ChatServer:
    """One real server with default settings."""
    return await start_server()


@pytest.fixture
async def url(chat_server: ChatServer) -> str:
    """The URL of the lobby on the default server."""
    return chat_server.url + "/lobby"


@pytest.fixture
def server_log(caplog) -> None:
    """The server's log lines from INFO up are captured (`caplog`) for the test to read."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")


@pytest.fixture
def every_log_line(caplog) -> None:
    """Every log line of every logger, DEBUG included, is captured: for tests that check
    what never reaches a log (tokens, passwords), wherever it might be written."""
    caplog.set_level(logging.DEBUG)


@pytest.fixture
async def clients() -> AsyncIterator[list]:
    """Collects clients so each test's connections are closed at its end."""
    opened: list = []
    yield opened
    await asyncio.gather(*(client.close() for client in opened))


@pytest.fixture
def join(url: str, clients: list) -> Callable[..., Awaitable[JsonClient]]:
    """Connect a JSON client to the lobby (or `path`) and say hello as `nick`."""

    async def connect(nick: str | None, path: str | None = None, **hello: object) -> JsonClient:
        target = url if path is None else url.rsplit("/", 1)[0] + path
        client = await JsonClient.connect(target, nick, **hello)
        clients.append(client)
        return client

    return connect


@pytest.fixture
def join_plain(url: str, clients: list) -> Callable[..., Awaitable[PlainClient]]:
    """Connect a plain-text client to the lobby (or `path`) and send `nick` as its first line."""

    async def connect(nick: str | None, path: str | None = None) -> PlainClient:
        target = url if path is None else url.rsplit("/", 1)[0] + path
        client = await PlainClient.connect(target, nick)
        clients.append(client)
        return client

    return connect


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (bound a moment ago, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def run_client():
    """Run headless ChatClients (fast reconnects unless told otherwise), each reporting to a
    Recorder; all are stopped afterwards."""
    tasks: list[tuple[ChatClient, asyncio.Task]] = []

    def start(url: str, nick: str, **options) -> tuple[ChatClient, Recorder]:
        recorder = Recorder()
        options.setdefault("backoff", Backoff(**FAST))
        client = ChatClient(url, nick, recorder, **options)
        tasks.append((client, asyncio.create_task(client.run())))
        return client, recorder

    yield start
    for client, task in tasks:
        await client.stop()
        await asyncio.wait_for(task, 5)


@pytest.fixture
def accounts_db(tmp_path) -> str:
    """A database where alice is a registered nickname (password "correct horse")."""
    path = str(tmp_path / "chat.db")
    accounts = Accounts(path)
    accounts.add("alice", "correct horse")
    accounts.close()
    return path
