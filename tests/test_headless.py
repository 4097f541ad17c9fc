"""`tui-chat send` and `tui-chat tail` as real processes against a real server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import pytest

from tests.helpers import JsonClient, tui_chat
from tui_chat.headless import Watch
from tui_chat.protocol import Message, Welcome
from tui_chat.updates import Joined

TIMEOUT = 20


async def test_send_stores_the_message_once_and_exits_0(chat_server, join) -> None:
    """`send URL TEXT` joins, sends the words as one message, and exits once it is stored."""
    reader = await join("reader")
    status, out, err = await tui_chat("send", f"{chat_server.url}/lobby", "deploy", "finished",
                                      "--nick", "ci")
    assert (status, out, err) == (0, "", "")
    texts = [e["text"] for e in [await reader.recv() for _ in range(3)]
             if e["type"] == "message"]
    assert texts == ["deploy finished"]
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [(m.nick, m.text) for m in history] == [("ci", "deploy finished")]


async def test_send_joins_quietly_so_the_room_sees_only_its_message(chat_server, join_plain
                                                                     ) -> None:
    """A raw client in the room sees `send`'s message and no line saying it joined or left."""
    reader = await join_plain("reader")
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "deployed", "--nick", "ci")
    assert (status, err) == (0, "")
    assert await reader.recv() == "[ci]: deployed"
    assert await reader.silent()


async def test_send_reads_lines_from_stdin_in_order_and_skips_blank_ones(chat_server) -> None:
    """Without TEXT each line of standard input is a message; --me makes them actions."""
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "--nick", "ci", "--me",
                                    stdin="one\n\ntwo\r\nthree\n")
    assert (status, err) == (0, "")
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [(m.text, m.kind) for m in history] == [
        ("one", "action"), ("two", "action"), ("three", "action")]


async def test_send_skips_lines_with_nothing_to_show(chat_server) -> None:
    """A line of escape codes or invisible characters only is skipped like a blank one,
    not refused by the server (which would make the whole send fail)."""
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "--nick", "ci",
                                    stdin="\u200b\n\x1b[31m\nreal\n\u3164\n")
    assert (status, err) == (0, "")
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [m.text for m in history] == ["real"]


async def test_send_with_nothing_to_send_does_not_join_the_room(chat_server, join) -> None:
    """Input of blank lines only exits 0 without connecting: the room sees no join and leave."""
    watcher = await join("watcher")
    status, out, err = await tui_chat("send", f"{chat_server.url}/lobby", "--nick", "ci",
                                      stdin="\n  \n")
    assert (status, out, err) == (0, "", "")
    assert await watcher.silent(0.5)
    assert chat_server.history.backlog("lobby", None, None, 10).messages == ()


async def test_send_reports_what_was_refused_and_exits_1(start_server) -> None:
    """A message over the limit is named on stderr; the others are still stored."""
    server = await start_server(max_text=10)
    status, _, err = await tui_chat("send", f"{server.url}/lobby", "--nick", "ci",
                                    stdin="short\nthis one is far too long\nshort too\n")
    assert status == 1
    assert "not sent ('this one is far too long'): Too long: 24 characters" in err
    history = server.history.backlog("lobby", None, None, 10).messages
    assert [m.text for m in history] == ["short", "short too"]


async def test_send_waits_as_long_as_acknowledgements_keep_coming(start_server) -> None:
    """--timeout counts from the last acknowledgement: a long input that the server paces
    takes longer than the timeout in all, and is still sent whole, exit 0."""
    server = await start_server(rate=4, burst=2)
    lines = "".join(f"line {number}\n" for number in range(12))  # 2.75 s at 4 a second
    status, _, err = await tui_chat("send", f"{server.url}/lobby", "--nick", "ci",
                                    "--timeout", "2", stdin=lines)
    assert (status, err) == (0, "")
    history = server.history.backlog("lobby", None, None, 50).messages
    assert [m.text for m in history] == [f"line {number}" for number in range(12)]


async def test_send_under_a_taken_nickname_says_to_choose_another(chat_server, join) -> None:
    """The nickname is refused: exit 1, and how to pick another."""
    await join("ci")
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "hi", "--nick", "ci")
    assert status == 1 and "is taken" in err and "--nick NAME" in err


async def test_send_gives_up_after_the_timeout_and_says_why(unused_port) -> None:
    """With no server, send waits --timeout after its input, then exits 1 with the reason;
    having never connected, it knows that nothing was sent."""
    status, _, err = await tui_chat("send", f"127.0.0.1:{unused_port}/lobby", "hi", "--nick",
                                    "ci", "--timeout", "1")
    assert status == 1
    assert "nothing was sent: could not connect in 1 s. Last attempt: connection refused" in err


async def test_tail_says_why_it_cannot_connect_once(unused_port) -> None:
    """tail keeps trying, and says on stderr why it cannot connect, once per reason."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", f"127.0.0.1:{unused_port}/lobby",
        stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
    assert line == b"tui-chat tail: cannot connect: connection refused; trying again\n"
    await asyncio.sleep(2.5)  # more attempts, the same reason: nothing more is said
    process.send_signal(signal.SIGTERM)
    rest = await asyncio.wait_for(process.stderr.read(), TIMEOUT)
    assert await process.wait() == 0 and rest == b""


async def test_scripts_do_not_take_your_nickname_by_default(chat_server, join) -> None:
    """Without --nick, send joins as your login name with -send, so it works while you chat
    under your login name."""
    from tui_chat.cli import default_nick

    await join(default_nick())
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "from a script")
    assert (status, err) == (0, "")
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [m.nick for m in history] == [f"{default_nick()}-send"[:24]]


async def test_tail_prints_history_then_live_messages_until_stopped(chat_server) -> None:
    """tail prints the recent history, then each new message, one line each (--json: one
    event each); --new leaves the history out; SIGTERM ends it with status 0."""
    writer = await JsonClient.connect(f"{chat_server.url}/lobby", "writer")
    await writer.say("before")
    url = f"{chat_server.url}/lobby"
    plain = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", url, "--nick", "watcher",
        stdout=asyncio.subprocess.PIPE)
    as_json = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", url, "--nick", "watcher2", "--json", "--new",
        stdout=asyncio.subprocess.PIPE)
    assert plain.stdout is not None and as_json.stdout is not None
    assert await asyncio.wait_for(plain.stdout.readline(), TIMEOUT) == b"[writer]: before\n"
    for _ in range(2):  # both have joined once their presence arrives
        assert (await writer.expect("presence"))["event"] == "join"
    await writer.say("line one\nline two")
    assert await asyncio.wait_for(plain.stdout.readline(), TIMEOUT) == b"[writer]: line one\n"
    assert await asyncio.wait_for(plain.stdout.readline(), TIMEOUT) == b"  line two\n"
    event = json.loads(await asyncio.wait_for(as_json.stdout.readline(), TIMEOUT))
    assert (event["type"], event["nick"], event["text"]) == ("message", "writer",
                                                             "line one\nline two")
    for process in (plain, as_json):
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    await writer.close()


@pytest.mark.parametrize("locale", [
    {"LC_ALL": "C", "LANG": "C"},
    {"PYTHONIOENCODING": "utf-8:strict"},  # what Python does in en_US.UTF-8 and the like
], ids=["C locale", "UTF-8 locale"])
async def test_send_with_an_undecodable_byte_in_its_input_still_sends_every_line(
        chat_server, locale) -> None:
    """`printf 'caf\\xe9\\nnext\\n' | tui-chat send`: the undecodable byte is sent as U+FFFD
    and the next line after it; no traceback, whatever the locale."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "send", f"{chat_server.url}/lobby", "--nick", "ci",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **locale})
    _, err = await asyncio.wait_for(process.communicate(b"caf\xe9\nnext\n"), TIMEOUT)
    assert (process.returncode, err) == (0, b"")
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [m.text for m in history] == ["caf\ufffd", "next"]


async def test_tail_new_prints_no_history_even_when_the_catch_up_is_long(
        start_server) -> None:
    """`tail --new` prints only what is said from now on, also when the recent history is too
    long for one welcome and the rest of it follows as ordinary messages."""
    server = await start_server(backlog=300)
    url = server.url + "/lobby"
    writer = await JsonClient.connect(url, "writer")
    for number in range(300):
        await writer.say(f"old {number} " + "x" * 1000)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", url, "--nick", "watcher", "--new",
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    assert (await writer.expect("presence"))["event"] == "join"
    await writer.say("new")
    assert await asyncio.wait_for(process.stdout.readline(), TIMEOUT) == b"[writer]: new\n"
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    await writer.close()


async def test_options_may_follow_the_text_and_a_taken_default_name_gets_a_number(
        chat_server, join) -> None:
    """`send URL --nick ci TEXT` reads TEXT after the options; without --nick, a default
    name another script holds gets 2 added (then 3, ...), rather than failing."""
    from tui_chat.cli import default_nick

    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "--nick", "ci",
                                    "after", "the", "options")
    assert (status, err) == (0, "")
    base = f"{default_nick()}-send"[:24]
    await join(base)
    status, _, err = await tui_chat("send", f"{chat_server.url}/lobby", "numbered")
    assert (status, err) == (0, "")
    history = chat_server.history.backlog("lobby", None, None, 10).messages
    assert [(m.nick, m.text) for m in history] == [
        ("ci", "after the options"), (base[:23] + "2", "numbered")]


@pytest.mark.parametrize("said_after", [["two", "three"], []], ids=["more said", "quiet room"])
async def test_tail_ends_quietly_when_what_reads_it_goes_away(chat_server,
                                                              said_after: list[str]) -> None:
    """`tui-chat tail | head -1`: once head has gone, tail ends with status 0 and nothing on
    stderr, whether more is said (it used to report a broken pipe and reconnect forever) or
    the room stays quiet (it used to wait for a next message that may never come)."""
    url = f"{chat_server.url}/lobby"
    writer = await JsonClient.connect(url, "writer")
    read, write = os.pipe()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", url, "--nick", "watcher", "--new",
        stdout=write, stderr=asyncio.subprocess.PIPE)
    os.close(write)
    assert (await writer.expect("presence"))["event"] == "join"
    await writer.say("one")
    with os.fdopen(read, "rb") as head:
        assert head.readline() == b"[writer]: one\n"
    for text in said_after:  # written to a pipe nobody reads
        await writer.say(text)
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    assert process.stderr is not None and await process.stderr.read() == b""
    await writer.close()


async def test_tail_says_when_a_connection_it_had_drops_and_when_it_is_back(start_server
                                                                            ) -> None:
    """A connection tail had, lost, is reported as such (not as 'cannot connect'), and so
    is its return."""
    server = await start_server()
    url = f"{server.url}/lobby"
    watcher = await JsonClient.connect(url, "watcher")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", url, "--nick", "t", "--new",
        stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    try:
        assert (await watcher.expect("presence"))["event"] == "join"
        port = server.port
        await server.stop()
        line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        assert line == b"tui-chat tail: disconnected (the server went away); reconnecting\n"
        await start_server(port=port)
        line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        while line.startswith(b"tui-chat tail: cannot connect"):  # (if it tried meanwhile)
            line = await asyncio.wait_for(process.stderr.readline(), TIMEOUT)
        assert line == b"tui-chat tail: reconnected\n"
    finally:
        process.kill()
        await process.wait()


async def test_tail_new_prints_nothing_old_from_a_server_that_lost_its_history(
        start_server, tmp_path) -> None:
    """When the server comes back with another history (a gap), `tail --new` says earlier
    messages are not available and prints none of the recent history it is sent from before
    tail started: only what is said from then on."""
    other_db = str(tmp_path / "other.db")
    older = await start_server(db=other_db)
    writer = await JsonClient.connect(f"{older.url}/lobby", "writer")
    await writer.say("said before tail started")
    await writer.close()
    await older.stop()
    first = await start_server()
    port = first.port
    watcher = await JsonClient.connect(f"{first.url}/lobby", "watcher")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tui_chat", "tail", f"{first.url}/lobby", "--nick", "t", "--new",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    try:
        assert (await watcher.expect("presence"))["event"] == "join"
        await first.stop()
        second = await start_server(db=other_db, port=port)
        said = [await asyncio.wait_for(process.stderr.readline(), TIMEOUT) for _ in range(3)]
        while said[1].startswith(b"tui-chat tail: cannot connect"):  # (if it tried meanwhile)
            said[1:] = [*said[2:], await asyncio.wait_for(process.stderr.readline(), TIMEOUT)]
        assert said[1:] == [b"tui-chat tail: reconnected\n",
                            b"tui-chat tail: earlier messages are not available\n"], said
        writer = await JsonClient.connect(f"{second.url}/lobby", "writer")
        await writer.say("said after")
        line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        assert line == b"[writer]: said after\n"
    finally:
        process.kill()
        await process.wait()


def test_a_gap_lets_through_only_history_newer_than_the_command() -> None:
    """Without the backlog, history from a server that lost what we knew is printed only if
    it is stamped after the command started; a rejoin without a gap prints all it missed."""
    printed: list[str] = []
    watch = Watch(lambda message: printed.append(message.text), backlog=False)
    old, new = watch.started_ms - 60_000, watch.started_ms + 1
    history = (Message(1, old, "a", "old"), Message(2, new, "a", "new"))
    welcome = Welcome("t", "lobby", ("t",), "epoch", history)
    watch(Joined(welcome, gap=False, rejoined=False))
    assert printed == []
    watch(Joined(welcome, gap=True, rejoined=True))
    assert printed == ["new"]
    watch(Joined(welcome, gap=False, rejoined=True))
    assert printed == ["new", "old", "new"]
