"""Fan-out: one prepared frame per event and dialect, written to a room's members in rounds.

Each member gets everything it lacks in one write.

This is the idea of gorilla/websocket's PreparedMessage, plus write coalescing: the frame is
serialised once (by websockets' own `Frame.serialize`), and the loop over recipients does
little but write the same bytes. It is only correct for connections without compression (the
server never negotiates it) that never send fragmented messages (the server never does), and
it writes only to connections in the OPEN state, so it never writes after a close frame. A
client that does not read still trips the slow-consumer bound, because `transport.write` is
what fills its buffer.

Why rounds, and not one loop over the room per event: one write costs a few microseconds of
kernel time, so a room of a thousand takes milliseconds to go round. A round is done a slice
of members at a time, and the event loop reads between slices, so an event that arrives
mid-round is in the very next write to every member the round has not reached yet; the
members it has passed get it at the start of the next round. No event waits for a round to
finish before it starts going out, and every member gets it within one round.

A member still being sent its catch-up (catchup.py) is *held*: rounds pass it by, and the
stream keeps what it lacks until it is released and sent all of it in one write. A held
member that falls more than `hold_limit` bytes behind is a slow consumer and is dropped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State

OPEN = State.OPEN
SLICE = 16  # members written per step; the event loop reads new events between steps
HELD = sys.maxsize  # a held member's `delivered`: every round passes it by


def text_frame(payload: str) -> bytes:
    """A complete unmasked text frame (server to client) carrying `payload`."""
    return Frame(Opcode.TEXT, payload.encode()).serialize(mask=False)


@dataclass(slots=True)
class Delivery:
    """One event for a room: the frame each dialect gets, and for `subject` (its sender, or
    the member it is about) the frame it gets instead (b"" for nothing)."""

    json: bytes
    plain: bytes
    subject: Any = None
    for_subject: bytes = b""


class Stream:
    """One room's deliveries, numbered from 0, and how far each member has been sent.

    A member's connection carries `delivered`, the number of the first delivery it has not
    been sent; a member joins at `head`. Deliveries every member has been sent are dropped.
    """

    __slots__ = ("deliveries", "base", "subjects", "position", "round_head", "round_lists",
                 "active", "holds", "hold_limit")

    def __init__(self, hold_limit: int = 0) -> None:
        self.deliveries: list[Delivery] = []  # deliveries[0] is number `base`
        self.base = 0
        self.subjects: dict[Any, int] = {}  # a subject's connection -> its last delivery
        self.position = 0  # the next member of this round, counting JSON members first
        self.round_head = 0  # head when this round started
        self.round_lists: tuple[list[Any], list[Any]] | None = None
        self.active = False  # deliveries wait: `step` must be called until it returns False
        # Held members: connection -> [the first delivery it lacks, bytes held for it, 1 if
        # it speaks JSON (else 0)].
        self.holds: dict[Any, list[int]] = {}
        self.hold_limit = hold_limit  # 0: none

    @property
    def head(self) -> int:
        """The number the next delivery will get."""
        return self.base + len(self.deliveries)

    def add(self, delivery: Delivery) -> bool:
        """Append a delivery; True if the caller must now start calling `step`."""
        if delivery.subject is not None:
            self.subjects[delivery.subject] = self.head
        self.deliveries.append(delivery)
        if self.holds:
            self._count_held(delivery)
        if self.active:
            return False
        self.active = True
        return True

    def step(self, json_members: list[Any], plain_members: list[Any], count: int = SLICE) -> bool:
        """Write to the next `count` members of the round; False once every member has been
        sent everything (the stream is then empty and idle). The lists are the room's own,
        the same objects until its membership changes: new lists mean someone joined or
        left, and the round may have skipped a member, so it goes round once more."""
        lists = (json_members, plain_members)
        if self.round_lists is None:
            self.round_lists, self.position, self.round_head = lists, 0, self.head
        elif self.round_lists[0] is not json_members or self.round_lists[1] is not plain_members:
            self.round_head = -1  # membership changed mid-round: go round once more
        start = self.position
        end = min(start + count, len(json_members) + len(plain_members))
        if start < len(json_members):
            self._write(json_members, start, min(end, len(json_members)), True)
        if end > len(json_members):
            offset = len(json_members)
            self._write(plain_members, max(start - offset, 0), end - offset, False)
        self.position = end
        if end < len(json_members) + len(plain_members):
            return True
        return self._end_round(lists)

    def _end_round(self, lists: tuple[list[Any], list[Any]]) -> bool:
        head = self.head
        if self.round_head < 0:  # membership changed: see how far everyone really is
            reached = min((c.delivered for members in lists for c in members), default=head)
        else:  # everyone is at least where this round started
            reached = self.round_head
        self._drop_sent(reached)
        if reached >= head:  # everyone not held has everything: all done
            self.round_lists, self.active = None, False
            return False
        self.round_lists, self.position, self.round_head = lists, 0, head
        return True

    def _drop_sent(self, reached: int) -> None:
        """Drop the deliveries every member has been sent: all up to `reached`, except what
        a held member still lacks."""
        floor = min(reached, self.head)
        if self.holds:
            floor = min(floor, min(hold[0] for hold in self.holds.values()))
        if floor <= self.base:
            return
        del self.deliveries[:floor - self.base]
        self.base = floor
        if self.deliveries:
            self.subjects = {key: last for key, last in self.subjects.items() if last >= floor}
        else:
            self.subjects.clear()

    # -- held members ------------------------------------------------------------------

    def hold(self, connection: Any, is_json: bool) -> None:
        """Pass `connection` by from now on, keeping what it lacks (it joins at `head`)."""
        self.holds[connection] = [self.head, 0, int(is_json)]
        connection.delivered = HELD

    def release(self, connection: Any) -> None:
        """Send a held connection, in one write, everything it lacks (in the dialect it was
        held in); it is live again."""
        hold = self.holds.pop(connection, None)
        if hold is None:
            return
        mark, head, is_json = hold[0], self.head, bool(hold[2])
        connection.delivered = head
        if mark < head and connection.protocol.state is OPEN:
            data = _for_subject(self.deliveries[mark - self.base:], connection, is_json)
            if data:
                connection.transport.write(data)
        if not self.active:  # nobody else lacks anything
            self._drop_sent(head)

    def unhold(self, connection: Any) -> None:
        """Forget a held connection (it left, or was dropped)."""
        if self.holds.pop(connection, None) is not None and not self.active:
            self._drop_sent(self.head)

    def _count_held(self, delivery: Delivery) -> None:
        """Count what each held member will be sent of `delivery` (an answer to another
        member is nothing to it); drop any that this takes past `hold_limit`."""
        limit = self.hold_limit
        for connection, hold in list(self.holds.items()):
            if delivery.subject is connection:
                hold[1] += len(delivery.for_subject)
            else:
                hold[1] += len(delivery.json if hold[2] else delivery.plain)
            if limit and hold[1] > limit:
                del self.holds[connection]
                connection.too_slow(f"its catch-up and over {limit} bytes of messages since")

    def _write(self, connections: list[Any], start: int, end: int, is_json: bool) -> None:
        head = self.head
        base = self.base
        deliveries = self.deliveries
        subjects = self.subjects
        common: dict[int, bytes] = {}
        for index in range(start, end):
            connection = connections[index]
            mark = connection.delivered
            if mark >= head:
                continue
            connection.delivered = head
            if connection.protocol.state is not OPEN:
                continue
            if subjects and subjects.get(connection, -1) >= mark:
                data = _for_subject(deliveries[mark - base:], connection, is_json)
            else:
                data = common.get(mark)
                if data is None:
                    data = common[mark] = b"".join(
                        [d.json for d in deliveries[mark - base:]] if is_json
                        else [d.plain for d in deliveries[mark - base:]])
            if data:
                connection.transport.write(data)
                if connection.paused:  # only while a greeting drains (transport.py)
                    connection.check_backlog()


def _for_subject(deliveries: list[Delivery], connection: Any, is_json: bool) -> bytes:
    """The bytes `connection` gets for `deliveries`, its own versions in place."""
    return b"".join(
        d.for_subject if d.subject is connection else (d.json if is_json else d.plain)
        for d in deliveries
    )
