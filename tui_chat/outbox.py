"""The client's pending messages on disk, so typed text survives a restart of the client."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from platformdirs import user_data_path

from tui_chat.cleaning import clean_text
from tui_chat.nicknames import nick_key
from tui_chat.protocol import valid_cid, valid_sender_key
from tui_chat.updates import Outgoing

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


def _well_formed(item: object) -> bool:
    """An entry a server would accept: a valid cid, text, and a kind a client sends."""
    return (isinstance(item, dict) and isinstance(item.get("text"), str)
            and item.get("kind", "chat") in ("chat", "action")
            and valid_cid(item.get("cid")))


class OutboxStore:
    """One room's pending messages, for one nickname, in a small JSON file in the user's data
    directory. Only one running client may use it at a time (`claim`)."""

    def __init__(self, url: str, nick: str, directory: Path | None = None) -> None:
        self.directory = directory or user_data_path("tui-chat", appauthor=False) / "outbox"
        self.url = url
        self.nick = nick  # whose pending messages these are: a later run as `nick` sends them
        self.path = self._path_for(nick)
        # The client's `sender_key` the pending messages were sent with (None in a file from
        # before keys, whose messages were sent as their nickname's).
        self.sender_key: str | None = None
        self._lock: IO[str] | None = None
        self._pending: dict[str, Outgoing] | None = None  # to save on the next loop turn
        self.failure: str | None = None  # why the last save failed; None once one succeeds
        # Told when saving starts failing (with why) and when it works again (None).
        self.on_failure: Callable[[str | None], None] | None = None

    def _path_for(self, nick: str) -> Path:
        name = hashlib.sha256(f"{self.url}\0{nick_key(nick)}".encode()).hexdigest()[:24]
        return self.directory / f"{name}.json"

    def keep(self, pending: dict[str, Outgoing], at_once: bool = False) -> None:
        """Save `pending` (cid to message, in order): at once, for what was just typed, or
        on the next turn of the event loop, once for every change made until then. A save
        that fails leaves the messages pending in memory (`on_failure` is told); the next
        change tries again."""
        if at_once:
            self.save_now(pending)
        elif self._pending is None:
            self._pending = pending
            asyncio.get_running_loop().call_soon(self._save_later)

    def _save_later(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.save_now(pending)

    def save_now(self, pending: dict[str, Outgoing]) -> bool:
        """Save `pending` at once; False if it could not be written (`failure` says why)."""
        try:
            self.save(pending.values())
        except OSError as error:
            failure: str | None = error.strerror or str(error)
        else:
            failure = None
        was_failing, self.failure = self.failure is not None, failure
        if was_failing != (failure is not None) and self.on_failure is not None:
            self.on_failure(failure)
        return failure is None

    def follow(self, nick: str, pending: Iterable[Outgoing]) -> bool:
        """The client is now called `nick`: keep its pending messages under that name from
        now on (a later run as `nick` finds them). False, and nothing moves, if another
        running client holds that name's store, if it still holds messages of an earlier
        run as `nick` (kept there for a later run as `nick`, which sends them with their own
        sender key), or if ours cannot be written there: they stay under the old name."""
        path = self._path_for(nick)
        if path == self.path:
            return True
        moved = OutboxStore(self.url, nick, self.directory)
        try:
            if not moved.claim(empty=True):
                return False
        except OSError:
            return False
        try:
            moved.sender_key = self.sender_key
            moved.save(pending)
        except OSError:
            moved.release()
            return False
        old_path = self.path
        self.release()
        self.path, self._lock, self.nick = moved.path, moved._lock, nick
        old_path.unlink(missing_ok=True)
        return True

    def claim(self, empty: bool = False) -> bool:
        """Take the store for this process; False if another running client holds it (two
        clients sharing one outbox would each send, or overwrite, the other's messages),
        or, with `empty`, if it holds an earlier run's messages (they wait there for a run
        under that name, which sends them with their own sender key). OSError if its
        directory cannot be written."""
        if fcntl is not None:  # (Windows: no advisory locks)
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = _lock(self.path.with_suffix(".lock"))
            if lock is None:
                return False
            self._lock = lock
        if empty and self.load():
            self.release()
            return False
        return True

    def release(self) -> None:
        """Let go of the store; its lock file goes too (removed while still held, so whoever
        opened it meanwhile finds, once it has the lock, that it is no longer the one)."""
        if self._lock is not None:
            Path(self._lock.name).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def load(self) -> list[Outgoing]:
        """What was pending when the client last stopped: every well-formed entry, its text
        cleaned as for sending (nothing if the file is unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            items = data["pending"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        if not isinstance(items, list):
            return []
        key = data.get("sender_key")
        self.sender_key = key if valid_sender_key(key) else None
        return [Outgoing(item["cid"], clean_text(item["text"]), item.get("kind", "chat"))
                for item in items if _well_formed(item)]

    def save(self, pending: Iterable[Outgoing]) -> None:
        """Replace the file atomically (and durably); remove it when nothing is pending."""
        items = [{"cid": o.cid, "text": o.text, "kind": o.kind} for o in pending]
        if not items:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        # Yours alone: what you wrote, and the key that says which messages are yours.
        temporary.unlink(missing_ok=True)  # one left by a crash may be readable by others
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "w", encoding="utf-8") as file:
            json.dump({"url": self.url, "sender_key": self.sender_key, "pending": items}, file,
                      ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)


def _lock(path: Path) -> IO[str] | None:
    """The lock file at `path`, open and locked by this process; None if another holds it.
    OSError if it cannot be created."""
    while True:
        lock = open(path, "w")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return None
        try:
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                return lock
        except FileNotFoundError:
            pass
        lock.close()  # its holder removed it as it let go: lock the one now there


def cannot_keep(reason: str) -> str:
    """What the log says when pending messages cannot be saved on disk, and why."""
    return f"Cannot keep pending messages on disk ({reason}): quitting before they are sent loses them."


def loss_warning(pending: int) -> str:
    """What the first Ctrl+Q says when `pending` messages could not be kept on disk."""
    messages, them = ("1 message", "it") if pending == 1 else (f"{pending} messages", "them")
    return (f"{messages} not yet acknowledged by the server could not be saved on disk:"
            f" quitting now loses {them}.")


def farewell(pending: int, store: OutboxStore | None, url: str,
             unmade: str | None = None) -> str | None:
    """What quitting says about `pending` messages not yet acknowledged: kept in `store`
    (sent the next time you join `url` under its name), or lost; None when there are none.
    `unmade`: the name a rename waiting for the connection would have given (they go out
    under the store's, the rename being dropped)."""
    if not pending:
        return None
    messages, were, they, it = (("1 message", "was", "it is", "it") if pending == 1 else
                                (f"{pending} messages", "were", "they are", "they"))
    if store is not None:
        dropped = (f" (you were never renamed {unmade}: the connection did not come back"
                   " before you quit)") if unmade else ""
        return (f"tui-chat: {messages} not yet acknowledged by the server {were} kept (in"
                f" {store.path}); {they} sent the next time you join {url} as"
                f" {store.nick}{dropped}.")
    return (f"tui-chat: {messages} not yet acknowledged by the server {were} lost: {it} could"
            " not be saved on disk (another tui-chat had this room and nickname, or the data"
            " directory could not be written).")
