"""Lines that name you: they stand out, ring the bell once, and are counted while you read
further up."""

from __future__ import annotations

import pytest
from rich.style import Style

from tests.apptools import SIZE, drawn_on, fill_backlog, log_text, make_app, online, type_line, until
from tui_chat.app import ChatApp, NetworkUpdates
from tui_chat.mentions import mentions
from tui_chat.protocol import Message, now_ms
from tui_chat.render import MENTION_STYLE
from tui_chat.updates import Received
from tui_chat.chat_log import ChatLog

MENTION = Style.parse(MENTION_STYLE)
TS = 1_763_717_400_000


@pytest.mark.parametrize(("me", "text", "named"), [
    ("alice", "hi alice", True), ("alice", "@alice: look", True), ("alice", "Alice.", True),
    ("alice", "ALICE!", True), ("alice", "(alice)", True), ("alice", "...alice?", True),
    ("alice", "alice's turn", True), ("alice", "malice", False), ("alice", "alice_2", False),
    ("alice", "alice.b", False), ("alice", "alice-x", False), ("alice", "x.alice", False),
    ("alice", "nobody here", False), ("alice", "alicealice", False),
    # compared as nicknames are: any case or width, composed or not
    ("Straße", "STRASSE, hi", True), ("ａｌｉｃｅ", "hi alice", True),
    ("alice", "hi ａｌｉｃｅ", True), ("José", "hola Jose\u0301", True),
    ("alice", "alice\u0301 hi", False), ("iz", "ız hi iz_", False),
    # a combining mark goes on with the name: राम is not named inside रामा
    ("राम", "नमस्ते राम", True), ("राम", "रामा", False),
    # a one- or two-letter name is too common a word: only @a, or a: first
    ("a", "I have a question", False), ("I", "I think so", False), ("a", "@a look", True),
    ("a", "a: look", True), ("ab", "ab, hi", True), ("ab", "hey ab", False),
    # in a URL the name is part of an address, not of the sentence
    ("alice", "see https://example.org/alice", False), ("alice", "http://x.io/?u=alice ok", False),
    ("alice", "alice: https://example.org/alice", True), ("alice", "alice/bob: review?", True),
    # in an e-mail address too; the sign before or after a name is not
    ("alice", "mail alice@example.org", False), ("alice", "ask alice@ once", True),
    ("alice", "cc bob@alice.org", False),
    # writing without spaces: any letter of such a script may touch the name
    ("alice", "aliceさん、こんにちは", True), ("田中", "こんにちは田中さん", True),
    ("太郎", "太郎くん、元気?", True), ("철수", "철수가 왔어요", True), ("สมชาย", "สวัสดีสมชายครับ", True),
    ("王", "王先生好", False), ("王", "@王 你好", True), ("田中", "田中a", False),
    ("王", "王、你好", True), ("田中", "田中さん、これ見てhttps://example.com/x", True),
    ("alice", "[alice](https://example.org)", True), ("alice", "https://x.org\talice", True),
    # Hangul is spaced: particles and laughter may follow a name, nothing may come before
    ("철수", "철수ㅋㅋㅋ", True), ("민수", "국민수준이", False),
    # a Thai or Lao letter is a sound, not a syllable: a two-letter name is short
    ("นก", "คนกลาง", False), ("นก", "@นก มาแล้ว", True),
    # a mark belongs to the letter before it, also before a full stop
    ("alice", "x\u0301alice", False), ("alice", "रामा.alice", False), ("alice", "...alice", True),
])
def test_a_line_names_you_when_your_nickname_is_a_word_of_it(me: str, text: str,
                                                             named: bool) -> None:
    """Your nickname as a word of the line, not inside a longer name, makes a mention."""
    assert mentions(Message(1, TS, "bob", text), me) is named


def test_your_own_lines_and_the_servers_notices_never_name_you() -> None:
    """What you say (under any case of your name) and server notices do not count; a name
    with a full stop is matched as written, the stop no wildcard."""
    assert not mentions(Message(1, TS, "ALICE", "alice here"), "alice")
    assert not mentions(Message(1, TS, "Server", "alice is away", "system"), "alice")
    assert mentions(Message(1, TS, "bob", "hey a.b!"), "a.b")  # a name with a full stop
    assert not mentions(Message(1, TS, "bob", "hey axb"), "a.b")  # a full stop is no wildcard


def counting_bells(app: ChatApp) -> list[None]:
    """A list that gets an entry each time the app rings the terminal's bell."""
    rung: list[None] = []
    ring = app.bell
    app.bell = lambda: (rung.append(None), ring())[1]  # type: ignore[method-assign]
    return rung


def highlighted(app: ChatApp) -> str:
    """The text the log draws in the mention style, its rows joined by `|`."""
    return "|".join(drawn_on(app, MENTION.bgcolor))


async def test_a_line_that_names_you_stands_out_and_rings_the_bell_once(url, join) -> None:
    """bob's "alice: lunch?" is drawn in the mention style and rings the bell; his lines
    that do not name her, and hers that do, neither stand out nor ring, and another that
    names her right after stands out without ringing again (a flood rings once)."""
    app = make_app(url, "alice")
    rung = counting_bells(app)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.say("just saying hi")
        await bob.say("Alice: lunch?")
        await until(pilot, lambda: "lunch?" in log_text(app))
        await pilot.pause(0.05)
        assert highlighted(app) == "Alice: lunch?"
        assert len(rung) == 1
        await type_line(pilot, "alice is hungry")
        await until(pilot, lambda: "alice is hungry" in log_text(app))
        await pilot.pause(0.05)
        assert highlighted(app) == "Alice: lunch?" and len(rung) == 1
        await bob.send(type="say", text="alice?")
        await until(pilot, lambda: "alice?" in highlighted(app))
        assert len(rung) == 1
        assert app.query_one(ChatLog).unseen_mentions == 0  # only counted while scrolled up


async def test_a_backlog_that_names_you_stands_out_without_a_bell(url) -> None:
    """What was said before you joined is highlighted where it names you, but only what
    arrives live rings."""
    await fill_backlog(url, ["@alice see you at ten"])
    app = make_app(url, "alice")
    rung = counting_bells(app)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await until(pilot, lambda: "see you at ten" in log_text(app))
        await pilot.pause(0.05)
        assert highlighted(app) == "@alice see you at ten"
        assert rung == []


async def test_scrolled_up_the_border_counts_the_new_lines_that_name_you(url, join) -> None:
    """Reading further up, the count of new lines below says how many name you, and the
    count goes once you are back at the end."""
    await fill_backlog(url, [f"old {number}" for number in range(40)])
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        carol = await join("carol")
        await until(pilot, lambda: "carol has joined" in log_text(app))
        log = app.query_one(ChatLog)
        await pilot.press("pageup")
        await pilot.pause(0.1)
        await carol.say("alice, one")
        await carol.say("not you")
        await carol.say("ALICE two")
        await until(pilot, lambda: "ALICE two" in log_text(app))
        assert log.border_subtitle == "↓ 3 new lines, 2 with your name · Ctrl+End"
        await pilot.press("ctrl+end")
        await pilot.pause(0.1)
        assert log.border_subtitle == ""
        await pilot.press("pageup")
        await pilot.pause(0.1)
        await carol.say("still not you")
        await until(pilot, lambda: "still not you" in log_text(app))
        assert log.border_subtitle == "↓ 1 new line · Ctrl+End"


async def test_a_long_catch_up_that_names_you_stands_out_without_a_bell(url) -> None:
    """The part of a catch-up that follows the welcome as messages is history too: it is
    highlighted where it names you, and it does not ring."""
    app = make_app(url, "alice")
    rung = counting_bells(app)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        line = Message(10**6, now_ms(), "bob", "alice, this was said long ago")
        app.post_message(NetworkUpdates([Received(line, False, backlog=True, me="alice")]))
        await until(pilot, lambda: "said long ago" in highlighted(app))
        assert rung == []


async def test_an_action_that_names_you_stands_out(url, join) -> None:
    """`/me hands alice the keys` from bob is drawn in the mention style too."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        bob = await join("bob")
        await bob.send(type="me", text="hands alice the keys", cid="keys")
        await until(pilot, lambda: "hands alice the keys" in highlighted(app))


async def test_lines_are_judged_by_the_name_you_had_when_they_came(url, join) -> None:
    """What you said just before renaming yourself, in the same batch as the rename, is
    yours: it neither stands out nor rings; a line that came before the rename is judged
    by your old name: naming the new one, it does not stand out, naming the old one, it
    does."""
    app = make_app(url, "alice")
    rung = counting_bells(app)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        app.client.say("call me carol")
        app.client.rename("carol")
        await until(pilot, lambda: "You are now known as carol." in log_text(app))
        await pilot.pause(0.05)
        assert highlighted(app) == "" and rung == []
        app.post_message(NetworkUpdates([
            Received(Message(10**6 - 1, now_ms(), "bob", "carol, hi"), False, me="alice")]))
        await until(pilot, lambda: "carol, hi" in log_text(app))
        await pilot.pause(0.05)
        assert highlighted(app) == "" and rung == []
        app.post_message(NetworkUpdates([
            Received(Message(10**6, now_ms(), "bob", "alice, you there?"), False, me="alice")]))
        await until(pilot, lambda: "alice, you there?" in highlighted(app))
        assert len(rung) == 1
