"""Frames that cost the server work but carry no message: floods of pings, pongs and empty
fragments are bounded in memory and in how much of the loop one client gets."""

from __future__ import annotations

import asyncio
import logging

from tests.helpers import (
    LIMITS,
    JsonClient,
    PlainClient,
    eventually,
    raw_handshake,
    say_big,
    server_side,
    stalled_reader,
)

# Client frames, masked with the zero key (legal, and the payload stays as it is).
EMPTY_PONG = b"\x8a\x80\0\0\0\0"
PING = b"\x89\x80\0\0\0\0"


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame of up to 125 bytes."""
    return bytes([opcode | (0x80 if fin else 0), 0x80 | len(payload)]) + b"\0" * 4 + payload


async def raw_plain_client(server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection through the WebSocket handshake (plain dialect), nothing read after."""
    reader, writer = await raw_handshake(server.port)
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def newest_connection(server):
    """The server's side of the connection opened last, once its handshake is done."""
    await eventually(lambda: any(c.is_open() for c in server._live))
    return max((c for c in server._live if c.is_open()), key=lambda c: c.remote_address[1])


async def test_a_message_in_many_empty_fragments_holds_only_its_bytes(start_server) -> None:
    """A text message whose fragments are mostly empty keeps nothing for the empty ones
    (each had cost a list entry: millions of them, gigabytes), and arrives whole."""
    server = await start_server()
    alice = await PlainClient.connect(f"{server.url}/lobby", "alice")
    reader, writer = await raw_plain_client(server)
    connection = await newest_connection(server)
    writer.write(masked(0x1, b"bob") + masked(0x1, b"hel", fin=False)
                 + masked(0x0, b"", fin=False) * 100_000)
    await eventually(lambda: connection.fragments is not None)
    await eventually(lambda: connection.held == b"" and connection.reading, timeout=20)
    assert len(connection.fragments) == 3
    writer.write(masked(0x0, b"lo"))
    assert await alice.recv() == "[Server]: bob has joined the chat."
    assert await alice.recv() == "[bob]: hello"
    writer.close()


async def test_a_flood_of_control_frames_is_read_a_slice_per_loop_turn(start_server) -> None:
    """Pongs sent without end are parsed a slice at a time, reading paused in between, so
    that one client cannot keep the loop from everyone else; all of them are read in the
    end, and the connection is read as usual afterwards."""
    server = await start_server()
    _, writer = await raw_plain_client(server)
    flood = EMPTY_PONG * 40_000  # 240 KB, as one read of a busy socket brings
    connection = await newest_connection(server)
    connection.data_received(flood)  # as the loop would hand it over
    assert connection.held and not connection.reading, "the rest waits for later turns"
    held = len(connection.held)
    await asyncio.sleep(0)
    assert len(connection.held) < held
    await eventually(lambda: connection.held == b"" and connection.reading)
    writer.write(masked(0x1, b"carol"))
    await eventually(lambda: server.hub.rooms.find("lobby") is not None)
    writer.close()


async def test_pings_from_a_client_that_reads_nothing_during_its_catch_up_drop_it(
        start_server, caplog) -> None:
    """A client catching up that sends pings and reads nothing has the answers count
    against --max-pending like any output: it is dropped as a slow consumer, once, instead
    of the pongs piling up without bound."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    server = await start_server(max_pending=64 * 1024, **LIMITS)
    writer = await JsonClient.connect(server.url, "writer")
    await say_big(writer, 40)
    late = await stalled_reader(server, writer.welcome["epoch"], server_sndbuf=16384)
    await writer.expect("presence")
    held = server_side(server, "late")
    await eventually(lambda: held.paused)  # the catch-up waits for room
    assert held.catchup is not None
    ping = masked(0x9, b"p" * 125)
    for _ in range(50):  # 2,000 pongs of 127 bytes: four times the limit
        late.transport.write(ping * 40)
        await asyncio.sleep(0)
    await eventually(lambda: "late" not in server.hub.rooms.find("lobby").members)
    drops = [r for r in caplog.records if "slow consumer" in r.getMessage()]
    assert len(drops) == 1, [r.getMessage() for r in drops]
    await writer.close()


async def test_a_connection_lost_with_input_held_back_leaves_nothing_to_parse(
        start_server) -> None:
    """A connection that ends (a reset) while a flood on it waits for its next loop turn,
    here one refused for its room, so with no session: that turn finds nothing to parse
    (before, it fed the ended protocol, and the loop logged an EOFError)."""
    server = await start_server()
    reader, writer = await raw_handshake(server.port, b"/a/b/c")
    await reader.readuntil(b"\r\n\r\n")
    port = writer.get_extra_info("sockname")[1]
    (connection,) = [c for c in server.connections if c.remote_address[1] == port]
    failures = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: failures.append(context))
    try:
        connection.data_received(PING * 60_000)  # as the loop would hand it over
        assert connection.held, "the rest waits for a later turn"
        connection.connection_lost(ConnectionResetError())  # before that turn
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(None)
        writer.close()
    assert failures == [] and connection.held == b""
