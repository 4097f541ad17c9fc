"""Headless commands for scripts, on ChatClient (no Textual): `tui-chat send` and `tui-chat tail`."""

from __future__ import annotations

import asyncio
import io
import math
import os
import select
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TextIO

from tui_chat.cleaning import clean_text, is_blank
from tui_chat.client import ChatClient
from tui_chat.nicknames import MAX_NICK
from tui_chat.protocol import (
    BAD_PASSWORD,
    NICK_REGISTERED,
    NICK_TAKEN,
    Message,
    encode,
    now_ms,
    plain_line,
)
from tui_chat.reasons import TOKEN_HINT
from tui_chat.updates import Joined, NickRefused, Received, Refused, State, StateChanged, Update

Connect = Callable[..., ChatClient]  # a client reporting to its callback (and keyword options)


class Watch:
    """What a headless command needs from the client's updates: problems, progress, the end."""

    def __init__(self, on_message: Callable[[Message], None] | None = None,
                 backlog: bool = True, report_failures: str = "",
                 numbered: bool = False) -> None:
        self.client: ChatClient | None = None  # set once made
        # The nickname is the command's default: if it is taken (another script runs), try
        # it with 2, 3, ... 9 after it rather than give up.
        self.numbered = numbered
        self._base_nick = ""
        self._number = 1
        self.on_message = on_message
        self.backlog = backlog  # also the recent history a first join brings
        self.started_ms = now_ms()  # without the backlog, nothing said before this is new
        # History (the welcome's, and catch-up pages) stamped before this is not printed.
        self.oldest_ms: float = 0 if backlog else math.inf
        self.problems: list[str] = []
        self.last_failure = ""  # why the last connection attempt failed
        self.over = asyncio.Event()  # the client went offline for good, or was refused a name
        self.progress = asyncio.Event()
        self.stopping = False  # we stop the client: its going offline is no problem
        # The command that says on stderr why the connection dropped, or why connecting
        # fails (once per reason); "" for none.
        self.report_failures = report_failures
        self.online = False
        self.was_online = False  # online at some time
        self.told_down = False  # the last thing reported is that it is not online

    def __call__(self, update: Update) -> None:
        self.progress.set()
        if isinstance(update, Received) and self.on_message is not None:
            if not update.backlog or update.message.ts >= self.oldest_ms:
                self.on_message(update.message)
        elif isinstance(update, Joined) and self.on_message is not None:
            self._back()
            if update.gap:
                self._report("earlier messages are not available")
            # A first join's history is printed only with the backlog. A rejoin brings
            # exactly what was missed: that is printed in any case. But a server that lost
            # the history we knew (a gap) sends its recent history instead, some of it
            # perhaps older than this command: without the backlog, that is not new.
            if self.backlog or (update.rejoined and not update.gap):
                self.oldest_ms = 0
            else:
                self.oldest_ms = self.started_ms if update.rejoined else math.inf
            for message in update.welcome.history:
                if message.ts >= self.oldest_ms:
                    self.on_message(message)
        elif isinstance(update, Refused) and update.outgoing is not None and not update.retrying:
            self.problems.append(f"not sent ({update.outgoing.preview!r}): {update.error.message}")
        elif isinstance(update, NickRefused) and update.kept is None:
            if not self._numbered_again(update):
                self.problems.append(f"{update.error.message} {_what_to_do(update)}")
                self.over.set()
        elif isinstance(update, StateChanged):
            if update.state is State.OFFLINE and update.reason and not self.stopping:
                auth_failed = self.client is not None and self.client.auth_failed
                self.problems.append(f"{update.reason}. {TOKEN_HINT}" if auth_failed
                                     else update.reason)
                self.over.set()
            elif update.state is State.RECONNECTING and update.reason:
                if self.online:
                    self._report(f"disconnected ({update.reason}); reconnecting")
                    self.told_down = True
                elif update.reason != self.last_failure:
                    self._report(f"cannot connect: {update.reason}; trying again")
                    self.told_down = True
                self.last_failure, self.online = update.reason, False
            elif update.state is State.ONLINE:
                self._back()

    def _back(self) -> None:
        """Connected and joined: if it was said to be down, say that it is back."""
        if self.told_down:
            self._report("reconnected" if self.was_online else "connected")
        self.last_failure, self.online, self.told_down, self.was_online = "", True, False, True

    def _numbered_again(self, refused: NickRefused) -> bool:
        """Ask for the next numbered nickname, if this one was the default and is taken."""
        if (not self.numbered or refused.error.code != NICK_TAKEN or self.client is None
                or self._number >= 9):
            return False
        self._base_nick = self._base_nick or self.client.nick
        self._number += 1
        suffix = str(self._number)
        self.client.rename(self._base_nick[:MAX_NICK - len(suffix)] + suffix)
        return True

    def _report(self, line: str) -> None:
        if self.report_failures:
            print(f"tui-chat {self.report_failures}: {line}", file=sys.stderr, flush=True)


def _what_to_do(refused: NickRefused) -> str:
    """What to do about a nickname the server refused (as the app says, with options)."""
    if refused.error.code in (NICK_REGISTERED, BAD_PASSWORD):
        return ("Use --password-file PATH (or TUI_CHAT_PASSWORD), or choose another nickname"
                " with --nick NAME.")
    return "Choose another with --nick NAME."


async def send(connect: Connect, lines: AsyncIterator[str], action: bool,
               timeout: float, numbered: bool = False) -> list[str]:
    """Send each line as a message and wait until the server has acknowledged every one
    (each is stored exactly once, also across reconnects), giving up once no acknowledgement
    has come for `timeout` seconds (`numbered`: see Watch). It connects when the first line
    comes, so that input with nothing to send never joins the room, and joins quietly: the
    room is not told it came and went. Returns what went wrong."""
    watch = Watch(numbered=numbered)
    client = watch.client = connect(watch, quiet=True)
    runner: asyncio.Task[None] | None = None
    try:
        async for line in lines:
            if not is_blank(clean_text(line)):  # something to show
                if runner is None:
                    runner = asyncio.create_task(client.run())
                (client.me if action else client.say)(line)
        if runner is None:
            return watch.problems  # nothing to send
        loop = asyncio.get_running_loop()
        pending, deadline = len(client.outbox), loop.time() + timeout
        while client.outbox and not watch.over.is_set():
            if len(client.outbox) < pending:  # acknowledgements come: wait afresh
                pending, deadline = len(client.outbox), loop.time() + timeout
            left = deadline - loop.time()
            if left <= 0:
                if not client.joined_once:
                    why = watch.last_failure or "no answer"
                    watch.problems.append(f"nothing was sent: could not connect in"
                                          f" {timeout:g} s. Last attempt: {why}")
                    break
                because = f"; last: {watch.last_failure}" if watch.last_failure else ""
                watch.problems.append(
                    f"{len(client.outbox)} {'message' if len(client.outbox) == 1 else 'messages'}"
                    f" not acknowledged (none was for"
                    f" {timeout:g} s{because}); they may or may not have been stored")
                break
            watch.progress.clear()
            try:
                await asyncio.wait_for(watch.progress.wait(), left)
            except asyncio.TimeoutError:
                pass
    finally:
        watch.stopping = True
        await client.stop()
        if runner is not None:
            await runner
    return watch.problems


async def tail(connect: Connect, out: TextIO, as_json: bool, history: bool,
               numbered: bool = False) -> list[str]:
    """Print the room's messages as they arrive (after its recent history, if `history`),
    one per line, until stopped, refused for good, or what reads `out` has gone, even in
    a quiet room (`numbered`: see Watch). Returns what went wrong."""
    stop = asyncio.Event()

    def show(message: Message) -> None:
        if stop.is_set():
            return
        try:
            out.write((encode(message) if as_json else plain_line(message)) + "\n")
            out.flush()
        except BrokenPipeError:  # what reads the output has gone (`| head -2`): the end
            stop.set()

    watch = Watch(show, backlog=history, report_failures="tail", numbered=numbered)
    client = watch.client = connect(watch)
    runner = asyncio.create_task(client.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass
    waiting = [asyncio.create_task(stop.wait()), asyncio.create_task(watch.over.wait())]
    gone = reader_gone(out)
    if gone is not None:  # a quiet room writes nothing, so nothing would notice
        waiting.append(asyncio.create_task(_until(gone)))
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()
        watch.stopping = True
        await client.stop()
        await runner
    return watch.problems


def reader_gone(out: TextIO) -> Callable[[], bool] | None:
    """A check of whether what reads `out` has gone (`| head` has exited), for a pipe; None
    where that cannot be told before writing (not a pipe, or no poll())."""
    try:
        fd = out.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        return None
    if not is_pipe or not hasattr(select, "poll"):
        return None
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: poll reports POLLERR once the reader is gone
    return lambda: bool(poller.poll(0))


async def _until(check: Callable[[], bool], every: float = 0.25) -> None:
    while not check():
        await asyncio.sleep(every)


async def lines_of(texts: Iterable[str] | None, stream: TextIO) -> AsyncIterator[str]:
    """The texts given, or else each line of `stream` as it comes (read off the event loop),
    with U+FFFD for bytes it cannot decode (in a UTF-8 locale, Python's stdin would raise)."""
    if texts is not None:
        for text in texts:
            yield text
        return
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(errors="replace")
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, stream.readline):
        yield line.rstrip("\r\n")
