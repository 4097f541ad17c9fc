"""Bad input gets a clear answer and breaks nothing for anyone else."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.helpers import PROMPT, TIMEOUT, JsonClient, PlainClient, eventually, raw_handshake
from tui_chat.protocol import SUBPROTOCOL


async def test_oversized_frame_closes_that_connection_with_1009(join, start_server) -> None:
    """A frame over --max-frame closes only its own connection, with 1009."""
    server = await start_server(max_frame=1024)
    url = server.url + "/lobby"
    alice = await JsonClient.connect(url, "alice")
    bob = await JsonClient.connect(url, "bob")
    await alice.expect("presence")
    await bob.connection.send("x" * 2048)
    with pytest.raises(ConnectionClosedError):
        await bob.recv()
    assert bob.connection.close_code == 1009
    assert (await alice.expect("presence"))["event"] == "leave"
    assert (await alice.say("still fine"))["text"] == "still fine"
    await alice.close()


async def test_invalid_utf8_closes_that_connection_with_1007(join) -> None:
    """A text frame that is not UTF-8 closes with 1007; the others keep chatting."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    await bob.connection.send(b"\xff\xfe broken", text=True)
    with pytest.raises(ConnectionClosedError):
        await bob.recv()
    assert bob.connection.close_code == 1007
    await alice.expect("presence")
    assert (await alice.say("fine"))["text"] == "fine"


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json at all", "bad_json"), ('{"type":"shout"}', "unknown_type"),
     ('{"type":"say","text":1}', "bad_event"), (b"\x01\x02", "binary_frame")],
)
async def test_malformed_json_frames_get_an_error_and_the_connection_stays(join, frame, code) -> None:
    """Non-JSON, unknown types, wrong field types and binary frames are answered with `error`."""
    alice = await join("alice")
    await alice.connection.send(frame)
    error = await alice.expect("error")
    assert error["code"] == code and error["message"]
    assert (await alice.say("still connected"))["text"] == "still connected"


async def test_too_long_text_is_refused_to_the_sender_and_never_broadcast(join) -> None:
    """Text over the limit gets too_long with its cid; nobody else receives anything."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    await alice.send(type="say", text="y" * 4001, cid="long")
    error = await alice.expect("error")
    assert (error["code"], error["cid"]) == ("too_long", "long")
    assert "4000" in error["message"]
    assert await bob.silent()
    await alice.send(type="say", text="y" * 4000, cid="max")
    assert len((await bob.expect("message"))["text"]) == 4000


async def test_message_limit_is_configurable(start_server) -> None:
    """--max-text changes the limit and the welcome announces it."""
    server = await start_server(max_text=10)
    alice = await JsonClient.connect(server.url, "alice")
    assert alice.welcome["max_text"] == 10
    await alice.send(type="say", text="12345678901", cid="c")
    assert (await alice.expect("error"))["code"] == "too_long"
    await alice.close()


async def test_a_message_limit_of_0_is_no_limit(start_server) -> None:
    """--max-text 0 turns the limit off, as for every limit: only the frame size bounds text."""
    server = await start_server(max_text=0)
    alice = await JsonClient.connect(server.url, "alice")
    assert alice.welcome["max_text"] == 0
    assert len((await alice.say("z" * 20_000))["text"]) == 20_000
    await alice.close()


@pytest.mark.parametrize("blank", ["", "   ", "\n\t", "\x1b[31m\x07", "\u200b", " \u3164\u2800 ",
                                   "\u200d\ufe0f\u2060"])
async def test_blank_messages_are_refused_not_broadcast(join, blank: str) -> None:
    """Blank text (also once control codes are removed, and text of invisible characters
    only: zero-width ones, Hangul fillers, the blank braille pattern) gets `empty` and
    reaches nobody."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    await alice.send(type="say", text=blank, cid="b")
    assert (await alice.expect("error"))["code"] == "empty"
    assert await bob.silent()


async def test_control_and_escape_codes_are_removed_before_anyone_sees_them(join, join_plain) -> None:
    """ESC/CSI/OSC sequences, C0/C1 controls and bidi overrides never reach other clients."""
    alice = await join("alice")
    plain = await join_plain("pat")
    await alice.expect("presence")
    hostile = "a\x1b[2J\x1b]0;pwned\x07b\x07c\x9b1md\u202ee\x00f\r\ng [bold]h[/bold]"
    ack = await alice.say(hostile)
    assert ack["text"] == "abcde" + "f\ng [bold]h[/bold]"
    assert await plain.recv() == "[alice]: abcdef\n  g [bold]h[/bold]"


async def test_a_lone_surrogate_is_replaced_and_the_message_stored(join, join_plain) -> None:
    """JSON can spell half a surrogate pair, which UTF-8 (the wire, the database) cannot
    carry: it becomes U+FFFD, and the message is stored and delivered like any other."""
    alice = await join("alice")
    plain = await join_plain("pat")
    await alice.expect("presence")
    await alice.connection.send('{"type":"say","text":"x\\ud800y","cid":"s1"}')
    ack = await alice.expect("message")
    assert (ack["text"], ack["cid"]) == ("x\ufffdy", "s1")
    assert await plain.recv() == "[alice]: x\ufffdy"


@pytest.mark.parametrize("path", ["/Lobby!", "/no%20spaces", "/a/b", "/" + "r" * 33])
async def test_an_invalid_room_gets_a_clear_error_and_a_close(chat_server, path: str) -> None:
    """Both dialects are told what a valid room name is, then closed with 1008."""
    json_client = await JsonClient.connect(chat_server.url + path)
    error = await json_client.expect("error")
    assert error["code"] == "bad_room" and "letters a-z" in error["message"]
    plain = await PlainClient.connect(chat_server.url + path, prompted=False)
    assert (await plain.recv()).startswith("[Server]: Invalid room name")
    for client in (json_client, plain):
        await client.connection.wait_closed()
        assert client.connection.close_code == 1008


async def test_a_request_that_is_not_http_gets_an_answer_that_says_so(chat_server) -> None:
    """A raw UTF-8 path (a hand-written client's /café) is not HTTP: the answer is a 400 that
    says to percent-encode it, not a connection closed without a word."""
    reader, writer = await raw_handshake(chat_server.port, "/café".encode())
    answer = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith("percent-encode anything else (/caf%C3%A9, not /café).\n".encode())


async def test_a_client_that_vanishes_is_cleaned_up(join, chat_server) -> None:
    """A connection dropped without a close frame leaves the room; others are told."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.expect("presence")
    bob.connection.transport.abort()
    assert (await alice.expect("presence"))["event"] == "leave"
    assert chat_server.hub.rooms.get("lobby").users() == ("alice",)


async def test_many_clients_vanishing_mid_broadcast_do_not_disturb_the_rest(join, chat_server) -> None:
    """Clients aborting while messages fan out are removed; the survivor gets every message."""
    alice = await join("alice")
    doomed = [await join(f"d{n}") for n in range(20)]
    for _ in doomed:
        await alice.expect("presence")
    for number, client in enumerate(doomed):
        await alice.send(type="say", text=f"m{number}", cid=f"c{number}")
        client.connection.transport.abort()
    texts = []
    while len(texts) < 20:
        event = await alice.recv()
        if event["type"] == "message":
            texts.append(event["text"])
    assert texts == [f"m{n}" for n in range(20)]
    await asyncio.sleep(0.2)
    assert chat_server.hub.rooms.get("lobby").users() == ("alice",)


async def test_healthz_answers_200_over_plain_http(chat_server) -> None:
    """GET /healthz on the WebSocket port is a 200 for load balancers."""
    def get() -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", chat_server.port, timeout=5)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status, response.read()

    assert await asyncio.to_thread(get) == (200, b"ok\n")


async def test_an_unknown_subprotocol_falls_back_to_plain_text(chat_server) -> None:
    """A client offering only other subprotocols still gets in, speaking plain text."""
    async with connect(chat_server.url + "/lobby", subprotocols=["chat"]) as connection:
        assert connection.subprotocol is None
        assert (await connection.recv()).startswith(PROMPT)
        await connection.send("alice")
        assert (await connection.recv()).startswith("[Server]: Welcome")


async def test_the_json_subprotocol_is_chosen_when_offered_among_others(chat_server) -> None:
    """Offering several subprotocols including tui-chat.v1 selects it."""
    async with connect(chat_server.url, subprotocols=["chat", SUBPROTOCOL]) as connection:
        assert connection.subprotocol == SUBPROTOCOL
        await connection.send(json.dumps({"type": "hello", "nick": "x"}))
        assert json.loads(await connection.recv())["type"] == "welcome"


async def test_integers_past_what_json_keeps_exact_are_refused(join, chat_server) -> None:
    """A `since` past 2**53 - 1 is refused with `bad_event`, leaves no room behind, and the
    client can still join."""
    client = await join(None)
    await client.send(type="hello", nick="bob", since=2**63, epoch=chat_server.history.epoch)
    error = await client.expect("error")
    assert error["code"] == "bad_event" and "9007199254740991" in error["message"]
    assert chat_server.hub.rooms.find("lobby") is None
    await client.send(type="hello", nick="bob")
    assert (await client.expect("welcome"))["nick"] == "bob"


@pytest.mark.parametrize("cid", [
    "m\x07", "\x1b[2Jm", "m\u202e", "m\tn", "m\nn", "\x7fm", "\x85m",  # controls
    "\u200bm", "\ufeffm", "\u00adm", "\u200em",  # formatting: zero-width, BOM, soft hyphen
    "m\u2028", "\ud800m",  # a line separator; half of a surrogate pair, which UTF-8 cannot hold
    "", "c" * 65,  # too short, too long
])
async def test_a_cid_with_control_characters_is_refused_not_cleaned(join, cid: str) -> None:
    """Such a cid (or one of a wrong length) gets `bad_event` with the cid exactly as sent; it
    never becomes another cid, so a later message that really uses that other cid is stored
    and acknowledged as new, and the connection stays."""
    alice = await join("alice")
    await alice.send(type="say", text="first", cid=cid)
    error = await alice.expect("error")
    assert (error["code"], error["cid"]) == ("bad_event", cid)  # as sent: it names the message
    ack = await alice.say("second", cid="m")
    assert (ack["text"], ack["cid"]) == ("second", "m")


@pytest.mark.parametrize("cid", ["a b", "m\u00a0n", "日本語", "🙂", "\ue000"])
async def test_a_cid_of_printable_characters_is_kept_as_sent(join, cid: str) -> None:
    """Spaces, letters of any script, emoji and private-use characters are fine in a cid."""
    alice = await join("alice")
    ack = await alice.say("hello", cid=cid)
    assert ack["cid"] == cid


async def test_invalid_frames_count_against_the_rate_limit(start_server) -> None:
    """A flood of frames that are not valid events is paced like any other flood: past the
    burst, they are answered at the rate, not as fast as they come."""
    server = await start_server(rate=20, burst=5)
    client = await JsonClient.connect(server.url, "alice")
    started = asyncio.get_running_loop().time()
    for _ in range(15):
        await client.connection.send("not json")
    codes = [(await client.expect("error"))["code"] for _ in range(15)]
    assert codes == ["bad_json"] * 15
    assert asyncio.get_running_loop().time() - started > 0.4, "10 past the burst at 20/s"
    await client.close()


async def test_a_bug_while_handling_a_frame_closes_with_1011_and_leaves_no_room(
        start_server, monkeypatch) -> None:
    """An unexpected failure is logged and that connection closed with 1011 (internal error),
    instead of leaving the client waiting; the room it was joining is not left behind."""
    server = await start_server()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.hub.history, "backlog", broken)
    client = await JsonClient.connect(server.url)
    await client.send(type="hello", nick="alice")
    with pytest.raises(ConnectionClosedError):
        await client.recv()
    assert client.connection.close_code == 1011
    assert server.hub.rooms.find("lobby") is None


def test_a_refused_value_is_named_with_its_escape_codes_visible_not_obeyed() -> None:
    """A nickname holding an escape code is quoted with the code written out (`\\x1b`), so
    the name in the message is the one refused, not a cleaned one that looks valid; the
    message itself holds nothing a terminal would obey."""
    from tui_chat.nicknames import check_nick
    from tui_chat.protocol import ProtocolError

    with pytest.raises(ProtocolError) as refused:
        check_nick("a\x1b[31mb")
    message = refused.value.message
    assert message.startswith("Nickname 'a\\x1b[31mb' has a character that is not allowed")
    assert message.isprintable()


async def test_escape_codes_in_a_request_path_never_reach_the_log(start_server, caplog) -> None:
    """A path holding an escape sequence (here OSC 52, which sets the clipboard of whoever
    reads the log in a terminal) is logged quoted, with its codes written out, also after
    a hundred characters (what is cut is the end, past 200)."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    server = await start_server()
    for path, shown in ((b"/\x1b]52;c;aGk=\x07", "'/\\x1b]52;c;aGk=\\x07'"),
                        (b"/" + b"a" * 100 + b"\x1b[2J", "'/" + "a" * 100 + "\\x1b[2J'")):
        reader, writer = await raw_handshake(server.port, path)
        await reader.readuntil(b"\r\n\r\n")
        await eventually(lambda: f"connected to {shown} (plain)" in caplog.text)
        writer.close()
    assert "\x1b" not in caplog.text and "\x07" not in caplog.text


async def test_escape_codes_in_a_close_reason_never_reach_the_log(start_server, caplog) -> None:
    """A client's close frame gives its own reason, which the server logs with the
    disconnect: escape codes in it are written out in quotes, not passed to the terminal."""
    caplog.set_level(logging.INFO, logger="tui_chat.server")
    server = await start_server()
    raw = await PlainClient.connect(server.url, "rex")
    await raw.connection.close(1000, "bye\x1b]52;c;aGk=\x07\x1b[2J")
    await eventually(lambda: "disconnected" in caplog.text)
    assert "disconnected: code 1000 ('bye\\x1b]52;c;aGk=\\x07\\x1b[2J')" in caplog.text
    assert "\x1b" not in caplog.text and "\x07" not in caplog.text
