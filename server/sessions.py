"""One session per connection: what both dialects share, and the JSON dialect.

The plain-text one is in plain.py. Sessions turn frames into hub calls."""

from __future__ import annotations

import asyncio
import logging
import time

from websockets.frames import CloseCode

from tui_chat.nicknames import check_nick
from tui_chat.protocol import (
    ALREADY_JOINED,
    BAD_PASSWORD,
    NICK_INVALID,
    NICK_REGISTERED,
    NOT_JOINED,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE,
    Error,
    Hello,
    Me,
    Message,
    Nick,
    ProtocolError,
    Say,
    Users,
    Who,
    decode_client,
    encode,
)

from .catchup import Catchup
from .hub import Greeting, Hub, unavailable
from .limits import WRONG_TOKEN, FailedLogins, TokenBucket
from .rooms import Dialect, Member, Room
from .admission import client_address

log = logging.getLogger("tui_chat.server")
REPLACED = 4000  # close code: the client took this member's place from a newer connection
NO_SPACES = "a nickname cannot contain spaces"


def not_registered(nick: str) -> ProtocolError:
    """The refusal of a password given with a name that takes none (the name's rules first).
    The password is not repeated: it may be the one for another name, mistyped."""
    return ProtocolError(NICK_INVALID, f"{check_nick(nick)!r} is not registered, so it takes no"
                         f" password ({NO_SPACES}).")


RATE_LOG_GAP = 60.0  # seconds: a connection over the rate limit is logged at most this often
MAX_UNSETTLED = 64  # a client's messages waiting for their commit before it must wait


class Session:
    """What both dialects share: the connection, the room it asked for, membership, limits."""

    __slots__ = ("hub", "connection", "room_name", "peer", "room", "member", "bucket",
                 "_rate_logged", "_unsettled", "_failed", "_deadline")
    dialect: Dialect
    resent: bool  # its client sends again what was not acknowledged (pace drops, not waits)

    def __init__(self, hub: Hub, connection, room_name: str, peer: str) -> None:
        self.hub = hub
        self.connection = connection
        self.room_name = room_name
        self.peer = peer
        self.room: Room | None = None
        self.member: Member | None = None
        self.bucket = TokenBucket(hub.limits.rate, hub.limits.burst)
        self._rate_logged = -RATE_LOG_GAP  # (monotonic) when being over the rate was last logged
        # Messages posted and not yet committed, oldest first. A client's messages do not wait
        # for each other's commit (they share one), but anything else it sends waits for them.
        self._unsettled: list[asyncio.Future[Message]] = []  # a deque costs 600 bytes
        self._failed = False  # a message of its could not be stored: post no more
        self._deadline: asyncio.TimerHandle | None = None  # to join by (--join-timeout)

    def start(self) -> None:
        """The connection is open: it has --join-timeout seconds to ask to join (a client
        whose name is refused may take its time over the next)."""
        timeout = self.connection.server.config.join_timeout
        if timeout:
            self._deadline = asyncio.get_running_loop().call_later(
                timeout, self._not_joined_in_time, timeout)

    def _not_joined_in_time(self, timeout: float) -> None:
        self._deadline = None
        if self.member is None and self.connection.is_open():
            what = "hello" if self.dialect is Dialect.JSON else "nickname"
            self.refuse(ProtocolError(NOT_JOINED, f"No {what} within {timeout:g} s: closing."
                                      " Connect again to join."))
            # Closing now, not on a later turn: a hello handled meanwhile must not join.
            self.connection.start_close(CloseCode.POLICY_VIOLATION, "did not join in time")

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    async def on_frame(self, frame: str | bytes) -> None:
        raise NotImplementedError

    def send(self, payload: str) -> None:
        self.connection.send(payload)

    def reply(self, payload: str) -> None:
        """Answer this client after everything already on its way to it (messages, presence,
        earlier answers), so that answers arrive in the order they were asked for."""
        room, member = self.room, self.member
        if room is not None and member is not None and room.members.get(member.key) is member:
            self.hub.tell(room, member, payload)
        else:  # not (or no longer) a member: nothing else is on its way
            self.send(payload)

    def refuse(self, error: ProtocolError) -> None:
        """Tell the client why its input was refused, and log it. In turn, except the errors
        that its connection may be closed after (which would stop what is still on its way)."""
        nick = self.member.nick if self.member else "-"
        log.info("%s %s refused: %s: %s", self.peer, nick, error.code, error.message)
        at_once = error.code in (UNAUTHORIZED, UNAVAILABLE)
        (self.send if at_once else self.reply)(self.render_error(error))

    async def fail(self, error: ProtocolError) -> None:
        """Refuse the input; a client without the token is also disconnected."""
        self.refuse(error)
        if error.code == UNAUTHORIZED:
            await self.connection.close(CloseCode.POLICY_VIOLATION, "unauthorized")

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        raise NotImplementedError

    async def pace(self) -> bool:
        """Take this frame's turn; False if the frame is to be dropped. Past the rate limit a
        client's frames wait, in order, rather than being refused; meanwhile its connection is
        read no further than its inbox bound (transport.py), so a flood only slows its sender
        down. Logged at most once per RATE_LOG_GAP seconds per connection. A JSON client's
        frames that have to wait, and whose connection is closing or gone (or taken over) by
        their turn, are dropped (at once if it goes while they wait): none was acknowledged,
        and its client sends them again. A plain client's are not: nothing
        would ever send them again, so once the server is stopping they wait no more."""
        if self.hub.closing:
            return not self.resent
        delay = self.bucket.reserve()
        if not delay:
            return True
        if self.resent and not self.connection.is_open():
            return False  # it would wait its turn for nothing
        now = time.monotonic()
        if now - self._rate_logged >= RATE_LOG_GAP:
            self._rate_logged = now
            limits = self.hub.limits
            log.info("%s %s is over the rate limit (%g a second, bursts of %d): its messages"
                     " wait their turn", self.peer, self.member.nick if self.member else "-",
                     limits.rate, limits.burst)
        # Its turn, or the server stopping, whichever comes first; for a JSON client, also
        # its connection ending (the frame is dropped then: its member leaves without waiting).
        stopping = asyncio.ensure_future(self.hub.stopping.wait())
        ends = [stopping, self.connection.closed_waiter] if self.resent else [stopping]
        try:
            await asyncio.wait(ends, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        return not self.resent or (self.connection.is_open() and not self.hub.closing)

    async def check_password(self, nick: str, password: str | None) -> bool:
        """Raise unless `nick` is unregistered or `password` is its password; True if it is
        registered."""
        accounts = self.hub.accounts
        account = accounts.find(check_nick(nick)) if accounts else None
        if account is None:
            return False
        if password is None:
            raise ProtocolError(NICK_REGISTERED, f"The nickname {account.name!r} is registered:"
                                " give its password to use it.")
        address = client_address(self.connection)
        wait = accounts.failures.wait(address)
        if wait:
            raise ProtocolError(BAD_PASSWORD, FailedLogins.too_many("passwords", wait, address))
        if not await accounts.verify(account, password, address):
            raise ProtocolError(BAD_PASSWORD, f"Wrong password for {account.name!r}.")
        return True

    async def join(self, nick: str, password: str | None = None, since: int | None = None,
                   epoch: str | None = None, resume: str | None = None,
                   sender_key: str | None = None, quiet: bool = False) -> None:
        self._stop_deadline()  # it has asked to join: a client, not an idle connection
        if self.hub.token_gate is not None and not self.connection.authorized:
            raise ProtocolError(UNAUTHORIZED, "This server needs a valid token"
                                " (in hello or an Authorization: Bearer header).")
        await self.check_password(nick, password)
        if not self.connection.is_open():
            return  # it left while its password was checked: it must not join as a ghost
        room, member, greeting = self.hub.join(
            self.room_name, nick, self.dialect, self.connection, self.peer, since, epoch, resume,
            sender_key, quiet,
        )
        self.room, self.member = room, member
        self.greet(greeting)  # before anything else can be written to this connection
        log.info("%s joined %s as %s%s", self.peer, room.name, member.nick,
                 " (quiet)" if quiet else "")
        if greeting.replaced is not None:
            log.info("%s took the place of %s's earlier connection %s", self.peer,
                     member.nick, greeting.replaced.peer)
            await greeting.replaced.connection.close(REPLACED, "replaced by a newer connection")

    def greet(self, greeting: Greeting) -> None:
        """Send the greeting: the welcome at once, and any history that did not fit in it as
        a catch-up (catchup.py), which the member's live traffic waits behind."""
        connection = self.connection
        connection.greeting = True  # a welcome of 256K characters may be over the limit
        last = self.write_greeting(greeting)
        if greeting.paged:
            welcome = greeting.welcome
            Catchup(self.hub, welcome.room, connection, self.render_message,
                    welcome.history[-1].id, welcome.last_id or 0, greeting.scope, last).start()
            return
        if last is not None:
            self.send(last)
        connection.end_greeting()

    def write_greeting(self, greeting: Greeting) -> str | None:
        """Write what comes before the catch-up; return what comes after it, if anything."""
        raise NotImplementedError

    @staticmethod
    def render_message(message: Message) -> str:
        raise NotImplementedError

    def leave(self) -> None:
        """The connection is gone: leave the room once what it sent is handled and the
        messages it posted are stored and on their way (the room sees them before it sees
        the leave, as with a rename). A raw client's lines that wait their turn under the
        rate limit are still posted, at the rate, under the name it keeps until then; a JSON
        client's are dropped (`pace`), for its client to send again."""
        self._stop_deadline()
        catchup = self.connection.catchup
        if catchup is not None:
            catchup.stop()
        room, member = self.room, self.member
        if room is None or member is None:
            return
        worker = self.connection.worker
        if worker is not None:
            worker.add_done_callback(lambda _: self._leave_once_settled(room, member))
        else:
            self._leave_once_settled(room, member)

    def _leave_once_settled(self, room: Room, member: Member) -> None:
        if self._unsettled:
            posted = asyncio.gather(*self._unsettled, return_exceptions=True)
            posted.add_done_callback(lambda _: self.hub.leave(room, member))
        else:
            self.hub.leave(room, member)

    async def post(self, text: str, kind: str, cid: str | None = None) -> None:
        """Post a message without waiting for its commit (the acknowledgement and any error
        follow when it is done); wait only once MAX_UNSETTLED of this client's are pending."""
        assert self.room is not None and self.member is not None
        text = self.hub.vet_text(text, cid)
        if self._failed:  # stored now, it would come before the one that failed
            raise unavailable(cid)
        posted = self.hub.post(self.room, self.member, text, kind, cid,
                               self._stop_posting if self.resent else None)
        self._unsettled.append(posted)
        posted.add_done_callback(self._settled)
        if len(self._unsettled) >= MAX_UNSETTLED:
            await asyncio.wait([self._unsettled[0]])

    def _stop_posting(self) -> None:
        """A message of this client's could not be stored: each sender's messages keep their
        order, so what it sends from now on is refused (never stored ahead of that one), and
        once told, it is disconnected, and its client sends everything again, in order."""
        self._failed = True

    def _settled(self, posted: asyncio.Future[Message]) -> None:
        self._unsettled.remove(posted)
        error = posted.exception()
        if isinstance(error, ProtocolError):
            self.refuse(error)
            if error.code == UNAVAILABLE and self.resent and self.connection.is_open():
                self._stop_posting()  # (also when it failed after its commit)
                asyncio.get_running_loop().create_task(self.connection.close(
                    CloseCode.TRY_AGAIN_LATER, "could not store messages: send them again"))

    async def settle(self) -> None:
        """Wait until every message this client posted is committed (or refused)."""
        if self._unsettled:
            await asyncio.wait(list(self._unsettled))

    async def rename(self, nick: str, password: str | None = None) -> None:
        assert self.room is not None and self.member is not None
        if not await self.check_password(nick, password) and password is not None:
            raise not_registered(nick)
        if not self.connection.is_open():
            return  # it is gone: not renamed (a raw client's lines still waiting keep its name)
        old = self.member.nick
        self.hub.rename(self.room, self.member, nick)
        log.info("%s renamed %s to %s", self.peer, old, self.member.nick)


class JsonSession(Session):
    """The `tui-chat.v1` dialect: one JSON event per text frame."""

    __slots__ = ()

    dialect = Dialect.JSON
    resent = True  # what is not acknowledged, its client sends again

    @staticmethod
    def render_error(error: ProtocolError) -> str:
        return encode(Error(error.code, error.message, error.cid))

    async def on_frame(self, frame: str | bytes) -> None:
        try:
            if not await self.pace():  # every frame counts, invalid ones too
                return
            try:
                event = decode_client(frame)
            except ProtocolError:
                await self.settle()  # refused after the acknowledgements of what came before
                raise
            if not isinstance(event, (Say, Me)):
                await self.settle()  # a rename or a who comes after the messages before it
            if isinstance(event, Hello):
                await self.hello(event)
            elif self.member is None:
                raise ProtocolError(
                    NOT_JOINED, "Send 'hello' with your nickname first.", getattr(event, "cid", None)
                )
            elif isinstance(event, Say):
                await self.post(event.text, "chat", event.cid)
            elif isinstance(event, Me):
                await self.post(event.text, "action", event.cid)
            elif isinstance(event, Nick):
                await self.rename(event.nick, event.password)
            elif isinstance(event, Who):
                assert self.room is not None
                self.reply(encode(Users(self.room.name, self.room.users())))
        except ProtocolError as error:
            await self.fail(error)

    async def hello(self, hello: Hello) -> None:
        if self.member is not None:
            raise ProtocolError(ALREADY_JOINED, f"You already joined as {self.member.nick}.")
        gate = self.hub.token_gate
        if gate is not None and not self.connection.authorized and hello.token is not None:
            refusal = gate.refusal(hello.token, client_address(self.connection))
            if refusal is not None:  # wrong: final; else the address waits, and may try again
                raise ProtocolError(UNAUTHORIZED if refusal == WRONG_TOKEN else RATE_LIMITED,
                                    refusal)
            self.connection.authorized = True
        await self.join(hello.nick, hello.password, hello.since, hello.epoch, hello.resume,
                        hello.sender_key, bool(hello.quiet))

    def write_greeting(self, greeting: Greeting) -> None:
        self.send(encode(greeting.welcome))

    render_message = staticmethod(encode)
