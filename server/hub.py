"""The hub: rooms, history and fan-out joined, the one place messages are stored and sent.

Each event is serialised once per dialect and written to every recipient without awaiting
any of them."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tui_chat.cleaning import clean_text, is_blank
from tui_chat.nicknames import nick_key
from tui_chat.protocol import (
    CID_REUSED,
    DEFAULT_MAX_FRAME,
    DEFAULT_MAX_TEXT,
    EMPTY,
    TOO_LONG,
    UNAVAILABLE,
    USERS_IN_PRESENCE,
    Message,
    Presence,
    ProtocolError,
    Welcome,
    encode,
    plain_line,
    presence_sentence,
    server_line,
)

from .accounts import Accounts
from .fanout import Delivery, Stream, text_frame
from .database import StorageError
from .history import History, Stored
from .limits import TokenGate
from .rooms import Dialect, Member, Room, Rooms, sender_scope

log = logging.getLogger("tui_chat.server")
_yield_core = getattr(os, "sched_yield", lambda: None)  # not on Windows


@dataclass(frozen=True)
class Limits:
    """What the server accepts and how much it replays."""

    max_text: int = DEFAULT_MAX_TEXT
    backlog: int = 50
    rate: float = 5.0
    burst: int = 10
    presence_limit: int = 500
    max_frame: int = DEFAULT_MAX_FRAME
    max_pending: int = 1024 * 1024  # output bytes that may wait for a client (0: no limit)


@dataclass(frozen=True)
class Greeting:
    """What a joining member is sent: the welcome, then, if `paged`, the history that did
    not fit in it, a page at a time (catchup.py). Until then the member is held (fanout.py)
    and `Hub.caught_up` lets go of it; the catch-up holds back retention (history.py)."""

    welcome: Welcome
    paged: bool = False
    scope: str | None = None  # whose cids the pages keep
    count: int = 0  # people in the room (the welcome may name only some of them)
    replaced: Member | None = None  # the earlier member whose place this one took


class Hub:
    """Every room on this server, and the one place messages are stored and fanned out."""

    def __init__(
        self, history: History, limits: Limits, accounts: Accounts | None = None,
        token: str | None = None,
    ) -> None:
        self.rooms = Rooms()
        self.history = history
        self.limits = limits
        self.accounts = accounts
        self.token_gate = TokenGate(token) if token else None  # the token, if one is needed
        self.stopping = asyncio.Event()  # set by `stop`: what waits its turn goes now
        self.run_id = secrets.token_hex(8)  # this run of the server, told in every welcome
        # Per room, the last message id written to members. A joiner's backlog stops there,
        # so a message is either in the backlog or delivered live, never both.
        self._published: dict[str, int] = {}
        self._streams: dict[str, Stream] = {}  # per room, deliveries not yet sent to all
        self._posting: dict[str, int] = {}  # per room, posts not yet committed and queued

    def stop(self) -> None:
        """The server is stopping: leaves are no longer announced, and frames waiting their
        turn under the rate limit stop waiting (sessions.py)."""
        self.stopping.set()

    @property
    def closing(self) -> bool:
        """The server is stopping."""
        return self.stopping.is_set()

    # -- membership ---------------------------------------------------------------------

    def join(
        self, room_name: str, nick: str, dialect: Dialect, connection: Any, peer: str,
        since: int | None = None, epoch: str | None = None, resume: str | None = None,
        sender_key: str | None = None, quiet: bool = False,
    ) -> tuple[Room, Member, Greeting]:
        """Vet `nick`, add the member, announce it (`quiet`: to user lists only); the caller
        sends the greeting at once. With the `resume` secret of a member (whatever it is
        called now), the newcomer takes its place: that member leaves (announced), and the
        caller closes its connection."""
        room = self.rooms.get(room_name)
        replaced = room.resumable(resume)
        try:
            shown = room.vet_nick(nick, holder_ok=replaced)  # its own name, held by itself
            scope = sender_scope(sender_key)
            # The newcomer's own messages keep their cids, for it to match acknowledgements.
            cids_of = scope or nick_key(shown)
            backlog = self.history.backlog(
                room.name, since, epoch, self.limits.backlog, self._published.get(room.name),
                cids_of=cids_of,
            )
        except Exception:
            self._discard_if_empty(room)
            raise
        if replaced is not None:
            self._remove(room, replaced)
        # A takeover keeps the secret: should this welcome be lost too, the client still
        # holds the secret that takes its place back.
        resume = replaced.resume if replaced is not None else (
            secrets.token_urlsafe(16) if dialect is Dialect.JSON else "")
        member = Member(shown, dialect, connection, peer, resume, scope, quiet)
        room.join(member)
        history = backlog.messages  # as much as a welcome holds
        stream = self._stream(room.name)
        if backlog.more:  # live from the end of its catch-up on
            stream.hold(connection, dialect is Dialect.JSON)
        else:  # live from here on
            connection.delivered = stream.head
        announce = self._announces(room)
        # A plain newcomer to a crowd gets a head count, not ten thousand names.
        users = room.users() if dialect is Dialect.JSON or announce else room.users(limit=20)
        welcome = Welcome(
            nick=shown, room=room.name, users=users, epoch=self.history.epoch,
            history=history, recovered=backlog.recovered,
            max_text=self.limits.max_text, resume=member.resume or None,
            max_frame=self.limits.max_frame, last_id=backlog.upto, keyed=bool(scope) or None,
            run=self.run_id,
        )
        if announce:
            self._announce(room, Presence("join", shown, _users_in_presence(room),
                                          quiet=quiet or None), member, b"")
        return room, member, Greeting(welcome, backlog.more, cids_of, len(room.members),
                                      replaced)

    def caught_up(self, room_name: str, connection: Any) -> None:
        """A catch-up is over: send the held member, in its dialect, all it lacks."""
        stream = self._streams.get(room_name)
        if stream is not None:
            stream.release(connection)

    def forget_held(self, room_name: str, connection: Any) -> None:
        """A catch-up ended with its client gone: keep nothing more for it."""
        stream = self._streams.get(room_name)
        if stream is not None:
            stream.unhold(connection)

    def leave(self, room: Room, member: Member) -> None:
        """Remove a member (if it is one) and tell the others."""
        self._remove(room, member)
        self._discard_if_empty(room)

    def _remove(self, room: Room, member: Member) -> None:
        stream = self._streams.get(room.name)
        if stream is not None:  # held for a catch-up that never started: keep nothing for it
            stream.unhold(member.connection)
        announce = self._announces(room)  # counted with the member, as its join was
        if room.leave(member) and not self.closing and announce:
            self._announce(room, Presence("leave", member.nick, _users_in_presence(room),
                                          quiet=member.quiet or None), None, b"")

    def _discard_if_empty(self, room: Room) -> None:
        self.rooms.discard_if_empty(room)
        if self.rooms.find(room.name) is None:
            self._streams.pop(room.name, None)
            if room.name not in self._posting:
                self._forget(room.name)

    def _forget(self, room_name: str) -> None:
        """A room with no members and no post on its way: keep nothing for it in memory (its
        history and its last id stay in the database), so room names come and go freely."""
        self._published.pop(room_name, None)
        self.history.forget(room_name)

    def rename(self, room: Room, member: Member, new_nick: str) -> None:
        """Rename a member and tell everyone, the member included; in a crowded room (over
        the presence limit, as for joins and leaves) the member alone."""
        old = room.rename(member, new_nick)
        presence = Presence("rename", member.nick, _users_in_presence(room), old)
        json_frame = text_frame(encode(presence))
        for_subject = json_frame if member.dialect is Dialect.JSON else text_frame(
            server_line(f"You are now known as {member.nick}."))
        if self._announces(room):
            self._announce(room, presence, member, for_subject, json_frame)
        else:
            self._queue(room.name, Delivery(b"", b"", member.connection, for_subject))

    def tell(self, room: Room, member: Member, payload: str) -> None:
        """Send `payload` to one member, after everything already on its way to it."""
        self._queue(room.name, Delivery(b"", b"", member.connection, text_frame(payload)))

    def _announces(self, room: Room) -> bool:
        """Joins and leaves are announced in rooms up to the presence limit (0: always),
        counting the member who comes or goes: a leave is announced if its join was."""
        limit = self.limits.presence_limit
        return not limit or len(room.members) <= limit

    def _announce(self, room: Room, presence: Presence, subject: Member | None,
                  for_subject: bytes, json_frame: bytes | None = None) -> None:
        """Tell the room; plain members are told nothing of a quiet join or leave (they
        have no user list to update)."""
        self._queue(room.name, Delivery(
            json_frame or text_frame(encode(presence)),
            b"" if presence.quiet else text_frame(server_line(presence_sentence(presence))),
            subject.connection if subject else None,
            for_subject,
        ))

    # -- messages -----------------------------------------------------------------------

    def vet_text(self, text: str, cid: str | None = None) -> str:
        """The text cleaned of control codes, or ProtocolError if too long or blank."""
        if self.limits.max_text and len(text) > self.limits.max_text:
            raise ProtocolError(
                TOO_LONG,
                f"Message too long ({len(text)} characters; the limit is {self.limits.max_text})."
                " It was not sent.",
                cid,
            )
        text = clean_text(text)
        if is_blank(text):
            raise ProtocolError(EMPTY, "Empty message: nothing was sent.", cid)
        return text

    def post(self, room: Room, member: Member, text: str, kind: str, cid: str | None,
             on_failure: Callable[[], None] | None = None) -> asyncio.Future[Message]:
        """Store a vetted message; once committed, deliver it: JSON members all get it (the
        sender with its `cid`, as the acknowledgement), plain members but the sender a line.
        A `cid` the sender already used is answered with the original message, to it alone.
        Returns at once (messages are numbered in the order they are posted); the future
        resolves once the message is on its way, or fails with ProtocolError `unavailable`
        (`on_failure`: see History.submit)."""
        name = room.name
        if name not in self._published:  # the first post in this room since it was empty
            self._published[name] = self.history.last_id(name)
        self._posting[name] = self._posting.get(name, 0) + 1
        posted: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        stored = self.history.submit(name, member.nick, member.sender, text, kind, cid,
                                     on_failure)
        stored.add_done_callback(
            lambda done: self._deliver(done, name, member, cid, posted, (text, kind)))
        return posted

    def _deliver(self, stored_future: asyncio.Future[Stored], room_name: str, member: Member,
                 cid: str | None, posted: asyncio.Future[Message], sent: tuple[str, str],
                 ) -> None:
        """Once committed: queue the message for the room (or a repeated cid's answer for its
        sender), then resolve `posted`, which is resolved whatever happens. A cid repeated
        with other text (`sent`: text and kind) is not a resend: it is refused."""
        try:
            self._queue_outcome(stored_future, room_name, member, cid, posted, sent)
        finally:
            left = self._posting.pop(room_name) - 1
            if left:
                self._posting[room_name] = left
            elif self.rooms.find(room_name) is None:  # its poster had left: the last of it
                self._forget(room_name)

    def _queue_outcome(self, stored_future: asyncio.Future[Stored], room_name: str,
                       member: Member, cid: str | None, posted: asyncio.Future[Message],
                       sent: tuple[str, str]) -> None:
        try:
            stored = stored_future.result()
        except StorageError as error:
            log.error("%s: %s", member.peer, error)
            posted.set_exception(unavailable(cid))
            return
        original = stored.message
        if stored.duplicate and (original.text, original.kind) != sent:
            posted.set_exception(ProtocolError(
                CID_REUSED, f"The cid {cid!r} is taken by another of your messages in this room"
                f" (id {original.id}); this one was not sent: give each message a cid of its"
                " own.", cid))
            return
        try:
            self._queue_stored(room_name, member, cid, stored)
        except Exception:  # a bug; the poster must not wait forever (its session would hang)
            log.exception("%s: message %s was stored but could not be sent", member.peer,
                          stored.message.id)
            posted.set_exception(unavailable(cid))
            return
        posted.set_result(stored.message)

    def _queue_stored(self, room_name: str, member: Member, cid: str | None,
                      stored: Stored) -> None:
        message = stored.message
        if stored.duplicate:
            if member.dialect is Dialect.JSON:  # to the sender alone, after what precedes it
                self._queue(room_name, Delivery(b"", b"", member.connection,
                                                text_frame(encode(message))))
            return
        public = replace(message, cid=None) if cid is not None else message
        json_frame = text_frame(encode(public))
        if member.dialect is Dialect.JSON:
            for_sender = json_frame if cid is None else text_frame(encode(message))
        else:
            for_sender = b""  # plain senders do not get their own lines back
        self._queue(room_name, Delivery(json_frame, text_frame(plain_line(message)),
                                        member.connection, for_sender), message.id)

    # -- the outbound stream -------------------------------------------------------------

    def _stream(self, room_name: str) -> Stream:
        stream = self._streams.get(room_name)
        if stream is None:
            stream = self._streams[room_name] = Stream(self.limits.max_pending)
        return stream

    def _queue(self, room_name: str, delivery: Delivery, message_id: int | None = None) -> None:
        """Send `delivery` to every member of the room (members joining from now on have it
        in their backlog, if it is a message, so it is never both replayed and delivered)."""
        if message_id is not None:
            self._published[room_name] = max(self._published.get(room_name, 0), message_id)
        if self.rooms.find(room_name) is None:
            return  # everyone has left (the sender of a message still being committed, too)
        stream = self._stream(room_name)
        if stream.add(delivery):
            asyncio.get_running_loop().call_soon(self._step, room_name, stream)

    def _step(self, room_name: str, stream: Stream) -> None:
        """Write to the next slice of members; again on the next loop turn if not done."""
        room = self.rooms.find(room_name)
        if room is None or self._streams.get(room_name) is not stream:
            return  # the room emptied meanwhile, and its stream went with it
        more = stream.step(room.recipients(Dialect.JSON), room.recipients(Dialect.PLAIN))
        if self.history.committing:
            # The commit thread may be waiting for this core: let it run between slices
            # rather than when the scheduler next preempts the loop (p99 -15% at 9,455 msg/s).
            _yield_core()
        if more:
            asyncio.get_running_loop().call_soon(self._step, room_name, stream)


def _users_in_presence(room: Room) -> tuple[str, ...] | None:
    """The user list a presence event carries: the room's, if it is small enough."""
    return room.users() if len(room.members) <= USERS_IN_PRESENCE else None


def unavailable(cid: str | None) -> ProtocolError:
    """The refusal of a message the server could not store (nor send, so nobody saw it)."""
    return ProtocolError(UNAVAILABLE, "The server could not store your message; it was not"
                         " sent. Try again.", cid)
