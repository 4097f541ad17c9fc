"""How much output may wait for a client: slow consumers are disconnected, greetings may drain."""

from __future__ import annotations

import logging
from typing import Any

from .admission import peer_name

log = logging.getLogger("tui_chat.server")


class OutputBound:
    """Part of ChatConnection (transport.py): output may not pile up. Once more than
    --max-pending bytes wait for a client that does not read, it is disconnected and its
    memory freed. A greeting may exceed the limit (a welcome of up to 256K characters, then
    what was held during a catch-up); until it has drained, the limit counts from its end."""

    __slots__ = ()
    server: Any
    transport: Any
    paused: bool
    greeting: bool
    allowance: int
    catchup: Any

    def abort(self) -> None:
        raise NotImplementedError

    def pause_writing(self) -> None:
        self.paused = True
        if not self.greeting:
            self.too_slow(f"over {self.server.config.max_pending} bytes of output")
        elif self.transport is not None:  # it may drain, but not grow much more meanwhile
            self.allowance = max(self.allowance, self.transport.get_write_buffer_size()
                                 + self.server.config.max_pending)

    def resume_writing(self) -> None:
        self.paused = False
        if self.catchup is not None:
            self.catchup.resume()

    def too_slow(self, waiting: str) -> None:
        """Disconnect a slow consumer, which has `waiting` waiting for it (once)."""
        if self.transport is None or self.transport.is_closing():
            return  # already on its way out
        log.warning("%s slow consumer: %s waiting; disconnected", peer_name(self), waiting)
        self.abort()

    def end_greeting(self) -> None:
        """The greeting (and its catch-up, if any) is written: output is bound by
        --max-pending again, and what waits over it may drain but not grow."""
        self._bound_output()
        self.greeting = False
        if self.paused:
            self.allow_greeting_backlog()

    def _bound_output(self) -> None:
        """Writing pauses (`paused`) once --max-pending bytes wait (0: never)."""
        limit = self.server.config.max_pending
        self.transport.set_write_buffer_limits(high=limit or 2**62)  # type: ignore[union-attr]

    def allow_greeting_backlog(self) -> None:
        """The greeting just written is over the output limit: it may drain, but what follows
        it may not pile up past the limit (`check_backlog` after each write while paused)."""
        assert self.transport is not None
        self.allowance = self.transport.get_write_buffer_size() + self.server.config.max_pending

    def check_backlog(self) -> None:
        """Disconnect a client whose output still waits behind its greeting and has grown
        past the limit since."""
        if self.transport is not None and self.transport.get_write_buffer_size() > self.allowance:
            self.too_slow(f"its greeting and over {self.server.config.max_pending} bytes of"
                          " output")
