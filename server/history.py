"""Message history behind a small storage interface; the in-memory store lives here."""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from tui_chat.protocol import Message, now_ms


@dataclass(frozen=True, slots=True)
class Backlog:
    """Messages to replay to a joining client; `recovered` says whether `since` was honoured."""

    messages: tuple[Message, ...]
    recovered: bool | None


class History(Protocol):
    """Where a server keeps each room's messages. Ids strictly increase per room and epoch."""

    epoch: str

    async def append(self, room: str, nick: str, text: str, kind: str, cid: str | None) -> Message:
        """Store a message and return it with its id; returns once it is stored."""

    def backlog(self, room: str, since: int | None, epoch: str | None, count: int) -> Backlog:
        """What a joining client should be sent: the gap after `since`, or the last `count`."""


class MemoryHistory:
    """History kept in memory: the last `limit` messages of each room, a new epoch each start."""

    def __init__(self, limit: int) -> None:
        self.epoch = secrets.token_hex(8)
        self.limit = limit
        self._rooms: dict[str, deque[Message]] = {}
        self._last_id: dict[str, int] = {}

    async def append(self, room: str, nick: str, text: str, kind: str, cid: str | None) -> Message:
        next_id = self._last_id.get(room, 0) + 1
        self._last_id[room] = next_id
        message = Message(id=next_id, ts=now_ms(), nick=nick, text=text, kind=kind, cid=cid)
        if self.limit > 0:
            messages = self._rooms.get(room)
            if messages is None:
                messages = self._rooms[room] = deque(maxlen=self.limit)
            messages.append(message)
        return message

    def backlog(self, room: str, since: int | None, epoch: str | None, count: int) -> Backlog:
        messages = self._rooms.get(room, ())
        if since is None:
            return Backlog(tuple(messages)[-count:] if count else (), None)
        if epoch != self.epoch:
            return Backlog(tuple(messages)[-count:] if count else (), False)
        last_id = self._last_id.get(room, 0)
        missed = [m for m in messages if m.id > since]
        first_missed = missed[0].id if missed else last_id + 1
        recovered = first_missed <= since + 1 or since >= last_id
        return Backlog(tuple(missed), recovered)
