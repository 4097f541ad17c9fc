"""The server's SQLite file: opened in WAL mode, private to its owner, one server at a time.

And the errors that say why it cannot be."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one server per file is up to the user
    fcntl = None  # type: ignore[assignment]


class StorageError(RuntimeError):
    """The database could not store a message; nothing was acknowledged."""


def unopenable(path: str, reason: object) -> StorageError:
    """The error for a database at `path` that cannot be opened, saying why."""
    if isinstance(reason, OSError):
        reason = reason.strerror or reason
    return StorageError(f"cannot open the database {path}: {reason}")


# Files SQLite and the server keep beside a database: never a database of their own.
_COMPANIONS = {"-wal": "write-ahead log", "-shm": "shared memory", "-journal": "journal",
               ".lock": "lock"}


def _check_path(path: str) -> None:
    """Raise StorageError if `path` is a directory, is in a missing one, or is a file kept
    beside another database: a mistyped --db is not made into a new history somewhere
    unexpected, nor written into another server's files."""
    parent = Path(path).parent
    if Path(path).is_dir():
        raise unopenable(path, "it is a directory (--db takes the database file's path, for"
                         " example DIRECTORY/history.db)")
    for suffix, kind in _COMPANIONS.items():
        base = path.removesuffix(suffix)
        if base != path and Path(base).is_file():
            raise unopenable(path, f"it is the {kind} file of the database {base}; --db takes"
                             " the database itself")
    if parent.exists() and not parent.is_dir():
        raise unopenable(path, f"{parent} is not a directory")
    if not parent.exists():
        raise unopenable(path, f"there is no directory {parent}")


def lock_database(path: str):
    """Hold an exclusive lock beside the database so two servers never write one file."""
    if path == ":memory:" or fcntl is None:
        return None
    _check_path(path)
    try:
        lock = os.fdopen(os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o600), "w")
    except OSError as error:
        raise unopenable(path, error) from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise StorageError(f"{path} is in use by another tui-chat server; choose another"
                           " with --db") from None
    return lock


SYNC_MODES = ("full", "normal")


def _create_private(path: str) -> None:
    """Create the database file, if it does not exist, readable by its owner alone: it holds
    every room's messages and the password hashes of registered nicknames. (SQLite gives its
    WAL and shared-memory files the database's permissions.) An existing file is left as
    its owner set it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def connect_database(path: str, sync: str = "full", schema: str = "") -> sqlite3.Connection:
    """Open (creating if needed) a tui-chat database in WAL mode, with `schema`. `full`: every commit is
    fsynced and survives power loss; `normal`: commits survive a crash of the process, and
    the last ones may be lost if the machine itself loses power."""
    if path != ":memory:":
        _check_path(path)
    try:
        if path != ":memory:":
            _create_private(path)
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=" + ("NORMAL" if sync == "normal" else "FULL"))
        connection.execute("PRAGMA busy_timeout=5000")
        # Checkpoint (copy the WAL into the database, fsync) every ~16 MiB instead of every
        # 4 MiB: fewer pauses in the stream of commits.
        connection.execute("PRAGMA wal_autocheckpoint=4000")
        connection.executescript(schema)
    except (OSError, sqlite3.Error) as error:
        raise unopenable(path, error) from None
    return connection
