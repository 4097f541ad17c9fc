"""The server's I/O shell: the WebSocket listener, admission, dialect choice, health, shutdown."""

from __future__ import annotations

import asyncio
import http
import logging
import os
import socket
import ssl
from dataclasses import dataclass

from platformdirs import user_data_path
from websockets.exceptions import InvalidHeader
from websockets.frames import CloseCode
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response

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
from .database import unopenable
from .history import History
from .hub import Hub, Limits
from .limits import WRONG_TOKEN, ConnectionCounter
from .plain import PlainSession
from .sessions import JsonSession, Session
from .tls import tls_context
from .transport import ChatConnection, client_address, peer_name

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


def offered_subprotocols(request: Request) -> list[str]:
    """The subprotocols a handshake offers, parsed as websockets parses them to choose one."""
    try:
        return [name for header in request.headers.get_all("Sec-WebSocket-Protocol")
                for name in parse_subprotocol(header)]
    except InvalidHeader:
        return []  # websockets refuses the handshake itself


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, if there is one (the caller
    refuses a request with more than one: see `repeated_header`)."""
    values = request.headers.get_all("Authorization")
    scheme, _, token = (values[0] if values else "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def repeated_header(request: Request) -> str | None:
    """The name of a header that may appear once but appears more often, if any."""
    for name in ("Origin", "Authorization"):
        if len(request.headers.get_all(name)) > 1:
            return name
    return None


def _is_upgrade(request: Request) -> bool:
    # Connection may be sent as several headers: its values are one list.
    return "upgrade" in ",".join(request.headers.get_all("Connection")).lower()


class ChatServer:
    """A running tui-chat server: `async with ChatServer(config) as server: ...`."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        # Opened by start(), once the port is ours: a server that cannot listen neither
        # creates a database nor blames one that another server holds.
        self.history: History
        self.accounts: Accounts
        self.hub: Hub
        self.counter = ConnectionCounter(self.config.max_per_ip, self.config.max_clients)
        self._server: asyncio.Server | None = None
        self._live: set[ChatConnection] = set()  # open, with a session
        self._all: set[ChatConnection] = set()  # accepted, until the TCP connection is gone
        self._unanswered = 0  # connections over the limits closed without an answer, unlogged
        self.ws_logger = logging.getLogger("websockets.server")
        self.choose_dialect = choose_dialect  # websockets binds it to each connection's protocol
        self._keepalive: asyncio.Task[None] | None = None
        self.workers: set[asyncio.Task[None]] = set()  # connections' frame handlers, running

    async def start(self) -> None:
        """Listen, then open the history (StorageError if it cannot be), then serve; OSError
        if the address cannot be listened on, ssl.SSLError for a bad certificate."""
        config = self.config
        loop = asyncio.get_running_loop()
        context = self._tls_context()
        server = await loop.create_server(
            lambda: ChatConnection(self), config.host, config.port, ssl=context,
            ssl_handshake_timeout=(config.handshake_timeout or None) if context else None,
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
            for connection in list(self._all):
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

    def admit(self, connection: ChatConnection, request: Request) -> Response | None:
        """Answer health checks; refuse foreign origins, bad tokens and connections over the
        limits at the handshake, with an HTTP status, before any room data is sent."""
        if request.path == "/healthz" and not _is_upgrade(request):
            return connection.protocol.reject(http.HTTPStatus.OK, "ok\n")
        peer = peer_name(connection)
        repeated = repeated_header(request)
        if repeated is not None:
            log.info("%s refused: more than one %s header", peer, repeated)
            return connection.protocol.reject(http.HTTPStatus.BAD_REQUEST,
                                              f"More than one {repeated} header.\n")
        origin = request.headers.get("Origin")
        if self.config.allow_origins and origin is not None and (
            origin not in self.config.allow_origins
        ):
            log.info("%s refused: origin %r is not allowed", peer, origin)
            return connection.protocol.reject(http.HTTPStatus.FORBIDDEN, "Origin not allowed.\n")
        gate = self.hub.token_gate
        if gate is not None:
            given = bearer_token(request)
            offers_json = SUBPROTOCOL in offered_subprotocols(request)
            refusal = gate.refusal(given, client_address(connection)) if given is not None else None
            if refusal == WRONG_TOKEN:
                log.info("%s refused: wrong token", peer)
                return connection.protocol.reject(http.HTTPStatus.UNAUTHORIZED, refusal + "\n")
            if refusal is not None:
                log.info("%s refused: too many wrong tokens from this address", peer)
                return connection.protocol.reject(http.HTTPStatus.TOO_MANY_REQUESTS,
                                                  refusal + "\n")
            if given is None and not offers_json:
                log.info("%s refused: no token", peer)
                return connection.protocol.reject(
                    http.HTTPStatus.UNAUTHORIZED,
                    "This server needs a token: send the header Authorization: Bearer TOKEN.\n",
                )
            connection.authorized = given is not None
        if connection.refusal == ConnectionCounter.TOTAL:
            log.warning("%s refused: the server is full (%d connections)", peer,
                        self.config.max_clients)
            return connection.protocol.reject(http.HTTPStatus.SERVICE_UNAVAILABLE, "Server full.\n")
        if connection.refusal == ConnectionCounter.PER_ADDRESS:
            log.warning("%s refused: %d connections from this address already", peer,
                        self.config.max_per_ip)
            return connection.protocol.reject(http.HTTPStatus.TOO_MANY_REQUESTS,
                                      "Too many connections from your address.\n")
        return None

    def accepted(self, connection: ChatConnection) -> bool:
        """A TCP connection came in: False if it is to be closed at once. It counts against
        --max-per-ip and --max-clients from now on, while it is in the handshake too, so
        connections that never finish one cannot use up the server's file descriptors. One
        over a limit is refused when its request comes, with the HTTP status that names the
        limit (`admit`), if it comes within REFUSAL_WAIT s; past `counter.refusals` such
        connections waiting, more are closed at once without an answer."""
        counter = self.counter
        address = client_address(connection)
        connection.refusal = counter.admit(address)
        if connection.refusal is None:
            def release() -> None:
                counter.release(address)
                self._all.discard(connection)
        elif counter.refuse_later():
            def release() -> None:
                counter.refused()
                self._all.discard(connection)
                if not counter.refusing and self._unanswered:
                    if self._unanswered > 1:
                        log.warning("%d connections over the limits were closed without an"
                                    " answer in all", self._unanswered)
                    self._unanswered = 0
        else:
            self.unanswered(connection, f"{counter.refusing} others wait to be refused")
            return False
        self._all.add(connection)
        connection.on_lost = release
        return True

    def unanswered(self, connection: ChatConnection, why: str) -> None:
        """A connection over the limits is closed without an answer, for reason `why`. The
        first of a flood is logged, the rest counted, and their number logged once none of
        them wait (so a flood cannot fill the log)."""
        if not self._unanswered:
            log.warning("%s over the connection limits closed without an answer: %s",
                        peer_name(connection), why)
        self._unanswered += 1

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
