"""Real WebSocket clients for tests: a JSON-dialect client and a plain-text client."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tui_chat.protocol import SUBPROTOCOL
from tui_chat.updates import Backoff, Update

TIMEOUT = 5.0
SLOW = Backoff(first=120, cap=120)  # a client's next attempt waits a minute or two
_CIDS = itertools.count(1)


class BaseClient:
    """What both test clients share: the connection, silence checks and closing."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def recv(self, timeout: float = TIMEOUT) -> Any:
        raise NotImplementedError

    async def silent(self, timeout: float = 0.2) -> bool:
        """True when nothing arrives within `timeout`; fails on anything that does."""
        try:
            received = await self.recv(timeout)
        except asyncio.TimeoutError:
            return True
        raise AssertionError(f"unexpected {received!r}")

    async def close(self) -> None:
        if not self.connection.transport.is_closing():  # aborted ones have nothing to say
            await self.connection.close()


class JsonClient(BaseClient):
    """A `tui-chat.v1` client that sends dicts and receives decoded dicts."""

    @classmethod
    async def connect(cls, url: str, nick: str | None = None, **hello: Any) -> JsonClient:
        client = cls(await connect(url, subprotocols=[SUBPROTOCOL], max_size=None, close_timeout=1))
        assert client.connection.subprotocol == SUBPROTOCOL
        if nick is not None:
            await client.send(type="hello", nick=nick, **hello)
            client.welcome = await client.expect("welcome")
        return client

    async def send(self, **event: Any) -> None:
        await self.connection.send(json.dumps(event))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def expect(self, type_: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        event = await self.recv(timeout)
        assert event["type"] == type_, event
        return event

    async def say(self, text: str, cid: str | None = None) -> dict[str, Any]:
        """Send a chat line and return the server's acknowledgement (our own echo), skipping
        presence events that arrive first."""
        cid = cid or f"helper-{next(_CIDS)}"
        await self.send(type="say", text=text, cid=cid)
        while True:
            event = await self.recv()
            if event["type"] != "presence":
                assert event["type"] == "message" and event.get("cid") == cid, event
                return event




PROMPT = "[Server]: This is tui-chat, room "


class PlainClient(BaseClient):
    """A raw WebSocket client without subprotocol, as wscat or a browser console would be."""

    @classmethod
    async def connect(cls, url: str, nick: str | None = None, prompted: bool = True
                      ) -> PlainClient:
        """Connect, and read the line saying to send a nickname (unless not `prompted`: the
        room is refused); with `nick`, join and read up to the welcome (`greeting`)."""
        client = cls(await connect(url, close_timeout=1))
        assert client.connection.subprotocol is None
        if prompted:
            client.prompt = await client.recv()
            assert client.prompt.startswith(PROMPT), client.prompt
        if nick is not None:
            await client.send(nick)
            client.greeting = await client.lines_until("[Server]: Welcome")
        return client

    async def send(self, text: str) -> None:
        await self.connection.send(text)

    async def recv(self, timeout: float = TIMEOUT) -> str:
        return await asyncio.wait_for(self.connection.recv(), timeout)

    async def lines_until(self, prefix: str) -> list[str]:
        """Receive lines up to and including the first one starting with `prefix`."""
        lines = [await self.recv()]
        while not lines[-1].startswith(prefix):
            lines.append(await self.recv())
        return lines




class Relay:
    """A TCP relay in front of a server. `sever()` drops its client side only, as a network
    drop would: the client sees its connection die, while the server still holds it open.
    After `lose_next_answers()`, the next connection carries the client's frames to the
    server, but nothing back after the handshake, and drops half a second later."""

    def __init__(self, server_port: int) -> None:
        self.server_port = server_port
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._client_sides: list[asyncio.StreamWriter] = []
        self._server_sides: list[asyncio.StreamWriter] = []  # kept open, never read again
        self._pipes: set[asyncio.Task[None]] = set()
        self._losing = False

    def lose_next_answers(self) -> None:
        self._losing = True

    async def start(self) -> Relay:
        self._listener = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._listener.sockets[0].getsockname()[1]
        return self

    async def _relay(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1",
                                                                     self.server_port)
        self._client_sides.append(client_writer)
        self._server_sides.append(server_writer)
        losing, self._losing = self._losing, False
        pipes = [(client_reader, server_writer)]
        if not losing:
            pipes.append((server_reader, client_writer))
        for reader, writer in pipes:
            task = asyncio.create_task(self._pipe(reader, writer))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)
        if losing:  # the handshake's answer only
            client_writer.write(await server_reader.readuntil(b"\r\n\r\n"))
            await asyncio.sleep(0.5)
            client_writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    def sever(self) -> None:
        """Stop relaying and reset every client-side connection; the server sides stay open."""
        for task in list(self._pipes):
            task.cancel()
        for writer in self._client_sides:
            writer.transport.abort()
        self._client_sides.clear()

    async def close(self) -> None:
        self.sever()
        for writer in self._server_sides:
            writer.transport.abort()
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()


async def sender_reader_stalled(url: str) -> tuple[JsonClient, JsonClient, JsonClient]:
    """Three members of one room: one that sends, one that reads, and one that has stopped
    reading (its socket paused, as a frozen process's would be); join presences consumed."""
    sender = await JsonClient.connect(url, "sender")
    reader = await JsonClient.connect(url, "reader")
    stalled = await JsonClient.connect(url, "stalled")
    stalled.connection.transport.pause_reading()
    for _ in range(2):
        await sender.expect("presence")
    await reader.expect("presence")
    return sender, reader, stalled


class Recorder:
    """Collects a client's updates and waits for conditions on them."""

    def __init__(self) -> None:
        self.updates: list[Update] = []

    def __call__(self, update: Update) -> None:
        self.updates.append(update)

    def of(self, kind: type) -> list:
        return [u for u in self.updates if isinstance(u, kind)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 5) -> None:
        await eventually(predicate, timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = 5) -> None:
    """Return once `predicate()` is true (checked every 10 ms); TimeoutError after `timeout`."""
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(wait(), timeout)


async def server_where_alice_said(run_client, db: str, text: str):
    """A server (on a free port, history in `db`, no rate limit) and a ChatClient joined to
    its lobby as alice, once her first message `text` is acknowledged: (server, client,
    recorder). The caller stops the server."""
    from tui_chat_server import ChatServer, ServerConfig
    from tui_chat.updates import Received, State

    server = ChatServer(ServerConfig(port=0, db=db, rate=0))
    await server.start()
    client, seen = run_client(f"ws://127.0.0.1:{server.port}/lobby", "alice")
    await seen.until(lambda: client.state is State.ONLINE)
    client.say(text)
    await seen.until(lambda: len(seen.of(Received)) == 1)
    return server, client, seen


def stored(server, room: str = "lobby") -> list[tuple[str, str]]:
    """(nickname, text) of every message the server has stored in `room`, in id order."""
    return [(m.nick, m.text) for m in server.history.backlog(room, None, None, 100).messages]


async def tui_chat(*args: str, stdin: str | None = None, timeout: float = 20
                   ) -> tuple[int, str, str]:
    """Run `tui-chat ARGS` as a process, to the end: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else b""), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def gone_with_lines_waiting(server, lines: int) -> JsonClient:
    """bob in the lobby of `server` (which paces 2 a second, bursts of 2), where a raw client
    pat sent `lines` lines at once and hung up as soon as bob saw the first: returns bob once
    the server has seen pat's connection end, with pat's other lines still to be posted."""
    bob = await JsonClient.connect(server.url, "bob")
    pat = await PlainClient.connect(server.url, "pat")
    assert (await bob.expect("presence"))["event"] == "join"
    for number in range(lines):
        await pat.send(f"line {number}")
    assert (await bob.expect("message"))["text"] == "line 0"
    pat.connection.transport.abort()
    await eventually(lambda: len(server._live) == 1)
    return bob


def upgrade_request(path: bytes = b"/lobby", *headers: str, host: str = "x") -> bytes:
    """A WebSocket upgrade request for `path` (with the key of RFC 6455's example, and
    `headers`), as a client writes it."""
    lines = [f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", *headers]
    return b"GET " + path + b" HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines).encode() + b"\r\n"


async def raw_handshake(port: int, path: bytes = b"/lobby", *headers: str, host: str = "x",
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection that has sent `upgrade_request(path, *headers, host=host)`; nothing
    is read yet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(path, *headers, host=host))
    return reader, writer


async def fill(history, room: str, count: int, start: int = 1) -> None:
    """Store `count` messages of alice's in `room` of `history`, "m1", "m2"... (from `start`)."""
    for number in range(start, start + count):
        await history.submit(room, "alice", "alice", f"m{number}", "chat", None)


# -- long histories (catch-up) ---------------------------------------------------------------

BIG = 60_000  # characters in each history message: a few of them fill any socket buffer
LIMITS = {"max_text": BIG, "max_frame": 256 * 1024}


async def say_big(writer: JsonClient, count: int, size: int = BIG, tag: str = "h") -> None:
    """`count` messages of `size` characters from `writer`, each with a cid."""
    for number in range(count):
        await writer.say(f"{tag}{number} " + "x" * (size - 10), cid=f"{tag}{number}")


async def stalled_reader(server, epoch: str, nick: str = "late", plain: bool = False,
                         server_sndbuf: int = 0):
    """A client whose socket takes little and which reads nothing until resumed; it asks for
    the whole history (JSON) or joins with its nickname (plain). With `server_sndbuf`, the
    server's end of every connection takes little too, as on a slow link."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    protocols = None if plain else [SUBPROTOCOL]
    client = await connect(server.url, sock=sock, subprotocols=protocols, max_size=None)
    for connection in server._live if server_sndbuf else ():
        connection.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, server_sndbuf)
    if plain:
        assert (await client.recv()).startswith(PROMPT)
        await client.send(nick)
    else:
        await client.send(json.dumps({"type": "hello", "nick": nick, "since": 0, "epoch": epoch}))
    client.transport.pause_reading()
    return client


def server_side(server, nick: str):
    """The server's connection of the member called `nick` in the lobby."""
    return server.hub.rooms.find("lobby").members[nick].connection
