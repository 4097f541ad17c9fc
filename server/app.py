"""The server's I/O shell: the WebSocket listener, dialect choice, sessions started and ended, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from dataclasses import dataclass

from platformdirs import user_data_path
from websockets.frames import CloseCode

from tui_chat.cleaning import cut
from tui_chat.protocol import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_TEXT,
    SUBPROTOCOL,
    ProtocolError,
    quoted,
    room_from_path,
)

from .accounts import Accounts
from .admission import Admission
from .database import unopenable
from .history import History
from .hub import Hub, Limits
from .plain import PlainSession
from .sessions import JsonSession, Session
from .tls import tls_context
from .admission import peer_name
from .transport import ChatConnection

log = logging.getLogger("tui_chat.server")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `tui-chat-server` can be told on its command line."""

    host: str = "127.0.0.1"
    port: int = 8765
    db: str = ""  # empty: history.db in the user's data directory; ":memory:" keeps none
    history: int = 10_000
    sync: str = "full"  # or "normal": see docs/reliability.md
    backlog: int = 50
    max_text: int = DEFAULT_MAX_TEXT
    max_frame: int = DEFAULT_MAX_FRAME
    rate: float = 5.0
    burst: int = 10
    presence_limit: int = 500
    max_per_ip: int = 20
    max_clients: int = 10_000
    max_pending: int = 1024 * 1024
    handshake_timeout: float = 10.0
    join_timeout: float = 120.0  # seconds from the handshake to the hello (or nickname)
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 1.0
    token: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    allow_origins: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the token never reaches a log
        return f"ServerConfig(host={self.host!r}, port={self.port!r}, db={self.db!r}, ...)"


def default_db_path() -> str:
    """Where history lives unless --db says otherwise; its directory is created if need be,
    private to its owner (a path given with --db must be in a directory that exists).
    StorageError, saying why, if it cannot be."""
    directory = user_data_path("tui-chat", appauthor=False)
    path = str(directory / "history.db")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # others' messages: private
    except OSError as error:
        raise unopenable(path, error) from None
    return path


def cannot_listen(error: OSError) -> str:
    """Why the server could not listen, in words (asyncio's own sentence for a port in use
    names the address again, as a Python tuple; a resolver's errno is not the system's)."""
    if isinstance(error, socket.gaierror):
        return f"no such address here ({error.strerror})"
    return os.strerror(error.errno) if error.errno else error.strerror or str(error)


def choose_dialect(connection: ChatConnection, offered: list[str]) -> str | None:
    """`tui-chat.v1` when the client offers it; otherwise no subprotocol: the plain dialect."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class ChatServer:
    """A running tui-chat server: `async with ChatServer(config) as server: ...`."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        # Opened by start(), once the port is ours: a server that cannot listen neither
        # creates a database nor blames one that another server holds.
        self.history: History
        self.accounts: Accounts
        self.hub: Hub
        self.admission = Admission(self)
        self.counter = self.admission.counter
        self._server: asyncio.Server | None = None
        self.tls: ssl.SSLContext | None = None  # with --certfile: what each connection speaks
        self._live: set[ChatConnection] = set()  # open, with a session
        self.connections: set[ChatConnection] = set()  # accepted, until their TCP connection is gone
        self.ws_logger = logging.getLogger("websockets.server")
        self.choose_dialect = choose_dialect  # websockets binds it to each connection's protocol
        self._keepalive: asyncio.Task[None] | None = None
        self.workers: set[asyncio.Task[None]] = set()  # connections' frame handlers, running

    async def start(self) -> None:
        """Listen, then open the history (StorageError if it cannot be), then serve; OSError
        if the address cannot be listened on, ssl.SSLError for a bad certificate."""
        config = self.config
        loop = asyncio.get_running_loop()
        # TLS is started on each connection once it is counted (transport.py), not here.
        self.tls = self._tls_context()
        server = await loop.create_server(
            lambda: ChatConnection(self), config.host, config.port,
            start_serving=False,
        )
        try:
            await self._open_history()
        except BaseException:
            server.close()
            raise
        try:
            await server.start_serving()  # (listen(): another may have taken the port)
        except BaseException:
            server.close()
            await self._close_history()
            raise
        self._server = server
        if config.ping_interval:
            self._keepalive = asyncio.create_task(self._keep_alive())
        log.info("listening on %s (history %s, epoch %s)", self.url, self.history.path,
                 self.history.epoch)

    async def _keep_alive(self) -> None:
        """Every --ping-interval, ping every connection; drop those that have not answered
        within --ping-timeout (dead peers, half-open connections)."""
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        while True:
            await asyncio.sleep(interval)
            pinged = list(self._live)
            for connection in pinged:
                connection.ping()
            if not timeout:
                continue
            await asyncio.sleep(timeout)
            for connection in pinged:
                # A connection we stopped reading (its frames wait their turn) cannot have
                # its pong read yet; it was alive enough to send them.
                if connection.awaiting_pong and connection.is_open() and connection.reading:
                    log.info("%s keepalive: no answer to a ping within %g s; disconnected",
                             peer_name(connection), timeout)
                    connection.abort()

    async def _open_history(self) -> None:
        config = self.config
        db = config.db or default_db_path()
        self.history = History(db, config.history, config.sync)
        try:
            self.accounts = Accounts(db)
        except BaseException:
            await self.history.close()
            raise
        limits = Limits(max_text=config.max_text, backlog=config.backlog, rate=config.rate,
                        burst=config.burst, presence_limit=config.presence_limit,
                        max_frame=config.max_frame, max_pending=config.max_pending)
        self.hub = Hub(self.history, limits, self.accounts, config.token)

    async def _close_history(self) -> None:
        await self.history.close()
        self.accounts.close()

    def _tls_context(self) -> ssl.SSLContext | None:
        return tls_context(self.config.certfile, self.config.keyfile) if self.config.certfile else None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = self._server.sockets[0].getsockname()[0] if self._server else self.config.host
        host = f"[{host}]" if ":" in host else host
        scheme = "wss" if self.config.certfile else "ws"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        """Close every connection with 1001 (going away), waiting up to `close_timeout` + 0.5 s
        for clients to answer, then up to `close_timeout` for the messages being handled, and
        commit the last of them."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._server is not None:
            self.hub.stop()
            self._server.close()
            live = list(self._live)
            for connection in live:
                await connection.close(CloseCode.GOING_AWAY, "server shutting down")
            waiting = [connection.closed_waiter for connection in live]
            if waiting:
                await asyncio.wait(waiting, timeout=self.config.close_timeout + 0.5)
            for connection in list(self.connections):
                connection.abort()
            workers = list(self.workers)  # also those of connections already gone
            if workers:
                _, late = await asyncio.wait(workers, timeout=self.config.close_timeout)
                for worker in late:  # frames still waiting their turn: never acknowledged,
                    worker.cancel()  # so their clients send them again
                if late:
                    await asyncio.wait(late)
            await self._server.wait_closed()
            self._server = None
            await self._close_history()
            log.info("stopped")

    def connections_besides(self, address: tuple | None = None) -> int:
        """Open connections with a session (in a room, or saying who they are), leaving out
        the one from `address` (the client's (host, port)), if any."""
        return sum(1 for connection in self._live if connection.remote_address != address)

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def opened(self, connection: ChatConnection, path: str) -> None:
        """The handshake succeeded: start the session for the room the path names."""
        peer = peer_name(connection)
        session_class: type[Session] = (
            JsonSession if connection.subprotocol == SUBPROTOCOL else PlainSession
        )
        log.info("%s connected to %s (%s)", peer, _loggable(path), session_class.dialect.value)
        try:
            room_name = room_from_path(path)
        except ProtocolError as error:
            log.info("%s refused: %s: %s", peer, error.code, error.message)
            connection.send(session_class.render_error(error))
            asyncio.ensure_future(connection.close(CloseCode.POLICY_VIOLATION, "invalid room name"))
            return
        connection.session = session_class(self.hub, connection, room_name, peer)
        self._live.add(connection)
        connection.session.start()

    def closed(self, connection: ChatConnection) -> None:
        """The TCP connection is gone: leave the room."""
        self._live.discard(connection)
        session = connection.session
        if session is not None:
            session.leave()
            log.info("%s disconnected: %s", session.peer, _close_description(connection))


def _close_description(connection: ChatConnection) -> str:
    code = connection.close_code
    reason = connection.close_reason
    if code is None:
        return "no close frame"
    return f"code {code}" + (f" ({_loggable(reason)})" if reason else "")


def _loggable(text: str) -> str:
    """What a client sent (a request path, a close reason) as the log shows it: as it is
    when it is printable, else quoted with its escape codes written out (never passed on to
    a terminal); at most 200 characters either way."""
    return cut(text if text.isprintable() else quoted(text, 200))
