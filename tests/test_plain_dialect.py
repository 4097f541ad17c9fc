"""The plain-text dialect, as wscat or a ten-line script speaks it, and mixed rooms."""

from __future__ import annotations

import pytest

from tests.helpers import PlainClient
from tui_chat.commands import Command, UnknownCommand, parse_input


async def test_first_line_is_the_nickname_and_others_see_the_join(join_plain) -> None:
    """After the nickname is accepted, the others see `[Server]: bob has joined the chat.`"""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    assert await alice.recv() == "[Server]: bob has joined the chat."
    assert bob.greeting[-1].startswith("[Server]: Welcome to lobby, bob!")
    assert "alice, bob" in bob.greeting[-1]


async def test_lines_go_to_the_others_not_back_to_the_sender(join_plain) -> None:
    """Each message reaches the other members as `[alice]: hello`, never the sender."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()  # bob's join
    await alice.send("hello")
    assert await bob.recv() == "[alice]: hello"
    assert await alice.silent()


async def test_a_raw_client_is_told_at_once_to_send_its_nickname(join_plain) -> None:
    """Before it sends anything, a raw client (wscat, a browser console) is told which room
    it reached and that its first line is its nickname; nothing else comes until it does."""
    newcomer = await join_plain(None, "/dev")
    assert newcomer.prompt == ("[Server]: This is tui-chat, room dev. Send your nickname to"
                               " join (NAME, or NAME PASSWORD for a registered one).")
    assert await newcomer.silent()


async def test_a_refused_nickname_is_explained_and_the_next_line_is_a_new_attempt(join_plain) -> None:
    """A taken, reserved or invalid name gets `[Server]: <reason>` and says that the next
    line is a new try; then another try works."""
    await join_plain("alice")
    newcomer = await join_plain(None)
    for attempt in ("ALICE", "server", "has space", "x" * 30):
        await newcomer.send(attempt)
        reason = await newcomer.recv()
        assert reason.startswith("[Server]: "), reason
        assert len(reason) > len("[Server]: ") + 10
        assert reason.endswith("Send your nickname again (NAME, or NAME PASSWORD for a"
                               " registered one)."), reason
    await newcomer.send("carol")
    assert (await newcomer.lines_until("[Server]: Welcome"))[-1].startswith("[Server]: Welcome")


async def test_a_json_hello_over_plain_text_is_told_to_ask_for_the_json_dialect(
        join_plain) -> None:
    """A bot that forgot the subprotocol and sends a JSON hello as its first line hears how
    to speak JSON (not that its "name" is too long or holds a quote)."""
    bot = await join_plain(None)
    await bot.send('{"type": "hello", "nick": "bot"}')
    assert await bot.recv() == (
        "[Server]: This looks like a JSON hello, but this connection speaks plain text: to"
        " speak JSON, offer the WebSocket subprotocol 'tui-chat.v1'. Send your nickname again"
        " (NAME, or NAME PASSWORD for a registered one).")


async def test_the_newcomer_receives_recent_history_as_lines(join_plain, join) -> None:
    """History arrives as `[nick]: text` lines (actions as `* nick text`) before the welcome."""
    alice = await join_plain("alice")
    await alice.send("one")
    await alice.send("/me waves")
    bot = await join("bot")
    await bot.say("two")
    bob = await join_plain("bob")
    assert bob.greeting[:-1] == ["[alice]: one", "* alice waves", "[bot]: two"]


async def test_departure_is_announced(join_plain) -> None:
    """`[Server]: bob has left the chat.` when bob disconnects."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()
    await bob.close()
    assert await alice.recv() == "[Server]: bob has left the chat."


# Lines that start with a slash but are no command, and the text each sends.
NOT_COMMANDS = {"/": "/", "/ hello": "/ hello", "/2 go": "/2 go", "/usr/bin": "/usr/bin",
                "//": "/", "//me x": "/me x", "/é": "/é"}


async def test_a_raw_client_and_the_app_agree_on_what_is_a_command(join_plain) -> None:
    """Only a slash and ASCII letters make a command, for a raw client's lines and the
    app's input alike: every other line starting with one slash is sent as it is, and one
    starting with two with one removed; an unknown command is refused by both."""
    alice = await join_plain("alice")
    pat = await join_plain("pat")
    await alice.recv()  # pat's join
    for line, text in NOT_COMMANDS.items():
        assert parse_input(line) == Command(None, text), line
        await pat.send(line)
        assert await alice.recv() == f"[pat]: {text}", line
    assert parse_input("/ME  waves ") == Command("/me", "waves")
    await pat.send("/ME  waves ")
    assert await alice.recv() == "* pat waves"
    with pytest.raises(UnknownCommand, match="Unknown command /frobnicate"):
        parse_input("/frobnicate now")
    await pat.send("/frobnicate now")
    assert (await pat.recv()).startswith("[Server]: Unknown command /frobnicate.")


async def test_a_pasted_command_that_takes_nothing_is_refused_with_what_follows(
        join_plain) -> None:
    """A command that takes no argument, given one (most likely a paste that starts with
    it), is refused in both the app and a raw client's lines, rather than run with the
    rest dropped: nothing is sent, and the user is told how to send it as text."""
    alice = await join_plain("alice")
    for line in ("/who\nthanks all", "/help me"):
        await alice.send(line)
        assert await alice.recv() == (f"[Server]: {line.split()[0]} takes nothing after it:"
                                      " start the line with // to send it as text.")
    for line in ("/quit\nthanks all", "/clear ls -la", "/who x", "/reconnect now"):
        with pytest.raises(UnknownCommand, match="takes nothing after it"):
            parse_input(line)
    assert parse_input("/me waves\nand smiles") == Command("/me", "waves\nand smiles")
    assert parse_input("/who ") == Command("/who", "")


async def test_commands_me_nick_who_help(join_plain) -> None:
    """Plain clients can act, rename, list users and ask for help."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()
    await bob.send("/me waves")
    assert await alice.recv() == "* bob waves"
    await bob.send("/nick robert")
    assert await alice.recv() == "[Server]: bob is now known as robert."
    assert await bob.recv() == "[Server]: You are now known as robert."
    await bob.send("/who")
    assert await bob.recv() == "[Server]: In lobby (2): alice, robert."
    await bob.send("/help")
    assert "/nick NAME" in await bob.recv()
    await bob.send("/frobnicate now")
    assert (await bob.recv()).startswith("[Server]: Unknown command /frobnicate.")
    await bob.send("//not a command")
    assert await alice.recv() == "[robert]: /not a command"
    await bob.send("/path/to/file is a path")
    assert await alice.recv() == "[robert]: /path/to/file is a path"


async def test_errors_come_back_as_server_lines(join_plain) -> None:
    """Too long and binary input is refused with `[Server]: <reason>`; the connection stays."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()
    await bob.send("x" * 4001)
    assert (await bob.recv()).startswith("[Server]: Message too long (4001 characters")
    await bob.send(b"\x00\x01")
    assert await bob.recv() == "[Server]: Binary frames are not supported: send text."
    await bob.send("still here")
    assert await alice.recv() == "[bob]: still here"


async def test_blank_lines_are_not_broadcast(join_plain) -> None:
    """Empty and whitespace-only lines are dropped quietly."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()
    for blank in ("", "   ", "\n", "\x1b[0m"):
        await bob.send(blank)
    await bob.send("real")
    assert await alice.recv() == "[bob]: real"


async def test_mixed_dialects_see_each_other(join, join_plain) -> None:
    """JSON and plain members of one room chat with each other."""
    json_user = await join("jay")
    plain_user = await join_plain("pat")
    presence = await json_user.expect("presence")
    assert (presence["nick"], presence["users"]) == ("pat", ["jay", "pat"])
    await plain_user.send("hi from plain")
    message = await json_user.expect("message")
    assert (message["nick"], message["text"]) == ("pat", "hi from plain")
    await json_user.say("hi from json")
    assert await plain_user.recv() == "[jay]: hi from json"
    await json_user.send(type="me", text="nods", cid="n")
    await json_user.expect("message")
    assert await plain_user.recv() == "* jay nods"
    await json_user.send(type="nick", nick="jay2")
    assert await plain_user.recv() == "[Server]: jay is now known as jay2."
    await json_user.close()
    assert await plain_user.recv() == "[Server]: jay2 has left the chat."


async def test_nicknames_are_unique_across_dialects(join, join_plain) -> None:
    """A plain client cannot take a name a JSON client holds, whatever the case."""
    await join("Alice")
    plain = await join_plain(None)
    await plain.send("alice")
    assert "taken" in await plain.recv()


async def test_rooms_are_isolated(join, join_plain) -> None:
    """Messages, presence and nicknames in one room never reach another."""
    lobby = await join("alice")
    dev = await join("alice", path="/dev")
    dev_plain = await join_plain("bob", path="/dev")
    assert (await dev.expect("presence"))["nick"] == "bob"
    await lobby.say("lobby only")
    await dev_plain.send("dev only")
    assert (await dev.expect("message"))["text"] == "dev only"
    assert await dev.silent()
    assert await lobby.silent()
    assert dev.welcome["room"] == "dev" and dev.welcome["users"] == ["alice"]


async def test_crowded_rooms_stop_announcing_joins(start_server) -> None:
    """Past --presence-limit members, joins and leaves are not announced, and a plain
    newcomer is told a head count instead of every name."""
    server = await start_server(presence_limit=2)
    first = await PlainClient.connect(server.url, "a1")
    second = await PlainClient.connect(server.url, "a2")
    assert await first.recv() == "[Server]: a2 has joined the chat."
    late = []
    for number in range(3, 26):
        late.append(await PlainClient.connect(server.url, f"a{number}"))
    assert "and 5 more." in late[-1].greeting[-1]
    await late[0].close()
    assert await first.silent()
    await late[-1].send("/who")
    assert (await late[-1].recv()).startswith("[Server]: In lobby (24): a1, a10, a11")
    for client in [first, second, *late[1:]]:
        await client.close()


async def test_in_crowded_rooms_a_rename_is_told_to_the_renamed_member_alone(
        start_server) -> None:
    """Past --presence-limit members a rename, like a join, is not announced: else one
    member renaming at the rate limit would send every member a line five times a second."""
    server = await start_server(presence_limit=2)
    first = await PlainClient.connect(server.url, "a1")
    second = await PlainClient.connect(server.url, "a2")
    assert await first.recv() == "[Server]: a2 has joined the chat."
    await second.send("/nick b2")
    assert await second.recv() == "[Server]: You are now known as b2."
    assert await first.recv() == "[Server]: a2 is now known as b2."
    third = await PlainClient.connect(server.url, "a3")
    await third.send("/nick b3")
    assert await third.recv() == "[Server]: You are now known as b3."
    await second.send("/nick c2")
    assert await second.recv() == "[Server]: You are now known as c2."
    assert await first.silent(0.3)
    await third.send("/who")
    assert await third.recv() == "[Server]: In lobby (3): a1, b3, c2."
    for client in (first, second, third):
        await client.close()


async def test_a_leave_is_announced_exactly_when_its_join_was(start_server) -> None:
    """With --presence-limit 2, the third member's join is not announced, so neither is its
    leave (the room is then back at the limit); the second's leave is, as its join was."""
    server = await start_server(presence_limit=2)
    first = await PlainClient.connect(server.url, "a1")
    second = await PlainClient.connect(server.url, "a2")
    assert await first.recv() == "[Server]: a2 has joined the chat."
    third = await PlainClient.connect(server.url, "a3")
    await third.close()
    assert await first.silent(0.3)
    await second.close()
    assert await first.recv() == "[Server]: a2 has left the chat."
    await first.close()


async def test_answers_come_in_the_order_the_lines_were_sent(join_plain) -> None:
    """A line, /who, /help and a bad command sent at once are answered in that order."""
    alice = await join_plain("alice")
    bob = await join_plain("bob")
    await alice.recv()
    for line in ("hello", "/who", "/help", "/frobnicate", "/nick bob", "/who"):
        await bob.send(line)
    answers = [await bob.recv() for _ in range(5)]
    assert answers[0] == "[Server]: In lobby (2): alice, bob."
    assert "/nick NAME" in answers[1]
    assert answers[2].startswith("[Server]: Unknown command /frobnicate.")
    assert "already" in answers[3] or "unchanged" in answers[3].lower(), answers[3]
    assert answers[4] == "[Server]: In lobby (2): alice, bob."


async def test_a_room_named_in_capitals_is_the_same_room(chat_server, join) -> None:
    """`/Lobby` and `/lobby` are one room: letter case in a room's name is ignored."""
    alice = await join("alice")
    bob = await PlainClient.connect(chat_server.url + "/Lobby", "bob")
    assert bob.greeting[-1].startswith("[Server]: Welcome to lobby, bob!")
    presence = await alice.expect("presence")
    assert (presence["event"], presence["nick"]) == ("join", "bob")
