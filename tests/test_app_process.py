"""The app as a real process on a pseudo-terminal: how `kill` and a closed terminal end it."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.helpers import JsonClient, eventually

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")

ALTERNATE_SCREEN_OFF = b"\x1b[?1049l"
MOUSE_OFF = b"\x1b[?1000l"


# The app in a session of its own whose controlling terminal is the pty, as in a terminal
# window: closing the pty's other end (the window) hangs the terminal up, with SIGHUP.
IN_ITS_TERMINAL = ("import fcntl, runpy, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
                   " sys.argv[0] = 'tui-chat'; runpy.run_module('tui_chat', run_name='__main__')")


class AppProcess:
    """`tui-chat ARGS` on a pseudo-terminal of 100x30, its output collected until it ends."""

    def __init__(self, *args: str, data: Path) -> None:
        self.terminal, child = os.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", IN_ITS_TERMINAL, *args], stdin=child, stdout=child,
            stderr=child, env={**os.environ, "XDG_DATA_HOME": str(data)}, close_fds=True,
            start_new_session=True)
        os.close(child)
        self.closing = False
        self.reading = asyncio.create_task(asyncio.to_thread(self._read_all))

    def _read_all(self) -> bytes:
        written = b""
        while not self.closing:
            if not select.select([self.terminal], [], [], 0.05)[0]:
                continue
            try:
                chunk = os.read(self.terminal, 65536)
            except OSError:  # the child has gone and closed its end
                return written
            if not chunk:
                return written
            written += chunk
        return written

    async def close_window(self) -> None:
        """Close the terminal (once nothing reads it any more), as closing its window does."""
        self.closing = True
        await self.reading
        os.close(self.terminal)

    async def end(self) -> tuple[int, bytes]:
        """Wait for it to exit: its status, and everything it wrote."""
        try:
            status = await asyncio.to_thread(self.process.wait, 20)
            return status, await asyncio.wait_for(self.reading, 20)
        finally:
            self.process.kill()
            if not self.closing:
                os.close(self.terminal)


async def test_sigterm_quits_as_ctrl_q_does_and_gives_the_terminal_back(
        chat_server, join, tmp_path, caplog) -> None:
    """`kill PID` ends the app as quitting does: it leaves the alternate screen, turns
    mouse reporting off, closes its connection normally (1000) and exits 0."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    watcher = await join("watcher")
    app = AppProcess(f"{chat_server.url}/lobby", "--nick", "mona", data=tmp_path)
    assert (await watcher.expect("presence", timeout=20))["event"] == "join"
    app.process.send_signal(signal.SIGTERM)
    assert (await watcher.expect("presence"))["event"] == "leave"
    status, written = await app.end()
    assert status == 0, written[-500:]
    assert ALTERNATE_SCREEN_OFF in written and MOUSE_OFF in written
    await eventually(lambda: "disconnected: code 1000" in caplog.text)


async def test_a_terminal_closed_while_the_room_is_busy_ends_the_app(
        chat_server, join, tmp_path, caplog) -> None:
    """Closing the terminal window while messages pour in ends the app, closing its
    connection normally. (End to end: the hang this once met, Textual's writer thread dead
    of a write to the gone terminal, came only some of the time; tests/test_terminal.py
    holds its regression test.)"""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    talker = await join("talker")
    app = AppProcess(f"{chat_server.url}/lobby", "--nick", "mona", data=tmp_path)
    assert (await talker.expect("presence", timeout=20))["event"] == "join"

    async def talk() -> None:
        for number in itertools.count():
            await talker.send(type="say", text=f"line {number} " + "x" * 60, cid=f"c{number}")
            await asyncio.sleep(0.002)

    talking = asyncio.create_task(talk())
    await asyncio.sleep(1)  # the app is redrawing its log as fast as it can
    await app.close_window()
    try:
        status, _ = await app.end()
    finally:
        talking.cancel()
    assert status == 0
    await eventually(lambda: "disconnected: code 1000" in caplog.text)


async def test_sigterm_keeps_what_is_pending_and_says_so(tmp_path, unused_port) -> None:
    """A message typed while the server is away is saved on disk when the app is killed,
    and the app says on its way out that it is sent the next time."""
    app = AppProcess(f"127.0.0.1:{unused_port}/lobby", "--nick", "mona", data=tmp_path)
    outbox = tmp_path / "tui-chat" / "outbox"
    await eventually(lambda: any(outbox.glob("*.lock")), timeout=20)  # mounted, outbox held
    os.write(app.terminal, b"typed while away\r")
    await eventually(lambda: any(outbox.glob("*.json")), timeout=20)
    app.process.send_signal(signal.SIGTERM)
    status, written = await app.end()
    assert status == 0
    assert b"1 message not yet acknowledged by the server was kept" in written
    assert b"typed while away" in next(outbox.glob("*.json")).read_bytes()


async def test_a_closed_terminal_quits_in_order_and_closes_a_hosted_server_for_its_guests(
        tmp_path, unused_port) -> None:
    """SIGHUP (the terminal window was closed) ends `tui-chat --serve` the same way: its
    guests are told the server went away (1001), not that the connection dropped."""
    app = AppProcess("--serve", f"127.0.0.1:{unused_port}", "--db", ":memory:", "--nick", "host",
                     data=tmp_path)
    url = f"ws://127.0.0.1:{unused_port}/lobby"

    async def guest_joins() -> JsonClient | None:
        try:
            return await JsonClient.connect(url, "guest")
        except OSError:
            return None

    guest = None
    for _ in range(200):
        guest = await guest_joins()
        if guest is not None:
            break
        await asyncio.sleep(0.1)
    assert guest is not None, "the hosted server never listened"
    if "host" not in guest.welcome["users"]:  # the app is up once it has joined
        assert (await guest.expect("presence", timeout=20))["nick"] == "host"
    app.process.send_signal(signal.SIGHUP)
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await guest.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    status, _ = await app.end()
    assert status == 0
