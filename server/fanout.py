"""Fan-out: every event becomes one prepared WebSocket frame per dialect, and everything a
room sends during one loop tick reaches each member in a single write.

This is the idea of gorilla/websocket's PreparedMessage, plus write coalescing: the frame is
serialised once (by websockets' own `Frame.serialize`), the frames of a tick are joined once,
and the loop over recipients does nothing but write the same bytes. It is only correct for
connections without compression (the server never negotiates it) that never send fragmented
messages (the server never does), and it writes only to connections in the OPEN state, so
it never writes after a close frame. A client that does not read still trips the slow-consumer
bound, because `transport.write` is what fills its buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State

OPEN = State.OPEN


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
    subject_is_json: bool = False
    for_subject: bytes = b""


def write_to_all(connections: list[Any], data: bytes, special: dict[Any, bytes]) -> None:
    """Write `data` (or a connection's entry in `special`) to every open connection."""
    if special:
        for connection in connections:
            if connection.protocol.state is OPEN:
                payload = special.get(connection, data)
                if payload:
                    connection.transport.write(payload)
    elif data:
        for connection in connections:
            if connection.protocol.state is OPEN:
                connection.transport.write(data)


def coalesce(batch: list[Delivery]) -> tuple[bytes, bytes, dict[Any, bytes]]:
    """The bytes every JSON member gets, every plain member gets, and each subject gets."""
    json_all = b"".join(delivery.json for delivery in batch)
    plain_all = b"".join(delivery.plain for delivery in batch)
    special: dict[Any, bytes] = {}
    for delivery in batch:
        subject = delivery.subject
        if subject is None or subject in special:
            continue
        is_json = delivery.subject_is_json
        special[subject] = b"".join(
            d.for_subject if d.subject is subject else (d.json if is_json else d.plain)
            for d in batch
        )
    return json_all, plain_all, special
