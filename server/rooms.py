"""Rooms and their members: nickname uniqueness, joins, leaves and renames, with no I/O."""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tui_chat.nicknames import check_nick, nick_key
from tui_chat.protocol import NICK_TAKEN, NICK_UNCHANGED, ProtocolError


class Dialect(Enum):
    """How a member speaks: the JSON protocol or plain text lines."""

    JSON = "json"
    PLAIN = "plain"


def sender_scope(sender_key: str | None) -> str:
    """What a client's `sender_key` is stored as: a digest (the database never holds the
    secret), marked so that it can never equal a nickname's key."""
    if not sender_key:
        return ""
    return "#" + hashlib.sha256(sender_key.encode()).hexdigest()[:32]


@dataclass(eq=False, slots=True)
class Member:
    """One connected, joined client. `connection` is the transport's object, opaque here."""

    nick: str
    dialect: Dialect
    connection: Any
    peer: str = ""
    resume: str = ""  # the secret its client may present to take its place (JSON only)
    scope: str = ""  # from the client's `sender_key`: its cids are its own under any name
    quiet: bool = False  # its join and leave update user lists but are not announced

    @property
    def key(self) -> str:
        return nick_key(self.nick)

    @property
    def sender(self) -> str:
        """Whose `cid`s this member's messages carry: its client's, given a `sender_key`,
        else its nickname's (a resend under another name is then a new message)."""
        return self.scope or self.key


@dataclass(eq=False)
class Room:
    """The members of one room, by nickname key, with ready-made recipient lists per dialect."""

    name: str
    members: dict[str, Member] = field(default_factory=dict)
    _recipients: dict[Dialect, list[Any]] | None = None
    _keys: list[str] = field(default_factory=list)  # member keys, sorted
    _users: tuple[str, ...] | None = None
    _by_resume: dict[str, Member] = field(default_factory=dict)  # JSON members by secret

    def vet_nick(self, nick: str, holder_ok: Member | None = None) -> str:
        """The nickname as it will be shown, or ProtocolError if invalid, reserved or taken
        (by anyone but `holder_ok`: the member renaming, or the one being replaced)."""
        shown = check_nick(nick)
        holder = self.members.get(nick_key(shown))
        if holder is not None and holder is not holder_ok:
            raise ProtocolError(NICK_TAKEN, f"The nickname {shown!r} is taken in this room.")
        return shown

    def resumable(self, resume: str | None) -> Member | None:
        """The member whose secret `resume` is, whatever it is called now: its client
        reconnecting to take its place (the earlier connection may be dead without the
        server knowing yet, and may have been renamed by a `nick` whose answer was lost).
        The secrets are 128 random bits: a lookup reveals nothing a guess could use."""
        return self._by_resume.get(resume) if resume else None

    def join(self, member: Member) -> None:
        """Add a member whose nickname was vetted (and nothing awaited since)."""
        key = member.key
        if key in self.members:
            raise ProtocolError(NICK_TAKEN, f"The nickname {member.nick!r} is taken in this room.")
        self.members[key] = member
        insort(self._keys, key)
        if member.resume:
            self._by_resume[member.resume] = member
        self._recipients = self._users = None

    def leave(self, member: Member) -> bool:
        """Remove a member; False if it was not in the room (nothing changes then)."""
        if self.members.get(member.key) is not member:
            return False
        del self.members[member.key]
        del self._keys[bisect_left(self._keys, member.key)]
        if self._by_resume.get(member.resume) is member:
            del self._by_resume[member.resume]
        self._recipients = self._users = None
        return True

    def rename(self, member: Member, new_nick: str) -> str:
        """Give a member a vetted new nickname; returns the old one."""
        shown = self.vet_nick(new_nick, holder_ok=member)
        if shown == member.nick:
            raise ProtocolError(NICK_UNCHANGED, f"You are already called {shown!r}.")
        old = member.nick
        del self.members[member.key]
        del self._keys[bisect_left(self._keys, member.key)]
        member.nick = shown
        self.members[member.key] = member
        insort(self._keys, member.key)
        self._users = None
        return old

    def users(self, limit: int | None = None) -> tuple[str, ...]:
        """Everyone's nickname (or the first `limit`), sorted case-insensitively."""
        if limit is not None:
            return tuple(self.members[key].nick for key in self._keys[:limit])
        if self._users is None:
            self._users = tuple(self.members[key].nick for key in self._keys)
        return self._users

    def recipients(self, dialect: Dialect) -> list[Any]:
        """The connections of every member speaking `dialect` (cached until membership changes)."""
        if self._recipients is None:
            lists: dict[Dialect, list[Any]] = {Dialect.JSON: [], Dialect.PLAIN: []}
            for member in self.members.values():
                lists[member.dialect].append(member.connection)
            self._recipients = lists
        return self._recipients[dialect]


class Rooms:
    """Every room that has members; empty rooms are forgotten."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(name)
        return room

    def find(self, name: str) -> Room | None:
        """The room if it has members, else None."""
        return self._rooms.get(name)

    def discard_if_empty(self, room: Room) -> None:
        if not room.members and self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def __len__(self) -> int:
        return len(self._rooms)
