"""The user list benchmark: what one change of who is in the room costs the app's screen.

    .venv/bin/python -m tests.benchmarks.user_list [--sizes 100,2000,10000] [--changes 20]

The real UserList widget, in a headless app (`App.run_test`), is given a room of each size
and then one member fewer, `--changes` times; reported is the time per change until the
screen has settled (a Pilot pause, whose own cost is reported as the baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from textual.app import App, ComposeResult

from tui_chat.widgets import UserList


class UserListApp(App[None]):
    """Just the user list, as tall as the chat screen gives it."""

    CSS = "UserList { height: 30; width: 26; }"

    def compose(self) -> ComposeResult:
        yield UserList()


async def measure(sizes: list[int], changes: int) -> list[tuple[str, float]]:
    """Milliseconds per change for each room size, after the baseline of a pause alone."""
    app = UserListApp()
    figures = []
    async with app.run_test(size=(60, 40)) as pilot:
        users = app.query_one(UserList)
        started = time.perf_counter()
        for _ in range(changes):
            await pilot.pause()
        figures.append(("baseline (a pause alone)", (time.perf_counter() - started) / changes))
        for size in sizes:
            names = tuple(f"user{number:05d}" for number in range(size))
            users.users = names
            await pilot.pause()
            started = time.perf_counter()
            for change in range(changes):
                users.users = names[change % 2:]  # someone leaves, or comes back
                await pilot.pause()
            figures.append((f"{size:,} members", (time.perf_counter() - started) / changes))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,2000,10000",
                        help="room sizes, comma-separated (default: %(default)s)")
    parser.add_argument("--changes", type=int, default=20, help="changes per size (default: 20)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    for label, seconds in asyncio.run(measure(sizes, args.changes)):
        print(f"{label:>26}: {seconds * 1000:7.1f} ms per change")


if __name__ == "__main__":
    main()
