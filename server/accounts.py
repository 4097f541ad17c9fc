"""Registered nicknames: salted scrypt password hashes kept in the server's database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
from dataclasses import dataclass

from tui_chat.nicknames import check_nick, nick_key
from tui_chat.protocol import now_ms

from .database import connect_database
from .limits import FailedLogins

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    n INTEGER NOT NULL,
    r INTEGER NOT NULL,
    p INTEGER NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
"""
# scrypt cost: about 50 ms and 16 MiB per check, so guessing is slow; run off the event loop.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# Checks at once: a flood of logins from many addresses may not take every core from chat.
CONCURRENT_CHECKS = max(1, (os.cpu_count() or 2) // 2)
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Account:
    """A registered nickname's stored hash and the scrypt parameters that made it."""

    name: str
    salt: bytes
    hash: bytes
    n: int
    r: int
    p: int

    def check(self, password: str) -> bool:
        """Compare in constant time."""
        digest = _scrypt(password, self.salt, self.n, self.r, self.p)
        return hmac.compare_digest(digest, self.hash)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    secret = password.encode("utf-8", "surrogatepass")  # (JSON may hold half a pair)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


class Accounts:
    """The registered nicknames of one database file (none for `:memory:`)."""

    def __init__(self, path: str) -> None:
        self.failures = FailedLogins()
        self._checking = asyncio.Semaphore(CONCURRENT_CHECKS)  # (bound to a loop when used)
        self._db: sqlite3.Connection | None = None
        if path != ":memory:":
            self._db = connect_database(path, schema=SCHEMA)

    def add(self, name: str, password: str) -> str:
        """Register `name` (or change its password); returns the name as stored."""
        shown = check_nick(name)
        if password != password.strip():  # (a --password-file is read without them)
            raise ValueError("a password cannot start or end with a space")
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
        salt = os.urandom(16)
        digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        self._require().execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " name = excluded.name, salt = excluded.salt, hash = excluded.hash, n = excluded.n,"
            " r = excluded.r, p = excluded.p",
            (nick_key(shown), shown, salt, digest, SCRYPT_N, SCRYPT_R, SCRYPT_P, now_ms()),
        )
        return shown

    def remove(self, name: str) -> bool:
        cursor = self._require().execute("DELETE FROM users WHERE key = ?", (nick_key(name),))
        return cursor.rowcount > 0

    def names(self) -> list[str]:
        if self._db is None:
            return []
        return [row[0] for row in self._db.execute("SELECT name FROM users ORDER BY key")]

    def find(self, nick: str) -> Account | None:
        """The account registered under `nick` (compared as nicknames are), if any."""
        if self._db is None:
            return None
        row = self._db.execute("SELECT name, salt, hash, n, r, p FROM users WHERE key = ?",
                               (nick_key(nick),)).fetchone()
        return Account(*row) if row else None

    async def verify(self, account: Account, password: str, address: str = "") -> bool:
        """Check a password on a worker thread, so the server keeps serving meanwhile. It
        counts as wrong against the client's `address` (see `failures`) from the start, so
        that passwords sent at the same time are held up by each other; a right one is
        uncounted once checked."""
        name = nick_key(account.name)
        self.failures.failed(address, name)  # before the first await: see `failures.wait`
        async with self._checking:
            right = await asyncio.to_thread(account.check, password)
        if right:
            self.failures.succeeded(address, name)
        return right

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError("registered nicknames need a database file, not :memory:")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
