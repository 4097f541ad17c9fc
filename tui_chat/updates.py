"""What the client reports to its UI (connection states and updates), and its reconnect policy."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from enum import Enum

from tui_chat.nicknames import nick_key
from tui_chat.protocol import Error, Message, Presence, Users, Welcome


class State(Enum):
    """Where the connection is."""

    CONNECTING = "connecting"
    JOINING = "joining"  # connected; waiting for the welcome
    NICKNAME = "needs a nickname"  # connected; the nickname was refused: waiting for /nick
    ONLINE = "online"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


def state_text(state: State, retry_at: float | None, rejoining: bool) -> str:
    """The connection's state in words, for the header: `reconnecting in 12 s` (`rejoining`:
    it was in the room before) or `retrying in 3 s` while an attempt waits until `retry_at`
    (`time.monotonic()`), else the state's own name."""
    if state is not State.RECONNECTING:
        return state.value
    verb = "reconnecting" if rejoining else "retrying"
    seconds = max(0, round(retry_at - time.monotonic())) if retry_at else 0
    return f"{verb} in {seconds} s" if seconds else verb


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the user wrote; pending until the server's echo carries its `cid` back."""

    cid: str
    text: str
    kind: str = "chat"  # or "action"

    @property
    def preview(self) -> str:
        """Its first line, cut to 40 characters: enough to say which message is meant."""
        return self.text.splitlines()[0][:40] if self.text else ""


# -- updates reported to the UI -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: State
    retry_at: float | None = None  # time.monotonic() of the next attempt, when reconnecting
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Joined:
    welcome: Welcome
    gap: bool  # earlier messages could not be recovered: show a marker
    rejoined: bool  # not the first welcome on this client
    arrived: tuple[str, ...] = ()  # rejoined: in the room now, not when the connection dropped
    departed: tuple[str, ...] = ()  # rejoined: gone since the connection dropped


def comings_and_goings(before: tuple[str, ...], after: tuple[str, ...], me: tuple[str, ...]
                       ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Who is in `after` but was not in `before`, and who was in `before` but is not in
    `after`, leaving out the names in `me`. Nicknames compare as the server compares them:
    one who is back under the same name in other letter case neither came nor went."""
    mine = {nick_key(nick) for nick in me}
    known_before = mine | {nick_key(nick) for nick in before}
    known_after = mine | {nick_key(nick) for nick in after}
    return (tuple(nick for nick in after if nick_key(nick) not in known_before),
            tuple(nick for nick in before if nick_key(nick) not in known_after))


def users_after(users: tuple[str, ...], presence: Presence) -> tuple[str, ...]:
    """The room's users once `presence` has happened: its own list where it has one, else
    `users` with the change made (sorted as the server sorts, by nick_key)."""
    if presence.users is not None:
        return presence.users
    gone = {nick_key(presence.nick)} | ({nick_key(presence.old)} if presence.old else set())
    kept = [nick for nick in users if nick_key(nick) not in gone]
    if presence.event != "leave":
        kept.append(presence.nick)
    return tuple(sorted(kept, key=nick_key))


@dataclass(frozen=True, slots=True)
class Received:
    message: Message
    mine: bool  # the echo of something this client sent
    backlog: bool = False  # history: the rest of a catch-up too long for the welcome
    me: str = ""  # our nickname when it arrived (a rename may follow it in the same batch)


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    presence: Presence
    you: bool  # the presence is about this client (a rename of us)


@dataclass(frozen=True, slots=True)
class UsersListed:
    users: Users


@dataclass(frozen=True, slots=True)
class Refused:
    error: Error
    outgoing: Outgoing | None  # the message the error answers (dropped, unless `retrying`)
    retrying: bool = False  # the message stays pending and is sent again shortly


@dataclass(frozen=True, slots=True)
class NickRefused:
    error: Error  # the hello was refused: ask the user for another nickname
    kept: str | None = None  # unless the client went back to this one, its previous name


@dataclass(frozen=True, slots=True)
class OutboxChanged:
    pending: tuple[Outgoing, ...]


@dataclass(frozen=True, slots=True)
class OutboxSaving:
    failure: str | None  # why pending messages cannot be saved on disk; None: they are again


Update = (StateChanged | Joined | Received | PresenceChanged | UsersListed | Refused
          | NickRefused | OutboxChanged | OutboxSaving)


class Backoff:
    """Reconnect delays: doubling from `first` up to `cap` seconds, each jittered to 50-100%."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, rng: random.Random | None = None):
        self.first, self.cap = first, cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.attempts)
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
