"""Catch-up: the history a joining client missed, written a page at a time as it reads it.

Meanwhile the room's live traffic waits behind it (a held member, fanout.py).

A client that asks for everything since yesterday may be owed --history messages, tens of
megabytes. They are read from the database a page at a time (history.py: up to 256 KiB) and
written only while the client's output is below WATER, so a client that does not read holds
about a page and WATER of it in the server (and, held back meanwhile, at most --max-pending
of live traffic).
The room's retention is not trimmed while a catch-up reads it (history.py), so nothing
between its start and the live traffic is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode

from tui_chat.protocol import Message

from .admission import peer_name

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("tui_chat.server")
WATER = 256 * 1024  # output waiting for the client before the catch-up waits for it to read
TURN = 256 * 1024  # bytes written before other connections get a turn of the event loop


class Catchup:
    """One client's catch-up: the messages after id `after` up to `upto`, then `last` (a
    closing line, or None), then its held live traffic."""

    __slots__ = ("hub", "room", "connection", "render", "pending", "after", "upto",
                 "paged", "scope", "last", "scheduled", "done")

    def __init__(self, hub: Hub, room: str, connection: Any,
                 render: Callable[[Message], str], after: int, upto: int, scope: str | None,
                 last: str | None) -> None:
        self.hub = hub
        self.room = room
        self.connection = connection
        self.render = render
        self.pending: tuple[Message, ...] = ()  # read, not written yet
        self.after = after  # the last message id written (the next page follows it)
        self.paged = True  # more may wait in the database after `pending`
        self.upto = upto
        self.scope = scope
        self.last = last
        self.scheduled = self.done = False

    def start(self) -> None:
        """Begin (after the welcome)."""
        connection = self.connection
        connection.catchup = self
        self.hub.history.hold(self.room, self)  # nothing after `after` is trimmed meanwhile
        # Still greeting (Session.greet): its output may wait while it drains, no slow-consumer
        # drop; it pauses at WATER, to be resumed page by page.
        connection.transport.set_write_buffer_limits(high=WATER)
        self.pump()

    def resume(self) -> None:
        """The client has read what was waiting: go on, on the loop's next turn."""
        if not self.scheduled and not self.done:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.pump)

    def pump(self) -> None:
        """Write messages while the client's output is below WATER; finish when none are left.
        Should that fail (a bug, or the database), the client is told and disconnected: a
        catch-up that stopped would hold its live traffic until --max-pending dropped it."""
        self.scheduled = False
        try:
            self._pump()
        except Exception:
            log.exception("%s: the catch-up failed; connection closed",
                          peer_name(self.connection))
            self.stop()
            self.connection.start_close(CloseCode.INTERNAL_ERROR, "internal error")

    def _pump(self) -> None:
        connection = self.connection
        written = 0
        while not self.done and connection.is_open():
            if not self.pending:
                if self.paged:
                    self.pending = self.hub.history.page(self.room, self.after, self.upto,
                                                         self.scope)
                    self.paged = bool(self.pending) and self.pending[-1].id < self.upto
                if not self.pending:
                    self.finish()
                    return
            for index, message in enumerate(self.pending):
                if connection.paused:  # resume() is called once it has drained
                    self.pending = self.pending[index:]
                    return
                payload = self.render(message)
                connection.send(payload)
                self.after = message.id
                written += len(payload)
            self.pending = ()
            if written >= TURN:
                self.resume()
                return

    def finish(self) -> None:
        """Write the closing line and the live traffic held meanwhile; the client is live."""
        connection = self.connection
        if self.last is not None:
            connection.send(self.last)
        self.stop(deliver=True)
        connection.end_greeting()  # (what was held may be over the limit while it drains)

    def stop(self, deliver: bool = False) -> None:
        """End the catch-up (`deliver`: sending the held traffic; else the client is gone)."""
        if self.done:
            return
        self.done = True
        self.connection.catchup = None
        self.hub.history.release(self.room, self)
        if deliver:
            self.hub.caught_up(self.room, self.connection)
        else:
            self.hub.forget_held(self.room, self.connection)
