"""Reconnecting at once instead of waiting out the backoff: the client call, Ctrl+R and
/reconnect in the app."""

from __future__ import annotations

from textual.widgets import Footer

from tests.apptools import SIZE, log_text, make_app, online, type_line, until
from tui_chat.app import ChatApp
from tui_chat.updates import Backoff, State

SLOW = Backoff(first=120, cap=120)  # the next attempt waits a minute or two


def footer_offers_reconnect(app: ChatApp) -> bool:
    """Whether the footer shows the Ctrl+R key."""
    return any(getattr(key, "key", None) == "ctrl+r" for key in app.query_one(Footer).children)


async def test_reconnect_now_ends_the_wait_for_the_next_attempt(
        start_server, unused_port, run_client) -> None:
    """A client that found no server waits a minute to try again; reconnect_now() once the
    server is up joins at once, and is refused (False) while online."""
    client, seen = run_client(f"ws://127.0.0.1:{unused_port}/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.RECONNECTING and client.backoff.attempts)
    await start_server(port=unused_port)
    assert client.reconnect_now() is True
    await seen.until(lambda: client.state is State.ONLINE, timeout=3)
    assert client.reconnect_now() is False


async def test_each_wait_can_be_cut_short(run_client, unused_port) -> None:
    """After every failed attempt there is a new wait, and reconnect_now() ends each one."""
    client, seen = run_client(f"ws://127.0.0.1:{unused_port}/lobby", "alice", backoff=SLOW)
    for attempts in (1, 2, 3):
        await seen.until(lambda attempts=attempts: client.backoff.attempts == attempts)
        await seen.until(client.reconnect_now, timeout=2)  # True once the wait has begun
    await seen.until(lambda: client.backoff.attempts == 4, timeout=2)


async def test_reconnect_now_is_refused_once_the_server_refused_for_good(start_server,
                                                                         run_client) -> None:
    """A server that wants a token the client does not have is not retried: nothing waits."""
    server = await start_server(token="s3cret-token-value")
    client, seen = run_client(server.url + "/lobby", "alice", backoff=SLOW)
    await seen.until(lambda: client.state is State.OFFLINE)
    assert client.reconnect_now() is False


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
