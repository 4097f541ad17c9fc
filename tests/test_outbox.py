"""Typed, unacknowledged messages survive a restart of the client and are delivered once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from tests.apptools import (
    SIZE,
    farewells,
    fill_backlog,
    log_text,
    make_app,
    online,
    outbox,
    type_line,
    until,
)
from tests.helpers import JsonClient
from tui_chat import leaving
from tui_chat.app import ChatApp
from tui_chat.chat_log import ChatLog
from tui_chat.client import ChatClient
from tui_chat.updates import Backoff, Outgoing, Received, State
from tui_chat.outbox import OutboxStore


def test_the_store_round_trips_and_removes_itself_when_empty(tmp_path) -> None:
    """Pending messages are saved and loaded in order; an empty outbox leaves no file."""
    store = OutboxStore("ws://h/lobby", "alice", tmp_path)
    pending = [Outgoing("a-1", "hello"), Outgoing("a-2", "waves", "action")]
    store.save(pending)
    assert OutboxStore("ws://h/lobby", "ALICE", tmp_path).load() == pending
    assert OutboxStore("ws://h/other", "alice", tmp_path).load() == [], "one file per room"
    assert OutboxStore("ws://h/lobby", "bob", tmp_path).load() == [], "and per nickname"
    store.save([])
    assert not store.path.exists()


def test_an_unreadable_store_is_an_empty_outbox(tmp_path) -> None:
    """A damaged file does not stop the client."""
    store = OutboxStore("ws://h/lobby", "alice", tmp_path)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    for damaged in ("{not json", '{"pending": 5}', '{"pending": {"cid": "a-1"}}', "[]"):
        store.path.write_text(damaged)
        assert store.load() == [], damaged


def test_a_damaged_entry_is_skipped_and_the_others_kept(tmp_path) -> None:
    """An entry a server would refuse for its form (a cid that is not a string, text that
    is not) is left out; the well-formed ones are loaded, their text cleaned for sending."""
    store = OutboxStore("ws://h/lobby", "alice", tmp_path)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"pending": [
        {"cid": 7, "text": "no"}, {"cid": "a-1", "text": "caf\udce9"},
        {"cid": "a-2", "text": None}, {"cid": "a-3", "text": "waves", "kind": "action"},
        {"cid": "a-4", "text": "x", "kind": "system"}]}))
    assert store.load() == [Outgoing("a-1", "caf\ufffd"), Outgoing("a-3", "waves", "action")]


def app_whose_outbox_is_held(url: str) -> tuple[OutboxStore, ChatApp, list[str]]:
    """An app joining `url` as alice, whose outbox another tui-chat holds (the store
    returned first), and the list its farewell will be in."""
    holder = OutboxStore(url, "alice")
    assert holder.claim()
    app = make_app(url, "alice")
    return holder, app, farewells(app)


async def type_offline(pilot, text: str) -> None:
    """Type a line that stays pending (the server is not there)."""
    await type_line(pilot, text)
    await until(pilot, lambda: len(outbox(pilot.app)) == 1)


async def test_quitting_names_the_nickname_whose_outbox_keeps_what_is_pending(
        chat_server) -> None:
    """Typed offline, then /nick bob, another line, then quit: the rename was not made, so
    the messages are kept under alice, and the farewell gives that name and says that the
    rename was dropped (the second line was typed as bob)."""
    port = chat_server.port
    await chat_server.stop()
    url = f"ws://127.0.0.1:{port}/lobby"
    app = make_app(url, "alice")
    said = farewells(app)
    async with app.run_test(size=SIZE) as pilot:
        await type_offline(pilot, "written offline")
        await type_line(pilot, "/nick bob")
        await until(pilot, lambda: "You will be bob" in log_text(app))
        await type_line(pilot, "written as bob")
        await until(pilot, lambda: len(outbox(app)) == 2)
        await pilot.press("ctrl+q")
    path = OutboxStore(url, "alice").path
    assert said == [f"tui-chat: 2 messages not yet acknowledged by the server were kept (in"
                    f" {path}); they are sent the next time you join {url} as alice (you were"
                    " never renamed bob: the connection did not come back before you quit)."]
    assert [o.text for o in OutboxStore(url, "alice").load()] == ["written offline",
                                                                  "written as bob"]


async def test_a_nick_before_the_first_join_keeps_what_is_typed_under_the_new_name(
        unused_port) -> None:
    """Never joined (nothing listens): /nick bob, a line, quit. The farewell says the line is
    sent the next time you join as bob, and bob's outbox has it."""
    url = f"ws://127.0.0.1:{unused_port}/lobby"
    app = make_app(url, "alice")
    said = farewells(app)
    async with app.run_test(size=SIZE) as pilot:
        await type_line(pilot, "/nick bob")
        await type_offline(pilot, "written offline")
        await pilot.press("ctrl+q")
    assert said[0].endswith(f"join {url} as bob."), said
    assert [o.text for o in OutboxStore(url, "bob").load()] == ["written offline"]


def test_one_running_client_at_a_time_holds_a_store(tmp_path) -> None:
    """While one client holds a room's store for a nickname, another cannot claim it (they
    would send or overwrite each other's messages); once released, it can."""
    first = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert first.claim()
    second = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert not second.claim()
    assert OutboxStore("ws://h/lobby", "bob", tmp_path).claim(), "another nickname's is free"
    first.release()
    assert second.claim()


async def test_a_second_app_for_the_same_room_and_nickname_keeps_its_outbox_in_memory(
        url) -> None:
    """It says so, and the first app's pending messages stay the first app's."""
    first, second = make_app(url, "alice"), make_app(url, "alice")
    async with first.run_test(size=SIZE) as one:
        await online(one)
        assert first.client.store is not None
        async with second.run_test(size=SIZE) as two:
            await until(two, lambda: "are not saved on disk" in log_text(second))
            await until(two, lambda: "is taken" in log_text(second))  # settled before it quits
            assert second.client.store is None


async def test_what_the_app_says_before_joining_comes_after_the_room_s_history(url) -> None:
    """The room's recent history goes above the notices of the app's first moments (here,
    that the outbox is not saved on disk), which stay in view at the end of the log, in
    time order: history, notice, `You joined`."""
    await fill_backlog(url, [f"old line {n}" for n in range(40)])
    holder, app, _ = app_whose_outbox_is_held(url)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        await until(pilot, lambda: "You joined" in log_text(app))
        text = log_text(app)
        assert (text.index("old line 39") < text.index("are not saved on disk")
                < text.index("You joined lobby as alice"))
        log = app.query_one(ChatLog)
        in_view = log.text().splitlines()[round(log.scroll_y):][:log.size.height]
        assert any("Another tui-chat" in row for row in in_view), in_view
    holder.release()


async def test_quitting_when_typed_messages_cannot_be_kept_asks_for_a_second_ctrl_q(
        unused_port, monkeypatch) -> None:
    """Another tui-chat holds the room's outbox, so a line typed offline lives in memory
    only: the first Ctrl+Q says quitting loses it and does not quit, nor does one after the
    confirmation has expired; one within it quits, and the farewell says it was lost."""
    monkeypatch.setattr(leaving, "QUIT_CONFIRM", 0.3)
    url = f"ws://127.0.0.1:{unused_port}/lobby"
    holder, app, said = app_whose_outbox_is_held(url)
    async with app.run_test(size=SIZE) as pilot:
        await type_offline(pilot, "written offline")
        await pilot.press("ctrl+q")
        warning = ("1 message not yet acknowledged by the server could not be saved on disk:"
                   " quitting now loses it. Press Ctrl+Q again within 0.3 s (or /quit) to quit.")
        await until(pilot, lambda: warning in " ".join(log_text(app).split()))
        await asyncio.sleep(0.4)
        monkeypatch.setattr(leaving, "QUIT_CONFIRM", 60.0)  # a slow machine still lands in it
        await pilot.press("ctrl+q")
        await until(pilot, lambda: "again within 60 s" in " ".join(log_text(app).split()))
        assert app.is_running and not said
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)
    holder.release()
    assert said[0].startswith("tui-chat: 1 message not yet acknowledged by the server was lost")


def block_saving(app) -> Path:
    """Make every save of the app's outbox fail, with a directory where each is written
    first; removing it lets saves work again."""
    assert app.client.store is not None
    obstacle = app.client.store.path.with_suffix(".tmp")
    obstacle.mkdir(parents=True)
    return obstacle


@pytest.mark.parametrize("typed_after_recovery", [True, False])
async def test_an_outbox_that_cannot_be_written_is_reported_and_then_its_recovery(
        unused_port, typed_after_recovery: bool) -> None:
    """When saving a typed line fails the log says why at once (quitting would lose it);
    once saving works again, the next line typed says so and saves every pending line, and
    without one, quitting saves them; either way one Ctrl+Q quits and they are kept."""
    url = f"ws://127.0.0.1:{unused_port}/lobby"
    app = make_app(url, "alice")
    said = farewells(app)
    async with app.run_test(size=SIZE) as pilot:
        obstacle = block_saving(app)
        await type_line(pilot, "first")
        await until(pilot, lambda: "Cannot keep pending messages on disk (Is a directory):"
                    in " ".join(log_text(app).split()))
        assert not app.client.store.path.exists()
        await type_line(pilot, "second")
        await until(pilot, lambda: len(outbox(app)) == 2)
        assert log_text(app).count("Cannot keep pending") == 1, "said once, not per line"
        obstacle.rmdir()
        if typed_after_recovery:
            await type_line(pilot, "third")
            await until(pilot, lambda: "Pending messages are saved on disk again." in log_text(app))
            assert len(OutboxStore(url, "alice").load()) == 3
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)
    kept = ["first", "second", "third"][:3 if typed_after_recovery else 2]
    assert f"{len(kept)} messages not yet acknowledged by the server were kept" in said[0]
    assert [o.text for o in OutboxStore(url, "alice").load()] == kept


async def run_until_empty(client: ChatClient) -> list[Received]:
    received: list[Received] = []
    client.on_update = lambda update: received.append(update) if isinstance(update, Received) else None
    task = asyncio.create_task(client.run())
    for _ in range(250):
        if client.state is State.ONLINE and not client.outbox:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    await client.stop()
    await task
    return received


async def test_pending_messages_are_sent_after_the_client_restarts(chat_server, tmp_path) -> None:
    """What was typed while offline is on disk, and the next client for the room sends it."""
    url = chat_server.url + "/lobby"
    first = ChatClient("ws://127.0.0.1:9/lobby", "alice", lambda update: None)  # never connects
    first.attach_store(OutboxStore(url, "alice", tmp_path))
    first.say("typed offline")
    first.me("waits")
    second = ChatClient(url, "alice", lambda update: None, backoff=Backoff(0.02, 0.1))
    second.attach_store(OutboxStore(url, "alice", tmp_path))
    assert [o.text for o in second.outbox.values()] == ["typed offline", "waits"]
    received = await run_until_empty(second)
    assert [(r.message.text, r.mine) for r in received] == [("typed offline", True), ("waits", True)]
    assert not OutboxStore(url, "alice", tmp_path).path.exists()


async def test_a_message_stored_before_the_client_died_is_not_stored_again(start_server, tmp_path) -> None:
    """The server already has the cid (the ack was lost with the client): it is not repeated,
    whether the replay shows it or the resend is answered with the original."""
    for backlog in (50, 0):
        server = await start_server(backlog=backlog)
        url = server.url + "/lobby"
        before = await JsonClient.connect(url, "alice")
        original = await before.say("said once", cid="persisted-1")
        await before.close()
        store = OutboxStore(url, "alice", tmp_path)
        store.save([Outgoing("persisted-1", "said once")])
        client = ChatClient(url, "alice", lambda update: None, backoff=Backoff(0.02, 0.1))
        client.attach_store(store)
        await run_until_empty(client)
        assert client.outbox == {}
        probe = await JsonClient.connect(url, "probe", since=0, epoch=before.welcome["epoch"])
        assert [m["id"] for m in probe.welcome["history"]] == [original["id"]]
        await probe.close()


async def test_the_app_delivers_what_was_typed_before_it_was_closed(chat_server, tmp_path) -> None:
    """Type while the server is unreachable, quit, start again: the line is delivered once."""
    port = chat_server.port
    await chat_server.stop()
    url = f"ws://127.0.0.1:{port}/lobby"
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await type_line(pilot, "written before quitting")
        await until(pilot, lambda: len(outbox(app)) == 1)
    from tui_chat_server import ChatServer, ServerConfig

    async with ChatServer(ServerConfig(port=port, db=":memory:", rate=0)):
        again = make_app(url, "alice")
        async with again.run_test(size=SIZE) as pilot:
            await online(pilot)
            await until(pilot, lambda: "alice written before quitting" in log_text(again))
            await until(pilot, lambda: outbox(again) == ())
            assert log_text(again).count("written before quitting") == 1
            await again.client.stop()


async def test_an_unwritable_data_directory_is_reported_as_such(url, tmp_path,
                                                                monkeypatch) -> None:
    """If the outbox cannot be kept on disk, the app says why (not that another client
    holds it), keeps pending messages in memory, and chats on."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    app = make_app(url, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert "Cannot keep pending messages on disk" in log_text(app)
        assert "Another tui-chat" not in log_text(app) and app.client.store is None
        await type_line(pilot, "still works")
        await until(pilot, lambda: "alice still works" in log_text(app))


def test_letting_go_of_a_store_removes_its_lock_file(tmp_path) -> None:
    """The outbox directory does not fill with a lock file for every room and nickname ever
    used: each goes when its client lets go (and with nothing pending, so does the store)."""
    for nick in ("alice", "bob", "carol"):
        store = OutboxStore("ws://h/lobby", nick, tmp_path)
        assert store.claim()
        store.save([Outgoing("c-1", "pending")])
        store.save([])
        store.release()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_removed_as_another_client_opens_it_is_not_held_twice(
        tmp_path, monkeypatch) -> None:
    """A client that opened the lock file just as its holder let go (and removed it) does
    not hold the removed file: it locks the one now at that path, so a third is refused."""
    import fcntl as real

    first = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert first.claim()
    flock, calls = real.flock, []

    def let_go_first_then_flock(descriptor: int, operation: int) -> None:
        if not calls:  # between the second's open and its flock, the first lets go
            first.release()
        calls.append(descriptor)
        flock(descriptor, operation)

    monkeypatch.setattr(real, "flock", let_go_first_then_flock)
    second = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert second.claim()
    monkeypatch.setattr(real, "flock", flock)
    assert len(calls) == 2, "the second locked the removed file first, then the new one"
    assert not OutboxStore("ws://h/lobby", "alice", tmp_path).claim()
    second.release()


def test_a_store_follows_a_new_nickname_unless_another_client_holds_it(tmp_path) -> None:
    """Pending messages move to the new nickname's file (a later run under it finds them),
    but not onto a store another running client holds."""
    pending = [Outgoing("a-1", "typed as alice, then renamed")]
    store = OutboxStore("ws://h/lobby", "alice", tmp_path)
    assert store.claim()
    store.save(pending)
    assert store.follow("zed", pending)
    assert OutboxStore("ws://h/lobby", "zed", tmp_path).load() == pending
    assert OutboxStore("ws://h/lobby", "alice", tmp_path).load() == []
    held = OutboxStore("ws://h/lobby", "bob", tmp_path)
    assert held.claim()
    assert not store.follow("bob", pending)
    assert OutboxStore("ws://h/lobby", "zed", tmp_path).load() == pending


async def test_the_client_keeps_its_outbox_under_the_name_it_is_known_by(chat_server,
                                                                        tmp_path) -> None:
    """After a rename, what is pending is on disk under the new nickname."""
    url = chat_server.url + "/lobby"
    client = ChatClient(url, "alice", lambda update: None, backoff=Backoff(0.02, 0.1))
    store = OutboxStore(url, "alice", tmp_path)
    assert store.claim()
    client.attach_store(store)
    task = asyncio.create_task(client.run())
    try:
        for _ in range(250):
            if client.state is State.ONLINE:
                break
            await asyncio.sleep(0.02)
        client.rename("zed")
        for _ in range(250):
            if client.nick == "zed":
                break
            await asyncio.sleep(0.02)
        assert store.path == OutboxStore(url, "zed", tmp_path).path
    finally:
        await client.stop()
        await task
        store.release()


async def test_renamed_away_from_a_name_whose_outbox_is_held_the_app_keeps_one_again(
        chat_server) -> None:
    """Started under a name whose outbox another tui-chat holds, the app keeps pending
    messages in memory; after /nick to a free name it keeps them on disk under that name,
    so a line typed while the server is down survives quitting."""
    url = chat_server.url + "/lobby"
    holder, app, said = app_whose_outbox_is_held(url)
    async with app.run_test(size=SIZE) as pilot:
        await online(pilot)
        assert app.client.store is None
        await type_line(pilot, "/nick alice2")
        await until(pilot, lambda: "now saved on disk (as alice2's)" in " ".join(
            log_text(app).split()))
        await chat_server.stop()
        await type_offline(pilot, "written offline")
        assert [o.text for o in OutboxStore(url, "alice2").load()] == ["written offline"]
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running)
    holder.release()
    assert said[0].endswith(f"join {url} as alice2."), said


@pytest.mark.parametrize("quit_by", ["ctrl+q", "SIGTERM"])
async def test_once_the_other_tui_chat_has_let_go_quitting_keeps_what_is_pending(
        unused_port, quit_by: str) -> None:
    """The outbox was held by another tui-chat at start, which has quit since: Ctrl+Q (or
    `kill`, as it quits as Ctrl+Q does) takes the outbox, keeps the pending line there and
    quits at once."""
    url = f"ws://127.0.0.1:{unused_port}/lobby"
    holder, app, said = app_whose_outbox_is_held(url)
    async with app.run_test(size=SIZE) as pilot:
        await type_offline(pilot, "written offline")
        holder.release()
        if quit_by == "ctrl+q":
            await pilot.press("ctrl+q")
        else:  # (the app's handler, installed while it runs, takes it: not pytest's end)
            os.kill(os.getpid(), signal.SIGTERM)
        await until(pilot, lambda: not app.is_running)
    assert "1 message not yet acknowledged by the server was kept" in said[0]
    assert [o.text for o in OutboxStore(url, "alice").load()] == ["written offline"]
