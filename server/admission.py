"""Who gets in: connections counted from the TCP accept, and each handshake let through or refused."""

from __future__ import annotations

import http
import ipaddress
import logging
import time
from typing import TYPE_CHECKING, Any

from websockets.exceptions import InvalidHeader
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response

from tui_chat.protocol import SUBPROTOCOL

from .limits import WRONG_TOKEN, ConnectionCounter, yours
if TYPE_CHECKING:
    from .app import ChatServer
    from .transport import ChatConnection

log = logging.getLogger("tui_chat.server")
UNANSWERED_LOG_GAP = 60.0  # seconds: a flood of unanswered connections is logged this often
REFUSAL_LOG_GAP = 10.0  # seconds: each kind of refused handshake is logged at most this often
# A connection over --max-per-ip or --max-clients may wait this long for its request, to be
# refused with an HTTP status saying which limit; then it is closed.
REFUSAL_WAIT = 1.0


def client_address(connection: Any) -> str:
    """Who the other end is, for the limits that count per client: its IPv4 address, or the
    /64 network of its IPv6 address (one subscriber's share, which hands its machines any
    number of addresses; an IPv4 address mapped into IPv6 counts as itself, and a loopback
    or link-local one, which every network has, as itself with its interface)."""
    address = connection.remote_address
    host = str(address[0]) if isinstance(address, tuple) and address else str(address or "?")
    if ":" not in host:
        return host
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:  # not an IP address: counted as given
        return host
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if ip.is_loopback or ip.is_link_local:
        return host
    return f"{ipaddress.IPv6Address(int(ip) >> 64 << 64)}/64"


def peer_name(connection: Any) -> str:
    """`host:port` of the other end, for log lines."""
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"{host}:{address[1]}"
    return str(address)


class Admission:
    """The server's door: `accepted` counts each TCP connection against --max-per-ip and
    --max-clients, `admit` answers its handshake (health checks, origins, tokens, limits)."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.config = server.config
        self.counter = ConnectionCounter(self.config.max_per_ip, self.config.max_clients)
        self._unanswered = 0  # connections over the limits closed without an answer, unlogged
        self._unanswered_since = 0.0  # (monotonic) when the first of them was
        self._refusals_said: dict[str, tuple[float, int]] = {}  # kind -> (last logged, unsaid)

    def admit(self, connection: ChatConnection, request: Request) -> Response | None:
        """Answer health checks; refuse foreign origins, bad tokens and connections over the
        limits at the handshake, with an HTTP status, before any room data is sent."""
        if request.path == "/healthz" and not _is_upgrade(request):
            return connection.protocol.reject(http.HTTPStatus.OK, "ok\n")
        repeated = repeated_header(request)
        if repeated is not None:
            return self._refuse(connection, http.HTTPStatus.BAD_REQUEST,
                                f"More than one {repeated} header.", "more than one %s header",
                                repeated)
        origin = request.headers.get("Origin")
        if self.config.allow_origins and origin is not None and (
            origin not in self.config.allow_origins
        ):
            return self._refuse(connection, http.HTTPStatus.FORBIDDEN, "Origin not allowed.",
                                "origin %r is not allowed", origin)
        gate = self.server.hub.token_gate
        if gate is not None:
            given = bearer_token(request)
            offers_json = SUBPROTOCOL in offered_subprotocols(request)
            refusal = gate.refusal(given, client_address(connection)) if given is not None else None
            if refusal == WRONG_TOKEN:
                return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, refusal, "wrong token")
            if refusal is not None:
                return self._refuse(connection, http.HTTPStatus.TOO_MANY_REQUESTS, refusal,
                                    "too many wrong tokens from this address")
            if given is None and not offers_json:
                return self._refuse(connection, http.HTTPStatus.UNAUTHORIZED, "This server needs a"
                                    " token: send the header Authorization: Bearer TOKEN.", "no token")
            connection.authorized = given is not None
        self._recount(connection)
        if connection.refusal == ConnectionCounter.TOTAL:
            return self._refuse(connection, http.HTTPStatus.SERVICE_UNAVAILABLE, "Server full.",
                                "the server is full (%d connections)", self.config.max_clients,
                                level=logging.WARNING)
        if connection.refusal == ConnectionCounter.PER_ADDRESS:
            return self._refuse(connection, http.HTTPStatus.TOO_MANY_REQUESTS,
                                f"Too many connections from {yours(client_address(connection))}.",
                                "%d connections from %s already", self.config.max_per_ip,
                                client_address(connection), level=logging.WARNING)
        return None

    def _refuse(self, connection: ChatConnection, status: http.HTTPStatus, answer: str,
                why: str, *args: object, level: int = logging.INFO) -> Response:
        """Refuse a handshake with `status` and `answer`, and log `why % args`: each kind of
        refusal (`why`) at most once per REFUSAL_LOG_GAP, the next line saying how many like
        it went unsaid meanwhile, so a flood of refused handshakes cannot fill the log."""
        now = time.monotonic()
        said, unsaid = self._refusals_said.get(why, (-REFUSAL_LOG_GAP, 0))
        if now - said < REFUSAL_LOG_GAP:
            self._refusals_said[why] = (said, unsaid + 1)
        else:
            self._refusals_said[why] = (now, 0)
            more = f" ({unsaid} more such refusals since the last line like this)" if unsaid else ""
            log.log(level, "%s refused: " + why + "%s", peer_name(connection), *args, more)
        return connection.protocol.reject(status, answer + "\n")

    def accepted(self, connection: ChatConnection) -> bool:
        """A TCP connection came in: False if it is to be closed at once. It counts against
        --max-per-ip and --max-clients from now on, while it is in the handshake too, so
        connections that never finish one cannot use up the server's file descriptors. One
        over a limit is refused when its request comes, with the HTTP status that names the
        limit (`admit`), if it comes within REFUSAL_WAIT s; past `counter.refusals` such
        connections waiting, more are closed at once without an answer."""
        counter = self.counter
        connection.refusal = counter.admit(client_address(connection))
        if connection.refusal is not None and not counter.refuse_later():
            self.unanswered(connection, f"{counter.refusing} others wait to be refused")
            return False
        self.server.connections.add(connection)
        connection.on_lost = lambda: self._lost(connection)
        return True

    def _recount(self, connection: ChatConnection) -> None:
        """A connection over a limit when it came sends its request: if a place has come
        free since, it takes it rather than being refused."""
        if connection.refusal is not None and self.counter.admit(client_address(connection)) is None:
            self.counter.refused()
            connection.refusal = None

    def _lost(self, connection: ChatConnection) -> None:
        """Forget a connection `accepted` counted, as it was counted last."""
        self.server.connections.discard(connection)
        if connection.refusal is None:
            self.counter.release(client_address(connection))
            return
        self.counter.refused()
        if not self.counter.refusing:
            self._log_unanswered()

    def unanswered(self, connection: ChatConnection, why: str) -> None:
        """A connection over the limits is closed without an answer, for reason `why`. The
        first of a flood is logged and the rest counted; their number is logged once none
        of them wait, or a minute after the first (so a flood cannot fill the log)."""
        now = time.monotonic()
        if not self._unanswered:
            log.warning("%s over the connection limits closed without an answer: %s",
                        peer_name(connection), why)
            self._unanswered_since = now
        self._unanswered += 1
        if now - self._unanswered_since >= UNANSWERED_LOG_GAP:
            self._log_unanswered()

    def _log_unanswered(self) -> None:
        if self._unanswered > 1:
            log.warning("%d connections over the limits were closed without an answer in all",
                        self._unanswered)
        self._unanswered = 0


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
