"""Message history in SQLite (WAL): grouped commits, cid deduplication and a stable epoch.

A message is acknowledged only after the transaction holding it has committed. Messages that
arrive while a commit is running wait for the next one, so a burst costs one transaction,
not one per message. The file database commits on a worker thread, so the event loop never
waits for the disk; `:memory:` commits inline.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from tui_chat.protocol import Message, now_ms

from .database import StorageError, connect_database, lock_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (room TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    nick TEXT NOT NULL,
    sender TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    cid TEXT,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_cid ON messages (room, sender, cid)
    WHERE cid IS NOT NULL;
-- The cids of messages retention has dropped, kept for a while (`cids_kept_ms`) so that a
-- resend is still recognised: with the digest of the text, not the text itself.
CREATE TABLE IF NOT EXISTS retired_cids (
    room TEXT NOT NULL,
    sender TEXT NOT NULL,
    cid TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    nick TEXT NOT NULL,
    kind TEXT NOT NULL,
    digest BLOB NOT NULL,
    PRIMARY KEY (room, sender, cid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS retired_cids_by_ts ON retired_cids (ts);
"""
# How long a resend is recognised after retention dropped its original (see retired_cids).
CIDS_KEPT_MS = 7 * 24 * 3600 * 1000
RETIRED_LOOKUP = 300  # cids looked up in `retired_cids` per query
_COLUMNS = "id, ts, nick, text, kind, cid"
_COLUMNS_CIDS_OF_ONE = "id, ts, nick, text, kind, CASE WHEN sender = ? THEN cid END"
# A page of history: what a joining client's welcome holds, then what a catch-up reads at a
# time (catchup.py). A message counts its text, its nickname and 80 characters for the rest;
# a page holds at least one message.
PAGE_ROWS, PAGE_CHARS = 256, 256 * 1024


def text_digest(text: str) -> bytes:
    """What `retired_cids` keeps of a message's text: enough to tell a resend."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


@dataclass(frozen=True, slots=True)
class Backlog:
    """Messages to replay to a joining client; `recovered` says whether `since` was honoured."""

    messages: tuple[Message, ...]  # the first of them (see `more`)
    recovered: bool | None
    upto: int  # the last id it covers: every message after it is still to be delivered
    more: bool = False  # more follow `messages`: read them with History.page


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of `submit`: the message as stored, and whether it was stored before."""

    message: Message
    duplicate: bool


class History:
    """Each room's last `limit` messages. Ids strictly increase per room within an epoch."""

    def __init__(self, path: str = ":memory:", limit: int = 10_000, sync: str = "full",
                 cids_kept_ms: int = CIDS_KEPT_MS) -> None:
        self.path = path
        self.limit = limit
        self.sync = sync
        self.cids_kept_ms = cids_kept_ms
        self.in_memory = path == ":memory:"
        with ExitStack() as opened:  # should any step fail, what was opened is closed at once
            self._lock = lock_database(path)
            if self._lock is not None:
                opened.callback(self._lock.close)
            self._writer = connect_database(path, sync, SCHEMA)
            opened.callback(self._writer.close)
            self._writer.create_function("text_digest", 1, text_digest, deterministic=True)
            # Readers use their own connection: WAL lets them read while a commit is running.
            self._reader = self._writer if self.in_memory else connect_database(path)
            if self._reader is not self._writer:
                opened.callback(self._reader.close)
            self.epoch = self._load_epoch()
            opened.pop_all()
        self._last_ids: dict[str, int] = {}
        self._batch: list[tuple[str, str, Message, asyncio.Future[Stored]]] = []
        self._in_flight: dict[tuple[str, str, str], asyncio.Future[Stored]] = {}
        self._failure_hooks: dict[asyncio.Future[Stored], list[Callable[[], None]]] = {}
        # A cid sent again while its first copy is being stored: answered right after it,
        # before anything submitted later (a callback on it would come after those).
        self._copies: dict[asyncio.Future[Stored], list[asyncio.Future[Stored]]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._next_trim: dict[str, int] = {}  # per room, the id at which to trim again
        self._trimmed: dict[str, int] = {}  # per room, ids up to this are (being) trimmed
        self._readers: dict[str, set[Any]] = {}  # per room, the catch-ups reading it (`hold`)
        self.commits = 0  # transactions committed, for logs and benchmarks

    def _load_epoch(self) -> str:
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row:
            return row[0]
        epoch = secrets.token_hex(8)
        self._writer.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        return epoch

    def last_id(self, room: str) -> int:
        """The last id handed out in `room` (committed or about to be)."""
        last = self._last_ids.get(room)
        if last is None:
            row = self._reader.execute("SELECT last_id FROM rooms WHERE room = ?", (room,)).fetchone()
            last = self._last_ids[room] = row[0] if row else 0
        return last

    def forget(self, room: str) -> None:
        """Drop what is cached about `room`, which nobody is in and nothing of which waits to
        be committed: its last id is read from the database again when next needed."""
        self._last_ids.pop(room, None)
        self._next_trim.pop(room, None)
        self._trimmed.pop(room, None)

    @property
    def committing(self) -> bool:
        """True while a commit is under way on the worker thread."""
        return self._flusher is not None and not self.in_memory

    def submit(
        self, room: str, nick: str, sender: str, text: str, kind: str, cid: str | None,
        on_failure: Callable[[], None] | None = None,
    ) -> asyncio.Future[Stored]:
        """Queue a message for the next commit, numbering it now (so messages keep the order
        they were submitted in); the future resolves once it is committed. If `sender`
        already stored `cid` in this room, it resolves to that message and nothing is stored.
        Should the commit fail, `on_failure` is called at once, before the future (whose
        callbacks run later) is resolved: its poster can stop posting before anything else
        it sends is submitted."""
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[Stored] = loop.create_future()
        if cid is not None:
            in_flight = self._in_flight.get((room, sender, cid))
            if in_flight is not None:  # sent again while the first is being stored
                self._copies.setdefault(in_flight, []).append(outcome)
                if on_failure is not None:  # its failure is this one's too
                    self._failure_hooks.setdefault(in_flight, []).append(on_failure)
                return outcome
            # A cid stored before is found by the commit itself (the unique index), not by a
            # query here: this is the event loop, and almost every cid is new.
        message_id = self.last_id(room) + 1
        self._last_ids[room] = message_id
        message = Message(message_id, now_ms(), nick, text, kind, cid)
        self._batch.append((room, sender, message, outcome))
        if on_failure is not None:
            self._failure_hooks[outcome] = [on_failure]
        if cid is not None:
            self._in_flight[(room, sender, cid)] = outcome
        if self._flusher is None:
            flusher = loop.create_task(self._flush())
            if not flusher.done():  # a loop that starts tasks eagerly may have finished it
                self._flusher = flusher
        return outcome

    async def _flush(self) -> None:
        """Commit what has accumulated, again and again, until nothing is waiting."""
        try:
            while self._batch:
                batch, self._batch = self._batch, []
                last_ids = {room: message.id for room, _, message, _ in batch}  # (in order)
                trims = self._trims(last_ids)
                try:
                    if self.in_memory:
                        originals = self._commit(batch, last_ids, trims)
                    else:
                        originals = await asyncio.to_thread(self._commit, batch, last_ids, trims)
                except Exception as error:  # noqa: BLE001 - no batch may wait forever
                    # What arrived meanwhile fails too: stored now, it would come before
                    # messages of its senders that were not (each sender's order holds).
                    batch, self._batch = batch + self._batch, []
                    self._drop_cids(batch)
                    for *_, future in batch:
                        for hook in self._failure_hooks.pop(future, ()):
                            hook()
                    for *_, future in batch:
                        for answer in (future, *self._copies.pop(future, ())):
                            answer.set_exception(
                                StorageError(f"could not store the message: {error}"))
                else:
                    self.commits += 1
                    hooks = self._failure_hooks
                    for room, sender, message, future in batch:
                        if hooks:
                            hooks.pop(future, None)
                        if message.cid is not None:
                            self._in_flight.pop((room, sender, message.cid), None)
                        original = originals.get((room, message.id)) if originals else None
                        future.set_result(Stored(original or message, original is not None))
                        for copy in self._copies.pop(future, ()):
                            copy.set_result(Stored(original or message, True))
        finally:
            self._flusher = None

    def _trims(self, last_ids: dict[str, int]) -> list[tuple[str, int]]:
        """The rooms a batch (`last_ids`: its last id in each room) trims, and up to which
        id: retention in chunks (at most one DELETE per tenth of the limit), and never past
        what a catch-up reading the room has yet to send. Said here, in the event loop,
        before the commit runs: a catch-up starting meanwhile starts after what is being
        trimmed."""
        trims = []
        for room, last in last_ids.items():
            if last < self._next_trim.get(room, 0):
                continue
            upto = last - self.limit
            readers = self._readers.get(room)
            if readers:
                upto = min(upto, min(reader.after for reader in readers))
            trims.append((room, upto))
            self._trimmed[room] = max(self._trimmed.get(room, 0), upto)
            self._next_trim[room] = last + max(1, self.limit // 10)
        return trims

    def _commit(self, batch: list[tuple[str, str, Message, asyncio.Future[Stored]]],
                last_ids: dict[str, int], trims: list[tuple[str, int]],
                ) -> dict[tuple[str, int], Message]:
        """Store the batch in one transaction (`last_ids`: each room's last id in it), and
        trim `trims`. Returns, for each message
        whose cid its sender had already stored, the message stored then (keyed by room
        and the id the repeat was given, which stays unused)."""
        rows = [(room, m.id, m.ts, m.nick, sender, m.text, m.kind, m.cid)
                for room, sender, m, _ in batch]
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            originals = self._retired(db, batch)
            if originals:  # resends of messages retention has dropped: not stored again
                rows = [row for row in rows if (row[0], row[1]) not in originals]
            before = db.total_changes
            db.executemany(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (room, sender, cid) WHERE cid IS NOT NULL DO NOTHING", rows)
            if db.total_changes - before < len(rows):  # some cids were stored before
                originals.update(self._originals(db, batch))
            db.executemany(
                "INSERT INTO rooms (room, last_id) VALUES (?, ?)"
                " ON CONFLICT (room) DO UPDATE SET last_id = excluded.last_id",
                last_ids.items(),
            )
            if trims:
                self._retire(db, trims)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return originals

    def _retire(self, db: sqlite3.Connection, trims: list[tuple[str, int]]) -> None:
        """Drop the messages `trims` names, keeping their cids (and their texts' digests)
        in `retired_cids` until they are `cids_kept_ms` old, and forget those older."""
        oldest = now_ms() - self.cids_kept_ms
        db.execute("DELETE FROM retired_cids WHERE ts < ?", (oldest,))
        db.executemany(
            "INSERT OR REPLACE INTO retired_cids SELECT room, sender, cid, id, ts, nick, kind,"
            " text_digest(text) FROM messages WHERE room = ? AND id <= ? AND cid IS NOT NULL"
            " AND ts >= ?", [(room, upto, oldest) for room, upto in trims])
        db.executemany("DELETE FROM messages WHERE room = ? AND id <= ?", trims)

    @staticmethod
    def _retired(db: sqlite3.Connection, batch: list[tuple[str, str, Message, asyncio.Future[Stored]]]
                 ) -> dict[tuple[str, int], Message]:
        """The messages of `batch` whose cid names one retention has dropped (`retired_cids`),
        each mapped to that original: with the text sent now if that is its text (by its
        digest), else with none, a `cid` reused. A query per batch, not per message."""
        wanted = [(room, sender, message.cid, message.id, message.text)
                  for room, sender, message, _ in batch if message.cid is not None]
        originals = {}
        for start in range(0, len(wanted), RETIRED_LOOKUP):
            chunk = wanted[start:start + RETIRED_LOOKUP]
            resent = {(room, sender, cid): (message_id, text)
                      for room, sender, cid, message_id, text in chunk}
            found = db.execute(
                "WITH wanted (room, sender, cid) AS (VALUES "
                + ", ".join(["(?, ?, ?)"] * len(chunk)) + ") SELECT r.room, r.sender, r.cid,"
                " r.id, r.ts, r.nick, r.kind, r.digest FROM wanted CROSS JOIN retired_cids r"
                " ON r.room = wanted.room AND r.sender = wanted.sender AND r.cid = wanted.cid",
                [value for room, sender, cid, *_ in chunk for value in (room, sender, cid)])
            for room, sender, cid, message_id, ts, nick, kind, digest in found:
                resend_id, text = resent[(room, sender, cid)]
                text = text if digest == text_digest(text) else ""
                originals[(room, resend_id)] = Message(message_id, ts, nick, text, kind, cid)
        return originals

    @staticmethod
    def _originals(db: sqlite3.Connection, batch: list[tuple[str, str, Message, asyncio.Future[Stored]]]
                   ) -> dict[tuple[str, int], Message]:
        """The messages stored before under the cids of `batch` that were not stored now."""
        originals = {}
        for room, sender, message, _ in batch:
            if message.cid is None:
                continue
            row = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND sender = ?"
                             " AND cid = ?", (room, sender, message.cid)).fetchone()
            if row is not None and row[0] != message.id:
                originals[(room, message.id)] = Message(*row)
        return originals

    def _drop_cids(self, batch: list[tuple[str, str, Message, asyncio.Future[Stored]]]) -> None:
        """After a failed commit: drop the batch's cids so a retry is stored afresh."""
        for room, sender, message, _ in batch:
            if message.cid is not None:
                self._in_flight.pop((room, sender, message.cid), None)

    def backlog(
        self, room: str, since: int | None, epoch: str | None, count: int, upto: int | None = None,
        cids_of: str | None = None,
    ) -> Backlog:
        """What a joining client is sent: everything after `since` if it comes from this
        epoch and is all still kept (`recovered`), else the last `count` messages; only
        messages with ids up to `upto`. Given `cids_of`, only that sender's messages keep
        their `cid`. Holds the first page of them; `page` reads the rest."""
        last = self.last_id(room)
        upto = last if upto is None else upto
        # Older ids are past retention, even before the next trim (or about to be trimmed).
        floor = max(upto - self.limit, self._trimmed.get(room, 0))
        # Every id after `since` is still kept unless retention has already passed it; a
        # `since` past every id handed out is from a history that went back (a backup).
        if since is not None and epoch == self.epoch and since <= last and (
                since >= upto or since >= last - self.limit):
            after, recovered = since, True
        else:
            after, recovered = self._start_of_last(room, count, floor, upto), (
                None if since is None else False)
        messages = self.page(room, after, upto, cids_of)
        more = bool(messages) and messages[-1].id < upto
        return Backlog(messages, recovered, upto, more)

    def _start_of_last(self, room: str, count: int, floor: int, upto: int) -> int:
        """The id after which the last `count` messages up to `upto` (and above `floor`) are."""
        if count <= 0:
            return upto
        row = self._reader.execute(
            "SELECT id FROM messages WHERE room = ? AND id <= ? AND id > ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?", (room, upto, floor, count - 1),
        ).fetchone()
        return row[0] - 1 if row else floor

    def page(self, room: str, after: int, upto: int, cids_of: str | None = None,
             count: int = PAGE_ROWS, chars: int = PAGE_CHARS) -> tuple[Message, ...]:
        """The messages of `room` after id `after` and up to `upto`, in order: up to
        `count` of them, those that start within `chars` characters (at least one).
        Given `cids_of`, only that sender's keep their `cid`. What a catch-up reading the
        room has yet to send is not trimmed meanwhile (`hold`)."""
        columns, scope = _COLUMNS, ()
        if cids_of is not None:
            columns, scope = _COLUMNS_CIDS_OF_ONE, (cids_of,)
        cursor = self._reader.execute(  # read row by row: no further than the page
            f"SELECT {columns} FROM messages WHERE room = ? AND id > ? AND id <= ?"
            " ORDER BY id LIMIT ?", (*scope, room, after, upto, count),
        )
        messages, used = [], 0
        for row in cursor:
            messages.append(Message(*row))
            used += len(row[3]) + len(row[2]) + 80
            if used >= chars:
                break
        cursor.close()
        return tuple(messages)

    def hold(self, room: str, reader: Any) -> None:
        """A catch-up is reading `room`: until `release`, no message after `reader.after`
        (the last id it has sent, as it goes on) is trimmed."""
        self._readers.setdefault(room, set()).add(reader)

    def release(self, room: str, reader: Any) -> None:
        readers = self._readers.get(room)
        if readers is not None:
            readers.discard(reader)
            if not readers:
                del self._readers[room]

    async def close(self) -> None:
        """Wait for the last commit, then close the database."""
        if self._flusher is not None:
            await self._flusher
        self._reader.close()
        if self._reader is not self._writer:
            self._writer.close()
        if self._lock is not None:
            self._lock.close()
