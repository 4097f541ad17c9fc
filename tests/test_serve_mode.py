"""`tui-chat --serve`: the app hosts the server in its own loop, or says why it cannot."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.apptools import SIZE, farewells, log_text, make_app, online, until
from tests.helpers import JsonClient
from tui_chat.hosting import CannotServe, host


async def test_serve_mode_hosts_a_room_others_can_join(join) -> None:
    """--serve runs the server in the app's own loop and joins its lobby; others can join it."""

    app = make_app(None, "host", serve=("127.0.0.1", 0))
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert app.server is not None
        assert f"tui-chat {app.server.url}/lobby" in log_text(app)
        guest = await JsonClient.connect(app.server.url + "/lobby", "guest")
        assert guest.welcome["users"] == ["guest", "host"]
        await guest.say("hello host")
        await until(pilot, lambda: "guest hello host" in log_text(app))
        await guest.close()


async def test_serve_mode_with_a_token_lets_in_only_those_who_have_it() -> None:
    """--serve with --token-file hosts a room that needs the token: the host joins with it,
    a guest without it is refused, one with it gets in, and the hint says to give it."""
    app = make_app(None, "host", serve=("127.0.0.1", 0), token="s3cret-token-value")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        lobby = app.server.url + "/lobby"
        assert "--token-file FILE" in log_text(app).replace("\n", " ")
        with pytest.raises(InvalidStatus) as refused:
            await connect(lobby)  # a raw client without the token
        assert refused.value.response.status_code == 401
        guest = await JsonClient.connect(lobby, "guest", token="s3cret-token-value")
        await guest.say("hello host")
        await until(pilot, lambda: "guest hello host" in log_text(app))
        await guest.close()


async def test_serving_on_every_interface_tells_others_a_name_they_can_use() -> None:
    """With --serve 0.0.0.0 the app joins over loopback, and the join hint names this
    machine, not 0.0.0.0 (which another machine cannot connect to)."""

    app = make_app(None, "host", serve=("0.0.0.0", 0))
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert app.client.url == f"ws://127.0.0.1:{app.server.port}/lobby"
        hint = f"tui-chat ws://{socket.gethostname()}:{app.server.port}/lobby"
        assert hint in log_text(app).replace("\n", " ")
        assert "tui-chat ws://0.0.0.0" not in log_text(app)


async def test_serve_mode_on_a_busy_port_exits_saying_why() -> None:
    """If the port is taken the app ends at once with status 1 and says why (and how to join
    whatever serves there), rather than sit offline."""

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = make_app(None, "host", serve=("127.0.0.1", port))
        said = farewells(app)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: bool(said))
    assert app.return_code == 1
    assert said[0].startswith(f"tui-chat: cannot serve on 127.0.0.1:{port}: Address already in"
                              " use (if a tui-chat server runs there, join it:")
    assert f"tui-chat ws://127.0.0.1:{port}/lobby" in said[0]
    assert "('127.0.0.1'" not in said[0]  # asyncio's own sentence names it as a tuple


async def test_a_busy_port_is_named_before_a_database_in_use() -> None:
    """With both the port and the default database taken (a tui-chat-server runs there),
    the app names the port and how to join what serves there, not the database: moving
    to another database would only lead to the port."""
    from tui_chat_server.app import default_db_path
    from tui_chat_server.history import History

    holder = History(default_db_path())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CannotServe) as refused:
            await host("127.0.0.1", port)
    await holder.close()
    assert "Address already in use (if a tui-chat server runs there, join it" in str(
        refused.value)


async def test_serving_on_a_host_that_does_not_resolve_says_so_in_words() -> None:
    """A mistyped --serve host is named, with the resolver's reason, not 'Unknown error'."""
    with pytest.raises(CannotServe) as refused:
        await host("no-such-host.invalid", 0)
    message = str(refused.value)
    assert message.startswith("tui-chat: cannot serve on no-such-host.invalid:0: no such"
                              " address here (")
    assert "Unknown error" not in message


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_serve_mode_that_cannot_start_leaves_the_terminal_alone() -> None:
    """On a busy port `tui-chat --serve` prints why and exits 1 without switching the
    terminal to its full screen and back first (which flickers)."""
    import pty
    import select

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        terminal, child_end = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "tui_chat", "--serve", f"127.0.0.1:{port}"],
            stdin=child_end, stdout=child_end, stderr=child_end, close_fds=True)
        os.close(child_end)
        written = b""
        try:
            while select.select([terminal], [], [], 20)[0]:
                try:
                    chunk = os.read(terminal, 65536)
                except OSError:  # the child has gone and closed its end
                    break
                if not chunk:
                    break
                written += chunk
            assert process.wait(10) == 1
        finally:
            process.kill()
            os.close(terminal)
    assert b"cannot serve on" in written
    assert b"\x1b[?1049h" not in written, "the alternate screen was entered"


async def test_serve_mode_with_a_database_in_use_exits_saying_why(tmp_path) -> None:
    """If another server holds the default database, the app ends with status 1 and says
    so, naming --db, which `tui-chat --serve` takes too."""
    from tui_chat_server.app import default_db_path
    from tui_chat_server.history import History

    holder = History(default_db_path())
    app = make_app(None, "host", serve=("127.0.0.1", 0))
    said = farewells(app)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(said))
    await holder.close()
    assert app.return_code == 1 and "in use by another tui-chat server" in said[0]
    other = make_app(None, "host", serve=("127.0.0.1", 0), serve_db=str(tmp_path / "h.db"))
    async with other.run_test(size=SIZE) as pilot:
        await online(pilot)


def test_why_it_cannot_serve_is_printed_as_written_on_one_line(tmp_path, unused_port) -> None:
    """What the app says on its way out is plain text: a path holding `[red]` and `:smile:`
    comes out as typed (not as Rich markup and an emoji), unwrapped, even in a pipe."""
    db = tmp_path / "no-such-dir" / "[red]a:smile:.db"
    result = subprocess.run(
        [sys.executable, "-m", "tui_chat", "--serve", f"127.0.0.1:{unused_port}", "--db", str(db)],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"cannot open the database {db}: there is no directory" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


async def test_lines_written_before_layout_wrap_at_the_real_width() -> None:
    """The first lines (written while the screen is still being laid out) use the log's
    real width, not a narrow guess."""
    app = make_app(None, "host", serve=("127.0.0.1", 0))
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        first = log_text(app).splitlines()[0]
        assert "Serving ws://127.0.0.1:" in first and len(first) > 40


async def test_quitting_a_server_others_use_asks_for_a_second_ctrl_q() -> None:
    """Hosting a server with others connected, the first Ctrl+Q only says that quitting
    closes it for everyone; a second one quits. With no one else there, one is enough."""
    app = make_app(None, "host", serve=("127.0.0.1", 0))
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert app.server is not None
        guest = await JsonClient.connect(f"{app.server.url}/lobby", "guest")
        await until(pilot, lambda: "guest" in app.client.users)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: "1 other is connected" in log_text(app))
        assert app.is_running
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)
        await guest.close()
    alone = make_app(None, "host", serve=("127.0.0.1", 0))
    async with alone.run_test(size=SIZE) as pilot:
        await online(pilot)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not alone.is_running)
