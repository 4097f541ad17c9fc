"""Who gets in: the shared token, TLS and allowed browser origins (registered nicknames:
test_accounts.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import re
import ssl
import sys
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.helpers import PROMPT, JsonClient, Recorder, eventually, raw_handshake
from tui_chat.client import ChatClient
from tui_chat_server.limits import WRONG_TOKEN, FailedLogins, TokenGate
from tui_chat.protocol import SUBPROTOCOL
from tui_chat.updates import State, StateChanged

pytestmark = pytest.mark.usefixtures("every_log_line")

TOKEN = "s3cret-token-value"


async def test_json_clients_may_present_the_token_in_hello(start_server) -> None:
    """The right token in hello joins; no or a wrong token (half a surrogate pair too) gets
    `unauthorized` and a close, before any room data is sent."""
    server = await start_server(token=TOKEN)
    alice = await JsonClient.connect(server.url, "alice", token=TOKEN)
    assert alice.welcome["users"] == ["alice"]
    for token in (None, "wrong", "\udfff"):
        intruder = await JsonClient.connect(server.url)
        await intruder.send(type="hello", nick="eve", **({"token": token} if token else {}))
        error = await intruder.expect("error")
        assert error["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            await intruder.recv()
        assert intruder.connection.close_code == 1008
    assert await alice.silent(), "no presence: the intruder never joined"
    await alice.close()


async def test_a_bearer_header_is_checked_at_the_handshake(start_server) -> None:
    """Authorization: Bearer works for both dialects; a wrong one is HTTP 401."""
    server = await start_server(token=TOKEN)
    good = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(server.url, additional_headers=good, subprotocols=[SUBPROTOCOL]) as json_ws:
        await json_ws.send('{"type":"hello","nick":"alice"}')
        assert '"welcome"' in await json_ws.recv()
    async with connect(server.url, additional_headers=good) as plain_ws:
        assert (await plain_ws.recv()).startswith(PROMPT)
        await plain_ws.send("pat")
        assert (await plain_ws.recv()).startswith("[Server]: Welcome")
    for headers, subprotocols in (({"Authorization": "Bearer nope"}, [SUBPROTOCOL]),
                                  ({"Authorization": "Bearer nope"}, None),
                                  (None, None)):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, additional_headers=headers, subprotocols=subprotocols)
        assert refused.value.response.status_code == 401


def test_three_wrong_tokens_in_a_row_make_an_address_wait_before_the_next_is_compared() -> None:
    """After three wrong tokens from one address even the right one is refused, saying how
    long to wait; once the wait is over the right one opens and clears the count, and
    another address was never held up."""
    now = [0.0]
    gate = TokenGate(TOKEN, FailedLogins(clock=lambda: now[0]))
    assert [gate.refusal("guess", "10.0.0.1") for _ in range(3)] == [WRONG_TOKEN] * 3
    assert gate.refusal(TOKEN, "10.0.0.1") == ("Too many wrong tokens from your address: wait"
                                               " 1 s before trying again.")
    assert gate.refusal(TOKEN, "10.0.0.2") is None
    now[0] = 1.5
    assert gate.refusal(TOKEN, "10.0.0.1") is None
    assert gate.refusal("guess", "10.0.0.1") == WRONG_TOKEN  # counted afresh


def test_an_ipv6_client_told_to_wait_is_told_its_network_was_counted() -> None:
    """An IPv6 client's wrong tokens count for its /64, and the refusal names that network
    (others may share it)."""
    gate = TokenGate(TOKEN, FailedLogins(clock=lambda: 0.0))  # (a stall cannot end the wait)
    network = "2001:db8:1:2::/64"
    assert [gate.refusal("guess", network) for _ in range(3)] == [WRONG_TOKEN] * 3
    assert gate.refusal(TOKEN, network) == ("Too many wrong tokens from your network"
                                            " (2001:db8:1:2::/64): wait 1 s before trying again.")


async def test_a_token_guessed_at_is_refused_with_429_for_a_while(start_server, caplog) -> None:
    """Three wrong tokens in a row (in a header or in hello) make the address wait: its next
    handshake gets HTTP 429 saying how long, and a hello `rate_limited` saying the same (its
    connection stays, to say hello again); the right token gets in once the wait is over."""
    server = await start_server(token=TOKEN)
    guess = {"Authorization": "Bearer guess"}
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.url, additional_headers=guess)
        assert refused.value.response.status_code == 401
    intruder = await JsonClient.connect(server.url)
    await intruder.send(type="hello", nick="eve", token="guess")  # the third
    assert (await intruder.expect("error"))["message"] == "Wrong token."
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
    assert (refused.value.response.status_code, refused.value.response.body) == (
        429, b"Too many wrong tokens from your address: wait 1 s before trying again.\n")
    bot = await JsonClient.connect(server.url)
    await bot.send(type="hello", nick="bot", token=TOKEN)
    error = await bot.expect("error")
    assert (error["code"], error["message"]) == (
        "rate_limited", "Too many wrong tokens from your address: wait 1 s before trying again.")
    assert any("refused: too many wrong tokens from this address" in record.getMessage()
               for record in caplog.records)
    await asyncio.sleep(1.1)
    await bot.send(type="hello", nick="bot", token=TOKEN)
    assert (await bot.expect("welcome"))["users"] == ["bot"]
    alice = await JsonClient.connect(server.url, "alice", token=TOKEN)
    assert alice.welcome["users"] == ["alice", "bot"]
    await asyncio.gather(alice.close(), bot.close())


@pytest.mark.parametrize("offered", [["not-tui-chat.v1"], ["tui-chat.v1x"], ["x", "tui-chat.v"]])
async def test_a_name_that_only_contains_the_subprotocol_does_not_pass_for_it(
        start_server, offered: list[str]) -> None:
    """Only the JSON dialect may present its token in hello; a subprotocol whose name merely
    contains `tui-chat.v1` gets the plain dialect, so without a token it is refused (401)."""
    server = await start_server(token=TOKEN)
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, subprotocols=offered)
    assert refused.value.response.status_code == 401
    assert server.history.backlog("lobby", None, None, 10).messages == ()


async def test_the_token_never_reaches_the_log(tmp_path) -> None:
    """Even at --log-level debug, neither a right nor a wrong token nor a password is logged."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat_server", "--port", "0", "--db", ":memory:", "--log-level",
        "debug", "--token-file", str(token_file), stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    line = ""
    while not (found := re.search(r"listening on (ws://\S+)", line)):
        line += (await asyncio.wait_for(process.stderr.readline(), 10)).decode()
    url = found.group(1)
    client = await JsonClient.connect(url, "alice", token=TOKEN, password="hunter2-secret")
    await client.say("hello")
    with pytest.raises(InvalidStatus):
        await connect(url, additional_headers={"Authorization": "Bearer guess-1234"})
    await client.close()
    process.terminate()
    logged = line + (await process.stderr.read()).decode()
    await process.wait()
    assert "refused: wrong token" in logged
    for secret in (TOKEN, "guess-1234", "hunter2-secret"):
        assert secret not in logged


async def test_our_client_sends_the_token_and_stops_on_a_wrong_one(start_server) -> None:
    """ChatClient joins with the token; with a wrong one it goes offline instead of retrying,
    saying the token is wrong."""
    server = await start_server(token=TOKEN)
    updates = Recorder()
    good = ChatClient(server.url + "/lobby", "alice", updates, token=TOKEN)
    bad = ChatClient(server.url + "/lobby", "eve", updates, token="wrong")
    task = asyncio.create_task(good.run())
    await asyncio.wait_for(bad.run(), 5)  # returns: refused for good
    assert bad.state is State.OFFLINE
    assert any(isinstance(update, StateChanged) and update.state is State.OFFLINE
               and update.reason == "the token is wrong (the server refused it)"
               for update in updates.updates), updates.updates
    await updates.until(lambda: good.state is State.ONLINE)
    await good.stop()
    await task


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def tls_files(tmp_path, authority: trustme.CA, name: str = "127.0.0.1",
              **validity: datetime.datetime) -> tuple[Path, Path, Path]:
    """A certificate for `name` only (`not_before`, `not_after`: when it is valid), its
    key, and the CA that signed it, as PEM files."""
    cert = authority.issue_cert(name, **validity)
    certfile, keyfile, cafile = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    authority.cert_pem.write_to_path(str(cafile))
    return certfile, keyfile, cafile


async def test_tls_serves_wss_and_the_client_verifies_it(
    start_server, tmp_path, certificate_authority
) -> None:
    """With --certfile/--keyfile the server speaks wss://; a client trusting the CA joins."""
    certfile, keyfile, cafile = tls_files(tmp_path, certificate_authority)
    server = await start_server(certfile=str(certfile), keyfile=str(keyfile))
    assert server.url.startswith("wss://")
    context = ssl.create_default_context(cafile=str(cafile))
    updates = Recorder()
    client = ChatClient(server.url + "/lobby", "alice", updates, ssl_context=context)
    task = asyncio.create_task(client.run())
    await updates.until(lambda: client.state is State.ONLINE)
    await client.stop()
    await task
    # the system's CAs do not know this certificate: refused
    with pytest.raises(ssl.SSLCertVerificationError):
        await connect(server.url, ssl=ssl.create_default_context())
    # hostname verification is on: the same server under another name is refused
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        await connect(server.url.replace("127.0.0.1", "localhost"), ssl=context)


async def test_tls_connections_count_against_the_limits_from_the_tcp_accept(
        start_server, tmp_path, certificate_authority) -> None:
    """With TLS, a connection counts against --max-per-ip before its TLS handshake: two that
    never start one take the address's places, so a third gets HTTP 429 (over TLS); once
    they go, a client gets in."""
    certfile, keyfile, cafile = tls_files(tmp_path, certificate_authority)
    server = await start_server(certfile=str(certfile), keyfile=str(keyfile), max_per_ip=2)
    context = ssl.create_default_context(cafile=str(cafile))
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
    await eventually(lambda: server.counter.count == 2)
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, ssl=context)
    assert refused.value.response.status_code == 429
    for _, writer in silent:
        writer.close()
    await eventually(lambda: server.counter.count == 0)
    async with connect(server.url, ssl=context) as plain:
        assert (await plain.recv()).startswith(PROMPT)
        await plain.send("alice")
        assert (await plain.recv()).startswith("[Server]: Welcome")


def client_hello() -> bytes:
    """The first flight of a TLS client: its ClientHello."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    with contextlib.suppress(ssl.SSLWantReadError):
        context.wrap_bio(incoming, outgoing).do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("ending", ["close", "reset", "timeout"])
async def test_a_tls_handshake_cut_off_gives_its_place_back(
        start_server, tmp_path, certificate_authority, ending: str) -> None:
    """A connection that sent its ClientHello and then closed, reset or fell silent past
    --handshake-timeout gives back its place under --max-per-ip: afterwards as many clients
    as the limit allows get in (TLS does not tell its protocol of a connection lost in its
    handshake, so the server must see to it)."""
    certfile, keyfile, cafile = tls_files(tmp_path, certificate_authority)
    server = await start_server(certfile=str(certfile), keyfile=str(keyfile), max_per_ip=2,
                                handshake_timeout=1)
    for _ in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(client_hello())
        await reader.read(1)  # the server's answer has begun
        if ending == "close":
            writer.close()
        elif ending == "reset":
            writer.transport.abort()
    await eventually(lambda: server.counter.count == 0, timeout=5)
    context = ssl.create_default_context(cafile=str(cafile))
    async with connect(server.url, ssl=context), connect(server.url, ssl=context) as second:
        assert (await second.recv()).startswith(PROMPT)


async def test_wss_without_a_cafile_trusts_what_the_system_trusts(
        start_server, tmp_path, certificate_authority, run_client, monkeypatch) -> None:
    """Without --cafile a wss:// URL is checked against the system's trusted certificates
    (a public CA's certificate just works): one the system does not trust is reported in
    one line, and once it does (here: SSL_CERT_FILE), the client joins."""
    certfile, keyfile, cafile = tls_files(tmp_path, certificate_authority)
    server = await start_server(certfile=str(certfile), keyfile=str(keyfile))
    client, seen = run_client(server.url + "/lobby", "alice")
    await seen.until(lambda: any(
        "the server's certificate is not trusted (unable to get local issuer certificate);"
        " if a certificate authority of your own signed it, give its certificate with"
        " --cafile PEM" == u.reason for u in seen.of(StateChanged)))
    assert client.state is State.RECONNECTING
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
    trusting, seen = run_client(server.url + "/lobby", "bob")
    await seen.until(lambda: trusting.state is State.ONLINE)


async def test_a_wrong_scheme_or_name_is_explained_with_what_to_try(
        start_server, tmp_path, certificate_authority, run_client) -> None:
    """ws:// to a TLS server says to try wss://, wss:// to a plain server says to try ws://,
    a certificate for another name or address says so, an expired one says to check the
    clock, and a web server that is not a WebSocket server is called that; the client keeps
    trying meanwhile."""
    certfile, keyfile, cafile = tls_files(tmp_path, certificate_authority)
    tls = await start_server(certfile=str(certfile), keyfile=str(keyfile))
    now = datetime.datetime.now(datetime.timezone.utc)
    (tmp_path / "old").mkdir()
    old_files = tls_files(tmp_path / "old", certificate_authority,
                          not_before=now - datetime.timedelta(days=30),
                          not_after=now - datetime.timedelta(days=1))
    expired = await start_server(certfile=str(old_files[0]), keyfile=str(old_files[1]))
    (tmp_path / "named").mkdir()
    named_files = tls_files(tmp_path / "named", certificate_authority, name="localhost")
    named = await start_server(certfile=str(named_files[0]), keyfile=str(named_files[1]))
    plain = await start_server()
    context = ssl.create_default_context(cafile=str(cafile))

    async def http_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # a web server that answers anything in plain HTTP
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    async def http_1_0(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)  # python -m http.server
        writer.write(b"HTTP/1.0 404 File not found\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    web = await asyncio.start_server(http_only, "127.0.0.1", 0)
    web_port = web.sockets[0].getsockname()[1]
    old_web = await asyncio.start_server(http_1_0, "127.0.0.1", 0)
    old_web_port = old_web.sockets[0].getsockname()[1]
    cases = [
        (tls.url.replace("wss://", "ws://"), {}, r"; if the server uses TLS, try wss://$"),
        (plain.url.replace("ws://", "wss://"), {}, r"; if the server does not use TLS, try ws://$"),
        (f"wss://127.0.0.1:{web_port}", {},  # OpenSSL's words differ between versions
         r"^the TLS handshake failed \(.+\); if the server does not use TLS, try ws://$"),
        (expired.url, {"ssl_context": context}, re.escape(
            "the server's certificate is out of date (certificate has expired); if it should"
            " be valid, check this computer's clock")),
        (tls.url.replace("127.0.0.1", "localhost"), {"ssl_context": context},
         re.escape("the server's certificate is for another name (Hostname mismatch, certificate"
                   " is not valid for 'localhost'); connect by a name it was issued for")),
        (named.url, {"ssl_context": context},
         re.escape("the server's certificate is for another name (IP address mismatch,"
                   " certificate is not valid for '127.0.0.1'); connect by a name it was"
                   " issued for")),
        (f"ws://127.0.0.1:{old_web_port}", {}, re.escape(
            "the server answered in HTTP, not WebSocket (unsupported protocol; expected"
            " HTTP/1.1: HTTP/1.0 404 File not found); check that this is the address of a"
            " tui-chat server")),
    ]
    for url, options, hint in cases:
        client, seen = run_client(url + "/lobby", "alice", **options)
        await seen.until(lambda seen=seen, hint=hint: any(
            re.search(hint, u.reason) for u in seen.of(StateChanged)))
        assert client.state is State.RECONNECTING
    web.close()
    old_web.close()


async def test_only_allowed_browser_origins_get_in(start_server, caplog) -> None:
    """With --allow-origin, a foreign Origin gets HTTP 403; no Origin (non-browsers) is fine."""
    server = await start_server(allow_origins=("https://chat.example.org",))
    async with connect(server.url, origin="https://chat.example.org") as allowed:
        assert (await allowed.recv()).startswith(PROMPT)
        await allowed.send("alice")
        assert (await allowed.recv()).startswith("[Server]: Welcome")
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.url, origin="https://evil.example.com")
    assert refused.value.response.status_code == 403
    async with connect(server.url) as tool:
        assert (await tool.recv()).startswith(PROMPT)
        await tool.send("bob")
        assert (await tool.recv()).startswith("[Server]: Welcome")
    assert any("origin 'https://evil.example.com' is not allowed" in r.getMessage()
               for r in caplog.records)


async def handshake_status(server, *headers: str) -> int:
    """The HTTP status a raw WebSocket handshake with these extra header lines gets."""
    reader, writer = await raw_handshake(server.port, b"/lobby", *headers,
                                         host=f"127.0.0.1:{server.port}")
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    return int(status.split()[1]) if status else 0


async def test_a_header_sent_twice_that_may_be_sent_once_is_a_bad_request(
        start_server, caplog) -> None:
    """Two Origin or two Authorization headers get HTTP 400 (not a traceback and a dropped
    connection); Connection, which may come as several headers, still upgrades."""
    server = await start_server(token=TOKEN)
    bearer = f"Authorization: Bearer {TOKEN}"
    assert await handshake_status(server, "Connection: Upgrade", "Origin: a", "Origin: b",
                                  bearer) == 400
    assert await handshake_status(server, "Connection: Upgrade", bearer, bearer) == 400
    assert await handshake_status(server, "Connection: keep-alive", "Connection: Upgrade",
                                  bearer) == 101
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("more than one Origin header" in r.getMessage() for r in caplog.records)
