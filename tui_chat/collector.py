"""The garbage collector's settings while the app runs, so a burst never pauses the screen."""

from __future__ import annotations

import gc

# Python collects its youngest generation every 700 new objects. A burst of messages keeps
# each one alive until the scrollback lets it go, so with that default the collector walked
# the whole heap (over 100,000 objects: Python, Textual, the log) about every 15,000
# messages, for 40-90 ms at a time, and took a quarter of the app's time in the client
# benchmark. Collecting less often, over a heap that leaves out what exists at start, keeps
# the full collections out of a burst.
YOUNG_GENERATION_THRESHOLD = 10_000


_saved: tuple[int, int, int] | None = None  # the thresholds before the first app started
_apps = 0  # apps running in this process (tests run several at once)


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
    """Undo `quieten()` once the last app that asked for it has stopped."""
    global _saved, _apps
    _apps -= 1
    if _apps == 0 and _saved is not None:
        gc.set_threshold(*_saved)
        gc.unfreeze()
        _saved = None
