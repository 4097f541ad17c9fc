"""The client's networking, with no UI: connect, hello, reconnect, pending messages, decoding.

`ChatClient.run()` owns one connection at a time and reports everything that happens as
`Update` objects through a callback, so the Textual app (or a script, or a test) stays a thin
layer over it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import broadcast
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.frames import CloseCode

from tui_chat import __version__
from tui_chat.cleaning import clean_text
from tui_chat.nicknames import nick_key
from tui_chat.position import Position
from tui_chat.protocol import (
    BAD_ROOM,
    MAX_CID,
    NICK_ERRORS,
    NICK_UNCHANGED,
    RATE_LIMITED,
    SUBPROTOCOL,
    TOO_LONG,
    UNAUTHORIZED,
    UNAVAILABLE,
    Error,
    Hello,
    Me,
    Message,
    Nick,
    Presence,
    ProtocolError,
    Say,
    Users,
    Welcome,
    Who,
    decode_server,
    encode,
    frame_type,
)
from tui_chat.reasons import close_reason, describe, one_line, refused_status
from tui_chat.renames import Rename, replay
from tui_chat.updates import (
    Backoff,
    Joined,
    NickRefused,
    OutboxChanged,
    OutboxSaving,
    Outgoing,
    PresenceChanged,
    Received,
    Refused,
    State,
    StateChanged,
    Update,
    UsersListed,
    comings_and_goings,
    users_after,
)

if TYPE_CHECKING:
    from tui_chat.outbox import OutboxStore

RETRYABLE = frozenset({RATE_LIMITED, UNAVAILABLE})  # kept, and sent again after a reconnect
MAX_INCOMING_FRAME = 16 * 1024 * 1024  # a welcome carries history; a hostile server gets no more
# Frames handled before the event loop gets a turn: one read in a burst holds a thousand
# frames or more, and a key press must not wait for all of them (docs/performance.md).
FRAMES_PER_TURN = 64


class HeardConnection(ClientConnection):
    """A client connection that knows when the server last sent it any bytes (a frame still
    arriving counts: a long welcome on a slow link is not silence)."""

    heard_at = 0.0  # time.monotonic() of the last bytes received

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        super().data_received(data)


async def recv_within(connection: ClientConnection, timeout: float) -> str | bytes:
    """`connection.recv()`, or TimeoutError after `timeout` s. (Not `asyncio.wait_for`, which
    on Python 3.10 and 3.11 can lose a cancellation that comes as the message does.)"""
    receiving = asyncio.ensure_future(connection.recv())
    try:
        done, _ = await asyncio.wait({receiving}, timeout=timeout)
    finally:
        if not receiving.done():  # timed out, or cancelled ourselves: stop receiving
            receiving.cancel()  # (websockets' recv() may be cancelled: nothing is lost)
    if not done:
        raise asyncio.TimeoutError
    return receiving.result()


def new_sender_key() -> str:
    """A client's secret `sender_key`: 24 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(24)


class ChatClient:
    """One user's connection to one room, kept alive across disconnects and server restarts."""

    def __init__(
        self,
        url: str,
        nick: str,
        on_update: Callable[[Update], None],
        *,
        backoff: Backoff | None = None,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10,
        token: str | None = None,
        password: str | None = None,
        quiet: bool = False,
    ) -> None:
        self.url = url
        self.nick = nick
        self.token = token
        self.password = password
        self.quiet = quiet  # join and leave without the room being told (a script's post)
        self.on_update = on_update
        self.backoff = backoff or Backoff()
        self.ssl_context = ssl_context
        self.open_timeout = open_timeout
        self.state = State.CONNECTING
        self.position = Position()  # in the room's history
        self.users: tuple[str, ...] = ()
        self.max_text: int | None = None
        self.resume: str | None = None  # from the last welcome: reclaims our nickname at once
        self.max_frame: int | None = None
        self.auth_failed = False  # the server wants a (different) token: retrying is no use
        self.joined_nick: str | None = None  # the nickname of the last welcome
        self.outbox: dict[str, Outgoing] = {}
        self._cids = (f"{secrets.token_hex(8)}-{n}" for n in itertools.count(1))
        # Ours under every nickname: a message resent under another name after a refused
        # rejoin is still recognised as ours (None: cids are the nickname's, as before).
        self.sender_key: str | None = new_sender_key()
        self.store: OutboxStore | None = None
        self._connection: ClientConnection | None = None
        self._joined = False
        self._hello_sent = False  # on this connection, a hello not yet answered
        # Renames to make once joined, in order, and those sent and not yet answered (the
        # server answers them in order; any left when the connection drops are made again).
        self._deferred: list[Rename] = []
        self._renaming: list[Rename] = []
        self._server_was_down = False  # since the last welcome: the server stopped or refused
        self._run: str | None = None  # the server's run id in the last welcome
        self._closing: asyncio.Task[None] | None = None
        self._attempt: asyncio.Future[tuple[str, bool]] | None = None  # connecting, joined, …
        self._attempt_given_up = False  # by stop(), while connecting
        self._wake = asyncio.Event()  # ends the wait before the next attempt
        self._waiting = False  # for the next attempt (state RECONNECTING, retry_at set)
        self._stopped = False

    def attach_store(self, store: OutboxStore) -> None:
        """Keep the outbox in `store`: what it holds from a previous run is pending again."""
        self.store = store
        store.on_failure = lambda failure: self.on_update(OutboxSaving(failure))
        loaded = store.load()
        for outgoing in loaded:
            self.outbox.setdefault(outgoing.cid, outgoing)
        # What was loaded may have been stored already: it is resent as the same sender.
        self._set_sender_key(store.sender_key if loaded else self.sender_key)
        if self.outbox:
            self._outbox_changed()

    def keep_pending(self) -> OutboxStore | None:
        """Save what is pending now (as quitting does): the store that keeps it, or None if it
        is not kept on disk (there is no store, or it cannot be written)."""
        if self.store is None or not self.store.save_now(self.outbox):
            return None
        return self.store

    @property
    def joined_once(self) -> bool:
        """Whether any connection of this client has joined (reconnecting, not connecting)."""
        return self.joined_nick is not None

    @property
    def local_address(self) -> tuple | None:
        """This end's (host, port) of the open connection, None without one."""
        return self._connection.local_address if self._connection is not None else None

    # -- what the user does ---------------------------------------------------------------

    def say(self, text: str) -> Outgoing:
        """Queue a chat line; it is sent now if online, or as soon as the client is back.
        The text is cleaned first, as the server would (a lone surrogate, which a script's
        undecodable input becomes, could not even be encoded)."""
        return self._queue(Outgoing(next(self._cids), clean_text(text), "chat"))

    def me(self, text: str) -> Outgoing:
        """Queue an action (`/me`)."""
        return self._queue(Outgoing(next(self._cids), clean_text(text), "action"))

    def rename(self, nick: str, password: str | None = None) -> bool:
        """Change nickname: a `nick` request when joined, a new hello if the last one was
        refused. Otherwise the rename waits until the client has joined under its current
        name, so that pending messages show the name they were typed under (and, on a
        server without sender keys, are recognised when resent). False when not connected
        (done once back)."""
        if password is None and nick_key(nick) == nick_key(self.nick):
            password = self.password  # the same name again: its password still holds
        if self._joined:
            return self._request(Rename(nick, password, frozenset(self.outbox)))
        if self._connection is not None and not self._hello_sent:  # the last was refused
            self.nick, self.password, self._deferred = nick, password, []
            self._set_state(State.JOINING)
            return self._send_hello()
        if self._connection is None and not (self.joined_once or self.outbox):
            self.nick, self.password, self._deferred = nick, password, []
            self._follow_nick()  # what is typed from now on is kept under this name
            return False  # nothing was sent under the old name: the next hello uses this
        self._deferred.append(Rename(nick, password, frozenset(self.outbox)))
        return self._connection is not None  # made once the hello in flight is answered

    @property
    def will_be(self) -> str:
        """The nickname once the renames waiting for the connection are made."""
        return self._deferred[-1].nick if self._deferred else self.nick

    def _request(self, rename: Rename) -> bool:
        self._renaming.append(rename)
        return self._send(Nick(rename.nick, rename.password))

    def who(self) -> bool:
        """Ask for the user list; False when not online."""
        return self._joined and self._send(Who())

    def reconnect_now(self) -> bool:
        """Make the next attempt at once instead of at the end of its wait; False if none is
        waiting (online, connecting already, stopped, or refused for good)."""
        if not self._waiting:
            return False
        self._wake.set()
        return True

    async def stop(self) -> None:
        """Stop reconnecting and close the connection (or give up the attempt at one)."""
        self._stopped = True
        self._wake.set()
        if self._connection is not None:
            await self._connection.close()
        elif self._attempt is not None:  # connecting: a silent server could take open_timeout
            self._attempt_given_up = True
            self._attempt.cancel()

    # -- the connection loop --------------------------------------------------------------

    async def run(self) -> None:
        """Connect, join, receive; on any disconnect wait with backoff and connect again.
        Returns after `stop()` or when the server refuses for good (state OFFLINE)."""
        while not self._stopped:
            self._set_state(State.RECONNECTING if self.joined_once else State.CONNECTING)
            self._attempt = asyncio.ensure_future(self._connect_once())
            try:
                reason, final = await self._attempt
            except asyncio.CancelledError:
                current = asyncio.current_task()
                cancelling = getattr(current, "cancelling", lambda: 0)()  # (Python 3.11+)
                if not self._attempt_given_up or cancelling:
                    raise  # run() itself was cancelled (perhaps as well)
                break
            finally:
                self._attempt = None
            if self._stopped:
                break
            if final:
                self._set_state(State.OFFLINE, reason=reason)
                return
            delay = self.backoff.next_delay()
            self._set_state(State.RECONNECTING, retry_at=time.monotonic() + delay, reason=reason)
            self._wake.clear()
            self._waiting = True
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            finally:
                self._waiting = False
        self._set_state(State.OFFLINE, reason="disconnected")

    async def _receive_all(self, connection: ClientConnection) -> tuple[str, bool]:
        """Handle what arrives until the connection closes: (why it ended, whether to stop
        retrying). A server that sends nothing for `open_timeout` seconds while a hello waits
        for its answer is given up on, and tried again later."""
        turn = 0
        while True:
            try:
                if self._hello_sent and not self._stopped:
                    frame = await recv_within(connection, self.open_timeout)
                else:
                    frame = await connection.recv()
            except ConnectionClosedOK:
                break
            except asyncio.TimeoutError:
                heard_at = getattr(connection, "heard_at", 0.0)
                if time.monotonic() - heard_at < self.open_timeout:
                    continue  # bytes came meanwhile: the answer is on its way
                await connection.close(CloseCode.NORMAL_CLOSURE, "no answer to the hello")
                return f"the server did not answer in {self.open_timeout:g} s", False
            if self._stopped:  # read to the server's close, but report nothing
                continue
            final = self._receive(frame)
            if final:
                return final, True
            turn += 1
            if turn == FRAMES_PER_TURN:
                turn = 0
                await asyncio.sleep(0)
        return close_reason(connection), False

    async def _connect_once(self) -> tuple[str, bool]:
        """One connection from open to close: (why it ended, whether to stop retrying)."""
        try:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
            # wss:// without a context of our own: the system's trusted certificates.
            tls = {"ssl": self.ssl_context} if self.ssl_context is not None else {}
            async with connect(
                self.url, subprotocols=[SUBPROTOCOL], compression=None,
                max_size=MAX_INCOMING_FRAME, open_timeout=self.open_timeout, close_timeout=2,
                additional_headers=headers, create_connection=HeardConnection, **tls,
            ) as connection:
                if self._stopped:  # stop() came while the handshake was in progress
                    return "stopped", True
                if connection.subprotocol != SUBPROTOCOL:
                    return "the server does not speak tui-chat.v1", True
                self._connection = connection
                self._set_state(State.JOINING)
                self._send_hello()
                try:
                    return await self._receive_all(connection)
                except asyncio.CancelledError:  # the app is quitting: a normal close (1000),
                    await connection.close()  # not the 1011 an exception out of `connect` sends
                    raise
        except ConnectionClosed as closed:
            return close_reason(self._connection) if self._connection else describe(closed, self.url), False
        except InvalidURI as error:
            return f"invalid URL: {one_line(str(error))}", True
        except InvalidStatus as error:
            if error.response.status_code == 401:
                return self._auth_refused(), True
            return refused_status(error.response)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as error:
            if isinstance(error, ConnectionRefusedError):
                self._server_was_down = True
            return describe(error, self.url), False
        except ValueError as error:  # what this URL and these options cannot do: say so
            return describe(error, self.url), True
        finally:
            if self._connection is not None and self._connection.close_code == CloseCode.GOING_AWAY:
                self._server_was_down = True  # it stopped (or restarted)
            self._connection = None
            self._joined = self._hello_sent = False
            if self._renaming:  # sent, never answered: made again once back, in order
                self._deferred, self._renaming = self._renaming + self._deferred, []

    def _auth_refused(self) -> str:
        self.auth_failed = True
        return "the token is wrong (the server refused it)" if self.token else "this server needs a token"

    def _send_hello(self) -> bool:
        if self.sender_key is None and not self.outbox:  # nothing left sent without a key
            self._set_sender_key(new_sender_key())
        since, epoch = self.position.since()
        self._hello_sent = self._send(Hello(
            self.nick, since=since, epoch=epoch,
            client=f"tui-chat/{__version__}", password=self.password, resume=self.resume,
            sender_key=self.sender_key, quiet=self.quiet or None))
        return self._hello_sent

    def _receive(self, frame: str | bytes) -> str | None:
        """Handle one frame; returns a reason when the server refused us for good."""
        try:
            event = decode_server(frame)
        except ProtocolError as error:
            if self._hello_sent and isinstance(frame, str) and frame_type(frame) == "welcome":
                # Skipped, it would leave us joining for ever without a word.
                return (f"the server's welcome could not be read ({one_line(str(error))}):"
                        " is the server a newer tui-chat?")
            return None  # a frame we cannot read is skipped, never shown raw
        if isinstance(event, Message):
            self._on_message(event)
        elif isinstance(event, Presence):
            self.users = users_after(self.users, event)
            you = event.event == "rename" and event.old == self.nick
            if you:
                if self._renaming:
                    asked = self._renaming.pop(0)
                    if nick_key(asked.nick) == nick_key(event.nick):
                        self.password = asked.password  # it was the right one
                self.nick = self.joined_nick = event.nick
                self._follow_nick()
            self.on_update(PresenceChanged(event, you))
        elif isinstance(event, Welcome):
            self._on_welcome(event)
        elif isinstance(event, Users):
            self.users = event.users
            self.on_update(UsersListed(event))
        elif isinstance(event, Error):
            return self._on_error(event)
        return None

    def _set_sender_key(self, key: str | None) -> None:
        self.sender_key = key
        if self.store is not None:
            self.store.sender_key = key

    def _on_welcome(self, welcome: Welcome) -> None:
        if not welcome.keyed:  # a server without keys: what we send is our nickname's
            self._set_sender_key(None)
        history, gap = self.position.welcome(welcome)
        rejoined = self.joined_once
        arrived, departed = comings_and_goings(self.users, welcome.users, (
            self.joined_nick, welcome.nick)) if rejoined else ((), ())
        restarted = rejoined and welcome.run != self._run  # (killed: no close, no refusal)
        if self._server_was_down or restarted:  # everyone was dropped: who is not back yet
            departed, self._server_was_down = (), False  # did not leave
        self._run = welcome.run
        self.nick, self.users, self.max_text = welcome.nick, welcome.users, welcome.max_text
        self.resume, self.max_frame = welcome.resume, welcome.max_frame
        self.joined_nick = welcome.nick
        self._follow_nick()
        self._joined, self._hello_sent = True, False
        self.backoff.reset()
        acked = [m.cid for m in history if m.cid in self.outbox]
        for cid in acked:
            del self.outbox[cid]
        self.on_update(Joined(replace(welcome, history=history), gap, rejoined, arrived,
                              departed))
        self._set_state(State.ONLINE)
        if acked:
            self._outbox_changed()
        # Deliver what waited, in order, each rename asked for meanwhile where it was asked.
        deferred, self._deferred = self._deferred, []
        for step in replay(list(self.outbox.values()), deferred, welcome.nick):
            if isinstance(step, Rename):
                self._request(step)
            else:
                self._send_outgoing(step)

    def _on_message(self, message: Message) -> None:
        # One of ours, whatever its id: the answer to a repeated cid is the message stored
        # the first time, often older than what we have seen since.
        mine = message.cid is not None and self.outbox.pop(message.cid, None) is not None
        if not self.position.seen(message) and not mine:
            return
        self.on_update(Received(message, mine, self.position.is_backlog(message), self.nick))
        if mine:
            self._outbox_changed()

    def _on_error(self, error: Error) -> str | None:
        if error.code == UNAUTHORIZED:
            return self._auth_refused()
        if error.code == BAD_ROOM:
            return error.message  # final: the state goes OFFLINE with it
        if error.cid in self.outbox and error.code in RETRYABLE:
            if self._closing is None:  # said once: everything pending goes again
                self.on_update(Refused(error, self.outbox[error.cid], retrying=True))
            self._resend_all()
            return None
        if self._joined and (error.code in NICK_ERRORS or error.code == NICK_UNCHANGED):
            if self._renaming:  # the oldest rename in flight was refused
                self._renaming.pop(0)
            self.on_update(NickRefused(error, kept=self.nick))
            return None
        if error.code in NICK_ERRORS:  # the hello was refused
            self._hello_sent = False
            if self._deferred:  # we cannot be who we were: be who was asked for last
                self.nick, self.password = self._deferred[-1].nick, self._deferred[-1].password
                self._deferred = []
                self._send_hello()
                return None
            self._set_state(State.NICKNAME, reason=error.message)  # first: the update may
            self.on_update(NickRefused(error))  # be answered at once with a new name (rename)
            return None
        outgoing = self.outbox.pop(error.cid, None) if error.cid else None
        self.on_update(Refused(error, outgoing))
        if outgoing is not None:
            self._outbox_changed()
        return None

    def _resend_all(self) -> None:
        """Reconnect (after the usual pause), which sends every pending message again, in
        order: one refused for now must not be stored after those typed after it. The
        server closes the connection itself after `unavailable`; this is for one that
        does not."""
        connection = self._connection
        if connection is not None and self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                connection.close(1013, "sending pending messages again"))
            self._closing.add_done_callback(lambda _: setattr(self, "_closing", None))

    # -- sending --------------------------------------------------------------------------

    def _queue(self, outgoing: Outgoing) -> Outgoing:
        self.outbox[outgoing.cid] = outgoing
        self._outbox_changed(typed=True)
        if self._joined:
            self._send_outgoing(outgoing)
        return outgoing

    def refusal(self, text: str) -> str | None:
        """Why the server would refuse `text` for its size, or None (also while its limits
        are not known yet: then the server's answer says)."""
        text = clean_text(text)  # as it will be sent
        if self.max_text and len(text) > self.max_text:
            return f"Too long: {len(text):,} characters, the limit is {self.max_text:,}."
        # JSON spells a control character in 6 bytes (\u0007), anything else in at most 4.
        if self.max_frame and len(text) * 6 + 256 > self.max_frame:  # else it surely fits
            size = len(encode(Say(text, "0" * MAX_CID)).encode())
            if size > self.max_frame:
                return (f"Too long: {size:,} bytes once sent, and this server takes at most"
                        f" {self.max_frame:,}.")
        return None

    def _send_outgoing(self, outgoing: Outgoing) -> None:
        reason = self.refusal(outgoing.text)
        if reason is not None:  # sending it would only get the connection closed, again
            self.outbox.pop(outgoing.cid, None)
            self.on_update(Refused(Error(TOO_LONG, reason, outgoing.cid), outgoing))
            self._outbox_changed()
            return
        event = Me if outgoing.kind == "action" else Say
        self._send(event(outgoing.text, outgoing.cid))

    def _send(self, event: Hello | Say | Me | Nick | Who) -> bool:
        """Write one event without waiting; False if there is no open connection."""
        connection = self._connection
        if connection is None:
            return False
        # broadcast() writes now, in call order, without awaiting a drain, so the UI never
        # waits on the network. A write lost to a dying connection is resent on reconnect.
        broadcast([connection], encode(event))
        return True

    def _follow_nick(self) -> None:
        """Pending messages on disk are kept under the nickname we are known by."""
        if self.store is not None:
            self.store.follow(self.nick, self.outbox.values())

    def _outbox_changed(self, typed: bool = False) -> None:
        """Report the outbox; keep it on disk (at once for new text, else once per tick)."""
        self.on_update(OutboxChanged(tuple(self.outbox.values())))
        if self.store is not None:
            self.store.keep(self.outbox, at_once=typed)

    def _set_state(self, state: State, retry_at: float | None = None, reason: str = "") -> None:
        self.state = state
        self.on_update(StateChanged(state, retry_at, reason))
