"""The client benchmark: the real tui-chat app (headless, `App.run_test`) absorbing a burst.

    .venv/bin/python -m tests.benchmarks.client_app [--count 300000] [--rate 50000]

A source server (pinned to CPU 0) streams `message` events to one app (on CPU 1) at the
offered rate. Meanwhile a key press is sent to the input every 20 ms, and the time until
the input has handled it is recorded. Reported: messages/s absorbed into the log (from the
first batch written to the log to the last), key
response p50/p99/max, memory after one and two times the scrollback (bounded means equal),
and the time from launch to an interactive screen.
"""

from __future__ import annotations

import time

LAUNCHED = time.perf_counter()  # before textual is imported: launch time includes imports

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from textual import events  # noqa: E402
from textual.widgets import Input  # noqa: E402

from tests.benchmarks.running import free_port, rss_kib  # noqa: E402
from tui_chat.app import ChatApp, NetworkUpdates  # noqa: E402
from tui_chat.chat_input import ChatInput  # noqa: E402
from tui_chat.updates import Received, State  # noqa: E402

IMPORTED = time.perf_counter()  # python, textual and tui-chat are loaded
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


async def listening(port: int, limit: float = 60.0) -> None:
    """Return once something accepts TCP connections on `port`."""
    deadline = time.perf_counter() + limit
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return


async def run(args: argparse.Namespace) -> dict:
    port = free_port()
    source = subprocess.Popen(
        [sys.executable, str(HERE / "servers" / "blaster.py"), str(port), str(args.count),
         str(args.rate)], cwd=ROOT, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    try:
        await listening(port)  # it encodes every frame first: the app must not wait for that
        key_sent: list[float] = []
        key_done: list[float] = []
        batches: list[tuple[float, int]] = []  # (when a batch reached the log, messages in it)

        def hook(message) -> None:
            if isinstance(message, Input.Changed) and key_sent and len(key_done) < len(key_sent):
                key_done.append(time.perf_counter())
            elif isinstance(message, NetworkUpdates):
                received = sum(isinstance(update, Received) for update in message.updates)
                if received:
                    batches.append((time.perf_counter(), received))

        app_started = time.perf_counter()
        app = ChatApp(f"ws://127.0.0.1:{port}/bench", "bench", scrollback=args.scrollback,
                      keep_outbox=False)
        async with app.run_test(size=(120, 40), message_hook=hook) as pilot:
            while app.state is not State.ONLINE:
                await pilot.pause(0.01)
            # imports, then mounting and joining (the source server was already running)
            interactive = (IMPORTED - LAUNCHED) + (time.perf_counter() - app_started)
            chat_input = app.query_one(ChatInput)
            await pilot.press("enter")  # nothing typed: nothing sent
            app.client.say("go")
            started = time.perf_counter()
            half_rss = 0
            while (app.client.position.last_id or 0) < args.count:
                key_sent.append(time.perf_counter())
                app.post_message(events.Key("x", "x"))
                await asyncio.sleep(0.02)
                if not half_rss and (app.client.position.last_id or 0) >= args.count // 2:
                    half_rss = rss_kib(os.getpid())
                if time.perf_counter() - started > args.timeout:
                    break
            received = app.client.position.last_id or 0
            await pilot.pause(0.3)
            shown = len(app.query_one("ChatLog").text().splitlines())
            end_rss = rss_kib(os.getpid())
            chat_input.value = ""
            await app.client.stop()
        waits = sorted(done - sent for sent, done in zip(key_sent, key_done))
        lost_keys = len(key_sent) - len(key_done)
        def pick(q: float) -> float:
            return waits[min(len(waits) - 1, int(q * len(waits)))] * 1000 if waits else float("nan")
        # From the first batch to reach the log to the last: the messages after the first
        # batch, over the time they took.
        span = batches[-1][0] - batches[0][0] if len(batches) > 1 else 0.0
        absorbed = sum(count for _, count in batches[1:]) / span if span else float("nan")
        return {
            "offered_msgs_per_s": args.rate, "messages": received,
            "absorbed_msgs_per_s": absorbed,
            "key_p50_ms": pick(0.5), "key_p99_ms": pick(0.99), "key_max_ms": pick(1.0),
            "keys_sent": len(key_sent), "keys_unanswered": lost_keys,
            "log_lines": shown, "scrollback": args.scrollback,
            "rss_kib_half": half_rss, "rss_kib_end": end_rss,
            "launch_to_interactive_s": interactive,
        }
    finally:
        source.terminate()
        source.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--rate", type=float, default=50_000, help="offered messages/s, 0: flat out")
    parser.add_argument("--scrollback", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "benchmark-client.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:>26}: {value:,.2f}" if isinstance(value, float) else f"{key:>26}: {value:,}")
    args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
