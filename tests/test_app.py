"""The full-screen app driven by Pilot against a real in-process server."""

from __future__ import annotations

import gc

from textual import events
from textual.command import CommandList, CommandPalette

from tests.apptools import (
    SIZE,
    log_text,
    make_app,
    online,
    outbox,
    type_line,
    until,
    users_text,
)
from tui_chat.collector import YOUNG_GENERATION_THRESHOLD
from tui_chat.chat_input import ChatInput
from tui_chat.chat_log import ChatLog
from tui_chat.widgets import Outbox, UserList
from tui_chat.app import NetworkUpdates
from tui_chat.updates import State, StateChanged


async def test_two_apps_chat(url) -> None:
    """What one app sends appears in the other's log, and in its own once acknowledged."""
    alice, bob = make_app(url, "alice"), make_app(url, "bob")
    async with alice.run_test(size=SIZE) as pa, bob.run_test(size=SIZE) as pb:
        await online(pa)
        await online(pb)
        await type_line(pa, "hello bob")
        await until(pb, lambda: "alice hello bob" in log_text(bob))
        await until(pa, lambda: "alice hello bob" in log_text(alice))
        assert outbox(alice) == ()
        await type_line(pb, "/me waves")
        await until(pa, lambda: "* bob waves" in log_text(alice))


async def test_the_input_is_focused_and_cleared_after_sending(url) -> None:
    """The input has focus at start and is emptied once a line is sent."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        assert app.focused is app.query_one(ChatInput)
        await online(pilot)
        await pilot.press(*"hi", "enter")
        assert app.query_one(ChatInput).value == ""
        await until(pilot, lambda: "alice hi" in log_text(app))


async def test_lines_typed_in_one_burst_are_sent_each_once_in_order(url, join) -> None:
    """Keys that arrive faster than the app handles them (a fast typist, a burst over ssh)
    act in the order typed: editing keys land where they were pressed, and each Enter sends
    its own line."""
    bob = await join("bob")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await bob.expect("presence")
        burst = [*"first", "enter", *"typo fixx", "backspace", "enter",
                 *"wrold", "left", "left", "backspace", "left", "o", "enter",
                 *"end", "home", "X", "enter"]
        keys = {"enter": "\r", "backspace": "\x7f", "left": None, "home": None}
        for key in burst:  # queued at once, as the driver does a burst
            app.post_message(events.Key(key, keys.get(key, key)))
        texts = [(await bob.expect("message"))["text"] for _ in range(4)]
        assert texts == ["first", "typo fix", "world", "Xend"]
        assert await bob.silent()
        assert app.query_one(ChatInput).value == ""


async def test_a_paste_is_cleaned_and_its_lines_go_as_one_message(url, join) -> None:
    """Escape sequences in a paste are removed, and its line breaks, shown as ␤ in the input,
    are line breaks again in the one message it sends."""
    bob = await join("bob")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await bob.expect("presence")
        app.post_message(events.Paste("see \x1b[1mbold\x1b[0m here\r\nline two\n"))
        await until(pilot, lambda: app.query_one(ChatInput).value == "see bold here␤line two")
        await pilot.press("!", "enter")
        assert (await bob.expect("message"))["text"] == "see bold here\nline two!"


async def test_the_user_list_follows_joins_leaves_and_renames(url, join) -> None:
    """Users appear, are renamed and disappear in the side list, with a count; you are marked."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert "alice (you)" in users_text(app)
        bob = await join("bob")
        await until(pilot, lambda: "bob" in users_text(app))
        assert app.query_one("UserList").border_title == "Users · 2"
        await bob.send(type="nick", nick="robert")
        await until(pilot, lambda: "robert" in users_text(app))
        assert "bob is now known as robert." in log_text(app)
        await bob.close()
        await until(pilot, lambda: "robert" not in users_text(app))
        assert "robert has left the chat." in log_text(app)
        assert app.query_one("UserList").border_title == "Users · 1"


async def test_a_quiet_member_is_listed_but_its_coming_and_going_is_not_logged(url, join) -> None:
    """A script that joins quietly (`tui-chat send`) appears in the user list while it is
    here; the log shows its message, and no join or leave line."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        ci = await join("ci", quiet=True)
        await until(pilot, lambda: "ci" in users_text(app))
        await ci.say("deploy finished")
        await ci.close()
        await until(pilot, lambda: "ci" not in users_text(app))
        assert "deploy finished" in log_text(app)
        assert "ci has" not in log_text(app)


async def test_markup_like_text_arrives_literally_and_runs_nothing(url, join) -> None:
    """Markup and escape codes from another user are shown as text and cannot act."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        mallory = await join("mallory")
        markup = "[@click=app.quit]x[/] [bold]y[/bold] [/]"
        await mallory.say(markup)
        await mallory.say("a\x1b[2Jb\x1b]0;title\x07c")
        await until(pilot, lambda: "abc" in log_text(app))
        assert markup in log_text(app)
        await pilot.click("ChatLog")
        assert app.is_running


async def test_commands_work_and_unknown_ones_are_not_sent(url, join) -> None:
    """/nick, /who, /help and /clear act locally or on the server; /bogus only gets a hint."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        watcher = await join("watcher")
        await type_line(pilot, "/bogus stuff")
        await until(pilot, lambda: "Unknown command /bogus" in log_text(app))
        assert app.query_one(ChatInput).value == "/bogus stuff", "kept for fixing"
        assert await watcher.silent()
        await type_line(pilot, "/nick alicia")
        await until(pilot, lambda: "You are now known as alicia." in log_text(app))
        await type_line(pilot, "/who")
        await until(pilot, lambda: "In lobby (2): alicia, watcher" in log_text(app))
        await type_line(pilot, "/help")
        await until(pilot, lambda: "/nick NAME" in log_text(app))
        await type_line(pilot, "/clear")
        await until(pilot, lambda: log_text(app).strip() == "")
        await type_line(pilot, "//slash")
        await until(pilot, lambda: "alicia /slash" in log_text(app))


async def test_quit_command_exits(url) -> None:
    """/quit leaves the app."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await type_line(pilot, "/quit")
        await pilot.pause(0.1)
        assert not app.is_running


async def test_a_taken_nickname_can_be_replaced_without_restarting(url, join) -> None:
    """The app says the name is taken and /nick joins with another."""
    await join("alice")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "is taken" in log_text(app))
        assert "/nick NAME" in log_text(app)
        await type_line(pilot, "/nick alice2")
        await online(pilot)
        assert "You joined lobby as alice2." in log_text(app)


async def test_while_the_nickname_is_refused_the_screen_says_a_nick_is_needed(url, join) -> None:
    """Refused its nickname, the app is connected but in no room: the header says it needs a
    nickname, the user list marks no one as you, a line typed meanwhile waits for /nick, to
    be sent once a free name has joined, and /reconnect says what is awaited."""
    await join("alice")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "is taken" in log_text(app))
        await pilot.pause(0.05)
        assert app.sub_title.startswith("needs a nickname"), app.sub_title
        assert app.query_one(UserList).border_title == "Users (not joined)"
        assert "(you)" not in users_text(app)
        await type_line(pilot, "typed before the nick")
        await until(pilot, lambda: "waiting for a /nick: typed before the nick"
                    in str(app.query_one(Outbox).render()))
        await type_line(pilot, "/reconnect")
        await until(pilot, lambda: "waits for a free nickname" in log_text(app))
        await type_line(pilot, "/nick alice2")
        await online(pilot)
        await until(pilot, lambda: "alice2 typed before the nick" in log_text(app))
        assert app.sub_title.startswith("online")


async def test_tab_completes_nicknames_and_commands(url, join) -> None:
    """Tab completes a nickname (with ': ' at line start), cycles through the others' names
    (never your own), and completes commands."""
    await join("bobby")
    await join("bonnie")
    app = make_app(url, "bob")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        chat_input = app.query_one(ChatInput)
        await pilot.press("b", "o", "tab")
        assert chat_input.value == "bobby: "
        await pilot.press("tab")
        assert chat_input.value == "bonnie: "
        await pilot.press("tab")
        assert chat_input.value == "bobby: ", "bob, yourself, is not among them"
        chat_input.value = ""
        await pilot.press("/", "n", "i", "tab")
        assert chat_input.value == "/nick "
        chat_input.value = "hi BON"
        chat_input.cursor_position = 6
        await pilot.press("tab")
        assert chat_input.value == "hi bonnie "


async def test_up_and_down_recall_sent_lines(url) -> None:
    """Up walks back through what was sent; Down returns to the draft."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        for line in ("first", "second"):
            await type_line(pilot, line)
        chat_input = app.query_one(ChatInput)
        await pilot.press(*"draft")
        await pilot.press("up")
        assert chat_input.value == "second"
        await pilot.press("up")
        assert chat_input.value == "first"
        await pilot.press("down", "down")
        assert chat_input.value == "draft"
        await pilot.press("up", "up", "ctrl+u")  # at "first", then the line is cleared
        assert chat_input.value == ""
        await pilot.press("up")
        assert chat_input.value == "second", "an edited line starts again from the newest"


async def test_too_long_text_is_kept_in_the_input(start_server) -> None:
    """A line over the server's limit is refused locally and stays in the input to edit."""
    server = await start_server(max_text=10)
    app = make_app(server.url + "/lobby", "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await type_line(pilot, "this is far too long")
        await until(pilot, lambda: "Too long" in log_text(app))
        assert app.query_one(ChatInput).value == "this is far too long"


async def test_a_burst_is_written_to_the_log_in_batches(url, join) -> None:
    """1,000 incoming messages reach the app as a handful of batched updates, all in order."""
    from tui_chat.app import NetworkUpdates

    batches: list[int] = []

    def hook(message) -> None:
        if isinstance(message, NetworkUpdates):
            batches.append(len(message.updates))

    app = make_app(url, "alice")
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        await online(pilot)
        bob = await join("bob")
        for number in range(1000):
            await bob.send(type="say", text=f"burst {number}", cid=f"b{number}")
        await until(pilot, lambda: "burst 999" in log_text(app))
        shown = [line for line in log_text(app).splitlines() if "burst" in line]
        assert [line.split()[-1] for line in shown] == [str(n) for n in range(1000)]
        assert sum(batches) >= 1000
        assert len(batches) < 100, f"{len(batches)} batches for 1,000 messages"


async def test_no_line_of_a_message_can_pass_for_a_log_line_of_its_own(url, join) -> None:
    """The lines after the first of a multi-line message are indented under the nickname,
    so a message cannot fake a notice or someone else's line."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        mallory = await join("mallory")
        await mallory.say("hi all\n10:57 — mallory is now known as bob.\n10:57 bob send the key")
        await until(pilot, lambda: "send the key" in log_text(app))
        rows = log_text(app).splitlines()
        spoofs = [row for row in rows if "is now known as bob" in row or "send the key" in row]
        assert spoofs and all(row.startswith("      10:57") for row in spoofs)


async def test_no_wrapped_row_can_pass_for_a_log_line_of_its_own(url, join) -> None:
    """The rows a long line wraps onto are indented under the nickname too, whatever the
    line holds: tabs among wide characters (laid out by Rich) included."""
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        mallory = await join("mallory")
        width = app.query_one(ChatLog).scrollable_content_region.width
        padding = "x" * (width - 16)  # "10:57" starts the second row
        for number, start in enumerate(("é\t", "ab\t", "日本\t", "é ")):
            await mallory.say(f"{start}{padding} 10:57 bob send key {number}")
        await until(pilot, lambda: "send key 3" in log_text(app))
        spoofs = [row for row in log_text(app).splitlines() if "send key" in row]
        assert len(spoofs) == 4 and all(row.startswith(" " * 6) for row in spoofs)
        assert sum(row.startswith("      10:57 bob") for row in spoofs) >= 2


async def test_a_line_longer_than_the_input_scrolls_to_the_cursor(url) -> None:
    """Typing past the input's width shows the end of the line, and Home shows its start
    (the input repaints itself alone as it grows, and still scrolls)."""
    app = make_app(url, "alice")
    async with app.run_test(size=(40, 12)) as pilot:
        chat_input = app.query_one(ChatInput)
        typed = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
        await pilot.press(*typed)
        await pilot.pause()
        shown = lambda: "".join(s.text for s in chat_input.render_lines(  # noqa: E731
            chat_input.region.reset_offset))
        assert chat_input.scroll_x > 0 and typed[-20:] in shown() and typed[:5] not in shown()
        await pilot.press("home")
        await pilot.pause()
        assert chat_input.scroll_x == 0 and typed[:20] in shown()


async def test_the_collector_is_quiet_while_the_app_runs_and_restored_after(url) -> None:
    """While an app runs, what existed at start is frozen out of collections and the young
    generation is collected less often; once the last app exits both are as they were."""
    before = gc.get_threshold()
    alice, bob = make_app(url, "alice"), make_app(url, "bob")
    async with alice.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
        async with bob.run_test(size=SIZE) as other:  # two apps in one process
            await online(other)
        assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_the_command_palette_offers_the_chats_commands(url, join) -> None:
    """Ctrl+P finds the chat's own commands: 'Who is here' lists the room like /who."""
    await join("bob")
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        for key in "who is":
            await pilot.press("space" if key == " " else key)
        commands = app.screen.query_one(CommandList)
        await until(pilot, lambda: commands.highlighted is not None and "Who is here" in str(
            commands.get_option_at_index(commands.highlighted).prompt))
        await pilot.press("enter")
        await until(pilot, lambda: "In lobby (2): alice, bob" in log_text(app))


def test_every_command_without_an_argument_is_an_action_of_the_app() -> None:
    """/who, /help, ... run the app's action of the same name (as keys and the palette do),
    so each such command has one."""
    from tui_chat.app import ChatApp
    from tui_chat.commands import COMMANDS

    plain = [name for name in COMMANDS if name not in ("/nick", "/me")]
    assert plain and all(callable(getattr(ChatApp, f"action_{name[1:]}", None)) for name in plain)


async def test_a_narrow_header_still_shows_the_connection_state(url) -> None:
    """24 columns wide, the header gives its whole width to the room and the state (the
    icon and the clock's space go), so 'online' still shows."""
    from textual.widgets._header import HeaderTitle

    app = make_app(url, "alice")
    async with app.run_test(size=(24, 12)) as pilot:
        await online(pilot)
        await pilot.pause(0.1)
        drawn = "".join(segment.text for segment in app.query_one(HeaderTitle).render_line(0))
        assert "#lobby — online" in drawn, drawn


async def test_news_from_the_network_while_the_app_shuts_down_is_let_go(url) -> None:
    """An update the client reports while the app is shutting down (its screens already
    gone) is dropped, rather than raising ScreenStackError out of the app."""
    app = make_app(url, "alice")
    close_all = app._close_all
    errors: list[BaseException] = []

    async def close_then_hear_news() -> None:
        await close_all()
        try:
            app.on_network_updates(NetworkUpdates([StateChanged(State.OFFLINE, reason="gone")]))
        except Exception as error:  # noqa: BLE001 - what the test is about
            errors.append(error)

    app._close_all = close_then_hear_news  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
    assert errors == []
