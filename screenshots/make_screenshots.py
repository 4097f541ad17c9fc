"""Make the README's screenshots from the running app: a real server, real participants.

Run from the repository root:  .venv/bin/python screenshots/make_screenshots.py
Rerunning it refreshes screenshots/*.svg (timestamps are fixed, so unchanged screens give
unchanged files).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.conversation import (  # noqa: E402
    SIZE, conversation_app, free_port, freeze_clock, play_conversation,
)

SHOTS = {
    "conversation.svg": {},
    "reconnecting.svg": {"outage": True},
}


async def take(name: str, options: dict) -> None:
    port = free_port()
    app = conversation_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await play_conversation(pilot, port, **options)
        await pilot.pause(0.2)
        app.save_screenshot(name, str(HERE))
        await app.client.stop()
    print(f"wrote screenshots/{name}")


def main() -> None:
    freeze_clock(setattr)
    for name, options in SHOTS.items():
        asyncio.run(take(name, options))


if __name__ == "__main__":
    main()
