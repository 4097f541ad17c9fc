"""The server's connections: websockets' sans-I/O `ServerProtocol` driven by asyncio callbacks.

websockets does the protocol work (handshake, framing, UTF-8 and size limits, the closing
handshake, answering pings); this class only moves bytes between it and the socket. No task
exists for an idle connection: a task runs only while a client's messages wait to be
handled, which keeps memory per connection small enough for rooms of ten thousand.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.exceptions import InvalidMessage
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from .admission import REFUSAL_WAIT, peer_name
from .output import OutputBound
from .tls import start_tls

if TYPE_CHECKING:
    from .sessions import Session

log = logging.getLogger("tui_chat.server")
OPEN, CONNECTING, CLOSING = State.OPEN, State.CONNECTING, State.CLOSING
# Stop reading from a client with this many messages, or bytes of them, waiting; go on below
# the low marks. Generous in messages, so that a bot that sends a few hundred at once is
# still read (and its pings answered) while they wait their turn under the rate limit.
INBOX_HIGH, INBOX_LOW = 1024, 256
INBOX_HIGH_BYTES, INBOX_LOW_BYTES = 256 * 1024, 64 * 1024
# Input is parsed this many bytes at a time, so that one read (up to 256 KiB) cannot put
# thousands of tiny frames in the inbox at once: at most INBOX_HIGH + FEED / 6 wait.
FEED = 1024
# Frames parsed for one connection in one turn of the event loop (give or take a FEED's
# worth); the rest of its input waits for the next turn, with reading paused. Pings, pongs
# and empty fragments never reach the inbox, so without this a client sending nothing but
# those would have the whole loop to itself for seconds at a time.
FRAMES_PER_TURN = 128
# The answer to what is not an HTTP request, most often a path of raw UTF-8 from a
# hand-written client (websockets itself would close without a word).
UNPARSED_REQUEST = ("Failed to open a WebSocket connection: the request is not valid HTTP. A"
                    " path is ASCII: percent-encode anything else (/caf%C3%A9, not /café).\n")


class ChatConnection(OutputBound, asyncio.Protocol):
    """One client connection. The server counts it (`admission.accepted`), decides on its
    handshake (`admission.admit`), starts its session (`opened`) and forgets it (`closed`);
    its output is bound (`OutputBound`, output.py)."""

    __slots__ = ("server", "protocol", "transport", "remote_address", "session", "inbox",
                 "worker", "fragments", "fragments_opcode", "timer", "greeting", "authorized", "paused",
                 "allowance", "reading", "awaiting_pong", "subprotocol", "on_lost", "closed_waiter",
                 "delivered", "held", "catchup", "inbox_bytes", "refusal", "securing")

    def __init__(self, server: Any) -> None:
        self.server = server
        config = server.config
        self.protocol = ServerProtocol(select_subprotocol=server.choose_dialect,
                                       max_size=config.max_frame or None, logger=server.ws_logger)
        self.transport: asyncio.Transport | None = None
        self.remote_address: Any = None
        self.session: Session | None = None
        self.inbox: deque[tuple[str | bytes, int]] = deque()  # (message, its size as sent)
        self.inbox_bytes = 0  # the sizes in the inbox: bytes as sent (UTF-8 for text)
        self.worker: asyncio.Task[None] | None = None
        self.fragments: bytearray | None = None
        self.fragments_opcode = Opcode.TEXT
        self.timer: asyncio.TimerHandle | None = None
        self.greeting = self.authorized = self.paused = self.awaiting_pong = False
        self.allowance = 0  # output allowed to wait while a greeting drains (paused)
        self.reading = True
        self.subprotocol: str | None = None
        self.on_lost: Any = None
        self.delivered = 0  # how far this member has been sent its room's stream (fanout.py)
        self.held = b""  # input read but not parsed yet, while the inbox is full
        self.catchup: Any = None  # the catch-up being written to it (catchup.py)
        self.refusal: str | None = None  # the limit it is over (ConnectionCounter), if any
        self.securing: asyncio.Task[None] | None = None  # its TLS handshake, while under way
        self.closed_waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.remote_address = transport.get_extra_info("peername")
        if not self.server.admission.accepted(self):
            self.abort()
            return
        loop = asyncio.get_running_loop()
        timeout = self._handshake_wait()
        if timeout:  # from the TCP accept: a TLS handshake counts too
            self.timer = loop.call_later(timeout, self._handshake_timeout)
        if self.server.tls is None:
            self._bound_output()
        else:  # counted already: a stalled TLS handshake holds a place, not a free descriptor
            self.securing = loop.create_task(self._secure(transport))

    async def _secure(self, transport: asyncio.BaseTransport) -> None:
        """Speak TLS on the connection (its handshake within the handshake timeout); what
        the client sends once it is done is held until then, and parsed after."""
        try:
            secured = await start_tls(transport, self, self.server.tls, self._handshake_wait(),
                                      self._take_held)
        except (Exception, asyncio.CancelledError) as error:  # a bad client, not a bug
            log.debug("%s TLS handshake failed: %r", peer_name(self), error)
            # TLS does not tell its protocol of a connection lost during its handshake: the
            # connection is closed and forgotten (its place given back) here.
            self.securing = None
            self.abort()
            self.connection_lost(None)
            return
        finally:
            self.securing = None
        if self.transport is None:  # gone meanwhile
            return
        self.transport = secured
        self._bound_output()
        if held := self._take_held():
            self._feed(held)

    def _take_held(self) -> bytes:
        held, self.held = self.held, b""
        return held

    def data_received(self, data: bytes) -> None:
        if self.held or self.securing is not None:  # (read before reading paused, or before
            self.held += data  # the TLS handshake's end was seen): after what is held
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse `data` FEED bytes at a time; once the inbox is full, hold the rest until
        the worker has made room (`_work`), and after FRAMES_PER_TURN frames until the next
        turn of the loop (`_next_turn`)."""
        protocol = self.protocol
        if len(data) <= FEED:
            protocol.receive_data(data)
            self._handle_events()
        else:
            frames = 0
            for start in range(0, len(data), FEED):
                if self._inbox_full():
                    self.held = data[start:]
                    break
                if frames >= FRAMES_PER_TURN:
                    self.held = data[start:]
                    self._pause_reading()
                    asyncio.get_running_loop().call_soon(self._next_turn)
                    break
                protocol.receive_data(data[start:start + FEED])
                frames += self._handle_events()
        self._write_protocol_output()

    def _next_turn(self) -> None:
        """Go on parsing what was held back for its turn (unless the inbox is full now:
        then the worker goes on once it has made room)."""
        if self._inbox_full() or not self.held:
            return
        held, self.held = self.held, b""
        self._feed(held)
        self._resume_reading()

    def _pause_reading(self) -> None:
        if self.reading and self.transport is not None:
            self.transport.pause_reading()
            self.reading = False

    def _resume_reading(self) -> None:
        """Read again, unless input is still held back or the inbox is full (also while
        closing: what the client sent before its answer to our close is still read)."""
        if (not self.reading and not self.held and not self._inbox_full()
                and self.protocol.state in (OPEN, CLOSING) and self.transport is not None):
            self.transport.resume_reading()  # type: ignore[union-attr]
            self.reading = True

    def eof_received(self) -> None:
        self._parse_held()
        self.protocol.receive_eof()
        self._handle_events()
        self._write_protocol_output()

    def connection_lost(self, exc: Exception | None) -> None:
        self._parse_held()
        self.protocol.receive_eof()  # idempotent: makes the protocol state CLOSED
        self.protocol.data_to_send()  # output that can no longer be sent (see below)
        if self.timer is not None:
            self.timer.cancel()
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            if self.worker is not None:  # what it sent is still handled (a raw client's lines
                self.worker.add_done_callback(lambda _: on_lost())  # posted): it keeps its place
            else:
                on_lost()
        if self.session is not None:
            self.server.closed(self)
        if not self.closed_waiter.done():
            self.closed_waiter.set_result(None)
        # The session refers back to this connection, and websockets' protocol object to
        # itself (through its parser, its subprotocol chooser, and the exception that ended
        # its parsing, whose traceback holds, after a failed handshake, the headers read so
        # far: up to a megabyte for a client that never finished them): cycles that live
        # until the garbage collector's next full pass, which the quiet collector makes
        # rare. Break them, and let go of what they would keep: the output not sent (a
        # catch-up of megabytes, for a client that hung up), the transport and the session.
        self.protocol.parser.close()  # it takes no more input
        self.protocol.handshake_exc = self.protocol.parser_exc = None
        vars(self.protocol).pop("select_subprotocol", None)  # (bound to the protocol itself)
        self.transport = None
        self.session = None

    # -- from the protocol ---------------------------------------------------------------

    def _handle_events(self) -> int:
        """Handle what the protocol parsed; returns how many events that was."""
        events = self.protocol.events_received()
        for event in events:
            if isinstance(event, Request):
                self._handshake(event)
            else:
                self._frame(event)
        return len(events)

    def _handshake(self, request: Request) -> None:
        response = self.server.admission.admit(self, request) or self.protocol.accept(request)
        self.protocol.send_response(response)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if response.status_code == 101:
            self.subprotocol = self.protocol.subprotocol
            self.server.opened(self, request.path)
        else:  # answered: the client closes now, or is closed (without a word in the log)
            self.timer = asyncio.get_running_loop().call_later(
                self.server.config.close_timeout, self.abort)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(opcode, frame.data)
            else:
                self.fragments, self.fragments_opcode = bytearray(frame.data), opcode
        elif opcode is Opcode.CONT and self.fragments is not None:
            # Into one buffer: a message's size is bounded (max_size), its fragments' number
            # is not (millions of empty ones would each have cost a list entry).
            self.fragments += frame.data
            if frame.fin:
                data, self.fragments = bytes(self.fragments), None
                self._message(self.fragments_opcode, data)
        elif opcode is Opcode.PONG:
            self.awaiting_pong = False

    def _message(self, opcode: Opcode, data: bytes) -> None:
        if opcode is Opcode.TEXT:
            try:
                message: str | bytes = data.decode()
            except UnicodeDecodeError:
                self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return
        else:
            message = data
        if self.session is None:
            return
        self.inbox.append((message, len(data)))
        self.inbox_bytes += len(data)
        if self.worker is None:
            worker = asyncio.get_running_loop().create_task(self._work())
            # A loop that starts tasks eagerly (Textual's, on Python 3.12+, when the app
            # serves) may have run it to the end already: then there is no worker to keep.
            if not worker.done():
                self.worker = worker
                self.server.workers.add(worker)  # stop() waits for it, even once we are gone
                worker.add_done_callback(self.server.workers.discard)
        if self._inbox_full():
            self._pause_reading()  # a client may not queue unbounded work

    def _parse_held(self) -> None:
        """The input ends: what was read but held back is parsed now, so that what a client
        sent before it went is handled like the rest (a raw client's lines are posted): up
        to the inbox bound, past which the rest is dropped (a client that floods and hangs
        up does not leave hours of lines behind it), or all of it when the server is
        stopping (what a client sent before its answer to the server's close is kept).
        Nothing is held after this: the protocol takes no more input (a turn still to come
        for it has nothing to parse)."""
        held, self.held = self.held, b""
        if not held or self.session is None or self.protocol.state not in (OPEN, CLOSING):
            return
        stopping = self.server.hub.closing
        for start in range(0, len(held), FEED):
            if not stopping and self._inbox_full():
                log.warning("%s gone with %d bytes of input past its inbox bound: dropped",
                            peer_name(self), len(held) - start)
                return
            self.protocol.receive_data(held[start:start + FEED])
            self._handle_events()

    def _inbox_full(self) -> bool:
        return len(self.inbox) >= INBOX_HIGH or self.inbox_bytes >= INBOX_HIGH_BYTES

    async def _work(self) -> None:
        """Handle waiting messages one by one, in order; ends when none are left."""
        session = self.session
        try:
            while self.inbox and session is not None:
                frame, size = self.inbox.popleft()
                self.inbox_bytes -= size
                await session.on_frame(frame)
                if (not self.reading and len(self.inbox) <= INBOX_LOW
                        and self.inbox_bytes <= INBOX_LOW_BYTES
                        and self.protocol.state in (OPEN, CLOSING)):  # (closing: stopping)
                    held, self.held = self.held, b""
                    if held:
                        self._feed(held)
                    self._resume_reading()
        except Exception:  # a bug: say so and close, rather than leave the client waiting
            log.exception("%s: internal error; connection closed", peer_name(self))
            self.inbox.clear()
            self.inbox_bytes = 0
            await self.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self.worker = None

    def _write_protocol_output(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            # Nowhere to go: drop it, rather than let websockets keep it (its protocol
            # object lives in a cycle with its parser until the next full collection).
            self.protocol.data_to_send()
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
                # Checked unless this is the greeting, written at once (it may be over the
                # limit): also while a catch-up waits for room, which answers to a flood of
                # pings would otherwise grow without bound.
                if self.paused and (not self.greeting or self.catchup is not None):
                    self.check_backlog()
            else:  # the end of what it sends
                if self._request_unparsed():
                    transport.write(self.protocol.reject(400, UNPARSED_REQUEST).serialize())
                if transport.can_write_eof():
                    transport.write_eof()
                else:
                    transport.close()
        if self.protocol.close_expected() and self.timer is None:
            timeout = self.server.config.close_timeout
            self.timer = asyncio.get_running_loop().call_later(timeout, self.abort)

    def _request_unparsed(self) -> bool:
        """The client sent what is not an HTTP request (not one that ended early), which
        websockets answers with nothing but the end of the connection."""
        failure = self.protocol.handshake_exc
        return (self.protocol.state is CONNECTING and isinstance(failure, InvalidMessage)
                and not isinstance(failure.__cause__, EOFError))

    def _handshake_timeout(self) -> None:
        self.timer = None
        if self.protocol.state is CONNECTING:
            if self.refusal is None:
                log.info("%s handshake not finished within %s s; closed", peer_name(self),
                         self.server.config.handshake_timeout)
            else:
                self.server.admission.unanswered(self, f"no request within {self._handshake_wait():g} s")
            self.abort()
            if self.securing is not None:  # (uvloop may never say the TLS handshake ended)
                self.securing.cancel()

    def _handshake_wait(self) -> float:
        """How long the handshake may take (0: no limit): --handshake-timeout, and no more
        than REFUSAL_WAIT for a connection over a limit."""
        timeout = self.server.config.handshake_timeout
        if self.refusal is not None:
            timeout = min(timeout or REFUSAL_WAIT, REFUSAL_WAIT)
        return timeout

    # -- for the server and the session ----------------------------------------------------

    def is_open(self) -> bool:
        return self.protocol.state is OPEN

    def send(self, payload: str) -> None:
        """Write one text message now (nothing if the connection is no longer open)."""
        if self.protocol.state is OPEN:
            self.protocol.send_text(payload.encode())
            self._write_protocol_output()

    def ping(self) -> None:
        """Send a keepalive ping; `awaiting_pong` stays set until any pong arrives."""
        if self.protocol.state is OPEN:
            self.awaiting_pong = True
            self.protocol.send_ping(b"keepalive")
            self._write_protocol_output()

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (the client answers, then the TCP connection closes)."""
        self.start_close(code, reason)

    def start_close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """`close`, now: the connection is no longer open when this returns."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            self._write_protocol_output()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason
