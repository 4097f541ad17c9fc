"""A resend is recognised after retention has dropped its original: `retired_cids`."""

from __future__ import annotations

import asyncio
import sqlite3

from tui_chat_server.history import History

from tests.helpers import JsonClient, fill, stored

KEY = "alice-secret-key-0123"



async def test_a_resend_after_retention_dropped_its_original_gets_the_original_back() -> None:
    """Once the original is past `--history`, a resend (same sender, cid and text) still
    resolves to it, id, time and name included, and stores nothing."""
    history = History(":memory:", limit=3)
    first = await history.submit("r", "alice", "key-a", "hello", "chat", "c1")
    await fill(history, "r", 150)  # past the limit and a trimming chunk
    assert all(m.id != first.message.id for m in history.page("r", 0, 1_000, count=1_000))
    again = await history.submit("r", "alice2", "key-a", "hello", "chat", "c1")
    assert again.duplicate and again.message == first.message
    assert history.last_id("r") == 152  # the resend's own id stays unused
    await history.close()


async def test_a_retired_cid_sent_with_other_text_is_not_taken_for_a_resend() -> None:
    """Only the text's digest is kept: a cid reused for other text (or by another sender)
    is told apart, so the server can refuse it (`cid_reused`) or store it."""
    history = History(":memory:", limit=0)
    first = await history.submit("r", "alice", "key-a", "hello", "chat", "c1")
    reused = await history.submit("r", "alice", "key-a", "other text", "chat", "c1")
    assert reused.duplicate and reused.message.id == first.message.id
    assert reused.message.text != "other text"
    elsewhere = await history.submit("r", "bob", "key-b", "hello", "chat", "c1")
    assert not elsewhere.duplicate
    await history.close()


async def test_retired_cids_are_forgotten_once_they_are_cids_kept_ms_old(tmp_path) -> None:
    """After `cids_kept_ms` a retired cid is dropped at the next trim, and the same cid is
    a new message again; the text itself was never kept, only its digest."""
    path = str(tmp_path / "h.db")
    history = History(path, limit=0, cids_kept_ms=300)
    first = await history.submit("r", "alice", "key-a", "secret words", "chat", "c1")
    database = sqlite3.connect(path)
    rows = database.execute("SELECT cid, digest FROM retired_cids").fetchall()
    assert [cid for cid, _ in rows] == ["c1"] and b"secret" not in rows[0][1]
    assert database.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    await asyncio.sleep(0.4)
    await fill(history, "r", 101)  # the next trim, a chunk later
    assert database.execute("SELECT count(*) FROM retired_cids").fetchone() == (0,)
    database.close()
    again = await history.submit("r", "alice", "key-a", "secret words", "chat", "c1")
    assert not again.duplicate and again.message.id > first.message.id
    await history.close()


async def test_retired_cids_survive_a_restart(tmp_path) -> None:
    """A server restarted after retention dropped the original still recognises a resend."""
    path = str(tmp_path / "h.db")
    history = History(path, limit=0)
    first = await history.submit("r", "alice", "key-a", "hello", "chat", "c1")
    await history.close()
    history = History(path, limit=0)
    again = await history.submit("r", "alice", "key-a", "hello", "chat", "c1")
    assert again.duplicate and again.message == first.message
    await history.close()


async def test_with_no_history_kept_a_resend_is_still_delivered_once(start_server, clients) -> None:
    """`--history 0`: the client that lost its acknowledgement and resends after rejoining
    gets the original back; the room sees the message once; other text under the cid is
    refused with `cid_reused`."""
    server = await start_server(history=0)
    url = f"ws://127.0.0.1:{server.port}/lobby"

    async def join(nick: str, **hello: object) -> JsonClient:
        clients.append(client := await JsonClient.connect(url, nick, **hello))
        return client

    bob = await join("bob")
    alice = await join("alice", sender_key=KEY)
    await bob.expect("presence")
    original = await alice.say("only once", cid="k1")
    assert (await bob.expect("message"))["text"] == "only once"
    await alice.close()
    await bob.expect("presence")
    again = await join("alice", sender_key=KEY)
    await bob.expect("presence")
    answer = await again.say("only once", cid="k1")
    assert (answer["id"], answer["ts"], answer["cid"]) == (
        original["id"], original["ts"], "k1")
    await again.send(type="say", text="something new", cid="k1")
    assert (await again.expect("error"))["code"] == "cid_reused"
    await again.say("the next one", cid="k2")
    assert (await bob.expect("message"))["text"] == "the next one"  # not "only once" again
    assert stored(server) == []
