"""The in-memory history: ids, retention, backlog, `since` and epochs."""

from __future__ import annotations

from server.history import MemoryHistory


async def fill(history: MemoryHistory, room: str, count: int) -> None:
    for number in range(count):
        await history.append(room, "alice", f"m{number + 1}", "chat", None)


async def test_ids_strictly_increase_per_room() -> None:
    """Each room numbers its messages 1, 2, 3, ... independently."""
    history = MemoryHistory(limit=10)
    ids = [(await history.append(room, "a", "x", "chat", None)).id for room in "aab"]
    assert ids == [1, 2, 1]


async def test_only_the_last_limit_messages_are_kept() -> None:
    """Retention drops the oldest messages; ids keep counting."""
    history = MemoryHistory(limit=3)
    await fill(history, "r", 5)
    backlog = history.backlog("r", None, None, count=10)
    assert [m.text for m in backlog.messages] == ["m3", "m4", "m5"]
    assert backlog.recovered is None


async def test_backlog_without_since_is_the_most_recent_count() -> None:
    """A newcomer gets the last `count` messages."""
    history = MemoryHistory(limit=100)
    await fill(history, "r", 10)
    assert [m.id for m in history.backlog("r", None, None, 3).messages] == [8, 9, 10]


async def test_since_in_the_same_epoch_sends_only_the_gap() -> None:
    """With `since` from this epoch, exactly the missed messages come back, recovered."""
    history = MemoryHistory(limit=100)
    await fill(history, "r", 10)
    backlog = history.backlog("r", 7, history.epoch, 3)
    assert [m.id for m in backlog.messages] == [8, 9, 10]
    assert backlog.recovered is True
    assert history.backlog("r", 10, history.epoch, 3).messages == ()


async def test_since_older_than_retention_is_not_recovered() -> None:
    """A gap that starts before the oldest kept message is flagged as not recovered."""
    history = MemoryHistory(limit=3)
    await fill(history, "r", 10)
    backlog = history.backlog("r", 2, history.epoch, 50)
    assert [m.id for m in backlog.messages] == [8, 9, 10]
    assert backlog.recovered is False


async def test_since_from_another_epoch_is_not_recovered() -> None:
    """After a restart (new epoch) `since` no longer applies: recent backlog, recovered False."""
    old, new = MemoryHistory(limit=100), MemoryHistory(limit=100)
    assert old.epoch != new.epoch
    await fill(new, "r", 5)
    backlog = new.backlog("r", 99, old.epoch, 2)
    assert [m.id for m in backlog.messages] == [4, 5]
    assert backlog.recovered is False
