"""The app's connection as its user sees it: drops, restarts, unreachable and refusing
servers, who came and went meanwhile, and reconnecting at once (Ctrl+R, /reconnect)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from textual.pilot import Pilot
from textual.widgets import Footer

from tui_chat_server import ChatServer, ServerConfig
from tests.apptools import SIZE, log_text, make_app, online, outbox, type_line, until, users_text
from tests.helpers import SLOW, JsonClient, Relay, eventually
from tui_chat.app import ChatApp
from tui_chat.chat_input import ChatInput
from tui_chat.updates import Backoff



def footer_offers_reconnect(app: ChatApp) -> bool:
    """Whether the footer shows the Ctrl+R key."""
    return any(getattr(key, "key", None) == "ctrl+r" for key in app.query_one(Footer).children)


async def test_a_reconnect_says_who_came_and_went_while_you_were_away(chat_server, join) -> None:
    """Back after a drop, the log says who joined and who left meanwhile (a rename shows as
    the old name leaving and the new one joining), without counting yourself."""
    relay = await Relay(chat_server.port).start()
    app = make_app(f"ws://127.0.0.1:{relay.port}/lobby", "alice",
                   backoff=SLOW)  # away until Ctrl+R
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob, carol = await join("bob"), await join("carol")
        await until(pilot, lambda: "carol" in users_text(app))
        relay.sever()
        await until(pilot, lambda: "reconnecting" in app.sub_title)
        await bob.close()
        await carol.send(type="nick", nick="Caroline")
        await carol.expect("presence")
        await join("dave")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "Reconnected to lobby" in log_text(app))
        await pilot.pause(0.1)
        assert "While you were away: Caroline and dave joined; bob and carol left." in " ".join(
            log_text(app).split())
        assert sorted(app.client.users) == ["Caroline", "alice", "dave"]
    await relay.close()


async def started_server(port: int = 0, db: str = "") -> ChatServer:
    """A server on `port` (0: any free one), history on disk (or in `db`), no rate limit."""
    server = ChatServer(ServerConfig(port=port, rate=0, db=db))
    await server.start()
    return server


@asynccontextmanager
async def app_whose_server_went(**options) -> AsyncIterator[tuple[ChatApp, Pilot, int]]:
    """The app, joined as alice to a server that has then stopped (the app says it is
    reconnecting), and the port that server had."""
    server = await started_server()
    port = server.port
    app = make_app(f"ws://127.0.0.1:{port}/lobby", "alice", **options)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await server.stop()
        await until(pilot, lambda: "reconnecting" in pilot.app.sub_title)
        yield app, pilot, port


async def test_restart_reconnects_and_delivers_typed_lines_exactly_once() -> None:
    """The server stops and comes back; what was typed meanwhile is delivered once."""
    async with app_whose_server_went() as (app, pilot, port):
        await type_line(pilot, "typed while away")
        await until(pilot, lambda: len(outbox(app)) == 1)
        second = await started_server(port)
        try:
            await until(pilot, lambda: "alice typed while away" in log_text(app))
            await until(pilot, lambda: outbox(app) == ())
            await pilot.pause(0.3)
            assert log_text(app).count("typed while away") == 1
            assert "Reconnected to lobby" in log_text(app)
            assert len(second.history.backlog("lobby", None, None, 10).messages) == 1
        finally:
            await app.client.stop()
            await second.stop()


async def test_nick_to_the_name_one_has_while_offline_says_so() -> None:
    """/nick with the name the app already has, offline, says "You are already called", as
    the server would (not "You will be alice when the connection is back"); a name one will
    have once a waiting rename is made is still said as a promise; a name that no one may
    have is refused at once, saying why, not promised."""
    async with app_whose_server_went() as (app, pilot, _):
        await type_line(pilot, "/nick alice")
        await until(pilot, lambda: "You are already called 'alice'." in log_text(app))
        await type_line(pilot, "/nick bob")
        await type_line(pilot, "/nick bob")
        await until(pilot, lambda: log_text(app).count("You will be bob when the connection") == 2)
        assert "You will be alice" not in log_text(app)
        for name in ("server", "аlice", "n" * 30):  # (a Cyrillic а)
            await type_line(pilot, f"/nick {name}")
        await until(pilot, lambda: "at most 24 characters. You are still bob" in log_text(app))
        text = " ".join(log_text(app).split())
        assert "The nickname 'server' is reserved" in text
        assert "mixes Cyrillic and Latin letters" in text
        assert "You will be server" not in text and "You will be аlice" not in text


async def test_a_server_that_cannot_be_reached_is_explained_once(unused_port) -> None:
    """Before ever connecting, the log says why the connection fails (once per reason, not
    once per attempt), and the header says it is retrying, not reconnecting."""
    app = make_app(f"ws://127.0.0.1:{unused_port}/lobby", "alice",
                   backoff=Backoff(first=2.0, cap=2.0))  # retries 1-2 s apart: past NEWS_DELAY however late
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.client.backoff.attempts >= 3, timeout=10)
        assert log_text(app).count("Cannot connect: connection refused. Trying again…") == 1
        assert "retrying" in app.sub_title and "reconnecting" not in app.sub_title


async def test_who_while_offline_lists_who_was_there_or_says_nobody_is_known(unused_port) -> None:
    """/who with no connection lists the room as last seen, and before any join says that
    nobody is known yet (not an empty list)."""
    never = make_app(f"ws://127.0.0.1:{unused_port}/lobby", "alice")
    async with never.run_test(size=SIZE) as pilot:
        await type_line(pilot, "/who")
        await until(pilot, lambda: "Not in the room yet: nobody known." in log_text(never))
    async with app_whose_server_went() as (app, pilot, _):
        await type_line(pilot, "/who")
        await until(pilot, lambda: "Last known (1): alice" in log_text(app))


async def test_a_missing_token_is_one_clear_line(start_server) -> None:
    """Joining a server that needs a token without one says so once, with how to give it."""
    server = await start_server(token="s3cret-token-value")
    app = make_app(server.url + "/lobby", "alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "Offline" in log_text(app))
        lines = [line for line in log_text(app).splitlines() if "token" in line]
        assert len(lines) == 1 and "this server needs a token." in lines[0]
        assert "--token-file" in lines[0]


async def test_ctrl_r_reconnects_at_once_and_is_offered_only_while_waiting(
        start_server, unused_port) -> None:
    """While the app waits to reconnect the footer offers Ctrl+R; pressing it once the server
    is back brings the app online without waiting; online, the key is not offered."""
    server = await start_server(port=unused_port)
    app = make_app(server.url + "/lobby", "alice", backoff=SLOW)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert not footer_offers_reconnect(app)
        await server.stop()
        await until(pilot, lambda: footer_offers_reconnect(app))
        await start_server(port=unused_port)
        await pilot.press("ctrl+r")
        await online(pilot)
        assert "Reconnected to lobby as alice." in log_text(app)
        await until(pilot, lambda: not footer_offers_reconnect(app))


async def test_the_reconnect_command_says_when_there_is_nothing_to_wait_for(url) -> None:
    """/reconnect while online explains itself instead of doing nothing."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await type_line(pilot, "/reconnect")
        await until(pilot, lambda: "Already online." in log_text(app))


async def test_refused_its_name_on_rejoining_the_app_is_no_one_in_the_room() -> None:
    """Back after a restart to find its nickname taken, the app marks no one as you, and
    Tab completes the name's new holder, who is someone else."""
    async with app_whose_server_went(backoff=SLOW) as (app, pilot, port):
        second = await started_server(port)
        holder = await JsonClient.connect(f"ws://127.0.0.1:{port}/lobby", "alice")
        try:
            await pilot.press("ctrl+r")  # back only now: the holder has the name
            await until(pilot, lambda: "is taken" in log_text(app))
            await pilot.pause(0.05)
            assert "(you)" not in users_text(app)
            await pilot.press("a", "l", "tab")
            assert app.query_one(ChatInput).value == "alice: "
        finally:
            await holder.close()
            await app.client.stop()
            await second.stop()


async def test_quitting_the_app_closes_its_connection_normally(chat_server, url, caplog) -> None:
    """Ctrl+Q ends the connection with a normal close (1000), not as an internal error
    (1011), which a server's log would report as a client failing."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await pilot.press("ctrl+q")
    await eventually(lambda: "disconnected" in caplog.text)
    closes = [r.getMessage() for r in caplog.records if "disconnected" in r.getMessage()]
    assert closes[0].endswith("disconnected: code 1000"), closes


async def test_a_restart_the_app_did_not_see_does_not_report_everyone_as_gone() -> None:
    """The server was killed and restarted between two attempts (no close frame reached the
    app and no connection was refused): back in, the app does not say that those not yet
    back left, as the welcome's run id tells it the server restarted."""
    first = await started_server(db=":memory:")
    port = first.port
    relay = await Relay(port).start()
    app = make_app(f"ws://127.0.0.1:{relay.port}/lobby", "alice",
                   backoff=Backoff(first=1.0, cap=1.0))  # back after the restart
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await JsonClient.connect(f"{first.url}/lobby", "bob")
        await until(pilot, lambda: "bob" in app.client.users)
        relay.sever()  # the app sees its connection die, with no close frame
        await first.stop()
        second = await started_server(port, db=":memory:")
        try:
            await until(pilot, lambda: "Reconnected to lobby" in log_text(app))
            await pilot.pause(0.2)
            assert "left" not in log_text(app).split("Reconnected to lobby")[1], log_text(app)
        finally:
            await app.client.stop()
            await second.stop()
            await relay.close()
            await bob.close()
