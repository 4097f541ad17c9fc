"""Registered nicknames: their passwords in both dialects, the wait after wrong guesses,
and `tui-chat-server user` to manage them."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tui_chat_server.accounts import Accounts
from tests.apptools import SIZE, log_text, make_app, until
from tests.helpers import JsonClient, PlainClient, tui_chat

pytestmark = pytest.mark.usefixtures("every_log_line")


async def test_a_registered_nickname_needs_its_password(start_server, accounts_db) -> None:
    """Without or with a wrong password (half a surrogate pair too) the name is refused;
    with it, the user joins."""
    server = await start_server(db=accounts_db)
    client = await JsonClient.connect(server.url)
    await client.send(type="hello", nick="Alice")
    assert (await client.expect("error"))["code"] == "nick_registered"
    for wrong in ("wrong password", "\ud800"):
        await client.send(type="hello", nick="alice", password=wrong)
        assert (await client.expect("error"))["code"] == "bad_password"
    await client.send(type="hello", nick="alice", password="correct horse")
    assert (await client.expect("welcome"))["nick"] == "alice"
    free = await JsonClient.connect(server.url, "bob")  # unregistered names work as before
    await free.send(type="nick", nick="ALICE")
    assert (await free.expect("error"))["code"] == "nick_registered"
    await free.send(type="nick", nick="John", password="Smith")  # /nick John Smith
    error = await free.expect("error")
    assert error["code"] == "nick_invalid" and "not registered" in error["message"]
    await client.close()
    await free.close()


async def test_an_address_guessing_passwords_waits_longer_after_each_wrong_one(
        start_server, accounts_db) -> None:
    """After three wrong passwords from one address the next is not even checked until a
    wait is over (the right one too), in either dialect; then the right one gets in."""
    server = await start_server(db=accounts_db)
    guesser = await JsonClient.connect(server.url)
    for guess in ("one", "two", "three"):
        await guesser.send(type="hello", nick="alice", password=guess)
        assert (await guesser.expect("error"))["message"] == "Wrong password for 'alice'."
    await guesser.send(type="hello", nick="alice", password="correct horse")
    refusal = await guesser.expect("error")
    assert refusal == {"type": "error", "code": "bad_password", "message":
                       "Too many wrong passwords from your address: wait 1 s before trying again."}
    plain = await PlainClient.connect(server.url)
    await plain.send("alice correct horse")
    assert "Too many wrong passwords" in await plain.recv()
    failures = server.hub.accounts.failures
    now = failures.clock
    failures.clock = lambda: now() + 1.1  # the wait is over, without waiting for it
    await guesser.send(type="hello", nick="alice", password="correct horse")
    assert (await guesser.expect("welcome"))["nick"] == "alice"
    await asyncio.gather(guesser.close(), plain.close())


async def test_guesses_sent_all_at_once_are_held_up_like_guesses_in_a_row(
        start_server, accounts_db) -> None:
    """Twelve connections from one address guessing at the same moment get three passwords
    checked, as three in a row would; the rest are told to wait."""
    server = await start_server(db=accounts_db)
    guessers = [await JsonClient.connect(server.url) for _ in range(12)]
    await asyncio.gather(*(guesser.send(type="hello", nick="alice", password=f"guess {number}")
                           for number, guesser in enumerate(guessers)))
    answers = [(await guesser.expect("error"))["message"] for guesser in guessers]
    assert sum(answer == "Wrong password for 'alice'." for answer in answers) == 3, answers
    assert sum(answer.startswith("Too many wrong passwords") for answer in answers) == 9
    await asyncio.gather(*(guesser.close() for guesser in guessers))


async def test_logging_in_to_your_own_name_does_not_clear_guesses_at_another(
        start_server, accounts_db) -> None:
    """Two wrong guesses at alice, then mallory's own right password, from one address:
    the guesses still count, so the next guess at alice waits."""
    accounts = Accounts(accounts_db)
    accounts.add("mallory", "mallory's own")
    accounts.close()
    server = await start_server(db=accounts_db)
    guesser = await JsonClient.connect(server.url)
    for guess in ("one", "two"):
        await guesser.send(type="hello", nick="alice", password=guess)
        assert (await guesser.expect("error"))["message"] == "Wrong password for 'alice'."
    mallory = await JsonClient.connect(server.url, "mallory", password="mallory's own")
    await guesser.send(type="hello", nick="alice", password="three")
    assert (await guesser.expect("error"))["message"].startswith("Too many wrong passwords")
    await asyncio.gather(guesser.close(), mallory.close())


async def test_leaving_while_the_password_is_checked_leaves_no_ghost(start_server,
                                                                     accounts_db) -> None:
    """A client that disconnects while its password is being checked never joins: the name
    stays free for its owner and nobody sees a member that is not there."""
    server = await start_server(db=accounts_db)
    bob = await JsonClient.connect(server.url, "bob")
    quitter = await JsonClient.connect(server.url)
    await quitter.send(type="hello", nick="alice", password="correct horse")
    quitter.connection.transport.abort()  # gone before scrypt (~50 ms) is done
    renamer = await JsonClient.connect(server.url, "carol")
    await bob.expect("presence")
    await renamer.send(type="nick", nick="alice", password="correct horse")
    renamer.connection.transport.abort()
    assert (await bob.expect("presence"))["event"] == "leave"
    await asyncio.sleep(0.3)  # both checks are long done
    assert server.hub.rooms.find("lobby").users() == ("bob",)
    owner = await JsonClient.connect(server.url, "alice", password="correct horse")
    assert owner.welcome["users"] == ["alice", "bob"]
    await asyncio.gather(owner.close(), bob.close())


async def test_the_app_says_how_to_give_a_registered_nicknames_password(start_server,
                                                                         accounts_db) -> None:
    """Joining under a registered nickname without its password tells how to give it."""
    server = await start_server(db=accounts_db)
    app = make_app(server.url + "/lobby", "alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "is registered" in log_text(app))
        said = " ".join(log_text(app).split())
        assert "is registered: give its password to use it." in said
        assert ("— Use /nick NAME PASSWORD (or --password-file), or choose another nickname with"
                " /nick NAME.") in said


async def test_send_says_how_to_give_a_registered_nicknames_password(start_server, accounts_db,
                                                                     tmp_path) -> None:
    """`tui-chat send` under a registered nickname with a wrong password says to give the
    right one (--password-file), not only to choose another name."""
    server = await start_server(db=accounts_db)
    wrong = tmp_path / "password"
    wrong.write_text("not the password\n")
    status, _, err = await tui_chat("send", f"{server.url}/lobby", "hi", "--nick", "alice",
                                    "--password-file", str(wrong))
    assert status == 1
    assert err == ("tui-chat send: Wrong password for 'alice'. Use --password-file PATH (or"
                   " TUI_CHAT_PASSWORD), or choose another nickname with --nick NAME.\n")


async def test_plain_clients_log_in_with_name_and_password(start_server, accounts_db,
                                                         caplog) -> None:
    """Plain clients send `NAME PASSWORD` as the first line; a space in an unregistered name
    is still an error, not a password, and what follows it (a password with the name
    mistyped) is neither repeated to the client nor logged."""
    server = await start_server(db=accounts_db)
    plain = await PlainClient.connect(server.url)
    await plain.send("alice")
    assert "registered" in await plain.recv()
    await plain.send("alice wrong")
    assert "Wrong password" in await plain.recv()
    await plain.send("alice correct horse")
    assert (await plain.recv()).startswith("[Server]: Welcome to lobby, alice!")
    other = await PlainClient.connect(server.url)
    await other.send("alcie correct horse")
    assert await other.recv() == ("[Server]: 'alcie' is not registered, so it takes no password"
                                  " (a nickname cannot contain spaces). Send your nickname again"
                                  " (NAME, or NAME PASSWORD for a registered one).")
    await other.send("john")
    assert (await other.recv()).startswith("[Server]: Welcome to lobby, john!")
    await other.send("/nick zed secret")
    assert await other.recv() == ("[Server]: 'zed' is not registered, so it takes no password"
                                  " (a nickname cannot contain spaces).")
    # (websockets' own DEBUG lines copy frames: the server never turns them on, setup_logging)
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("tui_chat"))
    assert "tui_chat.server" in {r.name for r in caplog.records}
    assert "horse" not in ours and "secret" not in ours
    await plain.close()
    await other.close()


def test_user_command_adds_lists_and_removes(tmp_path) -> None:
    """`tui-chat-server user add/list/remove` manage the database's registered names; adding
    a name registered already says that it changes its password; a password too short, or
    starting or ending with a space (blank too), is refused."""
    db = str(tmp_path / "chat.db")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tui_chat_server", "user", "--db", db, *args],
                              input=stdin, capture_output=True, text=True, timeout=30)

    added = run("add", "alice", "--password-stdin", stdin="long enough\n")
    assert added.returncode == 0 and added.stdout == "Registered alice.\n"
    again = run("add", "Alice", "--password-stdin", stdin="longer still\n")
    assert again.returncode == 0 and again.stdout == (  # not a second account: a new password
        "Alice was registered already: its password is changed (written Alice now, alice"
        " before).\n")
    assert run("list").stdout.split() == ["Alice"]
    short = run("add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    for padded in ("  password123  \n", "          \n"):  # --password-file could not give it
        refused = run("add", "bob", "--password-stdin", stdin=padded)
        assert refused.returncode == 1 and "cannot start or end with a space" in refused.stderr
    assert run("add", "bad name", "--password-stdin", stdin="long enough\n").returncode == 1
    removed = run("remove", "ALICE")
    assert removed.returncode == 0 and removed.stdout == "Removed Alice.\n"  # as registered
    assert run("list").stdout.split() == []
    assert Accounts(db).find("alice") is None
