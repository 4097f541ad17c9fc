"""What text made to be slow costs the server: the worst frames a client can send, timed.

Each case is a JSON `say` frame as big as --max-frame allows, built to make escape-code
cleaning work hard (unterminated OSC and DCS introducers, 8-bit ones, CSI parameters); it
is decoded and vetted as the server does (decode_client, then Hub.vet_text with its
--max-text), and, with --max-text 0 (no limit), cleaned whole. Prints milliseconds per
frame; compare with an ordinary frame of the same size.

    .venv/bin/python -m tests.benchmarks.hostile_text [--bytes 65000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time

from tui_chat_server.history import History
from tui_chat_server.hub import Hub, Limits

from tui_chat.cleaning import clean_text
from tui_chat.protocol import ProtocolError, decode_client


def cases(size: int) -> dict[str, str]:
    """Message texts whose `say` frames are about `size` bytes, by what they are made of."""

    def filled(unit: str, prefix: str = "") -> str:
        """`prefix`, then `unit` as many times as fit in the frame (JSON-escaped, UTF-8)."""
        each = len(json.dumps(unit, ensure_ascii=False).encode()) - 2
        return prefix + unit * ((size - 40) // each)

    return {
        "ordinary text": filled("a"),
        "8-bit OSC introducers": filled("\x9d"),
        "ESC ] (OSC) pairs": filled("\x1b]"),
        "ESC P (DCS) pairs": filled("\x1bP"),
        "OSC, text, OSC, text": filled("\x9da"),
        "every introducer": filled("\x1b]\x9d\x90\x1bP\x9b"),
        "CSI with long parameters": filled("0", "\x1b["),
        "OSC with stray ESC": filled("\x1b]x\x1b"),
    }


def timed(action, repeat: int) -> float:
    """The median time of `action()` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=65_000, help="size of each frame")
    parser.add_argument("--repeat", type=int, default=5, help="times each case is run")
    args = parser.parse_args()
    hub = Hub(History(), Limits())

    def server_path(frame: str) -> None:
        event = decode_client(frame)
        try:
            hub.vet_text(event.text)
        except ProtocolError:
            pass  # too long, or nothing left: refused

    print(f"{'frame':28} {'bytes':>7} {'decode+vet ms':>14} {'clean whole ms':>15}")
    for name, text in cases(args.bytes).items():
        frame = json.dumps({"type": "say", "text": text}, ensure_ascii=False)
        decode_ms = timed(lambda frame=frame: server_path(frame), args.repeat)
        clean_ms = timed(lambda text=text: clean_text(text), args.repeat)
        print(f"{name:28} {len(frame.encode()):>7,} {decode_ms:>14.2f} {clean_ms:>15.2f}")


if __name__ == "__main__":
    main()
