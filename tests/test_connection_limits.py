"""Connection limits: per address and in all, counted from the TCP accept, handshake included."""

from __future__ import annotations

import asyncio
import gc
import socket
from types import SimpleNamespace

import pytest
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.server import ServerProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tui_chat_server.limits import ConnectionCounter
from tui_chat_server import admission, transport
from tui_chat_server.admission import REFUSAL_WAIT
from tests.helpers import PROMPT, JsonClient, eventually, gone_with_lines_waiting, upgrade_request

pytestmark = pytest.mark.usefixtures("server_log")


async def refusal_status(url: str) -> int:
    """The HTTP status with which the server refuses a JSON client's handshake."""
    with pytest.raises(InvalidStatus) as refused:
        await JsonClient.connect(url, "alice")
    return refused.value.response.status_code


def test_connection_counter_limits_per_address_and_in_total() -> None:
    """Admission stops at each limit and resumes once connections are released."""
    counter = ConnectionCounter(per_address=2, total=3)
    assert [counter.admit("a"), counter.admit("a")] == [None, None]
    assert counter.admit("a") == ConnectionCounter.PER_ADDRESS
    assert counter.admit("b") is None
    assert counter.admit("c") == ConnectionCounter.TOTAL
    counter.release("a")
    assert counter.admit("a") is None
    assert counter.by_address == {"a": 2, "b": 1}


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    """Per-address limits count an IPv6 client by its /64 (one subscriber's share of
    addresses), an IPv4 address as itself, also when mapped into IPv6, and a loopback or
    link-local address as itself, on its interface (every link has the same /64)."""
    def key(*address: object) -> str:
        return admission.client_address(SimpleNamespace(remote_address=address))

    assert key("2001:db8:1:2::5", 1, 0, 0) == key("2001:db8:1:2:ffff::9", 2, 0, 0)
    assert key("2001:db8:1:2::5", 1, 0, 0) == "2001:db8:1:2::/64"
    assert key("2001:db8:1:3::5", 1, 0, 0) != key("2001:db8:1:2::5", 1, 0, 0)
    assert key("::ffff:192.0.2.7", 1, 0, 0) == key("192.0.2.7", 1) == "192.0.2.7"
    assert key("192.0.2.7", 1) != key("192.0.2.8", 1)
    assert key("fe80::1%eth0", 1, 0, 2) != key("fe80::2%eth0", 1, 0, 2)  # every link has fe80::/64
    assert key("fe80::1%eth0", 1, 0, 2) != key("fe80::1%eth1", 1, 0, 3)
    assert key("::1", 1, 0, 0) == "::1"


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
async def test_the_per_address_limit_holds_over_ipv6(start_server) -> None:
    """A server listening on IPv6 refuses a client's connection past --max-per-ip with 429."""
    try:
        server = await start_server(host="::1", max_per_ip=1)
    except OSError:
        pytest.skip("cannot listen on ::1 here")
    assert server.url.startswith("ws://[::1]:")
    first = await JsonClient.connect(server.url, "alice")
    with pytest.raises(InvalidStatus) as refused:
        await JsonClient.connect(server.url, "bob")
    assert (refused.value.response.status_code, refused.value.response.body) == (
        429, b"Too many connections from your address.\n")  # (loopback: counted as itself)
    await first.close()
    await eventually(lambda: not server.admission.counter.by_address)
    second = await JsonClient.connect(server.url, "bob")
    await second.close()


async def test_connections_beyond_the_per_address_limit_get_429(start_server, caplog) -> None:
    """The third connection from one address is refused at the handshake with HTTP 429."""
    server = await start_server(max_per_ip=2)
    first = await JsonClient.connect(server.url, "a")
    second = await JsonClient.connect(server.url, "b")
    assert await refusal_status(server.url) == 429
    assert any("connections from 127.0.0.1 already" in r.getMessage() for r in caplog.records)
    await second.close()
    await eventually(lambda: server.counter.count == 1)
    third = await JsonClient.connect(server.url, "c")  # a place came free
    for client in (first, third):
        await client.close()


async def test_connections_beyond_max_clients_get_503(start_server, caplog) -> None:
    """Past --max-clients the handshake is refused with HTTP 503."""
    server = await start_server(max_clients=1)
    only = await JsonClient.connect(server.url, "only")
    assert await refusal_status(server.url) == 503
    assert any("server is full" in r.getMessage() for r in caplog.records)
    await only.close()


async def test_a_handshake_that_never_finishes_is_closed(start_server, caplog) -> None:
    """A TCP connection that sends no handshake is closed after --handshake-timeout."""
    server = await start_server(handshake_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the server
    writer.close()
    assert any("handshake not finished" in r.getMessage() for r in caplog.records)


async def test_headers_of_a_handshake_that_timed_out_are_freed_at_once(start_server) -> None:
    """The headers a client sent before its handshake timed out are freed when it is closed,
    not kept in reference cycles until the garbage collector's next full pass."""
    server = await start_server(handshake_timeout=0.3)
    gc.collect()
    gc.disable()  # what is freed now is freed by its references alone
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /lobby HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-Left-Behind-%d: %s\r\n" % (i, b"a" * 1000) for i in range(20)))
        assert await asyncio.wait_for(reader.read(), 3) == b""  # closed by the server
        writer.close()
        await asyncio.sleep(0.05)
        kept = [o for o in gc.get_objects() if isinstance(o, Headers) and "X-Left-Behind-1" in o]
        assert kept == []
    finally:
        gc.enable()


async def test_a_connection_dropped_without_a_close_frame_is_freed_at_once(start_server) -> None:
    """A client that vanishes without closing leaves no connection behind in reference
    cycles for the garbage collector's next full pass."""
    server = await start_server()
    gc.collect()
    gc.disable()  # what is freed now is freed by its references alone
    try:
        client = await JsonClient.connect(server.url, "alice")
        client.connection.transport.abort()  # gone: no close frame
        await eventually(lambda: not server.admission.counter.by_address)
        await asyncio.sleep(0.05)
        left = [o for o in gc.get_objects() if type(o) in (transport.ChatConnection, ServerProtocol)]
        assert left == []
    finally:
        gc.enable()


async def test_a_slow_handshake_does_not_count_against_others(start_server) -> None:
    """While one handshake stalls, others connect and chat."""
    server = await start_server(handshake_timeout=5)
    stalled = await asyncio.open_connection("127.0.0.1", server.port)
    client = await JsonClient.connect(server.url, "alice")
    assert (await client.say("fine"))["text"] == "fine"
    await client.close()
    stalled[1].close()


async def test_a_refused_handshake_is_not_counted(start_server) -> None:
    """Connections refused for a limit do not use up places themselves."""
    server = await start_server(max_per_ip=1)
    first = await JsonClient.connect(server.url, "a")
    for _ in range(5):
        with pytest.raises(InvalidStatus):
            await JsonClient.connect(server.url, "b")
    await first.close()
    await eventually(lambda: server.counter.count == 0)
    async with connect(server.url) as connection:
        assert (await connection.recv()).startswith(PROMPT)
        await connection.send("b")
        assert (await connection.recv()).startswith("[Server]: Welcome")
        assert server.counter.count == 1
    with pytest.raises(ConnectionClosed):
        await first.connection.recv()


def test_connections_over_a_limit_wait_to_be_refused_only_up_to_a_bound() -> None:
    """Up to `refusals` connections over a limit may wait to be told so; more may not, until
    one of those has gone."""
    counter = ConnectionCounter(per_address=1, total=0, refusals=2)
    assert [counter.refuse_later(), counter.refuse_later(), counter.refuse_later()] == [
        True, True, False]
    counter.refused()
    assert counter.refuse_later() and counter.refusing == 2


async def silent_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the server that sends nothing (not even a request)."""
    return await asyncio.open_connection("127.0.0.1", port)


async def test_connections_still_in_the_handshake_count_against_the_address(start_server) -> None:
    """Connections that have sent no request yet hold places: with two from one address a
    third gets HTTP 429, and once one of them has closed it gets in."""
    server = await start_server(max_per_ip=2)
    silent = [await silent_connection(server.port) for _ in range(2)]
    await eventually(lambda: server.counter.count == 2)
    assert await refusal_status(server.url) == 429
    silent[0][1].close()
    await eventually(lambda: server.counter.count == 1)
    alice = await JsonClient.connect(server.url, "alice")
    assert (await alice.say("in"))["text"] == "in"
    await alice.close()
    silent[1][1].close()


async def test_connections_still_in_the_handshake_count_against_max_clients(start_server) -> None:
    """A server whose one place is held by a connection that sent no request is full."""
    server = await start_server(max_clients=1)
    _, writer = await silent_connection(server.port)
    await eventually(lambda: server.counter.count == 1)
    assert await refusal_status(server.url) == 503
    writer.close()


async def test_one_over_a_limit_that_sends_no_request_is_closed_without_waiting_long(
        start_server, caplog) -> None:
    """A connection over a limit waits REFUSAL_WAIT for its request, not the handshake
    timeout, then is closed without an answer and the log says why; the one within the
    limit stays."""
    server = await start_server(max_per_ip=1, handshake_timeout=60)
    held_reader, held = await silent_connection(server.port)
    reader, writer = await silent_connection(server.port)
    assert await asyncio.wait_for(reader.read(), 30) == b""
    assert any(f"closed without an answer: no request within {REFUSAL_WAIT:g} s"
               in record.getMessage() for record in caplog.records)
    await eventually(lambda: server.counter.refusing == 0)
    assert server.counter.count == 1 and not held_reader.at_eof()
    for stream in (writer, held):
        stream.close()


async def test_past_the_bound_on_waiting_refusals_more_connections_are_closed_at_once(
        start_server, caplog) -> None:
    """With `refusals` connections over the limits waiting for their requests, one more is
    closed at once (the first of a flood logged), and once none wait one line counts them
    all; a connection within the limits still gets in meanwhile."""
    server = await start_server(max_per_ip=1, handshake_timeout=60)
    server.counter.refusals = 2
    alice = await JsonClient.connect(server.url, "alice")
    waiting = [await silent_connection(server.port) for _ in range(2)]
    await eventually(lambda: server.counter.refusing == 2)
    flood = [await silent_connection(server.port) for _ in range(3)]
    for reader, _ in flood:
        assert await asyncio.wait_for(reader.read(), 30) == b""
    lines = [record.getMessage() for record in caplog.records]
    assert sum("2 others wait to be refused" in line for line in lines) == 1, lines
    await eventually(lambda: server.counter.refusing == 0, timeout=10)
    assert any("5 connections over the limits were closed without an answer in all"
               in record.getMessage() for record in caplog.records)
    assert (await alice.say("still here"))["text"] == "still here"
    for _, writer in waiting + flood:
        writer.close()
    await alice.close()


async def test_a_request_over_a_limit_sent_within_the_wait_gets_its_status_and_no_more(
        start_server, caplog, monkeypatch) -> None:
    """One over a limit that sends its request half a second after connecting still gets
    its 429, and keeping its end open afterwards is not taken for a request that never came:
    the server closes it without logging it as unanswered, and forgets it."""
    monkeypatch.setattr(transport, "REFUSAL_WAIT", 2.0)  # half a second is well within it
    server = await start_server(max_per_ip=1, close_timeout=0.5)
    alice = await JsonClient.connect(server.url, "alice")
    reader, writer = await silent_connection(server.port)
    await asyncio.sleep(0.5)
    writer.write(upgrade_request())
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 429")
    assert await asyncio.wait_for(reader.read(), 5)  # the rest of the answer, then the end
    await eventually(lambda: server.counter.refusing == 0)
    await asyncio.sleep(transport.REFUSAL_WAIT)
    assert not any("without an answer" in record.getMessage() for record in caplog.records)
    assert server.counter.count == 1
    writer.close()
    await alice.close()


async def test_one_over_a_limit_when_it_came_gets_in_if_a_place_is_free_by_its_request(
        start_server) -> None:
    """Connections are counted when they come, but a place that came free before the request
    of one over the limit is its own: it is let in rather than refused."""
    server = await start_server(max_per_ip=1)
    alice = await JsonClient.connect(server.url, "alice")
    reader, writer = await silent_connection(server.port)
    await eventually(lambda: server.counter.refusing == 1)
    await alice.close()
    await eventually(lambda: server.counter.count == 0)
    writer.write(upgrade_request())
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 101")
    await eventually(lambda: (server.counter.count, server.counter.refusing) == (1, 0))
    writer.close()
    await eventually(lambda: server.counter.count == 0)


async def test_a_full_server_still_answers_health_checks(start_server) -> None:
    """With every place taken, GET /healthz is still answered 200: the server is up."""
    server = await start_server(max_clients=1)
    _, held = await silent_connection(server.port)
    await eventually(lambda: server.counter.count == 1)
    reader, writer = await silent_connection(server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"HTTP/1.1 200")
    for stream in (writer, held):
        stream.close()


async def test_a_raw_client_gone_with_lines_to_post_keeps_its_place_until_it_leaves(
        start_server) -> None:
    """A raw client that hangs up with lines still waiting their turn counts against its
    address until they are posted and it has left, so hanging up cannot leave more members
    behind than --max-per-ip allows."""
    server = await start_server(rate=2, burst=2, max_per_ip=2)
    bob = await gone_with_lines_waiting(server, 4)
    assert await refusal_status(server.url) == 429
    event = await bob.recv(timeout=10)
    while event["type"] != "presence":
        event = await bob.recv(timeout=10)
    assert (event["event"], event["nick"]) == ("leave", "pat")
    await eventually(lambda: server.counter.count == 1)
    carol = await JsonClient.connect(server.url, "carol")
    await asyncio.gather(bob.close(), carol.close())


async def test_a_flood_of_refused_handshakes_is_logged_once_then_counted(
        start_server, caplog, monkeypatch) -> None:
    """Refusals of one kind are logged at most once per REFUSAL_LOG_GAP: five in a row make
    one line, and the next line after the gap says how many went unsaid."""
    monkeypatch.setattr(admission, "REFUSAL_LOG_GAP", 60.0)  # five in a row: well within it
    server = await start_server(max_per_ip=1)
    alice = await JsonClient.connect(server.url, "alice")
    for _ in range(5):
        assert await refusal_status(server.url) == 429
    lines = [r.getMessage() for r in caplog.records if "connections from 127.0.0.1 already" in r.getMessage()]
    assert len(lines) == 1, lines
    monkeypatch.setattr(admission, "REFUSAL_LOG_GAP", 0.0)  # the gap has passed
    assert await refusal_status(server.url) == 429
    lines = [r.getMessage() for r in caplog.records if "connections from 127.0.0.1 already" in r.getMessage()]
    assert len(lines) == 2 and lines[1].endswith(
        "(4 more such refusals since the last line like this)"), lines
    await alice.close()
