"""The server's I/O shell: the WebSocket listener, dialect choice, health checks, shutdown."""

from __future__ import annotations

import http
import logging
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from platformdirs import user_data_path

from server.history import History
from server.hub import Hub, Limits
from server.sessions import JsonSession, PlainSession, Session
from tui_chat.protocol import (
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_TEXT,
    SUBPROTOCOL,
    ProtocolError,
    room_from_path,
)

log = logging.getLogger("tui_chat.server")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `tui-chat-server` can be told on its command line."""

    host: str = "127.0.0.1"
    port: int = 8765
    db: str = ""  # empty: history.db in the user's data directory; ":memory:" keeps none
    history: int = 10_000
    backlog: int = 50
    max_text: int = DEFAULT_MAX_TEXT
    max_frame: int = DEFAULT_MAX_FRAME
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 1.0


def default_db_path() -> str:
    """Where history lives unless --db says otherwise."""
    return str(user_data_path("tui-chat", appauthor=False) / "history.db")


def peer_name(connection: ServerConnection) -> str:
    """`host:port` of the other end, for log lines."""
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


def choose_dialect(connection: ServerConnection, offered: list[str]) -> str | None:
    """`tui-chat.v1` when the client offers it; otherwise no subprotocol: the plain dialect."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def _health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz" and "upgrade" not in request.headers.get("Connection", "").lower():
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None


class ChatServer:
    """A running tui-chat server: `async with ChatServer(config) as server: ...`."""

    def __init__(self, config: ServerConfig | None = None, history: History | None = None) -> None:
        self.config = config or ServerConfig()
        self.history = history or History(self.config.db or default_db_path(), self.config.history)
        self.hub = Hub(
            self.history,
            Limits(self.config.max_text, self.config.max_frame, self.config.backlog),
        )
        self._server: Server | None = None

    async def start(self) -> None:
        config = self.config
        self._server = await serve(
            self._handle,
            config.host,
            config.port,
            select_subprotocol=choose_dialect,
            process_request=_health,
            compression=None,
            max_size=config.max_frame,
            ping_interval=config.ping_interval or None,
            ping_timeout=config.ping_timeout or None,
            close_timeout=config.close_timeout,
            logger=logging.getLogger("websockets.server"),
        )
        log.info("listening on %s (history %s, epoch %s)", self.url, self.history.path,
                 self.history.epoch)

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = self._server.sockets[0].getsockname()[0] if self._server else self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.port}"

    async def stop(self) -> None:
        """Close every connection with 1001 (going away) and wait for the handlers to finish."""
        if self._server is not None:
            self.hub.closing = True
            self._server.close(code=CloseCode.GOING_AWAY, reason="server shutting down")
            await self._server.wait_closed()
            self._server = None
        await self.history.close()
        log.info("stopped")

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, connection: ServerConnection) -> None:
        peer = peer_name(connection)
        session_class: type[Session] = (
            JsonSession if connection.subprotocol == SUBPROTOCOL else PlainSession
        )
        path = connection.request.path if connection.request else "/"
        log.info("%s connected to %s (%s)", peer, path, session_class.dialect.value)
        try:
            room_name = room_from_path(path)
        except ProtocolError as error:
            log.info("%s refused: %s: %s", peer, error.code, error.message)
            await connection.send(session_class.render_error(error))
            await connection.close(CloseCode.POLICY_VIOLATION, "invalid room name")
            return
        session = session_class(self.hub, connection, room_name, peer)
        try:
            await session.run()
        finally:
            session.leave()
            log.info("%s disconnected: %s", peer, _close_description(connection))


def _close_description(connection: ServerConnection) -> str:
    code = connection.close_code
    reason = connection.close_reason
    if code is None:
        return "no close frame"
    return f"code {code}" + (f" ({reason})" if reason else "")
