"""`tui-chat-server`: parse the command line, log, serve until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from server.app import ChatServer, ServerConfig
from server.history import StorageError
from tui_chat import __version__

EXAMPLES = """\
examples:
  tui-chat-server                         serve ws://127.0.0.1:8765 (rooms by path: /lobby, /dev)
  tui-chat-server --host 0.0.0.0 --port 9000
  python -m websockets ws://127.0.0.1:8765/lobby
                                          chat with a raw client: the first line is your nickname

Clients that offer the WebSocket subprotocol tui-chat.v1 speak JSON (docs/protocol.md); every
other client speaks plain text. GET /healthz answers 200 for load balancers.
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(
        prog="tui-chat-server",
        description="The tui-chat WebSocket chat server: rooms, nicknames, history.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="address to listen on (default: %(default)s)")
    add("--port", type=_positive, default=defaults.port,
        help="port to listen on, 0 for any free port (default: %(default)s)")
    add("--db", default="", metavar="PATH",
        help="SQLite file for history; ':memory:' keeps it in memory only"
             " (default: history.db in your data directory)")
    add("--history", type=_positive, default=defaults.history, metavar="N",
        help="messages kept per room, 0 for none (default: %(default)s)")
    add("--backlog", type=_positive, default=defaults.backlog, metavar="N",
        help="recent messages sent to a client that joins (default: %(default)s)")
    add("--max-text", type=_positive, default=defaults.max_text, metavar="CHARS",
        help="longest message accepted, in characters (default: %(default)s)")
    add("--max-frame", type=_positive, default=defaults.max_frame, metavar="BYTES",
        help="largest WebSocket frame accepted; bigger ones close with 1009 (default: %(default)s)")
    add("--ping-interval", type=float, default=defaults.ping_interval, metavar="SECONDS",
        help="keepalive ping interval, 0 to disable (default: %(default)s)")
    add("--ping-timeout", type=float, default=defaults.ping_timeout, metavar="SECONDS",
        help="drop a peer that has not answered a ping after this long (default: %(default)s)")
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"],
        help="how much to log to stderr (default: %(default)s)")
    add("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        host=args.host, port=args.port, db=args.db, history=args.history, backlog=args.backlog,
        max_text=args.max_text, max_frame=args.max_frame,
        ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # websockets' own connection chatter only when debugging; our lines say what happened.
    if level != "debug":
        logging.getLogger("websockets").setLevel(logging.WARNING)


async def serve_until_signalled(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, then close every connection with 1001."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with ChatServer(config):
        await stop.wait()
        logging.getLogger("tui_chat.server").info("shutting down")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        asyncio.run(serve_until_signalled(config_from_args(args)))
    except StorageError as error:
        logging.getLogger("tui_chat.server").error("%s", error)
        return 1
    except OSError as error:
        logging.getLogger("tui_chat.server").error("cannot listen on %s:%s: %s",
                                                   args.host, args.port, error.strerror or error)
        return 1
    return 0
