"""The app's terminal driver: Textual's, made to outlive its terminal (a closed window, a dropped ssh).

Textual writes to the terminal from a thread that reads a queue of 30 writes. Once the
terminal is gone, a write raises (EIO), that thread dies, and the 31st write after it blocks
the app's loop for ever: a window closed while a room is busy left `tui-chat` running with
no terminal, never reaching the SIGHUP that would have ended it. Here what cannot be written
is dropped instead, so the app quits as it should.
"""

from __future__ import annotations

import functools
import select
from typing import IO, Any

from textual.driver import Driver


ROOM_WAIT = 1.0  # seconds between tries to write to a terminal that is full


class GoneTerminalFile:
    """A terminal's output stream that, once writing to it fails, drops what it is given. A
    terminal that is only full for now (non-blocking) is waited for: what did not fit the
    stream's buffer then is lost, a glitch on screen rather than a screen frozen for good."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.file.write(text)
            except BlockingIOError:  # a non-blocking terminal, full for now: not gone
                self._wait_for_room()
            except (OSError, ValueError):  # the terminal is gone (or its stream closed)
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.file.flush()
            except BlockingIOError:
                self._wait_for_room()
            except (OSError, ValueError):
                self.gone = True

    def _wait_for_room(self) -> None:
        """Write out what the stream holds once the terminal takes more (XOFF, a slow ssh
        link, a terminal another program made non-blocking)."""
        while not self.gone:
            try:
                select.select([], [self.file.fileno()], [], ROOM_WAIT)
                self.file.flush()
                return
            except BlockingIOError:
                continue
            except (OSError, ValueError):
                self.gone = True

    def __getattr__(self, name: str) -> Any:  # fileno(), isatty(), …: the stream's own
        return getattr(self.file, name)


@functools.cache  # one class per driver class, not one per app
def lasting(driver_class: type[Driver]) -> type[Driver]:
    """`driver_class`, writing through a `GoneTerminalFile` if it is the POSIX driver (whose
    terminal can hang up); any other driver as it is."""
    try:
        from textual.drivers.linux_driver import LinuxDriver
    except ImportError:  # no termios: Windows, whose console does not hang up
        return driver_class
    if not issubclass(driver_class, LinuxDriver):
        return driver_class

    class LastingDriver(driver_class):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._file = GoneTerminalFile(self._file)

    return LastingDriver
