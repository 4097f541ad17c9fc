"""A task factory that starts tasks eagerly, as Textual's app loop does on Python 3.12+:
the real one where asyncio has it, and a stand-in for Python 3.10 and 3.11."""

from __future__ import annotations

import asyncio
import types
from typing import Any


@types.coroutine
def _resume(coro: Any, yielded: Any) -> Any:
    """Carry on with a coroutine that has already run up to its first suspension."""
    while True:
        try:
            sent = yield yielded
        except BaseException as error:  # noqa: BLE001 - every exception goes on into coro
            try:
                yielded = coro.throw(error)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _eager_stand_in(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> Any:
    """Run `coro` now, up to its first suspension; a task carries on from there. One that
    ends at once is returned as a finished future, as an eager task would be. Outside a
    running loop a task starts as usual (so does asyncio's)."""
    if not loop.is_running():
        return asyncio.Task(coro, loop=loop, **options)
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except BaseException as error:  # noqa: BLE001 - it is the task's outcome
        done = loop.create_future()
        done.set_exception(error)
        return done
    return asyncio.Task(_resume(coro, yielded), loop=loop, **options)


eager_task_factory = getattr(asyncio, "eager_task_factory", _eager_stand_in)
