"""What a server stop keeps: no frame handler outlives it, and every line a raw client sent is stored."""

from __future__ import annotations

import asyncio
import logging
import sqlite3


from tests.helpers import PlainClient, eventually
from tui_chat_server.transport import FEED, INBOX_HIGH


def stored_texts(db: str) -> list[str]:
    """Every message text in the database file `db`, in id order (all pages of it)."""
    with sqlite3.connect(db) as database:
        return [text for text, in database.execute("SELECT text FROM messages ORDER BY id")]


async def test_stopping_waits_for_or_ends_every_frame_handler(start_server, caplog,
                                                              tmp_path) -> None:
    """At shutdown no frame handler outlives the server, not even one whose connection had
    already gone: none writes to the closed history."""
    server = await start_server(rate=2, burst=1, db=str(tmp_path / "chat.db"))
    pat = await PlainClient.connect(server.url, "pat")
    for number in range(6):
        await pat.send(f"line {number}")
    await asyncio.sleep(0.1)
    pat.connection.transport.abort()
    await asyncio.sleep(0.1)
    await server.stop()
    assert not server.workers
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_plain_clients_lines_waiting_their_turn_are_stored_when_the_server_stops(
        start_server, tmp_path) -> None:
    """Lines a raw client sent past the rate limit, still waiting their turn when the server
    is stopped, are stored before it exits, in order: nothing would ever send them again
    (before, those not handled within the close timeout were dropped)."""
    db = str(tmp_path / "chat.db")
    server = await start_server(rate=1, burst=1, db=db)
    pat = await PlainClient.connect(server.url, "pat")
    for number in range(10):
        await pat.send(f"line {number}")
    await eventually(lambda: server.history.last_id("lobby") >= 1)
    await server.stop()
    assert stored_texts(db) == [f"line {n}" for n in range(10)]


async def flooded(start_server, db: str) -> tuple:
    """A server (1 message a second, history in `db`) and the connection of a raw client that
    sent it 3,000 lines at once, once its inbox is full and what it read after is held."""
    server = await start_server(rate=1, burst=1, db=db)
    pat = await PlainClient.connect(server.url, "pat")
    (connection,) = server._live
    for number in range(3_000):
        await pat.send(f"line {number}")
    await eventually(lambda: connection.held and len(connection.inbox) >= 1_000)
    return server, connection


async def test_a_flood_of_lines_read_but_not_yet_parsed_is_stored_when_the_server_stops(
        start_server, tmp_path) -> None:
    """3,000 lines sent at once by a raw client at 1 a second: the inbox takes 1,024, what
    was read after that is held unparsed (reading is paused). When the server stops, it
    reads and stores every line, in order."""
    db = str(tmp_path / "chat.db")
    server, connection = await flooded(start_server, db)
    await server.stop()
    assert stored_texts(db) == [f"line {n}" for n in range(3_000)]


async def test_a_connection_gone_with_a_flood_held_keeps_its_lines_up_to_the_inbox_bound(
        start_server, tmp_path, caplog) -> None:
    """The same flood, but the connection ends (dropped, as a slow consumer is, or hung up):
    what waits in the inbox is posted, in order, and so is what was held, up to the inbox
    bound; the rest is dropped and the log says how much (a client that floods and hangs up
    does not leave hours of lines to be posted under its name)."""
    db = str(tmp_path / "chat.db")
    server, connection = await flooded(start_server, db)
    kept = server.history.last_id("lobby") + len(connection.inbox)  # give or take one waiting
    connection.abort()
    await eventually(lambda: connection.transport is None)
    assert any("past its inbox bound: dropped" in record.getMessage() for record in caplog.records)
    assert len(connection.inbox) <= INBOX_HIGH + FEED // 6
    await server.stop()
    texts = stored_texts(db)
    assert texts == [f"line {n}" for n in range(len(texts))]
    assert kept <= len(texts) < 1_300
