"""The client's pending messages on disk, so typed text survives a restart of the client."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from platformdirs import user_data_path

from tui_chat.updates import Outgoing


class OutboxStore:
    """One room's pending messages in a small JSON file in the user's data directory."""

    def __init__(self, url: str, directory: Path | None = None) -> None:
        directory = directory or user_data_path("tui-chat", appauthor=False) / "outbox"
        self.path = directory / f"{hashlib.sha256(url.encode()).hexdigest()[:24]}.json"
        self.url = url

    def load(self) -> list[Outgoing]:
        """What was pending when the client last stopped (nothing if the file is unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Outgoing(item["cid"], item["text"], item.get("kind", "chat"))
                    for item in data["pending"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def save(self, pending: Iterable[Outgoing]) -> None:
        """Replace the file atomically (and durably); remove it when nothing is pending."""
        items = [{"cid": o.cid, "text": o.text, "kind": o.kind} for o in pending]
        if not items:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump({"url": self.url, "pending": items}, file, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
