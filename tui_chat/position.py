"""Where a client is in a room's history: which messages are new to it.

And what a welcome means for that: a gap to show, a history that went back, a catch-up
still to come."""

from __future__ import annotations

from tui_chat.protocol import Message, Welcome


class Position:
    """The epoch and the last message id a client has seen in one room (pure: no I/O)."""

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.last_id: int | None = None
        self.backlog_upto = 0  # messages up to this id are the last welcome's catch-up

    def since(self) -> tuple[int | None, str | None]:
        """What a hello asks for: everything after `since` in `epoch` (None, None: recent)."""
        if self.epoch is None or self.last_id is None:
            return None, None
        return self.last_id, self.epoch

    def welcome(self, welcome: Welcome) -> tuple[tuple[Message, ...], bool]:
        """Take in a welcome: the messages of its history that are new here, and whether
        earlier messages are missing (a gap the client should show)."""
        epoch_changed = self.epoch is not None and welcome.epoch != self.epoch
        gap = welcome.recovered is False or (epoch_changed and welcome.recovered is None)
        went_back = (welcome.last_id is not None and self.last_id is not None
                     and welcome.last_id < self.last_id)  # e.g. its database was restored
        if epoch_changed or went_back:
            self.last_id = None
        self.epoch = welcome.epoch
        history = tuple(m for m in welcome.history if self.is_new(m))
        if history:
            self.last_id = history[-1].id
        elif self.last_id is None:  # nothing shown (--backlog 0): everything so far is old
            self.last_id = welcome.last_id or 0
        self.backlog_upto = welcome.last_id or 0
        return history, gap

    def is_new(self, message: Message) -> bool:
        return self.last_id is None or message.id > self.last_id

    def seen(self, message: Message) -> bool:
        """Take in a message; False if it is not new here (already seen)."""
        if not self.is_new(message):
            return False
        self.last_id = message.id
        return True

    def is_backlog(self, message: Message) -> bool:
        """A catch-up too long for the welcome follows it as messages: those are history."""
        return message.id <= self.backlog_upto
