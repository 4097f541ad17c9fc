"""The SQLite history: ids, retention, backlog, `since`, epochs, dedup, durability."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from tui_chat_server.app import default_db_path
from tui_chat_server.database import StorageError
from tui_chat_server.history import History
from tests.helpers import fill



@pytest.fixture
async def memory():
    history = History(":memory:", limit=100)
    yield history
    await history.close()


async def test_ids_strictly_increase_per_room(memory) -> None:
    """Each room numbers its messages 1, 2, 3, ... independently."""
    ids = [(await memory.submit(room, "a", "a", "x", "chat", None)).message.id for room in "aab"]
    assert ids == [1, 2, 1]


async def test_only_the_last_limit_messages_are_kept() -> None:
    """Retention drops the oldest messages; ids keep counting."""
    history = History(":memory:", limit=3)
    await fill(history, "r", 5)
    backlog = history.backlog("r", None, None, count=10)
    assert [m.text for m in backlog.messages] == ["m3", "m4", "m5"]
    assert backlog.recovered is None


async def test_backlog_without_since_is_the_most_recent_count(memory) -> None:
    """A newcomer gets the last `count` messages."""
    await fill(memory, "r", 10)
    assert [m.id for m in memory.backlog("r", None, None, 3).messages] == [8, 9, 10]


async def test_since_in_the_same_epoch_sends_only_the_gap(memory) -> None:
    """With `since` from this epoch, exactly the missed messages come back, recovered."""
    await fill(memory, "r", 10)
    backlog = memory.backlog("r", 7, memory.epoch, 3)
    assert [m.id for m in backlog.messages] == [8, 9, 10]
    assert backlog.recovered is True
    assert memory.backlog("r", 10, memory.epoch, 3).messages == ()


async def test_since_older_than_retention_is_not_recovered() -> None:
    """A gap that starts before the oldest kept message is flagged as not recovered."""
    history = History(":memory:", limit=3)
    await fill(history, "r", 10)
    backlog = history.backlog("r", 2, history.epoch, 50)
    assert [m.id for m in backlog.messages] == [8, 9, 10]
    assert backlog.recovered is False
    assert history.backlog("r", 7, history.epoch, 50).recovered is True


async def test_a_gap_past_retention_gets_the_recent_backlog_not_everything_kept() -> None:
    """When the gap cannot be filled, the client gets the last `count` messages, as a
    newcomer would, not the whole retained history."""
    history = History(":memory:", limit=100)
    await fill(history, "r", 150)
    backlog = history.backlog("r", 1, history.epoch, 5)
    assert [m.id for m in backlog.messages] == [146, 147, 148, 149, 150]
    assert backlog.recovered is False


async def test_since_past_the_newest_id_is_not_recovered(memory) -> None:
    """A `since` beyond every id this epoch has handed out in the room (a database restored
    from a backup) is not honoured: the recent backlog, recovered False."""
    await fill(memory, "r", 5)
    backlog = memory.backlog("r", 8, memory.epoch, 3)
    assert [m.id for m in backlog.messages] == [3, 4, 5]
    assert backlog.recovered is False
    assert memory.backlog("r", 5, memory.epoch, 3).recovered is True


async def test_since_from_another_epoch_is_not_recovered(memory) -> None:
    """A `since` from another history gets the recent backlog, recovered False."""
    other = History(":memory:", limit=100)
    assert other.epoch != memory.epoch
    await fill(memory, "r", 5)
    backlog = memory.backlog("r", 99, other.epoch, 2)
    assert [m.id for m in backlog.messages] == [4, 5]
    assert backlog.recovered is False


async def test_backlog_stops_at_upto(memory) -> None:
    """Messages past `upto` (stored but not yet delivered live) are left out."""
    await fill(memory, "r", 5)
    assert [m.id for m in memory.backlog("r", None, None, 10, upto=3).messages] == [1, 2, 3]
    assert [m.id for m in memory.backlog("r", 1, memory.epoch, 10, upto=3).messages] == [2, 3]


async def test_a_backlog_too_long_for_one_page_says_more_follows(memory) -> None:
    """A backlog holds what fits in a welcome and says whether more follows; `page` reads
    the rest: messages that start within its characters, and at least one."""
    for number in range(1, 41):
        await memory.submit("r", "alice", "alice", f"{number} " + "x" * 20_000, "chat", None)
    backlog = memory.backlog("r", 0, memory.epoch, 50)
    # Each counts 20,088 characters: the 14th starts within 256 KiB, the 15th would not.
    assert [m.id for m in backlog.messages] == list(range(1, 15))
    assert backlog.more and backlog.recovered and backlog.upto == 40
    assert [m.id for m in memory.page("r", 14, 40, count=64, chars=50_000)] == [15, 16, 17]
    assert [m.id for m in memory.page("r", 14, 40, count=2, chars=10**6)] == [15, 16]
    assert [m.id for m in memory.page("r", 14, 40, chars=1)] == [15]
    assert memory.page("r", 40, 40) == ()
    assert not memory.backlog("r", 30, memory.epoch, 50).more


class Reader:
    """A catch-up as history sees one: how far it has sent."""

    after = 0


async def test_retention_trims_up_to_where_a_catch_up_has_read_and_no_further(tmp_path) -> None:
    """A catch-up reading a room keeps what it has yet to send, not the whole room: what it
    has sent is trimmed as usual, and once it is released, the rest too."""
    history = History(str(tmp_path / "h.db"), limit=10)
    await fill(history, "r", 30)  # ids 21 to 30 kept
    reader = Reader()
    reader.after = 22  # it has sent up to id 22
    history.hold("r", reader)
    await fill(history, "r", 200, start=31)
    assert [m.id for m in history.page("r", 0, 230, count=3)] == [23, 24, 25]
    reader.after = 26
    await fill(history, "r", 200, start=231)
    assert [m.id for m in history.page("r", 0, 430, count=3)] == [27, 28, 29]
    history.release("r", reader)
    await fill(history, "r", 200, start=431)
    assert history.page("r", 0, 630, count=1)[0].id > 500  # the limit, and a chunk
    await history.close()


async def test_a_repeated_cid_returns_the_original_and_stores_nothing(memory) -> None:
    """The same sender and cid give back the first message; another sender's cid is separate."""
    first = await memory.submit("r", "alice", "alice", "hello", "chat", "c1")
    again = await memory.submit("r", "alice", "alice", "hello again", "chat", "c1")
    other = await memory.submit("r", "bob", "bob", "mine", "chat", "c1")
    assert not first.duplicate and again.duplicate and not other.duplicate
    assert again.message == first.message
    assert [m.text for m in memory.backlog("r", None, None, 10).messages] == ["hello", "mine"]


async def test_a_cid_repeated_while_its_commit_runs_is_still_one_message(tmp_path) -> None:
    """Two submits of one cid in the same burst store one message."""
    history = History(str(tmp_path / "h.db"), limit=100)
    results = await asyncio.gather(*(history.submit("r", "a", "a", "x", "chat", "same")
                                     for _ in range(5)))
    assert len({r.message.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    await history.close()


async def test_a_burst_is_committed_in_few_transactions(tmp_path) -> None:
    """500 messages submitted at once share transactions instead of one commit each."""
    history = History(str(tmp_path / "h.db"), limit=1000)
    await asyncio.gather(*(history.submit("r", "a", "a", f"m{n}", "chat", None) for n in range(500)))
    assert history.commits < 50
    await history.close()


async def test_history_and_epoch_survive_a_restart(tmp_path) -> None:
    """A file database keeps messages, ids and its epoch across restarts."""
    path = str(tmp_path / "h.db")
    first = History(path, limit=100)
    await fill(first, "r", 3)
    epoch = first.epoch
    await first.close()
    second = History(path, limit=100)
    assert second.epoch == epoch
    assert [m.text for m in second.backlog("r", 1, epoch, 10).messages] == ["m2", "m3"]
    assert (await second.submit("r", "a", "a", "next", "chat", None)).message.id == 4
    await second.close()


async def test_ids_keep_increasing_even_when_nothing_is_retained(tmp_path) -> None:
    """With --history 0 no text is kept, not even on disk until some later trim (before,
    up to 99 were), but ids never restart within the epoch."""
    path = str(tmp_path / "h.db")
    first = History(path, limit=0)
    await fill(first, "r", 3)
    assert first._reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    await first.close()
    second = History(path, limit=0)
    assert second.backlog("r", None, None, 10).messages == ()
    assert (await second.submit("r", "a", "a", "x", "chat", None)).message.id == 4
    await second.close()


async def test_two_servers_cannot_share_one_database(tmp_path) -> None:
    """The second opener of a database file gets a clear error."""
    path = str(tmp_path / "h.db")
    first = History(path)
    with pytest.raises(StorageError, match="in use by another tui-chat server"):
        History(path)
    await first.close()


async def test_a_file_that_is_not_a_database_is_let_go_of_at_once(tmp_path) -> None:
    """Opening a file that is not a database fails with a clear error and closes what it
    opened: its lock is free while that error is still held (before, only once the error
    and the half-made history it kept alive were freed)."""
    path = tmp_path / "h.db"
    path.write_bytes(b"this is no SQLite database" * 100)
    with pytest.raises(StorageError, match="not a database") as refused:
        History(str(path))
    path.unlink()
    history = History(str(path))  # with the error still held: no "in use"
    del refused  # (held until here)
    await history.close()


async def test_retention_trims_in_chunks_but_never_shows_more_than_the_limit(tmp_path) -> None:
    """Old rows are deleted a tenth of the limit at a time (not in every commit); reads never
    see them."""
    history = History(str(tmp_path / "h.db"), limit=200)
    for start in range(0, 1000, 50):
        await asyncio.gather(*(history.submit("r", "a", "a", f"m{n}", "chat", None)
                               for n in range(start, start + 50)))
    stored = history._reader.execute("SELECT count(*) FROM messages").fetchone()[0]
    assert 200 <= stored <= 200 + 20 + 50
    assert len(history.backlog("r", None, None, 10_000).messages) == 200
    assert len(history.backlog("r", 0, history.epoch, 10_000).messages) == 200
    await history.close()


async def test_sync_modes_choose_fsync_per_commit_or_not(tmp_path) -> None:
    """--sync full fsyncs every commit; normal leaves it to checkpoints; both keep data."""
    for mode, level in (("full", 2), ("normal", 1)):
        path = str(tmp_path / f"{mode}.db")
        history = History(path, sync=mode)
        assert history._writer.execute("PRAGMA synchronous").fetchone()[0] == level
        await fill(history, "r", 3)
        await history.close()
        again = History(path, sync=mode)
        assert len(again.backlog("r", None, None, 10).messages) == 3
        await again.close()


async def test_a_batch_is_stored_exactly_as_sent(tmp_path) -> None:
    """Every field of every message in one batch comes back exactly: quotes, backslashes,
    newlines, astral characters, no cid."""
    history = History(str(tmp_path / "h.db"))
    texts = ['say "hi"', "back\\slash \\u0041", "two\nlines", "🎉 漢字 é", "[b]x[/b]", "'; --"]
    appends = [history.submit("r", f"n{i}", f"n{i}", text, "me" if i % 2 else "chat",
                              None if i % 3 == 0 else f"c{i}") for i, text in enumerate(texts)]
    stored = [outcome.message for outcome in await asyncio.gather(*appends)]
    assert history.commits == 1  # one batch
    assert history.backlog("r", None, None, 50).messages == tuple(stored)
    assert [m.text for m in stored] == texts and stored[0].cid is None and stored[1].cid == "c1"
    await history.close()


async def test_a_poster_hears_of_a_failed_commit_before_the_futures_callbacks_run(
        tmp_path) -> None:
    """`on_failure` is called as the commit fails, before any callback of the message's
    future: a session can stop posting before anything else it sends is submitted (and
    stored ahead of the message that failed)."""
    history = failing_history(tmp_path)
    order: list[str] = []
    failed = history.submit("lobby", "alice", "alice", "hi", "chat", "c1",
                            on_failure=lambda: order.append("told"))
    failed.add_done_callback(lambda _: order.append("callback"))
    with pytest.raises(StorageError, match="disk trouble"):
        await failed
    await asyncio.sleep(0)
    assert order == ["told", "callback"]
    await history.close()


async def test_a_resend_during_the_commit_hears_of_its_failure_at_once_too(tmp_path) -> None:
    """A cid sent again while its first copy is being committed shares that commit's fate,
    and its poster is told of a failure as soon as the first one's is."""
    history = failing_history(tmp_path)
    order: list[str] = []
    first = history.submit("lobby", "alice", "alice", "hi", "chat", "c1",
                           on_failure=lambda: order.append("first told"))
    again = history.submit("lobby", "alice", "alice", "hi", "chat", "c1",
                           on_failure=lambda: order.append("again told"))
    again.add_done_callback(lambda _: order.append("callback"))
    for future in (first, again):
        with pytest.raises(StorageError):
            await future
    await asyncio.sleep(0)
    assert order == ["first told", "again told", "callback"]
    await history.close()


@pytest.mark.parametrize("db", [":memory:", "file"])
async def test_a_resend_during_the_commit_is_answered_in_the_order_it_came(
        tmp_path, db: str) -> None:
    """A, A again, B, C, all before the commit: they are answered in that order (the
    sender's acknowledgements follow the order of its messages), the repeat as A's copy."""
    history = History(str(tmp_path / "h.db") if db == "file" else db)
    answered: list[str] = []
    for label, cid in (("A", "a"), ("A again", "a"), ("B", "b"), ("C", "c")):
        future = history.submit("lobby", "alice", "alice", label, "chat", cid)
        future.add_done_callback(lambda done, label=label: answered.append(
            f"{label}: {done.result().message.text}{' (copy)' * done.result().duplicate}"))
    while len(answered) < 4:
        await asyncio.sleep(0.01)
    assert answered == ["A: A", "A again: A (copy)", "B: B", "C: C"]
    await history.close()


def failing_history(tmp_path) -> History:
    """A history in a real database file where every insert fails (as a full disk would)."""
    import sqlite3

    db = str(tmp_path / "h.db")
    history = History(db)
    fault = sqlite3.connect(db, isolation_level=None)
    fault.execute("CREATE TRIGGER fail BEFORE INSERT ON messages"
                  " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    fault.close()
    return history


async def test_a_new_database_is_readable_by_its_owner_alone(tmp_path) -> None:
    """Messages and password hashes are nobody else's business: a database the server
    creates, its WAL, shared memory and lock files are 0600 whatever the umask, in a data
    directory of 0700; a database that exists keeps the mode its owner gave it."""
    saved = os.umask(0o022)
    try:
        history = History(str(tmp_path / "new.db"))
        await history.submit("r", "alice", "alice", "private", "chat", None)
        existing = tmp_path / "old.db"
        existing.touch(mode=0o640)
        await History(str(existing)).close()
        data_dir = Path(default_db_path()).parent
    finally:
        os.umask(saved)
    modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in tmp_path.iterdir()
             if path.name.startswith("new.db")}
    await history.close()
    assert modes == dict.fromkeys(["new.db", "new.db-wal", "new.db-shm", "new.db.lock"], "0o600")
    assert oct(stat.S_IMODE(existing.stat().st_mode)) == "0o640"
    assert oct(stat.S_IMODE(data_dir.stat().st_mode)) == "0o700"
