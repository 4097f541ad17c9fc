"""The garbage collector's settings while the app or the server runs.

Neither should pause for a full collection in the middle of a burst."""

from __future__ import annotations

import gc

# Python collects its youngest generation every 700 new objects, and the whole heap once
# enough objects have outlived that. A burst keeps each message alive until the app's
# scrollback lets it go, so with that default the app walked its whole heap (137,000
# objects: Python, Textual, the log) about every 15,000 messages, for 40-90 ms at a time,
# a quarter of its time in the client benchmark. The server walked its heap, all of its
# connections, about ten times while 1,000 clients joined and were served (20-30 ms each)
# and 7 times at 10,000 (over 300 ms each). Collecting less often, over a heap that
# leaves out what exists at start, keeps full collections out of a burst
# (docs/performance.md).
YOUNG_GENERATION_THRESHOLD = 10_000


_saved: tuple[int, int, int] | None = None  # the thresholds before the first app started
_apps = 0  # apps and servers running in this process (tests run several at once)


def quieten() -> None:
    """Raise the young generation's threshold and freeze the objects that exist now
    (`gc.freeze`: left out of every collection). Each call needs a `restore()`."""
    global _saved, _apps
    _apps += 1
    if _apps == 1:
        _saved = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *_saved[1:])


def restore() -> None:
    """Undo `quieten()` once the last app or server that asked for it has stopped."""
    global _saved, _apps
    _apps -= 1
    if _apps == 0 and _saved is not None:
        gc.set_threshold(*_saved)
        gc.unfreeze()
        _saved = None
