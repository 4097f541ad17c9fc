"""Every limit: its default, what the client is told, that others are unaffected, a log line."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from tui_chat_server import ServerConfig
from tui_chat_server.limits import FailedLogins, TokenBucket
from tests.helpers import (
    JsonClient, PlainClient, eventually, gone_with_lines_waiting, sender_reader_stalled,
)

pytestmark = pytest.mark.usefixtures("server_log")


def test_the_defaults_are_the_documented_ones() -> None:
    """5 messages/s with bursts of 10, 20 per address, 10,000 in all, 1 MiB pending, 10 s."""
    config = ServerConfig()
    assert (config.rate, config.burst) == (5.0, 10)
    assert (config.max_per_ip, config.max_clients) == (20, 10_000)
    assert config.max_pending == 1024 * 1024
    assert config.handshake_timeout == 10.0
    assert config.history == 10_000


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    """A full bucket gives `burst` tokens at once; after that each token is reserved ahead,
    at `rate` per second, in the order asked for."""
    now = [0.0]
    bucket = TokenBucket(rate=5, burst=10, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(10)] == [0.0] * 10
    assert [round(bucket.reserve(), 3) for _ in range(3)] == [0.2, 0.4, 0.6]
    now[0] += 0.6  # the three reserved tokens have come in: the next waits 0.2 s
    assert round(bucket.reserve(), 3) == 0.2
    now[0] += 100
    assert sum(bucket.reserve() == 0 for _ in range(20)) == 10
    assert all(TokenBucket(rate=0, burst=1).reserve() == 0 for _ in range(100))


def test_three_wrong_passwords_in_a_row_make_an_address_wait_longer_each_time() -> None:
    """After three wrong passwords in a row, 1 s, then 2 s, 4 s ... up to the cap, per
    address. A right one clears it, and so does a quiet spell as long as the cap."""
    now = [0.0]
    failures = FailedLogins(tries=3, first=1.0, cap=8.0, keep=3, clock=lambda: now[0])
    waits = []
    for _ in range(7):
        failures.failed("a")
        waits.append(failures.wait("a"))
    assert waits == [0, 0, 1, 2, 4, 8, 8]
    assert failures.wait("b") == 0  # another address is not held up
    now[0] += 3
    assert failures.wait("a") == 5
    failures.succeeded("a")
    assert failures.wait("a") == 0
    for _ in range(3):
        failures.failed("a")
    now[0] += 1 + 8.5  # the wait, then a quiet spell longer than the cap
    failures.failed("a")
    assert failures.wait("a") == 0  # counted afresh: the first of three
    for address in "bcd":
        failures.failed(address)
    assert list(failures.by_address) == ["b", "c", "d"]  # at most `keep`, oldest forgotten


def test_a_right_password_clears_only_the_wrong_ones_for_its_own_name() -> None:
    """Logging in to your own account does not wipe out guesses at another's: a right
    password clears the count only when every wrong one was for that same name."""
    failures = FailedLogins(tries=3, first=1.0, cap=8.0, clock=lambda: 0.0)
    failures.failed("a", "alice")
    failures.failed("a", "alice")
    failures.failed("a", "mallory")  # mallory's own password, counted before it is checked
    failures.succeeded("a", "mallory")
    assert failures.wait("a") == 1
    failures.failed("b", "bob")
    failures.failed("b", "bob")  # bob mistyped, then typed it right
    failures.succeeded("b", "bob")
    assert "b" not in failures.by_address


async def test_messages_past_the_rate_wait_their_turn_in_order(start_server, caplog) -> None:
    """Past the burst, messages are neither refused nor reordered: each waits for its turn
    at the rate, everyone gets them in the order sent, and the flood is logged once (and
    a second flood soon after, not again)."""
    server = await start_server(rate=10, burst=3)
    alice = await JsonClient.connect(server.url, "alice")
    bob = await JsonClient.connect(server.url, "bob")
    await alice.expect("presence")
    started = asyncio.get_running_loop().time()
    for number in range(12):
        await alice.send(type="say", text=f"m{number}", cid=f"c{number}")
    acks = [await alice.expect("message") for _ in range(12)]
    took = asyncio.get_running_loop().time() - started
    assert [a["cid"] for a in acks] == [f"c{n}" for n in range(12)]
    assert [(await bob.expect("message"))["text"] for _ in range(12)] == [
        f"m{n}" for n in range(12)]
    assert 0.8 < took < 10, "10 past the burst (hello took one), at 10 a second"
    await asyncio.sleep(0.5)  # the bucket fills again: the next flood starts afresh
    for number in range(12, 18):
        await alice.send(type="say", text=f"m{number}", cid=f"c{number}")
    assert [(await alice.expect("message"))["cid"] for _ in range(6)] == [
        f"c{n}" for n in range(12, 18)]
    logged = [r for r in caplog.records if "over the rate limit" in r.getMessage()]
    assert len(logged) == 1, "floods are logged once a minute, not once per message or flood"
    await alice.close()
    await bob.close()


async def test_plain_clients_are_paced_too(start_server) -> None:
    """A plain client past the burst has its lines delivered at the rate, in order."""
    server = await start_server(rate=10, burst=2)
    pat = await PlainClient.connect(server.url, "pat")
    reader = await PlainClient.connect(server.url, "reader")
    started = asyncio.get_running_loop().time()
    for number in range(6):
        await pat.send(f"line {number}")
    assert [await reader.recv() for _ in range(6)] == [f"[pat]: line {n}" for n in range(6)]
    assert asyncio.get_running_loop().time() - started > 0.3
    await pat.close()
    await reader.close()


async def test_frames_waiting_their_turn_are_dropped_once_a_json_client_has_gone(
        start_server) -> None:
    """A JSON client's frames still waiting when it disconnects are not posted (none was
    acknowledged; its client sends them again), so nobody sees a leaver talk; a plain
    client's are posted, as nothing would ever send them again."""
    server = await start_server(rate=1, burst=2)  # the hello (or name) and one message
    bob = await JsonClient.connect(server.url, "bob")
    alice = await JsonClient.connect(server.url, "alice")
    pat = await PlainClient.connect(server.url, "pat")
    for number in range(5):
        await alice.send(type="say", text=f"json {number}", cid=f"c{number}")
        await pat.send(f"plain {number}")
    # Read by the server: the second of each waits its turn, the last three in the inbox.
    await eventually(lambda: sum(len(connection.inbox) for connection in server._live) == 6)
    alice.connection.transport.abort()
    pat.connection.transport.abort()
    texts = []
    while True:  # alice leaves at once; pat after its last line, at 1 a second
        event = await bob.recv(10)
        if event["type"] == "message":
            texts.append(event["text"])
        elif (event["event"], event["nick"]) == ("leave", "pat"):
            break
    assert await bob.silent(1.5)
    assert [t for t in texts if t.startswith("json")] == ["json 0"]  # only its burst
    assert [t for t in texts if t.startswith("plain")] == [f"plain {n}" for n in range(5)]
    await bob.close()


async def test_a_raw_client_gone_keeps_its_name_until_its_waiting_lines_are_posted(
        start_server) -> None:
    """A raw client's lines still waiting their turn when it disconnects are posted under its
    name, which nobody else can take meanwhile; its leave comes after the last of them, and
    then the name is free."""
    server = await start_server(rate=2, burst=2)  # its name and one line, then 2 a second
    bob = await gone_with_lines_waiting(server, 5)
    impostor = await PlainClient.connect(server.url)
    await impostor.send("pat")
    assert "taken" in await impostor.recv()
    events = []
    while not events or events[-1]["type"] != "presence":
        events.append(await bob.recv(timeout=10))
    assert [(e["type"], e.get("text") or e.get("event")) for e in events] == [
        ("message", f"line {n}") for n in range(1, 5)] + [("presence", "leave")]
    await impostor.send("pat")
    await impostor.lines_until("[Server]: Welcome")
    await asyncio.gather(bob.close(), impostor.close())


async def test_a_json_client_gone_leaves_without_waiting_for_its_frames_turn(
        start_server) -> None:
    """A JSON client that disconnects while a frame waits its turn leaves at once: the frame
    is dropped (its client sends it again) rather than holding the member in the room."""
    server = await start_server(rate=0.2, burst=2)  # the hello and one message, then 1 in 5 s
    bob = await JsonClient.connect(server.url, "bob")
    alice = await JsonClient.connect(server.url, "alice")
    assert (await bob.expect("presence"))["event"] == "join"
    await alice.send(type="say", text="now", cid="c0")
    await alice.send(type="say", text="in five seconds", cid="c1")
    assert (await bob.expect("message"))["text"] == "now"
    await eventually(lambda: any(connection.worker for connection in server._live))
    alice.connection.transport.abort()
    presence = await bob.expect("presence", timeout=2)
    assert (presence["event"], presence["nick"]) == ("leave", "alice")
    await bob.close()


async def test_a_client_that_stops_reading_is_disconnected(start_server, caplog) -> None:
    """Once output pending for a non-reader passes --max-pending it is dropped; others go on."""
    server = await start_server(max_pending=64 * 1024, max_text=4000)
    sender, reader, stalled = await sender_reader_stalled(server.url)
    text = "x" * 3900
    left = False
    for number in range(5000):  # up to ~20 MB: past any socket buffer
        await sender.send(type="say", text=text, cid=str(number))
        event = await sender.recv()
        while event["type"] == "presence":
            left = left or (event["event"], event["nick"]) == ("leave", "stalled")
            event = await sender.recv()
        if left:
            break
        await reader.recv()
    assert left, "the stalled client was never dropped"
    assert any("slow consumer" in r.getMessage() for r in caplog.records)
    assert (await sender.say("still flowing"))["text"] == "still flowing"
    stalled.connection.transport.abort()
    await asyncio.gather(sender.close(), reader.close())


async def test_output_for_a_connection_that_is_gone_is_not_kept(start_server) -> None:
    """What is sent to a connection after its socket failed (as a long catch-up goes on
    being written after its client hung up) is dropped at once, not kept with the connection
    until some later full garbage collection, which the quiet collector makes rare: before,
    each such join of a client to a big history kept its whole catch-up, 30 MB, until then."""
    import gc
    import tracemalloc

    server = await start_server(max_text=60_000, max_frame=256 * 1024)
    client = await JsonClient.connect(server.url, "leaving")
    (connection,) = server._live
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        connection.transport.abort()  # as on a reset: closing, and connection_lost to come
        for _ in range(20):
            connection.send("x" * 100_000)  # (2 MB in all)
        await client.connection.wait_closed()
        await asyncio.sleep(0.1)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert kept < 200_000, f"{kept:,} of 2,000,000 bytes sent after the socket failed were kept"


async def test_one_read_of_many_tiny_frames_fills_the_inbox_only_to_its_bound(
        start_server) -> None:
    """Thousands of tiny frames arriving in one read are parsed only while fewer than 1,024
    wait (a little more: what one slice of input holds), not all at once; the rest follow,
    in order, as the paced ones are handled."""
    server = await start_server(rate=50, burst=1)
    pat = await PlainClient.connect(server.url, "pat")
    reader = await PlainClient.connect(server.url, "reader")
    connection = next(c for c in server._live if c.session.member.nick == "pat")
    frames = b"".join(_masked_text_frame(f"{number}".encode()) for number in range(5000))
    pat.connection.transport.write(frames)  # one write of 5,000 frames, about 47 KB
    most = 0
    for _ in range(20):
        await asyncio.sleep(0.02)
        most = max(most, len(connection.inbox))
    assert 1024 <= most <= 1024 + 1024 // 6  # docs: "no more than about 1,200 ever wait"
    assert [await reader.recv() for _ in range(5)] == [f"[pat]: {n}" for n in range(5)]
    await pat.close()
    await reader.close()


async def test_big_frames_fill_the_inbox_only_to_its_bound_in_bytes(start_server) -> None:
    """However few, the frames waiting for one client hold no more than about 256 KiB."""
    server = await start_server(rate=1, burst=1, max_text=60_000, max_frame=256 * 1024)
    pat = await PlainClient.connect(server.url, "pat")
    connection = next(iter(server._live))
    for number in range(40):  # 2.4 MB
        await pat.send(f"{number} " + "x" * 59_990)
    await eventually(lambda: connection.inbox_bytes >= 256 * 1024)
    await asyncio.sleep(0.3)  # and no further, however long it waits
    assert 256 * 1024 <= connection.inbox_bytes <= 256 * 1024 + 60_000
    await pat.close()


async def test_the_inbox_bound_counts_bytes_as_sent_not_characters(start_server) -> None:
    """Text of four-byte characters fills the inbox four times as fast as ASCII: what waits
    for one client is bound in bytes, whatever it is made of."""
    server = await start_server(rate=1, burst=1, max_text=15_000, max_frame=64 * 1024)
    pat = await PlainClient.connect(server.url, "pat")
    connection = next(iter(server._live))
    for number in range(40):  # 2.4 MB as sent
        await pat.send(f"{number:02d} " + "\N{GRINNING FACE}" * 14_990)
    await eventually(lambda: connection.inbox_bytes >= 256 * 1024)
    await asyncio.sleep(0.3)  # and no further, however long it waits
    assert 256 * 1024 <= connection.inbox_bytes <= 256 * 1024 + 60_000
    assert len(connection.inbox) <= 6
    await pat.close()


async def test_a_bot_that_sends_hundreds_at_once_is_paced_and_keeps_its_connection(
        start_server) -> None:
    """300 messages sent at once to a rate-limited server are all read while they wait
    their turn, so the bot's keepalive pings are answered and every message is stored (had
    reading stopped while they wait, its own client would close the connection, 1011)."""
    server = await start_server(rate=100, burst=1)
    async with connect(server.url, ping_interval=0.3, ping_timeout=1) as bot:
        await bot.send("bot")
        while not (await bot.recv()).startswith("[Server]: Welcome"):
            pass
        for number in range(300):  # 3 s of work at the rate
            await bot.send(f"line {number}")
        await asyncio.sleep(3.5)
        await bot.send("/who")
        assert (await asyncio.wait_for(bot.recv(), 5)).startswith("[Server]: In lobby (1)")
    assert stored_count(server) == 300


def stored_count(server) -> int:
    return server.hub.history.last_id("lobby")


def _masked_text_frame(payload: bytes) -> bytes:
    """A client's text frame (short, masked with a zero key), as it goes on the wire."""
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
