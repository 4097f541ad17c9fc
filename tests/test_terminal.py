"""The app's output outlives its terminal: writes to a closed one are dropped, never hang the app."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time

import pytest
from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from tui_chat.app import ChatApp
from tui_chat.terminal import GoneTerminalFile

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX driver writes from a thread")


class HungUpTerminal:
    """A terminal whose window was closed: every write fails as a hung-up tty's does."""

    def __init__(self) -> None:
        self.tried = 0

    def write(self, text: str) -> int:
        self.tried += 1
        raise OSError(5, "Input/output error")

    def flush(self) -> None:
        raise OSError(5, "Input/output error")

    def fileno(self) -> int:
        return 1


def writes_then_stops(file: object) -> bool:
    """Whether Textual's writer thread, writing to `file`, takes more writes than its queue
    holds and then stops, within a few seconds."""
    writer = WriterThread(file)  # type: ignore[arg-type]
    writer.start()

    def write_and_stop() -> None:
        for _ in range(MAX_QUEUED_WRITES * 3):
            writer.write("\x1b[H frame")
        writer.stop()

    done = threading.Thread(target=write_and_stop, daemon=True)
    done.start()
    done.join(2)
    stopped = not done.is_alive()
    while done.is_alive():  # blocked: drain its queue in the dead thread's place, to end it
        while not writer._queue.empty():
            writer._queue.get_nowait()
        done.join(0.01)
    return stopped


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_writes_to_a_closed_terminal_are_dropped_and_never_block() -> None:
    """Through `GoneTerminalFile`, Textual's writer thread survives a hung-up terminal, so
    the app's writes and its final stop go through; without it the thread dies at the
    first failed write and the writes after its queue is full block for ever."""
    terminal = HungUpTerminal()
    assert writes_then_stops(GoneTerminalFile(terminal))  # type: ignore[arg-type]
    assert terminal.tried == 1  # once failed, nothing more is tried
    assert not writes_then_stops(HungUpTerminal())


async def test_the_app_runs_on_the_driver_that_outlives_its_terminal() -> None:
    """On POSIX the app's driver writes through a `GoneTerminalFile`."""
    app = ChatApp("ws://127.0.0.1:9/lobby", "mona", keep_outbox=False)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTSTP, signal.SIGCONT)}
    try:  # (the driver takes these signals over: given back, as they were, to pytest)
        driver = app.driver_class(app, debug=False, mouse=True, size=(80, 24))
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert isinstance(driver._file, GoneTerminalFile)


def test_a_terminal_full_for_now_is_waited_for_not_given_up() -> None:
    """A non-blocking terminal that fills up (XOFF, a slow link) is written to again once it
    takes more: it is not taken for a closed one."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    terminal = GoneTerminalFile(open(write_end, "w", buffering=4096))  # noqa: SIM115
    frame = "x" * 1000 + "\n"
    writing = threading.Thread(target=lambda: [terminal.write(frame) for _ in range(300)]
                               + [terminal.flush()], daemon=True)
    writing.start()  # 300 KB: more than the pipe holds (64 KB)
    received = b""
    while writing.is_alive() or select.select([read_end], [], [], 0.1)[0]:
        time.sleep(0.02)  # a slow reader
        if select.select([read_end], [], [], 0)[0]:
            received += os.read(read_end, 65536)
    assert not terminal.gone
    assert len(received) > 200_000 and received.endswith(frame.encode())
    terminal.file.close()
    os.close(read_end)
