"""The server on a loop that starts tasks eagerly: Textual's app loop on Python 3.12+,
which is where `tui-chat --serve` runs it."""

from __future__ import annotations

import asyncio

import pytest

from tests.eager import eager_task_factory
from tests.helpers import JsonClient, PlainClient


@pytest.fixture
async def eager_loop():
    """This test's loop starts every task eagerly."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    loop.set_task_factory(eager_task_factory)
    yield
    loop.set_task_factory(previous)


@pytest.mark.parametrize("db", [":memory:", "file"])
async def test_every_message_is_stored_and_delivered_on_an_eager_loop(
        eager_loop, start_server, tmp_path, db: str) -> None:
    """A task that finishes before create_task returns must not be taken for one still
    running: every frame of every client is handled, and every message stored, in order."""
    server = await start_server(db=str(tmp_path / "chat.db") if db == "file" else db)
    lobby = server.url + "/lobby"
    bob = await JsonClient.connect(lobby, "bob")
    carol = await PlainClient.connect(lobby, "carol")
    for number in range(3):
        echo = await bob.say(f"json {number}", cid=f"c{number}")
        assert (echo["id"], echo["text"]) == (number + 1, f"json {number}")
        assert await carol.recv() == f"[bob]: json {number}"
    for number in range(2):
        await carol.send(f"plain {number}")
        while (event := await bob.recv())["type"] != "message":
            pass
        assert (event["nick"], event["text"]) == ("carol", f"plain {number}")
    await bob.close()
    await carol.close()
