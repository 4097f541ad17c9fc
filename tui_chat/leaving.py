"""The app's keeping of what is typed, and its leaving: outbox on disk, Ctrl+Q, signals.

Pending messages are kept on disk while the app runs; quitting when that would lose
something (or close a hosted server others use) takes a second Ctrl+Q; SIGTERM and SIGHUP
quit as a second Ctrl+Q would."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tui_chat.outbox import OutboxStore, cannot_keep, farewell, loss_warning
from tui_chat.render import MessageLine, error_line, system_line

if TYPE_CHECKING:
    from tui_chat.client import ChatClient
    from tui_chat.hosting import Hosted

QUIT_CONFIRM = 5.0  # seconds: after quitting was refused with a warning, a second quit goes ahead
# `kill`, systemd, `timeout`, a closed terminal: quit as Ctrl+Q does, without asking.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def on_stop_signals(handler: Callable[[int], None] | None) -> None:
    """Have the running loop call `handler(signal number)` on STOP_SIGNALS (None: no longer).
    Nothing where the loop cannot (Windows, or not the main thread)."""
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        try:
            if handler is None:
                loop.remove_signal_handler(signum)
            else:
                loop.add_signal_handler(signum, handler, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass


class Leaving:
    """What `ChatApp` does to keep pending messages and to quit (a mixin: it uses the app's
    client, log and exit)."""

    url: str
    client: ChatClient
    keep_outbox: bool
    hosted: Hosted | None
    exit_text: str | None  # what to print once the app is gone (quit_saying)
    _quit_told_until: float  # time.monotonic() until which quitting goes ahead
    _log: Callable[[list[Text | MessageLine]], None]
    exit: Callable[..., Any]

    def _keep_outbox(self, again: bool = False) -> list[Text]:
        """Keep pending messages on disk, if this room and nickname's outbox is free; the
        log lines that say what came of it. Tried `again` later (under another name, or
        once the tui-chat that held it has quit), only into an empty one, and saying so
        only if it worked."""
        store = OutboxStore(self.url, self.client.nick)
        try:
            if store.claim(empty=again):
                self.client.attach_store(store)
                return [system_line(f"Messages waiting to be sent are now saved on disk (as"
                                    f" {self.client.nick}'s).")] if again else []
            if again:
                return []
            return [system_line(f"Another tui-chat on this computer is in this room as"
                                f" {self.client.nick}, so messages waiting to be sent are not"
                                " saved on disk: quitting before they are sent loses them.")]
        except OSError as error:
            return [] if again else [error_line(cannot_keep(error.strerror or str(error)))]

    def _keep_outbox_again(self) -> list[Text]:
        """With no outbox on disk, try the current name's (known by another name now, or
        the tui-chat that held it has quit)."""
        if self.keep_outbox and self.client.store is None:
            return self._keep_outbox(again=True)
        return []

    def action_quit(self) -> None:
        """Quit, saying what is still waiting to be sent (kept on disk for the next run, or
        lost). If quitting would lose typed messages (they cannot be saved on disk) or close
        a hosted server others are connected to, the first Ctrl+Q only says so; a second one
        within QUIT_CONFIRM seconds quits."""
        pending, kept = self._keep_pending()
        warnings = [loss_warning(pending)] if pending and kept is None else []
        if self.hosted is not None:
            hosting = self.hosted.quit_warning(self.client.local_address)
            warnings += [hosting] if hosting else []
        now = time.monotonic()
        if warnings and now > self._quit_told_until:
            self._quit_told_until = now + QUIT_CONFIRM
            line = error_line if kept is None and pending else system_line
            again = f"Press Ctrl+Q again within {QUIT_CONFIRM:g} s (or /quit) to quit."
            self._log([line(" ".join([*warnings, again]))])
            return
        self.quit_saying(self._farewell(pending, kept))

    def _keep_pending(self) -> tuple[int, OutboxStore | None]:
        """How many messages are pending, and the store they are saved in now (None: they
        cannot be kept). A store another tui-chat held is tried again: it may have quit."""
        self._log(self._keep_outbox_again())
        return len(self.client.outbox), self.client.keep_pending()

    def _farewell(self, pending: int, kept: OutboxStore | None) -> str | None:
        unmade = self.client.will_be if self.client.will_be != self.client.nick else None
        return farewell(pending, kept, self.url, unmade)

    def quit_saying(self, text: str | None, return_code: int = 0) -> None:
        """Exit; `text` is what the terminal shows after the app. The command prints it as
        it is (Textual's own exit message would read it as Rich markup and emoji codes, and
        wrap it at 80 columns even in a pipe)."""
        self.exit_text = text
        self.exit(return_code=return_code)

    def _stop_signal(self, signum: int) -> None:
        """Quit at once, as a second Ctrl+Q would: the terminal is restored, what is pending
        is saved, and a server this app hosts closes in order. After SIGHUP the terminal
        is gone: nothing is printed."""
        pending, kept = self._keep_pending()
        self.quit_saying(None if signum == getattr(signal, "SIGHUP", None)
                         else self._farewell(pending, kept))
