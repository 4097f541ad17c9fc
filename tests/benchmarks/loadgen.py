"""A lean WebSocket load generator: raw asyncio protocols that count frames.

Each client does its own opening handshake and then only splits incoming bytes into frames
and counts them; a few sampled clients also read the send time out of each message to
measure latency. Outgoing frames use a zero mask key (legal, and it saves XOR-ing every
payload). That keeps the generator far cheaper per delivery than the servers it measures.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from dataclasses import dataclass, field

PAYLOAD_SIZE = 100  # bytes of every chat message
_MASK = b"\x00\x00\x00\x00"


def message(seq: int, scheduled_ns: int) -> bytes:
    """A 100-byte message carrying its sequence number and scheduled send time."""
    head = b"%010d %019d " % (seq, scheduled_ns)
    return head + b"x" * (PAYLOAD_SIZE - len(head))


def client_frame(payload: bytes) -> bytes:
    """A masked (zero key) text frame from client to server, payload under 64 KiB."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, 0x80 | size)) + _MASK + payload
    return bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big") + _MASK + payload


@dataclass
class Tally:
    """What all clients received. Most clients only count bytes (every chat frame has the
    same size); the few that time messages or observe the window parse frames."""

    parsed_frames: int = 0
    counted_bytes: int = 0
    frame_size: int = 0  # bytes of one chat frame, set once it is known
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0

    @property
    def frames(self) -> int:
        counted = self.counted_bytes // self.frame_size if self.frame_size else 0
        return self.parsed_frames + counted


class LeanClient(asyncio.Protocol):
    """One WebSocket connection that counts the text frames it receives."""

    def __init__(self, host: str, path: str, tally: Tally, sample: bool = False,
                 join_line: bytes | None = None) -> None:
        self.host, self.path, self.tally, self.sample = host, path, tally, sample
        self.join_line = join_line  # plain-dialect servers want a nickname first
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.on_text = None  # optional callback(payload) for the observer
        self.counting = False  # set once ready, for clients that only count bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        elif self.upgraded:
            self.tally.errors += 1

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(payload))

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self.tally.counted_bytes += len(data)
            return
        if not self.upgraded:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(self.buffer[:80].decode(errors="replace")))
                return
            self.upgraded = True
            data, self.buffer = self.buffer[end + 4:], b""
            if self.join_line is not None:
                self.send(self.join_line)
            else:
                self.ready.set_result(None)
            if not data:
                return
        buffer = self.buffer + data if self.buffer else data
        size = len(buffer)
        position = 0
        frames = 0
        sample = self.sample or self.on_text is not None or not self.ready.done()
        while position + 2 <= size:
            length = buffer[position + 1] & 0x7F
            if length < 126:
                start = position + 2
            elif length == 126:
                if position + 4 > size:
                    break
                length = int.from_bytes(buffer[position + 2:position + 4], "big")
                start = position + 4
            else:
                if position + 10 > size:
                    break
                length = int.from_bytes(buffer[position + 2:position + 10], "big")
                start = position + 10
            end = start + length
            if end > size:
                break
            opcode = buffer[position] & 0x0F
            if opcode == 1:
                frames += 1
                if sample:
                    self._text(buffer[start:end])
            elif opcode == 9:  # ping: answer with a pong carrying the same data
                assert self.transport is not None
                payload = buffer[start:end]
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _MASK + payload)
            position = end
        self.buffer = buffer[position:]
        self.tally.parsed_frames += frames

    def _text(self, payload: bytes) -> None:
        if not self.ready.done():  # the greeting of a plain-dialect server
            if b"Welcome" in payload:
                self.ready.set_result(None)
            return
        if len(payload) < PAYLOAD_SIZE or payload[-PAYLOAD_SIZE + 10:-PAYLOAD_SIZE + 11] != b" ":
            return  # a presence line, not one of our messages
        body = payload[-PAYLOAD_SIZE:]
        if self.sample:
            self.tally.latencies_ns.append(time.perf_counter_ns() - int(body[11:30]))
        if self.on_text is not None:
            self.on_text(int(body[:10]))


async def open_clients(host: str, port: int, path: str, count: int, tally: Tally, *,
                       plain_join: bool, samples: int, prefix: str = "c",
                       concurrency: int = 200) -> list[LeanClient]:
    """Open `count` connections, in index order. `samples` of them, spread evenly over the
    room (servers deliver in join order, so the first joiners would be served first), measure
    latency."""
    loop = asyncio.get_running_loop()
    clients: list[tuple[int, LeanClient]] = []
    semaphore = asyncio.Semaphore(concurrency)
    stride = max(1, count // samples) if samples else count + 1
    sampled = {index for index in range(stride // 2, count, stride)}
    sampled = set(sorted(sampled)[:samples])

    async def one(index: int) -> None:
        async with semaphore:
            join = f"{prefix}{index:06d}".encode() if plain_join else None  # all one length
            _, client = await loop.create_connection(
                lambda: LeanClient(f"{host}:{port}", path, tally, index in sampled, join),
                host, port)
            await asyncio.wait_for(client.ready, 60)
            clients.append((index, client))

    await asyncio.gather(*(one(index) for index in range(count)))
    clients.sort(key=lambda pair: pair[0])
    # A chat frame: 2 header bytes and the payload, "[c000123]: " first on plain servers.
    tally.frame_size = 2 + PAYLOAD_SIZE + (len(f"[{prefix}000000]: ") if plain_join else 0)
    return [client for _, client in clients]


def count_only(clients: list[LeanClient]) -> None:
    """From now on, all but the sampling clients (and observers) just count bytes."""
    for client in clients:
        if not client.sample and client.on_text is None and not client.buffer:
            client.counting = True


def percentile(values: list[int], fraction: float) -> float:
    """The value below which `fraction` of `values` fall (nearest rank), in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))
    return ordered[index] / 1e6
