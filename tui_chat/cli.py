"""`tui-chat`: the command line of the terminal client (the full-screen app comes next)."""

from __future__ import annotations

import argparse

from tui_chat import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-chat",
        description="A terminal chat client. The full-screen app is not built yet; meanwhile,"
        " run `tui-chat-server` and chat with any WebSocket client"
        " (for example: python -m websockets ws://127.0.0.1:8765/lobby).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    build_parser().print_help()
    return 0
